//! `wg::duplicate-address`
//!
//! What it catches: two members of one mesh with the same tunnel address.
//!
//! Why it matters: both peers would claim the same AllowedIPs; WireGuard
//! routes the address to whichever peer was configured last, so traffic
//! for one member goes to the other.
//!
//! Example: `pve1.address = "10.99.0.1"` and `pve2.address = "10.99.0.1"`.

use std::collections::BTreeMap;

use crate::diagnostic::Diagnostic;
use crate::model::Site;
use crate::path;

pub(crate) const CODE: &str = "wg::duplicate-address";

pub(crate) fn check(site: &Site, out: &mut Vec<Diagnostic>) {
    for (mesh_name, mesh) in &site.spec.wireguard {
        let mut first: BTreeMap<&str, &str> = BTreeMap::new();
        for (name, member) in &mesh.members {
            let Some(other) = first.get(member.address.as_str()).copied() else {
                first.insert(&member.address, name);
                continue;
            };
            out.push(
                Diagnostic::error(
                    CODE,
                    format!(
                        "WireGuard members `{other}` and `{name}` of {mesh_name} both have the tunnel address {}",
                        member.address
                    ),
                )
                .help(format!("give `{name}` an unused address of {}", mesh.network))
                .at(site, &path!["wireguard", mesh_name, "members", name, "address"], "this address is taken")
                .at(site, &path!["wireguard", mesh_name, "members", other, "address"], "first used here"),
            );
        }
    }
}
