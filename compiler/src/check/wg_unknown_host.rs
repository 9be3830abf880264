//! `wg::unknown-host`
//!
//! What it catches: a WireGuard member that is neither a host of the site nor
//! marked `external = true`.
//!
//! Why it matters: a member receives a bundle only if it is a host; a typo in a
//! member name would silently leave a node out of its own mesh while every
//! other node waits for it as a peer.
//!
//! Example: `wireguard.wg0.members.pve4 = { ... }` with no `hosts.pve4`.

use crate::diagnostic::Diagnostic;
use crate::model::Site;
use crate::path;

pub(crate) const CODE: &str = "wg::unknown-host";

pub(crate) fn check(site: &Site, out: &mut Vec<Diagnostic>) {
    for (mesh_name, mesh) in &site.spec.wireguard {
        for (name, member) in &mesh.members {
            if member.external || site.spec.hosts.contains_key(name) {
                continue;
            }
            out.push(
                Diagnostic::error(
                    CODE,
                    format!("WireGuard member `{name}` of {mesh_name} is not a host of this site"),
                )
                .help(format!(
                    "add `hosts.{name}`, fix the member's name, or mark it `external = true` if it is a laptop or other machine that gets no bundle"
                ))
                .at_name(
                    site,
                    &path!["wireguard", mesh_name, "members", name],
                    "no host has this name",
                ),
            );
        }
    }
}
