//! `secrets::unread`
//!
//! What it catches: a secret under `hosts.H.secrets` at a path that no
//! part of the host reads as a secret: not a WireGuard member's
//! `private_key_file` (by default `/etc/wireguard/<mesh>.key`), an nginx
//! vhost's `tls.key` or zaino's `grpc.tls.key`.
//!
//! Why it matters: the host would write a private file as root where no
//! reviewed part of its configuration asked for one, and the daemon that
//! was meant to read it reads another path. It is nearly always a typo in
//! the path, or a key file renamed on one side only.
//!
//! Example: `secrets."/etc/wireguard/wg0.key"` on a host whose mesh
//! `mesh` reads `/etc/wireguard/mesh.key`.

use crate::check::facts;
use crate::diagnostic::Diagnostic;
use crate::model::Site;
use crate::path;

pub(crate) const CODE: &str = "secrets::unread";

pub(crate) fn check(site: &Site, out: &mut Vec<Diagnostic>) {
    for (host_name, host) in &site.spec.hosts {
        if host.secrets.is_empty() {
            continue;
        }
        let read = facts::secrets_read(&site.spec.wireguard, host_name, host);
        for path in host.secrets.keys() {
            if read.iter().any(|r| &r.path == path) {
                continue;
            }
            let help = if read.is_empty() {
                format!(
                    "nothing on {host_name} reads a secret; secrets here are the key files of its WireGuard meshes, nginx vhosts and zaino"
                )
            } else {
                let list: Vec<String> = read
                    .iter()
                    .map(|r| format!("{} ({})", r.path, r.reader))
                    .collect();
                format!("{host_name} reads these secrets: {}", list.join(", "))
            };
            out.push(
                Diagnostic::error(
                    CODE,
                    format!("secret {path} of {host_name} is read by nothing on the host"),
                )
                .help(help)
                .at_name(
                    site,
                    &path!["hosts", host_name, "secrets", path],
                    "no part of the host reads this path",
                ),
            );
        }
    }
}
