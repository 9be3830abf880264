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
use sitec_agent::sim::{Crash, SimFs};
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
const BUNDLES: [&Bundle; 3] = [&B1, &B2, &B3];

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
            index.push_str(&format!("f\t{p}\tsha-of-{p}\t0644\tfalse\t-\t\n"));
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
        1 => Some(&B1),
        2 => Some(&B2),
        3 => Some(&B1),
        4 => Some(&B3),
        _ => None,
    }
}

/// One transition of the story, from the state the ones before left.
#[derive(Clone, Copy, Debug)]
enum Scene {
    Switch(&'static Bundle, Gen, Gen),
    Rollback(Gen, Gen),
}

impl std::fmt::Debug for Bundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl Scene {
    fn name(self) -> String {
        match self {
            Scene::Switch(b, from, to) => format!("switch {from} -> {to} ({})", b.name),
            Scene::Rollback(from, to) => format!("rollback {from} -> {to}"),
        }
    }

    fn run(self, fs: &mut SimFs) -> Result<(), sitec_agent::host::Error> {
        let mut agent = Agent::new(fs, Layout::default());
        match self {
            Scene::Switch(b, _, to) => {
                let g = agent.switch(b.name)?;
                assert_eq!(g, to);
                Ok(())
            }
            Scene::Rollback(_, to) => agent.rollback(to),
        }
    }

    /// (where it starts, where it ends).
    fn ends(self) -> (Gen, Gen) {
        match self {
            Scene::Switch(_, from, to) | Scene::Rollback(from, to) => (from, to),
        }
    }
}

const SCENES: [Scene; 5] = [
    Scene::Switch(&B1, Gen(0), Gen(1)),
    Scene::Switch(&B2, Gen(1), Gen(2)),
    Scene::Rollback(Gen(2), Gen(1)),
    Scene::Switch(&B1, Gen(1), Gen(3)),
    Scene::Switch(&B3, Gen(3), Gen(4)),
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

/// Runs the next activation's recovery on `fs`, stopped after each of its
/// operations in turn (then recovered again), and checks the host ends on
/// `want` whole. Returns the number of the recovery's crash points.
fn recover_at_every_step(fs: &SimFs, want: Gen, what: &str) -> usize {
    let clean = {
        let mut run = fs.after(Crash::Kill);
        Agent::new(&mut run, Layout::default())
            .recover()
            .unwrap_or_else(|e| panic!("{what}: recovery failed: {e}"));
        assert_whole(&run, want, &format!("{what}, recovered"));
        run.ops().len()
    };
    for j in 0..clean {
        let mut run = fs.after(Crash::Kill);
        run.crash_after(j);
        assert!(
            Agent::new(&mut run, Layout::default()).recover().is_err(),
            "{what}: recovery ran past its crash point {j}"
        );
        for crash in [Crash::Kill, Crash::PowerLoss] {
            let mut again = run.after(crash);
            Agent::new(&mut again, Layout::default())
                .recover()
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
fn recover_to_the_end(fs: &SimFs) -> SimFs {
    let mut run = fs.after(Crash::Kill);
    Agent::new(&mut run, Layout::default()).recover().unwrap();
    run
}

#[test]
fn every_transition_survives_a_crash_after_every_step() {
    let mut host = host();
    let mut report = Vec::new();
    for scene in SCENES {
        let (from, to) = scene.ends();
        // The transition run whole: its operations, and its end.
        let mut whole = host.after(Crash::Kill);
        scene.run(&mut whole).unwrap();
        assert_whole(&whole, to, &scene.name());
        let ops = whole.ops().to_vec();
        let journal = Layout::default().journal();
        // The operation after which the transition has ended for a killed
        // process: the journal's removal.
        let end = ops
            .iter()
            .rposition(|op| op.0 == format!("unlink {}", journal.display()))
            .expect("the journal is removed")
            + 1;
        // ... and the one after which it is armed: the journal's rename.
        let armed = ops
            .iter()
            .position(|op| {
                op.0.starts_with("rename") && op.0.ends_with(&format!(" {}", journal.display()))
            })
            .expect("the journal is written")
            + 1;
        let mut recoveries = 0;
        for k in 0..ops.len() {
            let mut run = host.after(Crash::Kill);
            run.crash_after(k);
            assert!(
                scene.run(&mut run).is_err(),
                "{}: ran past its crash point {k}",
                scene.name()
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
                let journal_left = left.kind(&journal).unwrap().is_some();
                // A switch is undone, a rollback finished; what ended before
                // the crash stays ended.
                let want = match (scene, journal_left) {
                    (Scene::Switch(..), true) => from,
                    (Scene::Rollback(..), true) => to,
                    (_, false) if k >= end => to,
                    (_, false) => from,
                };
                if crash == Crash::Kill {
                    assert_eq!(
                        journal_left,
                        armed <= k && k < end,
                        "{what}: a killed process leaves the journal from its rename to its removal"
                    );
                }
                // What the results say once it is settled: the switch
                // ended ("switched") or was undone, the rollback finished.
                let settled = recover_to_the_end(&left);
                let ended = match scene {
                    Scene::Switch(..) => to,
                    Scene::Rollback(..) => from,
                };
                let said = result(&settled, ended);
                let expected = match (scene, want == to, journal_left) {
                    (Scene::Switch(..), true, _) => Some("switched".to_string()),
                    (Scene::Switch(..), false, true) => Some("interrupted-rolled-back".to_string()),
                    (Scene::Switch(..), false, false) => None,
                    (Scene::Rollback(..), true, _) => Some("rolled-back".to_string()),
                    // Not begun: as it was.
                    (Scene::Rollback(..), false, _) => result(&host, from),
                };
                assert_eq!(said, expected, "{what}: generation {ended}'s result");
                recoveries += recover_at_every_step(&left, want, &what);
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
