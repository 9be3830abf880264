//! `nginx::backend-unroutable`
//!
//! What it catches: an NGINX backend (of a virtual host or a stream) whose
//! address is in no network the load balancer is attached to or routes to
//! over a mesh.
//!
//! Why it matters: NGINX starts, but every request to that backend times out
//! through the default route; clients see 502 or hanging connections. It is
//! usually a typo in the address or a container on a network the load
//! balancer does not have.
//!
//! Example: `backend = { address = "10.30.0.21", port = 22 }` on a load
//! balancer whose only network is `10.20.0.0/24`.

use std::net::IpAddr;

use crate::diagnostic::Diagnostic;
use crate::model::Site;
use crate::path;

use super::facts;

pub(crate) const CODE: &str = "nginx::backend-unroutable";

pub(crate) fn check(site: &Site, out: &mut Vec<Diagnostic>) {
    let reach = facts::Reach::new(site);
    for (host_name, host) in &site.spec.hosts {
        let Some(n) = &host.nginx else { continue };
        let mut backends = Vec::new();
        for (vhost, v) in &n.vhosts {
            for (i, b) in v.backends.iter().enumerate() {
                backends.push((
                    b,
                    path![
                        "hosts", host_name, "nginx", "vhosts", vhost, "backends", i, "address",
                    ],
                ));
            }
        }
        for (i, s) in n.streams.iter().enumerate() {
            backends.push((
                &s.backend,
                path![
                    "hosts", host_name, "nginx", "streams", i, "backend", "address",
                ],
            ));
        }
        let host_reach = reach.host(site, host_name, host);
        for (b, path) in backends {
            let Ok(ip) = b.address.parse::<IpAddr>() else {
                continue;
            };
            if ip.is_loopback() || host_reach.reaches(ip) {
                continue;
            }
            let known = facts::routable_summary(site, host_name, host, 8);
            out.push(
                Diagnostic::error(
                    CODE,
                    format!(
                        "backend {} of `{host_name}`'s NGINX is in none of its networks",
                        crate::net::socket(&b.address, b.port)
                    ),
                )
                .help(if known.is_empty() {
                    "give the host an interface in the backend's network".to_string()
                } else {
                    format!("use a backend in {known}, or attach the host to the backend's network")
                })
                .at(site, &path, "unreachable backend"),
            );
        }
    }
}
