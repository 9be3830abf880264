//! The state directory's table (docs/host-protocol.md, "On the host") has
//! a row for every path the agent keeps state in.

use std::collections::BTreeSet;
use std::path::Path;

use sitec_agent::host::Phase;
use sitec_agent::index::Gen;
use sitec_agent::layout::Layout;

/// The text of docs/host-protocol.md's section `## TITLE`, up to the next
/// section of that level.
fn section(title: &str) -> String {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/host-protocol.md"),
    )
    .unwrap();
    doc.split(&format!("\n## {title}\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("a section \"{title}\""))
        .split("\n## ")
        .next()
        .unwrap()
        .to_string()
}

/// The first column of the table, each path as the docs write it.
fn documented() -> BTreeSet<String> {
    section("On the host")
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .flat_map(|l| {
            let cell = l.split(" | ").next().unwrap();
            cell.split(", ")
                .map(|p| p.trim_matches('`').trim_end_matches('/').to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn every_state_path_has_its_row_in_the_table() {
    let l = Layout::default();
    let name = "<hash>-<host>";
    let n = Gen(424242);
    let mut paths = vec![
        l.store(),
        l.store_copy(name),
        l.kept_secrets(n),
        l.staged_secrets(name),
        l.generation(n),
        l.current(),
        l.backup(),
        l.journal(),
        l.armed(),
        l.result(n),
        l.booted(),
        l.boot_good(),
        l.boot_files(),
        l.boot_armed(),
        l.boot_rolled_back(),
        l.private().join("lock"),
        l.private().join("pull.lock"),
        l.private().join("pull"),
        l.state.join("activate"),
        l.state.join("activate.prev"),
        l.state.join("armed.timer"),
        l.state.join("repaired"),
        l.state.join("status.prom"),
        l.state.join("log"),
        l.state.join("lock"),
        l.state.join("interfaces.applied"),
        l.state.join("agents").join("<sha256>"),
    ];
    paths.extend(sitec_agent::pull::FILES.iter().map(|f| l.pull().join(f)));
    let rows = documented();
    let missing: Vec<String> = paths
        .iter()
        .map(|p| {
            p.strip_prefix(&l.state)
                .unwrap()
                .display()
                .to_string()
                .replace("424242", "<N>")
        })
        .filter(|p| p != "store" && !rows.contains(p))
        .collect();
    assert!(missing.is_empty(), "no row for {missing:?} in {rows:?}");
    for unit in [
        "/etc/systemd/system/sitec-boot.service",
        "/etc/systemd/system/sitec-pull.service.d/sitec-agent.conf",
    ] {
        assert!(rows.contains(unit), "{unit}");
    }
}

/// The state diagram (docs/host-protocol.md, "the states of a host"): the
/// names of its code block's states, each written `NAME(...)`.
fn diagram() -> BTreeSet<String> {
    let section = section("activate switch: the states of a host");
    let block = section.split("```").nth(1).expect("a diagram");
    let mut names = BTreeSet::new();
    // Each `(` and the capitals and hyphens right before it.
    for (i, _) in block.match_indices('(') {
        let before = &block[..i];
        let start = before
            .rfind(|c: char| !(c.is_ascii_uppercase() || c == '-'))
            .map_or(0, |j| j + 1);
        let name = before[start..].trim_matches('-');
        if name.len() > 2 {
            names.insert(name.to_string());
        }
    }
    names
}

#[test]
fn the_diagram_has_every_state_the_agent_tells_and_no_other() {
    let told: BTreeSet<String> = Phase::NAMES.iter().map(|n| n.to_string()).collect();
    assert_eq!(diagram(), told);
}

/// Each state of the diagram, as the state files make it: what `status`
/// says (`state: ...`) and `status.prom` (`sitec_state`) tell.
#[test]
fn each_state_is_read_from_the_files_that_make_it() {
    use sitec_agent::effects::{Effects as _, EffectsExt as _};
    use sitec_agent::host::HostState;
    use sitec_agent::sim::SimFs;
    let l = Layout::default();
    let mut fs = SimFs::new();
    let phase = |fs: &SimFs| HostState::read(fs, &l).unwrap().phase().to_string();
    assert_eq!(phase(&fs), "LIVE(0)");
    fs.mkdir_all(&l.generations(), 0o755).unwrap();
    for g in [1, 2] {
        fs.symlink(Path::new("../store/h-host"), &l.generation(Gen(g)))
            .unwrap();
    }
    fs.symlink(Path::new("generations/1"), &l.current())
        .unwrap();
    assert_eq!(phase(&fs), "LIVE(1)");
    fs.mkdir_all(&l.pull(), 0o700).unwrap();
    let pending = l.pull().join("pending");
    fs.write(&pending, b"d 5 h s a k\n", 0o600).unwrap();
    assert_eq!(phase(&fs), "PENDING(5)");
    let applying = l.pull().join("applying");
    fs.write(&applying, b"d 5 h a\n", 0o600).unwrap();
    assert_eq!(phase(&fs), "APPLYING(5)");
    fs.write(&l.armed(), b"2 1 1800000000\n", 0o644).unwrap();
    assert_eq!(phase(&fs), "AWAITING(2)");
    fs.write(&l.boot_armed(), b"2 120 300 b00t 0\n", 0o644)
        .unwrap();
    assert_eq!(phase(&fs), "AWAITING-BOOT(2)");
    fs.write(&l.journal(), b"1 2 switch\n", 0o644).unwrap();
    assert_eq!(phase(&fs), "IN-TRANSITION(1 → 2)");
    let prom = sitec_agent::status::prometheus(&fs, &l).unwrap();
    assert!(
        prom.contains("\nsitec_state{state=\"IN-TRANSITION\"} 1\n"),
        "{prom}"
    );
    let said = sitec_agent::status::status(&fs, &l, false, None, Vec::new()).unwrap();
    assert!(
        said.contains(&"state: IN-TRANSITION(1 → 2)".to_string()),
        "{said:?}"
    );
}
