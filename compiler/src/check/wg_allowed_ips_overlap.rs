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
use crate::net::Net;

use super::facts::{self, parts};

pub(crate) const CODE: &str = "wg::allowed-ips-overlap";

/// A member's AllowedIPs as peers see them, each with its field path.
fn allowed<'a>(mesh: &'a str, name: &'a str, m: &'a Member) -> Vec<(Net, Vec<String>)> {
    let base = facts::path(&["wireguard", mesh, "members", name]);
    let with = |rest: &[&str]| {
        let mut p = base.clone();
        p.extend(rest.iter().map(|s| s.to_string()));
        p
    };
    let mut out: Vec<(Net, Vec<String>)> = Net::parse(&m.address)
        .map(|n| (n, with(&["address"])))
        .into_iter()
        .collect();
    for (i, r) in m.routes.iter().enumerate() {
        if let Some(n) = Net::parse(r) {
            out.push((n.network(), with(&["routes", &i.to_string()])));
        }
    }
    out
}

pub(crate) fn check(site: &Site, out: &mut Vec<Diagnostic>) {
    for (mesh_name, mesh) in &site.spec.wireguard {
        let members: Vec<_> = mesh.members.iter().collect();
        for (i, (a_name, a)) in members.iter().enumerate() {
            for (b_name, b) in &members[i + 1..] {
                for (a_net, a_path) in allowed(mesh_name, a_name, a) {
                    for (b_net, b_path) in allowed(mesh_name, b_name, b) {
                        // Two equal tunnel addresses are wg::duplicate-address.
                        let both_tunnel = a_path.last().is_some_and(|p| p == "address")
                            && b_path.last().is_some_and(|p| p == "address");
                        if !a_net.overlaps(b_net) || both_tunnel {
                            continue;
                        }
                        out.push(
                            Diagnostic::error(
                                CODE,
                                format!("{b_net} of `{b_name}` overlaps {a_net} of `{a_name}` in the AllowedIPs of {mesh_name}"),
                            )
                            .help("each address may be routed to one peer only; narrow or remove one of the two")
                            .at(site, &parts(&b_path), "overlaps")
                            .at(site, &parts(&a_path), "this"),
                        );
                    }
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
            for (peer_name, peer) in &mesh.members {
                if peer_name == host_name {
                    continue;
                }
                for (net, p) in allowed(mesh_name, peer_name, peer) {
                    for a in own.iter().filter(|a| a.net.network().overlaps(net)) {
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
                            .at(site, &parts(&p), "routed over the tunnel")
                            .at(site, &parts(&a.path), "the host's own network"),
                        );
                    }
                }
            }
        }
    }
}
