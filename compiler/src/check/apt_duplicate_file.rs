//! `apt::duplicate-file`
//!
//! What it catches: a host's `apt.disabled` naming the file that one of its
//! `apt.sources` is written to (`NAME.sources`).
//!
//! Why it matters: sitec would write the same file twice, once as a
//! repository and once as none; which one the host got would depend on the
//! order of rendering instead of on the site.
//!
//! Example: `sources.pve = { ... }` with `disabled = ["pve.sources"]`.

use crate::diagnostic::Diagnostic;
use crate::model::Site;
use crate::path;

pub(crate) const CODE: &str = "apt::duplicate-file";

pub(crate) fn check(site: &Site, out: &mut Vec<Diagnostic>) {
    for (host_name, host) in &site.spec.hosts {
        let Some(apt) = &host.apt else { continue };
        for (i, file) in apt.disabled.iter().enumerate() {
            let Some(name) = file.strip_suffix(".sources") else {
                continue;
            };
            if !apt.sources.contains_key(name) {
                continue;
            }
            out.push(
                Diagnostic::error(CODE, format!("`{host_name}` both writes the apt source `{name}` to {file} and disables {file}"))
                    .help(format!("drop \"{file}\" from `apt.disabled`, or rename the source `{name}`"))
                    .at(site, &path!["hosts", host_name, "apt", "disabled", i], "disabled here")
                    .at(site, &path!["hosts", host_name, "apt", "sources", name], "written here"),
            );
        }
    }
}
