//! `firewall::unknown-set`
//!
//! What it catches: a firewall rule's `source` or `destination`, or a DNAT's
//! or masquerade's `source`, that names an `@set` that is not
//! in the site's `address_sets`.
//!
//! Why it matters: nftables refuses a ruleset that references an undefined set,
//! so the whole firewall of the host would fail to load at activation.
//!
//! Example: `source = "@admins"` when only `address_sets.admin` exists.

use super::facts;
use crate::diagnostic::Diagnostic;
use crate::model::Site;

pub(crate) const CODE: &str = "firewall::unknown-set";

pub(crate) fn check(site: &Site, out: &mut Vec<Diagnostic>) {
    for (host_name, host) in &site.spec.hosts {
        let Some(fw) = &host.firewall else { continue };
        for (path, address) in facts::firewall_addresses(host_name, fw) {
            let Some(set) = address.strip_prefix('@') else {
                continue;
            };
            if site.spec.address_sets.contains_key(set) {
                continue;
            }
            let known: Vec<_> = site
                .spec
                .address_sets
                .keys()
                .map(|k| format!("@{k}"))
                .collect();
            out.push(
                Diagnostic::error(
                    CODE,
                    format!("the firewall of host `{host_name}` refers to `@{set}`, which is not an address set"),
                )
                .help(if known.is_empty() {
                    format!("define it in `address_sets.{set} = [\"10.0.0.0/8\"]`")
                } else {
                    format!("use one of {} or define `address_sets.{set}`", known.join(", "))
                })
                .at(site, &path, "unknown address set"),
            );
        }
    }
}
