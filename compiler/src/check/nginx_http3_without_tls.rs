//! `nginx::http3-without-tls`
//!
//! What it catches: a virtual host with `http3 = true` and no `tls`.
//!
//! Why it matters: HTTP/3 runs over QUIC, which is TLS: without a
//! certificate there is nothing NGINX can serve on UDP port 443, so the
//! virtual host would offer only plain HTTP while the site says HTTP/3.
//!
//! Example: `vhosts.docs = { server_names = [...], http3 = true, backends = [...] }`.

use crate::diagnostic::Diagnostic;
use crate::model::Site;
use crate::path;

pub(crate) const CODE: &str = "nginx::http3-without-tls";

pub(crate) fn check(site: &Site, out: &mut Vec<Diagnostic>) {
    for (host_name, host) in &site.spec.hosts {
        let Some(n) = &host.nginx else { continue };
        for (vhost, v) in &n.vhosts {
            if v.http3 && v.tls.is_none() {
                out.push(
                    Diagnostic::error(
                        CODE,
                        format!("virtual host `{vhost}` of `{host_name}` asks for HTTP/3 and has no `tls`: QUIC is TLS"),
                    )
                    .help("give it `tls = { certificate = ..., key = ... }`, or drop `http3 = true`")
                    .at(site, &path!["hosts", host_name, "nginx", "vhosts", vhost, "http3"], "needs TLS"),
                );
            }
        }
    }
}
