//! `firewall::duplicate-dnat`
//!
//! What it catches: two DNATs of one host on the same protocol and port (on
//! the same interface, or where either has no interface) to targets of the
//! same family. An IPv4 and an IPv6 forward of one port are two different
//! forwards: each rewrites only packets of its own family.
//!
//! Why it matters: nftables applies the first and never reaches the second;
//! one of the two services is unreachable and nothing says so.
//!
//! Example: `{ proto = 'tcp, port = 443, to = "10.20.0.10" }` and
//! `{ proto = 'tcp, port = 443, to = "10.20.0.11" }`.

use std::net::IpAddr;

use crate::diagnostic::Diagnostic;
use crate::model::Site;
use crate::net::Family;
use crate::path;

pub(crate) const CODE: &str = "firewall::duplicate-dnat";

fn family(to: &str) -> Option<Family> {
    to.parse::<IpAddr>().ok().map(Family::of)
}

pub(crate) fn check(site: &Site, out: &mut Vec<Diagnostic>) {
    for (host_name, host) in &site.spec.hosts {
        let Some(fw) = &host.firewall else { continue };
        for (j, b) in fw.dnat.iter().enumerate() {
            let first = fw.dnat[..j].iter().position(|a| {
                a.proto == b.proto
                    && a.port == b.port
                    && (a.iface.is_none() || b.iface.is_none() || a.iface == b.iface)
                    && family(&a.to) == family(&b.to)
            });
            let Some(i) = first else { continue };
            out.push(
                Diagnostic::error(
                    CODE,
                    format!("`{host_name}` forwards {} port {} twice: to {} and to {}", b.proto.as_str(), b.port, fw.dnat[i].to, b.to),
                )
                .help("only the first DNAT of a port takes effect; remove one, or move it to another port")
                .at(site, &path!["hosts", host_name, "firewall", "dnat", j, "port"], "forwarded again here")
                .at(site, &path!["hosts", host_name, "firewall", "dnat", i, "port"], "first forwarded here"),
            );
        }
    }
}
