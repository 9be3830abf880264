//! `nginx::duplicate-server-name`
//!
//! What it catches: one server name in two virtual hosts of a host (names
//! compare without case, as NGINX does), or twice in one virtual host.
//!
//! Why it matters: NGINX warns "conflicting server name ... ignored" and
//! sends every request for the name to the first virtual host; the second
//! one's backends never see traffic.
//!
//! Example: `docs.server_names = ["docs.example.org"]` and
//! `wiki.server_names = ["docs.example.org"]`.

use std::collections::BTreeMap;

use crate::diagnostic::Diagnostic;
use crate::model::Site;
use crate::path;

pub(crate) const CODE: &str = "nginx::duplicate-server-name";

pub(crate) fn check(site: &Site, out: &mut Vec<Diagnostic>) {
    for (host_name, host) in &site.spec.hosts {
        let Some(n) = &host.nginx else { continue };
        let mut first: BTreeMap<(String, Option<&str>), (&str, usize)> = BTreeMap::new();
        for (vhost, v) in &n.vhosts {
            for (i, name) in v.server_names.iter().enumerate() {
                let key = (name.to_ascii_lowercase(), v.listen_address.as_deref());
                let Some((other, j)) = first.get(&key).copied() else {
                    first.insert(key, (vhost, i));
                    continue;
                };
                out.push(
                    Diagnostic::error(CODE, format!("server name {name} of `{host_name}` is in virtual host `{vhost}` and in `{other}`"))
                        .help("NGINX sends all its requests to one of them; keep the name in one virtual host")
                        .at(site, &path!["hosts", host_name, "nginx", "vhosts", vhost, "server_names", i], "again here")
                        .at(site, &path!["hosts", host_name, "nginx", "vhosts", other, "server_names", j], "first here"),
                );
            }
        }
    }
}
