//! `wg-sync:IFACE`: a tunnel's configuration applied without taking it
//! down where `wg syncconf` can, restarted where it cannot.
//!
//! `wg syncconf` keeps the tunnel up but resets what the file does not
//! say: the private key is fed in from its secret file (wg-quick loads it
//! in `PostUp`, which syncconf never runs). The `[Interface]` settings
//! syncconf does not apply (addresses, MTU, hooks, ...) restart the
//! tunnel instead. Routes follow `AllowedIPs`, as wg-quick sets them up.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::{Actions, Done, R};
use crate::effects::{Effects, EffectsExt as _};
use crate::host::at;

/// The `[Interface]` settings `wg syncconf` does not apply, as written.
pub fn interface_settings(conf: &str) -> Vec<&str> {
    const KEYS: [&str; 10] = [
        "Address",
        "MTU",
        "Table",
        "DNS",
        "FwMark",
        "PreUp",
        "PostUp",
        "PreDown",
        "PostDown",
        "SaveConfig",
    ];
    conf.lines()
        .filter(|l| KEYS.iter().any(|k| l.starts_with(&format!("{k} ="))))
        .collect()
}

/// Every network some peer's `AllowedIPs` names.
pub fn allowed(conf: &str) -> BTreeSet<String> {
    conf.lines()
        .filter_map(|l| l.strip_prefix("AllowedIPs = "))
        .flat_map(|v| v.split(','))
        .map(|n| n.replace(' ', ""))
        .filter(|n| !n.is_empty())
        .collect()
}

/// The private key's file, as sitec's `PostUp` loads it.
pub fn private_key_file(conf: &str) -> Option<&str> {
    conf.lines()
        .find_map(|l| l.strip_prefix("PostUp = wg set %i private-key "))
}

impl<F: Effects> Actions<'_, F> {
    pub(super) fn wg_sync(&mut self, ifc: &str) -> R<Done> {
        let path = format!("etc/wireguard/{ifc}.conf");
        let Some(conf) = self.text(&Path::new("/").join(&path)) else {
            // The tunnel left with its file.
            if self.systemd_running() {
                self.run(
                    "systemctl",
                    &["disable", "--now", &format!("wg-quick@{ifc}")],
                )?;
            } else {
                self.run("ip", &["link", "del", ifc])?;
            }
            return Ok(Done::Ok);
        };
        let old = self.text(&self.left_file(&path)).unwrap_or_default();
        let up = self.ask("ip", &["link", "show", "dev", ifc])?.is_some();
        if !up || interface_settings(&old) != interface_settings(&conf) {
            return self.wg_restart(ifc, up);
        }
        let Some(stripped) = self.ask("wg-quick", &["strip", &format!("/{path}")])? else {
            return Ok(Done::Failed);
        };
        let key = match private_key_file(&conf).map(|k| self.fx.read(Path::new(k))) {
            Some(Ok(key)) => key,
            _ => {
                self.warn(format!("{ifc}: its private key cannot be read"));
                return Ok(Done::Failed);
            }
        };
        // The file holds the private key: root's alone, and gone after.
        let scratch = self.layout.private();
        self.fx.mkdir_all(&scratch, 0o700).map_err(at(&scratch))?;
        let sync: PathBuf = scratch.join(format!("{ifc}.sync"));
        let mut text = b"[Interface]\nPrivateKey = ".to_vec();
        text.extend(String::from_utf8_lossy(&key).trim_end().as_bytes());
        text.push(b'\n');
        for line in stripped.lines().filter(|l| *l != "[Interface]") {
            text.extend(line.as_bytes());
            text.push(b'\n');
        }
        self.fx.write(&sync, &text, 0o600).map_err(at(&sync))?;
        let synced = self.run("wg", &["syncconf", ifc, &sync.to_string_lossy()])?;
        self.fx.remove(&sync).map_err(at(&sync))?;
        if !synced {
            return Ok(Done::Failed);
        }
        let (was, now) = (allowed(&old), allowed(&conf));
        for net in was.difference(&now) {
            self.run("ip", &["route", "del", net, "dev", ifc])?;
        }
        for net in &now {
            if net == "0.0.0.0/0" || net == "::/0" {
                self.warn(format!(
                    "{ifc}: default route through the tunnel is left to wg-quick"
                ));
            } else if !self.run("ip", &["route", "replace", net, "dev", ifc])? {
                return Ok(Done::Failed);
            }
        }
        Ok(Done::Ok)
    }

    /// The tunnel taken down and brought up from its file: by its unit
    /// (enabling it is the unit states' business), or by wg-quick where
    /// systemd does not run.
    fn wg_restart(&mut self, ifc: &str, up: bool) -> R<Done> {
        if self.systemd_running() {
            let ok = self.run("systemctl", &["restart", &format!("wg-quick@{ifc}")])?;
            return Ok(Self::done(ok));
        }
        if up && !self.run("wg-quick", &["down", ifc])? {
            self.run("ip", &["link", "del", ifc])?;
        }
        let ok = self.run(
            "env",
            &[
                "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1",
                "wg-quick",
                "up",
                ifc,
            ],
        )?;
        Ok(Self::done(ok))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONF: &str = "[Interface]\nAddress = 10.9.0.1/24\nListenPort = 51820\n\
        PostUp = wg set %i private-key /etc/wireguard/wg0.key\n\n[Peer]\n\
        PublicKey = x\nAllowedIPs = 10.9.0.2/32, 192.168.2.0/24\n\n[Peer]\n\
        PublicKey = y\nAllowedIPs = 10.9.0.3/32\n";

    #[test]
    fn what_syncconf_cannot_apply_and_the_routes_are_read_from_the_file() {
        assert_eq!(
            interface_settings(CONF),
            [
                "Address = 10.9.0.1/24",
                "PostUp = wg set %i private-key /etc/wireguard/wg0.key"
            ]
        );
        let nets: Vec<String> = allowed(CONF).into_iter().collect();
        assert_eq!(nets, ["10.9.0.2/32", "10.9.0.3/32", "192.168.2.0/24"]);
        assert_eq!(private_key_file(CONF), Some("/etc/wireguard/wg0.key"));
        // A port change is syncconf's: the settings stay equal.
        let moved = CONF.replace("51820", "51821");
        assert_eq!(interface_settings(&moved), interface_settings(CONF));
    }
}
