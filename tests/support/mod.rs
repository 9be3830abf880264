//! Helpers shared by the integration tests: run the real `sitec` binary on a
//! copy of the project, and read bundles back.

#![allow(dead_code)]

pub mod hosts;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn sitec() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sitec"))
}

/// Runs `sitec ARGS` in `dir` without colour: its exit code and stderr.
pub fn run(dir: &Path, args: &[&str]) -> (i32, String) {
    let o = sitec()
        .current_dir(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A fresh temporary directory, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let base = std::env::temp_dir().join(format!(
            "sitec-test-{tag}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&base).unwrap();
        TempDir(base)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Copies sites/, schemas/ (and out/ when asked) of the project into `dst`.
pub fn copy_project(dst: &Path, with_out: bool) {
    let mut dirs = vec!["sites", "schemas"];
    if with_out {
        dirs.push("out");
    }
    copy_dirs(dst, &dirs);
}

/// Copies folders of the project into `dst`.
fn copy_dirs(dst: &Path, dirs: &[&str]) {
    for d in dirs {
        let status = Command::new("cp")
            .args(["-a"])
            .arg(project_root().join(d))
            .arg(dst)
            .status()
            .unwrap();
        assert!(status.success(), "copying {d}");
    }
}

/// A temporary project holding only a copy of schemas/; add sites with
/// [`write_site`].
pub fn schema_project(tag: &str) -> TempDir {
    let tmp = TempDir::new(tag);
    copy_dirs(tmp.path(), &["schemas"]);
    tmp
}

/// Writes `text` as `sites/<name>/site.ncl` of the project at `root`.
pub fn write_site(root: &Path, name: &str, text: &str) {
    let dir = root.join("sites").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("site.ncl"), text).unwrap();
}

/// Compiles the project's sites into `out` and returns the command's output.
pub fn compile_into(out: &Path) -> Output {
    let o = sitec()
        .current_dir(project_root())
        .args(["compile", "--out"])
        .arg(out)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "sitec compile failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// Every regular file under `dir`, relative, sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().strip_prefix(dir).unwrap().to_path_buf())
        .collect();
    files.sort();
    files
}

/// Bundle directories `<out>/<site>/<host>`, sorted.
pub fn bundles(out: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for site in std::fs::read_dir(out).unwrap() {
        let site = site.unwrap().path();
        if !site.is_dir() || site.file_name().unwrap().to_string_lossy().starts_with('.') {
            continue;
        }
        for host in std::fs::read_dir(&site).unwrap() {
            let host = host.unwrap().path();
            // A bundle has an index; `_external` holds no host's.
            if host.join("index").is_file() {
                v.push(host);
            }
        }
    }
    v.sort();
    v
}

/// The case files of a test: `tests/<dir>/*.<ext>`, sorted; never none.
pub fn case_files(dir: &str, ext: &str) -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(project_root().join("tests").join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no tests/{dir}/*.{ext}");
    cases
}

/// A bundle's manifest.json.
pub fn manifest(bundle: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(bundle.join("manifest.json")).unwrap()).unwrap()
}

/// The host agent push brings to hosts: `sitec-agent` (`agent/`), static,
/// built once by `scripts/agent`.
pub fn agent_source() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let o = std::process::Command::new("sh")
                .arg(project_root().join("scripts/agent"))
                .current_dir(project_root())
                .output()
                .expect("sh runs");
            assert!(
                o.status.success(),
                "scripts/agent: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            PathBuf::from(String::from_utf8_lossy(&o.stdout).trim())
        })
        .clone()
}

/// Where push puts the agent on a host: named by its sha256.
pub fn host_agent() -> String {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(std::fs::read(agent_source()).unwrap());
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("/var/lib/sitec/agents/{hex}")
}

/// Rewrites a bundle's BUNDLE after its files were edited (with the hash the
/// agent's `hash` computes), so that what refuses the bundle is not the
/// hash but whatever the test is about.
pub fn reseal(bundle: &Path) {
    let o = Command::new(agent_source())
        .arg("hash")
        .arg(bundle)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::write(bundle.join("BUNDLE"), &o.stdout).unwrap();
}
