//! `systemd::masked-and-started`
//!
//! What it catches: a unit the site masks (in `units.states` or Samba's
//! `unit_states`) that it also starts: an enabled service of the site, the
//! Zaino container unit, a unit an enabled service wants (`after`), or a
//! unit enabled in another list.
//!
//! Why it matters: systemd refuses to start a masked unit; the service the
//! site describes would stay down after every activation, and a service
//! that wants it would start without it.
//!
//! Example: `units.states."zaino.service" = 'masked` on a host with `zaino`.

use std::collections::BTreeMap;

use crate::diagnostic::Diagnostic;
use crate::model::{Site, UnitState};
use crate::path;

use super::facts::Path;

pub(crate) const CODE: &str = "systemd::masked-and-started";

pub(crate) fn check(site: &Site, out: &mut Vec<Diagnostic>) {
    for (host_name, host) in &site.spec.hosts {
        let h = |rest: Path| path!["hosts", host_name].join(&rest);
        let mut masked: BTreeMap<String, Path> = BTreeMap::new();
        let mut started: Vec<(String, String, Path)> = Vec::new();
        let states = host
            .units
            .states
            .iter()
            .map(|(u, s)| (u, s, h(path!["units", "states", u])))
            .chain(host.samba.iter().flat_map(|samba| {
                samba
                    .unit_states
                    .iter()
                    .map(|(u, s)| (u, s, h(path!["samba", "unit_states", u])))
            }));
        for (unit, state, path) in states {
            match state {
                UnitState::Masked => {
                    masked.entry(unit.clone()).or_insert(path);
                }
                UnitState::Enabled => started.push((unit.clone(), "is enabled".into(), path)),
                UnitState::Disabled => {}
            }
        }
        for (name, service) in &host.units.services {
            if service.state != UnitState::Enabled {
                continue;
            }
            started.push((
                format!("{name}.service"),
                "is a service of the site".into(),
                h(path!["units", "services", name]),
            ));
            for (i, after) in service.after.iter().enumerate() {
                started.push((
                    after.clone(),
                    format!("is wanted by {name}.service"),
                    h(path!["units", "services", name, "after", i]),
                ));
            }
        }
        if host.zaino.is_some() {
            started.push((
                "zaino.service".into(),
                "runs the Zaino container".into(),
                h(path!["zaino"]),
            ));
        }
        for (unit, why, path) in started {
            let Some(mask) = masked.get(&unit) else {
                continue;
            };
            out.push(
                Diagnostic::error(
                    CODE,
                    format!("`{host_name}` masks {unit}, which it also starts: it {why}"),
                )
                .help(format!(
                    "a masked unit never starts; remove the mask of {unit}, or stop starting it"
                ))
                .at(site, mask, "masked here")
                .at(site, &path, "started here"),
            );
        }
    }
}
