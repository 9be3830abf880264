//! The host's state, read once from the state directory.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::armed::Armed;
use crate::effects::{Effects, EffectsExt as _, Kind};
use crate::index::Gen;
use crate::journal::{Corrupt, Journal};
use crate::layout::Layout;

#[derive(Debug)]
pub enum Error {
    /// Reading or changing `path` failed.
    Io { path: PathBuf, source: io::Error },
    /// The journal is not one the agent wrote: nothing is changed.
    Journal(Corrupt),
    /// `current` or a generation link is not what the agent makes.
    State { path: PathBuf, why: String },
    /// An action failed (or a unit could not be set) going to or from
    /// `generation`: the host is back on `back`, whole.
    Failed { generation: Gen, back: Gen },
    /// The command cannot be run as asked (exit 2, as a usage error).
    Usage(String),
    /// The host is where it was asked to go, but actions failed on the
    /// way (an operator's rollback).
    ActionsFailed(String),
    /// Refused before anything changed.
    Refused(String),
    /// The host is not what its live generation says (`drift`): what
    /// differs, for stdout.
    Drifted(Vec<String>),
    /// Refused before anything changed, for what `listed` says (each line
    /// shown before `why`, as the tool or the check said it).
    RefusedListing { listed: Vec<String>, why: String },
    /// Not confirmed in time, and rolled back.
    Unconfirmed(String),
    /// A generation or a boot awaits confirmation, or another activation
    /// runs.
    Busy(String),
}

impl Error {
    /// The documented exit code of the error.
    pub fn exit(&self) -> sitec_format::exit::Exit {
        use sitec_format::exit::Exit;
        match self {
            Error::Io { .. } | Error::Journal(_) | Error::State { .. } | Error::Usage(_) => {
                Exit::Error
            }
            Error::Failed { .. } | Error::ActionsFailed(_) => Exit::RolledBack,
            Error::Refused(_) | Error::RefusedListing { .. } => Exit::Refused,
            Error::Drifted(_) => Exit::Drifted,
            Error::Unconfirmed(_) => Exit::Unconfirmed,
            Error::Busy(_) => Exit::Busy,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Error::Journal(c) => write!(f, "{c}: nothing was changed"),
            Error::State { path, why } => write!(f, "{}: {why}", path.display()),
            Error::Usage(why)
            | Error::Refused(why)
            | Error::Unconfirmed(why)
            | Error::Busy(why)
            | Error::RefusedListing { why, .. } => f.write_str(why),
            Error::Failed { generation, back } => write!(
                f,
                "generation {generation} failed and was rolled back to {back}"
            ),
            Error::ActionsFailed(why) => f.write_str(why),
            Error::Drifted(lines) => f.write_str(&lines.join("\n")),
        }
    }
}

impl std::error::Error for Error {}

/// `map_err` for an I/O error at `path`.
pub fn at(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Everything the transitions decide on, as the state directory holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostState {
    /// The live generation; `None` before the first switch.
    pub current: Option<Gen>,
    /// Each generation and the store copy (or `../backup`) it links to.
    pub generations: BTreeMap<Gen, PathBuf>,
    /// The transition in progress.
    pub journal: Option<Journal>,
    /// How each generation ended, as its result file says.
    pub results: BTreeMap<Gen, String>,
    /// The generation awaiting confirmation (`armed`).
    pub armed: Option<Armed>,
    /// The generation this boot came up on, awaiting its confirmation
    /// (`boot-armed`'s first word).
    pub boot_awaiting: Option<Gen>,
    /// How far a pulled release got (`pull/pending`, `pull/applying`).
    pub pull: Option<PullStep>,
}

/// A pulled release between its fetch and its end, by its serial.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PullStep {
    /// Fetched and verified, waiting for the apply.
    Pending(u64),
    /// Being applied (found by the next pull: rejected).
    Applying(u64),
}

/// Where the host is in the protocol's state diagram (docs/host-protocol.md,
/// "the states of a host"): one of these at any time, read from the state
/// files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Generation N is live and nothing awaits (0: the host as sitec
    /// found it, or before the first switch).
    Live(Gen),
    /// Generation M awaits confirmation; it rolls back at the deadline.
    Awaiting(Gen),
    /// A transition from A to B was interrupted: the next activation
    /// settles it.
    InTransition { from: Gen, to: Gen },
    /// This boot, on generation M, came up on kernel files no confirmed
    /// boot had and awaits confirmation.
    AwaitingBoot(Gen),
    /// A pulled release (by its serial) waits for the apply.
    Pending(u64),
    /// A pulled release (by its serial) is being applied.
    Applying(u64),
}

impl Phase {
    /// The names the diagram gives the states.
    pub const NAMES: [&'static str; 6] = [
        "LIVE",
        "AWAITING",
        "IN-TRANSITION",
        "AWAITING-BOOT",
        "PENDING",
        "APPLYING",
    ];

    pub fn name(&self) -> &'static str {
        match self {
            Phase::Live(_) => Self::NAMES[0],
            Phase::Awaiting(_) => Self::NAMES[1],
            Phase::InTransition { .. } => Self::NAMES[2],
            Phase::AwaitingBoot(_) => Self::NAMES[3],
            Phase::Pending(_) => Self::NAMES[4],
            Phase::Applying(_) => Self::NAMES[5],
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Phase::Live(g) | Phase::Awaiting(g) | Phase::AwaitingBoot(g) => {
                write!(f, "{}({g})", self.name())
            }
            Phase::InTransition { from, to } => write!(f, "{}({from} → {to})", self.name()),
            Phase::Pending(r) | Phase::Applying(r) => write!(f, "{}({r})", self.name()),
        }
    }
}

impl HostState {
    pub fn read(fx: &impl Effects, layout: &Layout) -> Result<HostState, Error> {
        let current = match fx.kind(&layout.current()).map_err(at(&layout.current()))? {
            None => None,
            Some(Kind::Link) => {
                let t = fx
                    .read_link(&layout.current())
                    .map_err(at(&layout.current()))?;
                Some(generation_named(&t).ok_or_else(|| Error::State {
                    path: layout.current(),
                    why: format!("links to {}, not to generations/N", t.display()),
                })?)
            }
            Some(_) => {
                return Err(Error::State {
                    path: layout.current(),
                    why: "is not a symbolic link".to_string(),
                });
            }
        };
        let mut generations = BTreeMap::new();
        if fx
            .kind(&layout.generations())
            .map_err(at(&layout.generations()))?
            == Some(Kind::Dir)
        {
            for name in fx
                .list(&layout.generations())
                .map_err(at(&layout.generations()))?
            {
                let Some(g) = name.to_str().and_then(number) else {
                    continue;
                };
                // Read without the lock by status, list, drift and pull: a
                // generation let go of meanwhile (crate::gc) is no error.
                let link = layout.generation(g);
                if fx.kind(&link).map_err(at(&link))? == Some(Kind::Link) {
                    match fx.read_link(&link) {
                        Ok(t) => {
                            generations.insert(g, t);
                        }
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => return Err(at(&link)(e)),
                    }
                }
            }
        }
        let journal = match fx.read(&layout.journal()) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                Some(Journal::parse(&text).map_err(|_| {
                    Error::Usage(format!(
                        "{} is corrupt ('{}'): nothing was changed; see {}/log and {}/generations",
                        layout.journal().display(),
                        text.trim_end(),
                        layout.state.display(),
                        layout.state.display()
                    ))
                })?)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(at(&layout.journal())(e)),
        };
        let mut results = BTreeMap::new();
        if fx.kind(&layout.results()).map_err(at(&layout.results()))? == Some(Kind::Dir) {
            for name in fx.list(&layout.results()).map_err(at(&layout.results()))? {
                let Some(g) = name.to_str().and_then(number) else {
                    continue;
                };
                let path = layout.result(g);
                match fx.read(&path) {
                    Ok(text) => {
                        results.insert(g, String::from_utf8_lossy(&text).trim().to_string());
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(at(&path)(e)),
                }
            }
        }
        let armed = fx
            .text(&layout.armed())
            .and_then(|t| crate::armed::Armed::parse(&t));
        let boot_awaiting = fx
            .text(&layout.boot_armed())
            .and_then(|t| t.split_whitespace().next().and_then(number));
        // Each begins DIGEST SERIAL.
        let serial = |f: &str| {
            fx.text(&layout.pull().join(f)).map(|t| {
                t.split_whitespace()
                    .nth(1)
                    .and_then(|w| w.parse().ok())
                    .unwrap_or(0)
            })
        };
        let pull = match (serial("applying"), serial("pending")) {
            (Some(r), _) => Some(PullStep::Applying(r)),
            (None, Some(r)) => Some(PullStep::Pending(r)),
            (None, None) => None,
        };
        Ok(HostState {
            current,
            generations,
            journal,
            results,
            armed,
            boot_awaiting,
            pull,
        })
    }

    /// The state of the diagram the host is in. An interrupted transition
    /// comes first (every activation settles it before anything else),
    /// then a boot awaiting confirmation (a push is refused until it is
    /// confirmed), then a generation awaiting confirmation (a pulled
    /// release's included), then a pull.
    pub fn phase(&self) -> Phase {
        let live = self.current.unwrap_or(Gen(0));
        if let Some(j) = &self.journal {
            Phase::InTransition {
                from: j.from,
                to: j.to,
            }
        } else if let Some(g) = self.boot_awaiting {
            Phase::AwaitingBoot(g)
        } else if let Some(a) = self.armed {
            Phase::Awaiting(a.generation)
        } else {
            match self.pull {
                Some(PullStep::Applying(r)) => Phase::Applying(r),
                Some(PullStep::Pending(r)) => Phase::Pending(r),
                None => Phase::Live(live),
            }
        }
    }

    /// The number the next new generation gets.
    pub fn next(&self) -> Gen {
        Gen(self.generations.keys().next_back().map_or(0, |g| g.0) + 1)
    }

    /// Where the operator's rollback from `from` goes by default: the
    /// newest generation before it that was live and kept (not one rolled
    /// back), generation 0 at the latest.
    pub fn rollback_target(&self, from: Gen) -> Option<Gen> {
        self.generations
            .keys()
            .rev()
            .filter(|g| **g < from)
            .find(|g| {
                g.0 == 0
                    || self
                        .results
                        .get(g)
                        .is_some_and(|r| !r.ends_with("rolled-back"))
            })
            .copied()
    }
}

/// A generation number as state files and links write it: digits only.
pub(crate) fn number(s: &str) -> Option<Gen> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().map(Gen)
}

/// N of a `current` target `generations/N`.
fn generation_named(target: &Path) -> Option<Gen> {
    let rest = target.strip_prefix("generations").ok()?;
    number(rest.to_str()?)
}
