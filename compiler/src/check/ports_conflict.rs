//! `ports::conflict`
//!
//! What it catches: two listeners of one host on the same protocol and port
//! and overlapping addresses (one on every address overlaps all): NGINX
//! HTTP and streams, Zaino gRPC and JSON-RPC, WireGuard, DNAT and published
//! container ports.
//!
//! Why it matters: the second daemon fails to bind ("address already in
//! use") and stays down after activation, or a DNAT silently steals the
//! port's traffic from a local service.
//!
//! Example: an NGINX stream on tcp 8137 on the host that runs Zaino's gRPC on 8137.

use crate::diagnostic::Diagnostic;
use crate::model::Site;

use super::facts;

pub(crate) const CODE: &str = "ports::conflict";

pub(crate) fn check(site: &Site, out: &mut Vec<Diagnostic>) {
    for (host_name, host) in &site.spec.hosts {
        let listeners = facts::listeners(site, host_name, host);
        for (j, b) in listeners.iter().enumerate() {
            let Some(a) = listeners[..j].iter().find(|a| a.clashes(b)) else {
                continue;
            };
            out.push(
                Diagnostic::error(
                    CODE,
                    format!(
                        "{} and {} both want {} port {} on `{host_name}`",
                        a.what,
                        b.what,
                        b.proto.as_str(),
                        b.port
                    ),
                )
                .help("move one of them to another port or to a distinct listen address")
                .at(site, &b.path, b.what.clone())
                .at(site, &a.path, a.what.clone()),
            );
        }
    }
}
