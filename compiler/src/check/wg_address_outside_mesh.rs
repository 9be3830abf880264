//! `wg::address-outside-mesh`
//!
//! What it catches: a member's tunnel address outside its mesh's `network`,
//! or the network or broadcast address of a mesh network.
//!
//! Why it matters: the interface gets the address with the mesh's prefix;
//! outside the network, no other member routes to it through the tunnel.
//!
//! Example: `network = "10.99.0.0/24"` and `address = "10.98.0.1"`.

use std::net::Ipv4Addr;

use crate::diagnostic::Diagnostic;
use crate::model::Site;
use crate::net::Net;
use crate::path;

pub(crate) const CODE: &str = "wg::address-outside-mesh";

pub(crate) fn check(site: &Site, out: &mut Vec<Diagnostic>) {
    for (mesh_name, mesh) in &site.spec.wireguard {
        let Some(network) = Net::parse(&mesh.network).map(Net::network) else {
            continue;
        };
        for (name, member) in &mesh.members {
            let Ok(ip) = member.address.parse::<Ipv4Addr>() else {
                continue;
            };
            let problem = if !network.contains(ip) {
                format!("is outside the mesh network {network}")
            } else if network.prefix < 31 && (ip == network.addr || ip == network.broadcast()) {
                format!(
                    "is the {} address of {network}",
                    if ip == network.addr {
                        "network"
                    } else {
                        "broadcast"
                    }
                )
            } else {
                continue;
            };
            out.push(
                Diagnostic::error(
                    CODE,
                    format!("tunnel address {ip} of `{name}` {problem}"),
                )
                .help(format!("choose a host address inside {network}, or widen `wireguard.{mesh_name}.network`"))
                .at(site, &path!["wireguard", mesh_name, "members", name, "address"], "this address")
                .at(site, &path!["wireguard", mesh_name, "network"], "the mesh network"),
            );
        }
    }
}
