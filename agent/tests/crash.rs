//! A crash after every step: each transition is stopped after each of its
//! changing operations k = 1..K, once as a killed process (what it wrote
//! stays) and once as a power loss (what it did not sync is lost); then
//! what the next activation runs first (recovery) runs on what is left,
//! itself stopped after each of its operations and run again. After it:
//! exactly one whole generation is live (every path it manages is the link
//! through `current` and shows that generation's bytes, every other path
//! is as sitec found it), no managed path dangles, no journal is left, and
//! the generation is the one the crash point allows: the new one only if
//! the transition's end reached the disk.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sitec_agent::effects::{Effects, EffectsExt as _, Kind};
use sitec_agent::index::Gen;
use sitec_agent::layout::Layout;
use sitec_agent::sim::{Crash, Op, SimFs};
use sitec_agent::transition::Agent;

/// A bundle in the store: its name and its files (path, bytes).
struct Bundle {
    name: &'static str,
    files: &'static [(&'static str, &'static str)],
}

const B1: Bundle = Bundle {
    name: "b1-host",
    files: &[("etc/a", "a of 1\n"), ("etc/b", "b of 1\n")],
};
const B2: Bundle = Bundle {
    name: "b2-host",
    files: &[("etc/a", "a of 2\n"), ("etc/c", "c of 2\n")],
};
const B3: Bundle = Bundle {
    name: "b3-host",
    files: &[("etc/a", "a of 3\n"), ("etc/new/d", "d of 3\n")],
};
/// Its etc/a's action (restarting a unit the host cannot start) fails.
const B4: Bundle = Bundle {
    name: "b4-host",
    files: &[("etc/a", "a of 4\n"), ("etc/c", "c of 4\n")],
};
const BUNDLES: [&Bundle; 4] = [&B1, &B2, &B3, &B4];

/// The secret the bundles that require one require, read by etc/a (its
/// change restarts a.service).
const SECRET: &str = "/etc/s/key";
const OWN_KEY: &str = "the host's own key\n";

/// What push staged of the secret for a bundle, if it requires it.
fn staged_key(bundle: &Bundle) -> Option<String> {
    (bundle.name != "b3-host").then(|| format!("key of {}\n", bundle.name))
}

/// What a changed file asks for: commands, so crash points, of their own.
fn actions_of(bundle: &Bundle, path: &str) -> &'static str {
    match (bundle.name, path) {
        ("b4-host", "etc/a") => "restart:broken.service",
        (_, "etc/a") => "restart:a.service",
        (_, "etc/c") => "daemon-reload reload:c.service",
        _ => "",
    }
}

/// What the host had before sitec: etc/a (0600, in a directory of its
/// own), nothing at the other paths.
const ORIGINAL: &[(&str, &str)] = &[("etc/a", "the host's own a\n")];

fn all_paths() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = BUNDLES
        .iter()
        .flat_map(|b| b.files.iter().map(|(p, _)| PathBuf::from(p)))
        .collect();
    v.sort();
    v.dedup();
    v
}

fn host() -> SimFs {
    let mut fs = SimFs::new();
    let layout = Layout::default();
    fs.mkdir_all(&layout.store(), 0o755).unwrap();
    fs.mkdir(Path::new("/etc"), 0o755).unwrap();
    fs.mkdir_all(Path::new("/run/systemd/system"), 0o755)
        .unwrap();
    for unit in ["a.service", "c.service", "broken.service"] {
        let line = format!("systemctl list-unit-files --no-legend {unit}");
        fs.answer(&line, &format!("{unit} enabled enabled\n"), true);
    }
    fs.fail_command("systemctl restart broken.service");
    fs.mkdir_all(Path::new("/etc/s"), 0o700).unwrap();
    fs.write(Path::new(SECRET), OWN_KEY.as_bytes(), 0o600)
        .unwrap();
    for (p, bytes) in ORIGINAL {
        fs.write(&Path::new("/").join(p), bytes.as_bytes(), 0o600)
            .unwrap();
    }
    for b in BUNDLES {
        let dir = layout.store_copy(b.name);
        fs.mkdir(&dir, 0o755).unwrap();
        let mut index = String::new();
        for (p, bytes) in b.files {
            let path = dir.join(p);
            fs.mkdir_all(path.parent().unwrap(), 0o755).unwrap();
            fs.write(&path, bytes.as_bytes(), 0o444).unwrap();
            index.push_str(&format!(
                "f\t{p}\t{}\t0644\tfalse\t-\t{}\n",
                sitec_format::sha256_hex(bytes.as_bytes()),
                actions_of(b, p)
            ));
        }
        if let Some(key) = staged_key(b) {
            index.push_str(&format!("s\t{SECRET}\tetc/a\t0\t0\t-\n"));
            let staged = layout.staged_secrets(b.name).join("etc/s/key");
            fs.mkdir_all(staged.parent().unwrap(), 0o700).unwrap();
            fs.write(&staged, key.as_bytes(), 0o600).unwrap();
        }
        fs.write(&dir.join("index"), index.as_bytes(), 0o444)
            .unwrap();
    }
    fs.settle();
    fs
}

/// The generations the scenes create, and which bundle each runs.
fn bundle_of(g: Gen) -> Option<&'static Bundle> {
    match g.0 {
        1 | 3 | 6 => Some(&B1),
        2 | 5 => Some(&B2),
        4 => Some(&B3),
        7 => Some(&B4),
        _ => None,
    }
}

/// One transition of the story, from the state the ones before left.
#[derive(Clone, Copy, Debug)]
enum Scene {
    Switch(&'static Bundle, Gen, Gen),
    /// A network change: the generation awaits confirmation.
    SwitchAwaiting(&'static Bundle, Gen, Gen),
    /// An action of the new generation fails: the switch rolls back.
    SwitchFailing(&'static Bundle, Gen, Gen),
    Rollback(Gen, Gen),
    /// The operator confirms generation .0 (which would go back to .1).
    Confirm(Gen, Gen),
    /// The timer of generation .0 fires past its deadline: back to .1.
    Expire(Gen, Gen),
}

impl std::fmt::Debug for Bundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// Seconds a generation may await confirmation.
const CONFIRM_WITHIN: u64 = 60;

impl Scene {
    fn name(self) -> String {
        match self {
            Scene::Switch(b, from, to) => format!("switch {from} -> {to} ({})", b.name),
            Scene::SwitchAwaiting(b, from, to) => {
                format!("switch {from} -> {to} awaiting confirmation ({})", b.name)
            }
            Scene::SwitchFailing(b, from, to) => {
                format!("switch {from} -> {to} whose action fails ({})", b.name)
            }
            Scene::Rollback(from, to) => format!("rollback {from} -> {to}"),
            Scene::Confirm(g, _) => format!("confirm {g}"),
            Scene::Expire(g, to) => format!("the timer's rollback {g} -> {to}"),
        }
    }

    fn run(self, fs: &mut SimFs) -> Result<(), sitec_agent::host::Error> {
        let mut agent = Agent::new(fs, Layout::default());
        // A switch makes the agent that runs it the host's.
        agent.guard = Some(EXE.into());
        match self {
            Scene::Switch(b, _, to) => {
                assert_eq!(agent.switch(b.name, None)?, to);
            }
            Scene::SwitchAwaiting(b, _, to) => {
                assert_eq!(agent.switch(b.name, Some(CONFIRM_WITHIN))?, to);
            }
            Scene::SwitchFailing(b, from, to) => match agent.switch(b.name, None) {
                Err(sitec_agent::host::Error::Failed { generation, back }) => {
                    assert_eq!((generation, back), (to, from));
                }
                Err(e) => return Err(e),
                Ok(g) => panic!("generation {g}'s failing action went unnoticed"),
            },
            Scene::Rollback(_, to) => agent.rollback(to)?,
            Scene::Confirm(g, _) => assert!(agent.confirm(Some(g))?),
            Scene::Expire(g, _) => agent.expire(g)?,
        }
        Ok(())
    }

    /// The generation live before it and the one it makes live.
    fn ends(self) -> (Gen, Gen) {
        match self {
            Scene::Switch(_, from, to)
            | Scene::SwitchAwaiting(_, from, to)
            | Scene::Rollback(from, to)
            | Scene::Expire(from, to) => (from, to),
            Scene::Confirm(g, _) => (g, g),
            // It ends where it began.
            Scene::SwitchFailing(_, from, _) => (from, from),
        }
    }

    /// The generation whose result the scene writes.
    fn decided(self) -> Gen {
        match self {
            Scene::Switch(_, _, to)
            | Scene::SwitchAwaiting(_, _, to)
            | Scene::SwitchFailing(_, _, to) => to,
            Scene::Rollback(from, _) | Scene::Confirm(from, _) | Scene::Expire(from, _) => from,
        }
    }
}

const SCENES: [Scene; 10] = [
    Scene::Switch(&B1, Gen(0), Gen(1)),
    Scene::Switch(&B2, Gen(1), Gen(2)),
    Scene::Rollback(Gen(2), Gen(1)),
    Scene::Switch(&B1, Gen(1), Gen(3)),
    Scene::Switch(&B3, Gen(3), Gen(4)),
    Scene::SwitchAwaiting(&B2, Gen(4), Gen(5)),
    Scene::Confirm(Gen(5), Gen(4)),
    Scene::SwitchAwaiting(&B1, Gen(5), Gen(6)),
    Scene::Expire(Gen(6), Gen(5)),
    Scene::SwitchFailing(&B4, Gen(5), Gen(7)),
];

/// The host shows generation `g` whole (0: as sitec found it).
fn assert_whole(fs: &SimFs, g: Gen, what: &str) {
    let layout = Layout::default();
    assert_eq!(
        fs.kind(&layout.journal()).unwrap(),
        None,
        "{what}: a journal is left"
    );
    match fs.kind(&layout.current()).unwrap() {
        None => assert_eq!(g, Gen(0), "{what}: nothing is live"),
        Some(_) => assert_eq!(
            fs.read_link(&layout.current()).unwrap(),
            PathBuf::from(format!("generations/{g}")),
            "{what}: the wrong generation is live"
        ),
    }
    let files: BTreeMap<&str, &str> = bundle_of(g)
        .map(|b| b.files.iter().copied().collect())
        .unwrap_or_default();
    let original: BTreeMap<&str, &str> = ORIGINAL.iter().copied().collect();
    for p in all_paths() {
        let key = p.to_str().unwrap();
        let host = Layout::host_path(&p);
        if let Some(kind) = fs.kind(&host).unwrap() {
            assert!(fs.exists(&host), "{what}: /{key} dangles");
            if files.contains_key(key) {
                assert_eq!(kind, Kind::Link, "{what}: /{key} is no link");
                assert_eq!(
                    fs.read_link(&host).unwrap(),
                    layout.through_current(&p),
                    "{what}: /{key} links elsewhere"
                );
            }
        }
        let want = files.get(key).or(original.get(key));
        let have = fs
            .exists(&host)
            .then(|| String::from_utf8(fs.read(&host).unwrap()).unwrap());
        assert_eq!(
            have.as_deref(),
            want.copied(),
            "{what}: /{key} shows the wrong bytes for generation {g}"
        );
    }
    // The secret is the one the generation keeps, or the host's own where
    // it keeps none; root's alone.
    let kept = layout.kept_secrets(g).join("etc/s/key");
    let want = fs
        .read(&kept)
        .map(|b| String::from_utf8(b).unwrap())
        .unwrap_or_else(|_| OWN_KEY.to_string());
    let have = String::from_utf8(fs.read(Path::new(SECRET)).unwrap()).unwrap();
    assert_eq!(have, want, "{what}: the secret is not generation {g}'s");
    assert_eq!(fs.mode(Path::new(SECRET)).unwrap(), 0o600, "{what}");
    assert_eq!(fs.owner(Path::new(SECRET)).unwrap(), (0, 0), "{what}");
    if let Some(b) = bundle_of(g).filter(|b| staged_key(b).is_some()) {
        assert!(
            fs.exists(&kept),
            "{what}: generation {g} ({b:?}) keeps no secret"
        );
    }
}

/// Where the agent that runs a switch is (each scene's its own): a switch
/// makes it the host's (`/var/lib/sitec/activate`, the boot guard).
const EXE: &str = "/usr/lib/sitec/agent";

/// The host's agent is one of `agents` whole, never a part of one; once a
/// switch made one the host's (`installed`), there always is one.
fn assert_agent(fs: &SimFs, agents: &[String], installed: bool, what: &str) {
    let host = Layout::default().state.join("activate");
    match fs.read(&host) {
        Ok(bytes) => {
            let text = String::from_utf8(bytes).unwrap();
            assert!(
                agents.contains(&text),
                "{what}: the host's agent is {text:?}, no agent that ran"
            );
        }
        Err(_) => assert!(!installed, "{what}: the host's agent is gone"),
    }
}

/// No managed path is a link to nothing, at any moment.
fn assert_nothing_dangles(fs: &SimFs, what: &str) {
    for p in all_paths() {
        let host = Layout::host_path(&p);
        if fs.kind(&host).unwrap().is_some() {
            assert!(fs.exists(&host), "{what}: /{} dangles", p.display());
        }
    }
}

/// Generation `g`'s result file.
fn result(fs: &SimFs, g: Gen) -> Option<String> {
    fs.read(&Layout::default().result(g))
        .ok()
        .map(|b| String::from_utf8(b).unwrap().trim().to_string())
}

/// What runs next after a crash: the next activation's recovery after a
/// kill (the host is up), the boot's after a power loss.
fn boot_after(crash: Crash) -> bool {
    crash == Crash::PowerLoss
}

/// Runs what runs next (recovery) on `fs`, stopped after each of its
/// operations in turn (then run again), and checks the host ends on `want`
/// whole. Returns the number of the recovery's crash points.
fn recover_at_every_step(fs: &SimFs, boot: bool, want: Gen, what: &str) -> usize {
    let clean = {
        let mut run = fs.after(Crash::Kill);
        Agent::new(&mut run, Layout::default())
            .recover(boot)
            .unwrap_or_else(|e| panic!("{what}: recovery failed: {e}"));
        assert_whole(&run, want, &format!("{what}, recovered"));
        run.ops().len()
    };
    for j in 0..clean {
        let mut run = fs.after(Crash::Kill);
        run.crash_after(j);
        let stopped = Agent::new(&mut run, Layout::default()).recover(boot);
        // Stopped by the simulated death, not by an error of its own.
        assert!(
            stopped.is_err() && run.crashed(),
            "{what}: recovery stopped after {j} did not die there: {stopped:?}"
        );
        for crash in [Crash::Kill, Crash::PowerLoss] {
            let mut again = run.after(crash);
            assert_nothing_dangles(&again, what);
            Agent::new(&mut again, Layout::default())
                .recover(boot || boot_after(crash))
                .unwrap_or_else(|e| {
                    panic!("{what}, recovery stopped after {j} ({crash:?}): recovery failed: {e}")
                });
            assert_whole(
                &again,
                want,
                &format!("{what}, recovery stopped after {j} ({crash:?}), recovered"),
            );
        }
    }
    clean
}

/// What recovery leaves, run whole.
fn recover_to_the_end(fs: &SimFs, boot: bool) -> SimFs {
    let mut run = fs.after(Crash::Kill);
    Agent::new(&mut run, Layout::default())
        .recover(boot)
        .unwrap();
    run
}

/// The position after the last operation of `ops` that `is` says, if any.
fn after_last(ops: &[Op], is: impl Fn(&str) -> bool) -> Option<usize> {
    ops.iter().rposition(|op| is(&op.0)).map(|i| i + 1)
}

#[test]
fn every_transition_survives_a_crash_after_every_step() {
    let layout = Layout::default();
    let journal = layout.journal();
    let armed_path = layout.armed();
    let mut host = host();
    let mut report = Vec::new();
    let mut agents = Vec::new();
    for (i, scene) in SCENES.into_iter().enumerate() {
        let (from, to) = scene.ends();
        // Each scene's agent differs from the one before.
        let installed = host.exists(&layout.state.join("activate"));
        agents.push(format!("the agent of scene {i}\n"));
        host.mkdir_all(Path::new(EXE).parent().unwrap(), 0o755)
            .unwrap();
        host.write(Path::new(EXE), agents[i].as_bytes(), 0o755)
            .unwrap();
        host.settle();
        if let Scene::Expire(..) = scene {
            // The deadline passed.
            host.set_clock(host.now() + CONFIRM_WITHIN + 1);
        }
        // The transition run whole: its operations, and its end.
        let mut whole = host.after(Crash::Kill);
        scene.run(&mut whole).unwrap();
        assert_whole(&whole, to, &scene.name());
        let ops = whole.ops().to_vec();
        if let Scene::SwitchAwaiting(..) = scene {
            // The timer runs before the first managed path changes: a
            // switch that dies in its actions, with nobody logging in
            // again, is still taken back.
            let timer = ops.iter().position(|o| o.0.starts_with("run systemd-run"));
            let first = ops.iter().position(|o| o.0.contains(" /etc/"));
            assert!(
                timer.is_some() && timer < first,
                "{}: the timer starts after the first change: {ops:#?}",
                scene.name()
            );
        }
        // For a killed process, the transition has ended once its journal
        // is removed (a confirmation, once `armed` is).
        let end = match scene {
            Scene::Confirm(..) => {
                after_last(&ops, |o| o == format!("unlink {}", armed_path.display()))
            }
            _ => after_last(&ops, |o| o == format!("unlink {}", journal.display())),
        }
        .expect("the transition ends");
        // ... it is armed from the journal's rename on ...
        let armed = ops
            .iter()
            .position(|op| {
                op.0.starts_with("rename") && op.0.ends_with(&format!(" {}", journal.display()))
            })
            .map_or(usize::MAX, |i| i + 1);
        // ... and a confirmation is on disk from the sync after it.
        let durable = after_last(&ops, |o| o == "sync").unwrap_or(usize::MAX);
        let mut recoveries = 0;
        // k = ops.len(): the transition ran whole, and the power goes at
        // once (or the process is killed just after).
        for k in 0..=ops.len() {
            let mut run = host.after(Crash::Kill);
            run.crash_after(k);
            let ran = scene.run(&mut run);
            // It fails exactly when the simulated process died, and only
            // of that.
            assert!(
                ran.is_err() == (k < ops.len()) && run.crashed() == (k < ops.len()),
                "{}: stopped after {k} of {} operations: {ran:?}",
                scene.name(),
                ops.len()
            );
            for crash in [Crash::Kill, Crash::PowerLoss] {
                let left = run.after(crash);
                let what = format!(
                    "{}, stopped after {k} of {} ({crash:?}: after `{}`)",
                    scene.name(),
                    ops.len(),
                    k.checked_sub(1).map_or("nothing", |i| ops[i].0.as_str())
                );
                assert_nothing_dangles(&left, &what);
                assert_agent(&left, &agents, installed, &what);
                let journal_left = left.kind(&journal).unwrap().is_some();
                if crash == Crash::Kill && !matches!(scene, Scene::Confirm(..)) {
                    assert_eq!(
                        journal_left,
                        armed <= k && k < end,
                        "{what}: a killed process leaves the journal from its rename to its removal"
                    );
                }
                // A switch is undone, a rollback finished, what ended before
                // the crash stays ended; a host never boots into a
                // generation awaiting confirmation; a confirmation stands
                // once it is on disk.
                let boot = boot_after(crash);
                let want = match scene {
                    Scene::SwitchFailing(..) => from,
                    Scene::Switch(..) | Scene::SwitchAwaiting(..) if journal_left => from,
                    Scene::Rollback(..) | Scene::Expire(..) => to,
                    Scene::SwitchAwaiting(..) if boot => from,
                    Scene::Switch(..) | Scene::SwitchAwaiting(..) => {
                        if k >= end {
                            to
                        } else {
                            from
                        }
                    }
                    Scene::Confirm(g, previous) => {
                        if !boot || k >= durable {
                            g
                        } else if left.kind(&armed_path).unwrap().is_some() {
                            previous
                        } else {
                            g
                        }
                    }
                };
                // What returned success was reported done: it stands, but
                // for a generation awaiting confirmation, which no boot keeps.
                let reported = k == ops.len();
                let want = match scene {
                    Scene::SwitchAwaiting(..) | Scene::SwitchFailing(..) if boot => want,
                    _ if reported => to,
                    _ => want,
                };
                if let (Scene::Rollback(..), false) = (scene, journal_left) {
                    // Not begun (or ended): as it was, or where it went.
                    let settled = recover_to_the_end(&left, boot);
                    let live = settled.read_link(&layout.current()).unwrap();
                    let want = if k >= end { to } else { from };
                    assert_eq!(live, PathBuf::from(format!("generations/{want}")), "{what}");
                    recoveries += recover_at_every_step(&left, boot, want, &what);
                    continue;
                }
                let settled = recover_to_the_end(&left, boot);
                assert_agent(&settled, &agents, installed, &what);
                let said = result(&settled, scene.decided());
                let allowed: &[Option<&str>] = match (scene, want == to) {
                    (Scene::Switch(..), true) => &[Some("switched")],
                    (Scene::Switch(..), false) => &[None, Some("interrupted-rolled-back")],
                    (Scene::SwitchAwaiting(..), true) => &[Some("awaiting-confirmation")],
                    (Scene::SwitchAwaiting(..), false) => &[
                        None,
                        Some("interrupted-rolled-back"),
                        Some("unconfirmed-rolled-back"),
                    ],
                    (Scene::SwitchFailing(..), _) => &[
                        None,
                        Some("interrupted-rolled-back"),
                        Some("failed-rolled-back"),
                    ],
                    (Scene::Rollback(..), _) => &[Some("rolled-back")],
                    (Scene::Confirm(..), true) => {
                        &[Some("awaiting-confirmation"), Some("confirmed")]
                    }
                    (Scene::Confirm(..), false) => &[Some("unconfirmed-rolled-back")],
                    (Scene::Expire(..), _) => &[Some("unconfirmed-rolled-back")],
                };
                assert!(
                    allowed.contains(&said.as_deref()),
                    "{what}: generation {}'s result is {said:?}, not one of {allowed:?}",
                    scene.decided()
                );
                // `armed` and the results agree: a generation awaiting
                // confirmation says so. (A confirmation killed between its
                // removal of `armed` and its result leaves the generation
                // kept and its result still "awaiting-confirmation".)
                let awaiting = settled.kind(&armed_path).unwrap().is_some();
                let says_awaiting = said.as_deref() == Some("awaiting-confirmation");
                assert!(
                    !awaiting || says_awaiting,
                    "{what}: `armed` names a generation whose result is {said:?}"
                );
                if !matches!(scene, Scene::Confirm(..)) {
                    assert_eq!(awaiting, says_awaiting, "{what}: awaiting, and no `armed`");
                }
                recoveries += recover_at_every_step(&left, boot, want, &what);
            }
        }
        report.push(format!(
            "{}: {} crash points, each a kill and a power loss; {} recovery steps, each stopped too",
            scene.name(),
            ops.len(),
            recoveries
        ));
        host = whole.after(Crash::Kill);
        host.settle();
    }
    println!("{}", report.join("\n"));
}

/// The timer runs on the monotonic clock and its deadline is due when it
/// fires, whatever the wall clock says (time synchronization may have
/// stepped it back): `expire` rolls the generation back all the same, where
/// an activation that reads the wall clock would not yet.
#[test]
fn the_timer_rolls_back_when_the_wall_clock_was_stepped_back() {
    let mut fs = host();
    let mut agent = Agent::new(&mut fs, Layout::default());
    agent.switch(B1.name, None).unwrap();
    agent.switch(B2.name, Some(CONFIRM_WITHIN)).unwrap();
    let now = fs.now();
    fs.set_clock(now - 3600);
    Agent::new(&mut fs, Layout::default())
        .recover(false)
        .unwrap();
    assert_whole(
        &fs,
        Gen(2),
        "an activation before the wall clock's deadline",
    );
    Agent::new(&mut fs, Layout::default())
        .expire(Gen(2))
        .unwrap();
    assert_whole(&fs, Gen(1), "the timer's rollback");
    assert_eq!(
        result(&fs, Gen(2)).as_deref(),
        Some("unconfirmed-rolled-back")
    );
}
