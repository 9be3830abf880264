//! `nginx::http3-version`
//!
//! What it catches: a virtual host with `http3 = true` on a host whose
//! nginx is older than 1.25: the one its `release` ships (Debian 12 ships
//! 1.22), or the one `nginx.version` names.
//!
//! Why it matters: `listen ... quic` exists only since NGINX 1.25; on
//! Debian 12's 1.22 `nginx -t` fails and the reload is refused, taking
//! every other virtual host's change with it.
//!
//! Example: `release = 'debian12, nginx.vhosts.docs.http3 = true`.

use crate::diagnostic::Diagnostic;
use crate::model::Site;
use crate::path;

pub(crate) const CODE: &str = "nginx::http3-version";

pub(crate) fn check(site: &Site, out: &mut Vec<Diagnostic>) {
    for (host_name, host) in &site.spec.hosts {
        let Some(n) = &host.nginx else { continue };
        let (major, minor) = n.version(host.release);
        if (major, minor) >= (1, 25) {
            continue;
        }
        for (vhost, v) in &n.vhosts {
            if !v.http3 {
                continue;
            }
            let d = Diagnostic::error(
                CODE,
                format!(
                    "virtual host `{vhost}` of `{host_name}` asks for HTTP/3, which needs nginx 1.25 or newer; the host has {major}.{minor}"
                ),
            )
            .at(
                site,
                &path!["hosts", host_name, "nginx", "vhosts", vhost, "http3"],
                "needs nginx 1.25",
            );
            out.push(match &n.version {
                Some(_) => d
                    .help("remove `http3 = true`, or install nginx 1.25+ on the host and set `nginx.version` accordingly")
                    .at(site, &path!["hosts", host_name, "nginx", "version"], "the host's nginx"),
                None => d
                    .help(format!(
                        "remove `http3 = true`, or run the host on Debian 13 (`release = 'debian13`, nginx 1.26), or install nginx 1.25+ from elsewhere and say so in `nginx.version`; {} ships nginx {major}.{minor}",
                        host.release.name()
                    ))
                    .at(site, &path!["hosts", host_name, "release"], "the host's release"),
            });
        }
    }
}
