//! `systemd::service-kind`
//!
//! What it catches: a service with both `exec` and `container`, or neither.
//!
//! Why it matters: a unit must run exactly one thing; sitec cannot guess which
//! one the operator meant, and a unit without ExecStart fails to start.
//!
//! Example: `units.services.backup = { description = "backup" }`.

use crate::diagnostic::Diagnostic;
use crate::model::Site;
use crate::path;

pub(crate) const CODE: &str = "systemd::service-kind";

pub(crate) fn check(site: &Site, out: &mut Vec<Diagnostic>) {
    for (host_name, host) in &site.spec.hosts {
        for (name, service) in &host.units.services {
            let problem = match (&service.exec, &service.container) {
                (Some(_), Some(_)) => "has both `exec` and `container`",
                (None, None) => "has neither `exec` nor `container`",
                _ => continue,
            };
            out.push(
                Diagnostic::error(
                    CODE,
                    format!("service `{name}` of host `{host_name}` {problem}"),
                )
                .help("give the service exactly one of `exec = { command = ... }` or `container = { image = ..., uid = ..., gid = ... }`")
                .at(site, &path!["hosts", host_name, "units", "services", name], "this service"),
            );
        }
    }
}
