//! End to end: `push` deploys to hosts made of namespaces (tests/e2e/lab.sh:
//! each host has its own address, sshd, /etc and /var/lib), and the bundle's
//! `activate` switches, reloads, confirms and rolls back there with real
//! nftables, wireguard-go, ifupdown, rsync and ssh. The site is
//! tests/e2e/site.ncl, three hosts of sites/homelab.
//!
//! The labs run one at a time: the tests measure deadlines and ping loss,
//! which a loaded two-core machine would blur.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use support::hosts::{
    HostLab, actions, compile_variant, host_lines, push_in, require_tools, run_ok, test_project,
    text, wait_for,
};
use support::{TempDir, project_root};

static ONE_LAB_AT_A_TIME: Mutex<()> = Mutex::new(());
static LABS: AtomicUsize = AtomicUsize::new(0);

const ADDRESSES: [(&str, &str); 3] = [
    ("pve1", "10.0.200.11"),
    ("pve2", "10.0.200.12"),
    ("nas", "10.0.200.13"),
];
const TUNNEL: [(&str, &str); 3] = [
    ("pve1", "10.99.0.1"),
    ("pve2", "10.99.0.2"),
    ("nas", "10.99.0.3"),
];
const STORE: &str = "/var/lib/sitec/store";

/// The site variant to compile: who may ssh in, pve2's routed networks,
/// extra sysctl entries of every host.
struct Variant {
    admin: &'static str,
    pve2_routes: &'static str,
    sysctl: &'static str,
    dnat: &'static str,
}

/// Admits a second network to ssh: a network change that keeps the operator in.
const WIDER_ADMIN: &str = r#""10.0.200.1/32", "10.0.99.0/24""#;

const BASE: Variant = Variant {
    admin: r#""10.0.200.1/32""#,
    pve2_routes: r#""10.0.102.0/24""#,
    sysctl: r#""net.ipv4.ip_forward" = 1"#,
    dnat: "",
};

/// A lab of hosts; torn down (every process killed, namespaces deleted) on drop.
struct Lab {
    tmp: TempDir,
    dir: PathBuf,
    keys: BTreeMap<String, String>,
    /// The rsync both ends run (the hosts' /usr/bin/rsync and the operator's
    /// first in PATH); None: the machine's own.
    rsync: Option<PathBuf>,
    _serial: std::sync::MutexGuard<'static, ()>,
}

fn lab_sh() -> PathBuf {
    project_root().join("tests/e2e/lab.sh")
}

impl Lab {
    fn new(hosts: &[&str]) -> Lab {
        Lab::with_rsync(hosts, None)
    }

    fn with_rsync(hosts: &[&str], rsync: Option<PathBuf>) -> Lab {
        let serial = ONE_LAB_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        require_tools(
            "the end-to-end tests",
            &[
                "ip",
                "nsenter",
                "sshd",
                "ssh",
                "ssh-keygen",
                "rsync",
                "nft",
                "wg",
                "wg-quick",
                "wireguard-go",
                "ifup",
                "ping",
                "flock",
                "setsid",
            ],
        );
        let n = LABS.fetch_add(1, Ordering::SeqCst);
        let tmp = TempDir::new("e2e");
        let dir = tmp.path().join("lab");
        let all: Vec<&str> = ADDRESSES.iter().map(|(h, _)| *h).collect();
        let keys = test_project(tmp.path(), &all);
        let lab = Lab {
            tmp,
            dir,
            keys,
            rsync,
            _serial: serial,
        };
        let name = format!("sx{}-{n}", std::process::id());
        let mut up = Command::new("sh");
        up.arg(lab_sh()).arg("up").arg(&lab.dir).arg(name);
        if let Some(rsync) = &lab.rsync {
            up.env("LAB_RSYNC", rsync);
        }
        for h in hosts {
            let addr = ADDRESSES.iter().find(|(n, _)| n == h).unwrap().1;
            up.arg(format!("{h}={addr}"));
        }
        run_ok(&mut up);
        lab
    }

    /// Compiles a variant of the site into its own out directory.
    /// The base site with a wider admin network: a change of the ruleset
    /// (network-affecting), compiled as `tag`.
    fn wider(&self, tag: &str) -> PathBuf {
        self.compile(
            tag,
            &Variant {
                admin: WIDER_ADMIN,
                ..BASE
            },
        )
    }

    fn compile(&self, tag: &str, v: &Variant) -> PathBuf {
        compile_variant(
            self.tmp.path(),
            "tests/e2e/site.ncl",
            tag,
            &[
                ("ADMIN", v.admin),
                ("PVE2_ROUTES", v.pve2_routes),
                ("SYSCTL", v.sysctl),
                ("DNAT", v.dnat),
            ],
            &self.keys,
        )
    }

    /// push with `ssh` (a command) as its ssh.
    fn push_via(&self, ssh: &str, out: &Path, args: &[&str]) -> Command {
        self.push_script(&project_root().join("compiler/host/push"), ssh, out, args)
    }

    /// An ssh wrapper for push_via: `text` as the sh script `name` in the
    /// lab's directory, and the command that runs it.
    fn ssh_script(&self, name: &str, text: &str) -> String {
        let path = self.tmp.path().join(name);
        std::fs::write(&path, text).unwrap();
        format!("sh {}", path.display())
    }

    /// push script `script` with `ssh` (a command) as its ssh.
    fn push_script(&self, script: &Path, ssh: &str, out: &Path, args: &[&str]) -> Command {
        let mut c = Command::new("sh");
        push_in(&mut c, out);
        // The agent push brings (a test may set another).
        c.env("SITEC_AGENT", support::agent_source());
        c.arg(lab_sh())
            .arg("op")
            .arg(&self.dir)
            .arg("env")
            .arg(format!(
                "SITEC_SSH={ssh} -F {}",
                self.dir.join("ssh_config").display()
            ));
        if let Some(rsync) = &self.rsync {
            let dir = rsync.parent().unwrap().display();
            c.arg(format!("PATH={dir}:{}", std::env::var("PATH").unwrap()));
        }
        c.arg("sh")
            .arg(script)
            .arg("--out")
            .arg(out)
            .arg("--secrets")
            .arg(self.tmp.path().join("secrets"))
            .args(args);
        c
    }

    /// A command over ssh from the operator's namespace, as push would run it.
    fn ssh(&self, host: &str, command: &str) -> Command {
        let addr = ADDRESSES.iter().find(|(n, _)| *n == host).unwrap().1;
        let mut c = Command::new("sh");
        c.arg(lab_sh())
            .arg("op")
            .arg(&self.dir)
            .args(["ssh", "-F"])
            .arg(self.dir.join("ssh_config"))
            .args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=3"])
            .arg(format!("root@{addr}"))
            .arg(command);
        c
    }

    /// The sha256 of every file the bundle manages, as the host has it now
    /// (`-` when absent).
    fn live_files(&self, host: &str, bundle: &Path) -> BTreeMap<String, String> {
        let paths: Vec<String> = manifest_files(bundle).into_keys().collect();
        let script = format!(
            "for p in {}; do if [ -e /$p ]; then sha256sum /$p | cut -d' ' -f1; else echo -; fi; done",
            paths.join(" ")
        );
        let shas = self.on_ok(host, &script);
        assert_eq!(shas.lines().count(), paths.len(), "{shas}");
        paths
            .into_iter()
            .zip(shas.lines().map(str::to_string))
            .collect()
    }

    /// Starts the agent's `switch ARGS` of `bundle` on `host` over ssh with the
    /// test hook that pauses it at `step`; returns once it is paused, with
    /// the pids of activate and of the sleep it pauses in. Killing the first
    /// is a crash at that step; killing the second lets it carry on.
    fn paused_switch(
        &self,
        host: &str,
        bundle: &Path,
        step: &str,
        args: &str,
    ) -> (Child, [String; 2]) {
        let name = store_name(bundle);
        self.paused_activate(host, step, &format!("switch {args} {name}"))
    }

    /// As `paused_switch`, for any command line of the agent.
    fn paused_activate(&self, host: &str, step: &str, command: &str) -> (Child, [String; 2]) {
        let pause = self.tmp.path().join(format!("pause-{step}"));
        let _ = std::fs::remove_file(&pause);
        let child = self
            .ssh(
                host,
                &format!(
                    "SITEC_TEST_PAUSE_AT={step} SITEC_TEST_PAUSE_FILE={} {} {command}",
                    pause.display(),
                    agent()
                ),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for(
            &format!("the pause at {step}"),
            Duration::from_secs(60),
            || std::fs::read_to_string(&pause).is_ok_and(|s| s.ends_with('\n')),
        );
        let text = std::fs::read_to_string(&pause).unwrap();
        let pids: Vec<String> = text.split_whitespace().map(str::to_string).collect();
        (child, [pids[0].clone(), pids[1].clone()])
    }
}

impl HostLab for Lab {
    fn script(&self) -> PathBuf {
        lab_sh()
    }
    fn dir(&self) -> &Path {
        &self.dir
    }
    fn push_command(&self, out: &Path, args: &[&str]) -> Command {
        self.push_via("ssh", out, args)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.down();
    }
}

/// path -> sha256 of a bundle's manifest.
fn manifest_files(bundle: &Path) -> BTreeMap<String, String> {
    support::manifest(bundle)["files"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(p, f)| (p.clone(), f["sha256"].as_str().unwrap().to_string()))
        .collect()
}

/// The command that runs the host agent push brought.
fn agent() -> String {
    support::host_agent()
}

fn store_name(bundle: &Path) -> String {
    let hash = std::fs::read_to_string(bundle.join("BUNDLE")).unwrap();
    format!(
        "{}-{}",
        hash.trim(),
        bundle.file_name().unwrap().to_string_lossy()
    )
}

fn pings(lab: &Lab, from: &str, to: &str) -> bool {
    lab.on(from, &format!("ping -c 1 -W 1 {to}"))
        .status
        .success()
}

/// Acceptance 1, 6 and 2: the mesh comes up, an unchanged redeploy does
/// nothing, and an AllowedIPs change reloads only WireGuard without dropping
/// the tunnel.
#[test]
fn a_mesh_deploys_redeploys_as_a_no_op_and_reloads_a_peer_without_dropping_it() {
    let lab = Lab::new(&["pve1", "pve2", "nas"]);
    let a = lab.compile("a", &BASE);

    // 1. First deploy: every host switches and confirms.
    let out = lab.push_ok(&a, &["--confirm-timeout", "30", "e2e", "all"]);
    for (host, _) in ADDRESSES {
        assert!(
            out.contains(&format!("[{host}] {host}: ok, generation 1 confirmed")),
            "{host}:\n{out}"
        );
        lab.on_ok(host, "nft list table inet sitec >/dev/null");
        let lan = lab.on_ok(host, "ip -4 -br addr show lan1");
        assert!(
            lan.contains(".1/24"),
            "{host}: interfaces not applied: {lan}"
        );
        let listed = lab.on_ok(host, "wg show wg0 public-key");
        assert_eq!(listed.trim(), lab.keys[host], "{host}: wrong private key");
    }
    for (from, _) in TUNNEL {
        for (to, addr) in TUNNEL {
            if from != to {
                wait_for(
                    &format!("{from} to ping {to} over wg0"),
                    Duration::from_secs(10),
                    || pings(&lab, from, addr),
                );
            }
        }
    }

    // 6. The same bundles again: no file data sent, no action run.
    let out = lab.push_ok(&a, &["--confirm-timeout", "30", "e2e", "all"]);
    for (host, _) in ADDRESSES {
        assert!(
            out.contains(&format!("[{host}] {host}: 0 files sent")),
            "{out}"
        );
        assert!(
            out.contains(&format!("[{host}] already on generation 1")),
            "{out}"
        );
        assert!(actions(&out, host).is_empty(), "{host} ran actions:\n{out}");
    }

    // 2. pve2 routes one more network: pve1's and nas's peer entries change.
    let b = lab.compile(
        "b",
        &Variant {
            pve2_routes: r#""10.0.102.0/24", "10.0.112.0/24""#,
            ..BASE
        },
    );
    // The interface index tells a reload from a teardown and re-creation.
    let state =
        "ip -o link show wg0 | cut -d: -f1; wg show wg0 public-key; wg show wg0 listen-port";
    let before = lab.on_ok("pve1", state);
    let ping = Command::new("sh")
        .arg(lab_sh())
        .arg("host")
        .arg(&lab.dir)
        .args(["pve1", "ping", "-i", "0.2", "-W", "1", "10.99.0.2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let (code, out) = lab.push(&b, &["--confirm-timeout", "30", "e2e", "all"]);
    std::thread::sleep(Duration::from_secs(1));
    // lab.sh execs nsenter, which execs ping: the child is ping itself.
    run_ok(Command::new("kill").args(["-INT", &ping.id().to_string()]));
    let ping = ping.wait_with_output().unwrap();
    assert_eq!(code, 0, "{out}");
    for host in ["pve1", "nas"] {
        assert_eq!(actions(&out, host), ["wg-sync:wg0"], "{host}:\n{out}");
    }
    assert!(out.contains("[pve2] already on generation 1"), "{out}");
    let stats = String::from_utf8_lossy(&ping.stdout).into_owned();
    let (sent, received) = ping_counts(&stats);
    assert!(sent >= 10, "too few pings to judge:\n{stats}");
    assert!(
        received + 1 >= sent,
        "the tunnel dropped pings across the reload:\n{stats}"
    );
    let after = lab.on_ok("pve1", state);
    assert_eq!(
        before, after,
        "the reload re-created wg0 or changed its key or port"
    );
    let routes = lab.on_ok("pve1", "ip route show dev wg0");
    assert!(
        routes.contains("10.0.112.0/24"),
        "no route for the new AllowedIPs: {routes}"
    );
    let allowed = lab.on_ok("pve1", "wg show wg0 allowed-ips");
    assert!(allowed.contains("10.0.112.0/24"), "{allowed}");
}

/// Every rsync version Debian's archive offers, as `sh scripts/test`
/// unpacks them: (version, binary). Fails when one is missing, so a CI
/// machine cannot pass by testing fewer versions than Debian ships.
fn debian_rsyncs() -> Vec<(String, PathBuf)> {
    let madison = run_ok(Command::new("apt-cache").args(["madison", "rsync"]));
    let mut versions: Vec<String> = String::from_utf8_lossy(&madison.stdout)
        .lines()
        .filter_map(|l| l.split('|').nth(1))
        .map(|v| v.trim().to_string())
        .collect();
    versions.sort();
    versions.dedup();
    assert!(
        versions.len() >= 2,
        "apt-cache madison rsync lists {versions:?}: run apt-get update (sh scripts/test does)"
    );
    versions
        .into_iter()
        .map(|v| {
            let bin = project_root().join(format!("target/debian/rsync/{v}/usr/bin/rsync"));
            assert!(
                bin.is_file(),
                "rsync {v} is not unpacked at {}: sh scripts/test fetches it",
                bin.display()
            );
            (v, bin)
        })
        .collect()
}

/// push against every rsync Debian ships: a first deploy, then a redeploy
/// whose changed files go through --link-dest against the live bundle (the
/// path a relative --link-dest broke with rsync 3.2.7-1+deb12u5).
#[test]
fn push_redeploys_with_every_rsync_debian_ships() {
    for (version, rsync) in debian_rsyncs() {
        let lab = Lab::with_rsync(&["nas"], Some(rsync));
        let got = lab.on_ok("nas", "rsync --version | head -n 1");
        let upstream = version.split(['-', '+']).next().unwrap();
        assert!(got.contains(upstream), "{version}: the host runs {got}");
        let a = lab.compile("a", &BASE);
        let b = lab.compile(
            "b",
            &Variant {
                admin: r#""10.0.200.1/32", "10.0.98.0/24""#,
                pve2_routes: r#""10.0.102.0/24", "10.0.112.0/24""#,
                ..BASE
            },
        );
        let (code, out) = lab.push(&a, &["e2e", "nas"]);
        assert_eq!(code, 0, "rsync {version}, first deploy:\n{out}");
        let (code, out) = lab.push(&b, &["e2e", "nas"]);
        assert_eq!(code, 0, "rsync {version}, redeploy:\n{out}");
        // nftables.conf, wg0.conf, manifest.json, index and BUNDLE changed.
        assert!(
            out.contains("[nas] nas: 5 files sent"),
            "rsync {version}:\n{out}"
        );
        assert_eq!(
            lab.live_files("nas", &b.join("e2e/nas")),
            manifest_files(&b.join("e2e/nas"))
        );
        // The unchanged files are hard links to the live bundle's, not copies.
        let links = lab.on_ok(
            "nas",
            &format!(
                "stat -c %h {STORE}/{}/etc/network/interfaces",
                store_name(&b.join("e2e/nas"))
            ),
        );
        assert_eq!(
            links.trim(),
            "2",
            "rsync {version}: the unchanged interfaces file was sent again"
        );
        drop(lab);
    }
}

fn ping_counts(stats: &str) -> (u32, u32) {
    let line = stats
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or_else(|| panic!("no ping statistics:\n{stats}"));
    let mut words = line.split_whitespace();
    let sent = words.next().unwrap().parse().unwrap();
    let received = line
        .split(", ")
        .nth(1)
        .and_then(|w| w.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    (sent, received)
}

/// Acceptance 3: a ruleset that drops the operator's ssh is rolled back by
/// the host itself, and push says so with its own exit code.
#[test]
fn a_ruleset_that_cuts_the_operator_off_is_rolled_back_by_the_host() {
    let lab = Lab::new(&["nas"]);
    let a = lab.compile("a", &BASE);
    lab.push_ok(&a, &["e2e", "nas"]);
    // The admin network no longer holds the operator (10.0.200.1): the
    // lockout check cannot know where the operator really is.
    let b = lab.compile(
        "b",
        &Variant {
            admin: r#""10.10.68.0/24""#,
            ..BASE
        },
    );
    let timeout = 5;
    let push = lab
        .push_command(
            &b,
            &["--confirm-timeout", &timeout.to_string(), "e2e", "nas"],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(
        "the switch to generation 2",
        Duration::from_secs(60),
        || lab.current("nas") == "generations/2",
    );
    let switched = Instant::now();
    wait_for(
        "the host to roll back by itself",
        Duration::from_secs(timeout + 5),
        || lab.current("nas") == "generations/1",
    );
    let back = switched.elapsed();
    let o = push.wait_with_output().unwrap();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(5), "{out}");
    assert!(out.contains("nas: unconfirmed, rolled back"), "{out}");
    assert!(back <= Duration::from_secs(timeout + 5), "took {back:?}");
    run_ok(&mut lab.ssh("nas", "true"));
    let set = lab.on_ok("nas", "nft list set inet sitec admin.v4");
    assert!(
        set.contains("10.0.200.1"),
        "the previous ruleset is not live: {set}"
    );
    let log = lab.on_ok("nas", "cat /var/lib/sitec/log");
    assert!(
        log.contains("generation 2 was not confirmed (no confirmation before the deadline)"),
        "{log}"
    );
    let status = text(&run_ok(
        &mut lab.ssh("nas", &format!("{} status 2", agent())),
    ));
    assert!(
        status.contains("generation 2: unconfirmed-rolled-back"),
        "{status}"
    );
}

/// Acceptance 4: a bundle that fails a validator is refused by `activate
/// check`; the host keeps every file, its generation and its ruleset. With
/// --serial, push stops at that first failure and leaves the other hosts
/// alone (a canary).
#[test]
fn a_bundle_a_validator_rejects_changes_nothing_on_the_host() {
    let lab = Lab::new(&["nas", "pve1"]);
    let a = lab.compile("a", &BASE);
    lab.push_ok(&a, &["e2e", "nas", "pve1"]);
    let snapshot = |lab: &Lab| {
        lab.on_ok(
            "nas",
            "ls -l --time-style=+ /etc/nftables.conf /etc/network/interfaces /etc/wireguard /var/lib/sitec/generations
             readlink /var/lib/sitec/current; nft list ruleset; wg show wg0 dump | cut -f1-4 | LC_ALL=C sort",
        )
    };
    let before = snapshot(&lab);
    // nft -c accepts a dnat in a filter chain; the real load refuses it.
    let b = lab.compile("b", &BASE);
    let bundle = b.join("e2e/nas");
    let conf = bundle.join("etc/nftables.conf");
    let text_before = std::fs::read_to_string(&conf).unwrap();
    let broken = text_before.replacen(
        "ct state invalid drop",
        "ct state invalid drop\n\t\ttcp dport 1 dnat to 10.0.0.1",
        1,
    );
    assert_ne!(broken, text_before);
    std::fs::write(&conf, broken).unwrap();
    support::reseal(&bundle);
    // The push brings a new WireGuard key: a rejected bundle must not
    // leave it on the host (it is staged, checked and thrown away).
    let key = lab.on_ok("nas", "cat /etc/wireguard/wg0.key");
    new_key(&lab, "nas");

    // A hand-edited out/: only --force gets it past push to the host.
    let (code, out) = lab.push(&b, &["--force", "--serial", "e2e", "nas", "pve1"]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("etc/nftables.conf: rejected by nft"), "{out}");
    assert!(
        out.contains("nas: rejected before switch (exit 3)"),
        "{out}"
    );
    assert!(
        out.contains("stopping at the first failure (--serial)"),
        "{out}"
    );
    assert!(
        host_lines(&out, "pve1").is_empty(),
        "pve1 was deployed:\n{out}"
    );
    assert_eq!(
        snapshot(&lab),
        before,
        "the rejected bundle changed the host"
    );
    assert_eq!(lab.on_ok("nas", "cat /etc/wireguard/wg0.key"), key);
    assert_eq!(
        lab.on_ok("nas", "ls -A /var/lib/sitec/secrets"),
        "1\n",
        "a rejected bundle's secrets stayed staged"
    );

    // A secret others can read is refused too, and one that is not root's.
    lab.on_ok("nas", "chmod 644 /etc/wireguard/wg0.key");
    let act = format!("{} check {}", agent(), store_name(&a.join("e2e/nas")));
    let o = lab.ssh("nas", &act).output().unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        text(&o).contains("/etc/wireguard/wg0.key is readable by others"),
        "{}",
        text(&o)
    );
    lab.on_ok(
        "nas",
        "chmod 600 /etc/wireguard/wg0.key && chown 65534 /etc/wireguard/wg0.key",
    );
    let o = lab.ssh("nas", &act).output().unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        text(&o).contains(
            "secret /etc/wireguard/wg0.key is owned by uid 65534, not uid 0, which reads it (chown 0 /etc/wireguard/wg0.key)"
        ),
        "{}",
        text(&o)
    );
}

/// A new WireGuard private key for `host` where `push --secrets` takes it
/// from; returns its public key.
fn new_key(lab: &Lab, host: &str) -> String {
    let private = run_ok(Command::new("wg").arg("genkey")).stdout;
    let file = lab
        .tmp
        .path()
        .join(format!("secrets/{host}/etc/wireguard/wg0.key"));
    std::fs::write(&file, &private).unwrap();
    let o = run_ok(
        Command::new("sh")
            .arg("-c")
            .arg("wg pubkey <\"$1\"")
            .arg("sh")
            .arg(&file),
    );
    String::from_utf8(o.stdout).unwrap()
}

/// Secrets belong to a generation: a new key alone makes a new generation
/// whose actions run (the tunnel takes the key), a rollback brings the old
/// key back and the tunnel with it, and push uploads only the secrets a
/// bundle requires.
#[test]
fn secrets_are_versioned_with_their_generation() {
    let lab = Lab::new(&["nas"]);
    let a = lab.compile("a", &BASE);
    lab.push_ok(&a, &["e2e", "nas"]);
    let live = |lab: &Lab| {
        lab.on_ok(
            "nas",
            "stat -c '%a %u' /etc/wireguard/wg0.key; wg show wg0 public-key",
        )
    };
    let first = live(&lab);
    assert!(first.starts_with("600 0\n"), "{first}");

    let public = new_key(&lab, "nas");
    let out = lab.push_ok(&a, &["e2e", "nas"]);
    assert!(out.contains("[nas] nas: 0 files sent"), "{out}");
    assert!(
        out.contains("secret /etc/wireguard/wg0.key staged"),
        "{out}"
    );
    assert!(out.contains("action wg-sync:wg0"), "{out}");
    assert!(out.contains("nas: ok, generation 2 confirmed"), "{out}");
    assert_eq!(live(&lab), format!("600 0\n{public}"));
    // The same key again changes nothing.
    let out = lab.push_ok(&a, &["e2e", "nas"]);
    assert!(out.contains("nas: ok, unchanged"), "{out}");

    let act = agent();
    let o = lab.ssh("nas", &format!("{act} rollback")).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(live(&lab), first, "the rollback kept the newer key");

    // A secret's directory that another user may write to (they could
    // plant a link where sitec writes the key as root): a rollback that
    // would install a key there is refused before anything changes.
    lab.on_ok("nas", "chmod 0777 /etc/wireguard");
    let o = lab
        .ssh("nas", &format!("{act} rollback 2"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        text(&o).contains("the rollback to generation 2 would write secret /etc/wireguard/wg0.key, which is in /etc/wireguard, which is not root's alone"),
        "{}",
        text(&o)
    );
    assert_eq!(lab.current("nas"), "generations/1");
    assert_eq!(live(&lab), first);
    // ... and so is a switch: every directory above the secret counts.
    lab.on_ok("nas", "chmod 0755 /etc/wireguard && chmod 0777 /etc");
    let (code, out) = lab.push(&a, &["e2e", "nas"]);
    lab.on_ok("nas", "chmod 0755 /etc");
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("secret /etc/wireguard/wg0.key is in /etc, which is not root's alone"),
        "{out}"
    );
    assert_eq!(lab.current("nas"), "generations/1");

    // Anything but a required secret in the secrets directory is refused
    // before it reaches the host.
    let stray = lab.tmp.path().join("secrets/nas/etc/shadow");
    std::fs::write(&stray, "root::0:0:::::\n").unwrap();
    let (code, out) = lab.push(&a, &["e2e", "nas"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("secrets/nas/etc/shadow is no secret this bundle requires"),
        "{out}"
    );
    lab.on_ok("nas", "! grep -q 'root::0' /etc/shadow");
}

/// A host whose live generation was pushed by a sitec from before bundles
/// carried an index and generations kept their secrets (its store copy
/// has no `index`, the install modes, no seal, and a hash of the modes it
/// has; no `secrets/1`) still switches: the old manifest is read, its live
/// secrets are kept as that generation's before the new key goes in, and
/// a rollback to it brings them back.
#[test]
fn a_generation_from_an_older_sitec_is_switched_from() {
    let lab = Lab::new(&["nas"]);
    let a = lab.compile("a", &BASE);
    lab.push_ok(&a, &["e2e", "nas"]);
    let old = format!("/var/lib/sitec/store/{}", store_name(&a.join("e2e/nas")));
    let key = lab.on_ok("nas", "cat /etc/wireguard/wg0.key");
    lab.on_ok(
        "nas",
        &format!(
            "cd {old} && rm index && chmod -R u+w . && chmod 0600 etc/wireguard/wg0.conf &&
             find . -type f ! -path ./BUNDLE | sed 's|^\\./||' | LC_ALL=C sort | while IFS= read -r f; do
               printf '%04o %s %s\\n' \"0$(stat -c %a \"$f\")\" \"$(sha256sum \"$f\" | cut -d' ' -f1)\" \"$f\"
             done | sha256sum | cut -d' ' -f1 >BUNDLE && rm -r /var/lib/sitec/secrets/1"
        ),
    );
    new_key(&lab, "nas");
    let b = lab.wider("b");
    let out = lab.push_ok(&b, &["e2e", "nas"]);
    assert!(out.contains("nas: ok, generation 2 confirmed"), "{out}");
    assert_eq!(
        lab.on_ok("nas", "cat /var/lib/sitec/secrets/1/etc/wireguard/wg0.key"),
        key
    );
    assert_ne!(lab.on_ok("nas", "cat /etc/wireguard/wg0.key"), key);
    let o = lab
        .ssh("nas", &format!("{} rollback", agent()))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(lab.current("nas"), "generations/1");
    assert_eq!(lab.on_ok("nas", "cat /etc/wireguard/wg0.key"), key);
    assert_eq!(
        lab.on_ok("nas", "wg show wg0 private-key"),
        key,
        "the tunnel kept the newer key"
    );
}

/// A switch that brings a new key, killed at a step: the next activation
/// leaves the host on one generation with that generation's key, in the
/// file and in the tunnel (undone after the key went in, it takes the old
/// key back).
#[test]
fn a_switch_with_a_new_key_killed_at_any_step_keeps_key_and_generation_together() {
    let lab = Lab::new(&["nas"]);
    let a = lab.compile("a", &BASE);
    let b = lab.wider("b");
    let b_bundle = b.join("e2e/nas");
    lab.push_ok(&a, &["e2e", "nas"]);
    let live = |lab: &Lab| {
        lab.on_ok(
            "nas",
            "readlink -f /var/lib/sitec/current; wg pubkey </etc/wireguard/wg0.key; wg show wg0 public-key",
        )
    };
    let on_a = live(&lab);
    let new_public = new_key(&lab, "nas");
    for step in ["backup", "journal", "swap", "secrets", "actions", "confirm"] {
        lab.push_ok(&b, &["--no-switch", "e2e", "nas"]);
        let (mut switch, pids) = lab.paused_switch("nas", &b_bundle, step, "--confirm-timeout 60");
        run_ok(Command::new("kill").arg("-9").args(&pids));
        let _ = switch.wait();
        // Any activation settles what the kill left.
        lab.on_ok("nas", &format!("{} status", agent()));
        lab.on_ok("nas", &format!("{} confirm || true", agent()));
        assert_eq!(live(&lab), on_a, "killed at {step}");
    }
    let out = lab.push_ok(&b, &["e2e", "nas"]);
    assert!(out.contains("confirmed"), "{out}");
    let on_b = live(&lab);
    assert!(on_b.contains(&store_name(&b_bundle)), "{on_b}");
    assert!(
        on_b.ends_with(&format!("{new_public}{new_public}")),
        "{on_b}"
    );
}

/// Store copies are read-only once verified: each file has its install mode
/// less the write bits, directories 0555. A copy whose modes were changed
/// on the host is refused by check, and a push repairs it.
#[test]
fn store_copies_are_sealed_and_a_push_repairs_them() {
    let lab = Lab::new(&["nas"]);
    let a = lab.compile("a", &BASE);
    lab.push_ok(&a, &["e2e", "nas"]);
    let store = format!("/var/lib/sitec/store/{}", store_name(&a.join("e2e/nas")));
    let modes = |lab: &Lab| {
        lab.on_ok(
            "nas",
            &format!(
                "cd {store} && stat -c '%a %n' . etc etc/wireguard etc/wireguard/wg0.conf etc/nftables.conf etc/network/interfaces manifest.json index"
            ),
        )
    };
    let sealed = "555 .\n555 etc\n555 etc/wireguard\n400 etc/wireguard/wg0.conf\n555 etc/nftables.conf\n444 etc/network/interfaces\n444 manifest.json\n444 index\n";
    assert_eq!(modes(&lab), sealed);

    lab.on_ok("nas", &format!("chmod 644 {store}/etc/network/interfaces"));
    let check = format!("{} check {}", agent(), store_name(&a.join("e2e/nas")));
    let o = lab.ssh("nas", &check).output().unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        text(&o).contains("is not sealed: etc/network/interfaces (mode 644, sealed 0444)"),
        "{}",
        text(&o)
    );
    let out = lab.push_ok(&a, &["e2e", "nas"]);
    assert!(
        out.contains("the copy on the host had been changed; repaired"),
        "{out}"
    );
    assert_eq!(modes(&lab), sealed);

    // The live ruleset edited by hand (root writes through the missing
    // write bits) and loaded: the push repairs the file and the daemons
    // get the reviewed one again.
    lab.on_ok(
        "nas",
        "printf 'table inet sitec_hand {\\n}\\n' >>/etc/nftables.conf && nft -f /etc/nftables.conf && nft list tables | grep -q sitec_hand",
    );
    let out = lab.push_ok(&a, &["e2e", "nas"]);
    assert!(
        out.contains("the copy on the host had been changed; repaired"),
        "{out}"
    );
    assert!(out.contains("action nft-load"), "{out}");
    // A new generation on the same store copy: confirm-or-rollback armed.
    assert!(out.contains("nas: ok, generation 2 confirmed"), "{out}");
    lab.on_ok(
        "nas",
        "! nft list tables | grep -q sitec_hand && ! grep -q sitec_hand /etc/nftables.conf",
    );
    assert_eq!(modes(&lab), sealed);
}

/// An action that fails rolls the host back to where it was, with exit 4.
#[test]
fn a_failing_action_rolls_back_with_its_own_exit_code() {
    let lab = Lab::new(&["nas"]);
    let a = lab.compile("a", &BASE);
    lab.push_ok(&a, &["e2e", "nas"]);
    let before = lab.live_files("nas", &a.join("e2e/nas"));
    // A valid file whose loading fails on this host: there is no lan9.
    let b = lab.compile(
        "b",
        &Variant {
            admin: WIDER_ADMIN,
            sysctl: r#""net.ipv4.ip_forward" = 1, "net.ipv4.conf.lan9.forwarding" = 1"#,
            ..BASE
        },
    );
    let (code, out) = lab.push(&b, &["e2e", "nas"]);
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("action sysctl-load failed"), "{out}");
    assert!(out.contains("nas: failed and rolled back"), "{out}");
    // The result line and the log name the generation that failed.
    assert!(
        out.contains("activate: generation 2 failed and was rolled back to 1"),
        "{out}"
    );
    let results = lab.on_ok(
        "nas",
        "cat /var/lib/sitec/results/1 /var/lib/sitec/results/2; grep -c 'generation 2: failed-rolled-back' /var/lib/sitec/log",
    );
    assert_eq!(results, "confirmed\nfailed-rolled-back\n1\n", "{results}");
    assert_eq!(lab.current("nas"), "generations/1");
    assert_eq!(lab.live_files("nas", &a.join("e2e/nas")), before);
    let set = lab.on_ok("nas", "nft list set inet sitec admin.v4");
    assert!(
        !set.contains("10.0.99.0/24"),
        "the failed generation's ruleset stayed live: {set}"
    );
}

/// A transfer cut short leaves only a temporary directory; the next push
/// completes it, verifies it and only then names it as a store path.
#[test]
fn an_interrupted_transfer_never_becomes_a_store_path() {
    let lab = Lab::new(&["nas"]);
    let a = lab.compile("a", &BASE);
    let name = store_name(&a.join("e2e/nas"));
    // What an interrupted rsync leaves: some files, one of them cut short.
    lab.on_ok(
        "nas",
        &format!(
            "mkdir -p {STORE}/.incoming-{name}/etc && printf 'table inet sitec {{' >{STORE}/.incoming-{name}/etc/nftables.conf"
        ),
    );
    // And out/ as a fresh clone has it: git keeps no 0600 modes.
    let wg0 = a.join("e2e/nas/etc/wireguard/wg0.conf");
    std::fs::set_permissions(&wg0, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    lab.push_ok(&a, &["e2e", "nas"]);
    let store = lab.on_ok("nas", &format!("ls -A {STORE}"));
    assert_eq!(store.trim(), name, "{store}");
    let hash = lab.on_ok("nas", &format!("{} hash {STORE}/{name}", agent()));
    assert_eq!(hash.trim(), name.split('-').next().unwrap());
}

/// The timer's rollback of an unconfirmed generation, killed half-way: the
/// next activation finishes it (it never undoes it, which would bring the
/// unconfirmed generation back), and the generation it went back to stays
/// one a later rollback can go to.
#[test]
fn a_killed_rollback_of_an_unconfirmed_generation_is_finished_not_undone() {
    for step in ["links", "actions"] {
        let lab = Lab::new(&["nas"]);
        let a = lab.compile("a", &BASE);
        lab.push_ok(&a, &["e2e", "nas"]);
        let before = lab.live_files("nas", &a.join("e2e/nas"));
        let b = lab.wider("b");
        // Generation 2 awaits confirmation (push --no-switch only stages it).
        lab.push_ok(&b, &["--no-switch", "e2e", "nas"]);
        let b_bundle = b.join("e2e/nas");
        let switched = run_ok(&mut lab.ssh(
            "nas",
            &format!(
                "{} switch --confirm-timeout 600 {}",
                agent(),
                store_name(&b_bundle)
            ),
        ));
        assert!(
            text(&switched).contains("confirm within 600 s"),
            "{}",
            text(&switched)
        );
        // The deadline passes; the timer (expire, as the detached timer
        // runs it) fires and dies in the middle of its rollback.
        lab.on_ok("nas", "sed -i 's/ [0-9]*$/ 1/' /var/lib/sitec/armed");
        let (mut expire, pids) = lab.paused_activate("nas", step, "expire 2");
        run_ok(Command::new("kill").arg("-9").args(&pids));
        let _ = expire.wait();
        let confirm = lab
            .ssh("nas", &format!("{} confirm 2", agent()))
            .output()
            .unwrap();
        assert_eq!(
            confirm.status.code(),
            Some(5),
            "killed at {step}: generation 2 was confirmed after its rollback began:\n{}",
            text(&confirm)
        );
        assert_eq!(lab.current("nas"), "generations/1", "killed at {step}");
        assert_eq!(
            lab.live_files("nas", &a.join("e2e/nas")),
            before,
            "killed at {step}"
        );
        let results = lab.on_ok(
            "nas",
            "cat /var/lib/sitec/results/1 /var/lib/sitec/results/2",
        );
        assert_eq!(
            results, "confirmed\nunconfirmed-rolled-back\n",
            "killed at {step}"
        );
        let set = lab.on_ok("nas", "nft list set inet sitec admin.v4");
        assert!(!set.contains("10.0.99.0/24"), "killed at {step}: {set}");
    }
}

/// A generation the operator rolled back is neither one a later plain
/// rollback goes to nor one a late confirm keeps; an empty journal or
/// `armed` file (a write lost to a power cut) is reported, never a silent
/// exit.
#[test]
fn rolled_back_generations_stay_rolled_back_and_corrupt_state_is_reported() {
    let lab = Lab::new(&["nas"]);
    let variant = |tag: &str, admin: &'static str| lab.compile(tag, &Variant { admin, ..BASE });
    let a = variant("a", r#""10.0.200.1/32""#);
    let b = variant("b", r#""10.0.200.1/32", "10.0.99.0/24""#);
    let c = variant("c", r#""10.0.200.1/32", "10.0.98.0/24""#);
    for out in [&a, &b] {
        lab.push_ok(out, &["e2e", "nas"]);
    }
    let act = "/var/lib/sitec/activate";
    let rollback = run_ok(&mut lab.ssh("nas", &format!("{act} rollback")));
    assert!(
        text(&rollback).contains("rolled back from generation 2 to 1"),
        "{}",
        text(&rollback)
    );
    let confirm = lab
        .ssh("nas", &format!("{act} confirm 2"))
        .output()
        .unwrap();
    assert_eq!(confirm.status.code(), Some(5), "{}", text(&confirm));
    lab.push_ok(&c, &["e2e", "nas"]);
    assert_eq!(lab.current("nas"), "generations/3");
    run_ok(&mut lab.ssh("nas", &format!("{act} rollback")));
    assert_eq!(
        lab.current("nas"),
        "generations/1",
        "went back to the rolled-back generation 2"
    );

    for (file, command) in [("journal", "rollback"), ("armed", "confirm")] {
        lab.on_ok("nas", &format!(": >/var/lib/sitec/{file}"));
        let o = lab
            .ssh("nas", &format!("{act} {command}"))
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{file}: {}", text(&o));
        assert!(
            text(&o).contains(&format!("/var/lib/sitec/{file} is corrupt")),
            "{}",
            text(&o)
        );
        lab.on_ok("nas", &format!("rm /var/lib/sitec/{file}"));
    }
    assert_eq!(lab.current("nas"), "generations/1");
}

/// Steps of `activate switch`, in order; the test hook pauses at each.
const STEPS: [&str; 11] = [
    "backup", "journal", "retire", "links", "prune", "swap", "relink", "secrets", "actions",
    "units", "confirm",
];

/// Acceptance 5: SIGKILL at every step of a switch leaves the host on the
/// old or the new generation (never a mix), and the next activation works.
#[test]
fn a_switch_killed_at_any_step_leaves_one_whole_generation() {
    let lab = Lab::new(&["pve1"]);
    let a = lab.compile("a", &BASE);
    let b = lab.compile(
        "b",
        &Variant {
            admin: WIDER_ADMIN,
            pve2_routes: r#""10.0.102.0/24", "10.0.112.0/24""#,
            ..BASE
        },
    );
    let (a_bundle, b_bundle) = (a.join("e2e/pve1"), b.join("e2e/pve1"));
    let (a_files, b_files) = (manifest_files(&a_bundle), manifest_files(&b_bundle));
    assert_ne!(a_files, b_files);
    lab.push_ok(&a, &["e2e", "pve1"]);
    // The dry run tells what would change, and changes nothing: no store
    // path, no secret, no line in the log.
    let host_state = "cat /var/lib/sitec/log | wc -l; ls /var/lib/sitec/store; stat -c %i /etc/wireguard/wg0.key";
    let before = lab.on_ok("pve1", host_state);
    let out = lab.push_ok(&b, &["--dry-run", "e2e", "pve1"]);
    for line in [
        "  changed etc/nftables.conf",
        "  changed etc/wireguard/wg0.conf",
        "  action nft-load",
        "  action wg-sync:wg0",
        "  network configuration changes: the switch must be confirmed or it rolls back",
        "pve1: dry run, not switched",
    ] {
        assert!(
            host_lines(&out, "pve1").iter().any(|l| l == line),
            "no `{line}`:\n{out}"
        );
    }
    assert_eq!(
        lab.on_ok("pve1", host_state),
        before,
        "the dry run changed the host"
    );
    // Put B in the store without switching.
    let out = lab.push_ok(&b, &["--no-switch", "e2e", "pve1"]);
    assert!(out.contains("pve1: staged, not switched"), "{out}");
    assert_eq!(lab.current("pve1"), "generations/1", "--no-switch switched");
    // Switches to a bundle and confirms; its files and its ruleset are live.
    let switch_to = |bundle: &Path, files: &BTreeMap<String, String>, what: &str| {
        let o = run_ok(&mut lab.ssh(
            "pve1",
            &format!(
                "{0} switch --confirm-timeout 60 {1} && {0} confirm",
                agent(),
                store_name(bundle)
            ),
        ));
        assert_eq!(
            &lab.live_files("pve1", &a_bundle),
            files,
            "{what}:\n{}",
            text(&o)
        );
        let set = lab.on_ok("pve1", "nft list set inet sitec admin.v4");
        assert_eq!(
            set.contains("10.0.99.0/24"),
            files == &b_files,
            "{what}: the ruleset live is not the generation's: {set}"
        );
    };

    for step in STEPS {
        let (mut switch, pids) = lab.paused_switch("pve1", &b_bundle, step, "--confirm-timeout 60");
        run_ok(Command::new("kill").arg("-9").args(&pids));
        let _ = switch.wait();

        let live = lab.live_files("pve1", &a_bundle);
        assert!(
            live == a_files || live == b_files,
            "killed at {step}: a mix of generations:\n{live:#?}\nA {a_files:#?}\nB {b_files:#?}"
        );
        let current = lab.current("pve1");
        let on_b = live == b_files;
        let gen_of_current = lab.on_ok("pve1", "readlink -f /var/lib/sitec/current");
        assert_eq!(
            gen_of_current.trim().ends_with(&store_name(&b_bundle)),
            on_b,
            "killed at {step}: current ({current}) and the files disagree"
        );

        // The next activation finishes the job; then back to A.
        switch_to(&b_bundle, &b_files, &format!("B after a kill at {step}"));
        switch_to(&a_bundle, &a_files, &format!("back to A after {step}"));
    }
    // Without a number, rollback goes to the generation live before (B),
    // past those the kills left unfinished.
    let o = run_ok(&mut lab.ssh("pve1", &format!("{} rollback", agent())));
    assert_eq!(lab.live_files("pve1", &a_bundle), b_files, "{}", text(&o));
}

/// Acceptance 7: a second activation waits for the first and never runs
/// interleaved with it.
#[test]
fn two_activations_at_once_never_interleave() {
    let lab = Lab::new(&["pve1"]);
    let a = lab.compile("a", &BASE);
    let b = lab.wider("b");
    lab.push_ok(&a, &["e2e", "pve1"]);
    lab.push_ok(&b, &["--no-switch", "e2e", "pve1"]);
    let (a, b) = (a.join("e2e/pve1"), b.join("e2e/pve1"));
    let log_before = lab.on_ok("pve1", "cat /var/lib/sitec/log").lines().count();

    let (first, pids) = lab.paused_switch("pve1", &b, "actions", "");
    let mut second: Child = lab
        .ssh("pve1", &format!("{} switch {}", agent(), store_name(&a)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        second.try_wait().unwrap().is_none(),
        "the second activation did not wait for the first"
    );
    // Let the first carry on: end its pause.
    run_ok(Command::new("kill").arg(&pids[1]));
    let first = first.wait_with_output().unwrap();
    let second = second.wait_with_output().unwrap();
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    // The first left generation 2 awaiting confirmation: the second refuses.
    assert_eq!(second.status.code(), Some(6), "{}", text(&second));
    assert!(
        text(&second).contains("awaits confirmation"),
        "{}",
        text(&second)
    );

    let log = lab.on_ok("pve1", "cat /var/lib/sitec/log");
    let pid_of = |l: &str| {
        l.split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .trim_matches(|c| c == '[' || c == ']')
            .to_string()
    };
    let lines: Vec<&str> = log
        .lines()
        .skip(log_before)
        .filter(|l| l.starts_with("20"))
        .collect();
    let last_first = lines.iter().rposition(|l| pid_of(l) == pids[0]).unwrap();
    let first_second = lines
        .iter()
        .position(|l| pid_of(l) != pids[0] && l.contains("switch to"))
        .expect("the second activation logged nothing");
    assert!(
        last_first < first_second,
        "the activations interleaved:\n{}",
        lines.join("\n")
    );
    run_ok(&mut lab.ssh("pve1", &format!("{} confirm", agent())));
}

/// First activation keeps what it replaces; rolling back to generation 0
/// puts it back, as regular files.
#[test]
fn rolling_back_to_generation_0_restores_the_files_that_were_there() {
    let lab = Lab::new(&["nas"]);
    let original = |lab: &Lab| {
        lab.on_ok(
            "nas",
            "cat /etc/network/interfaces /etc/nftables.conf
             if [ -e /etc/wireguard/wg0.conf ]; then echo wg0.conf; else echo no wg0.conf; fi",
        )
    };
    let before = original(&lab);
    let a = lab.compile("a", &BASE);
    lab.push_ok(&a, &["e2e", "nas"]);
    assert_ne!(original(&lab), before);
    let act = agent();
    let o = run_ok(&mut lab.ssh("nas", &format!("{act} rollback 0")));
    assert!(
        text(&o).contains("rolled back from generation 1 to 0"),
        "{}",
        text(&o)
    );
    assert_eq!(original(&lab), before);
    lab.on_ok(
        "nas",
        "[ ! -L /etc/network/interfaces ] && [ ! -L /etc/nftables.conf ]",
    );
    let list = text(&run_ok(&mut lab.ssh("nas", &format!("{act} list"))));
    assert!(list.contains("* 0 ../backup"), "{list}");
    // And forward again.
    let out = lab.push_ok(&a, &["e2e", "nas"]);
    assert!(out.contains("nas: ok, generation 2 confirmed"), "{out}");
}

/// A rollback takes back the runtime state the newer generation set, not
/// only its files: a generation without NAT deletes the NAT table of the
/// one before; sysctl values the older generation does not set return to
/// what the host had; generation 0, on a host that had no ruleset, leaves
/// no table of sitec's loaded. A `net.*` sysctl change must be confirmed.
#[test]
fn rollbacks_take_back_runtime_state_not_only_files() {
    let lab = Lab::new(&["nas"]);
    lab.on_ok("nas", "rm -f /etc/nftables.conf");
    let sysctls = "sysctl -n net.ipv4.ip_forward net.ipv4.conf.all.log_martians";
    let host_had = lab.on_ok("nas", sysctls);
    assert_eq!(host_had, "0\n0\n", "a fresh namespace forwards nothing");
    let a = lab.compile("a", &BASE);
    lab.push_ok(&a, &["e2e", "nas"]);

    // 2: a port forward and one more sysctl.
    let b = lab.compile(
        "b",
        &Variant {
            dnat: r#"{ proto = 'tcp, port = 8443, to = "10.99.0.1" }"#,
            sysctl: r#""net.ipv4.ip_forward" = 1, "net.ipv4.conf.all.log_martians" = 1"#,
            ..BASE
        },
    );
    lab.push_ok(&b, &["e2e", "nas"]);
    let nat = lab.on_ok("nas", "nft list chain inet sitec prerouting");
    assert!(nat.contains("dnat ip to 10.99.0.1"), "{nat}");
    assert_eq!(lab.on_ok("nas", sysctls), "1\n1\n");

    // 3 (as 1): the NAT chains and the extra sysctl go.
    let out = lab.push_ok(&a, &["e2e", "nas"]);
    assert!(out.contains("nas: ok, generation 3 confirmed"), "{out}");
    let tables = lab.on_ok("nas", "nft list tables");
    assert_eq!(tables.trim(), "table inet sitec", "{tables}");
    assert_eq!(lab.on_ok("nas", sysctls), "1\n0\n");

    // 4: a change of a net.* sysctl alone must be confirmed.
    let c = lab.compile(
        "c",
        &Variant {
            sysctl: r#""net.ipv4.ip_forward" = 1, "net.ipv4.conf.all.log_martians" = 1"#,
            ..BASE
        },
    );
    let out = lab.push_ok(&c, &["e2e", "nas"]);
    assert!(out.contains("nas: ok, generation 4 confirmed"), "{out}");

    // 0: the host as it was, with no ruleset at all.
    let act = agent();
    let o = run_ok(&mut lab.ssh("nas", &format!("{act} rollback 0")));
    let tables = lab.on_ok("nas", "nft list tables");
    assert_eq!(tables, "", "{}", text(&o));
    assert_eq!(lab.on_ok("nas", sysctls), host_had);
    lab.on_ok("nas", "! test -e /etc/nftables.conf");
}

/// The managed paths of these bundles that are links to nothing on a host.
fn dangling(lab: &Lab, host: &str, bundles: &[&Path]) -> Vec<String> {
    let paths: BTreeSet<String> = bundles
        .iter()
        .flat_map(|b| manifest_files(b).into_keys())
        .collect();
    let script = format!(
        "for p in {}; do if [ -L /$p ] && [ ! -e /$p ]; then echo $p; fi; done",
        paths.into_iter().collect::<Vec<_>>().join(" ")
    );
    lab.on_ok(host, &script)
        .lines()
        .map(str::to_string)
        .collect()
}

/// No step of a switch leaves a managed path pointing at nothing: not the
/// first switch (the host's own files stay until sitec's are linked), nor
/// one that drops a file. A switch that stops at an error (a command
/// failing under `set -e`) is undone at once, with exit 4.
#[test]
fn no_step_leaves_a_path_dangling_and_an_abort_is_undone_at_once() {
    let lab = Lab::new(&["nas"]);
    let a = lab.compile("a", &BASE);
    let b = lab.compile("b", &Variant { sysctl: "", ..BASE });
    let (a_bundle, b_bundle) = (a.join("e2e/nas"), b.join("e2e/nas"));
    let sysctl = "etc/sysctl.d/90-sitec.conf";
    assert!(manifest_files(&a_bundle).contains_key(sysctl));
    assert!(!manifest_files(&b_bundle).contains_key(sysctl));
    let interfaces = lab.on_ok("nas", "cat /etc/network/interfaces");

    // The first switch, killed at each step before the swap.
    lab.push_ok(&a, &["--no-switch", "e2e", "nas"]);
    for step in ["links", "prune", "swap"] {
        let (mut switch, pids) = lab.paused_switch("nas", &a_bundle, step, "");
        run_ok(Command::new("kill").arg("-9").args(&pids));
        let _ = switch.wait();
        assert_eq!(
            dangling(&lab, "nas", &[&a_bundle]),
            [""; 0],
            "killed at {step}"
        );
        assert_eq!(
            lab.on_ok("nas", "cat /etc/network/interfaces"),
            interfaces,
            "killed at {step}"
        );
    }
    lab.push_ok(&a, &["e2e", "nas"]);
    let on_a = lab.current("nas");
    let a_files = lab.live_files("nas", &a_bundle);

    // A switch that drops a file, killed around the swap.
    lab.push_ok(&b, &["--no-switch", "e2e", "nas"]);
    for step in ["prune", "swap", "relink"] {
        let (mut switch, pids) = lab.paused_switch("nas", &b_bundle, step, "");
        run_ok(Command::new("kill").arg("-9").args(&pids));
        let _ = switch.wait();
        assert_eq!(
            dangling(&lab, "nas", &[&a_bundle, &b_bundle]),
            [""; 0],
            "killed at {step}"
        );
    }

    // An abort at any step of the transition is undone before activate exits.
    for step in [
        "retire", "links", "prune", "swap", "relink", "secrets", "actions", "units",
    ] {
        let o = lab
            .ssh(
                "nas",
                &format!(
                    "SITEC_TEST_FAIL_AT={step} {} switch {}",
                    agent(),
                    store_name(&b_bundle)
                ),
            )
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(4), "failed at {step}:\n{}", text(&o));
        assert!(
            text(&o).contains(&format!(
                "settled: generation {} is live",
                &on_a["generations/".len()..]
            )),
            "failed at {step}:\n{}",
            text(&o)
        );
        lab.on_ok(
            "nas",
            "! test -e /var/lib/sitec/journal && ! test -e /var/lib/sitec/armed",
        );
        assert_eq!(lab.current("nas"), on_a, "failed at {step}");
        assert_eq!(
            lab.live_files("nas", &a_bundle),
            a_files,
            "failed at {step}"
        );
    }
}

/// An ssh that writes each command line it is given to `$log`, each
/// followed by a line `@@`.
const LOGGING_SSH: &str = r#"
printf '%s\n@@\n' "$*" >>"$log"
exec ssh "$@"
"#;

/// The secrets and the bundle travel over the one connection push shares
/// up to the switch, with ssh's own key exchange; the connections after
/// it carry no secret (the confirmation proves only that a new one can be
/// made), and where ssh's default leads with the hybrid post-quantum
/// exchange whose key generation costs about 0.1 s of CPU (OpenSSH 9.0 to
/// 9.8) they prefer curve25519.
#[test]
fn only_connections_without_secrets_prefer_the_cheaper_key_exchange() {
    let lab = Lab::new(&["nas"]);
    let a = lab.compile("a", &BASE);
    lab.push_ok(&a, &["e2e", "nas"]);
    new_key(&lab, "nas");
    let log = lab.tmp.path().join("ssh.log");
    let ssh = lab.ssh_script(
        "logging-ssh",
        &format!("log={}\n{LOGGING_SSH}", log.display()),
    );
    let o = lab.push_via(&ssh, &a, &["e2e", "nas"]).output().unwrap();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("nas: ok, generation 2 confirmed"), "{out}");
    let defaults = text(&run_ok(Command::new("ssh").args([
        "-G",
        "-F",
        "/dev/null",
        "--",
        "sitec.invalid",
    ])));
    let slow = defaults
        .lines()
        .any(|l| l.starts_with("kexalgorithms sntrup761x25519-sha512"));
    let said = std::fs::read_to_string(&log).unwrap();
    // Nothing of the secret is on a command line (the host's users read
    // those): not even its hash.
    let key = lab.tmp.path().join("secrets/nas/etc/wireguard/wg0.key");
    let sum = sitec_format::sha256_hex(&std::fs::read(&key).unwrap());
    assert!(!said.contains(&sum), "{said}");
    let lines: Vec<&str> = said
        .split("\n@@\n")
        .filter(|l| !l.contains(" -G "))
        .collect();
    let prefers = |l: &str| l.contains("-o KexAlgorithms=^curve25519-sha256");
    let shared: Vec<&&str> = lines
        .iter()
        .filter(|l| l.contains("ControlPath=/tmp/sitec-push."))
        .collect();
    assert!(shared.iter().any(|l| l.contains(" switch ")), "{said}");
    assert!(
        shared
            .iter()
            .any(|l| l.contains("secret /etc/wireguard/wg0.key staged")),
        "{said}"
    );
    assert!(!shared.iter().any(|l| prefers(l)), "{said}");
    let confirm: Vec<&&str> = lines.iter().filter(|l| l.contains(" confirm 2")).collect();
    assert_eq!(confirm.len(), 1, "{said}");
    assert!(confirm[0].contains("ControlPath=none"), "{said}");
    assert_eq!(prefers(confirm[0]), slow, "{said}");

    // The operator's own choice of key exchange is left as it is.
    std::fs::write(&log, "").unwrap();
    let chosen = format!("{ssh} -o KexAlgorithms=curve25519-sha256");
    let o = lab
        .push_via(&chosen, &a, &["--status", "e2e", "nas"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(said.contains(" drift"), "{said}");
    assert!(!said.contains("KexAlgorithms=^"), "{said}");

    // A change that uploads no secret (the host keeps the key it has): its
    // shared connection is one that carries none.
    let aside = lab.tmp.path().join("secrets-aside");
    std::fs::rename(lab.tmp.path().join("secrets"), &aside).unwrap();
    std::fs::write(&log, "").unwrap();
    let b = lab.compile("b", &Variant { sysctl: "", ..BASE });
    let o = lab.push_via(&ssh, &b, &["e2e", "nas"]).output().unwrap();
    std::fs::rename(&aside, lab.tmp.path().join("secrets")).unwrap();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("nas: ok, generation 3"), "{out}");
    let said = std::fs::read_to_string(&log).unwrap();
    let shared: Vec<&str> = said
        .split("\n@@\n")
        .filter(|l| l.contains("ControlPath=/tmp/sitec-push."))
        .collect();
    assert!(shared.iter().any(|l| l.contains(" switch ")), "{said}");
    assert!(!said.contains(" staged"), "{said}");
    assert!(shared.iter().all(|l| prefers(l) == slow), "{said}");
}

/// A host keeps its newest ten generations: the eleventh switch lets go
/// of the first, with its key and the sealed store copy only it ran, on
/// a real host's state directory.
#[test]
fn a_host_lets_go_of_its_oldest_generation_with_its_key_and_copy() {
    let lab = Lab::new(&["nas"]);
    let only_first = lab.compile(
        "c",
        &Variant {
            sysctl: r#""net.ipv4.ip_forward" = 1, "net.ipv4.conf.all.rp_filter" = 2"#,
            ..BASE
        },
    );
    let a = lab.compile("a", &BASE);
    let b = lab.compile("b", &Variant { sysctl: "", ..BASE });
    lab.push_ok(&only_first, &["e2e", "nas"]);
    let first = format!("{STORE}/{}", store_name(&only_first.join("e2e/nas")));
    lab.on_ok(
        "nas",
        &format!("test -d {first} && test -d /var/lib/sitec/secrets/1"),
    );
    for i in 0..10 {
        let out = lab.push_ok(if i % 2 == 0 { &a } else { &b }, &["e2e", "nas"]);
        assert!(
            out.contains(&format!("nas: ok, generation {}", i + 2)),
            "{out}"
        );
    }
    let gone = |path: &str| {
        !lab.on("nas", &format!("test -e {path} || test -L {path}"))
            .status
            .success()
    };
    assert!(gone("/var/lib/sitec/generations/1"));
    assert!(gone("/var/lib/sitec/secrets/1"));
    assert!(gone("/var/lib/sitec/results/1"));
    assert!(gone(&first), "{first} stays");
    lab.on_ok(
        "nas",
        "for g in 2 3 4 5 6 7 8 9 10 11; do test -L /var/lib/sitec/generations/$g && test -f /var/lib/sitec/secrets/$g/etc/wireguard/wg0.key || exit 1; done",
    );
    let log = lab.on_ok("nas", "cat /var/lib/sitec/log");
    assert!(log.contains("let go of generations 1 "), "{log}");
    // The operator's rollback still finds its way back.
    lab.on_ok("nas", &format!("{} rollback", agent()));
}

/// An agent cut short on the host (an earlier sitec's push shared its
/// temporary name) is sent again, not trusted by its name; and a push run
/// with a TMPDIR holding a blank seals its copy as usual and touches
/// nothing outside it.
#[test]
fn a_cut_short_agent_is_sent_again_and_a_blank_in_tmpdir_is_no_harm() {
    let lab = Lab::new(&["nas"]);
    let a = lab.compile("a", &BASE);
    lab.push_ok(&a, &["e2e", "nas"]);
    let agent = sitec_format::sha256_hex(&std::fs::read(support::agent_source()).unwrap());
    let on_host = format!("/var/lib/sitec/agents/{agent}");
    lab.on_ok("nas", &format!("truncate -s 4096 {on_host}"));
    let tmp = lab.tmp.path().join("my tmp");
    let beside = lab.tmp.path().join("my");
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::create_dir_all(&beside).unwrap();
    let mode = |p: &Path| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions())
            & 0o7777
    };
    let before = mode(&beside);
    let b = lab.compile("b", &Variant { sysctl: "", ..BASE });
    let o = lab
        .push_via("ssh", &b, &["e2e", "nas"])
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("nas: ok, generation 2"), "{out}");
    assert_eq!(
        lab.on_ok("nas", &format!("sha256sum <{on_host}"))
            .split_whitespace()
            .next(),
        Some(agent.as_str())
    );
    assert_eq!(mode(&beside), before, "push changed {}", beside.display());
}

/// An ssh that loses the connection of a switch once the switch began, as a
/// network change can make it: the client dies, the host carries on.
const DROPPING_SSH: &str = r#"
case "$*" in
*" switch --confirm-timeout "*)
	out=$(mktemp)
	# Its stdin (the secrets) too: sh gives a background job /dev/null.
	exec 3<&0
	ssh "$@" <&3 >"$out" 2>&1 &
	until grep -q '^switching generation' "$out"; do
		kill -0 $! 2>/dev/null || break
		sleep 0.05
	done
	kill -9 $! 2>/dev/null || true
	cat "$out"
	rm -f "$out"
	exit 255 ;;
*) exec ssh "$@" ;;
esac
"#;

/// When the ssh session of a switch drops (exit 255), push asks the host
/// over a new connection and confirms the generation it switched to, which
/// the host then keeps past its deadline.
#[test]
fn push_confirms_over_a_new_connection_when_the_switch_session_drops() {
    let lab = Lab::new(&["nas"]);
    let a = lab.compile("a", &BASE);
    lab.push_ok(&a, &["e2e", "nas"]);
    let b = lab.wider("b");
    let drop = lab.ssh_script("dropping-ssh", DROPPING_SSH);
    let o = lab
        .push_via(&drop, &b, &["--confirm-timeout", "10", "e2e", "nas"])
        .output()
        .unwrap();
    confirmed_after_drop(&lab, &o);
    // Kept past its deadline.
    std::thread::sleep(Duration::from_secs(12));
    assert_eq!(lab.current("nas"), "generations/2");
}

/// push's session dropped, and push confirmed generation 2 over a new one.
fn confirmed_after_drop(lab: &Lab, o: &std::process::Output) {
    let out = text(o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains("nas: the connection dropped during the switch"),
        "{out}"
    );
    assert!(out.contains("nas: ok, generation 2 confirmed"), "{out}");
    assert_eq!(lab.current("nas"), "generations/2");
    assert_eq!(
        lab.on_ok("nas", "cat /var/lib/sitec/results/2").trim(),
        "confirmed"
    );
}

/// On nas: the tunnel is gone and a route wg-quick adds is taken, so
/// bringing it up again (wg-sync) fails.
const WG_CANNOT_COME_UP: &str = "ip link del wg0 && ip route add 10.0.101.0/24 dev lan1";

/// nas on generation 1 of the base bundle, then a rotation (a new key, the
/// same bundle: the same store name) pushed through the ssh wrapper whose
/// text `wrapper` gives; with `failing`, the rotation's wg-sync fails and
/// its switch goes back to generation 1. The lab, push's output, and the
/// key nas had before.
fn rotate_through(
    wrapper: impl Fn(&Lab) -> String,
    failing: bool,
) -> (Lab, std::process::Output, String) {
    let lab = Lab::new(&["nas"]);
    let a = lab.compile("a", &BASE);
    lab.push_ok(&a, &["e2e", "nas"]);
    let key = lab.on_ok("nas", "cat /etc/wireguard/wg0.key");
    new_key(&lab, "nas");
    if failing {
        lab.on_ok("nas", WG_CANNOT_COME_UP);
    }
    let ssh = lab.ssh_script("wrapped-ssh", &wrapper(&lab));
    let o = lab.push_via(&ssh, &a, &["e2e", "nas"]).output().unwrap();
    (lab, o, key)
}

/// What push says of a rotation whose switch went back to generation 1
/// after its session dropped: not a success, and what became of it.
fn rolled_back_after_a_drop(lab: &Lab, o: &std::process::Output) {
    let out = text(o);
    assert_eq!(o.status.code(), Some(4), "{out}");
    assert!(
        out.contains("nas: the switch did not take: the host is on generation 1"),
        "{out}"
    );
    assert!(
        out.contains("this bundle's generation: failed-rolled-back"),
        "{out}"
    );
    assert_eq!(lab.current("nas"), "generations/1");
}

/// A key rotation reuses the bundle's store name: when its switch's session
/// drops and the switch then fails and rolls back to the generation before
/// (the same bundle, the old key), push does not take the host's being on
/// "this bundle" for success. It knows which generation the switch made
/// and reports that it did not take.
#[test]
fn a_rotation_rolled_back_after_the_session_dropped_is_no_success() {
    let (lab, o, _) = rotate_through(|_| DROPPING_SSH.to_string(), true);
    rolled_back_after_a_drop(&lab, &o);
}

/// An ssh that loses the connection of a switch as soon as the host began
/// it (its log says so), before a line of its output came back. `$log` is
/// the host's log, as this machine sees it.
const EARLY_DROPPING_SSH: &str = r#"
case "$*" in
*" switch --confirm-timeout "*)
	n=$(wc -l <"$log")
	exec 3<&0
	ssh "$@" <&3 >/dev/null 2>&1 &
	until tail -n +$((n + 1)) "$log" | grep -q 'switch to .* begins'; do
		kill -0 $! 2>/dev/null || break
		sleep 0.02
	done
	kill -9 $! 2>/dev/null || true
	exit 255 ;;
*) exec ssh "$@" ;;
esac
"#;

/// A rotation whose session drops before the switch said which generation
/// it made, and whose switch then fails and goes back to the generation
/// it left (the same bundle): push says what became of the generation the
/// switch made, not that the switch never reached the host.
#[test]
fn a_rotation_that_failed_after_an_early_drop_is_reported_rolled_back() {
    let (lab, o, _) = rotate_through(
        |lab| {
            format!(
                "log={}\n{EARLY_DROPPING_SSH}",
                lab.dir.join("nas/lib/sitec/log").display()
            )
        },
        true,
    );
    rolled_back_after_a_drop(&lab, &o);
}

/// An ssh whose connection for the switch is lost before the host hears of
/// it (as a connection that times out does): nothing switches.
const LOST_SSH: &str = r#"
case "$*" in
*" switch --confirm-timeout "*)
	echo "ssh: connect to host: Connection timed out" >&2
	exit 255 ;;
*) exec ssh "$@" ;;
esac
"#;

/// A rotation whose switch never reached the host: the host is still on the
/// generation it ran before, which is this bundle's too (a rotation reuses
/// the store name). push does not report that as a success.
#[test]
fn a_rotation_whose_switch_never_reached_the_host_is_no_success() {
    let (lab, o, key) = rotate_through(|_| LOST_SSH.to_string(), false);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(
        out.contains(
            "nas: the switch did not take: the host is still on generation 1, as before this push"
        ),
        "{out}"
    );
    assert!(!out.contains("nas: ok"), "{out}");
    assert_eq!(lab.current("nas"), "generations/1");
    assert_eq!(lab.on_ok("nas", "cat /etc/wireguard/wg0.key"), key);
}

/// A first push whose session is lost before the host hears of it: the
/// host has no generation, as before, and push says so (not that it is on
/// some generation, nor that it rolls back).
#[test]
fn a_first_push_that_never_reached_the_host_says_nothing_switched() {
    let lab = Lab::new(&["nas"]);
    let a = lab.compile("a", &BASE);
    let ssh = lab.ssh_script("lost-ssh", LOST_SSH);
    let o = lab.push_via(&ssh, &a, &["e2e", "nas"]).output().unwrap();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(
        out.contains("nas: the switch did not take: the host has no generation yet, as before this push (no generation is active"),
        "{out}"
    );
    lab.on_ok("nas", "! test -e /var/lib/sitec/current");
}

/// An ssh wrapper that, besides dropping the switch's session as
/// DROPPING_SSH does, pauses that switch at its actions (the test hook;
/// `$pause` names the pause file): a host busy for as long as the test likes.
const PAUSING_SSH: &str = r#"
for a do
	shift
	case $a in
	*" switch --confirm-timeout "*) a="export SITEC_TEST_PAUSE_AT=actions SITEC_TEST_PAUSE_FILE=$pause; $a" ;;
	esac
	set -- "$@" "$a"
done
"#;

/// When the session drops while the switch is still busy, for longer than
/// the confirm timeout, push waits for as long as the host answers busy
/// and then confirms: a host that answers is not given up as unreachable.
#[test]
fn push_waits_out_a_host_busy_with_the_switch_after_the_session_drops() {
    let lab = Lab::new(&["nas"]);
    let a = lab.compile("a", &BASE);
    lab.push_ok(&a, &["e2e", "nas"]);
    let b = lab.wider("b");
    let pause = lab.tmp.path().join("pause-actions");
    let drop = lab.ssh_script(
        "pausing-ssh",
        &format!("pause={}\n{PAUSING_SSH}{DROPPING_SSH}", pause.display()),
    );
    let push = lab
        .push_via(&drop, &b, &["--confirm-timeout", "10", "e2e", "nas"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the pause at actions", Duration::from_secs(60), || {
        std::fs::read_to_string(&pause).is_ok_and(|s| s.ends_with('\n'))
    });
    // Busy for more than twice the confirm timeout, then it carries on.
    std::thread::sleep(Duration::from_secs(25));
    let pids = std::fs::read_to_string(&pause).unwrap();
    let sleep = pids.split_whitespace().nth(1).unwrap().to_string();
    run_ok(Command::new("kill").arg(sleep));
    confirmed_after_drop(&lab, &push.wait_with_output().unwrap());
}

/// A switch stopped by TERM (a shutdown, a stopped session, an operator's
/// kill) exits 143 with its journal in place: push settles it at once over
/// a new connection instead of leaving the host half-switched, and says
/// where the host is.
#[test]
fn a_switch_stopped_by_a_signal_is_settled_by_push_at_once() {
    let lab = Lab::new(&["nas"]);
    let a = lab.compile("a", &BASE);
    lab.push_ok(&a, &["e2e", "nas"]);
    let b = lab.compile(
        "b",
        &Variant {
            sysctl: r#""net.ipv4.ip_forward" = 1, "vm.swappiness" = 10"#,
            ..BASE
        },
    );
    let pause = lab.tmp.path().join("pause-actions");
    let ssh = lab.ssh_script(
        "pausing-ssh",
        &format!("pause={}\n{PAUSING_SSH}exec ssh \"$@\"\n", pause.display()),
    );
    let push = lab
        .push_via(&ssh, &b, &["e2e", "nas"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the pause at actions", Duration::from_secs(60), || {
        std::fs::read_to_string(&pause).is_ok_and(|s| s.ends_with('\n'))
    });
    let pids = std::fs::read_to_string(&pause).unwrap();
    let mut pids = pids.split_whitespace();
    let (switch, sleep) = (pids.next().unwrap(), pids.next().unwrap());
    run_ok(Command::new("kill").args(["-TERM", switch]));
    let _ = Command::new("kill").arg(sleep).status();
    let o = push.wait_with_output().unwrap();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(4), "{out}");
    assert!(
        out.contains("nas: the switch was stopped by a signal (exit 143)"),
        "{out}"
    );
    assert!(
        out.contains("nas: the switch was interrupted; settling it"),
        "{out}"
    );
    assert!(
        out.contains("nas: the switch did not take: the host is on generation 1"),
        "{out}"
    );
    assert_eq!(lab.current("nas"), "generations/1");
    let left = lab.on("nas", "test -e /var/lib/sitec/journal");
    assert!(!left.status.success(), "the journal is left");
    assert_eq!(
        lab.on_ok("nas", "cat /var/lib/sitec/results/2").trim(),
        "interrupted-rolled-back"
    );
}

/// A failed action is never reported as a success: a WireGuard restart that
/// fails fails its switch (exit 4, rolled back), and an operator's rollback
/// whose actions fail says so and exits 4.
#[test]
fn failed_actions_are_never_reported_as_success() {
    let lab = Lab::new(&["nas"]);
    let a = lab.compile("a", &BASE);
    let b = lab.compile(
        "b",
        &Variant {
            pve2_routes: r#""10.0.102.0/24", "10.0.112.0/24""#,
            ..BASE
        },
    );
    lab.push_ok(&a, &["e2e", "nas"]);
    lab.on_ok("nas", WG_CANNOT_COME_UP);
    let (code, out) = lab.push(&b, &["e2e", "nas"]);
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("action wg-sync:wg0 failed"), "{out}");
    assert_eq!(lab.current("nas"), "generations/1");

    lab.on_ok("nas", "ip route del 10.0.101.0/24 dev lan1");
    lab.push_ok(&b, &["e2e", "nas"]);
    lab.on_ok("nas", WG_CANNOT_COME_UP);
    let o = lab
        .ssh("nas", &format!("{} rollback", agent()))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(
        text(&o).contains("rolled back from generation 3 to 1, but some of its actions failed"),
        "{}",
        text(&o)
    );
    assert_eq!(lab.current("nas"), "generations/1");
}

/// push trusts nothing of out/ it has not checked: an out/ that is not what
/// the site compiles to is refused (`--force` deploys it and the host's log
/// says so); a symlink in a bundle is refused even then; so is a deploy
/// target that ssh would read as an option.
#[test]
fn push_refuses_what_out_should_not_hold() {
    let lab = Lab::new(&["nas"]);
    let a = lab.compile("a", &BASE);
    let bundle = a.join("e2e/nas");
    let ruleset = bundle.join("etc/nftables.conf");
    let mut edited = std::fs::read_to_string(&ruleset).unwrap();
    edited.push_str("# edited by hand\n");
    std::fs::write(&ruleset, edited).unwrap();
    support::reseal(&bundle);

    let (code, out) = lab.push(&a, &["e2e", "nas"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("is not what the site compiles to"), "{out}");
    assert_eq!(
        lab.on_ok("nas", "ls /var/lib/sitec/store 2>/dev/null | wc -l")
            .trim(),
        "0"
    );

    lab.push_ok(&a, &["--force", "e2e", "nas"]);
    let log = lab.on_ok("nas", "cat /var/lib/sitec/log");
    assert!(log.contains("push --force:"), "{log}");
    lab.on_ok("nas", "grep -q 'edited by hand' /etc/nftables.conf");

    std::os::unix::fs::symlink("/etc/shadow", bundle.join("etc/shadow")).unwrap();
    let (code, out) = lab.push(&a, &["--force", "e2e", "nas"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("etc/shadow is not a regular file or a directory"),
        "{out}"
    );
    std::fs::remove_file(bundle.join("etc/shadow")).unwrap();

    let pwned = lab.tmp.path().join("pwned");
    // push reads the deploy target from the index.
    let index = bundle.join("index");
    let text = std::fs::read_to_string(&index).unwrap();
    let evil = text.replace(
        "d\taddress\t10.0.200.13\n",
        &format!("d\taddress\t-oProxyCommand=touch {}\n", pwned.display()),
    );
    assert_ne!(evil, text);
    std::fs::write(&index, evil).unwrap();
    support::reseal(&bundle);
    let (code, out) = lab.push(&a, &["--force", "e2e", "nas"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("is not a plain user, address and port"),
        "{out}"
    );
    assert!(!pwned.exists(), "ssh ran the manifest's option");
}

/// A generation's store copy edited in place on the host (the files are
/// linked from /etc and hard-linked across generations): a rollback to it
/// is refused, and pushing its bundle again repairs it.
#[test]
fn a_changed_store_copy_is_no_rollback_target_until_a_push_repairs_it() {
    let lab = Lab::new(&["nas"]);
    let a = lab.compile("a", &BASE);
    let b = lab.wider("b");
    for out in [&a, &b] {
        lab.push_ok(out, &["e2e", "nas"]);
    }
    let store = format!("/var/lib/sitec/store/{}", store_name(&a.join("e2e/nas")));
    lab.on_ok(
        "nas",
        &format!("echo '# changed on the host' >>{store}/etc/nftables.conf"),
    );
    let act = agent();
    let o = lab.ssh("nas", &format!("{act} rollback")).output().unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        text(&o).contains("generation 1's copy in") && text(&o).contains("was changed on the host"),
        "{}",
        text(&o)
    );
    assert_eq!(lab.current("nas"), "generations/2");

    let out = lab.push_ok(&a, &["e2e", "nas"]);
    assert!(
        out.contains("the copy on the host had been changed; repaired"),
        "{out}"
    );
    assert!(out.contains("nas: ok, generation 3 confirmed"), "{out}");
    lab.on_ok(
        "nas",
        &format!(
            "[ \"$({} hash {store})\" = \"$(cat {store}/BUNDLE)\" ]",
            agent()
        ),
    );
    lab.on_ok("nas", "! grep -q 'changed on the host' /etc/nftables.conf");
}

/// `push --status`: in sync after a deploy; drifted when out/ moved on or
/// when a managed file was edited on the host; unreachable when it is.
#[test]
fn status_tells_in_sync_drifted_and_unreachable() {
    let lab = Lab::new(&["nas", "pve1"]);
    let a = lab.compile("a", &BASE);
    lab.push_ok(&a, &["e2e", "nas", "pve1"]);
    let out = lab.push_ok(&a, &["--status", "e2e", "nas", "pve1"]);
    assert!(out.contains("[nas] nas: in sync (generation 1)"), "{out}");
    assert!(out.contains("[pve1] pve1: in sync (generation 1)"), "{out}");

    // Someone edits the firewall by hand on nas.
    lab.on_ok("nas", "echo '# quick fix' >>/etc/nftables.conf");
    let (code, out) = lab.push(&a, &["--status", "e2e", "nas", "pve1"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("[nas] nas: drifted: generation 1 is out/'s bundle, changed on the host"),
        "{out}"
    );
    assert!(
        out.contains("[nas]   modified: files of generation 1 were edited on the host"),
        "{out}"
    );
    assert!(out.contains("[pve1] pve1: in sync"), "{out}");

    // out/ moves on without a push; pve2 has no host in this lab.
    let b = lab.wider("b");
    let (code, out) = lab.push(&b, &["--status", "e2e", "pve1", "pve2"]);
    assert_eq!(code, 2, "{out}");
    let old = std::fs::read_to_string(a.join("e2e/pve1/BUNDLE")).unwrap();
    assert!(
        out.contains(&format!(
            "[pve1] pve1: drifted: generation 1 runs {}, out/ has",
            old.trim()
        )),
        "{out}"
    );
    assert!(out.contains("[pve2] pve2: unreachable"), "{out}");
    assert!(
        out.contains("status e2e: 2 hosts, 2 not in sync (exit 2)"),
        "{out}"
    );

    // A host that answers and cannot tell its state is not unreachable.
    lab.on_ok("pve1", "echo garbage >/var/lib/sitec/boot-armed");
    let (code, out) = lab.push(&a, &["--status", "e2e", "pve1"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("[pve1] pve1: the host cannot tell its state (exit 2): activate: /var/lib/sitec/boot-armed is corrupt ('garbage')"),
        "{out}"
    );
}

/// The last commit whose bundles carried their own copy of the agent
/// (`activate`), and whose push ran that copy.
const BEFORE_THE_AGENT_TRAVELLED_APART: &str = "9eb9f9f";

/// A file as that commit has it (from the repository's history).
fn earlier(path: &str) -> Vec<u8> {
    from_history(BEFORE_THE_AGENT_TRAVELLED_APART, path)
}

/// The last commit whose push brought the sh agent
/// (`compiler/host/activate`) to hosts.
const THE_LAST_SH_AGENT: &str = "0fd2cc3";

/// `path` as `commit` has it.
fn from_history(commit: &str, path: &str) -> Vec<u8> {
    let o = Command::new("git")
        .current_dir(project_root())
        .args(["show", &format!("{commit}:{path}")])
        .output()
        .expect("git runs");
    assert!(
        o.status.success(),
        "git show {commit}:{path} (the test needs the repository's history): {}",
        text(&o)
    );
    o.stdout
}

/// `bundle` made as an earlier sitec made it: its own `activate` (that
/// sitec's) in it, and no agent protocol named.
fn as_an_earlier_sitec_made_it(bundle: &Path) {
    let edit = |file: &str, from: &str, to: &str| {
        let path = bundle.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{file} has no {from:?}");
        std::fs::write(&path, text.replace(from, to)).unwrap();
    };
    edit("index", "h\tagent_protocol\t1\n", "");
    edit("manifest.json", "  \"agent_protocol\": 1,\n", "");
    edit("manifest.json", "\"format\": 3,", "\"format\": 2,");
    let activate = bundle.join("activate");
    std::fs::write(&activate, earlier("compiler/host/activate")).unwrap();
    std::fs::set_permissions(
        &activate,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    support::reseal(bundle);
}

/// A host the sh agent set up (push brought it, a switch made it the
/// host's, its boot guard and pull drop-in read it with sh) takes one push
/// of this sitec: this agent becomes the host's, the units run it
/// directly, and it goes back to the sh agent's generation and forward.
#[test]
fn a_host_the_sh_agent_switched_moves_to_this_agent_with_one_push() {
    use sha2::Digest as _;
    let lab = Lab::new(&["nas"]);
    let a = lab.compile("a", &BASE);
    let a_bundle = a.join("e2e/nas");
    let sh_agent = lab.tmp.path().join("activate");
    let sh_bytes = from_history(THE_LAST_SH_AGENT, "compiler/host/activate");
    assert!(sh_bytes.starts_with(b"#!/bin/sh"));
    let sh_sha: String = sha2::Sha256::digest(&sh_bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    std::fs::write(&sh_agent, &sh_bytes).unwrap();
    let sh_push = lab.tmp.path().join("push-sh");
    std::fs::write(
        &sh_push,
        from_history(THE_LAST_SH_AGENT, "compiler/host/push"),
    )
    .unwrap();
    let o = lab
        .push_script(&sh_push, "ssh", &a, &["e2e", "nas"])
        .env("SITEC_AGENT", &sh_agent)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    lab.on_ok(
        "nas",
        &format!("cmp /var/lib/sitec/activate /var/lib/sitec/agents/{sh_sha}"),
    );
    lab.on_ok(
        "nas",
        "grep -qx 'ExecStart=/bin/sh /var/lib/sitec/activate boot' /etc/systemd/system/sitec-boot.service",
    );

    // One push of this sitec.
    let b = lab.compile(
        "b",
        &Variant {
            admin: WIDER_ADMIN,
            ..BASE
        },
    );
    let b_bundle = b.join("e2e/nas");
    let out = lab.push_ok(&b, &["e2e", "nas"]);
    assert!(out.contains("nas: ok, generation 2 confirmed"), "{out}");
    lab.on_ok(
        "nas",
        &format!("cmp /var/lib/sitec/activate {}", support::host_agent()),
    );
    lab.on_ok(
        "nas",
        "grep -qx 'ExecStart=/var/lib/sitec/activate boot' /etc/systemd/system/sitec-boot.service",
    );
    lab.on_ok(
        "nas",
        "grep -qx 'ExecStart=/var/lib/sitec/activate pull' /etc/systemd/system/sitec-pull.service.d/sitec-agent.conf",
    );
    lab.on_ok(
        "nas",
        &format!("cmp /var/lib/sitec/activate.prev /var/lib/sitec/agents/{sh_sha}"),
    );
    assert_eq!(lab.live_files("nas", &b_bundle), manifest_files(&b_bundle));

    // Back to the sh agent's generation, with this agent, and forward.
    let back = lab.on_ok("nas", "/var/lib/sitec/activate rollback 1");
    assert!(
        back.contains("rolled back from generation 2 to 1"),
        "{back}"
    );
    assert_eq!(lab.live_files("nas", &a_bundle), manifest_files(&a_bundle));
    let forward = lab.push_ok(&b, &["e2e", "nas"]);
    assert!(
        forward.contains("nas: ok, generation 3 confirmed"),
        "{forward}"
    );
    assert_eq!(lab.live_files("nas", &b_bundle), manifest_files(&b_bundle));
}

/// A host an earlier sitec switched (its bundle carried its own agent, its
/// boot runs that one) takes a push of this sitec, which brings its agent;
/// that agent goes back to the earlier generation and forward again. A
/// bundle that needs a newer agent protocol than the host's agent speaks
/// is refused before anything changes.
#[test]
fn a_host_an_earlier_sitec_switched_takes_this_ones_agent_and_goes_back() {
    let lab = Lab::new(&["nas"]);
    let a = lab.compile("a", &BASE);
    let a_bundle = a.join("e2e/nas");
    let a_files = manifest_files(&a_bundle);
    as_an_earlier_sitec_made_it(&a_bundle);
    let old_push = lab.tmp.path().join("push-earlier");
    std::fs::write(&old_push, earlier("compiler/host/push")).unwrap();
    // out/ is not what this sitec compiles: --force.
    let o = lab
        .push_script(&old_push, "ssh", &a, &["--force", "e2e", "nas"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(lab.current("nas"), "generations/1");
    let old = format!("/var/lib/sitec/store/{}", store_name(&a_bundle));
    lab.on_ok(
        "nas",
        &format!("cmp /var/lib/sitec/activate {old}/activate"),
    );

    // This sitec: its agent comes along and switches.
    let b = lab.compile(
        "b",
        &Variant {
            admin: WIDER_ADMIN,
            ..BASE
        },
    );
    let b_bundle = b.join("e2e/nas");
    let out = lab.push_ok(&b, &["e2e", "nas"]);
    assert!(out.contains("nas: ok, generation 2 confirmed"), "{out}");
    let agent = support::host_agent();
    lab.on_ok("nas", &format!("cmp /var/lib/sitec/activate {agent}"));
    lab.on_ok(
        "nas",
        &format!(
            "test ! -e /var/lib/sitec/store/{}/activate",
            store_name(&b_bundle)
        ),
    );
    assert_eq!(lab.live_files("nas", &b_bundle), manifest_files(&b_bundle));
    // Pull mode, whichever generation is live, runs this agent.
    lab.on_ok(
        "nas",
        "grep -qx 'ExecStart=/var/lib/sitec/activate pull' /etc/systemd/system/sitec-pull.service.d/sitec-agent.conf",
    );
    // Pushed again, the agent is not sent again.
    let again = lab.push_ok(&b, &["e2e", "nas"]);
    assert!(again.contains("nas: ok, unchanged"), "{again}");

    // A newer agent alone (out/ unchanged, sitec upgraded) becomes the
    // host's, and nothing else changes.
    let newer = lab.tmp.path().join("activate-newer");
    let mut bytes = std::fs::read(support::agent_source()).unwrap();
    bytes.extend_from_slice(b"# a newer agent\n");
    let newer_sha: String = {
        use sha2::Digest;
        sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    std::fs::write(&newer, bytes).unwrap();
    let o = lab
        .push_command(&b, &["e2e", "nas"])
        .env("SITEC_AGENT", &newer)
        .output()
        .unwrap();
    assert!(
        o.status.success() && text(&o).contains("nas: ok, unchanged"),
        "{}",
        text(&o)
    );
    assert_eq!(
        lab.on_ok("nas", "sha256sum /var/lib/sitec/activate | cut -d' ' -f1")
            .trim(),
        newer_sha
    );
    assert_eq!(lab.current("nas"), "generations/2");

    // Back to the earlier sitec's generation, with this agent, and forward.
    let back = lab.on_ok("nas", "/var/lib/sitec/activate rollback 1");
    assert!(
        back.contains("rolled back from generation 2 to 1"),
        "{back}"
    );
    assert_eq!(lab.live_files("nas", &a_bundle), a_files);
    let forward = lab.push_ok(&b, &["e2e", "nas"]);
    assert!(
        forward.contains("nas: ok, generation 3 confirmed"),
        "{forward}"
    );

    // A bundle that needs a newer agent is refused, and nothing changes.
    let c = lab.compile("c", &BASE);
    let c_bundle = c.join("e2e/nas");
    for (file, from, to) in [
        ("index", "h\tagent_protocol\t1\n", "h\tagent_protocol\t99\n"),
        (
            "manifest.json",
            "\"agent_protocol\": 1,",
            "\"agent_protocol\": 99,",
        ),
    ] {
        let path = c_bundle.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace(from, to)).unwrap();
    }
    support::reseal(&c_bundle);
    let (code, out) = lab.push(&c, &["--force", "e2e", "nas"]);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("the bundle needs agent protocol 99 and this agent"),
        "{out}"
    );
    assert_eq!(lab.current("nas"), "generations/3");
    assert_eq!(lab.live_files("nas", &b_bundle), manifest_files(&b_bundle));
}
