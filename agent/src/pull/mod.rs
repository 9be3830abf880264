//! Pull mode: the host fetches the release the operator signed for it,
//! verifies it against the signers its live generation names, fetches the
//! bundle and the agent the release names (each checked against its
//! signed hash), and applies it in a unit of its own: switched (checked
//! first) awaiting confirmation, confirmed by its own health checks or rolled
//! back at the deadline and rejected for good (unless only a release
//! server the generation before cannot reach either failed its health
//! checks: then it is taken up again, up to three applies).
//!
//! The activations a pull runs (receive, settle, switch, confirm,
//! confirm-boot) are the agent's own commands, run as commands of the
//! agent the release names: each takes the activation lock as an
//! operator's would, and a release's newer agent receives the bundle it
//! understands. Pulls take a lock of their own (`private/pull.lock`, taken
//! by `main`).
//!
//! Its state, in `pull/`: `serial` (`SERIAL DIGEST`: the release last
//! applied or rejected; no release with a serial not above it is taken),
//! `rejected` (the digest of each rejected release statement: never
//! applied again), `pending` (`DIGEST SERIAL HASH SIGNER AGENT KEY`: the
//! release fetched, for the apply, and the sha256 of the key that signed
//! it as the live generation named it), `applying` (`DIGEST SERIAL HASH
//! AGENT`: the release being applied; found at the next pull, the host
//! went down or the apply was cut off in it, and it is rejected),
//! `backoff` (`FAILURES NOT-BEFORE`: failures in a row, and the epoch
//! second before which no fetch is tried), `last` (`TIME WHAT`: the
//! outcome of the last pull, for status), `deferred` (`DIGEST COUNT`: the
//! applies in a row the release server failed, the last one's digest),
//! `pushed` (the operator's clock at the last push: no release signed
//! before it is taken), `fresh` (`UNTIL SERIAL`: the last valid freshness
//! statement of the release server; once one was seen, a server whose
//! statement expired, or that serves none, is refused). A failed fetch or a refused
//! release changes nothing and waits twice as long each time, up to eight
//! intervals.

pub mod fetch;
pub mod health;
pub mod release;

use std::path::{Path, PathBuf};

use sitec_format::Index;

use crate::actions::Note;
use crate::effects::{Cmd, Effects, EffectsExt as _, Kind, Ran};
use crate::host::{Error, at};
use crate::index::Gen;
use crate::transition::Agent;

type R<T> = Result<T, Error>;

/// The files of `pull/`.
pub const FILES: [&str; 9] = [
    "serial", "rejected", "pending", "applying", "backoff", "last", "deferred", "pushed", "fresh",
];

/// The `until` of a `pull/fresh` record (`UNTIL SERIAL`), as UTC.
fn until_of(record: &str) -> String {
    record
        .split_whitespace()
        .next()
        .and_then(|u| u.parse().ok())
        .map_or_else(|| "?".to_string(), crate::utc::utc)
}

/// A release file is at most this large.
const RELEASE_LIMIT: usize = 1 << 20;
/// A listing.
const LISTING_LIMIT: usize = 8 << 20;
/// A bundle file.
const FILE_LIMIT: usize = 64 << 20;
/// An agent.
const AGENT_LIMIT: usize = 16 << 20;

/// The live generation's pull mode, as its bundle says.
pub struct Mode {
    pub live: Gen,
    /// The live generation's bundle (`generations/N`).
    pub bundle: PathBuf,
    pub index: Index,
    pub url: String,
    pub interval: u64,
    pub confirm_timeout: u64,
    /// This host's name, as its store names say.
    pub host: String,
}

/// A release the host took up: what `pending` and `applying` record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Taken {
    pub digest: String,
    pub serial: u64,
    pub hash: String,
    pub agent: Option<String>,
    /// The host's agent (its sha256) before the apply began: what a
    /// rejection puts back if the apply's switch made the release's agent
    /// the host's (`None`: not known).
    pub prev: Option<String>,
}

impl Taken {
    fn short(&self) -> &str {
        &self.hash[..self.hash.len().min(12)]
    }

    /// `applying`'s record.
    fn record(&self) -> String {
        format!(
            "{} {} {} {} {}",
            self.digest,
            self.serial,
            self.hash,
            self.agent.as_deref().unwrap_or("-"),
            self.prev.as_deref().unwrap_or("-")
        )
    }

    /// `DIGEST SERIAL HASH SIGNER AGENT [KEY]` as `pending` holds it
    /// (`signed`; with the signer's name and the sha256 of its key, which
    /// earlier agents did not record), or `DIGEST SERIAL HASH [AGENT
    /// [PREV]]` as `applying` does (earlier agents wrote fewer words).
    /// `None` for anything else.
    fn parse(text: &str, signed: bool) -> Option<(Taken, Signer)> {
        let w: Vec<&str> = text.split_whitespace().collect();
        let (signer, agent, prev, key) = match (signed, w.len()) {
            (true, 5) => (w[3], w[4], "-", None),
            (true, 6) if sitec_format::is_sha256_hex(w[5]) => (w[3], w[4], "-", Some(w[5])),
            (false, 3) => ("", "-", "-", None),
            (false, 4) => ("", w[3], "-", None),
            (false, 5) => ("", w[3], w[4], None),
            _ => return None,
        };
        let named = |s: &str| match s {
            "-" => Some(None),
            s if sitec_format::is_sha256_hex(s) => Some(Some(s.to_string())),
            _ => None,
        };
        if !sitec_format::is_sha256_hex(w[0]) || !sitec_format::is_sha256_hex(w[2]) {
            return None;
        }
        let serial = w[1];
        if serial.is_empty() || serial.len() > 18 || !serial.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some((
            Taken {
                digest: w[0].to_string(),
                serial: serial.parse().ok()?,
                hash: w[2].to_string(),
                agent: named(agent)?,
                prev: named(prev)?,
            },
            Signer {
                name: signer.to_string(),
                key: key.map(str::to_string),
            },
        ))
    }
}

/// Who signed a pending release, as the live generation named them when
/// it was verified: the name, and the sha256 of the key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Signer {
    pub name: String,
    pub key: Option<String>,
}

impl Signer {
    /// Whether the live generation (`index`) still trusts this signer with
    /// the same key: a push may have revoked it since the release was
    /// verified.
    fn trusted_by(&self, index: &Index) -> bool {
        index.signers.get(&self.name).is_some_and(|k| {
            self.key
                .as_deref()
                .is_none_or(|h| h == sitec_format::sha256_hex(k.as_bytes()))
        })
    }
}

/// What the health checks of a pulled generation came to.
enum Health {
    Healthy,
    /// The operator confirmed it meanwhile.
    Confirmed,
    Failing(Fault),
}

/// Why a health check failed; `server`: only the release server failed it
/// (its own release could not be fetched, or did not verify), the units
/// and the deploy port were well.
#[derive(Clone, Debug, Default)]
struct Fault {
    why: String,
    server: bool,
}

impl Fault {
    fn host(why: impl Into<String>) -> Fault {
        Fault {
            why: why.into(),
            server: false,
        }
    }
}

/// What a release signed before the operator's last push is.
fn before_push(serial: u64, short: &str, pushed: u64) -> String {
    format!(
        "release {serial} ({short}) was signed before the last push to this host ({pushed}), and is older than what it deployed"
    )
}

/// How many applies in a row the release server may fail (their health
/// checks failing at the server alone, while the generation before
/// cannot reach it either) before a release is rejected all the same.
pub const SERVER_FAULTS: u32 = 3;

/// The command that runs the agent at `path` with `args`: `sh` for a
/// script (an agent from before the agent was a program), the program
/// itself otherwise.
pub fn agent_cmd(fx: &impl Effects, path: &Path, args: &[&str]) -> Cmd {
    let script = fx.read(path).is_ok_and(|b| b.starts_with(b"#!"));
    let path = path.display().to_string();
    if script {
        let mut all = vec![path.as_str()];
        all.extend(args);
        Cmd::new("sh", &all)
    } else {
        Cmd::new(&path, args)
    }
}

/// The last line a command said (its error, when it failed).
fn last_line(ran: &Ran) -> String {
    [&ran.stderr, &ran.stdout]
        .iter()
        .find_map(|b| {
            String::from_utf8_lossy(b)
                .lines()
                .rfind(|l| !l.trim().is_empty())
                .map(str::to_string)
        })
        .unwrap_or_default()
}

fn exit_of(ran: &Ran) -> String {
    ran.code.map_or("signal".to_string(), |c| c.to_string())
}

impl<F: Effects> Agent<'_, F> {
    fn pull_dir(&self) -> PathBuf {
        self.layout.pull()
    }

    fn pull_file(&self, name: &str) -> PathBuf {
        self.pull_dir().join(name)
    }

    /// Where a pull keeps its scratch files (root's alone).
    fn pull_work(&self) -> PathBuf {
        self.layout.private().join("pull")
    }

    /// The live generation's pull mode; refused on a host whose live
    /// generation is none, or has none.
    pub fn pull_mode(&self, command: &str) -> R<Mode> {
        let state = self.state()?;
        let live = match state.current {
            Some(g) if g.0 != 0 => g,
            other => {
                return Err(Error::Usage(format!(
                    "{command} needs a live generation that is a bundle (the host is on generation {})",
                    other.map_or("none".to_string(), |g| g.to_string())
                )));
            }
        };
        let bundle = self.layout.generation(live);
        let name = state
            .generations
            .get(&live)
            .and_then(|t| t.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !self.fx.exists(&bundle) {
            return Err(Error::Usage(format!(
                "generation {live} has no bundle in {}",
                self.layout.store().display()
            )));
        }
        let Ok(crate::generation::Generation::Bundle(index)) = self.generation_of(live) else {
            return Err(Error::Usage(format!(
                "generation {live}'s bundle has no index"
            )));
        };
        let value = |k: &str| index.pull.get(k).cloned().unwrap_or_default();
        let (url, interval) = (value("url"), value("interval"));
        let Ok(interval) = interval.parse::<u64>() else {
            return Err(Error::Usage(
                "this bundle has no pull mode (deploy.pull)".to_string(),
            ));
        };
        if url.is_empty() {
            return Err(Error::Usage(
                "this bundle has no pull mode (deploy.pull)".to_string(),
            ));
        }
        Ok(Mode {
            live,
            bundle,
            confirm_timeout: value("confirm_timeout").parse().unwrap_or(120),
            url,
            interval,
            host: name
                .split_once('-')
                .map(|(_, h)| h.to_string())
                .unwrap_or_default(),
            index,
        })
    }

    /// What the last pull came to: the log, the output, and `last`.
    fn pull_note(&mut self, what: &str) -> R<()> {
        self.note(Note::Log(format!("pull: {what}")));
        self.note(Note::Say(format!("pull: {what}")));
        let last = self.pull_file("last");
        let new = crate::effects::with_suffix(&last, ".new");
        let text = format!("{} {what}\n", crate::utc::utc(self.fx.now()));
        self.fx
            .write(&new, text.as_bytes(), 0o644)
            .map_err(at(&new))?;
        self.fx.rename(&new, &last).map_err(at(&last))
    }

    /// Writes pull state file `name` with one rename, synced.
    fn pull_state(&mut self, name: &str, text: &str) -> R<()> {
        let path = self.pull_file(name);
        self.fx
            .write_durably(&path, format!("{text}\n").as_bytes(), 0o644)
            .map_err(at(&path))
    }

    fn pull_text(&self, name: &str) -> Option<String> {
        self.fx.text(&self.pull_file(name))
    }

    fn pull_remove(&mut self, name: &str) -> R<()> {
        let path = self.pull_file(name);
        self.fx.remove(&path).map_err(at(&path))
    }

    /// The serial floor and the digest of the release that set it.
    fn applied(&self) -> (u64, String) {
        let text = self.pull_text("serial").unwrap_or_default();
        let mut w = text.split_whitespace();
        let serial = w.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        (serial, w.next().unwrap_or("").to_string())
    }

    /// A fetch or a release that failed: nothing changed; the next try
    /// waits twice as long as the last one, up to eight intervals.
    fn pull_failed(&mut self, m: &Mode, why: &str) -> R<()> {
        let failures = self
            .pull_text("backoff")
            .and_then(|t| {
                t.split_whitespace()
                    .next()
                    .and_then(|n| n.parse::<u64>().ok())
            })
            .unwrap_or(0)
            + 1;
        let mut wait = m.interval;
        let mut i = 1;
        while i < failures && wait < m.interval * 8 {
            wait *= 2;
            i += 1;
        }
        let now = self.fx.now();
        self.pull_state("backoff", &format!("{failures} {}", now + wait))?;
        self.pull_note(&format!(
            "{why} (the host keeps generation {}; next try in {wait} s)",
            m.live
        ))
    }

    /// Whether a fetch is due: no failure is waiting out its backoff (a
    /// wait longer than the longest backoff: the clock jumped back).
    fn pull_due(&self, m: &Mode) -> bool {
        let Some(not_before) = self.pull_text("backoff").and_then(|t| {
            t.split_whitespace()
                .nth(1)
                .and_then(|n| n.parse::<u64>().ok())
        }) else {
            return true;
        };
        let now = self.fx.now();
        now >= not_before || not_before > now + m.interval * 8
    }

    fn live_hash(&self, m: &Mode) -> String {
        self.fx
            .text(&m.bundle.join("BUNDLE"))
            .map(|t| t.trim().to_string())
            .unwrap_or_default()
    }

    fn host_agent_hash(&self) -> Option<String> {
        self.fx
            .read(&self.layout.state.join("activate"))
            .ok()
            .map(|b| sitec_format::sha256_hex(&b))
    }

    fn pull_applied(&mut self, t: &Taken, what: &str) -> R<()> {
        self.pull_state("serial", &format!("{} {}", t.serial, t.digest))?;
        // pending first: an `applying` left alone is decided again by the
        // next pull, a `pending` would be taken up again.
        self.pull_remove("pending")?;
        self.pull_remove("applying")?;
        self.pull_remove("deferred")?;
        self.pull_note(what)
    }

    fn pull_rejected(&mut self, m: &Mode, t: &Taken, why: &str) -> R<()> {
        // What its check decrypted goes with it.
        let staged = self
            .layout
            .staged_secrets(&format!("{}-{}", t.hash, m.host));
        self.fx.remove_all(&staged).map_err(at(&staged))?;
        // And so does its agent, if its switch made it the host's: the one
        // before is the host's again (an agent whose pull or boot is
        // broken must not stay to pull the next release).
        // Only when the apply changed it: the host's agent before the
        // apply is known (`prev`) and is not the release's.
        if let (Some(agent), Some(prev)) = (&t.agent, &t.prev)
            && prev != agent
            && self.host_agent_hash().as_ref() == Some(agent)
        {
            let kept = [
                self.layout.state.join("activate.prev"),
                self.layout.state.join("agents").join(prev),
            ]
            .into_iter()
            .find(|p| {
                self.fx
                    .read(p)
                    .is_ok_and(|b| &sitec_format::sha256_hex(&b) == prev)
            });
            match kept {
                Some(from) => {
                    let host = self.layout.state.join("activate");
                    let bytes = self.fx.read(&from).map_err(at(&from))?;
                    self.fx
                        .write_durably(&host, &bytes, 0o555)
                        .map_err(at(&host))?;
                    self.note(Note::Log(format!(
                        "pull: the agent before release {}'s is the host's again",
                        t.serial
                    )));
                }
                None => self.note(Note::Warn(format!(
                    "the agent before release {} ({prev}) is gone: release {}'s agent stays the host's",
                    t.serial, t.serial
                ))),
            }
        }
        let mut rejected = self.pull_text("rejected").unwrap_or_default();
        rejected.push_str(&t.digest);
        rejected.push('\n');
        let path = self.pull_file("rejected");
        self.fx
            .write_durably(&path, rejected.as_bytes(), 0o644)
            .map_err(at(&path))?;
        self.pull_state("serial", &format!("{} {}", t.serial, t.digest))?;
        // pending first: an `applying` left alone is decided again by the
        // next pull, a `pending` would be taken up again.
        self.pull_remove("pending")?;
        self.pull_remove("applying")?;
        self.pull_remove("deferred")?;
        self.pull_note(&format!(
            "release {} ({}) rejected: {why}",
            t.serial,
            t.short()
        ))
    }

    /// A release a push to this host overtook (signed before it): not
    /// applied, not rejected; the host waits for a newer one.
    fn pull_overtaken(&mut self, t: &Taken, pushed: u64) -> R<()> {
        self.pull_remove("pending")?;
        self.pull_remove("applying")?;
        self.pull_note(&format!(
            "{}: not applied; waiting for a release published after it",
            before_push(t.serial, t.short(), pushed)
        ))
    }

    /// A release applied when the host went down, or whose apply was cut
    /// off: rejected, so that a bundle that takes the host down is not
    /// tried again.
    fn pull_interrupted(&mut self, m: &Mode) -> R<()> {
        let Some(text) = self.pull_text("applying") else {
            return Ok(());
        };
        let Some((t, _)) = Taken::parse(&text, false) else {
            // Not one this agent wrote: nothing to reject by.
            return self.pull_remove("applying");
        };
        let on_it = self.live_hash(m) == t.hash;
        if on_it && self.fx.exists(&self.layout.armed()) {
            // Cut off in its health checks: the deadline decides (its
            // timer takes the host back, and the next pull rejects it).
            return Ok(());
        }
        if on_it {
            let what = format!(
                "release {} ({}) runs as generation {}: its apply was cut off after its confirmation",
                t.serial,
                t.short(),
                m.live
            );
            return self.pull_applied(&t, &what);
        }
        self.pull_rejected(
            m,
            &t,
            "the host went down, or its apply was cut off, while it applied it",
        )
    }

    /// Runs the agent at `agent` with `args`, its output captured.
    fn activation(&mut self, agent: &Path, args: &[&str]) -> R<Ran> {
        let cmd = agent_cmd(&*self.fx, agent, args);
        self.fx.run(&cmd).map_err(at(agent))
    }

    /// What the last pull came to, for `status` and `drift`.
    pub fn say_pull(&self) -> Option<String> {
        self.pull_text("last")
            .map(|t| format!("pull: {}", t.trim_end()))
    }

    /// `pull`: one pull (sitec-pull.service, on its timer). `exe` is this
    /// agent; `another` says another pull holds the pull lock.
    pub fn pull(&mut self, exe: &Path, another: bool) -> R<()> {
        let m = self.pull_mode("pull")?;
        if another {
            self.note(Note::Say("pull: another pull runs".to_string()));
            return Ok(());
        }
        let dir = self.pull_dir();
        self.fx.mkdir_all(&dir, 0o755).map_err(at(&dir))?;
        if self.fx.systemd_running() {
            let applying = self.fx.run(&Cmd::new(
                "systemctl",
                &[
                    "list-units",
                    "--no-legend",
                    "--plain",
                    "--state=active,activating",
                    "sitec-pull-apply-*",
                ],
            ));
            if applying.is_ok_and(|r| !r.stdout.iter().all(u8::is_ascii_whitespace)) {
                self.note(Note::Say("pull: a release is being applied".to_string()));
                return Ok(());
            }
        }
        // A boot awaiting confirmation refuses every switch: its health
        // checks confirm it, nothing is fetched.
        if let Some(boot) = self.boot_armed()? {
            return self.pull_boot(&m, exe, &boot);
        }
        self.pull_interrupted(&m)?;
        if !self.pull_due(&m) {
            return Ok(());
        }
        // A deadline passed with its timer gone is settled by any
        // activation.
        if self.fx.exists(&self.layout.armed()) || self.fx.exists(&self.layout.journal()) {
            let _ = self.activation(exe, &["settle"]);
            if let Some(armed) = self.fx.text(&self.layout.armed()) {
                let g = armed.split_whitespace().next().unwrap_or("?").to_string();
                return self.pull_note(&format!(
                    "generation {g} awaits confirmation: no release is fetched until it is settled"
                ));
            }
            // The settle may have rolled back an apply cut off in its
            // health checks: decided now, never applied again.
            self.pull_interrupted(&m)?;
        }
        let url = format!("{}/{}/release", m.url, m.host);
        let fetched = match fetch::fetch(self.fx, &url, RELEASE_LIMIT) {
            Ok(b) => b,
            Err(f) => return self.pull_failed(&m, &f.why),
        };
        let work = self.pull_work();
        let live = m.live.to_string();
        let rel = match release::verify(self.fx, &work, &fetched, &m.index, &m.host, &live) {
            Ok(r) => r,
            Err(why) => return self.pull_failed(&m, &format!("release refused: {why}")),
        };
        let s = &rel.statement;
        // A serial is the epoch second of its publish: one more than a day
        // ahead of this host's clock is refused, and not recorded, so that
        // no one release (a publisher's clock far off) raises the floor
        // past every serial publish will sign.
        let now = self.fx.now();
        if s.serial > now + 86_400 {
            return self.pull_failed(
                &m,
                &format!(
                    "release refused: its serial {} is more than a day ahead of this host's clock ({now}): is the publisher's clock, or this host's, wrong?",
                    s.serial
                ),
            );
        }
        if let Err(why) = self.fresh_check(&m, &work, &live, s.serial) {
            return self.pull_failed(&m, &why);
        }
        let taken = Taken {
            digest: rel.digest.clone(),
            serial: s.serial,
            hash: s.bundle.clone(),
            agent: s.agent.clone(),
            prev: None,
        };
        let short = taken.short().to_string();
        let (applied, applied_digest) = self.applied();
        let rejected = self
            .pull_text("rejected")
            .unwrap_or_default()
            .lines()
            .any(|l| l == rel.digest);
        if s.bundle == self.live_hash(&m) {
            // The same bundle with a new agent (sitec was upgraded): the
            // agent becomes the host's, through a switch to the live
            // bundle, which checks it and changes nothing else.
            // Never from a release served again, or one rejected: a
            // replayed release must not bring back an older agent.
            if s.agent.is_some()
                && self.host_agent_hash() != s.agent
                && s.serial > applied
                && !rejected
            {
                let agent = match self.fetch_agent(&m, exe, s.agent.as_deref()) {
                    Ok(a) => a,
                    Err(why) => {
                        return self.pull_failed(
                            &m,
                            &format!(
                                "release {} ({short}): its agent not fetched: {why}",
                                s.serial
                            ),
                        );
                    }
                };
                let name = format!("{}-{}", s.bundle, m.host);
                let ran = self.activation(&agent, &["switch", &name])?;
                if !ran.success {
                    return self.pull_failed(
                        &m,
                        &format!(
                            "release {} ({short}): its agent could not take over (exit {}): {}",
                            s.serial,
                            exit_of(&ran),
                            last_line(&ran)
                        ),
                    );
                }
            }
            self.pull_remove("backoff")?;
            if applied < s.serial {
                self.pull_state("serial", &format!("{} {}", s.serial, rel.digest))?;
            }
            let live = self.state()?.current.unwrap_or(Gen(0));
            return self.pull_note(&format!(
                "release {} ({short}, signed by {}) is generation {live}, which runs",
                s.serial, rel.signer
            ));
        }
        if rejected {
            self.pull_remove("backoff")?;
            return self.pull_note(&format!(
                "release {} ({short}) was rejected before: waiting for a new release",
                s.serial
            ));
        }
        // Applied, and left since (a push or a rollback by the operator):
        // the operator's word stands until a new release.
        if rel.digest == applied_digest {
            self.pull_remove("backoff")?;
            return self.pull_note(&format!(
                "release {} ({short}) was applied before and the host has left it since (generation {} runs): waiting for a new release",
                s.serial, m.live
            ));
        }
        if s.serial <= applied {
            return self.pull_failed(
                &m,
                &format!(
                    "release refused: its serial {} is not above {applied}, the last release this host applied or rejected (an older release served again?)",
                    s.serial
                ),
            );
        }
        // Signed before the operator's last push to this host: older than
        // what the push deployed. Nothing is wrong with the server (it
        // serves what was published): the host waits for a newer release.
        if let Some(pushed) = self.pushed().filter(|p| s.serial <= *p) {
            self.pull_remove("backoff")?;
            return self.pull_note(&format!(
                "{}: waiting for a release published after it",
                before_push(s.serial, &short, pushed)
            ));
        }
        let agent = match self.fetch_agent(&m, exe, s.agent.as_deref()) {
            Ok(a) => a,
            Err(why) => {
                return self.pull_failed(
                    &m,
                    &format!("release {} ({short}) not fetched: {why}", s.serial),
                );
            }
        };
        if let Err(why) = self.fetch_bundle(&m, &agent, &taken) {
            return self.pull_failed(
                &m,
                &format!("release {} ({short}) not fetched: {why}", s.serial),
            );
        }
        self.pull_remove("backoff")?;
        self.pull_state(
            "pending",
            &format!(
                "{} {} {} {} {} {}",
                rel.digest,
                s.serial,
                s.bundle,
                rel.signer,
                s.agent.as_deref().unwrap_or("-"),
                sitec_format::sha256_hex(
                    m.index
                        .signers
                        .get(&rel.signer)
                        .map_or(&[][..], |k| k.as_bytes())
                )
            ),
        )?;
        self.pull_note(&format!(
            "release {} ({short}, signed by {}) fetched: applying it",
            s.serial, rel.signer
        ))?;
        self.start_apply(&agent, s.serial, &short)
    }

    /// The release server's freshness statement (`HOST/fresh`, see
    /// [`release::Fresh`]) for release `serial`, the one it serves: signed
    /// by a signer, for this host, for that release (or a newer one, which
    /// a publish writes first), and not expired; its
    /// `until` kept in `pull/fresh`. A server that serves none is taken as
    /// one whose publisher predates them, until one was seen: from then on
    /// a server without one is refused as one with an expired one is. The
    /// error is why, for the pull's failure.
    fn fresh_check(
        &mut self,
        m: &Mode,
        work: &Path,
        live: &str,
        serial: u64,
    ) -> Result<(), String> {
        let url = format!("{}/{}/fresh", m.url, m.host);
        let seen = self.pull_text("fresh");
        let served = fetch::fetch(self.fx, &url, RELEASE_LIMIT)
            .ok()
            .filter(|b| !b.iter().all(u8::is_ascii_whitespace));
        let Some(bytes) = served else {
            return match seen {
                None => Ok(()),
                Some(seen) => Err(format!(
                    "the release server serves no freshness statement ({url}), as it did before (last valid until {}): it may be keeping a newer release from this host; publish again (push --publish) or check the server",
                    until_of(&seen)
                )),
            };
        };
        let fresh = release::verify_fresh(self.fx, work, &bytes, &m.index, &m.host, live)
            .map_err(|why| format!("freshness statement refused: {why}"))?;
        // Publish writes the statement of a new release before the
        // release: one naming a newer release is one a publish is
        // replacing the release of.
        if fresh.serial < serial {
            return Err(format!(
                "the release server's freshness statement names release {}, older than release {serial}, which it serves: publish again (push --publish)",
                fresh.serial
            ));
        }
        let now = self.fx.now();
        if fresh.until < now {
            return Err(format!(
                "the release server's freshness statement for release {serial} expired at {}: the server may be keeping a newer release from this host; publish again (push --publish) or check the server",
                crate::utc::utc(fresh.until)
            ));
        }
        self.pull_state("fresh", &format!("{} {serial}", fresh.until))
            .map_err(|e| format!("pull/fresh could not be written: {e}"))
    }

    /// Starts the apply in a unit of its own: the switch may restart or
    /// stop sitec-pull.service, and must not take its own apply with it.
    /// Named by its serial: a unit whose cgroup a daemon outlives (the
    /// confirmation timer, a dhclient) is not collected, and must not stop
    /// the next apply. KillMode=process: the switch's confirmation timer
    /// outlives the apply's main process.
    fn start_apply(&mut self, agent: &Path, serial: u64, short: &str) -> R<()> {
        let run = agent_cmd(&*self.fx, agent, &["pull-apply"]);
        let mut args = Vec::new();
        let cmd = if self.fx.systemd_running() {
            args.extend([
                "--quiet".to_string(),
                "--collect".to_string(),
                format!("--unit=sitec-pull-apply-{serial}"),
                "--property=KillMode=process".to_string(),
                "--description=sitec: apply the release pulled".to_string(),
            ]);
            let program = if run.program == "sh" {
                "/bin/sh".to_string()
            } else {
                run.program.clone()
            };
            args.push(program);
            args.extend(run.args.iter().cloned());
            let mut cmd = Cmd::new("systemd-run", &[]);
            cmd.args = args;
            cmd.log = Some(self.layout.state.join("log"));
            cmd
        } else {
            args.extend(["-f".to_string(), run.program.clone()]);
            args.extend(run.args.iter().cloned());
            let mut cmd = Cmd::new("setsid", &[]);
            cmd.args = args;
            // Not captured: a capture would wait for the whole apply.
            cmd.log = Some(PathBuf::from("/dev/null"));
            cmd
        };
        let started = self.fx.run(&cmd).is_ok_and(|r| r.success);
        if !started {
            self.pull_note(&format!(
                "release {serial} ({short}): its apply could not be started ({} failed): tried again at the next pull",
                cmd.program
            ))?;
        }
        Ok(())
    }

    /// The agent the release names, in `agents/` (fetched from
    /// URL/agents/SHA256 unless the host has it), checked against the
    /// signed hash before it is kept. A release that names none is applied
    /// by this agent (`exe`).
    fn fetch_agent(&mut self, m: &Mode, exe: &Path, sha: Option<&str>) -> Result<PathBuf, String> {
        let Some(sha) = sha else {
            return Ok(exe.to_path_buf());
        };
        let agents = self.layout.state.join("agents");
        let path = agents.join(sha);
        if self
            .fx
            .read(&path)
            .is_ok_and(|b| sitec_format::sha256_hex(&b) == sha)
        {
            return Ok(path);
        }
        let io = |e: std::io::Error| format!("could not keep the agent: {e}");
        let url = format!("{}/agents/{sha}", m.url);
        let bytes = fetch::fetch(self.fx, &url, AGENT_LIMIT).map_err(|f| f.why)?;
        if sitec_format::sha256_hex(&bytes) != sha {
            return Err(format!(
                "{url} does not hash to the signed {sha} (changed on the server?)"
            ));
        }
        self.fx.mkdir_all(&agents, 0o755).map_err(io)?;
        // Not push's temporary name: a push may bring the same agent
        // meanwhile.
        let incoming = agents.join(format!(".incoming-{sha}.pull"));
        self.fx.write(&incoming, &bytes, 0o555).map_err(io)?;
        self.fx.chmod(&incoming, 0o555).map_err(io)?;
        self.fx.sync_file(&incoming).map_err(io)?;
        self.fx.rename(&incoming, &path).map_err(io)?;
        Ok(path)
    }

    /// The bundle of the release into the store (as HASH-HOST), unless the
    /// store has it intact: the listing must hash to the release's hash
    /// and every file to its line. A file the live bundle has with that
    /// content is copied, not fetched. `agent` receives it.
    fn fetch_bundle(&mut self, m: &Mode, agent: &Path, t: &Taken) -> Result<(), String> {
        let name = format!("{}-{}", t.hash, m.host);
        let dest = self.layout.store_copy(&name);
        if self.fx.kind(&dest).ok().flatten() == Some(Kind::Dir)
            && crate::bundle::intact(&*self.fx, &dest)
        {
            return Ok(());
        }
        let base = format!("{}/{}", m.url, m.host);
        let url = format!("{base}/{}.listing", t.hash);
        let listing = fetch::fetch(self.fx, &url, LISTING_LIMIT).map_err(|f| f.why)?;
        if sitec_format::sha256_hex(&listing) != t.hash {
            return Err(format!(
                "{url} does not hash to the signed {} (changed on the server?)",
                t.hash
            ));
        }
        let files = fetch::parse_listing(&String::from_utf8_lossy(&listing))
            .map_err(|line| format!("line {line} of the listing is not a bundle file"))?;
        // Not push's .incoming-NAME: a push of the same bundle meanwhile
        // rsyncs into its own directory.
        let incoming = self.layout.store().join(format!(".incoming-{name}.pull"));
        let io = |e: std::io::Error| format!("could not store the bundle: {e}");
        self.fx.remove_all(&incoming).map_err(io)?;
        self.fx.mkdir_all(&incoming, 0o755).map_err(io)?;
        let got = self.fetch_files(&base, &m.bundle, &incoming, t, &files);
        let got = got.and_then(|()| {
            self.fx
                .write(
                    &incoming.join("BUNDLE"),
                    format!("{}\n", t.hash).as_bytes(),
                    0o644,
                )
                .map_err(io)
        });
        if let Err(why) = got {
            let _ = self.fx.remove_all(&incoming);
            return Err(why);
        }
        let received = self
            .activation(agent, &["receive", &format!("{name}.pull")])
            .map_err(|e| e.to_string())?;
        if !received.success {
            let _ = self.fx.remove_all(&incoming);
            return Err(format!(
                "the fetched bundle was not received: {}",
                last_line(&received)
            ));
        }
        Ok(())
    }

    fn fetch_files(
        &mut self,
        base: &str,
        live: &Path,
        incoming: &Path,
        t: &Taken,
        files: &[fetch::Listed],
    ) -> Result<(), String> {
        let io = |e: std::io::Error| format!("could not store the bundle: {e}");
        for f in files {
            let to = incoming.join(&f.path);
            if let Some(dir) = to.parent() {
                self.fx.mkdir_all(dir, 0o755).map_err(io)?;
            }
            let here = self
                .fx
                .read(&live.join(&f.path))
                .ok()
                .filter(|b| sitec_format::sha256_hex(b) == f.sha256);
            let bytes = match here {
                Some(b) => b,
                None => {
                    let url = format!("{base}/{}/{}", t.hash, f.path);
                    let b = fetch::fetch(self.fx, &url, FILE_LIMIT).map_err(|f| f.why)?;
                    if sitec_format::sha256_hex(&b) != f.sha256 {
                        return Err(format!(
                            "{url} does not hash to what the signed listing says (changed on the server?)"
                        ));
                    }
                    b
                }
            };
            self.fx.write(&to, &bytes, f.mode).map_err(io)?;
            self.fx.chmod(&to, f.mode).map_err(io)?;
        }
        Ok(())
    }

    /// One probe of the health checks of generation `index`: its units
    /// (judged against `before`), the deploy port, its own release. With
    /// `boot`, a server that answers with an error (it refused the
    /// connection, or an HTTP error) counts as reached: the network the
    /// boot brought up works, whatever the server serves today. No route,
    /// an unreachable network or host, a timeout do not: a boot that lost
    /// its NIC is no boot to confirm.
    fn probe(
        &mut self,
        m: &Mode,
        index: &Index,
        before: &[health::UnitRun],
        boot: bool,
    ) -> Result<Vec<health::UnitRun>, Fault> {
        let after = health::unit_runs(self.fx, index);
        health::units_healthy(index, before, &after).map_err(Fault::host)?;
        let port = index
            .deploy
            .get("port")
            .cloned()
            .unwrap_or_else(|| "22".into());
        if !health::listening(self.fx, &port) {
            return Err(Fault::host(format!(
                "nothing listens on the deploy port {port} (sshd)"
            )));
        }
        match self.own_release(m, index) {
            Ok(()) => Ok(after),
            Err(f) if boot && f.reached() => Ok(after),
            Err(f) => Err(Fault {
                why: f.why,
                server: true,
            }),
        }
    }

    /// Generation `index`'s own release fetched from its server and
    /// verified with its signers: what it needs to pull the next one.
    fn own_release(&mut self, m: &Mode, index: &Index) -> Result<(), fetch::Failed> {
        let url = index.pull.get("url").cloned().unwrap_or_default();
        let release_url = format!("{url}/{}/release", m.host);
        let fetched = fetch::fetch(self.fx, &release_url, RELEASE_LIMIT)?;
        let work = self.pull_work();
        let live = m.live.to_string();
        release::verify(self.fx, &work, &fetched, index, &m.host, &live)
            .map(|_| ())
            .map_err(|_| fetch::Failed {
                why: format!("the bundle cannot verify its own release at {release_url}"),
                code: None,
                refused: false,
            })
    }

    /// The health checks of pulled generation `g` until the deadline of
    /// its confirmation; they must hold for 5 s with no unit restarted in
    /// between.
    fn healthy(&mut self, m: &Mode, g: Gen, index: &Index, before: &[health::UnitRun]) -> Health {
        let mut seen: Option<Vec<(String, String, String)>> = None;
        let mut since = 0;
        loop {
            let probed = self.probe(m, index, before, false);
            let now = self.fx.now();
            let why = match probed {
                Ok(after) => {
                    let sig = health::steady(&after);
                    // A clock stepped back (a release that restarts time
                    // synchronization) counts again from now.
                    if seen.as_ref() != Some(&sig) || now < since {
                        seen = Some(sig);
                        since = now;
                    } else if now - since >= 5 {
                        return Health::Healthy;
                    }
                    None
                }
                Err(fault) => {
                    seen = None;
                    Some(fault)
                }
            };
            let Some(armed) = self.fx.text(&self.layout.armed()) else {
                let result = self.fx.text(&self.layout.result(g)).unwrap_or_default();
                if result.trim() == "confirmed" {
                    return Health::Confirmed;
                }
                return Health::Failing(
                    why.unwrap_or_else(|| Fault::host("the confirmation failed")),
                );
            };
            let deadline = armed
                .split_whitespace()
                .nth(2)
                .and_then(|d| d.parse::<u64>().ok())
                .unwrap_or(0);
            if now + 3 >= deadline {
                return Health::Failing(
                    why.unwrap_or_else(|| Fault::host("not stable for 5 s before the deadline")),
                );
            }
            self.fx.sleep(1);
        }
    }

    /// A boot awaiting confirmation in pull mode (it came up on kernel
    /// files no confirmed boot had): nobody confirms it over ssh, its
    /// health checks do, held for 5 s. Every unit the generation enables
    /// is judged: the boot started them all. Until they pass, nothing is
    /// fetched; at the boot's deadline its timer takes the host back and
    /// reboots, as it does for any boot nobody confirms.
    fn pull_boot(&mut self, m: &Mode, exe: &Path, boot: &crate::boot::BootArmed) -> R<()> {
        let g = boot.generation;
        let index = match self.generation_of(g)? {
            crate::generation::Generation::Bundle(i) => i,
            crate::generation::Generation::Backup(_) => Index::default(),
        };
        let before: Vec<health::UnitRun> = index
            .units
            .iter()
            .filter(|(_, s)| **s == sitec_format::UnitState::Enabled)
            .map(|(u, _)| health::UnitRun {
                unit: u.clone(),
                active: "active".into(),
                result: "-".into(),
                kind: "-".into(),
                invocation: "-".into(),
                restarts: "-".into(),
            })
            .collect();
        let checked = self
            .probe(m, &index, &before, true)
            .map_err(|f| f.why)
            .and_then(|first| {
                self.fx.sleep(5);
                let second = self.probe(m, &index, &before, true).map_err(|f| f.why)?;
                if health::steady(&first) == health::steady(&second) {
                    Ok(())
                } else {
                    Err("a unit restarted within 5 s".to_string())
                }
            });
        let why = match checked {
            Ok(()) => {
                let ran = self.activation(exe, &["confirm-boot"])?;
                if ran.success {
                    return self.pull_note(&format!(
                        "the boot on generation {g} came up on new kernel files and passes its health checks: confirmed"
                    ));
                }
                format!("confirm-boot failed: {}", last_line(&ran))
            }
            Err(why) => why,
        };
        let target = self.boot_target()?;
        let left = boot.deadline.saturating_sub(self.uptime());
        let when = if left > 0 {
            format!("within {left} s")
        } else {
            "now".to_string()
        };
        self.pull_note(&format!(
            "the boot on generation {g} awaits confirmation and fails its health checks ({why}): unconfirmed, it goes back to generation {target} and reboots {when}"
        ))
    }

    /// `pull-apply`: the release fetched (`pending`), applied: a switch
    /// awaiting confirmation (which checks the bundle first), health
    /// checks, confirmation. A
    /// release that does not end confirmed is rejected, and never applied
    /// again. `exe` is this agent (the one the release names).
    pub fn pull_apply(&mut self, exe: &Path) -> R<()> {
        let m = self.pull_mode("pull-apply")?;
        let Some(text) = self.pull_text("pending") else {
            return Ok(());
        };
        let Some((t, signer)) = Taken::parse(&text, true) else {
            self.pull_remove("pending")?;
            return self.pull_note(
                "the release pending was not recorded whole: fetched again at the next pull",
            );
        };
        // Verified against the signers of the generation live then: a push
        // since may have revoked the key. The next pull verifies it anew.
        if !signer.trusted_by(&m.index) {
            self.pull_remove("pending")?;
            return self.pull_note(&format!(
                "release {} ({}) was signed by {}, whom the live generation no longer trusts with that key: not applied; the next pull verifies it again",
                t.serial,
                t.short(),
                signer.name
            ));
        }
        let mut t = t;
        t.prev = self.host_agent_hash();
        let short = t.short().to_string();
        if let Some(pushed) = self.pushed().filter(|p| t.serial <= *p) {
            return self.pull_overtaken(&t, pushed);
        }
        let name = format!("{}-{}", t.hash, m.host);
        // Gone from the store since the pull found it there (an old
        // generation's copy, let go of with it by an activation meanwhile):
        // no fault of the release, which the next pull fetches again.
        let copy = self.layout.store_copy(&name);
        if self.fx.kind(&copy).map_err(at(&copy))?.is_none() {
            self.pull_remove("pending")?;
            return self.pull_note(&format!(
                "release {} ({short}): its bundle left the store before its apply: fetched again at the next pull",
                t.serial
            ));
        }
        self.pull_state("applying", &t.record())?;
        let index = match crate::bundle::index_of(&*self.fx, &self.layout.store_copy(&name)) {
            Ok(i) => i,
            Err(f) => {
                let why = f.describe(&self.layout.store_copy(&name));
                return self.pull_rejected(&m, &t, &why);
            }
        };
        let before = health::unit_runs(self.fx, &index);
        let ct = m.confirm_timeout.to_string();
        let serial = t.serial.to_string();
        let switched = self.activation(
            exe,
            &[
                "switch",
                "--confirm-timeout",
                &ct,
                "--await-confirmation",
                "--release",
                &serial,
                &name,
            ],
        )?;
        // A push overtook it while it waited: dropped, not rejected.
        if switched.code != Some(0)
            && let Some(pushed) = self.pushed().filter(|p| t.serial <= *p)
        {
            return self.pull_overtaken(&t, pushed);
        }
        match switched.code {
            Some(0) => {}
            // The switch checks the bundle first, as `check` does, and
            // refuses it before anything changes.
            Some(3) => {
                let said = String::from_utf8_lossy(&switched.stdout).into_owned()
                    + &String::from_utf8_lossy(&switched.stderr);
                let lines: Vec<&str> = said
                    .lines()
                    .filter(|l| !l.starts_with("validated ") && !l.trim().is_empty())
                    .collect();
                let tail = lines[lines.len().saturating_sub(3)..].join(" ");
                return self.pull_rejected(
                    &m,
                    &t,
                    &format!("its check refused it (exit 3): {tail}"),
                );
            }
            Some(6) => {
                self.pull_remove("applying")?;
                return self.pull_note(&format!(
                    "release {} ({short}) waits: {}",
                    t.serial,
                    last_line(&switched)
                ));
            }
            _ => {
                return self.pull_rejected(
                    &m,
                    &t,
                    &format!(
                        "its switch failed (exit {}): {}",
                        exit_of(&switched),
                        last_line(&switched)
                    ),
                );
            }
        }
        let g = String::from_utf8_lossy(&switched.stdout)
            .lines()
            .find_map(|l| {
                l.strip_prefix("switched to generation ").map(|r| {
                    r.chars()
                        .take_while(char::is_ascii_digit)
                        .collect::<String>()
                })
            })
            .and_then(|n| n.parse::<u64>().ok())
            .map(Gen);
        let Some(g) = g else {
            let live = self.state()?.current.unwrap_or(Gen(0));
            return self.pull_applied(
                &t,
                &format!(
                    "release {} ({short}) is generation {live}, which runs",
                    t.serial
                ),
            );
        };
        let failing = match self.healthy(&m, g, &index, &before) {
            Health::Confirmed => {
                return self.pull_applied(
                    &t,
                    &format!(
                        "release {} ({short}, signed by {}) runs as generation {g}, confirmed by the operator",
                        t.serial,
                        signer.name
                    ),
                );
            }
            Health::Healthy => {
                let confirmed = self.activation(exe, &["confirm", &g.to_string()])?;
                if confirmed.success {
                    return self.pull_applied(
                        &t,
                        &format!(
                            "release {} ({short}, signed by {}) runs as generation {g}, confirmed by its health checks",
                            t.serial,
                            signer.name
                        ),
                    );
                }
                Fault::host("the confirmation failed")
            }
            Health::Failing(fault) => fault,
        };
        // The confirmation timer takes the host back at the deadline; if
        // it is gone, any activation does (settle).
        let mut waited = 0;
        while self.fx.exists(&self.layout.armed()) && waited < 30 {
            self.fx.sleep(1);
            waited += 1;
        }
        if self.fx.exists(&self.layout.armed()) {
            let _ = self.activation(exe, &["settle"]);
        }
        let result = self
            .fx
            .text(&self.layout.result(g))
            .map(|r| r.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let live = self.state()?.current.unwrap_or(Gen(0));
        let failed = format!(
            "its health checks did not pass within {} s ({}): generation {g} was rolled back ({result}), the host is on generation {live}",
            m.confirm_timeout, failing.why
        );
        // Only the server failed them: when the generation it went back to
        // cannot reach the server either, the server is down (or will not
        // serve), which is no fault of the release: it is tried again at
        // the next pull, up to SERVER_FAULTS applies.
        if failing.server && live == m.live {
            // The network the generation brings back may take a moment
            // (DHCP, a tunnel): asked three times, 5 s apart.
            let mut down = None;
            for i in 0..3 {
                if i > 0 {
                    self.fx.sleep(5);
                }
                down = self.own_release(&m, &m.index).err();
                if down.is_none() {
                    break;
                }
            }
            let faults = self.deferred() + 1;
            if let Some(down) = down
                && faults < SERVER_FAULTS
            {
                self.pull_state("deferred", &format!("{} {faults}", t.digest))?;
                self.pull_remove("pending")?;
                self.pull_remove("applying")?;
                return self.pull_note(&format!(
                    "release {} ({short}) not applied: {failed}; the generation before cannot reach the release server either ({}): tried again at the next pull ({faults} of {SERVER_FAULTS})",
                    t.serial, down.why
                ));
            }
        }
        self.pull_rejected(&m, &t, &failed)
    }

    /// A push ran a switch at `pushed` (the operator's clock): in pull
    /// mode, a release signed before it is older than what the operator
    /// pushed and is not taken (`pull/pushed`, only ever raised; a time
    /// ahead of this host's clock counts as this host's now, so that a
    /// wrong clock cannot hold back every release). A host never pulled
    /// has it from its first push on. What cannot be recorded is warned
    /// of: the switch is done.
    pub fn pushed_floor(&mut self, pushed: u64) {
        if self.pull_mode("switch").is_err() {
            return;
        }
        let pushed = pushed.min(self.fx.now());
        if self.pushed().is_some_and(|p| pushed <= p) {
            return;
        }
        let dir = self.pull_dir();
        let kept = self
            .fx
            .mkdir_all(&dir, 0o755)
            .map_err(at(&dir))
            .and_then(|()| self.pull_state("pushed", &pushed.to_string()));
        if let Err(e) = kept {
            self.note(Note::Warn(format!(
                "the time of this push was not recorded for pull mode ({e}): a release signed before it may still be taken"
            )));
        }
    }

    /// Why release `serial` is older than the last push to this host, if
    /// it is.
    pub fn pushed_since(&self, serial: u64) -> Option<String> {
        self.pushed()
            .filter(|p| serial <= *p)
            .map(|p| format!("release {serial} was signed before the last push to this host ({p})"))
    }

    /// The operator's clock at the last push to this host (`pushed`).
    fn pushed(&self) -> Option<u64> {
        self.pull_text("pushed")
            .and_then(|t| t.split_whitespace().next().and_then(|w| w.parse().ok()))
    }

    /// How many applies in a row the release server failed (`deferred`),
    /// whichever releases they were: a server that serves two releases
    /// in turn gets no more applies than one that serves one.
    fn deferred(&self) -> u32 {
        self.pull_text("deferred")
            .and_then(|t| t.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_and_applying_read_back() {
        let (d, h, a) = ("d".repeat(64), "a".repeat(64), "e".repeat(64));
        let t = Taken {
            digest: d.clone(),
            serial: 7,
            hash: h.clone(),
            agent: Some(a.clone()),
            prev: None,
        };
        assert_eq!(
            Taken::parse(&t.record(), false),
            Some((t.clone(), Signer::default()))
        );
        let operator = Signer {
            name: "operator".into(),
            key: None,
        };
        assert_eq!(
            Taken::parse(&format!("{d} 7 {h} operator {a}"), true),
            Some((t.clone(), operator.clone()))
        );
        let k = sitec_format::sha256_hex(b"ssh-ed25519 AAAAkey");
        let keyed = Signer {
            key: Some(k.clone()),
            ..operator.clone()
        };
        assert_eq!(
            Taken::parse(&format!("{d} 7 {h} operator {a} {k}"), true),
            Some((t.clone(), keyed.clone()))
        );
        assert_eq!(
            Taken::parse(&format!("{d} 7 {h} operator {a} key"), true),
            None
        );
        // Trusted while the live generation names that key under that name.
        let mut index = Index::default();
        assert!(!keyed.trusted_by(&index));
        index
            .signers
            .insert("operator".into(), "ssh-ed25519 AAAAkey".into());
        assert!(keyed.trusted_by(&index) && operator.trusted_by(&index));
        index
            .signers
            .insert("operator".into(), "ssh-ed25519 AAAAnew".into());
        assert!(!keyed.trusted_by(&index) && operator.trusted_by(&index));
        // As earlier agents wrote `applying`: no previous agent, or no
        // agent at all.
        assert_eq!(
            Taken::parse(&format!("{d} 7 {h} {a}"), false),
            Some((t.clone(), Signer::default()))
        );
        let none = Taken {
            agent: None,
            ..t.clone()
        };
        assert_eq!(
            Taken::parse(&format!("{d} 7 {h}"), false),
            Some((none, Signer::default()))
        );
        for bad in [
            format!("{d} x {h} -"),
            format!("{d} 7 h -"),
            format!("{d} 7 {h} é"),
            format!("{d} 1234567890123456789 {h} -"),
            format!("{d} 7"),
        ] {
            assert_eq!(Taken::parse(&bad, false), None, "{bad}");
        }
    }
}
