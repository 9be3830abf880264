//! `nginx::http3-version`
//!
//! What it catches: a virtual host with `http3 = true` on a host whose
//! `nginx.version` is older than 1.25.
//!
//! Why it matters: `listen ... quic` exists only since NGINX 1.25; Debian 12
//! ships 1.22, where `nginx -t` fails and the reload is refused, taking every
//! other virtual host's change with it.
//!
//! Example: `nginx = { version = "1.22", vhosts.docs.http3 = true, ... }`.

use crate::diagnostic::Diagnostic;
use crate::model::Site;
use crate::path;

pub(crate) const CODE: &str = "nginx::http3-version";

/// `MAJOR.MINOR` as a pair; the contract guarantees the shape.
fn parse(version: &str) -> Option<(u32, u32)> {
    let (major, minor) = version.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

pub(crate) fn check(site: &Site, out: &mut Vec<Diagnostic>) {
    for (host_name, host) in &site.spec.hosts {
        let Some(n) = &host.nginx else { continue };
        let Some(version) = parse(&n.version) else {
            continue;
        };
        if version >= (1, 25) {
            continue;
        }
        for (vhost, v) in &n.vhosts {
            if !v.http3 {
                continue;
            }
            out.push(
                Diagnostic::error(CODE, format!("virtual host `{vhost}` of `{host_name}` asks for HTTP/3, which needs nginx 1.25 or newer; the host has {}", n.version))
                    .help("remove `http3 = true`, or install nginx 1.25+ on the host and set `nginx.version` accordingly")
                    .at(site, &path!["hosts", host_name, "nginx", "vhosts", vhost, "http3"], "needs nginx 1.25")
                    .at(site, &path!["hosts", host_name, "nginx", "version"], "the host's nginx"),
            );
        }
    }
}
