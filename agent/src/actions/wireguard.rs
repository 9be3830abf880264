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

/// What `wg-quick strip` prints of `conf`: the file without the keys of
/// `[Interface]` that only wg-quick reads, as `wg syncconf` takes it. The
/// same rules as wg-quick's own parse (each line trimmed as `read` trims
/// it; a key is what precedes `=` outside a comment, any case), without a
/// bash and its processes for each sync; the check ran wg-quick itself on
/// the file.
pub fn strip(conf: &str) -> String {
    const WG_QUICK: [&str; 9] = [
        "address",
        "mtu",
        "dns",
        "table",
        "preup",
        "predown",
        "postup",
        "postdown",
        "saveconfig",
    ];
    // `read` trims blanks and tabs; the key is trimmed of [[:space:]].
    let space = |c: char| c.is_ascii_whitespace() || c == '\x0b';
    let mut out = String::new();
    let mut interface = false;
    let lines = conf.strip_suffix('\n').unwrap_or(conf);
    for line in lines.split('\n').filter(|_| !conf.is_empty()) {
        let line = line.trim_matches([' ', '\t']);
        let uncommented = line.split('#').next().unwrap_or("");
        let key = uncommented
            .split('=')
            .next()
            .unwrap_or("")
            .trim_matches(space);
        if key.starts_with('[') {
            interface = false;
        }
        if key.eq_ignore_ascii_case("[Interface]") {
            interface = true;
        }
        if interface && WG_QUICK.iter().any(|k| key.eq_ignore_ascii_case(k)) {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    out
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
        let stripped = strip(&conf);
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
        // One ip for all the routes, not one a peer: a mesh of N members
        // has N-1 of them.
        let (was, now) = (allowed(&old), allowed(&conf));
        let gone: String = was
            .difference(&now)
            .map(|net| format!("route del {net} dev {ifc}\n"))
            .collect();
        if !gone.is_empty() {
            // Each on its own: a route already gone is no failure.
            self.run_input("ip", &["-force", "-batch", "-"], gone.as_bytes())?;
        }
        let mut routes = String::new();
        for net in &now {
            if net == "0.0.0.0/0" || net == "::/0" {
                self.warn(format!(
                    "{ifc}: default route through the tunnel is left to wg-quick"
                ));
            } else {
                routes.push_str(&format!("route replace {net} dev {ifc}\n"));
            }
        }
        if !routes.is_empty() && !self.run_input("ip", &["-batch", "-"], routes.as_bytes())? {
            return Ok(Done::Failed);
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
