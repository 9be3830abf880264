//! Runs a command of the command line against the host, and says what
//! came of it as data: lines for the operator, notes for the log, the
//! exit. The lock is `main`'s (a process's), taken before.

use std::path::{Path, PathBuf};

use sitec_format::exit::Exit;

use crate::actions::Note;
use crate::cli::Command;
use crate::effects::Effects;
use crate::host::Error;
use crate::index::Gen;
use crate::layout::Layout;
use crate::transition::Agent;

/// What a command said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line {
    /// For the operator, on stdout.
    Say(String),
    /// A warning or the error, on stderr.
    Warn(String),
    /// What a tool or a check listed, on stderr as it is.
    Listed(String),
}

/// How a command ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub lines: Vec<Line>,
    /// For the log.
    pub log: Vec<String>,
    pub exit: Exit,
}

/// What a command knows of the process it runs in.
#[derive(Clone, Debug, Default)]
pub struct Env {
    /// `SSH_CONNECTION`: where the operator's session came from and
    /// arrived (what sshd's check is asked about).
    pub ssh_connection: Option<String>,
    pub pid: u32,
    /// Where a check keeps its scratch files (`$TMPDIR`, else /tmp).
    pub tmp: PathBuf,
    /// Whether an activation holds the lock now.
    pub busy: bool,
    /// This agent's executable: a switch makes it the host's.
    pub exe: Option<PathBuf>,
    /// Another pull holds the pull lock.
    pub another_pull: bool,
    /// Test-only hooks (SITEC_TEST_PAUSE_AT, SITEC_TEST_PAUSE_FILE,
    /// SITEC_TEST_FAIL_AT).
    pub hooks: crate::transition::Hooks,
}

/// What a command says, as it says it: each line goes to `stream` at
/// once (a switch says where it goes before its transition, which may
/// cut the session off) and is kept for the outcome.
pub struct Said<'s> {
    pub lines: Vec<Line>,
    pub log: Vec<String>,
    stream: &'s mut dyn FnMut(&Line),
}

impl Said<'_> {
    fn line(&mut self, l: Line) {
        (self.stream)(&l);
        self.lines.push(l);
    }

    /// The agent's notes so far, in order.
    fn notes(&mut self, notes: Vec<Note>) {
        for note in notes {
            match note {
                // Logged when it was said.
                Note::Warn(w) => self.line(Line::Warn(format!("warning: {w}"))),
                Note::Log(l) => self.log.push(l),
                Note::Say(l) => self.line(Line::Say(l)),
            }
        }
    }
}

/// Runs `command` (its lock already held, when it takes one); each line
/// it says goes to `stream` as it is said.
pub fn execute<F: Effects>(
    fx: &mut F,
    layout: &Layout,
    command: &Command,
    env: &Env,
    stream: &mut dyn FnMut(&Line),
) -> Outcome {
    let mut agent = Agent::new(fx, layout.clone());
    agent.hooks = env.hooks.clone();
    let mut said = Said {
        lines: Vec::new(),
        log: Vec::new(),
        stream,
    };
    let result = run(&mut agent, layout, command, env, &mut said);
    let result = match result {
        Err(e) if agent.transitioning => settle_after(&mut agent, e),
        r => r,
    };
    said.notes(std::mem::take(&mut agent.notes));
    let exit = match result {
        Ok(lines) => {
            for l in lines {
                said.line(Line::Say(l));
            }
            Exit::Ok
        }
        Err(Error::Drifted(lines)) => {
            for l in lines {
                said.line(Line::Say(l));
            }
            Exit::Drifted
        }
        Err(e) => {
            if let Error::RefusedListing { listed, .. } = &e {
                for l in listed {
                    said.line(Line::Listed(l.clone()));
                }
            }
            said.log.push(format!("error: {e}"));
            said.line(Line::Warn(e.to_string()));
            e.exit()
        }
    };
    if command.changes()
        && let Err(e) = crate::status::write_prometheus(agent.fx, layout)
    {
        said.log
            .push(format!("warning: status.prom not written: {e}"));
    }
    Outcome {
        lines: said.lines,
        log: said.log,
        exit,
    }
}

fn run<F: Effects>(
    agent: &mut Agent<'_, F>,
    layout: &Layout,
    command: &Command,
    env: &Env,
    said: &mut Said,
) -> Result<Vec<String>, Error> {
    match command {
        Command::Hash { dir } => Ok(vec![crate::bundle::hash(&*agent.fx, dir)?]),
        Command::Status { generation } => {
            let mut boot: Vec<String> = agent.say_boot()?.into_iter().collect();
            boot.extend(agent.say_reboot());
            boot.extend(agent.say_pull());
            crate::status::status(&*agent.fx, layout, env.busy, *generation, boot)
        }
        Command::List => crate::status::list(&*agent.fx, layout),
        Command::Settle => {
            agent.recover(false)?;
            let live = agent.state()?.current.unwrap_or(Gen(0));
            Ok(vec![format!("settled: generation {live} is live")])
        }
        Command::Confirm { generation } => {
            if agent.confirm(*generation)? {
                let g = generation.unwrap_or(agent.state()?.current.unwrap_or(Gen(0)));
                return Ok(vec![format!("generation {g} confirmed")]);
            }
            let state = agent.state()?;
            let g = generation.unwrap_or(state.current.unwrap_or(Gen(0)));
            let result = state
                .results
                .get(&g)
                .cloned()
                .unwrap_or_else(|| "unknown".to_string());
            if result.ends_with("rolled-back") {
                return Err(Error::Unconfirmed(format!(
                    "generation {g} was already rolled back ({result})"
                )));
            }
            Ok(vec![format!(
                "generation {g} needs no confirmation ({result})"
            )])
        }
        Command::Rollback { to } => operator_rollback(agent, *to),
        Command::Expire { generation, token } => {
            agent.expire_by(*generation, token.as_deref())?;
            Ok(Vec::new())
        }
        Command::Boot => {
            agent.boot()?;
            let live = agent.state()?.current.unwrap_or(Gen(0));
            agent.note(Note::Log(format!("boot: on generation {live}")));
            Ok(Vec::new())
        }
        Command::BootExpire => {
            agent.boot_expire()?;
            Ok(Vec::new())
        }
        Command::ConfirmBoot { name } => Ok(vec![agent.confirm_boot(name.as_deref())?]),
        Command::Check { bundle, stand_ins } => check(agent, bundle, *stand_ins, env),
        Command::Switch { .. } => switch(agent, command, env, said),
        Command::Plan { name, index } => plan(agent, name, index.as_deref()),
        Command::Drift => drift(agent),
        Command::Pull | Command::PullApply => {
            let exe = env
                .exe
                .clone()
                .unwrap_or_else(|| layout.state.join("activate"));
            if *command == Command::Pull {
                agent.pull(&exe, env.another_pull)?;
            } else {
                agent.pull_apply(&exe)?;
            }
            Ok(Vec::new())
        }
        Command::Receive { name } => {
            agent.recover(false)?;
            // Into the log: push reads rsync's count from what the transfer
            // prints, so receive prints nothing on stdout.
            let said = agent.receive(name)?;
            agent.note(Note::Log(said));
            Ok(Vec::new())
        }
    }
}

/// The operator's rollback: to N, or to the newest generation before the
/// live one that was live and kept. Refused before anything changes when
/// the target's store copy was changed on the host, or a secret it (or
/// the generation it leaves) writes would go into a directory that is not
/// root's alone.
fn operator_rollback<F: Effects>(
    agent: &mut Agent<'_, F>,
    to: Option<Gen>,
) -> Result<Vec<String>, Error> {
    agent.recover(false)?;
    let state = agent.state()?;
    let Some(from) = state.current else {
        return Err(Error::Usage(
            "nothing to roll back: no generation is active".to_string(),
        ));
    };
    let to = match to {
        Some(g) => g,
        None => state
            .rollback_target(from)
            .ok_or_else(|| Error::Usage(format!("no generation before {from} to roll back to")))?,
    };
    if to.0 != 0 && !state.generations.contains_key(&to) {
        return Err(Error::Usage(format!("no generation {to} to roll back to")));
    }
    if to == from {
        return Ok(vec![format!("already on generation {to}")]);
    }
    let copy = agent.layout.generation(to);
    if to.0 != 0 && !crate::bundle::intact(&*agent.fx, &copy) {
        return Err(Error::Refused(format!(
            "generation {to}'s copy in {} was changed on the host since it was pushed: push its bundle again to repair it, or roll back to another generation",
            copy.display()
        )));
    }
    for g in [to, from] {
        let kept = agent.layout.kept_secrets(g);
        for p in crate::secrets::files_under(&*agent.fx, &kept)? {
            let dir = p.parent().unwrap_or(Path::new("/"));
            if let Some(why) = crate::secrets::unsafe_dir(&*agent.fx, dir) {
                return Err(Error::Refused(format!(
                    "the rollback to generation {to} would write secret {}, which is in {why}",
                    p.display()
                )));
            }
        }
    }
    agent.note(Note::Log(format!("rollback from {from} to {to} requested")));
    agent.rollback(to)?;
    Ok(vec![format!("rolled back from generation {from} to {to}")])
}

/// `check [--stand-ins] NAME|DIR`: the bundle (a store copy, or a
/// directory off the host) and what the host must be, then each artifact
/// through its daemon's parser. Off a managed host (`--stand-ins`), the
/// machine that checks keeps nothing: no secrets, no state, nothing
/// written outside the check's scratch directory.
fn check<F: Effects>(
    agent: &mut Agent<'_, F>,
    bundle: &crate::cli::Bundle,
    stand_ins: bool,
    env: &Env,
) -> Result<Vec<String>, Error> {
    let (dir, _, decrypted) = checked(agent, bundle, stand_ins, env)?;
    // A check leaves no plaintext behind (the switch decrypts again).
    agent.drop_decrypted(&decrypted)?;
    let hash = crate::bundle::hash(&*agent.fx, &dir)?;
    Ok(vec![format!("bundle {hash} passes its checks")])
}

/// Runs every check of `check`; the bundle's directory, its store name,
/// and the secrets decrypted for it (left for a switch; dropped on a
/// refusal).
fn checked<F: Effects>(
    agent: &mut Agent<'_, F>,
    bundle: &crate::cli::Bundle,
    stand_ins: bool,
    env: &Env,
) -> Result<(PathBuf, Option<String>, Vec<PathBuf>), Error> {
    use crate::effects::EffectsExt as _;
    let (dir, name, sealed) = match bundle {
        crate::cli::Bundle::Dir(d) => (d.clone(), None, false),
        crate::cli::Bundle::Store(n) => {
            let d = agent.layout.store_copy(n);
            if !agent.fx.exists(&d) {
                return Err(Error::Usage(format!(
                    "no bundle {n} in {} (push copies it there)",
                    agent.layout.store().display()
                )));
            }
            (d, Some(n.clone()), true)
        }
    };
    let index =
        crate::bundle::index_of(&*agent.fx, &dir).map_err(|f| Error::Refused(f.describe(&dir)))?;
    // Where the bundle's paths would go is the host's state, whatever
    // this check keeps (off the host, a scratch directory).
    let host_state = Path::new(crate::layout::HOST_STATE);
    crate::check::shape(&*agent.fx, &dir, &index, host_state, sealed)?;
    crate::check::protocol(&index)?;
    crate::check::system(agent.fx, &index)?;
    let mut decrypted = Vec::new();
    if !stand_ins {
        let name = name.clone().unwrap_or_default();
        decrypted = agent.decrypt_secrets(&dir, &name, &index)?;
        // The units the actions restart or the states enable, asked once.
        let mut units: std::collections::BTreeMap<String, bool> = index
            .files
            .values()
            .flat_map(|f| f.actions.iter())
            .filter_map(|a| match a {
                sitec_format::Action::Restart(u) | sitec_format::Action::Reload(u) => {
                    Some((u.clone(), false))
                }
                _ => None,
            })
            .chain(index.units.keys().map(|u| (u.clone(), false)))
            .collect();
        let systemd = agent.fx.systemd_running();
        if systemd {
            for (u, exists) in units.iter_mut() {
                *exists = unit_exists(&mut *agent.fx, u);
            }
        }
        let checked = agent.check_secrets(&name, &index).and_then(|()| {
            crate::check::host_needs(&*agent.fx, &dir, &index, systemd, |u| {
                units.get(u).copied().unwrap_or(false)
            })
        });
        if let Err(e) = checked {
            agent.drop_decrypted(&decrypted)?;
            return Err(e);
        }
    }
    let scratch = env.tmp.join(format!("sitec-check.{}", env.pid));
    agent
        .fx
        .remove_all(&scratch)
        .map_err(crate::host::at(&scratch))?;
    agent
        .fx
        .mkdir_all(&scratch, 0o700)
        .map_err(crate::host::at(&scratch))?;
    let cx = crate::validate::Context {
        stand_ins,
        scratch: scratch.clone(),
        index: &index,
        staged: agent.layout.staged_secrets(name.as_deref().unwrap_or("")),
        ssh_connection: env.ssh_connection.clone(),
        pid: env.pid,
        netns: std::cell::Cell::new(false),
    };
    let mut verdict = Ok(());
    for (path, f) in &index.files {
        let Some(v) = f.validator else {
            continue;
        };
        let tool = crate::validate::tool(v);
        if agent.fx.which(tool).is_none() {
            verdict = Err(Error::Refused(format!(
                "{path}: cannot validate, {tool} is not installed"
            )));
            break;
        }
        match crate::validate::validate(agent.fx, &cx, v, &dir.join(path), path) {
            Ok(Ok(())) => agent.note(Note::Say(format!("validated {path} {}", v.as_str()))),
            Ok(Err(said)) => {
                verdict = Err(Error::RefusedListing {
                    listed: said.lines().map(str::to_string).collect(),
                    why: format!("{path}: rejected by {}", v.as_str()),
                });
                break;
            }
            Err(e) => {
                verdict = Err(e);
                break;
            }
        }
    }
    // The namespace goes whatever the validators did.
    cx.finish(agent.fx)?;
    agent
        .fx
        .remove_all(&scratch)
        .map_err(crate::host::at(&scratch))?;
    if let Err(e) = verdict {
        agent.drop_decrypted(&decrypted)?;
        return Err(e);
    }
    Ok((dir, name, decrypted))
}

/// `switch`: checks the store copy NAME and the host, then makes it the
/// next generation, awaiting confirmation when a change can cut the
/// operator off (or always, for pull mode); this agent becomes the
/// host's.
fn switch<F: Effects>(
    agent: &mut Agent<'_, F>,
    command: &Command,
    env: &Env,
    out: &mut Said,
) -> Result<Vec<String>, Error> {
    let Command::Switch {
        name,
        confirm_timeout,
        action_timeout,
        await_confirmation,
        pushed_at,
        release,
    } = command
    else {
        unreachable!("a switch")
    };
    if let Some(t) = action_timeout {
        agent.action_timeout = *t;
    }
    agent.guard = env.exe.clone();
    // A pulled release a push overtook while its apply waited (for this
    // lock, say): older than what the push deployed.
    if let Some(s) = release
        && let Some(p) = agent.pushed_since(*s)
    {
        return Err(Error::Refused(p));
    }
    agent.note(Note::Log(format!("switch to {name} begins")));
    agent.recover(false)?;
    if let Some(a) = crate::armed::Armed::parse(
        &agent
            .fx
            .read(&agent.layout.armed())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default(),
    ) {
        return Err(Error::Busy(format!(
            "generation {} awaits confirmation: confirm or roll back first",
            a.generation
        )));
    }
    if let Some(b) = agent.boot_armed()? {
        return Err(Error::Busy(format!(
            "the boot on generation {} awaits confirmation: it came up on kernel files no confirmed boot had. Confirm it (push --confirm-boot), or it goes back to generation {} and reboots",
            b.generation,
            agent.boot_target()?
        )));
    }
    let gone = agent.layout.boot_rolled_back();
    crate::effects::EffectsExt::remove(agent.fx, &gone).map_err(crate::host::at(&gone))?;
    let bundle = crate::cli::Bundle::Store(name.clone());
    let (_, _, decrypted) = checked(agent, &bundle, false, env)?;
    let state = agent.state()?;
    let from = state.current.unwrap_or(Gen(0));
    let same = from.0 != 0
        && state
            .generations
            .get(&from)
            .is_some_and(|t| t.file_name().is_some_and(|n| n == name.as_str()));
    if same && !agent.new_secrets(from, name)? && !agent.repaired(name)? {
        // The agent may be new though (a push of the same bundle by a
        // newer sitec): it becomes the host's.
        if let Some(exe) = env.exe.clone() {
            agent.install_guard(&exe)?;
        }
        agent.drop_staged(name)?;
        if let Some(t) = pushed_at {
            agent.pushed_floor(*t);
        }
        return Ok(vec![format!(
            "already on generation {from} ({name}): nothing to do"
        )]);
    }
    let confirm = if *await_confirmation {
        crate::transition::Confirm::Await(*confirm_timeout)
    } else {
        crate::transition::Confirm::IfNetwork(*confirm_timeout)
    };
    let to = state.next();
    // Said before the transition, which may cut the session off.
    out.notes(std::mem::take(&mut agent.notes));
    out.line(Line::Say(format!(
        "switching generation {from} -> {to} ({name})"
    )));
    let mut said = Vec::new();
    let (to, awaiting) = match agent.switch_with(name, confirm) {
        Ok(r) => r,
        Err(e) => {
            agent.drop_decrypted(&decrypted)?;
            if let Error::Failed { back, .. } = &e {
                agent.note(Note::Say(format!(
                    "an action failed: rolling back to generation {back}"
                )));
                return Err(e);
            }
            return Err(e);
        }
    };
    said.push(match (awaiting, *await_confirmation) {
        (false, _) => format!("switched to generation {to}"),
        (true, true) => format!(
            "switched to generation {to}; confirm within {confirm_timeout} s or it rolls back"
        ),
        (true, false) => format!(
            "switched to generation {to}; network configuration changed: confirm within {confirm_timeout} s or it rolls back"
        ),
    });
    said.extend(agent.say_reboot());
    if let Some(t) = pushed_at {
        agent.pushed_floor(*t);
    }
    Ok(said)
}

/// Whether the host has a unit (a template instance through its
/// template).
fn unit_exists<F: Effects>(fx: &mut F, unit: &str) -> bool {
    let name = crate::actions::unit_file(unit);
    fx.run(&crate::effects::Cmd::new(
        "systemctl",
        &["list-unit-files", "--no-legend", &name],
    ))
    .is_ok_and(|r| r.success && !r.stdout.iter().all(u8::is_ascii_whitespace))
}

/// `plan [--stdin] NAME`: what a switch to store copy NAME (or, with its
/// index on stdin, to a bundle not on the host yet: push's dry run) would
/// change, the actions it would run, and whether it must be confirmed.
fn plan<F: Effects>(
    agent: &mut Agent<'_, F>,
    name: &str,
    index: Option<&str>,
) -> Result<Vec<String>, Error> {
    use crate::generation::Generation;
    let target = agent.layout.store_copy(name);
    let to = Generation::Bundle(match index {
        Some(text) => {
            sitec_format::Index::parse(text).map_err(|e| Error::Refused(format!("{name}: {e}")))?
        }
        None => match crate::bundle::index_of(&*agent.fx, &target) {
            Ok(index) => index,
            Err(crate::bundle::IndexFault::Missing) => {
                return Err(Error::Usage(format!(
                    "no bundle {name} in {} (push copies it there)",
                    agent.layout.store().display()
                )));
            }
            Err(fault) => return Err(Error::Refused(fault.describe(&target))),
        },
    });
    let state = agent.state()?;
    let from = match state.current {
        None => Generation::Bundle(sitec_format::Index::default()),
        Some(c) => {
            if c.0 != 0
                && state
                    .generations
                    .get(&c)
                    .is_some_and(|t| t.file_name().is_some_and(|n| n == name))
            {
                return Ok(vec![format!(
                    "already on generation {c}: nothing would change"
                )]);
            }
            agent.generation_of(c)?
        }
    };
    let changes = crate::decide::all_changes([crate::decide::file_changes(&from, &to)]);
    let mut said: Vec<String> = changes
        .iter()
        .map(|c| format!("  changed {}", c.path))
        .collect();
    said.extend(
        crate::decide::ordered_actions(&changes)
            .iter()
            .map(|a| format!("  action {a}")),
    );
    if changes.iter().any(|c| c.network) {
        said.push(
            "  network configuration changes: the switch must be confirmed or it rolls back"
                .to_string(),
        );
    }
    Ok(said)
}

/// `drift`: whether the host still is its live generation: the store copy
/// still hashes to its BUNDLE (the managed files are links into it, so an
/// edit of /etc/X edits it), and every managed path is still sitec's
/// link. First line `generation N NAME`; then one line per problem.
fn drift<F: Effects>(agent: &mut Agent<'_, F>) -> Result<Vec<String>, Error> {
    let state = agent.state()?;
    let Some(c) = state.current else {
        return Ok(vec!["generation none ".to_string()]);
    };
    let name = state
        .generations
        .get(&c)
        .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let mut said = vec![format!("generation {c} {name}")];
    if c.0 == 0 {
        return Ok(said);
    }
    said.extend(agent.say_reboot());
    if let Some(line) = agent.say_boot()? {
        said.push(line);
    }
    said.extend(agent.say_pull());
    let dir = agent.layout.generation(c);
    let mut problems = Vec::new();
    let want = agent
        .fx
        .read(&dir.join("BUNDLE"))
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    if crate::bundle::hash(&*agent.fx, &dir)? != want {
        problems.push(format!(
            "modified: files of generation {c} were edited on the host"
        ));
    }
    if let crate::generation::Generation::Bundle(index) = agent.generation_of(c)? {
        for p in index.files.keys() {
            let host = Path::new("/").join(p);
            let link = agent.layout.through_current(Path::new(p));
            if agent.fx.read_link(&host).ok().as_deref() != Some(link.as_path()) {
                problems.push(format!("replaced: /{p} is no longer sitec's link"));
            }
        }
    }
    if problems.is_empty() {
        return Ok(said);
    }
    said.extend(problems);
    Err(Error::Drifted(said))
}

/// A transition stopped by an error of its own (a write that failed, a
/// full disk) is settled at once, as the next activation would: a switch
/// undone, a rollback finished; if that fails too, the journal is left for
/// the next activation or the boot.
fn settle_after<F: Effects>(agent: &mut Agent<'_, F>, e: Error) -> Result<Vec<String>, Error> {
    if !matches!(e, Error::Io { .. } | Error::State { .. } | Error::Usage(_)) {
        return Err(e);
    }
    agent.transitioning = false;
    if !agent.fx.exists(&agent.layout.journal()) {
        return Err(e);
    }
    agent.note(Note::Warn(format!(
        "the transition stopped at an error ({e}): settling it now"
    )));
    // If that fails too, the journal stays for the next activation or the
    // boot.
    agent.recover(false)?;
    let live = agent.state()?.current.unwrap_or(Gen(0));
    Err(Error::ActionsFailed(format!(
        "settled: generation {live} is live"
    )))
}
