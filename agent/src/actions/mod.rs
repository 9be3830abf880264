//! The actions a transition runs for the files that changed, each as
//! `activate` runs it: through [`Effects`] only, every command with its
//! output in the state directory's log and cut off after the action
//! timeout, so a hanging one fails like any other.
//!
//! An action either runs (and succeeds or fails: a failed one makes the
//! switch roll back) or is skipped with a warning where the host cannot
//! run it (no systemd, a unit the host lacks, no initramfs builder).
//! What it says stays data ([`Note`]) until the command line prints it.
//! `wg-sync` and `ifreload` have modules of their own ([`wireguard`],
//! [`interfaces`]).

use std::path::{Path, PathBuf};

use sitec_format::{Action, UnitState};

pub mod interfaces;
pub mod wireguard;

use crate::effects::{Cmd, Effects, EffectsExt as _};
use crate::generation::{Backup, Generation};
use crate::host::{Error, at};
use crate::index::Gen;
use crate::layout::Layout;

type R<T> = Result<T, Error>;

/// Something an action said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Note {
    /// For the operator: something was left undone.
    Warn(String),
    /// For the log.
    Log(String),
    /// For the operator, on stdout, in order (what a check validated).
    Say(String),
}

/// Says `note` on a host with state in `layout`: a log line goes to the
/// log at once (before a command that may hang, or a kill), a warning too
/// and into `notes`, for the operator, as a line to say does.
pub fn say(fx: &mut impl Effects, layout: &Layout, notes: &mut Vec<Note>, note: Note) {
    let log = layout.state.join("log");
    match &note {
        Note::Log(l) => return fx.log(&log, l),
        Note::Warn(w) => fx.log(&log, &format!("warning: {w}")),
        Note::Say(_) => {}
    }
    notes.push(note);
}

/// How an action ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Done {
    /// It ran and succeeded, or was skipped with a warning.
    Ok,
    /// It failed: the transition's generation is not whole.
    Failed,
}

/// What the actions of one transition know.
pub struct Actions<'a, F: Effects> {
    pub fx: &'a mut F,
    pub layout: &'a Layout,
    /// The generation left and its index.
    pub from: (Gen, &'a Generation),
    /// The generation made live.
    pub to: &'a Generation,
    /// Generation 0: what the host had.
    pub base: &'a Backup,
    /// Seconds each command may run.
    pub timeout: u64,
    pub notes: Vec<Note>,
}

const SYSCTL: &str = "etc/sysctl.d/90-sitec.conf";

impl<'a, F: Effects> Actions<'a, F> {
    /// The actions of a transition from `from` to `to`.
    pub fn new(
        fx: &'a mut F,
        layout: &'a Layout,
        from: (Gen, &'a Generation),
        to: &'a Generation,
        base: &'a Backup,
        timeout: u64,
    ) -> Self {
        Actions {
            fx,
            layout,
            from,
            to,
            base,
            timeout,
            notes: Vec::new(),
        }
    }

    /// Says `note`: a log line goes to the log at once (before a command
    /// that may hang), a warning too and to the operator.
    pub fn note(&mut self, note: Note) {
        say(self.fx, self.layout, &mut self.notes, note);
    }

    fn warn(&mut self, text: String) {
        self.note(Note::Warn(text));
    }

    /// Runs an action's command, logged and cut off; whether it succeeded.
    fn run(&mut self, program: &str, args: &[&str]) -> R<bool> {
        let log = self.layout.state.join("log");
        let cmd = Cmd::new(program, args).logged(&log, self.timeout);
        self.run_cmd(cmd, program, args)
    }

    /// [`Actions::run`] with `input` on its stdin (logged with it: it is
    /// never a secret).
    fn run_input(&mut self, program: &str, args: &[&str], input: &[u8]) -> R<bool> {
        let log = self.layout.state.join("log");
        let cmd = Cmd::new(program, args)
            .logged(&log, self.timeout)
            .input(input);
        self.run_cmd(cmd, program, args)
    }

    fn run_cmd(&mut self, cmd: Cmd, program: &str, args: &[&str]) -> R<bool> {
        self.note(Note::Log(format!("run: {}", cmd.line_with_input())));
        let ran = self.fx.run(&cmd).map_err(at(Path::new(program)))?;
        if !ran.success {
            self.note(Note::Log(format!("failed: {}", cmd.line_with_input())));
            // timeout(1)'s exit when it cut the command off.
            if ran.code == Some(124) {
                self.note(Note::Log(format!(
                    "cut off after {} s: {}",
                    self.timeout,
                    Cmd::new(program, args).line()
                )));
            }
        }
        Ok(ran.success)
    }

    /// Asks the host something: what the command printed, or `None` when
    /// it failed.
    fn ask(&mut self, program: &str, args: &[&str]) -> R<Option<String>> {
        let ran = self
            .fx
            .run(&Cmd::new(program, args))
            .map_err(at(Path::new(program)))?;
        Ok(ran
            .success
            .then(|| String::from_utf8_lossy(&ran.stdout).into_owned()))
    }

    pub fn systemd_running(&self) -> bool {
        self.fx.systemd_running()
    }

    fn have(&self, program: &str) -> bool {
        self.fx.which(program).is_some()
    }

    /// Whether the host has a unit (a template instance through its
    /// template).
    pub fn unit_exists(&mut self, unit: &str) -> R<bool> {
        Ok(self
            .ask(
                "systemctl",
                &["list-unit-files", "--no-legend", &unit_file(unit)],
            )?
            .is_some_and(|out| !out.trim().is_empty()))
    }

    /// Where the generation left keeps managed file `p`.
    fn left_file(&self, p: &str) -> PathBuf {
        let (g, _) = self.from;
        if g.0 == 0 {
            self.layout.backup_file(Path::new(p))
        } else {
            self.layout.generation(g).join(p)
        }
    }

    fn text(&self, path: &Path) -> Option<String> {
        self.fx.text(path)
    }

    fn done(ok: bool) -> Done {
        if ok { Done::Ok } else { Done::Failed }
    }

    /// Sets each unit to its state (`changes`, from
    /// [`crate::decide::unit_changes`]). A state is what runs, not only what
    /// the next boot starts: an enabled unit is started, a disabled or
    /// masked one stopped; at boot (`boot`) without waiting, since the
    /// boot's own transaction is under way. A state generation 0 puts back
    /// that is no explicit one is only made so again. A unit the host lacks
    /// is masked all the same (installing it later does not start it).
    /// The units that could not be set, which fail the generation.
    pub fn unit_states(
        &mut self,
        changes: &[crate::decide::UnitChange],
        retired: &[String],
        boot: bool,
    ) -> R<Vec<String>> {
        use crate::decide::Source;
        let mut failed = Vec::new();
        for c in changes {
            let unit = c.unit.as_str();
            // A retired unit was disabled with its file, which is gone now.
            if c.state == UnitState::Disabled && retired.iter().any(|r| r == unit) {
                continue;
            }
            if !self.systemd_running() {
                self.warn(format!(
                    "systemd is not running: {unit} not made {}",
                    c.state.as_str()
                ));
                continue;
            }
            let act = boot || c.source == Source::Set;
            let now: &[&str] = if boot { &["--no-block"] } else { &[] };
            let ok = match c.state {
                UnitState::Enabled => {
                    self.run("systemctl", &["unmask", unit])?
                        && self.run("systemctl", &["enable", unit])?
                        && (!act || self.run("systemctl", &[&["start"], now, &[unit]].concat())?)
                }
                UnitState::Disabled => {
                    self.run("systemctl", &["unmask", unit])?
                        && (!self.unit_exists(unit)?
                            || (self.run("systemctl", &["disable", unit])?
                                && (!act
                                    || self
                                        .run("systemctl", &[&["stop"], now, &[unit]].concat())?)))
                }
                UnitState::Masked => {
                    let exists = self.unit_exists(unit)?;
                    (!exists || self.run("systemctl", &["disable", unit])?)
                        && self.run("systemctl", &["mask", unit])?
                        && (!exists
                            || !act
                            || self.run("systemctl", &[&["stop"], now, &[unit]].concat())?)
                }
            };
            if !ok {
                self.warn(format!("{unit} could not be made {}", c.state.as_str()));
                failed.push(unit.to_string());
            }
        }
        Ok(failed)
    }

    /// Stops and disables each unit whose file leaves, while systemd still
    /// has the file (after it is gone, `systemctl disable` refuses). At
    /// boot its queued start is cancelled instead of waited for.
    pub fn retire(&mut self, retired: &[String], boot: bool) -> R<()> {
        for unit in retired {
            if !self.systemd_running() {
                self.warn(format!("systemd is not running: {unit} not stopped"));
                continue;
            }
            let ok = if boot {
                self.run("systemctl", &["disable", unit])?
                    && self.run("systemctl", &["stop", "--no-block", unit])?
            } else {
                self.run("systemctl", &["disable", "--now", unit])?
            };
            if !ok {
                self.warn(format!("{unit} could not be stopped and disabled"));
            }
        }
        Ok(())
    }

    /// Runs one action.
    pub fn run_action(&mut self, action: &Action) -> R<Done> {
        match action {
            Action::DaemonReload => {
                self.systemctl_or_warn(&["daemon-reload"], "daemon-reload skipped")
            }
            Action::NftLoad => self.nft(),
            Action::SysctlLoad => self.sysctl(),
            Action::ZfsSet => self.zfs(),
            Action::ChronyReload => self.chrony(),
            Action::ModulesLoad => self.systemctl_or_warn(
                &["restart", "systemd-modules-load.service"],
                "the modules load at the next boot",
            ),
            Action::Initramfs => self.initramfs(),
            Action::UpdateGrub => Ok(Self::done(self.run("update-grub", &[])?)),
            Action::ProxmoxBootRefresh => {
                Ok(Self::done(self.run("proxmox-boot-tool", &["refresh"])?))
            }
            Action::Restart(unit) => self.unit("restart", unit),
            Action::Reload(unit) => self.unit("reload-or-restart", unit),
            Action::WgSync(ifc) => self.wg_sync(ifc),
            Action::Ifreload => self.interfaces(),
        }
    }

    fn systemctl_or_warn(&mut self, args: &[&str], otherwise: &str) -> R<Done> {
        if !self.systemd_running() {
            self.warn(format!("systemd is not running: {otherwise}"));
            return Ok(Done::Ok);
        }
        Ok(Self::done(self.run("systemctl", args)?))
    }

    fn unit(&mut self, verb: &str, unit: &str) -> R<Done> {
        if !self.systemd_running() {
            self.warn(format!("systemd is not running: {verb} {unit} skipped"));
            return Ok(Done::Ok);
        }
        if !self.unit_exists(unit)? {
            self.warn(format!(
                "{unit} does not exist on this host: {verb} skipped"
            ));
            return Ok(Done::Ok);
        }
        if unit == "nginx.service" && !self.run("nginx", &["-t"])? {
            return Ok(Done::Failed);
        }
        Ok(Self::done(self.run("systemctl", &[verb, unit])?))
    }

    /// The ruleset file loaded; the tables named `sitec*` that it does not
    /// define deleted (generation 0 leaves none of sitec's behind).
    fn nft(&mut self) -> R<Done> {
        let conf = Path::new("/etc/nftables.conf");
        let text = self.text(conf);
        if text.is_some() && !self.run("nft", &["-f", "/etc/nftables.conf"])? {
            return Ok(Done::Failed);
        }
        let kept = sitec_tables(text.as_deref().unwrap_or(""), true);
        let live = match self.ask("nft", &["list", "tables"])? {
            Some(out) => sitec_tables(&out, false),
            None => return Ok(Done::Failed),
        };
        for (family, table) in live.difference(&kept) {
            if !self.run("nft", &["delete", "table", family, table])? {
                return Ok(Done::Failed);
            }
        }
        Ok(Done::Ok)
    }

    /// sitec's sysctl file loaded; a key the generation left set and this
    /// one does not goes back to the value generation 0 recorded.
    fn sysctl(&mut self) -> R<Done> {
        let live = Path::new("/").join(SYSCTL);
        let new = self.text(&live);
        if new.is_some() && !self.run("sysctl", &["-q", "-p", &live.to_string_lossy()])? {
            return Ok(Done::Failed);
        }
        let old = self.text(&self.left_file(SYSCTL));
        let new_keys = sysctl_keys(new.as_deref().unwrap_or(""));
        for key in sysctl_keys(old.as_deref().unwrap_or("")).difference(&new_keys) {
            match self.base.sysctl.get(key).cloned() {
                None => self.warn(format!(
                    "{key}: no value recorded from before sitec set it; left as it is"
                )),
                Some(v) => {
                    if !self.run("sysctl", &["-q", "-w", &format!("{key}={v}")])? {
                        return Ok(Done::Failed);
                    }
                }
            }
        }
        Ok(Done::Ok)
    }

    fn zfs(&mut self) -> R<Done> {
        let Some(text) = self.text(Path::new("/etc/sitec/zfs-properties")) else {
            return Ok(Done::Ok);
        };
        if !self.have("zfs") {
            self.warn("zfs is not installed: properties not set".to_string());
            return Ok(Done::Ok);
        }
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let mut words = line.split_whitespace();
            let (Some(dataset), Some(prop)) = (words.next(), words.next()) else {
                continue;
            };
            let value = words.collect::<Vec<_>>().join(" ");
            if !self.run("zfs", &["set", &format!("{prop}={value}"), dataset])? {
                return Ok(Done::Failed);
            }
        }
        Ok(Done::Ok)
    }

    /// chronyd reloads its sources; one that is not running reads them when
    /// it starts: now, if the generation enables it.
    fn chrony(&mut self) -> R<Done> {
        if !self.systemd_running() {
            self.warn(
                "systemd is not running: chrony's sources are read when chronyd starts".to_string(),
            );
            return Ok(Done::Ok);
        }
        if self
            .ask("systemctl", &["is-active", "--quiet", "chrony.service"])?
            .is_some()
        {
            return Ok(Self::done(self.run("chronyc", &["reload", "sources"])?));
        }
        let enabled = matches!(self.to, Generation::Bundle(i)
            if i.units.get("chrony.service") == Some(&UnitState::Enabled));
        if !enabled {
            return Ok(Done::Ok);
        }
        let state = self
            .fx
            .run(&Cmd::new("systemctl", &["is-enabled", "chrony.service"]))
            .map_err(at(Path::new("systemctl")))?;
        if String::from_utf8_lossy(&state.stdout).trim() == "masked" {
            self.warn("chrony.service is masked: it starts at the next boot, from the sources of this generation".to_string());
            return Ok(Done::Ok);
        }
        Ok(Self::done(
            self.run("systemctl", &["start", "chrony.service"])?,
        ))
    }

    fn initramfs(&mut self) -> R<Done> {
        if self.have("update-initramfs") {
            Ok(Self::done(
                self.run("update-initramfs", &["-u", "-k", "all"])?,
            ))
        } else if self.have("dracut") {
            Ok(Self::done(self.run("dracut", &["--regenerate-all", "-f"])?))
        } else {
            self.warn("no initramfs builder (initramfs-tools, dracut) on this host: the options apply when the modules load".to_string());
            Ok(Done::Ok)
        }
    }
}

/// The unit file that defines `unit`: a template instance's template
/// (`wg-quick@wg0.service` is `wg-quick@.service`).
pub fn unit_file(unit: &str) -> String {
    match unit.split_once('@') {
        Some((prefix, rest)) => match rest.rsplit_once('.') {
            Some((_, kind)) => format!("{prefix}@.{kind}"),
            None => unit.to_string(),
        },
        None => unit.to_string(),
    }
}

/// The `sitec*` tables (family, name) a ruleset file defines (`table F
/// NAME {` lines) or `nft list tables` lists (`table F NAME`).
fn sitec_tables(text: &str, file: bool) -> std::collections::BTreeSet<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let words: Vec<&str> = l.split(' ').collect();
            let table = match (file, words.as_slice()) {
                (true, ["table", family, name, "{"]) | (false, ["table", family, name]) => {
                    (*family, *name)
                }
                _ => return None,
            };
            let ok = |s: &str, extra: bool| {
                s.bytes().all(|b| {
                    b.is_ascii_lowercase()
                        || b.is_ascii_digit()
                        || (extra && (b.is_ascii_uppercase() || b == b'_'))
                })
            };
            (table.1.starts_with("sitec") && ok(table.0, false) && ok(table.1, true))
                .then(|| (table.0.to_string(), table.1.to_string()))
        })
        .collect()
}

/// The keys a sysctl file of sitec's sets (`key = value` lines).
pub fn sysctl_keys(text: &str) -> std::collections::BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.split_once(" = ").map(|(k, _)| k))
        .filter(|k| {
            !k.is_empty()
                && k.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
                })
        })
        .map(str::to_string)
        .collect()
}
