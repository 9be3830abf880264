//! `ifreload`: `/etc/network/interfaces` applied.
//!
//! ifupdown2's `ifreload -a` applies what changed. Classic ifupdown's
//! `ifup -a` leaves an interface that is up as it is, whatever its stanzas
//! now say, so an interface whose lines changed is taken down with the
//! file it was brought up from and brought up from the new one:
//!
//! - the file it was brought up from is the one the last `ifreload`
//!   applied (`interfaces.applied`, recorded before anything is taken
//!   down, so that an action killed halfway is undone from what it began);
//!   before the first, the generation being left's, else the host's own;
//! - a bridge whose port changed is bounced with it, and the ports a
//!   bridge had that are not in its stanza (VM taps, containers' veths)
//!   are attached again after;
//! - every interface taken down that the new file defines is brought up by
//!   name (also an `allow-hotplug` one, which `ifup -a` skips) and must be
//!   up after: else the action fails.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::{Actions, Done, Note, R};
use crate::effects::{Effects, EffectsExt as _};
use crate::host::at;

const LIVE: &str = "/etc/network/interfaces";

/// Each interface of an interfaces(5) file with all its lines (blanks
/// made one space, comments and empty lines left out): `auto` and
/// `allow-*` lines naming it, its `iface` stanza and the options under
/// it. Top-level lines that belong to no stanza end the one before them.
/// Never `lo`.
pub fn iface_lines(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut lines: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut cur: Option<String> = None;
    for raw in text.lines() {
        let words: Vec<&str> = raw.split_whitespace().collect();
        let Some(first) = words.first() else {
            continue;
        };
        if first.starts_with('#') {
            continue;
        }
        let line = words.join(" ");
        match *first {
            "auto" => {
                for name in &words[1..] {
                    lines
                        .entry(name.to_string())
                        .or_default()
                        .push("auto".into());
                }
                cur = None;
            }
            w if w.starts_with("allow-") => {
                for name in &words[1..] {
                    lines.entry(name.to_string()).or_default().push(w.into());
                }
                cur = None;
            }
            "iface" => {
                let name = words.get(1).copied().unwrap_or("").to_string();
                lines.entry(name.clone()).or_default().push(line);
                cur = Some(name);
            }
            "mapping" | "source" | "source-directory" | "no-auto-down" | "no-scripts"
            | "rename" => cur = None,
            _ => {
                if let Some(c) = &cur {
                    lines.entry(c.clone()).or_default().push(line);
                }
            }
        }
    }
    lines.remove("lo");
    lines
}

/// The interfaces whose lines differ between two interfaces(5) files, and
/// every bridge with a port among them (bouncing a port takes it out of
/// its bridge).
pub fn changed_ifaces(old: &str, new: &str) -> BTreeSet<String> {
    let (a, b) = (iface_lines(old), iface_lines(new));
    let mut changed: BTreeSet<String> = a
        .keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect();
    let mut bridges = BTreeSet::new();
    for text in [old, new] {
        let mut cur = "";
        for line in text.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["iface", name, ..] => cur = name,
                ["bridge-ports" | "bridge_ports", ports @ ..]
                    if ports.iter().any(|p| changed.contains(*p)) =>
                {
                    bridges.insert(cur.to_string());
                }
                _ => {}
            }
        }
    }
    changed.extend(bridges);
    changed
}

impl<F: Effects> Actions<'_, F> {
    pub(super) fn interfaces(&mut self) -> R<Done> {
        let Some(new) = self.text(Path::new(LIVE)) else {
            // Generation 0 of a host whose network ifupdown did not
            // configure: what manages it now is not sitec's to take down.
            self.warn(
                "no /etc/network/interfaces: the interfaces are left as they are until a reboot"
                    .to_string(),
            );
            return Ok(Done::Ok);
        };
        if self.have("ifreload") {
            if !self.run("ifreload", &["-a"])? {
                return Ok(Done::Failed);
            }
            // ifquery --check also counts what is rightly there and not in
            // the file (an address from router advertisements, a VM's port
            // on a bridge): a difference is logged, not a failure.
            if !self.run("ifquery", &["-a", "--check"])? {
                self.warn("ifquery --check: the running interfaces differ from /etc/network/interfaces (see the log)".to_string());
            }
            return Ok(Done::Ok);
        }
        let applied = self.layout.state.join("interfaces.applied");
        let zero = self.layout.backup_file(Path::new("etc/network/interfaces"));
        let (source, old) = [
            applied.clone(),
            self.left_file("etc/network/interfaces"),
            zero,
        ]
        .iter()
        .find_map(|p| self.text(p).map(|t| (p.display().to_string(), t)))
        .unwrap_or_else(|| ("/dev/null".to_string(), String::new()));
        // The file interfaces were brought up from, where ifdown reads it.
        let private = self.layout.private();
        self.fx.mkdir_all(&private, 0o700).map_err(at(&private))?;
        let old_file: PathBuf = private.join("interfaces.old");
        self.fx
            .write(&old_file, old.as_bytes(), 0o600)
            .map_err(at(&old_file))?;
        let old_arg = old_file.to_string_lossy().into_owned();
        self.note(Note::Log(format!(
            "interfaces: what changed is taken down as {source} brought it up"
        )));
        let changed = changed_ifaces(&old, &new);
        // On disk before anything is taken down (no sync of the state
        // directory mid-transition: see `Agent::arm`).
        let tmp = crate::effects::with_suffix(&applied, ".sitec-new");
        self.fx
            .write(&tmp, new.as_bytes(), 0o644)
            .map_err(at(&tmp))?;
        self.fx.sync_file(&tmp).map_err(at(&tmp))?;
        self.fx.rename(&tmp, &applied).map_err(at(&applied))?;
        let mut down = Vec::new();
        for ifc in &changed {
            if self.ask("ifquery", &["-i", &old_arg, ifc])?.is_none() {
                continue;
            }
            let ports = self.bridge_ports(ifc);
            // --force: deconfigured even when ifupdown's state lacks it (an
            // ifup that failed halfway) or a command of the old stanza fails.
            if !self.run("ifdown", &["--force", "-i", &old_arg, ifc])? {
                self.warn(format!("ifdown {ifc} failed; it is brought up anew"));
            }
            down.push((ifc.clone(), ports));
        }
        self.fx.remove(&old_file).map_err(at(&old_file))?;
        if !self.run("ifup", &["-a"])? {
            return Ok(Done::Failed);
        }
        for (ifc, ports) in down {
            if self.ask("ifquery", &["-i", LIVE, &ifc])?.is_none() {
                continue;
            }
            if self.ask("ifquery", &["--state", &ifc])?.is_none() && !self.run("ifup", &[&ifc])? {
                return Ok(Done::Failed);
            }
            if self.ask("ifquery", &["--state", &ifc])?.is_none() {
                self.warn(format!("{ifc} did not come up"));
                return Ok(Done::Failed);
            }
            for port in ports {
                let net = Path::new("/sys/class/net");
                if self.fx.exists(&net.join(&port))
                    && !self.fx.exists(&net.join(&ifc).join("brif").join(&port))
                    && !self.run("ip", &["link", "set", "dev", &port, "master", &ifc])?
                {
                    self.warn(format!("could not attach {port} to {ifc} again"));
                }
            }
        }
        Ok(Done::Ok)
    }

    /// The ports attached to bridge `ifc` now; none when it is no bridge.
    fn bridge_ports(&self, ifc: &str) -> Vec<String> {
        let brif = Path::new("/sys/class/net").join(ifc).join("brif");
        self.fx
            .list(&brif)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|n| n.to_str().map(str::to_string))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "auto lo\niface lo inet loopback\n\n# uplink\nauto eno1\n\
        iface eno1 inet manual\n\nauto vmbr0\niface vmbr0 inet static\n    address 192.0.2.2/24\n\
        \tbridge-ports eno1\n\nallow-hotplug eno2\niface eno2 inet dhcp\n";

    #[test]
    fn an_interface_is_its_lines_wherever_they_are() {
        let lines = iface_lines(OLD);
        assert_eq!(
            lines["vmbr0"],
            [
                "auto",
                "iface vmbr0 inet static",
                "address 192.0.2.2/24",
                "bridge-ports eno1"
            ]
        );
        assert_eq!(lines["eno2"], ["allow-hotplug", "iface eno2 inet dhcp"]);
        assert!(!lines.contains_key("lo"));
        // Blanks and comments change nothing.
        let respaced = OLD
            .replace("    address", "address")
            .replace("# uplink\n", "");
        assert!(changed_ifaces(OLD, &respaced).is_empty());
    }

    #[test]
    fn a_changed_port_bounces_its_bridge() {
        let new = OLD.replace(
            "iface eno1 inet manual",
            "iface eno1 inet manual\n    mtu 9000",
        );
        let changed: Vec<String> = changed_ifaces(OLD, &new).into_iter().collect();
        assert_eq!(changed, ["eno1", "vmbr0"]);
        let readdressed = OLD.replace("192.0.2.2/24", "192.0.2.3/24");
        let changed: Vec<String> = changed_ifaces(OLD, &readdressed).into_iter().collect();
        assert_eq!(changed, ["vmbr0"]);
        // An interface that leaves, and one that comes.
        let swapped = OLD.replace("eno2", "eno3");
        let changed: Vec<String> = changed_ifaces(OLD, &swapped).into_iter().collect();
        assert_eq!(changed, ["eno2", "eno3"]);
    }
}
