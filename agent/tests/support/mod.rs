//! What the agent's tests share: the bundles the compiler wrote to
//! `out/`, and copying one into a simulated host.

#![allow(dead_code)] // each test file uses a part

use std::path::{Path, PathBuf};

use sitec_agent::effects::{Effects, EffectsExt as _};
use sitec_agent::sim::SimFs;

/// The repository's `out/`.
pub fn out() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../out")
}

/// Every file under `dir`.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            found.extend(walk(&p));
        } else {
            found.push(p);
        }
    }
    found
}

/// Every host's bundle in `out/` (a directory with a manifest), absolute
/// and sorted.
pub fn bundles() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = walk(&out())
        .into_iter()
        .filter(|p| p.ends_with("manifest.json"))
        .map(|p| std::path::absolute(p.parent().unwrap()).unwrap())
        .collect();
    found.sort();
    assert!(found.len() >= 5, "bundles in out/: {found:?}");
    found
}

/// Copies the bundle in `dir` (this machine's) to `to` on the simulated
/// host, each file with its mode.
pub fn copy_in(fs: &mut SimFs, dir: &Path, to: &Path) {
    for entry in walk(dir) {
        let at = to.join(entry.strip_prefix(dir).unwrap());
        fs.mkdir_all(at.parent().unwrap(), 0o755).unwrap();
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&entry).unwrap().permissions(),
        ) & 0o777;
        fs.write(&at, &std::fs::read(&entry).unwrap(), mode)
            .unwrap();
    }
}
