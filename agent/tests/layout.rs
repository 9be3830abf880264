//! The state directory's table (docs/host-protocol.md, "On the host") has
//! a row for every path the agent keeps state in.

use std::collections::BTreeSet;
use std::path::Path;

use sitec_agent::index::Gen;
use sitec_agent::layout::Layout;

/// The first column of the table, each path as the docs write it.
fn documented() -> BTreeSet<String> {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/host-protocol.md"),
    )
    .unwrap();
    let section = doc
        .split("\n## On the host\n")
        .nth(1)
        .expect("a section \"On the host\"")
        .split("\n## ")
        .next()
        .unwrap();
    section
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
