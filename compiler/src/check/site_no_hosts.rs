//! `site::no-hosts`
//!
//! What it catches: a site whose `hosts` is empty.
//!
//! Why it matters: it compiles to no bundle at all, and `compile` would
//! delete every bundle of the site from out/. That is almost always a
//! mistake in how `hosts` is built (a filter that matches nothing, a merge
//! that lost its right side), not an intent.
//!
//! Example: `{ hosts = {} }`.

use crate::diagnostic::Diagnostic;
use crate::model::Site;
use crate::path;

pub(crate) const CODE: &str = "site::no-hosts";

pub(crate) fn check(site: &Site, out: &mut Vec<Diagnostic>) {
    if site.spec.hosts.is_empty() {
        out.push(
            Diagnostic::error(CODE, format!("site `{}` has no hosts", site.name))
                .help("add a host: `hosts.pve1 = { management_address = \"10.0.200.11\" }`")
                .at(site, &path!["hosts"], "no hosts"),
        );
    }
}
