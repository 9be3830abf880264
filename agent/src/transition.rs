//! Transitions between generations, and the recovery that settles what a
//! crash left of one.
//!
//! A transition from generation A to B changes managed paths so that no
//! step leaves one pointing at nothing:
//!
//! 1. **links**: each path of B that is not yet the link through
//!    `current` becomes it, where the generation `current` still names (A)
//!    has the file (generation 0 restores what sitec found instead);
//! 2. **prune**: the paths A manages and B does not go back to what
//!    sitec found there;
//! 3. **swap**: `current` -> `generations/B`, one rename: every link now
//!    shows B;
//! 4. **relink**: the paths of B that A lacked become links.
//!
//! Between the steps a path shows A's file or B's; the journal, written
//! durably before step 1, settles it: the next activation (or the boot)
//! undoes an unfinished switch and finishes an unfinished rollback, with the
//! same four steps, each of which is idempotent.

use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::actions::{Actions, Done, Note};
use crate::armed::Armed;
use crate::bundle::IndexFault;
use crate::decide;
use crate::generation::{Backup, Generation};
use sitec_format::Action;

use crate::effects::{Cmd, Effects, EffectsExt as _, Kind};
use crate::host::{Error, HostState, at};
use crate::index::Gen;
use crate::journal::{self, Journal};
use crate::layout::Layout;

type R<T> = Result<T, Error>;

/// The agent on one host: its effects and where its state is.
pub struct Agent<'a, F: Effects> {
    pub fx: &'a mut F,
    pub layout: Layout,
    /// Seconds each action's command may run.
    pub action_timeout: u64,
    /// What the actions said, for the command line to print.
    pub notes: Vec<Note>,
    /// The boot's confirmation timer runs: recovery leaves a boot past
    /// its deadline to it.
    pub expiring: bool,
    /// The agent executable a switch makes the host's (with the boot
    /// guard); none: the host's agent and guard are left as they are.
    pub guard: Option<PathBuf>,
    /// Test-only hooks (unset on hosts).
    pub hooks: Hooks,
    /// A transition runs (an error now leaves it in the middle).
    pub transitioning: bool,
    /// Confirmation timers this process started (their tokens differ).
    pub arms: u32,
}

/// Test-only hooks, as `activate` has them: `pause_at` STEP stops there
/// until the test kills this process (a crash at STEP) or the sleep it
/// waits on (carry on), its pids written to `pause_file`; `fail_at` STEP
/// fails there once, as a write that fails would.
#[derive(Clone, Debug, Default)]
pub struct Hooks {
    pub pause_at: Option<String>,
    pub pause_file: Option<PathBuf>,
    pub fail_at: Option<String>,
}

/// Whether a switch awaits confirmation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Confirm {
    /// It does not.
    Never,
    /// For this many seconds, whatever changes (pull mode: the host's
    /// health checks confirm it).
    Await(u64),
    /// For this many seconds when a change can cut the operator off.
    IfNetwork(u64),
}

impl<'a, F: Effects> Agent<'a, F> {
    pub fn new(fx: &'a mut F, layout: Layout) -> Self {
        Agent {
            fx,
            layout,
            action_timeout: 120,
            notes: Vec::new(),
            expiring: false,
            guard: None,
            hooks: Hooks::default(),
            transitioning: false,
            arms: 0,
        }
    }

    /// Says `note`: a log line goes to the log at once (before a command
    /// that may hang, or a kill), a warning too and to the operator.
    pub fn note(&mut self, note: Note) {
        crate::actions::say(self.fx, &self.layout, &mut self.notes, note);
    }

    pub fn state(&self) -> R<HostState> {
        HostState::read(&*self.fx, &self.layout)
    }

    /// Whether `path` is a symbolic link to `target`.
    fn links_to(&self, path: &Path, target: &Path) -> bool {
        matches!(self.fx.kind(path), Ok(Some(Kind::Link)))
            && self.fx.read_link(path).is_ok_and(|t| t == target)
    }

    /// Puts managed path `p` back as generation 0 has it: what sitec found,
    /// or nothing.
    fn restore_path(&mut self, p: &Path, backup: &Backup) -> R<()> {
        let host = Layout::host_path(p);
        match backup.files.get(&*p.to_string_lossy()) {
            None | Some(None) => self.fx.remove(&host).map_err(at(&host)),
            Some(Some(_)) => {
                let saved = self.layout.backup_file(p);
                self.fx.copy_into_place(&saved, &host).map_err(at(&host))
            }
        }
    }

    /// Makes generation `to`'s files the ones at their paths. With
    /// `resolving`, only the links that resolve already.
    fn materialize(
        &mut self,
        to: Gen,
        files: &Generation,
        backup: &Backup,
        resolving: bool,
    ) -> R<()> {
        let paths: Vec<PathBuf> = files.files().map(|(p, _)| PathBuf::from(p)).collect();
        for p in &paths {
            if to.0 == 0 {
                if resolving {
                    self.restore_path(p, backup)?;
                }
                continue;
            }
            let host = Layout::host_path(p);
            let through = self.layout.through_current(p);
            if self.links_to(&host, &through) {
                continue;
            }
            if resolving && !self.fx.exists(&through) {
                continue;
            }
            if let Some(dir) = host.parent() {
                self.fx.mkdir_all(dir, 0o755).map_err(at(dir))?;
            }
            self.fx.swap_link(&through, &host).map_err(at(&host))?;
        }
        Ok(())
    }

    /// A step of a transition, logged; where the test hooks stop or fail.
    fn step(&mut self, name: &str) -> R<()> {
        self.note(Note::Log(format!("step {name}")));
        if self.hooks.fail_at.as_deref() == Some(name) {
            self.hooks.fail_at = None;
            return Err(Error::Usage(format!(
                "a failure at {name} (SITEC_TEST_FAIL_AT)"
            )));
        }
        if self.hooks.pause_at.as_deref() == Some(name)
            && let Some(file) = &self.hooks.pause_file
            && let Ok(mut sleep) = std::process::Command::new("sleep").arg("3600").spawn()
        {
            let pids = format!("{} {}\n", std::process::id(), sleep.id());
            let _ = std::fs::write(file, pids);
            let _ = sleep.wait();
        }
        Ok(())
    }

    /// The index of a generation's or store copy's bundle in `dir`, as
    /// host state: one that cannot be read is a corrupt state.
    /// A transition never follows a path out of / (check refuses such a
    /// bundle first, in the operator's words).
    fn index_of(&self, dir: &Path) -> R<sitec_format::Index> {
        let index = crate::bundle::index_of(&*self.fx, dir).map_err(|f| match f {
            IndexFault::Missing => Error::State {
                path: dir.join("index"),
                why: "missing".into(),
            },
            IndexFault::Bad { path, why } => Error::State { path, why },
        })?;
        if let Some(bad) = index
            .files
            .keys()
            .find(|p| !sitec_format::manifest::managed_path(p))
        {
            return Err(Error::State {
                path: dir.join("index"),
                why: format!("'{bad}': a managed path is relative, without . or .."),
            });
        }
        Ok(index)
    }

    /// A generation's index, typed: generation 0's as the backup recorded
    /// it (empty before the first switch), a bundle's.
    pub(crate) fn generation_of(&self, g: Gen) -> R<Generation> {
        if g.0 == 0 {
            return Ok(Generation::Backup(self.backup()?));
        }
        Ok(Generation::Bundle(
            self.index_of(&self.layout.generation(g))?,
        ))
    }

    fn backup(&self) -> R<Backup> {
        let path = self.layout.backup_index();
        match self.fx.read(&path) {
            Ok(text) => Backup::parse(&String::from_utf8_lossy(&text)).map_err(|e| Error::State {
                path,
                why: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Backup::default()),
            Err(e) => Err(at(&path)(e)),
        }
    }

    /// The store name of generation `g`'s copy.
    fn store_name(&self, g: Gen) -> R<Option<String>> {
        Ok(self
            .state()?
            .generations
            .get(&g)
            .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned())))
    }

    /// The files of generation `g`'s store copy that a push repaired while
    /// it was live (`receive`): the daemons still run what was edited.
    fn repaired_of(&self, g: Gen) -> R<std::collections::BTreeSet<String>> {
        let Some(name) = self.store_name(g)? else {
            return Ok(Default::default());
        };
        let text = self
            .fx
            .read(&self.layout.state.join("repaired"))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        Ok(text
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .filter(|(n, _)| *n == name)
            .map(|(_, p)| p.to_string())
            .collect())
    }

    /// After a switch from generation `g` (done, or failed and undone):
    /// the repairs of its store copy have been acted on.
    fn acted_on_repairs(&mut self, g: Gen) -> R<()> {
        let path = self.layout.state.join("repaired");
        let Ok(bytes) = self.fx.read(&path) else {
            return Ok(());
        };
        let Some(name) = self.store_name(g)? else {
            return Ok(());
        };
        let text = String::from_utf8_lossy(&bytes);
        let kept: String = text
            .lines()
            .filter(|l| l.split('\t').next() != Some(name.as_str()))
            .map(|l| format!("{l}\n"))
            .collect();
        if kept == text {
            return Ok(());
        }
        let new = crate::effects::with_suffix(&path, ".sitec-new");
        self.fx
            .write(&new, kept.as_bytes(), 0o644)
            .map_err(at(&new))?;
        self.fx.rename(&new, &path).map_err(at(&path))
    }

    /// Whether the distribution ships a unit (it stays when sitec's file of
    /// it leaves).
    fn shipped(&self, unit: &str) -> bool {
        ["/lib/systemd/system", "/usr/lib/systemd/system"]
            .iter()
            .any(|d| self.fx.exists(&Path::new(d).join(unit)))
    }

    /// Makes generation `to` live, from `from` or from anywhere between
    /// the two (after a crash): every step is idempotent. Units whose file
    /// leaves are retired first; after the files, the actions the changes
    /// ask for run in their order, then the unit states are applied. At
    /// boot (`boot`), only what waits for a boot runs (and daemon-reload):
    /// the boot starts everything else from the generation's files.
    /// Whether an action failed or a unit could not be set: the files are
    /// `to`'s all the same.
    pub fn transition(&mut self, from: Gen, to: Gen, boot: bool) -> R<bool> {
        self.transitioning = true;
        let (from_gen, to_gen) = (self.generation_of(from)?, self.generation_of(to)?);
        let base_gen = Generation::Backup(self.backup()?);
        let Generation::Backup(base) = &base_gen else {
            unreachable!("built as one")
        };
        // Whether the files the boot reads change: the next boot may come up
        // on either generation's until the initramfs and the bootloader
        // were refreshed for the new one (`boot-files`).
        let kernel_change = self.kernel_hash_of(from) != self.kernel_hash_of(to);
        if kernel_change {
            let mut gens = self.boot_files()?;
            for g in [from, to] {
                if !gens.contains(&g) {
                    gens.push(g);
                }
            }
            self.set_boot_files(&gens)?;
        }
        let retired = decide::retired_units(&base_gen, &from_gen, &to_gen, |u| self.shipped(u));
        self.step("retire")?;
        let mut acts = Actions::new(
            &mut *self.fx,
            &self.layout,
            (from, &from_gen),
            &to_gen,
            base,
            self.action_timeout,
        );
        acts.retire(&retired, boot)?;
        let notes = std::mem::take(&mut acts.notes);
        self.notes.extend(notes);
        self.step("links")?;
        self.materialize(to, &to_gen, base, true)?;
        let gone: Vec<PathBuf> = from_gen
            .files()
            .filter(|(p, _)| to_gen.file(p).is_none())
            .map(|(p, _)| PathBuf::from(p))
            .collect();
        self.step("prune")?;
        for p in &gone {
            self.restore_path(p, base)?;
        }
        self.step("swap")?;
        let current = self.layout.current();
        self.fx
            .swap_link(&PathBuf::from(format!("generations/{to}")), &current)
            .map_err(at(&current))?;
        self.step("relink")?;
        self.materialize(to, &to_gen, base, false)?;
        self.step("secrets")?;
        let owners = |p: &str| {
            [&to_gen, &from_gen]
                .into_iter()
                .find_map(|g| match g {
                    Generation::Bundle(i) => i
                        .secrets
                        .iter()
                        .find(|s| s.path == p)
                        .map(|s| (s.uid, s.gid)),
                    Generation::Backup(_) => None,
                })
                .unwrap_or((0, 0))
        };
        let unsafe_secrets = self.install_secrets(from, to, &owners)?;
        let repaired = self.repaired_of(from)?;
        let changes = decide::all_changes([
            decide::file_changes(&from_gen, &to_gen),
            decide::secret_changes(&from_gen, &to_gen, |p| self.secret_differs(from, to, p)),
            decide::repaired_changes(&from_gen, &to_gen, &repaired),
        ]);
        self.step("actions")?;
        let mut acts = Actions::new(
            &mut *self.fx,
            &self.layout,
            (from, &from_gen),
            &to_gen,
            base,
            self.action_timeout,
        );
        let mut failed = false;
        let mut boot_failed = false;
        for action in decide::ordered_actions(&changes) {
            // A retired unit was stopped with its file: nothing to restart.
            if let Action::Restart(u) | Action::Reload(u) = &action
                && retired.contains(u)
            {
                continue;
            }
            if boot && action != Action::DaemonReload && !action.needs_reboot() {
                acts.note(Note::Log(format!(
                    "at boot: {action} is left to the boot, which starts from generation {to}'s files"
                )));
                continue;
            }
            acts.note(Note::Say(format!("  action {action}")));
            acts.note(Note::Log(format!(
                "action {action} (generation {from} -> {to})"
            )));
            match acts.run_action(&action)? {
                Done::Ok => {}
                Done::Failed => {
                    acts.note(Note::Warn(format!("action {action} failed")));
                    failed = true;
                    boot_failed |= action.needs_reboot();
                }
            }
        }
        let notes = std::mem::take(&mut acts.notes);
        self.notes.extend(notes);
        // Refreshed whole for the new generation, or it has the kernel
        // files of every generation the boot may come up on: the record
        // narrows to it.
        if !boot_failed && (kernel_change || self.boot_files_are(to)?) && self.boot_files()? != [to]
        {
            self.set_boot_files(&[to])?;
        }
        self.step("units")?;
        let mut acts = Actions::new(
            &mut *self.fx,
            &self.layout,
            (from, &from_gen),
            &to_gen,
            base,
            self.action_timeout,
        );
        let units = decide::unit_changes(&base.units, &from_gen, &to_gen);
        let stuck = acts.unit_states(&units, &retired, boot)?;
        let notes = std::mem::take(&mut acts.notes);
        self.notes.extend(notes);
        // `systemctl disable` also removes a link named like the unit in
        // /etc/systemd/system, which is how sitec installs unit files.
        self.materialize(to, &to_gen, base, false)?;
        self.transitioning = false;
        Ok(failed || !stuck.is_empty() || !unsafe_secrets.is_empty())
    }

    /// Writes the journal durably: everything before it (the store copy,
    /// generation 0's backups) is on disk first, and a power loss leaves
    /// the old journal or the new one, never a part.
    pub(crate) fn journal(&mut self, j: Journal) -> R<()> {
        let path = self.layout.journal();
        self.fx.sync_all().map_err(at(&path))?;
        self.fx
            .write_durably(&path, j.format().as_bytes(), 0o644)
            .map_err(at(&path))
    }

    /// Records how generation `g` ended; everything the transition wrote
    /// reaches the disk before the result does.
    pub(crate) fn result(&mut self, g: Gen, text: &str) -> R<()> {
        self.result_why(g, text, "")
    }

    /// As [`Agent::result`], saying why in the log (`why` in parentheses
    /// after it; empty: nothing).
    pub(crate) fn result_why(&mut self, g: Gen, text: &str, why: &str) -> R<()> {
        if why.is_empty() {
            self.note(Note::Log(format!("generation {g}: {text}")));
        } else {
            self.note(Note::Log(format!("generation {g}: {text} ({why})")));
        }
        let path = self.layout.result(g);
        self.fx.sync_all().map_err(at(&path))?;
        self.fx
            .write(&path, format!("{text}\n").as_bytes(), 0o644)
            .map_err(at(&path))
    }

    /// A transition that ends a switch or a rollback: generation `g`'s
    /// result, then the journal and any deadline go.
    pub(crate) fn transit(
        &mut self,
        a: Gen,
        b: Gen,
        g: Gen,
        (text, why): (&str, &str),
        boot: bool,
    ) -> R<bool> {
        let failed = self.transition(a, b, boot)?;
        if failed {
            self.note(Note::Warn(format!(
                "some actions failed going from generation {a} to {b}"
            )));
        }
        self.result_why(g, text, why)?;
        for path in [
            self.layout.journal(),
            self.layout.armed(),
            crate::effects::with_suffix(&self.layout.armed(), ".timer"),
        ] {
            self.fx.remove(&path).map_err(at(&path))?;
        }
        Ok(failed)
    }

    /// Generation 0: for every path the bundle manages that no earlier
    /// generation did, what sitec finds there (a copy, root's alone, or
    /// "nothing"). Copies before the index names them: a crash in between
    /// only repeats the copy.
    fn backup_paths(&mut self, generation: &Generation, store: &Path) -> R<()> {
        let secrets: Vec<&str> = generation.secrets().into_iter().map(|(p, _)| p).collect();
        let b = self.layout.backup();
        let files = b.join("files");
        self.fx.mkdir_all(&files, 0o700).map_err(at(&files))?;
        self.fx.chmod(&b, 0o700).map_err(at(&b))?;
        let index = self.layout.backup_index();
        if self.fx.kind(&index).map_err(at(&index))?.is_none() {
            self.fx.write(&index, b"", 0o644).map_err(at(&index))?;
        }
        let zero = self.layout.generation(Gen(0));
        if self.fx.kind(&zero).map_err(at(&zero))?.is_none() {
            self.fx
                .swap_link(Path::new("../backup"), &zero)
                .map_err(at(&zero))?;
        }
        let mut text =
            String::from_utf8_lossy(&self.fx.read(&index).map_err(at(&index))?).to_string();
        let recorded = Backup::parse(&text).map_err(|e| Error::State {
            path: index.clone(),
            why: e.to_string(),
        })?;
        let paths: Vec<PathBuf> = generation.files().map(|(p, _)| PathBuf::from(p)).collect();
        for p in &paths {
            if recorded.files.contains_key(&*p.to_string_lossy()) {
                continue;
            }
            let host = Layout::host_path(p);
            let record = if self.links_to(&host, &self.layout.through_current(p)) {
                format!("f\t{}\t-\t-\n", p.display())
            } else if self.fx.kind(&host).map_err(at(&host))?.is_some() {
                let saved = self.layout.backup_file(p);
                if let Some(dir) = saved.parent() {
                    self.fx.mkdir_all(dir, 0o700).map_err(at(dir))?;
                }
                let bytes = self.fx.read(&host).map_err(at(&host))?;
                let mode = self.fx.mode(&host).map_err(at(&host))?;
                self.fx.write(&saved, &bytes, mode).map_err(at(&saved))?;
                format!(
                    "f\t{}\t{:x}\t{:o}\n",
                    p.display(),
                    Sha256::digest(&bytes),
                    mode
                )
            } else {
                format!("f\t{}\t-\t-\n", p.display())
            };
            text.push_str(&record);
        }
        // And every secret a generation keeps, as the host had it (`x PATH
        // SHA256`, or "-" for none): a file with its owner and mode, a link
        // as the link it was.
        // What the index recorded before this switch (its own records
        // are guarded against repeats by the text itself).
        let found = &recorded;
        for p in secrets.iter().map(Path::new) {
            let key = p.to_string_lossy();
            if found.secrets.contains_key(&*key) || text.contains(&format!("x\t{key}\t")) {
                continue;
            }
            if !self.fx.exists(p) {
                text.push_str(&format!("x\t{key}\t-\n"));
                continue;
            }
            let saved = self
                .layout
                .backup()
                .join("files")
                .join(p.strip_prefix("/").unwrap_or(p));
            if let Some(dir) = saved.parent() {
                self.fx.mkdir_all(dir, 0o700).map_err(at(dir))?;
            }
            let bytes = self.fx.read(p).map_err(at(p))?;
            self.fx.remove(&saved).map_err(at(&saved))?;
            if self.fx.kind(p).map_err(at(p))? == Some(Kind::Link) {
                let target = self.fx.read_link(p).map_err(at(p))?;
                self.fx.symlink(&target, &saved).map_err(at(&saved))?;
            } else {
                let (uid, gid) = self.fx.owner(p).map_err(at(p))?;
                let mode = self.fx.mode(p).map_err(at(p))?;
                self.fx.write(&saved, &bytes, 0o600).map_err(at(&saved))?;
                self.fx.chown(&saved, uid, gid).map_err(at(&saved))?;
                self.fx.chmod(&saved, mode).map_err(at(&saved))?;
            }
            text.push_str(&format!("x\t{key}\t{:x}\n", Sha256::digest(&bytes)));
        }
        // The value of every sysctl key a generation sets, as the host had
        // it (tabs, as in ip_local_port_range, become spaces).
        let sysctl = store.join("etc/sysctl.d/90-sitec.conf");
        let conf = self
            .fx
            .read(&sysctl)
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        for key in crate::actions::sysctl_keys(&conf.unwrap_or_default()) {
            if found.sysctl.contains_key(&key) || text.contains(&format!("k\t{key}\t")) {
                continue;
            }
            let ran = self
                .fx
                .run(&Cmd::new("sysctl", &["-n", &key]))
                .map_err(at(Path::new("sysctl")))?;
            let value = String::from_utf8_lossy(&ran.stdout)
                .trim_end()
                .replace('\t', " ");
            if ran.success && !value.is_empty() {
                text.push_str(&format!("k\t{key}\t{value}\n"));
            }
        }
        // And the state of every unit a generation sets, as the host had it.
        let systemd = self.fx.systemd_running();
        for unit in generation.units().keys() {
            if !systemd || found.units.contains_key(*unit) || text.contains(&format!("u\t{unit}\t"))
            {
                continue;
            }
            let ran = self
                .fx
                .run(&Cmd::new("systemctl", &["is-enabled", unit]))
                .map_err(at(Path::new("systemctl")))?;
            let state = String::from_utf8_lossy(&ran.stdout).trim().to_string();
            let state = if state.is_empty() {
                "not-found".to_string()
            } else {
                state
            };
            text.push_str(&format!("u\t{unit}\t{state}\n"));
        }
        let new = crate::effects::with_suffix(&index, ".sitec-new");
        self.fx
            .write(&new, text.as_bytes(), 0o644)
            .map_err(at(&new))?;
        self.fx.rename(&new, &index).map_err(at(&index))
    }

    /// Settles what a crash left: an unfinished switch is undone, an
    /// unfinished rollback finished; then a generation awaiting confirmation
    /// is rolled back when its deadline passed, or at boot whatever the
    /// deadline (a host never boots into an unconfirmed generation). Every
    /// activation runs this first, and so does the boot (`boot`).
    pub fn recover(&mut self, boot: bool) -> R<()> {
        // A boot sitec-boot did not judge (it was stopped before it
        // recorded the boot): judged now, and what awaits confirmation is
        // rolled back as at boot, since the host restarted.
        let mut restarted = boot;
        if !boot
            && self
                .fx
                .kind(&self.layout.booted())
                .map_err(at(&self.layout.booted()))?
                .is_some()
            && self.unjudged()
        {
            self.judge_this_boot()?;
            restarted = true;
        }
        if let Some(j) = self.state()?.journal {
            let failed = match j.kind {
                journal::Kind::Switch => self.transit(
                    j.to,
                    j.from,
                    j.to,
                    ("interrupted-rolled-back", "the switch did not finish"),
                    boot,
                )?,
                journal::Kind::Rollback => self.transit(
                    j.from,
                    j.to,
                    j.from,
                    ("rolled-back", &format!("rollback to {}", j.to)),
                    boot,
                )?,
                journal::Kind::Unconfirmed => self.transit(
                    j.from,
                    j.to,
                    j.from,
                    ("unconfirmed-rolled-back", "not confirmed"),
                    boot,
                )?,
                journal::Kind::BootUnconfirmed => self.transit(
                    j.from,
                    j.to,
                    j.from,
                    ("boot-unconfirmed-rolled-back", "its boot was not confirmed"),
                    boot,
                )?,
            };
            if failed {
                self.note(Note::Warn(format!(
                    "settling {} -> {}: an action failed (see the log)",
                    j.from, j.to
                )));
            }
        }
        if !boot && !self.expiring {
            self.expire_boot()?;
        }
        let Some(armed) = self.armed()? else {
            return Ok(());
        };
        if restarted || self.fx.now() >= armed.deadline {
            self.unconfirmed_rollback(armed, boot)?;
        }
        Ok(())
    }

    /// The generation awaiting confirmation.
    fn armed(&self) -> R<Option<Armed>> {
        let path = self.layout.armed();
        match self.fx.read(&path) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                Armed::parse(&text).map(Some).ok_or_else(|| {
                    Error::Usage(format!(
                        "{} is corrupt ('{}'): see {}/log and {}/generations",
                        path.display(),
                        text.trim_end(),
                        self.layout.state.display(),
                        self.layout.state.display()
                    ))
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(at(&path)(e)),
        }
    }

    /// Back from a generation nobody confirmed, journaled: finished, never
    /// undone, after a crash.
    fn unconfirmed_rollback(&mut self, armed: Armed, boot: bool) -> R<()> {
        let why = if boot {
            "the host restarted before it was confirmed"
        } else {
            "no confirmation before the deadline"
        };
        self.note(Note::Log(format!(
            "generation {} was not confirmed ({why}): rolling back to {}",
            armed.generation, armed.previous
        )));
        self.journal(Journal {
            from: armed.generation,
            to: armed.previous,
            kind: journal::Kind::Unconfirmed,
        })?;
        self.transit(
            armed.generation,
            armed.previous,
            armed.generation,
            ("unconfirmed-rolled-back", why),
            boot,
        )?;
        Ok(())
    }

    /// `armed` for generation `g` (back to `previous`), `timeout` seconds
    /// from now, synced; and its timer, a transient one of PID 1's on the
    /// monotonic clock.
    fn arm(&mut self, g: Gen, previous: Gen, timeout: u64) -> R<()> {
        let path = self.layout.armed();
        let armed = Armed {
            generation: g,
            previous,
            deadline: self.fx.now() + timeout,
        };
        // Its contents on disk before the rename, but not the state
        // directory: a sync of the directory here, in the middle of a
        // transition, would put `current`'s swap on disk before the links
        // and removals elsewhere that go with it (the crash simulation
        // finds a dangling link after a power loss). The journal is on
        // disk, and the result's sync puts everything there at once.
        let new = crate::effects::with_suffix(&path, ".sitec-new");
        self.fx
            .write(&new, armed.format().as_bytes(), 0o644)
            .map_err(at(&new))?;
        self.fx.sync_file(&new).map_err(at(&new))?;
        self.fx.rename(&new, &path).map_err(at(&path))?;
        // A timer of PID 1's on the monotonic clock, not a process of the
        // operator's session (which a session stop or the OOM killer takes
        // down) nor a sleep on the wall clock (which the new generation's
        // time synchronization may step back). It fires again a minute
        // after each run while the generation awaits. Each carries a token,
        // kept in armed.timer once it runs: a timer started again leaves
        // the one before with nothing to do. KillMode=process: a rollback's
        // ifup starts DHCP clients in the timer's service.
        // Unique among the timers this process started (a switch arms once
        // before its first change and again once its actions ran, within
        // the same second when they are quick) and unlike the one in
        // charge: systemd refuses a unit name that is still loaded.
        self.arms += 1;
        let held = self
            .fx
            .text(&crate::effects::with_suffix(&self.layout.armed(), ".timer"))
            .map(|t| t.trim().to_string())
            .unwrap_or_default();
        let mut token = format!("{g}-{}-{}", armed.deadline, self.arms);
        while token == held {
            self.arms += 1;
            token = format!("{g}-{}-{}", armed.deadline, self.arms);
        }
        let agent = self.layout.state.join("activate");
        let agent = agent.to_string_lossy();
        let timer = Cmd::new(
            "systemd-run",
            &[
                "--no-block",
                "--quiet",
                &format!("--unit=sitec-confirm-{token}"),
                &format!("--on-active={timeout}"),
                "--on-unit-inactive=60",
                "--timer-property=AccuracySec=1s",
                &format!(
                    "--property=RequiresMountsFor={}",
                    self.layout.state.display()
                ),
                "--property=KillMode=process",
                &format!("--description=sitec: generation {g}'s confirmation deadline"),
                &agent,
                "expire",
                &g.to_string(),
                &token,
            ],
        );
        let systemd = self.fx.systemd_running();
        let started = systemd && {
            let timer = timer.logged(&self.layout.state.join("log"), 60);
            let ran = self.fx.run(&timer).map_err(at(Path::new("systemd-run")))?;
            if !ran.success {
                self.note(Note::Warn(
                    "systemd-run could not start the confirmation's timer: a process waits instead"
                        .to_string(),
                ));
            }
            ran.success
        };
        if !started {
            // Without systemd (a container): a detached process, whose
            // output goes nowhere (a capture would wait for it).
            let wait = format!("sleep {timeout}; exec '{agent}' expire {g} {token}");
            let detached =
                Cmd::new("setsid", &["-f", "sh", "-c", &wait]).logged(Path::new("/dev/null"), 60);
            self.fx.run(&detached).map_err(at(Path::new("setsid")))?;
        }
        let path = crate::effects::with_suffix(&self.layout.armed(), ".timer");
        let new = crate::effects::with_suffix(&path, ".sitec-new");
        self.fx
            .write(&new, format!("{token}\n").as_bytes(), 0o644)
            .map_err(at(&new))?;
        self.fx.sync_file(&new).map_err(at(&new))?;
        self.fx.rename(&new, &path).map_err(at(&path))?;
        Ok(())
    }

    /// Keeps the generation awaiting confirmation (`g`: only that one).
    /// Whether one was confirmed.
    pub fn confirm(&mut self, g: Option<Gen>) -> R<bool> {
        self.prepare()?;
        self.recover(false)?;
        let Some(armed) = self.armed()? else {
            return Ok(false);
        };
        if g.is_some_and(|g| g != armed.generation) {
            return Ok(false);
        }
        let path = self.layout.armed();
        self.fx.remove(&path).map_err(at(&path))?;
        self.result(armed.generation, "confirmed")?;
        self.collect_after(armed.previous);
        Ok(true)
    }

    /// Lets go of old generations ([`crate::gc`]) once a transition is
    /// done: what it cannot remove is said, and the transition stands.
    pub(crate) fn collect_after(&mut self, previous: Gen) {
        match self.collect(previous) {
            Ok(gone) if gone.is_empty() => {}
            Ok(gone) => {
                let gone: Vec<String> = gone.iter().map(Gen::to_string).collect();
                self.note(Note::Log(format!(
                    "let go of generations {} (a host keeps the newest {} and every way back)",
                    gone.join(" "),
                    crate::gc::KEEP
                )));
            }
            Err(e) => self.note(Note::Warn(format!(
                "old generations were not all let go: {e}"
            ))),
        }
    }

    /// The confirmation timer of generation `g`: it runs on the monotonic
    /// clock, so its deadline is due when it fires, whatever the wall clock
    /// says; unless the generation was confirmed meanwhile, it is rolled
    /// back.
    pub fn expire(&mut self, g: Gen) -> R<()> {
        self.expire_by(g, None)
    }

    /// The timer with `token` (armed.timer names the one in charge; no
    /// token: run by hand, any is): another timer's deadline now leaves
    /// it nothing to do but settle a transition left in the middle.
    pub fn expire_by(&mut self, g: Gen, token: Option<&str>) -> R<()> {
        self.prepare()?;
        if let Some(token) = token {
            let path = crate::effects::with_suffix(&self.layout.armed(), ".timer");
            let current = self
                .fx
                .read(&path)
                .map(|b| String::from_utf8_lossy(&b).trim().to_string())
                .unwrap_or_default();
            if current != token {
                return self.recover(false);
            }
        }
        self.recover(false)?;
        match self.armed()? {
            Some(armed) if armed.generation == g => self.unconfirmed_rollback(armed, false),
            _ => Ok(()),
        }
    }

    fn prepare(&mut self) -> R<()> {
        for d in [
            self.layout.store(),
            self.layout.generations(),
            self.layout.results(),
        ] {
            self.fx.mkdir_all(&d, 0o755).map_err(at(&d))?;
        }
        Ok(())
    }

    /// Makes store copy `name` (received and sealed) the next generation
    /// and switches to it; with `confirm_within`, it awaits confirmation
    /// for that many seconds (armed before the first change, and again,
    /// counted anew, after the last). Returns its number.
    pub fn switch(&mut self, name: &str, confirm_within: Option<u64>) -> R<Gen> {
        let confirm = match confirm_within {
            Some(t) => Confirm::Await(t),
            None => Confirm::Never,
        };
        self.switch_with(name, confirm).map(|(g, _)| g)
    }

    /// As [`Agent::switch`], arming the confirmation as `confirm` says;
    /// returns the new generation and whether it awaits confirmation.
    pub fn switch_with(&mut self, name: &str, confirm: Confirm) -> R<(Gen, bool)> {
        self.prepare()?;
        self.recover(false)?;
        let state = self.state()?;
        let from = state.current.unwrap_or(Gen(0));
        let to = state.next();
        // The boot the host runs came up on what is live now: recorded
        // before the first switch, so that the next boot is judged even if
        // sitec-boot is stopped before it records that one.
        let booted = self.layout.booted();
        if self.fx.kind(&booted).map_err(at(&booted))?.is_none() {
            let id = self.boot_id();
            self.fx
                .write_durably(&booted, format!("{from} {id}\n").as_bytes(), 0o644)
                .map_err(at(&booted))?;
        }
        let bundle_gen = Generation::Bundle(self.index_of(&self.layout.store_copy(name))?);
        let store = self.layout.store_copy(name);
        self.step("backup")?;
        self.backup_paths(&bundle_gen, &store)?;
        if from.0 != 0 {
            let left = self.generation_of(from)?;
            self.keep_secrets(from, &left, crate::secrets::Source::Live)?;
        }
        self.keep_secrets(to, &bundle_gen, crate::secrets::Source::Staged(name))?;
        let link = self.layout.generation(to);
        self.fx
            .swap_link(&PathBuf::from(format!("../store/{name}")), &link)
            .map_err(at(&link))?;
        if let Some(exe) = self.guard.clone() {
            self.install_guard(&exe)?;
        }
        // Whether the network changes is known before any live change, so
        // the deadline is armed before the first action.
        let confirm_within = match confirm {
            Confirm::Never => None,
            Confirm::Await(t) => Some(t),
            Confirm::IfNetwork(t) => {
                let from_gen = self.generation_of(from)?;
                let repaired = self.repaired_of(from)?;
                let changes = decide::all_changes([
                    decide::file_changes(&from_gen, &bundle_gen),
                    decide::secret_changes(&from_gen, &bundle_gen, |p| {
                        self.secret_differs(from, to, p)
                    }),
                    decide::repaired_changes(&from_gen, &bundle_gen, &repaired),
                ]);
                changes.iter().any(|c| c.network).then_some(t)
            }
        };
        self.step("journal")?;
        self.journal(Journal {
            from,
            to,
            kind: journal::Kind::Switch,
        })?;
        if let Some(timeout) = confirm_within {
            self.arm(to, from, timeout)?;
        }
        if self.transition(from, to, false)? {
            // The staged secrets stay for another try.
            self.transit(
                to,
                from,
                to,
                ("failed-rolled-back", "an action failed"),
                false,
            )?;
            self.acted_on_repairs(from)?;
            return Err(Error::Failed {
                generation: to,
                back: from,
            });
        }
        self.step("confirm")?;
        match confirm_within {
            Some(timeout) => {
                self.arm(to, from, timeout)?;
                self.result(to, "awaiting-confirmation")?;
            }
            None => self.result(to, "switched")?,
        }
        let j = self.layout.journal();
        self.fx.remove(&j).map_err(at(&j))?;
        if confirm_within.is_none() {
            // On disk, with its result, before the switch is reported: a
            // power loss after it must not undo what the operator was told
            // is done.
            self.fx.sync_all().map_err(at(&self.layout.state))?;
        }
        self.acted_on_repairs(from)?;
        self.drop_staged(name)?;
        if confirm_within.is_none() {
            self.collect_after(from);
        }
        Ok((to, confirm_within.is_some()))
    }

    /// The operator's rollback to generation `to` (0: the host as sitec
    /// found it).
    pub fn rollback(&mut self, to: Gen) -> R<()> {
        self.prepare()?;
        self.recover(false)?;
        let state = self.state()?;
        let from = state.current.unwrap_or(Gen(0));
        if to.0 != 0 && !state.generations.contains_key(&to) {
            return Err(Error::State {
                path: self.layout.generation(to),
                why: "no such generation".to_string(),
            });
        }
        self.journal(Journal {
            from,
            to,
            kind: journal::Kind::Rollback,
        })?;
        if self.transit(
            from,
            to,
            from,
            ("rolled-back", &format!("rollback to {to} by the operator")),
            false,
        )? {
            return Err(Error::ActionsFailed(format!(
                "rolled back from generation {from} to {to}, but some of its actions failed: see {}/log",
                self.layout.state.display()
            )));
        }
        Ok(())
    }
}
