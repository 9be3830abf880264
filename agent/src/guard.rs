//! The agent that ran the last switch becomes the host's own
//! (`/var/lib/sitec/activate`, keeping the one it replaces as
//! `activate.prev`): what the boot (`sitec-boot.service`, the guard that
//! settles what a crash left before anything starts), pull mode (through
//! a drop-in for `sitec-pull.service`) and the operator run.

use std::path::Path;

use crate::actions::Note;
use crate::effects::{Cmd, Effects, EffectsExt as _, with_suffix};
use crate::host::{Error, at};
use crate::transition::Agent;

type R<T> = Result<T, Error>;

pub const GUARD_UNIT: &str = "/etc/systemd/system/sitec-boot.service";
pub const PULL_DROPIN: &str = "/etc/systemd/system/sitec-pull.service.d/sitec-agent.conf";
const WANTS: &str = "/etc/systemd/system/sysinit.target.wants/sitec-boot.service";

/// `sitec-boot.service`: before sysinit, the network and the firewall.
pub fn guard_unit(state: &Path) -> String {
    format!(
        "# Installed by sitec's host agent (docs/host-protocol.md, \"Reboots\").
[Unit]
Description=sitec: boot the last confirmed generation
DefaultDependencies=no
RequiresMountsFor={state}
After=local-fs.target systemd-remount-fs.service
Before=sysinit.target network-pre.target nftables.service systemd-sysctl.service shutdown.target
Wants=network-pre.target
Conflicts=shutdown.target

[Service]
Type=oneshot
RemainAfterExit=yes
TimeoutStartSec=30min
ExecStart={state}/activate boot

[Install]
WantedBy=sysinit.target
",
        state = state.display()
    )
}

/// The drop-in that makes `sitec-pull.service` run the host's agent
/// whichever generation is live.
pub fn pull_dropin(state: &Path) -> String {
    format!(
        "# Installed by sitec's host agent (docs/host-protocol.md, \"The agent\").
[Service]
ExecStart=
ExecStart={}/activate pull
",
        state.display()
    )
}

impl<F: Effects> Agent<'_, F> {
    /// Replaces `path` by `bytes` (synced, one rename) unless it has them;
    /// whether it did. A copy that could not be made whole (a full disk)
    /// replaces nothing and fails the activation, before its journal.
    fn install(&mut self, path: &Path, bytes: &[u8], mode: u32) -> R<bool> {
        if self.fx.read(path).ok().as_deref() == Some(bytes) {
            return Ok(false);
        }
        if let Some(d) = path.parent() {
            self.fx.mkdir_all(d, 0o755).map_err(at(d))?;
        }
        let new = with_suffix(path, ".sitec-new");
        let whole = self
            .fx
            .write(&new, bytes, mode)
            .and_then(|()| self.fx.sync_file(&new))
            .is_ok()
            && self.fx.read(&new).ok().as_deref() == Some(bytes);
        if !whole {
            let _ = self.fx.remove(&new);
            return Err(Error::Usage(format!(
                "could not install {} (is the disk full?): nothing changed",
                path.display()
            )));
        }
        self.fx.chmod(&new, mode).map_err(at(&new))?;
        self.fx.rename(&new, path).map_err(at(path))?;
        Ok(true)
    }

    /// Makes the agent at `exe` the host's, with the boot guard and the
    /// pull drop-in, each when it differs; the guard enabled at every
    /// switch (nothing else may have turned it off for good).
    pub fn install_guard(&mut self, exe: &Path) -> R<()> {
        let me = self.fx.read(exe).map_err(at(exe))?;
        let host = self.layout.state.join("activate");
        let prev = self.layout.state.join("activate.prev");
        if let Ok(old) = self.fx.read(&host)
            && old != me
        {
            // Kept: a rejected pulled release takes its agent with it.
            self.install(&prev, &old, 0o555)?;
        }
        self.install(&host, &me, 0o555)?;
        let state = self.layout.state.clone();
        let mut reload = false;
        for (path, text) in [
            (GUARD_UNIT, guard_unit(&state)),
            (PULL_DROPIN, pull_dropin(&state)),
        ] {
            if self.install(Path::new(path), text.as_bytes(), 0o644)? {
                self.note(Note::Log(format!("installed {path}")));
                reload = true;
            }
        }
        if reload && self.fx.systemd_running() {
            let ran = self
                .fx
                .run(&Cmd::new("systemctl", &["daemon-reload"]))
                .map_err(at(Path::new("systemctl")))?;
            if !ran.success {
                self.note(Note::Warn(format!(
                    "daemon-reload after installing {GUARD_UNIT} and {PULL_DROPIN} failed"
                )));
            }
        }
        let wants = Path::new(WANTS);
        if self.fx.read_link(wants).ok().as_deref() != Some(Path::new(GUARD_UNIT)) {
            if let Some(d) = wants.parent() {
                self.fx.mkdir_all(d, 0o755).map_err(at(d))?;
            }
            self.fx
                .swap_link(Path::new(GUARD_UNIT), wants)
                .map_err(at(wants))?;
        }
        Ok(())
    }
}
