//! `zaino::validator-cookie`
//!
//! What it catches: a Zaino validator that is not on loopback but has no
//! `cookie_path`.
//!
//! Why it matters: without cookie auth the full node's RPC is open to every
//! machine on that network, and Zaino refuses such a validator: it fails at
//! startup instead of indexing.
//!
//! Example: `validator = { address = "10.0.102.20" }` without `cookie_path`.

use std::net::IpAddr;

use crate::diagnostic::Diagnostic;
use crate::model::Site;
use crate::path;

pub(crate) const CODE: &str = "zaino::validator-cookie";

pub(crate) fn check(site: &Site, out: &mut Vec<Diagnostic>) {
    for (host_name, host) in &site.spec.hosts {
        let Some(z) = &host.zaino else { continue };
        let Ok(ip) = z.validator.address.parse::<IpAddr>() else {
            continue;
        };
        if ip.is_loopback() || z.validator.cookie_path.is_some() {
            continue;
        }
        out.push(
            Diagnostic::error(CODE, format!("Zaino on `{host_name}` reaches the validator at {ip} over the network without cookie auth"))
                .help("set `validator.cookie_path` to the full node's cookie file, e.g. `\"/var/lib/zebrad/.cookie\"`")
                .at(site, &path!["hosts", host_name, "zaino", "validator"], "no cookie_path"),
        );
    }
}
