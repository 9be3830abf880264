//! Runs a command of the command line against the host, and says what
//! came of it as data: lines for the operator, notes for the log, the
//! exit. The lock is `main`'s (a process's), taken before.

use std::path::Path;

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
}

/// How a command ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub lines: Vec<Line>,
    /// For the log.
    pub log: Vec<String>,
    pub exit: Exit,
}

/// Runs `command` (its lock already held, when it takes one).
pub fn execute<F: Effects>(fx: &mut F, layout: &Layout, command: &Command, busy: bool) -> Outcome {
    let mut agent = Agent::new(fx, layout.clone());
    let result = run(&mut agent, layout, command, busy);
    let mut lines = Vec::new();
    let mut log = Vec::new();
    for note in std::mem::take(&mut agent.notes) {
        match note {
            Note::Warn(w) => {
                log.push(format!("warning: {w}"));
                lines.push(Line::Warn(format!("warning: {w}")));
            }
            Note::Log(l) => log.push(l),
        }
    }
    let exit = match result {
        Ok(said) => {
            lines.extend(said.into_iter().map(Line::Say));
            Exit::Ok
        }
        Err(e) => {
            log.push(format!("error: {e}"));
            lines.push(Line::Warn(e.to_string()));
            e.exit()
        }
    };
    if command.changes()
        && let Err(e) = crate::status::write_prometheus(agent.fx, layout)
    {
        log.push(format!("warning: status.prom not written: {e}"));
    }
    Outcome { lines, log, exit }
}

fn run<F: Effects>(
    agent: &mut Agent<'_, F>,
    layout: &Layout,
    command: &Command,
    busy: bool,
) -> Result<Vec<String>, Error> {
    match command {
        Command::Hash { dir } => Ok(vec![crate::bundle::hash(&*agent.fx, dir)?]),
        Command::Status { generation } => {
            crate::status::status(&*agent.fx, layout, busy, *generation)
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
        Command::Expire { generation } => {
            agent.expire(*generation)?;
            Ok(Vec::new())
        }
        Command::Boot => {
            agent.boot()?;
            let live = agent.state()?.current.unwrap_or(Gen(0));
            agent
                .notes
                .push(Note::Log(format!("boot: on generation {live}")));
            Ok(Vec::new())
        }
        Command::BootExpire => {
            agent.boot_expire()?;
            Ok(Vec::new())
        }
        Command::ConfirmBoot { name } => Ok(vec![agent.confirm_boot(name.as_deref())?]),
        Command::Receive { name } => {
            agent.recover(false)?;
            Ok(vec![agent.receive(name)?])
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
            .generations
            .keys()
            .rev()
            .filter(|g| **g < from)
            .find(|g| {
                g.0 == 0
                    || state
                        .results
                        .get(g)
                        .is_some_and(|r| !r.ends_with("rolled-back"))
            })
            .copied()
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
    agent
        .notes
        .push(Note::Log(format!("rollback from {from} to {to} requested")));
    agent.rollback(to)?;
    Ok(vec![format!("rolled back from generation {from} to {to}")])
}
