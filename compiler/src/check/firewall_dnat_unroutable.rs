//! `firewall::dnat-unroutable`
//!
//! What it catches: a DNAT whose target address is in no subnet the host can
//! route to: none of its interfaces', bridges' or tunnels' subnets, nor a
//! mesh peer's address or routes.
//!
//! Why it matters: the forwarded connections leave through the default
//! route to an address that is not there; the port looks open and times out.
//! It is usually a typo in the address or a VM moved to another network.
//!
//! Example: `dnat = [{ proto = 'tcp, port = 8123, to = "10.0.110.10" }]` on a
//! host whose VM network is `10.0.101.0/24`.

use std::net::IpAddr;

use crate::diagnostic::Diagnostic;
use crate::model::Site;
use crate::path;

use super::facts;

pub(crate) const CODE: &str = "firewall::dnat-unroutable";

pub(crate) fn check(site: &Site, out: &mut Vec<Diagnostic>) {
    let reach = facts::Reach::new(site);
    for (host_name, host) in &site.spec.hosts {
        let Some(fw) = &host.firewall else { continue };
        let reach = reach.host(site, host_name, host);
        for (i, d) in fw.dnat.iter().enumerate() {
            let Ok(to) = d.to.parse::<IpAddr>() else {
                continue;
            };
            if reach.reaches(to) {
                continue;
            }
            let nets = facts::routable_summary(site, host_name, host, 8);
            out.push(
                Diagnostic::error(CODE, format!("DNAT of {} port {} on `{host_name}` forwards to {to}, which the host has no route to", d.proto.as_str(), d.port))
                    .help(if nets.is_empty() {
                        "the host has no addressed interface; give it one in the target's subnet".to_string()
                    } else {
                        format!("forward to an address in one of {nets}")
                    })
                    .at(site, &path!["hosts", host_name, "firewall", "dnat", i, "to"], "not in any subnet of the host"),
            );
        }
    }
}
