//! `wg::duplicate-address`
//!
//! What it catches: two members of one mesh with the same tunnel address
//! (IPv4 or IPv6; `fd00::1` and `fd00:0::1` are the same).
//!
//! Why it matters: both peers would claim the same AllowedIPs; WireGuard
//! routes the address to whichever peer was configured last, so traffic
//! for one member goes to the other.
//!
//! Example: `pve1.address = "10.99.0.1"` and `pve2.address = "10.99.0.1"`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::diagnostic::Diagnostic;
use crate::model::Site;
use crate::path;

pub(crate) const CODE: &str = "wg::duplicate-address";

pub(crate) fn check(site: &Site, out: &mut Vec<Diagnostic>) {
    for (mesh_name, mesh) in &site.spec.wireguard {
        // Parsed, so that `fd00::1` and `fd00:0::1` are one address.
        let mut first: BTreeMap<IpAddr, (&str, &str)> = BTreeMap::new();
        for (name, member) in &mesh.members {
            let addresses = [("address", Some(&member.address), &mesh.network)]
                .into_iter()
                .chain(
                    mesh.network6
                        .iter()
                        .map(|n| ("address6", member.address6.as_ref(), n)),
                );
            for (field, address, network) in addresses {
                let Some(ip) = address.and_then(|a| a.parse::<IpAddr>().ok()) else {
                    continue;
                };
                let Some((other, other_field)) = first.get(&ip).copied() else {
                    first.insert(ip, (name, field));
                    continue;
                };
                out.push(
                    Diagnostic::error(
                        CODE,
                        format!(
                            "WireGuard members `{other}` and `{name}` of {mesh_name} both have the tunnel address {ip}"
                        ),
                    )
                    .help(format!("give `{name}` an unused address of {network}"))
                    .at(site, &path!["wireguard", mesh_name, "members", name, field], "this address is taken")
                    .at(site, &path!["wireguard", mesh_name, "members", other, other_field], "first used here"),
                );
            }
        }
    }
}
