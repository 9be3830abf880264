//! Boots on new kernel files: the confirmation of a boot that came up on
//! kernel files no confirmed boot had, and the way back when nobody
//! confirms it.
//!
//! A generation's kernel files are its managed files whose actions wait
//! for the next boot or are read by it (`Action::REBOOT`, `Action::BOOT`:
//! the initramfs, the bootloader, the modules loaded at boot) and whose
//! content is not the host's own. Their hash is what `boot-good` records
//! of each confirmed boot. At boot, before anything changes, `judge`
//! looks at the kernel files this boot may have come up on (the
//! generation live when the host went down, and those `boot-files` names:
//! a refresh of the initramfs or the bootloader cut off leaves either);
//! one not known to boot arms `boot-armed` and a timer of PID 1's on the
//! monotonic clock. `confirm_boot` adds them to `boot-good`; `boot_expire`
//! (the timer) takes the host back to the newest kept generation whose
//! kernel files are known to boot, refreshes the initramfs and the
//! bootloader for it, and reboots.

use std::collections::BTreeSet;
use std::path::Path;

use sitec_format::Action;

use crate::actions::{Actions, Done, Note};
use crate::effects::{Cmd, Effects, EffectsExt as _};
use crate::generation::Generation;
use crate::host::{Error, at};
use crate::index::Gen;
use crate::journal::{self, Journal};
use crate::transition::Agent;

type R<T> = Result<T, Error>;

/// The sha256 of no kernel files: the host's own.
pub const NO_KERNEL_FILES: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Which kernel files count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kinds {
    /// Those whose effect waits for the next boot (`Action::REBOOT`).
    Reboot,
    /// Those too that the boot reads (`Action::BOOT`).
    Boot,
}

/// Generation `g`'s kernel files, as sorted `PATH SHA256` lines: its
/// managed files with an action of `kinds` whose content is not the
/// host's own (generation 0's). Generation 0 has none.
pub fn kernel_files(g: &Generation, base: &Generation, kinds: Kinds) -> Vec<String> {
    let wanted = |a: &Action| match kinds {
        Kinds::Reboot => Action::REBOOT.contains(&a.kind()),
        Kinds::Boot => Action::REBOOT.contains(&a.kind()) || Action::BOOT.contains(&a.kind()),
    };
    let mut lines: Vec<String> = g
        .files()
        .filter(|(p, f)| {
            f.actions.iter().any(wanted) && base.file(p).and_then(|b| b.sha256) != f.sha256
        })
        .filter_map(|(p, f)| f.sha256.map(|sha| format!("{p} {sha}")))
        .collect();
    lines.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    lines
}

/// The hash `boot-good` records of a generation's kernel files.
pub fn kernel_hash(lines: &[String]) -> String {
    sitec_format::sha256_hex(lines.join("\n").as_bytes())
}

/// `boot-armed`: a boot awaiting confirmation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootArmed {
    pub generation: Gen,
    /// Seconds it was given; 0: it went down unconfirmed, back at once.
    pub timeout: u64,
    /// In seconds of uptime.
    pub deadline: u64,
    pub boot_id: String,
    /// It may have come up on other kernel files too.
    pub mixed: bool,
}

impl BootArmed {
    pub fn parse(text: &str) -> Option<BootArmed> {
        let w: Vec<&str> = text.split_whitespace().collect();
        let num = |s: &str| {
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse::<u64>().ok())
                .flatten()
        };
        match w.as_slice() {
            [g, t, d, id, rest @ ..] if rest.len() <= 1 => Some(BootArmed {
                generation: Gen(num(g)?),
                timeout: num(t)?,
                deadline: num(d)?,
                boot_id: id.to_string(),
                mixed: match rest.first() {
                    None | Some(&"0") => false,
                    Some(&"1") => true,
                    _ => return None,
                },
            }),
            _ => None,
        }
    }

    pub fn format(&self) -> String {
        format!(
            "{} {} {} {} {}\n",
            self.generation,
            self.timeout,
            self.deadline,
            self.boot_id,
            u8::from(self.mixed)
        )
    }

    /// Why the boot goes back.
    pub fn reason(&self) -> String {
        if self.timeout == 0 {
            "the host went down before its boot was confirmed".to_string()
        } else {
            format!("no confirmation within {} s of the boot", self.timeout)
        }
    }
}

/// The confirmation timeout a generation's bundle asks for, 600 s when it
/// says none (or less than 10 s).
fn boot_confirm_timeout(g: &Generation) -> u64 {
    match g {
        Generation::Bundle(i) => i
            .deploy
            .get("boot_confirm_timeout")
            .and_then(|t| t.parse::<u64>().ok())
            .filter(|t| *t >= 10)
            .unwrap_or(600),
        Generation::Backup(_) => 600,
    }
}

impl<F: Effects> Agent<'_, F> {
    fn text(&self, path: &Path) -> Option<String> {
        self.fx.text(path)
    }

    /// This boot's id.
    pub fn boot_id(&self) -> String {
        self.text(Path::new("/proc/sys/kernel/random/boot_id"))
            .map(|t| t.trim().to_string())
            .unwrap_or_default()
    }

    /// Whole seconds since this boot began.
    pub fn uptime(&self) -> u64 {
        self.text(Path::new("/proc/uptime"))
            .and_then(|t| t.split('.').next().and_then(|s| s.parse().ok()))
            .unwrap_or(0)
    }

    /// The hash of generation `g`'s kernel files; `None` when they cannot
    /// be read (never the hash of known ones).
    pub fn kernel_hash_of(&self, g: Gen) -> Option<String> {
        if g.0 == 0 {
            return Some(NO_KERNEL_FILES.to_string());
        }
        let generation = self.generation_of(g).ok()?;
        let base = self.generation_of(Gen(0)).ok()?;
        Some(kernel_hash(&kernel_files(&generation, &base, Kinds::Boot)))
    }

    fn boot_good_hashes(&self) -> BTreeSet<String> {
        self.text(&self.layout.boot_good())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').next().map(str::to_string))
            .collect()
    }

    /// Whether generation `g`'s kernel files are known to boot. A
    /// generation the host no longer has, or whose index cannot be read,
    /// is not.
    pub fn known_good(&self, g: Gen) -> bool {
        match self.kernel_hash_of(g) {
            None => false,
            Some(h) => h == NO_KERNEL_FILES || self.boot_good_hashes().contains(&h),
        }
    }

    /// Adds generation `g`'s kernel files to those known to boot.
    fn add_boot_good(&mut self, g: Gen) -> R<()> {
        let Some(h) = self.kernel_hash_of(g) else {
            return Ok(());
        };
        if self.boot_good_hashes().contains(&h) {
            return Ok(());
        }
        let path = self.layout.boot_good();
        let mut text = self.text(&path).unwrap_or_default();
        text.push_str(&format!("{h} {g}\n"));
        self.write_state(&path, &text)
    }

    /// A state file written beside, synced, renamed into place, and the
    /// state directory synced (outside any transition).
    fn write_state(&mut self, path: &Path, text: &str) -> R<()> {
        self.fx
            .write_durably(path, text.as_bytes(), 0o644)
            .map_err(at(path))
    }

    /// The generations `boot-files` names that the host has (the live one
    /// when it names none).
    pub fn boot_files(&self) -> R<Vec<Gen>> {
        let state = self.state()?;
        let live = state.current.unwrap_or(Gen(0));
        let listed: Vec<Gen> = self
            .text(&self.layout.boot_files())
            .unwrap_or_default()
            .lines()
            .next()
            .unwrap_or("")
            .split(' ')
            .filter(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit()))
            .filter_map(|w| w.parse().ok().map(Gen))
            .filter(|g| g.0 == 0 || state.generations.contains_key(g))
            .collect();
        Ok(if listed.is_empty() {
            vec![live]
        } else {
            listed
        })
    }

    pub(crate) fn set_boot_files(&mut self, gens: &[Gen]) -> R<()> {
        let text: Vec<String> = gens.iter().map(Gen::to_string).collect();
        let path = self.layout.boot_files();
        // Not the state directory's sync: this runs in a transition too.
        let new = crate::effects::with_suffix(&path, ".sitec-new");
        self.fx
            .write(&new, format!("{}\n", text.join(" ")).as_bytes(), 0o644)
            .map_err(at(&new))?;
        self.fx.sync_file(&new).map_err(at(&new))?;
        self.fx.rename(&new, &path).map_err(at(&path))
    }

    /// Whether every generation of `boot-files` has generation `g`'s
    /// kernel files.
    pub(crate) fn boot_files_are(&self, g: Gen) -> R<bool> {
        let h = self.kernel_hash_of(g);
        Ok(self
            .boot_files()?
            .iter()
            .all(|b| self.kernel_hash_of(*b) == h))
    }

    /// Where an unconfirmed boot goes back to: the newest generation up to
    /// the live one that is intact, kept (not one a crash or a rollback
    /// undid) and whose kernel files are known to boot; generation 0 when
    /// there is none.
    pub fn boot_target(&self) -> R<Gen> {
        let state = self.state()?;
        let live = state.current.unwrap_or(Gen(0));
        for g in state.generations.keys().rev().filter(|g| **g <= live) {
            if g.0 != 0 && *g != live {
                match state.results.get(g) {
                    None => continue,
                    Some(r) if r.ends_with("rolled-back") => continue,
                    _ => {}
                }
            }
            let intact = g.0 == 0 || crate::bundle::intact(&*self.fx, &self.layout.generation(*g));
            if intact && self.known_good(*g) {
                return Ok(*g);
            }
        }
        Ok(Gen(0))
    }

    pub fn boot_armed(&self) -> R<Option<BootArmed>> {
        let path = self.layout.boot_armed();
        match self.text(&path) {
            None => Ok(None),
            Some(t) => BootArmed::parse(&t).map(Some).ok_or_else(|| {
                Error::Usage(format!(
                    "{} is corrupt ('{}'): see {}/log",
                    path.display(),
                    t.trim_end(),
                    self.layout.state.display()
                ))
            }),
        }
    }

    /// Arms the confirmation of this boot, on generation `g`'s kernel
    /// files, for `timeout` seconds; `mixed` when it may have come up on
    /// other files too. Its timer is PID 1's, on the monotonic clock,
    /// without default dependencies (the rollback must run even if the
    /// boot never reaches basic.target), and fires again a minute after
    /// each run: a go-back that could not finish is tried again.
    fn arm_boot(&mut self, g: Gen, timeout: u64, mixed: bool) -> R<()> {
        let armed = BootArmed {
            generation: g,
            timeout,
            deadline: self.uptime() + timeout,
            boot_id: self.boot_id(),
            mixed,
        };
        let path = self.layout.boot_armed();
        self.write_state(&path, &armed.format())?;
        let gone = self.layout.boot_rolled_back();
        self.fx.remove(&gone).map_err(at(&gone))?;
        let state = self.layout.state.clone();
        self.fx.sync_dir(&state).map_err(at(&state))?;
        self.start_boot_timer(timeout)
    }

    fn start_boot_timer(&mut self, timeout: u64) -> R<()> {
        let state = self.layout.state.clone();
        let timer = Cmd::new(
            "systemd-run",
            &[
                "--no-block",
                "--quiet",
                "--unit=sitec-boot-confirm",
                &format!("--on-active={}", timeout.max(1)),
                "--on-unit-inactive=60",
                "--timer-property=DefaultDependencies=no",
                "--timer-property=AccuracySec=1s",
                "--property=DefaultDependencies=no",
                &format!("--property=RequiresMountsFor={}", state.display()),
                "--property=KillMode=process",
                "--description=sitec: the boot's confirmation deadline",
                &state.join("activate").to_string_lossy(),
                "boot-expire",
            ],
        );
        let systemd = self.fx.systemd_running();
        let started = systemd && {
            let timer = timer.logged(&state.join("log"), 60);
            let ran = self.fx.run(&timer).map_err(at(Path::new("systemd-run")))?;
            ran.success
        };
        if !started {
            // Every activation checks the deadline too (`recover`); a
            // detached process waits for it meanwhile, its output nowhere.
            self.note(Note::Warn(
                "systemd-run could not start the confirmation's timer: a process waits instead"
                    .to_string(),
            ));
            let wait = format!(
                "sleep {}; exec '{}' boot-expire",
                timeout.max(1),
                state.join("activate").display()
            );
            let detached =
                Cmd::new("setsid", &["-f", "sh", "-c", &wait]).logged(Path::new("/dev/null"), 60);
            self.fx.run(&detached).map_err(at(Path::new("setsid")))?;
        }
        Ok(())
    }

    /// At boot, before recovery changes anything: did this boot come up on
    /// kernel files known to boot?
    pub fn judge_boot(&mut self) -> R<()> {
        let live = self.state()?.current;
        let mut hashes = BTreeSet::new();
        let mut unknown = None;
        for g in live.into_iter().chain(self.boot_files()?) {
            hashes.insert(self.kernel_hash_of(g));
            if unknown.is_none() && !self.known_good(g) {
                unknown = Some(g);
            }
        }
        let path = self.layout.boot_armed();
        if let Some(armed) = self.boot_armed()?
            && armed.boot_id == self.boot_id()
        {
            // Armed for this very boot already (the judge was cut off
            // before it was recorded): its timer, once more.
            let left = armed.deadline.saturating_sub(self.uptime());
            return self.start_boot_timer(left);
        }
        let Some(unknown) = unknown else {
            if self.fx.kind(&path).map_err(at(&path))?.is_some() {
                self.note(Note::Log("boot: the kernel files are known to boot: the confirmation the boot before awaited is dropped".to_string()));
            }
            return self.fx.remove(&path).map_err(at(&path));
        };
        let mixed = hashes.len() != 1;
        if self.fx.kind(&path).map_err(at(&path))?.is_some() {
            // The boot before awaited confirmation. On the same files (or a
            // record that cannot be read): it went down unconfirmed, back
            // at once.
            let before = self
                .text(&path)
                .and_then(|t| t.split_whitespace().next().and_then(|g| g.parse().ok()))
                .map(Gen);
            let h = before.and_then(|g| self.kernel_hash_of(g));
            if h.is_none() || h == self.kernel_hash_of(unknown) {
                self.note(Note::Log(format!("generation {unknown}: the boot before, on the same kernel files, went down before it was confirmed: back at once")));
                return self.arm_boot(unknown, 0, mixed);
            }
        }
        let timeout = boot_confirm_timeout(&self.generation_of(unknown)?);
        let target = self.boot_target()?;
        self.note(Note::Log(format!("generation {unknown}: this boot came up on kernel files no confirmed boot had: it must be confirmed within {timeout} s (confirm-boot), else back to generation {target} and a reboot")));
        self.arm_boot(unknown, timeout, mixed)
    }

    /// Runs the actions that refresh the initramfs and the bootloader (the
    /// `Action::REBOOT` kinds any generation of `boot-files` or `g` asks
    /// for) for generation `g`, live now; `boot-files` says `g` when all
    /// succeeded.
    pub(crate) fn refresh_boot(&mut self, g: Gen) -> R<()> {
        let mut gens = self.boot_files()?;
        gens.push(g);
        let mut used = BTreeSet::new();
        for b in &gens {
            if b.0 == 0 {
                continue;
            }
            if let Ok(Generation::Bundle(i)) = self.generation_of(*b) {
                for f in i.files.values() {
                    used.extend(f.actions.iter().map(|a| a.kind()));
                }
            }
        }
        let to_gen = self.generation_of(g)?;
        let left = self.generation_of(self.state()?.current.unwrap_or(Gen(0)))?;
        let base = match self.generation_of(Gen(0))? {
            Generation::Backup(b) => b,
            Generation::Bundle(_) => unreachable!("generation 0 is the backup"),
        };
        let mut acts = Actions::new(
            &mut *self.fx,
            &self.layout,
            (g, &left),
            &to_gen,
            &base,
            self.action_timeout,
        );
        let mut ok = true;
        for kind in Action::REBOOT.iter().filter(|k| used.contains(*k)) {
            let action = Action::try_from(kind.to_string()).expect("a kind without argument");
            acts.note(Note::Log(format!(
                "action {action} (the initramfs and the bootloader of generation {g})"
            )));
            if acts.run_action(&action)? == Done::Failed {
                acts.note(Note::Warn(format!("action {action} failed")));
                ok = false;
            }
        }
        let notes = std::mem::take(&mut acts.notes);
        self.notes.extend(notes);
        if ok {
            self.set_boot_files(&[g])?;
        }
        Ok(())
    }

    /// Goes back from a boot nobody confirmed (generation `g`'s kernel
    /// files) to the boot target and reboots onto it. The journal makes
    /// the transition whole across a crash; `boot-files` says whether the
    /// initramfs and the bootloader are the target's; only then does the
    /// host reboot (a reboot would come up on the files nobody confirmed).
    pub fn boot_rollback(&mut self, g: Gen, reason: &str) -> R<()> {
        let live = self.state()?.current.unwrap_or(Gen(0));
        let to = self.boot_target()?;
        self.note(Note::Log(format!("generation {g}: its boot was not confirmed ({reason}): back to generation {to}, then a reboot")));
        if live != to {
            self.journal(Journal {
                from: live,
                to,
                kind: journal::Kind::BootUnconfirmed,
            })?;
            self.transit(
                live,
                to,
                live,
                ("boot-unconfirmed-rolled-back", reason),
                false,
            )?;
        }
        if g != live && self.state()?.generations.contains_key(&g) {
            self.result_why(g, "boot-unconfirmed-rolled-back", reason)?;
        }
        if self.boot_files()? != [to] {
            self.refresh_boot(to)?;
        }
        if self.boot_files()? != [to] {
            self.note(Note::Warn(format!("the initramfs or the bootloader could not be made generation {to}'s: no reboot, the boot still awaits confirmation")));
            return Ok(());
        }
        // boot-armed stays until the next boot judges the files it comes
        // up on: a reboot that does not happen is tried again.
        let path = self.layout.boot_rolled_back();
        let text = format!("{g} {to} {}\n", self.boot_id());
        self.fx
            .write(&path, text.as_bytes(), 0o644)
            .map_err(at(&path))?;
        self.fx.sync_all().map_err(at(&path))?;
        self.note(Note::Log(format!("rebooting onto generation {to}")));
        let ran = self
            .fx
            .run(&Cmd::new("systemctl", &["--no-block", "reboot"]))
            .map_err(at(Path::new("systemctl")))?;
        if !ran.success {
            self.note(Note::Warn(format!(
                "systemctl reboot failed: reboot the host to boot generation {to}"
            )));
        }
        Ok(())
    }

    /// The boot's confirmation timer: unless the boot was confirmed
    /// meanwhile, back it goes.
    pub fn boot_expire(&mut self) -> R<()> {
        let Some(armed) = self.boot_armed()? else {
            return Ok(());
        };
        if armed.boot_id != self.boot_id() {
            return Ok(());
        }
        self.expiring = true;
        self.recover(false)?;
        let Some(armed) = self.boot_armed()? else {
            return Ok(());
        };
        self.boot_rollback(armed.generation, &armed.reason())
    }

    /// Part of every activation's recovery but the boot's and the timer's:
    /// a boot past its deadline goes back (the timer may be gone).
    pub fn expire_boot(&mut self) -> R<()> {
        let Some(armed) = self.boot_armed()? else {
            return Ok(());
        };
        // A record of an earlier boot: sitec-boot did not judge this one,
        // and that one was not confirmed. As past its deadline.
        if armed.boot_id == self.boot_id() && self.uptime() < armed.deadline {
            return Ok(());
        }
        self.boot_rollback(armed.generation, &armed.reason())?;
        Err(Error::Unconfirmed(format!(
            "the boot on generation {} was not confirmed before its deadline: back to generation {}",
            armed.generation,
            self.boot_target()?
        )))
    }

    /// `confirm-boot [NAME]`: the boot awaiting confirmation is kept; its
    /// kernel files join those known to boot. NAME, the store name of the
    /// bundle push confirms it for, must be the awaiting generation's (or
    /// one with the same kernel files).
    pub fn confirm_boot(&mut self, name: Option<&str>) -> R<String> {
        self.recover(false)?;
        let back = self
            .text(&self.layout.boot_rolled_back())
            .map(|t| t.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .unwrap_or_default();
        if let [g, to, id] = back.as_slice()
            && *id == self.boot_id()
        {
            return Err(Error::Unconfirmed(format!(
                "the boot on generation {g} was not confirmed in time: the host went back to generation {to} and reboots"
            )));
        }
        let Some(armed) = self.boot_armed()? else {
            if let [g, to, ..] = back.as_slice() {
                return Err(Error::Unconfirmed(format!(
                    "the boot on generation {g} was not confirmed in time: the host went back to generation {to} and rebooted"
                )));
            }
            let live = self.state()?.current.unwrap_or(Gen(0));
            return Ok(format!(
                "no boot awaits confirmation (generation {live} is live)"
            ));
        };
        let g = armed.generation;
        let state = self.state()?;
        let store_name = |g: &Gen| {
            state
                .generations
                .get(g)
                .and_then(|t| t.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        let own = store_name(&g);
        if let Some(name) = name.filter(|n| *n != own) {
            let named = state
                .generations
                .keys()
                .rev()
                .find(|x| store_name(x) == name)
                .copied();
            if named.is_none_or(|n| self.kernel_hash_of(n) != self.kernel_hash_of(g)) {
                return Err(Error::Refused(format!(
                    "the boot awaiting confirmation came up on generation {g} ({own}), not on {name}"
                )));
            }
        }
        if armed.mixed {
            self.note(Note::Log(format!("generation {g}: its boot was confirmed, but it may have come up on other kernel files too: they are refreshed now, and the next boot on them is confirmed again")));
            let live = state.current.unwrap_or(Gen(0));
            self.refresh_boot(live)?;
        } else {
            self.add_boot_good(g)?;
        }
        let path = self.layout.boot_armed();
        self.fx.remove(&path).map_err(at(&path))?;
        let dir = self.layout.state.clone();
        self.fx.sync_dir(&dir).map_err(at(&dir))?;
        if self.fx.systemd_running() {
            let _ = self
                .fx
                .run(&Cmd::new(
                    "systemctl",
                    &["stop", "sitec-boot-confirm.timer"],
                ))
                .map_err(at(Path::new("systemctl")))?;
        }
        Ok(format!("the boot on generation {g} ({own}) is confirmed"))
    }

    /// Which changes wait for a reboot, if any do, for switch, status and
    /// drift.
    pub fn say_reboot(&self) -> Option<String> {
        let pending = self.reboot_pending();
        (!pending.is_empty()).then(|| {
            format!(
                "reboot needed: {} take effect at the next boot",
                pending.join(" ")
            )
        })
    }

    /// What awaits the boot's confirmation, for status and drift.
    pub fn say_boot(&self) -> R<Option<String>> {
        let Some(b) = self.boot_armed()? else {
            return Ok(None);
        };
        let left = b.deadline.saturating_sub(self.uptime());
        Ok(Some(format!(
            "boot awaits confirmation: generation {} came up on kernel files no confirmed boot had; confirm-boot within {left} s, else back to generation {} and a reboot",
            b.generation,
            self.boot_target()?
        )))
    }

    /// The managed paths whose effect waits for a boot and whose content
    /// in the live generation differs from the one the host booted on.
    pub fn reboot_pending(&self) -> Vec<String> {
        let Ok(Some(live)) = self.state().map(|s| s.current) else {
            return Vec::new();
        };
        let booted = self
            .text(&self.layout.booted())
            .and_then(|t| t.split_whitespace().next().and_then(|g| g.parse().ok()))
            .map_or(Gen(0), Gen);
        let (Ok(base), Ok(a), Ok(b)) = (
            self.generation_of(Gen(0)),
            self.generation_of(booted),
            self.generation_of(live),
        ) else {
            return Vec::new();
        };
        let (a, b) = (
            kernel_files(&a, &base, Kinds::Reboot),
            kernel_files(&b, &base, Kinds::Reboot),
        );
        let paths: BTreeSet<String> = a
            .iter()
            .filter(|l| !b.contains(l))
            .chain(b.iter().filter(|l| !a.contains(l)))
            .filter_map(|l| l.split(' ').next().map(str::to_string))
            .collect();
        paths.into_iter().collect()
    }

    /// Whether this boot came up after the last one the agent judged:
    /// `booted` names another boot (or none at all, before the first).
    pub fn unjudged(&self) -> bool {
        let id = self.boot_id();
        let booted = self.text(&self.layout.booted()).unwrap_or_default();
        !id.is_empty() && booted.split_whitespace().nth(1) != Some(id.as_str())
    }

    /// Judges the kernel files this boot came up on, then records it in
    /// `booted` (after the judgement: a judge cut off is run again by the
    /// next activation, see `recover`).
    pub(crate) fn judge_this_boot(&mut self) -> R<()> {
        let booted = self.layout.booted();
        let before: Vec<String> = self
            .text(&booted)
            .map(|t| t.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        let good = self.layout.boot_good();
        if self.fx.kind(&good).map_err(at(&good))?.is_none() {
            // Kernel files known to boot, first kept by this agent: those
            // of the boot before, which came up and was reached.
            let mut text = String::new();
            if let Some(g) = before.first().and_then(|g| g.parse().ok()).map(Gen)
                && self.state()?.generations.contains_key(&g)
                && let Some(h) = self.kernel_hash_of(g)
            {
                text = format!("{h} {g}\n");
            }
            self.write_state(&good, &text)?;
        }
        let live = self.state()?.current.unwrap_or(Gen(0));
        if let Err(e) = self.judge_boot() {
            if let Error::Io { .. } = e {
                return Err(e);
            }
            self.note(Note::Warn(format!("the kernel files this boot came up on could not be judged ({e}): the boot awaits confirmation")));
            self.arm_boot(live, 600, true)?;
        }
        let id = self.boot_id();
        self.write_state(&booted, &format!("{live} {id}\n"))
    }

    /// `boot` (sitec-boot.service): judges the kernel files this boot came
    /// up on, then settles what a crash or the shutdown left.
    pub fn boot(&mut self) -> R<()> {
        if self
            .fx
            .kind(&self.layout.generations())
            .map_err(at(&self.layout.generations()))?
            .is_none()
        {
            return Ok(());
        }
        if self.unjudged() {
            self.judge_this_boot()?;
        }
        self.recover(true)
    }
}
