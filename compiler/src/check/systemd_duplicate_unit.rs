//! `systemd::duplicate-unit`
//!
//! What it catches: a unit the site defines twice (a service named `zaino`
//! on a host that runs the Zaino container, which owns `zaino.service`), or a
//! unit whose state is set in both `units.states` and Samba's `unit_states`
//! with different values, or in `units.states` for a service the site
//! defines itself, or a unit named `sitec-...`, which are sitec's own
//! (`sitec-boot.service`, pull mode's `sitec-pull.timer`).
//!
//! Why it matters: only one definition can land in
//! `/etc/systemd/system/<unit>`; the other would be silently dropped, and
//! which state wins would depend on the order sitec happens to apply them.
//!
//! Example: `units.services.zaino = { ... }` together with `zaino = { ... }`.

use crate::diagnostic::Diagnostic;
use crate::model::Site;
use crate::path;

pub(crate) const CODE: &str = "systemd::duplicate-unit";

pub(crate) fn check(site: &Site, out: &mut Vec<Diagnostic>) {
    for (host_name, host) in &site.spec.hosts {
        for name in host
            .units
            .services
            .keys()
            .filter(|n| n.starts_with("sitec-"))
        {
            out.push(
                Diagnostic::error(
                    CODE,
                    format!(
                        "`{host_name}` defines {name}.service, a name sitec keeps for its own units"
                    ),
                )
                .help("name the service without the `sitec-` prefix; pull mode is `deploy.pull`")
                .at_name(
                    site,
                    &path!["hosts", host_name, "units", "services", name],
                    "sitec's own name",
                ),
            );
        }
        for unit in host.units.states.keys().filter(|n| n.starts_with("sitec-")) {
            out.push(
                Diagnostic::error(CODE, format!("`{host_name}` sets the state of {unit}, one of sitec's own units"))
                    .help("sitec enables its units itself: `sitec-pull.timer` with `deploy.pull`, `sitec-boot.service` at the first switch")
                    .at_name(site, &path!["hosts", host_name, "units", "states", unit], "sitec's own unit"),
            );
        }
        if host.zaino.is_some() && host.units.services.contains_key("zaino") {
            out.push(
                Diagnostic::error(CODE, format!("`{host_name}` defines zaino.service twice: as a service of the site and as the Zaino container"))
                    .help("remove `units.services.zaino`; the `zaino` block renders zaino.service")
                    .at_name(site, &path!["hosts", host_name, "units", "services", "zaino"], "second definition")
                    .at_name(site, &path!["hosts", host_name, "zaino"], "owns zaino.service"),
            );
        }
        for (unit, state) in &host.units.states {
            let service = unit
                .strip_suffix(".service")
                .filter(|s| host.units.services.contains_key(*s));
            if let Some(name) = service {
                out.push(
                    Diagnostic::error(CODE, format!("`{host_name}` sets the state of {unit} in `units.states`, but also defines it as a service"))
                        .help(format!("set `state` on `units.services.{name}` instead"))
                        .at_name(site, &path!["hosts", host_name, "units", "states", unit], "state set here")
                        .at_name(site, &path!["hosts", host_name, "units", "services", name], "defined here"),
                );
                continue;
            }
            let Some(samba) = &host.samba else { continue };
            match samba.unit_states.get(unit) {
                Some(other) if other != state => out.push(
                    Diagnostic::error(CODE, format!("`{host_name}` sets {unit} to {} in `units.states` and to {} in `samba.unit_states`", state.as_str(), other.as_str()))
                        .help("state it in one place")
                        .at(site, &path!["hosts", host_name, "units", "states", unit], "one state")
                        .at(site, &path!["hosts", host_name, "samba", "unit_states", unit], "another state"),
                ),
                _ => {}
            }
        }
    }
}
