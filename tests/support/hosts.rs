//! What the end-to-end suites (namespace hosts in tests/e2e.rs, booted hosts
//! in tests/boot.rs) share: running commands, waiting, WireGuard keys and
//! compiling a variant of a test site.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::{project_root, sitec, write_site};

/// A command's stdout and stderr, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn run_ok(c: &mut Command) -> Output {
    let o = c.output().unwrap();
    assert!(o.status.success(), "{c:?} failed:\n{}", text(&o));
    o
}

/// Polls `ready` every 100 ms; fails the test after `limit`.
pub fn wait_for(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < limit, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Fails the test when a tool the suite runs is not installed.
pub fn require_tools(suite: &str, tools: &[&str]) {
    for tool in tools {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .unwrap()
            .status
            .success();
        assert!(
            found,
            "{tool} is missing: {suite} need it (sh scripts/test installs it)"
        );
    }
}

/// A test project: the schemas, and a WireGuard key pair per host whose
/// private key is written where `push --secrets DIR` uploads it from.
/// Returns the public keys by host.
pub fn test_project(root: &Path, hosts: &[&str]) -> BTreeMap<String, String> {
    let project = root.join("project");
    std::fs::create_dir_all(&project).unwrap();
    run_ok(
        Command::new("cp")
            .arg("-a")
            .arg(project_root().join("schemas"))
            .arg(&project),
    );
    let mut keys = BTreeMap::new();
    for host in hosts {
        let private = run_ok(Command::new("wg").arg("genkey")).stdout;
        let dir = root.join("secrets").join(host).join("etc/wireguard");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("wg0.key"), &private).unwrap();
        let mut public = Command::new("wg")
            .arg("pubkey")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        public.stdin.take().unwrap().write_all(&private).unwrap();
        let public = public.wait_with_output().unwrap();
        keys.insert(
            host.to_string(),
            String::from_utf8(public.stdout).unwrap().trim().to_string(),
        );
    }
    keys
}

/// Compiles the test site `template` (relative to the repository) into
/// `root/project-TAG/out`, its `@NAME@` markers replaced: those of `markers`, and
/// `@KEY_<host>@` by each host's public key.
pub fn compile_variant(
    root: &Path,
    template: &str,
    tag: &str,
    markers: &[(&str, &str)],
    keys: &BTreeMap<String, String>,
) -> PathBuf {
    let project = root.join("project");
    let mut site = std::fs::read_to_string(project_root().join(template)).unwrap();
    for (name, value) in markers {
        site = site.replace(&format!("@{name}@"), value);
    }
    for (host, key) in keys {
        site = site.replace(&format!("@KEY_{host}@"), key);
    }
    assert!(!site.contains("@KEY_"), "a host of {template} has no key");
    // A project of its own per variant, its out/ inside: push checks that
    // out/ is what the project's site compiles to.
    let variant = root.join(format!("project-{tag}"));
    std::fs::create_dir_all(&variant).unwrap();
    run_ok(
        Command::new("cp")
            .arg("-a")
            .arg(project.join("schemas"))
            .arg(&variant),
    );
    write_site(&variant, "e2e", &site);
    let out = variant.join("out");
    run_ok(
        sitec()
            .current_dir(&variant)
            .args(["compile", "e2e", "--out"])
            .arg(&out),
    );
    out
}

/// Where push runs for a variant's `out` (its project), and the sitec it
/// checks `out` with.
pub fn push_in(c: &mut Command, out: &Path) {
    c.current_dir(out.parent().unwrap())
        .env("SITEC", env!("CARGO_BIN_EXE_sitec"));
}

/// The lines of one host in push's output (`[host] ...`), prefix removed.
pub fn host_lines(output: &str, host: &str) -> Vec<String> {
    let prefix = format!("[{host}] ");
    output
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(str::to_string)
        .collect()
}

/// The actions push reported for a host, in order.
pub fn actions(output: &str, host: &str) -> Vec<String> {
    host_lines(output, host)
        .iter()
        .filter_map(|l| l.trim().strip_prefix("action "))
        .map(str::to_string)
        .collect()
}

/// A lab of test hosts driven by its script (tests/e2e/lab.sh for namespace
/// hosts, tests/e2e/boot.sh for booted ones): both answer `host DIR HOST
/// CMD...` and `op DIR CMD...`.
pub trait HostLab {
    /// The lab's script.
    fn script(&self) -> PathBuf;
    /// The lab's directory.
    fn dir(&self) -> &Path;
    /// compiler/host/push with `args`, deploying the variant compiled into
    /// `out`, from the operator's namespace.
    fn push_command(&self, out: &Path, args: &[&str]) -> Command;

    /// Runs push; returns its exit code and output.
    fn push(&self, out: &Path, args: &[&str]) -> (i32, String) {
        let o = self.push_command(out, args).output().unwrap();
        (o.status.code().unwrap_or(-1), text(&o))
    }

    /// Runs a push that must succeed; returns its output.
    fn push_ok(&self, out: &Path, args: &[&str]) -> String {
        let (code, out) = self.push(out, args);
        assert_eq!(code, 0, "{out}");
        out
    }

    /// Powers the lab off and removes it (its hosts, namespaces, processes).
    fn down(&self) {
        let _ = Command::new("sh")
            .arg(self.script())
            .arg("down")
            .arg(self.dir())
            .status();
    }

    /// A shell script run on a host, in its namespaces (not over ssh).
    fn on(&self, host: &str, script: &str) -> Output {
        Command::new("sh")
            .arg(self.script())
            .arg("host")
            .arg(self.dir())
            .args([host, "sh", "-c", script])
            .output()
            .unwrap()
    }

    fn on_ok(&self, host: &str, script: &str) -> String {
        let o = self.on(host, script);
        assert!(
            o.status.success(),
            "{host}: `{script}` failed:\n{}",
            text(&o)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// A command in the operator's network namespace.
    fn op(&self) -> Command {
        let mut c = Command::new("sh");
        c.arg(self.script()).arg("op").arg(self.dir());
        c
    }

    /// Where `current` points on a host (`none` before the first switch).
    fn current(&self, host: &str) -> String {
        self.on_ok(host, "readlink /var/lib/sitec/current || echo none")
            .trim()
            .to_string()
    }
}
