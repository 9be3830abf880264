//! `wg::allowed-ips-overlap`
//!
//! What it catches: two members of a mesh whose AllowedIPs (tunnel address
//! and `routes`) overlap, or a member's route that overlaps a network the
//! receiving host has on its own interfaces.
//!
//! Why it matters: WireGuard routes each address to exactly one peer; with
//! overlapping AllowedIPs the last peer configured wins and the other loses
//! that traffic without an error. A route over the tunnel for a network the
//! host is attached to hijacks its local traffic, often its management
//! network, and locks the operator out.
//!
//! Example: `pve1.routes = ["10.0.101.0/24"]` and `pve2.routes = ["10.0.0.0/16"]`.

use crate::diagnostic::Diagnostic;
use crate::model::{Member, Site};
use crate::net::{Net, NetIndex};
use crate::path;
use crate::tree::FieldPath;

use super::facts;

pub(crate) const CODE: &str = "wg::allowed-ips-overlap";

/// One entry of a member's AllowedIPs as peers see them: the network, its
/// field path, and whether it is one of `routes` (else the tunnel address).
struct Allowed {
    net: Net,
    path: FieldPath,
    route: bool,
}

fn allowed(mesh: &str, name: &str, m: &Member) -> Vec<Allowed> {
    let at = |rest: FieldPath| path!["wireguard", mesh, "members", name].join(&rest);
    let address = [
        ("address", Some(&m.address)),
        ("address6", m.address6.as_ref()),
    ]
    .into_iter()
    .filter_map(|(field, a)| Some((field, Net::parse(a?)?)))
    .map(|(field, net)| Allowed {
        net,
        path: at(path![field]),
        route: false,
    });
    let routes = m.routes.iter().enumerate().filter_map(|(i, r)| {
        Net::parse(r).map(|n| Allowed {
            net: n.network(),
            path: at(path!["routes", i]),
            route: true,
        })
    });
    address.chain(routes).collect()
}

pub(crate) fn check(site: &Site, out: &mut Vec<Diagnostic>) {
    for (mesh_name, mesh) in &site.spec.wireguard {
        let members: Vec<(&String, Vec<Allowed>)> = mesh
            .members
            .iter()
            .map(|(name, m)| (name, allowed(mesh_name, name, m)))
            .collect();
        // Every allowed network, by (member, entry): overlaps by index, not
        // by comparing every pair of members.
        let mut index = NetIndex::new();
        for (m, (_, entries)) in members.iter().enumerate() {
            for (e, a) in entries.iter().enumerate() {
                index.insert(a.net, (m, e));
            }
        }
        for (bm, (b_name, b_allowed)) in members.iter().enumerate() {
            for b in b_allowed {
                let mut earlier: Vec<(usize, usize)> = index
                    .overlapping(b.net)
                    .map(|(_, at)| *at)
                    .filter(|(am, _)| *am < bm)
                    .collect();
                earlier.sort_unstable();
                for (am, ae) in earlier {
                    let (a_name, a) = (members[am].0, &members[am].1[ae]);
                    // Two tunnel addresses overlap only when equal:
                    // that is wg::duplicate-address.
                    if !(a.route || b.route) {
                        continue;
                    }
                    let (a_net, b_net) = (a.net, b.net);
                    out.push(
                        Diagnostic::error(
                            CODE,
                            format!("{b_net} of `{b_name}` overlaps {a_net} of `{a_name}` in the AllowedIPs of {mesh_name}"),
                        )
                        .help("each address may be routed to one peer only; narrow or remove one of the two")
                        .at(site, &b.path, "overlaps")
                        .at(site, &a.path, "this"),
                    );
                }
            }
        }
        // A peer's route must not cover a network the host itself is on.
        for (host_name, host) in &site.spec.hosts {
            if mesh.host_member(host_name).is_none() {
                continue;
            }
            let own: Vec<_> = facts::assigned(site, host_name, host)
                .into_iter()
                .filter(|a| !site.spec.wireguard.contains_key(&a.iface))
                .collect();
            for a in &own {
                let mut hits: Vec<(usize, usize)> = index
                    .overlapping(a.net.network())
                    .map(|(_, at)| *at)
                    .filter(|(m, _)| members[*m].0 != host_name)
                    .collect();
                hits.sort_unstable();
                for (m, e) in hits {
                    let (peer_name, Allowed { net, path: p, .. }) =
                        (members[m].0, &members[m].1[e]);
                    out.push(
                        Diagnostic::error(
                            CODE,
                            format!(
                                "{net} routed to `{peer_name}` over {mesh_name} overlaps {} on `{host_name}`'s {}",
                                a.net.network(),
                                a.iface
                            ),
                        )
                        .help(format!("`{host_name}` would send its own {} traffic into the tunnel; remove or narrow the route", a.iface))
                        .at(site, p, "routed over the tunnel")
                        .at(site, &a.path, "the host's own network"),
                    );
                }
            }
        }
    }
}
