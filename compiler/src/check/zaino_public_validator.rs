//! `zaino::public-validator`
//!
//! What it catches: a Zaino `validator.address` (the full node's RPC) that
//! is not private (RFC 1918, loopback, link-local or CGNAT; for IPv6
//! loopback, unique local or link-local).
//!
//! Why it matters: Zaino refuses to connect to a validator on a public
//! address, and a full node's RPC must not be exposed to the internet in the
//! first place: it carries the cookie or password that controls the node.
//!
//! Example: `validator = { address = "198.51.100.20" }`.

use std::net::IpAddr;

use crate::diagnostic::Diagnostic;
use crate::model::Site;
use crate::net::Net;
use crate::path;

pub(crate) const CODE: &str = "zaino::public-validator";

pub(crate) fn check(site: &Site, out: &mut Vec<Diagnostic>) {
    for (host_name, host) in &site.spec.hosts {
        let Some(z) = &host.zaino else { continue };
        let Ok(ip) = z.validator.address.parse::<IpAddr>() else {
            continue;
        };
        if Net::is_private_address(ip) {
            continue;
        }
        out.push(
            Diagnostic::error(CODE, format!("Zaino on `{host_name}` connects to the validator at the public address {ip}"))
                .help("run the full node on loopback or a private network (e.g. the VM network) and use that address")
                .at(site, &path!["hosts", host_name, "zaino", "validator", "address"], "not a private address"),
        );
    }
}
