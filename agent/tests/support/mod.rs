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

/// A sealed store copy of one file, `etc/a` with `a`, and `index` on a
/// simulated host: its name (`HASH-host`) and its listing.
pub fn store_copy_of_a(fs: &mut SimFs, a: &str, index: &str) -> (String, String) {
    let files = [
        ("etc/a", 0o444, a.as_bytes()),
        ("index", 0o444, index.as_bytes()),
    ];
    let listing = sitec_format::listing::listing(files);
    let hash = sitec_format::sha256_hex(listing.as_bytes());
    let name = format!("{hash}-host");
    let dir = sitec_agent::layout::Layout::default().store_copy(&name);
    fs.mkdir_all(&dir.join("etc"), 0o755).unwrap();
    fs.write(&dir.join("etc/a"), a.as_bytes(), 0o444).unwrap();
    fs.write(&dir.join("index"), index.as_bytes(), 0o444)
        .unwrap();
    fs.write(&dir.join("BUNDLE"), format!("{hash}\n").as_bytes(), 0o444)
        .unwrap();
    fs.chmod(&dir.join("etc"), 0o555).unwrap();
    fs.chmod(&dir, 0o555).unwrap();
    (name, listing)
}
