//! `wg::duplicate-key`
//!
//! What it catches: two members of the site's meshes with the same public key.
//!
//! Why it matters: WireGuard identifies a peer by its public key; a second
//! peer with the same key replaces the first in every configuration, so one
//! of the two members silently loses its tunnel. It usually means a key was
//! pasted twice.
//!
//! Example: `pve2.public_key` set to `pve1`'s key.

use std::collections::BTreeMap;

use crate::diagnostic::Diagnostic;
use crate::model::Site;
use crate::path;

pub(crate) const CODE: &str = "wg::duplicate-key";

pub(crate) fn check(site: &Site, out: &mut Vec<Diagnostic>) {
    let mut first: BTreeMap<&str, (&str, &str)> = BTreeMap::new();
    for (mesh_name, mesh) in &site.spec.wireguard {
        for (name, member) in &mesh.members {
            let Some((other_mesh, other)) = first.get(member.public_key.as_str()).copied() else {
                first.insert(&member.public_key, (mesh_name, name));
                continue;
            };
            out.push(
                Diagnostic::error(
                    CODE,
                    format!("WireGuard member `{name}` of {mesh_name} has the same public key as `{other}` of {other_mesh}"),
                )
                .help(format!("give `{name}` its own key: run `wg genkey | tee {name}.key | wg pubkey` on it and write the output here"))
                .at(site, &path!["wireguard", mesh_name, "members", name, "public_key"], "this key is already used")
                .at(site, &path!["wireguard", other_mesh, "members", other, "public_key"], "first used here"),
            );
        }
    }
}
