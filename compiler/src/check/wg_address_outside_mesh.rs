//! `wg::address-outside-mesh`
//!
//! What it catches: a member's tunnel address outside its mesh's network of
//! that family (`address` in `network`, `address6` in `network6`); the
//! network or broadcast address of an IPv4 mesh network, or the
//! subnet-router anycast address (the network's first) of an IPv6 one; a
//! member of a dual-stack mesh without an `address6`, and an `address6` in a
//! mesh without `network6`.
//!
//! Why it matters: the interface gets the address with the mesh's prefix;
//! outside the network, no other member routes to it through the tunnel. A
//! member without an IPv6 address in a dual-stack mesh is a hole every
//! other member's IPv6 traffic to it falls into.
//!
//! Example: `network = "10.99.0.0/24"` and `address = "10.98.0.1"`, or
//! `network6 = "fd00:99::/64"` and a member without `address6`.

use std::net::IpAddr;

use crate::diagnostic::Diagnostic;
use crate::model::Site;
use crate::net::{Family, Net};
use crate::path;

pub(crate) const CODE: &str = "wg::address-outside-mesh";

pub(crate) fn check(site: &Site, out: &mut Vec<Diagnostic>) {
    for (mesh_name, mesh) in &site.spec.wireguard {
        let families = [
            ("address", "network", Some(&mesh.network)),
            ("address6", "network6", mesh.network6.as_ref()),
        ]
        .map(|(a, n, network)| (a, n, network.and_then(|n| Net::parse(n)).map(Net::network)));
        for (name, member) in &mesh.members {
            let at = |field: &str| path!["wireguard", mesh_name, "members", name, field];
            let addresses = [Some(&member.address), member.address6.as_ref()];
            for (&(address_field, network_field, network), address) in
                families.iter().zip(addresses)
            {
                let d = match (network, address) {
                    (Some(network), Some(a)) => {
                        let Some(problem) = a.parse().ok().and_then(|ip| problem(network, ip)) else {
                            continue;
                        };
                        Diagnostic::error(CODE, format!("tunnel address {a} of `{name}` {problem}"))
                            .help(format!(
                                "choose a host address inside {network}, or widen `wireguard.{mesh_name}.{network_field}`"
                            ))
                            .at(site, &at(address_field), "this address")
                            .at(site, &path!["wireguard", mesh_name, network_field], "the mesh network")
                    }
                    (Some(network6), None) => Diagnostic::error(
                        CODE,
                        format!("`{name}` has no IPv6 tunnel address, but mesh `{mesh_name}` is dual-stack ({network6})"),
                    )
                    .help(format!(
                        "give `{name}` an `address6` inside {network6}: every member of the mesh needs one, or the others' IPv6 traffic to it has nowhere to go"
                    ))
                    .at(site, &at("address"), "this member")
                    .at(site, &path!["wireguard", mesh_name, "network6"], "the mesh's IPv6 network"),
                    (None, Some(a)) => Diagnostic::error(
                        CODE,
                        format!("`{name}` has the IPv6 tunnel address {a}, but mesh `{mesh_name}` has no IPv6 network"),
                    )
                    .help(format!(
                        "add `wireguard.{mesh_name}.network6` (e.g. a /64 of fd00::/8) with every member's `address6` inside it, or drop this `address6`"
                    ))
                    .at(site, &at(address_field), "this address")
                    .at(site, &path!["wireguard", mesh_name, "network"], "the mesh's only network"),
                    (None, None) => continue,
                };
                out.push(d);
            }
        }
    }
}

/// What is wrong with a tunnel address in its network, if anything.
fn problem(network: Net, ip: IpAddr) -> Option<String> {
    if !network.contains(ip) {
        return Some(format!("is outside the mesh network {network}"));
    }
    let what = match network.family() {
        Family::V4 if network.prefix < 31 && ip == network.addr => "the network address",
        Family::V4 if network.prefix < 31 && ip == network.last() => "the broadcast address",
        Family::V6 if network.prefix < 127 && ip == network.addr => {
            "the subnet-router anycast address"
        }
        _ => return None,
    };
    Some(format!("is {what} of {network}"))
}
