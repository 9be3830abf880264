//! End to end on hosts that boot a real systemd (tests/e2e/boot.sh: each
//! host is a `systemd-nspawn -b` container in its own network namespace,
//! with its own sshd, /etc and /var, reached from an operator namespace).
//! `push` deploys tests/boot/site.ncl to them; the tests check that what the
//! bundles hold really runs: the WireGuard mesh under `wg-quick@wg0`, the
//! ruleset, the bridge, Samba's Time Machine share, NGINX proxying HTTPS
//! and a TCP stream over the mesh, and that a reboot keeps all of it.
//!
//! The labs run one at a time: two cores boot one lab of three hosts well.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use support::hosts::{
    HostLab, actions, compile_variant, push_in, run_ok, test_project, text, wait_for,
};
use support::{TempDir, project_root};

static ONE_LAB_AT_A_TIME: Mutex<()> = Mutex::new(());
static LABS: AtomicUsize = AtomicUsize::new(0);

/// Host, management address, tunnel address.
const HOSTS: [(&str, &str, &str); 3] = [
    ("pve1", "10.0.200.11", "10.99.0.1"),
    ("nas", "10.0.200.13", "10.99.0.3"),
    ("lb", "10.0.200.14", "10.99.0.4"),
];
/// Host, IPv6 LAN address, IPv6 tunnel address (tests/e2e/common.sh puts
/// the operator at fd00:200::1).
const HOSTS6: [(&str, &str, &str); 3] = [
    ("pve1", "fd00:200::11", "fd00:99::1"),
    ("nas", "fd00:200::13", "fd00:99::3"),
    ("lb", "fd00:200::14", "fd00:99::4"),
];
/// What the test hosts run (tests/e2e/boot.sh): the system sitec is
/// tested on, in the site's words.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Flavour {
    /// Debian 12 with classic ifupdown: this machine's /usr.
    Debian12,
    /// Debian 13 with ifupdown2, as Proxmox VE 9 lays out its network: a
    /// root of its own (tests/e2e/debian13.sh).
    Debian13,
}

impl Flavour {
    fn as_str(self) -> &'static str {
        match self {
            Flavour::Debian12 => "debian12",
            Flavour::Debian13 => "debian13",
        }
    }

    /// What the site's hosts say they run (`@SYSTEM@`).
    fn system(self) -> &'static str {
        match self {
            Flavour::Debian12 => "{}",
            Flavour::Debian13 => "{ release = 'debian13, ifupdown = 'ifupdown2 }",
        }
    }
}

const SAMBA_USER: &str = "alice";
const SAMBA_PASSWORD: &str = "e2e-password";

/// The site variant to compile: who may ssh in, pve1's extra services and
/// unit states (Nickel records).
struct Variant {
    admin: &'static str,
    pve1_units: &'static str,
    pve1_states: &'static str,
    /// nas's interfaces (`@NAS_LAN6@` in them is `nas_lan6`).
    nas_interfaces: &'static str,
    /// nas's IPv6 address on the LAN (the operator routes fd00:200::13).
    nas_lan6: &'static str,
    /// nas's `deploy` record.
    nas_deploy: &'static str,
    /// More fields of nas (a Nickel record merged into it).
    nas_extra: &'static str,
    /// More fields of lb.
    lb_extra: &'static str,
    /// What the site says its hosts run (`@SYSTEM@`), when it is not
    /// what the lab's hosts run.
    system: Option<&'static str>,
    /// Pull mode of nas and lb (`{ pull = ... }` merged into `deploy`);
    /// `@SIGNER@` in it is the lab's release key.
    pull: &'static str,
}

const BASE: Variant = Variant {
    admin: r#""10.0.200.1/32""#,
    pve1_units: "{}",
    pve1_states: "{}",
    nas_interfaces: r#"{ eth0 = management 13 "@NAS_LAN6@" }"#,
    nas_lan6: "fd00:200::13/64",
    nas_deploy: "{}",
    nas_extra: "{}",
    lb_extra: "{}",
    system: None,
    pull: "{}",
};

/// The store name (`<hash>-<host>`) of a host's bundle of `out`.
fn store_name(out: &Path, host: &str) -> String {
    let hash = std::fs::read_to_string(out.join("e2e").join(host).join("BUNDLE")).unwrap();
    format!("{}-{host}", hash.trim())
}

/// A lab of booted hosts; powered off and removed on drop.
struct BootLab {
    tmp: TempDir,
    dir: PathBuf,
    keys: BTreeMap<String, String>,
    hosts: Vec<String>,
    flavour: Flavour,
    _serial: std::sync::MutexGuard<'static, ()>,
}

fn require_tools() {
    support::hosts::require_tools(
        "the tests on booted hosts",
        &[
            "systemd-nspawn",
            "nsenter",
            "ip",
            "sshd",
            "ssh",
            "rsync",
            "nft",
            "wg",
            "wg-quick",
            "wireguard-go",
            "ifup",
            "smbd",
            "smbclient",
            "smbpasswd",
            "nginx",
            "curl",
            "openssl",
            "python3",
        ],
    );
    assert!(
        Path::new("/etc/network/if-pre-up.d/bridge").exists(),
        "bridge-utils is missing: the hosts need its ifupdown hook for bridges (sh scripts/test installs it)"
    );
}

fn boot_sh() -> PathBuf {
    project_root().join("tests/e2e/boot.sh")
}

impl BootLab {
    /// A lab of every host of the site.
    fn new(flavour: Flavour) -> BootLab {
        BootLab::with(flavour, &HOSTS.map(|(host, _, _)| host))
    }

    /// Boots these hosts of the site and does what an installer and an
    /// admin do out of band: the Samba user, the web servers' files, the
    /// secrets.
    fn with(flavour: Flavour, names: &[&str]) -> BootLab {
        let serial = ONE_LAB_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        require_tools();
        let n = LABS.fetch_add(1, Ordering::SeqCst);
        let tmp = TempDir::new("boot");
        let dir = tmp.path().join("lab");
        let hosts: Vec<&str> = HOSTS.iter().map(|(h, _, _)| *h).collect();
        let keys = test_project(tmp.path(), &hosts);
        // The key is a secret push uploads; the certificate, public, is
        // installed out of band (push uploads only the secrets a bundle
        // requires).
        let tls = tmp.path().join("secrets/lb/etc/ssl/e2e");
        std::fs::create_dir_all(&tls).unwrap();
        run_ok(
            Command::new("openssl")
                .args([
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                ])
                .args(["-subj", "/CN=app.e2e.test", "-addext"])
                .arg("subjectAltName=DNS:app.e2e.test,DNS:app2.e2e.test")
                .arg("-keyout")
                .arg(tls.join("app.key"))
                .arg("-out")
                .arg(tmp.path().join("app.crt")),
        );
        let lab = BootLab {
            tmp,
            dir,
            keys,
            hosts: names.iter().map(|h| h.to_string()).collect(),
            flavour,
            _serial: serial,
        };
        let name = format!("sb{}-{n}", std::process::id());
        let mut up = Command::new("sh");
        up.env("SITEC_HOST_FLAVOUR", flavour.as_str())
            .arg(boot_sh())
            .arg("up")
            .arg(&lab.dir)
            .arg(name);
        for (host, address, _) in HOSTS {
            if names.contains(&host) {
                up.arg(format!("{host}={address}"));
            }
        }
        run_ok(&mut up);
        if names.contains(&"nas") {
            lab.samba_user();
        }
        if names.contains(&"lb") {
            let pem = std::fs::read_to_string(lab.tls_certificate()).unwrap();
            lab.on_ok(
                "lb",
                &format!("mkdir -p /etc/ssl/e2e && printf '%s' '{pem}' >/etc/ssl/e2e/app.crt"),
            );
        }
        for host in ["pve1", "nas"] {
            if names.contains(&host) {
                lab.on_ok(
                    host,
                    &format!("mkdir -p /srv/www && echo 'hello from {host}' >/srv/www/hello.txt"),
                );
            }
        }
        if names.contains(&"pve1") {
            // The WebSocket echo server pve1's ws.service runs.
            std::fs::copy(
                project_root().join("tests/boot/ws.py"),
                lab.dir.join("pve1/root/srv/ws.py"),
            )
            .unwrap();
            // The keyring pve1's apt source names, fetched out of band.
            lab.on_ok(
                "pve1",
                "mkdir -p /etc/apt/keyrings && cp /usr/share/keyrings/debian-archive-keyring.gpg /etc/apt/keyrings/e2e-archive.gpg",
            );
        }
        lab
    }

    fn samba_user(&self) {
        self.on_ok(
            "nas",
            &format!(
                "useradd -M -s /usr/sbin/nologin {SAMBA_USER}
                 printf '%s\\n%s\\n' {SAMBA_PASSWORD} {SAMBA_PASSWORD} | smbpasswd -s -a {SAMBA_USER} >/dev/null
                 mkdir -p /srv/timemachine && chown {SAMBA_USER} /srv/timemachine"
            ),
        );
    }

    fn compile(&self, tag: &str, v: &Variant) -> PathBuf {
        self.compile_with(tag, v, &[], &self.keys)
    }

    /// `compile`, with more markers (replaced after the variant's) and
    /// other WireGuard public keys.
    fn compile_with(
        &self,
        tag: &str,
        v: &Variant,
        more: &[(&str, &str)],
        keys: &BTreeMap<String, String>,
    ) -> PathBuf {
        let pull = v.pull.replace("@SIGNER@", &self.release_key(RELEASE_KEY));
        let operator = self.operator_key();
        let mut markers: Vec<(&str, &str)> = vec![
            ("SYSTEM", v.system.unwrap_or(self.flavour.system())),
            ("ADMIN", v.admin),
            ("PVE1_UNITS", v.pve1_units),
            ("PVE1_STATES", v.pve1_states),
            ("NAS_INTERFACES", v.nas_interfaces),
            ("NAS_LAN6", v.nas_lan6),
            ("NAS_DEPLOY", v.nas_deploy),
            ("NAS_EXTRA", v.nas_extra),
            ("LB_EXTRA", v.lb_extra),
            ("PULL", &pull),
            ("OPERATOR_KEY", &operator),
        ];
        markers.extend_from_slice(more);
        compile_variant(self.tmp.path(), "tests/boot/site.ncl", tag, &markers, keys)
    }

    /// The public key the operator's ssh logs in with.
    fn operator_key(&self) -> String {
        let key = std::fs::read_to_string(self.dir.join("operator_key.pub")).unwrap();
        key.trim().to_string()
    }

    /// A shell script run on a host over ssh, as the operator's session
    /// (a login session of the host's, where `on` runs outside any).
    fn ssh(&self, host: &str, script: &str) -> Output {
        let address = std::fs::read_to_string(self.dir.join(host).join("address")).unwrap();
        self.op()
            .args(["ssh", "-F"])
            .arg(self.dir.join("ssh_config"))
            .args(["-o", "BatchMode=yes", address.trim(), script])
            .output()
            .unwrap()
    }

    /// Whether the operator logs in to a host over ssh, as push does.
    fn ssh_answers(&self, address: &str) -> Output {
        self.op()
            .args(["ssh", "-F"])
            .arg(self.dir.join("ssh_config"))
            .args([
                "-o",
                "BatchMode=yes",
                "-o",
                "ConnectTimeout=3",
                address,
                "true",
            ])
            .output()
            .unwrap()
    }

    /// Puts a host's bundle of `out` into its store without switching
    /// (push --no-switch).
    fn stage(&self, out: &Path, host: &str) {
        self.push_ok(out, &["--no-switch", "e2e", host]);
    }

    /// The command that runs the host agent push brought, and the store
    /// name of `host`'s bundle of `out`.
    fn agent(&self, out: &Path, host: &str) -> (String, String) {
        (support::host_agent(), store_name(out, host))
    }

    /// Starts the agent's `COMMAND` on `host` with the test hook that
    /// pauses it at `step`; returns once it is paused.
    fn paused(&self, host: &str, step: &str, command: &str) -> Child {
        let pause = self.dir.join(host).join("root/root/pause");
        let _ = std::fs::remove_file(&pause);
        let child = self
            .host_command(
                host,
                &format!(
                    "SITEC_TEST_PAUSE_AT={step} SITEC_TEST_PAUSE_FILE=/root/pause {} {command}",
                    support::host_agent()
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
        child
    }

    fn host_command(&self, host: &str, script: &str) -> Command {
        let mut c = Command::new("sh");
        c.arg(boot_sh())
            .arg("host")
            .arg(&self.dir)
            .args([host, "sh", "-c", script]);
        c
    }

    /// Kills every process of a host at once and boots it again.
    fn crash(&self, host: &str) {
        run_ok(
            Command::new("sh")
                .arg(boot_sh())
                .arg("crash")
                .arg(&self.dir)
                .arg(host),
        );
    }

    /// Waits until the transition a host is in is over and generation
    /// `generation` was rolled back; returns its result.
    fn rolled_back(&self, host: &str, generation: u32) -> String {
        let script =
            format!("test ! -e /var/lib/sitec/journal && cat /var/lib/sitec/results/{generation}");
        wait_for(
            &format!("generation {generation} to be rolled back on {host}"),
            Duration::from_secs(60),
            || {
                let o = self.on(host, &script);
                String::from_utf8_lossy(&o.stdout)
                    .trim()
                    .ends_with("rolled-back")
            },
        );
        self.result(host, generation)
    }

    /// The result sitec recorded for a generation on a host.
    fn result(&self, host: &str, generation: u32) -> String {
        self.on_ok(host, &format!("cat /var/lib/sitec/results/{generation}"))
            .trim()
            .to_string()
    }

    fn reboot(&self, host: &str) {
        run_ok(
            Command::new("sh")
                .arg(boot_sh())
                .arg("reboot")
                .arg(&self.dir)
                .arg(host),
        );
    }

    /// Waits until every unit is active on a host (`secs` each at most).
    fn wait_active(&self, host: &str, secs: u64, units: &[&str]) {
        for unit in units {
            wait_for(
                &format!("{unit} on {host}"),
                Duration::from_secs(secs),
                || self.unit(host, "is-active", unit) == "active",
            );
        }
    }

    /// `systemctl is-active` / `is-enabled` of a unit on a host.
    fn unit(&self, host: &str, query: &str, unit: &str) -> String {
        let o = self.on(host, &format!("systemctl {query} {unit}"));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    fn tls_certificate(&self) -> PathBuf {
        self.tmp.path().join("app.crt")
    }
}

impl HostLab for BootLab {
    fn script(&self) -> PathBuf {
        boot_sh()
    }
    fn dir(&self) -> &Path {
        &self.dir
    }
    /// push, cut off after ten minutes: a push that hangs fails the test.
    fn push_command(&self, out: &Path, args: &[&str]) -> Command {
        let mut c = self.op();
        push_in(&mut c, out);
        // The agent push brings (a test may set another).
        c.env("SITEC_AGENT", support::agent_source());
        c.args(["timeout", "600"])
            .arg("env")
            .arg(format!(
                "SITEC_SSH=ssh -F {}",
                self.dir.join("ssh_config").display()
            ))
            .arg("sh")
            .arg(project_root().join("compiler/host/push"))
            .arg("--out")
            .arg(out)
            .arg("--secrets")
            .arg(self.tmp.path().join("secrets"))
            .args(args);
        c
    }
}

impl Drop for BootLab {
    fn drop(&mut self) {
        // For a look at the hosts after a failure: boot.sh host DIR HOST sh.
        if std::env::var_os("SITEC_TEST_KEEP_LAB").is_some() {
            eprintln!("lab kept at {}", self.dir.display());
            std::mem::forget(std::mem::replace(&mut self.tmp, TempDir::new("boot-kept")));
            return;
        }
        self.down();
    }
}

/// Deploys the base site to the lab's hosts; each confirms generation 1.
fn deploy(lab: &BootLab) -> PathBuf {
    let a = lab.compile("a", &BASE);
    let mut args = vec!["--confirm-timeout", "60", "e2e"];
    args.extend(lab.hosts.iter().map(String::as_str));
    let out = lab.push_ok(&a, &args);
    for host in &lab.hosts {
        assert!(
            out.contains(&format!("[{host}] {host}: ok, generation 1 confirmed")),
            "{host}:\n{out}"
        );
    }
    a
}

/// Everything the site says is live on the hosts, and traffic flows.
fn assert_site_live(lab: &BootLab, generation: u32) {
    for (host, _, _) in HOSTS {
        assert_eq!(lab.current(host), format!("generations/{generation}"));
        lab.on_ok(host, "nft list table inet sitec >/dev/null");
        for unit in ["nftables.service", "wg-quick@wg0.service"] {
            assert_eq!(
                lab.unit(host, "is-enabled", unit),
                "enabled",
                "{host}: {unit}"
            );
        }
        wait_for(
            &format!("wg-quick@wg0 on {host}"),
            Duration::from_secs(20),
            || lab.unit(host, "is-active", "wg-quick@wg0.service") == "active",
        );
    }
    // Time: chronyd runs from the generation's sources and the operator's
    // NTP server answers it through the firewall (reach is the octal
    // register of the last eight polls answered).
    for (host, _, _) in HOSTS {
        assert_eq!(
            lab.unit(host, "is-enabled", "chrony.service"),
            "enabled",
            "{host}"
        );
        wait_for(
            &format!("{host}'s chronyd to hear from 10.0.200.1"),
            Duration::from_secs(30),
            || {
                let o = lab.on(host, "chronyc -n -c sources");
                String::from_utf8_lossy(&o.stdout).lines().any(|l| {
                    let f: Vec<&str> = l.split(',').collect();
                    f.len() > 5 && f[2] == "10.0.200.1" && f[5] != "0"
                })
            },
        );
    }
    // The mesh: every pair pings over the tunnel, in both families.
    for (from, _, _) in HOSTS {
        let tunnels = HOSTS
            .iter()
            .zip(HOSTS6)
            .map(|((to, _, t4), (_, _, t6))| (to, [*t4, t6]));
        for (to, addresses) in tunnels {
            for tunnel in addresses.iter().filter(|_| from != *to) {
                wait_for(
                    &format!("{from} to ping {to} at {tunnel} over wg0"),
                    Duration::from_secs(20),
                    || {
                        lab.on(from, &format!("ping -c 1 -W 1 {tunnel}"))
                            .status
                            .success()
                    },
                );
            }
        }
    }
    // IPv6 on the LAN under policy drop: the operator's ping6 is answered,
    // so the host's neighbour discovery passes its firewall both ways.
    for (host, lan6, _) in HOSTS6 {
        wait_for(
            &format!("the operator to ping6 {host} at {lan6}"),
            Duration::from_secs(20),
            || {
                lab.op()
                    .args(["ping", "-6", "-c", "1", "-W", "1", lan6])
                    .output()
                    .unwrap()
                    .status
                    .success()
            },
        );
    }
    // The bridges: one with its port, one host-only NAT'd VM network of
    // both families.
    let bridge = lab.on_ok(
        "pve1",
        "ip -4 -br addr show vmbr0; ip -br addr show vmbr1; ip -o link show lan1; nft list chain inet sitec postrouting",
    );
    assert!(bridge.contains("10.0.111.1/24"), "vmbr0: {bridge}");
    assert!(
        bridge.contains("master vmbr0"),
        "lan1 is not vmbr0's port: {bridge}"
    );
    assert!(bridge.contains("10.0.101.1/24"), "vmbr1: {bridge}");
    assert!(
        bridge.contains("ip saddr 10.0.101.0/24 oifname \"eth0\" masquerade"),
        "vmbr1 is not NAT'd: {bridge}"
    );
    assert!(bridge.contains("fd00:101::1/64"), "vmbr1's IPv6: {bridge}");
    assert!(
        bridge.contains("ip6 saddr fd00:101::/64 oifname \"eth0\" masquerade"),
        "vmbr1 is not NAT'd over IPv6: {bridge}"
    );
    // Samba: smbd only, the Time Machine share writable by its user.
    assert_eq!(lab.unit("nas", "is-active", "smbd.service"), "active");
    assert_eq!(lab.unit("nas", "is-enabled", "nmbd.service"), "masked");
    assert_eq!(
        lab.unit("nas", "is-enabled", "samba-ad-dc.service"),
        "masked"
    );
    let probe = format!("probe-{generation}-{}", std::process::id());
    let smb = lab
        .op()
        .args(["smbclient", "//10.0.200.13/timemachine", "-U"])
        .arg(format!("{SAMBA_USER}%{SAMBA_PASSWORD}"))
        .arg("-c")
        .arg(format!("put /etc/os-release {probe}; ls"))
        .output()
        .unwrap();
    assert!(
        smb.status.success() && text(&smb).contains(&probe),
        "smbclient could not write the share:\n{}",
        text(&smb)
    );
    let stored = lab.on_ok("nas", &format!("stat -c %U /srv/timemachine/{probe}"));
    assert_eq!(stored.trim(), SAMBA_USER);
    // NGINX: HTTPS to pve1's web server, a TCP stream to nas's, both over wg0.
    for (host, unit) in [
        ("pve1", "web.service"),
        ("nas", "web.service"),
        ("lb", "nginx.service"),
    ] {
        wait_for(
            &format!("{unit} on {host}"),
            Duration::from_secs(20),
            || lab.unit(host, "is-active", unit) == "active",
        );
    }
    let https = lab
        .op()
        .args(["curl", "-sS", "--max-time", "5", "--cacert"])
        .arg(lab.tls_certificate())
        .args([
            "--resolve",
            "app.e2e.test:443:10.0.200.14",
            "https://app.e2e.test/hello.txt",
        ])
        .output()
        .unwrap();
    assert_eq!(text(&https).trim(), "hello from pve1", "HTTPS through lb");
    // NGINX listens on both families: the same over IPv6.
    let https6 = lab
        .op()
        .args(["curl", "-sS", "--max-time", "5", "--cacert"])
        .arg(lab.tls_certificate())
        .args([
            "--resolve",
            "app.e2e.test:443:[fd00:200::14]",
            "https://app.e2e.test/hello.txt",
        ])
        .output()
        .unwrap();
    assert_eq!(
        text(&https6).trim(),
        "hello from pve1",
        "HTTPS through lb over IPv6"
    );
    let stream = lab
        .op()
        .args([
            "curl",
            "-sS",
            "--max-time",
            "5",
            "http://10.0.200.14:9000/hello.txt",
        ])
        .output()
        .unwrap();
    assert_eq!(
        text(&stream).trim(),
        "hello from nas",
        "TCP stream through lb"
    );
    // A WebSocket upgrade passes through lb to pve1 and back; the control
    // vhost (no `websockets`) sends the upgrade on as plain HTTP/1.0.
    wait_for("ws.service on pve1", Duration::from_secs(20), || {
        lab.unit("pve1", "is-active", "ws.service") == "active"
    });
    let ws = |name: &str| {
        lab.op()
            .arg("python3")
            .arg(project_root().join("tests/boot/ws.py"))
            .args(["ask", "10.0.200.14", "80", name])
            .output()
            .unwrap()
    };
    let up = ws("ws.e2e.test");
    assert!(up.status.success(), "WebSocket through lb: {}", text(&up));
    assert_eq!(text(&up).trim(), "echo: ping over ws.e2e.test");
    let control = ws("nows.e2e.test");
    assert!(
        !control.status.success() && text(&control).contains("426"),
        "the control passed an upgrade: {}",
        text(&control)
    );
    // A name lb does not serve gets no answer over HTTP, and no TLS
    // handshake (so no certificate) over HTTPS.
    let unknown = lab
        .op()
        .args([
            "curl",
            "-sS",
            "--max-time",
            "5",
            "-H",
            "Host: other.e2e.test",
        ])
        .arg("http://10.0.200.14/hello.txt")
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(52), "{}", text(&unknown));
    let unknown_tls = lab
        .op()
        .args(["curl", "-sS", "--max-time", "5", "-k", "--resolve"])
        .args([
            "other.e2e.test:443:10.0.200.14",
            "https://other.e2e.test/hello.txt",
        ])
        .output()
        .unwrap();
    assert_eq!(
        unknown_tls.status.code(),
        Some(35),
        "{}",
        text(&unknown_tls)
    );
    if lab.flavour == Flavour::Debian13 {
        assert_http3(lab);
    }
}

/// HTTP/3 on a Debian 13 lb (nginx 1.26): each of the two HTTP/3 virtual
/// hosts reaches its backend over QUIC, in both families, and a name lb
/// does not serve gets no QUIC handshake, as over TLS. The client is
/// Debian 13's curl (this machine's has no HTTP/3), run in the operator's
/// namespace.
fn assert_http3(lab: &BootLab) {
    let h3 = |name: &str, address: &str, trust: &str| {
        lab.op()
            .env("SITEC_CHROOT_BIND", lab.tmp.path())
            .arg("sh")
            .arg(project_root().join("tests/e2e/debian13.sh"))
            .args(["run", "curl", "--http3-only", "-sS", "--max-time", "5"])
            .args(trust.split(' '))
            .args(["-w", "%{http_version}", "--resolve"])
            .arg(format!("{name}:443:{address}"))
            .arg(format!("https://{name}/hello.txt"))
            .output()
            .unwrap()
    };
    for (name, address, backend) in [
        ("app.e2e.test", "10.0.200.14", "pve1"),
        ("app2.e2e.test", "10.0.200.14", "nas"),
        ("app.e2e.test", "[fd00:200::14]", "pve1"),
        ("app2.e2e.test", "[fd00:200::14]", "nas"),
    ] {
        let o = h3(name, address, "--cacert /mnt/app.crt");
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            format!("hello from {backend}\n3"),
            "{name} over HTTP/3 at {address}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // Whatever certificate it would be shown (-k): none, the QUIC
    // handshake is refused before.
    let unknown = h3("other.e2e.test", "10.0.200.14", "-k");
    assert!(
        unknown.status.code() == Some(7)
            && String::from_utf8_lossy(&unknown.stderr)
                .contains("QUIC connection has been shut down")
            && !text(&unknown).contains("hello"),
        "an unknown name over HTTP/3 was not refused: {}",
        text(&unknown)
    );
}

/// A site like the examples deploys to booted hosts and carries traffic:
/// the mesh under wg-quick@wg0, the ruleset, the bridge, Samba's Time
/// Machine share, NGINX's HTTPS proxy and TCP stream.
fn a_site_deploys_to_booted_hosts_and_carries_traffic(flavour: Flavour) {
    let lab = BootLab::new(flavour);
    deploy(&lab);
    assert_site_live(&lab, 1);
}

/// Every host comes back from a reboot on the same generation with every
/// artifact live, with no sitec command after the reboot.
fn a_reboot_keeps_every_host_on_its_generation_with_everything_live(flavour: Flavour) {
    let lab = BootLab::new(flavour);
    deploy(&lab);
    for (host, _, _) in HOSTS {
        lab.reboot(host);
    }
    for (host, _, _) in HOSTS {
        let boots = std::fs::read_to_string(lab.dir.join(host).join("boots")).unwrap();
        assert_eq!(boots.lines().count(), 1, "{host} did not reboot: {boots}");
    }
    assert_site_live(&lab, 1);
}

/// The MainPID of a unit on a host ("0" when it is not running).
fn main_pid(lab: &BootLab, host: &str, unit: &str) -> String {
    lab.on_ok(host, &format!("systemctl show -P MainPID {unit}"))
        .trim()
        .to_string()
}

/// Units follow their generation: a changed unit file is reloaded and only
/// that unit restarts; enable and mask states apply; a unit the site no
/// longer has is stopped and disabled and states it no longer sets return
/// to what the host had; a rollback brings the older generation's back.
fn units_follow_their_generation_and_a_rollback(flavour: Flavour) {
    let lab = BootLab::with(flavour, &["pve1"]);
    deploy(&lab);
    let web = main_pid(&lab, "pve1", "web.service");
    assert_ne!(web, "0");
    assert_eq!(lab.unit("pve1", "is-enabled", "nginx.service"), "disabled");
    assert_eq!(lab.unit("pve1", "is-enabled", "smbd.service"), "disabled");
    // Running, though not enabled: a state is what runs.
    lab.on_ok("pve1", "systemctl start nginx.service");
    assert_eq!(lab.unit("pve1", "is-active", "smbd.service"), "inactive");

    // 2: a new service, nginx masked, smbd enabled.
    let states = r#"{ "nginx.service" = 'masked, "smbd.service" = 'enabled }"#;
    let b = lab.compile(
        "b",
        &Variant {
            pve1_units: "{ extra = web_server 8081 }",
            pve1_states: states,
            ..BASE
        },
    );
    let out = lab.push_ok(&b, &["e2e", "pve1"]);
    assert_eq!(
        actions(&out, "pve1"),
        ["daemon-reload", "restart:extra.service"],
        "{out}"
    );
    assert_eq!(lab.unit("pve1", "is-active", "extra.service"), "active");
    assert_eq!(lab.unit("pve1", "is-enabled", "extra.service"), "enabled");
    assert_eq!(lab.unit("pve1", "is-enabled", "nginx.service"), "masked");
    assert_eq!(lab.unit("pve1", "is-enabled", "smbd.service"), "enabled");
    assert_eq!(lab.unit("pve1", "is-active", "nginx.service"), "inactive");
    assert_eq!(lab.unit("pve1", "is-active", "smbd.service"), "active");
    assert_eq!(main_pid(&lab, "pve1", "web.service"), web, "web restarted");

    // 3: only the changed unit restarts.
    let extra = main_pid(&lab, "pve1", "extra.service");
    let c = lab.compile(
        "c",
        &Variant {
            pve1_units: "{ extra = web_server 8082 }",
            pve1_states: states,
            ..BASE
        },
    );
    let out = lab.push_ok(&c, &["e2e", "pve1"]);
    assert_eq!(
        actions(&out, "pve1"),
        ["daemon-reload", "restart:extra.service"],
        "{out}"
    );
    assert_ne!(
        main_pid(&lab, "pve1", "extra.service"),
        extra,
        "extra kept its process"
    );
    assert_eq!(main_pid(&lab, "pve1", "web.service"), web, "web restarted");
    lab.on_ok("pve1", "ss -ltn | grep -q ':8082 '");

    // 4: the service and the states leave the site.
    lab.push_ok(&lab.compile("d", &BASE), &["e2e", "pve1"]);
    assert_eq!(lab.unit("pve1", "is-active", "extra.service"), "inactive");
    assert!(
        lab.on("pve1", "ls /etc/systemd/system/*.wants/extra.service")
            .status
            .code()
            != Some(0),
        "extra.service is still enabled"
    );
    assert_eq!(lab.unit("pve1", "is-enabled", "nginx.service"), "disabled");
    assert_eq!(lab.unit("pve1", "is-enabled", "smbd.service"), "disabled");
    assert_eq!(lab.unit("pve1", "is-active", "smbd.service"), "inactive");
    assert_eq!(main_pid(&lab, "pve1", "web.service"), web, "web restarted");

    // Rollback to 3: its service and states come back.
    let rollback = lab.on("pve1", "/var/lib/sitec/activate rollback");
    assert!(rollback.status.success(), "{}", text(&rollback));
    assert_eq!(lab.current("pve1"), "generations/3");
    assert_eq!(lab.unit("pve1", "is-active", "extra.service"), "active");
    assert_eq!(lab.unit("pve1", "is-enabled", "extra.service"), "enabled");
    assert_eq!(lab.unit("pve1", "is-enabled", "nginx.service"), "masked");
    assert_eq!(lab.unit("pve1", "is-enabled", "smbd.service"), "enabled");
    assert_eq!(lab.unit("pve1", "is-active", "smbd.service"), "active");
    assert_eq!(lab.unit("pve1", "is-active", "nginx.service"), "inactive");
    lab.on_ok("pve1", "ss -ltn | grep -q ':8082 '");
}

/// A ruleset that cuts the operator's ssh off a booted host: the host rolls
/// back by itself within the timeout, push exits 5, ssh works again and the
/// old ruleset is live.
fn a_lockout_on_a_booted_host_is_rolled_back_by_the_host(flavour: Flavour) {
    let lab = BootLab::with(flavour, &["nas"]);
    deploy(&lab);
    let before = lab.on_ok("nas", "nft list ruleset");
    // The same bundle also moves nas's IPv6 address: the rollback must
    // take an interface change back too (ifupdown leaves an interface
    // that is up alone unless it is taken down with its old stanza).
    let locked = lab.compile(
        "locked",
        &Variant {
            admin: r#""10.0.98.0/24""#,
            nas_lan6: "fd00:200::213/64",
            ..BASE
        },
    );
    let start = Instant::now();
    let (code, out) = lab.push(&locked, &["--confirm-timeout", "8", "e2e", "nas"]);
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("nas: unconfirmed"), "{out}");
    wait_for("nas to roll back", Duration::from_secs(30), || {
        lab.current("nas") == "generations/1"
    });
    assert!(
        start.elapsed() < Duration::from_secs(8 + 25),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(lab.on_ok("nas", "nft list ruleset"), before);
    let ssh = lab
        .op()
        .args(["ssh", "-F"])
        .arg(lab.dir.join("ssh_config"))
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=3",
            "10.0.200.13",
            "true",
        ])
        .output()
        .unwrap();
    assert!(
        ssh.status.success(),
        "ssh after the rollback: {}",
        text(&ssh)
    );
    let log = lab.on_ok("nas", "cat /var/lib/sitec/log");
    assert!(
        log.contains("generation 2: unconfirmed-rolled-back"),
        "{log}"
    );
    // eth0 is on fd00:200::13 again, and reachable.
    match flavour {
        // Three times: as the installer's file brought it up into
        // generation 1, then as the file applied last (1's, then 2's) into
        // 2 and back.
        Flavour::Debian12 => {
            let downs = log
                .lines()
                .filter(|l| l.contains("run: ifdown --force -i ") && l.ends_with(" eth0"))
                .count();
            let from = |file: &str| {
                log.matches(&format!(
                    "interfaces: what changed is taken down as {file} brought it up"
                ))
                .count()
            };
            assert!(
                downs == 3
                    && from("/var/lib/sitec/backup/files/etc/network/interfaces") == 1
                    && from("/var/lib/sitec/interfaces.applied") == 2,
                "eth0 was not taken down as each file brought it up:\n{log}"
            );
        }
        // ifupdown2 applies what changed and checks what runs, each time.
        Flavour::Debian13 => assert!(
            log.matches("run: ifreload -a").count() == 3
                && log.matches("run: ifquery -a --check").count() == 3
                && !log.contains("run: ifdown"),
            "the interfaces were not reloaded and checked by ifupdown2:\n{log}"
        ),
    }
    let eth0 = lab.on_ok("nas", "ip -6 -br addr show eth0");
    assert!(
        eth0.contains("fd00:200::13/64") && !eth0.contains("fd00:200::213"),
        "{eth0}"
    );
    let ping6 = lab
        .op()
        .args(["ping", "-6", "-c", "1", "-W", "2", "fd00:200::13"])
        .output()
        .unwrap();
    assert!(
        ping6.status.success(),
        "ping6 after the rollback: {}",
        text(&ping6)
    );
}

/// nas's management address moves from its NIC onto a bridge over it
/// (vmbr0, as every Proxmox host is laid out): ifupdown2 applies it under
/// the operator's ssh, which confirms it over a new connection. A bridge
/// over the other NIC takes the address away from the operator: the host
/// goes back to the bridge over eth0 by itself.
fn the_management_address_moves_onto_a_bridge_and_a_bridge_that_cuts_it_off_is_rolled_back(
    flavour: Flavour,
) {
    let lab = BootLab::with(flavour, &["nas"]);
    deploy(&lab);
    let bridged = |nic: &'static str| Variant {
        nas_interfaces: if nic == "eth0" {
            "{ eth0 = {} }"
        } else {
            "{ eth0 = {}, lan1 = {} }"
        },
        nas_extra: if nic == "eth0" {
            r#"{ bridges.vmbr0 = { address = "10.0.200.13/24", address6 = "fd00:200::13/64", ports = ["eth0"], comment = "management" } }"#
        } else {
            r#"{ bridges.vmbr0 = { address = "10.0.200.13/24", address6 = "fd00:200::13/64", ports = ["lan1"], comment = "management" } }"#
        },
        ..BASE
    };
    let on_bridge = lab.compile("bridge", &bridged("eth0"));
    let out = lab.push_ok(&on_bridge, &["--confirm-timeout", "30", "e2e", "nas"]);
    assert!(out.contains("nas: ok, generation 2 confirmed"), "{out}");
    let links = || {
        lab.on_ok(
            "nas",
            "ip -br addr show vmbr0; ip -br addr show eth0; ip -o link show eth0",
        )
    };
    let now = links();
    assert!(
        now.contains("10.0.200.13/24") && now.contains("master vmbr0"),
        "{now}"
    );
    let eth0 = lab.on_ok("nas", "ip -br addr show eth0");
    assert!(
        !eth0.contains("10.0.200.13"),
        "eth0 kept the address: {eth0}"
    );
    assert!(lab.ssh_answers("10.0.200.13").status.success());

    let cut = lab.compile("cut", &bridged("lan1"));
    let (code, out) = lab.push(&cut, &["--confirm-timeout", "8", "e2e", "nas"]);
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("nas: unconfirmed"), "{out}");
    wait_for("nas to roll back", Duration::from_secs(40), || {
        lab.current("nas") == "generations/2"
    });
    wait_for("the operator's ssh to nas", Duration::from_secs(20), || {
        lab.ssh_answers("10.0.200.13").status.success()
    });
    let back = links();
    assert!(
        back.contains("10.0.200.13/24") && back.contains("master vmbr0"),
        "vmbr0 over eth0 is not back: {back}"
    );
    let lan1 = lab.on_ok("nas", "ip -o link show lan1");
    assert!(!lan1.contains("master vmbr0"), "{lan1}");
    let log = lab.on_ok("nas", "cat /var/lib/sitec/log");
    assert!(
        log.contains("generation 3: unconfirmed-rolled-back"),
        "{log}"
    );
}

/// sshd as the site says, on a booted host: only the site's key logs root
/// in once the home directory's key is gone; a bundle whose keys leave
/// the operator's out passes every check (no check can know which key the
/// operator holds), locks push out, and the host rolls it back by itself;
/// a host whose own sshd_config would override the drop-in for the
/// operator's address refuses the bundle before anything changes.
fn sshd_follows_the_site_and_a_key_that_locks_the_operator_out_is_rolled_back(flavour: Flavour) {
    let lab = BootLab::with(flavour, &["nas"]);
    let keys_only = Variant {
        nas_extra: r#"{ ssh = { authorized_keys.root = ["@OPERATOR_KEY@"], home_keys = false, allow_users = ["root"] } }"#,
        ..BASE
    };
    let a = lab.compile("a", &keys_only);
    let sshd = lab.on_ok("nas", "systemctl show -p MainPID --value ssh.service");
    let out = lab.push_ok(&a, &["--confirm-timeout", "60", "e2e", "nas"]);
    assert!(out.contains("nas: ok, generation 1 confirmed"), "{out}");
    // Reloaded, not restarted: sessions in progress stay.
    assert_eq!(
        lab.on_ok("nas", "systemctl show -p MainPID --value ssh.service"),
        sshd
    );
    let effective = lab.on_ok(
        "nas",
        "sshd -T -C user=root,host=op,addr=10.0.200.1 | grep -E '^(authorizedkeysfile|passwordauthentication|allowusers) '",
    );
    assert_eq!(
        effective,
        "passwordauthentication no\nauthorizedkeysfile /etc/ssh/authorized_keys.d/%u\nallowusers root\n"
    );
    // The home directory's key no longer counts: the site's logs in.
    lab.on_ok("nas", "mv /root/.ssh/authorized_keys /root/home_keys");
    let ssh = lab.ssh_answers("10.0.200.13");
    assert!(ssh.status.success(), "the site's key: {}", text(&ssh));

    // Someone else's key instead of the operator's: sshd -t and -T are
    // content, push cannot confirm, the host rolls back.
    let other = r#"{ ssh = { authorized_keys.root = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIdHPnK5h2rsQbF1QfgQU2xa3bB/d6i7KhNSFquZtj62 alice@laptop"], home_keys = false, allow_users = ["root"] } }"#;
    let locked = lab.compile(
        "locked",
        &Variant {
            nas_extra: other,
            ..BASE
        },
    );
    let (code, out) = lab.push(&locked, &["--confirm-timeout", "8", "e2e", "nas"]);
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("nas: unconfirmed"), "{out}");
    wait_for("nas to roll back", Duration::from_secs(30), || {
        lab.current("nas") == "generations/1"
    });
    // The rollback is over once its actions ran: sshd reloaded with the
    // operator's key again.
    let result = lab.rolled_back("nas", 2);
    assert!(result.ends_with("unconfirmed-rolled-back"), "{result}");
    // OpenSSH 9.8 and newer (Debian 13) hold failed logins against their
    // address for a while (PerSourcePenalties): push's attempts with the
    // key the bundle dropped count, so the operator's address may wait
    // some seconds after the rollback. Within a minute it is let in.
    wait_for(
        "the operator's ssh to nas after the rollback",
        Duration::from_secs(60),
        || lab.ssh_answers("10.0.200.13").status.success(),
    );
    let key = lab.on_ok("nas", "cat /etc/ssh/authorized_keys.d/root");
    assert!(key.contains(&lab.operator_key()), "{key}");

    // The host's own sshd_config gives the operator's address passwords:
    // the drop-in's `PasswordAuthentication no` would not apply to the
    // session push opens, so check refuses the bundle.
    lab.on_ok(
        "nas",
        "cp /etc/ssh/sshd_config /root/sshd_config && printf 'Match Address 10.0.200.1\\n\\tPasswordAuthentication yes\\n' >>/etc/ssh/sshd_config",
    );
    let (code, out) = lab.push(&locked, &["e2e", "nas"]);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("sshd would use PasswordAuthentication yes, not the drop-in's no"),
        "{out}"
    );
    assert_eq!(lab.current("nas"), "generations/1");
    lab.on_ok("nas", "mv /root/sshd_config /etc/ssh/sshd_config");

    // Back to generation 0: the host's own sshd and its home key.
    lab.on_ok("nas", "mv /root/home_keys /root/.ssh/authorized_keys");
    lab.on_ok("nas", "/var/lib/sitec/activate rollback 0");
    let effective = lab.on_ok(
        "nas",
        "test ! -e /etc/ssh/sshd_config.d/00-sitec.conf && sshd -T -C user=root,host=op,addr=10.0.200.1 | grep '^authorizedkeysfile '",
    );
    assert_eq!(
        effective,
        "authorizedkeysfile .ssh/authorized_keys .ssh/authorized_keys2\n"
    );
    let ssh = lab.ssh_answers("10.0.200.13");
    assert!(ssh.status.success(), "ssh at generation 0: {}", text(&ssh));
}

/// Module options take effect at the next boot: push's result line and
/// `push --status` say that the host needs a reboot until it rebooted, and
/// a rollback to what the host booted on needs none.
fn a_change_that_waits_for_a_boot_is_reported_until_the_host_reboots(flavour: Flavour) {
    let lab = BootLab::with(flavour, &["nas"]);
    let kernel = Variant {
        nas_extra: r#"{ kernel = { modules = ["loop"], options.loop.max_loop = 8 } }"#,
        ..BASE
    };
    let a = lab.compile("a", &kernel);
    let out = lab.push_ok(&a, &["--confirm-timeout", "60", "e2e", "nas"]);
    let needs = "reboot needed for etc/modprobe.d/sitec.conf";
    assert!(
        out.contains(&format!("nas: ok, generation 1 confirmed; {needs}")),
        "{out}"
    );
    let status = |out: &Path| lab.push_ok(out, &["--status", "e2e", "nas"]);
    assert!(
        status(&a).contains(&format!("nas: in sync (generation 1); {needs}")),
        "{}",
        status(&a)
    );
    let options = lab.on_ok("nas", "modprobe --showconfig | grep '^options loop '");
    assert_eq!(options, "options loop max_loop=8\n");
    lab.reboot("nas");
    lab.push_ok(&a, &["--confirm-boot", "e2e", "nas"]);
    let after = status(&a);
    assert!(
        after.contains("nas: in sync (generation 1)\n") && !after.contains("reboot needed"),
        "{after}"
    );
    // Without the options the host differs from what it booted on again;
    // back on generation 1 it is what it booted on.
    let b = lab.compile("b", &BASE);
    let out = lab.push_ok(&b, &["--confirm-timeout", "60", "e2e", "nas"]);
    assert!(
        out.contains(&format!("nas: ok, generation 2; {needs}")),
        "{out}"
    );
    let back = lab.on_ok("nas", "/var/lib/sitec/activate rollback 1");
    assert!(
        back.contains("rolled back from generation 2 to 1") && !back.contains("reboot needed"),
        "{back}"
    );
}

/// nas with module options, whose boots on them wait `timeout` seconds for
/// the operator's confirmation.
fn loop_options(timeout: &'static str) -> Variant {
    Variant {
        nas_deploy: timeout,
        nas_extra: r#"{ kernel = { modules = ["loop"], options.loop.max_loop = 8 } }"#,
        ..BASE
    }
}

/// How many times a host has gone down since the lab booted it.
fn boots(lab: &BootLab, host: &str) -> usize {
    std::fs::read_to_string(lab.dir.join(host).join("boots")).map_or(0, |s| s.lines().count())
}

/// Waits until a host went down `more` times after `since` of its boots,
/// and answers ssh again.
fn reboots_by_itself(lab: &BootLab, host: &str, since: usize, more: usize) {
    wait_for(
        &format!("{host} to reboot by itself"),
        Duration::from_secs(240),
        || boots(lab, host) >= since + more,
    );
    run_ok(
        Command::new("sh")
            .arg(boot_sh())
            .arg("wait")
            .arg(&lab.dir)
            .arg(host),
    );
}

/// The host's own module options: generation 2's are gone.
fn assert_back_on_generation_1(lab: &BootLab, generation: u32) {
    assert_eq!(lab.current("nas"), "generations/1");
    assert_eq!(
        lab.result("nas", generation),
        "boot-unconfirmed-rolled-back"
    );
    let options = lab.on_ok(
        "nas",
        "modprobe --showconfig | grep -c '^options loop ' || true",
    );
    assert_eq!(
        options.trim(),
        "0",
        "generation {generation}'s options stayed"
    );
    let status = lab.on_ok("nas", "/var/lib/sitec/activate status");
    assert!(!status.contains("awaits confirmation"), "{status}");
    let log = lab.on_ok("nas", "cat /var/lib/sitec/log");
    assert!(!log.contains("could not start"), "{log}");
    lab.wait_active(
        "nas",
        30,
        &["smbd.service", "wg-quick@wg0.service", "nftables.service"],
    );
}

/// Kernel files (here module options) take effect when the host boots,
/// long after their switch was confirmed: a blacklisted NIC driver would
/// cut the host off then. A boot on kernel files that no confirmed boot had
/// awaits the operator (`push --confirm-boot`); unconfirmed, the host goes
/// back to the newest generation whose kernel files booted and were
/// confirmed, and reboots onto it by itself. A confirmed boot's files need
/// no confirmation at the next boot.
fn a_boot_on_new_kernel_files_that_nobody_confirms_goes_back_and_reboots_by_itself(
    flavour: Flavour,
) {
    let lab = BootLab::with(flavour, &["nas"]);
    deploy(&lab);
    let k = lab.compile("k", &loop_options("{ boot_confirm_timeout = 45 }"));
    let b = lab.compile("b", &BASE);
    let out = lab.push_ok(&k, &["e2e", "nas"]);
    assert!(
        out.contains("nas: ok, generation 2; reboot needed for etc/modprobe.d/sitec.conf"),
        "{out}"
    );

    let before = boots(&lab, "nas");
    lab.reboot("nas");
    let status = lab.push_ok(&k, &["--status", "e2e", "nas"]);
    assert!(
        status.contains(
            "nas: in sync (generation 2); its boot awaits confirmation: push --confirm-boot e2e nas"
        ),
        "{status}"
    );
    // Nothing is switched over a boot nobody confirmed.
    let (code, out) = lab.push(&b, &["e2e", "nas"]);
    assert_eq!(code, 6, "{out}");
    assert!(
        out.contains("the boot on generation 2 awaits confirmation"),
        "{out}"
    );
    // Nobody confirms.
    reboots_by_itself(&lab, "nas", before, 2);
    assert_back_on_generation_1(&lab, 2);
    assert_eq!(
        boots(&lab, "nas"),
        before + 2,
        "nas rebooted more than once by itself"
    );
    let (code, late) = lab.push(&k, &["--confirm-boot", "e2e", "nas"]);
    assert_eq!(code, 5, "{late}");
    assert!(
        late.contains("the boot on generation 2 was not confirmed in time: the host went back to generation 1 and rebooted"),
        "{late}"
    );
    let log = lab.on_ok("nas", "cat /var/lib/sitec/log");
    assert!(
        log.contains(
            "generation 2: boot-unconfirmed-rolled-back (no confirmation within 45 s of the boot)"
        ),
        "{log}"
    );

    // Pushed again, then a change of something else on top: the boot on
    // the live generation awaits confirmation, which out/'s bundle or any
    // with the same kernel files gives; from then on the same files boot
    // without one.
    let out = lab.push_ok(&k, &["e2e", "nas"]);
    assert!(out.contains("nas: ok, generation 3"), "{out}");
    let wider = Variant {
        admin: WIDER_ADMIN,
        ..loop_options("{ boot_confirm_timeout = 45 }")
    };
    let k2 = lab.compile("k2", &wider);
    let out = lab.push_ok(&k2, &["e2e", "nas"]);
    assert!(out.contains("nas: ok, generation 4 confirmed"), "{out}");
    let before = boots(&lab, "nas");
    lab.reboot("nas");
    let (code, other) = lab.push(&b, &["--confirm-boot", "e2e", "nas"]);
    assert_eq!(code, 3, "{other}");
    assert!(
        other.contains("the boot awaiting confirmation came up on generation 4"),
        "{other}"
    );
    let confirmed = lab.push_ok(&k, &["--confirm-boot", "e2e", "nas"]);
    assert!(
        confirmed.contains(&format!(
            "nas: the boot on generation 4 ({}) is confirmed",
            store_name(&k2, "nas")
        )),
        "{confirmed}"
    );
    std::thread::sleep(Duration::from_secs(50));
    assert_eq!(
        boots(&lab, "nas"),
        before + 1,
        "nas rebooted after its boot was confirmed"
    );
    assert_eq!(lab.current("nas"), "generations/4");
    lab.reboot("nas");
    let status = lab.push_ok(&k2, &["--status", "e2e", "nas"]);
    assert!(status.contains("nas: in sync (generation 4)\n"), "{status}");
    let again = lab.push_ok(&k2, &["--confirm-boot", "e2e", "nas"]);
    assert!(
        again.contains("nas: no boot awaits confirmation"),
        "{again}"
    );
}

/// A host that goes down while its boot awaits confirmation does not wait
/// for a timer at the next boot: it goes back at once and reboots. A
/// rollback of an unconfirmed boot killed halfway is finished at the next
/// boot the same way.
fn a_host_that_goes_down_while_its_boot_awaits_confirmation_goes_back_at_the_next_boot(
    flavour: Flavour,
) {
    let lab = BootLab::with(flavour, &["nas"]);
    deploy(&lab);
    let k = lab.compile("k", &loop_options("{}"));
    lab.push_ok(&k, &["e2e", "nas"]);
    lab.reboot("nas");
    let before = boots(&lab, "nas");
    lab.crash("nas");
    reboots_by_itself(&lab, "nas", before, 2);
    assert_back_on_generation_1(&lab, 2);
    let log = lab.on_ok("nas", "cat /var/lib/sitec/log");
    assert!(
        log.contains("generation 2: boot-unconfirmed-rolled-back (the host went down before its boot was confirmed)"),
        "{log}"
    );

    assert_eq!(boots(&lab, "nas"), before + 2);

    // The timer's rollback, killed before the swap and in its actions
    // (after the swap, before the initramfs and the bootloader are the
    // generation's it goes back to).
    for (generation, step) in [(3, "swap"), (4, "actions")] {
        lab.push_ok(&k, &["e2e", "nas"]);
        lab.reboot("nas");
        let expiry = lab.paused("nas", step, "boot-expire");
        let before = boots(&lab, "nas");
        lab.crash("nas");
        drop(expiry);
        reboots_by_itself(&lab, "nas", before, 2);
        assert_back_on_generation_1(&lab, generation);
        assert_eq!(boots(&lab, "nas"), before + 2, "killed at {step}");
    }
}

/// The confirmation's timer is PID 1's, not a process of the operator's
/// session: stopping the session that ran the switch (as a logout with
/// KillUserProcesses, a session stop or the OOM killer would take its
/// processes) leaves it, and the host rolls the unconfirmed generation
/// back at its deadline.
fn the_confirmation_timer_outlives_the_session_that_switched(flavour: Flavour) {
    let lab = BootLab::with(flavour, &["nas"]);
    deploy(&lab);
    let b = lab.compile(
        "b",
        &Variant {
            admin: WIDER_ADMIN,
            ..BASE
        },
    );
    lab.stage(&b, "nas");
    let o = lab.ssh(
        "nas",
        &format!(
            "{} switch --confirm-timeout 20 {} && cat /proc/self/cgroup",
            lab.agent(&b, "nas").0,
            lab.agent(&b, "nas").1
        ),
    );
    let switched = text(&o);
    assert!(
        o.status.success() && switched.contains("confirm within 20 s"),
        "{switched}"
    );
    let scope = switched
        .lines()
        .find_map(|l| l.strip_prefix("0::/"))
        .and_then(|c| c.rsplit('/').next())
        .unwrap_or_else(|| panic!("no cgroup: {switched}"))
        .to_string();
    assert!(scope.starts_with("session-"), "{switched}");
    let prom = lab.on_ok("nas", "cat /var/lib/sitec/status.prom");
    for line in [
        "sitec_generation 2\n",
        &format!(
            "sitec_generation_info{{bundle=\"{}\",host=\"nas\"}} 1\n",
            store_name(&b, "nas").split('-').next().unwrap()
        ),
        "sitec_awaiting_confirmation 1\n",
        "sitec_confirmation_deadline_seconds ",
        "sitec_state{state=\"AWAITING\"} 1\n",
        "sitec_transition_interrupted 0\n",
    ] {
        assert!(prom.contains(line), "{line}: {prom}");
    }
    lab.on_ok("nas", &format!("systemctl stop {scope}; true"));
    wait_for(
        "the rollback of generation 2 at its deadline",
        Duration::from_secs(60),
        || lab.result("nas", 2) == "unconfirmed-rolled-back",
    );
    assert_eq!(lab.current("nas"), "generations/1");
    let log = lab.on_ok("nas", "cat /var/lib/sitec/log");
    assert!(
        log.contains("generation 2 was not confirmed (no confirmation before the deadline)"),
        "{log}"
    );
    let prom = lab.on_ok("nas", "cat /var/lib/sitec/status.prom");
    assert!(prom.contains("sitec_generation 1\n"), "{prom}");
    assert!(prom.contains("sitec_awaiting_confirmation 0\n"), "{prom}");
}

/// A local user of the host (here `nobody`) can neither hold sitec's lock,
/// which would suspend every activation and the timer that rolls a
/// lockout back, nor read what generation 0 backed up: a key that a 0700
/// directory protected on the host stays protected. A lock file left open
/// to all by an earlier version, held by such a user, is replaced, and the
/// push goes on at once.
fn local_users_can_neither_hold_sitecs_lock_nor_read_what_it_backed_up(flavour: Flavour) {
    let lab = BootLab::with(flavour, &["nas"]);
    lab.on_ok(
        "nas",
        "mkdir -p -m 700 /etc/wireguard && echo '# the host own key' >/etc/wireguard/wg0.conf && chmod 644 /etc/wireguard/wg0.conf",
    );
    deploy(&lab);
    let nobody = |script: &str| {
        let o = lab.on("nas", &format!("runuser -u nobody -- {script} 2>&1"));
        (o.status.success(), text(&o))
    };
    let (read, said) = nobody("cat /var/lib/sitec/backup/files/etc/wireguard/wg0.conf");
    assert!(!read, "nobody read the host's old key: {said}");
    assert_eq!(
        lab.on_ok(
            "nas",
            "stat -c %a /var/lib/sitec/backup /var/lib/sitec/private /var/lib/sitec/private/lock"
        ),
        "700\n700\n600\n"
    );
    let (held, said) = nobody("flock -n /var/lib/sitec/private/lock true");
    assert!(!held, "nobody could open sitec's lock: {said}");
    assert!(said.contains("Permission denied"), "{said}");

    // As an earlier version left its lock: open to all, and held by nobody.
    lab.on_ok(
        "nas",
        "touch /var/lib/sitec/lock && chmod 644 /var/lib/sitec/lock && setsid runuser -u nobody -- flock /var/lib/sitec/lock sleep 600 </dev/null >/dev/null 2>&1 & sleep 1",
    );
    assert!(
        lab.on_ok("nas", "cat /proc/locks").contains("FLOCK"),
        "nobody holds no lock"
    );
    let b = lab.compile(
        "b",
        &Variant {
            admin: WIDER_ADMIN,
            ..BASE
        },
    );
    let started = Instant::now();
    let out = lab.push_ok(&b, &["e2e", "nas"]);
    assert!(out.contains("nas: ok, generation 2 confirmed"), "{out}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the push waited for nobody's lock"
    );
    assert_eq!(
        lab.on_ok("nas", "stat -c %u:%a /var/lib/sitec/lock"),
        "0:600\n"
    );
}

/// `activate check` refuses, before anything changes, a bundle whose
/// artifacts the host cannot apply, and says what to install: here a bridge
/// on a host with classic ifupdown but without bridge-utils' hook.
/// A host deployed to over IPv6: push reaches it by ssh and rsync at its
/// IPv6 address (in brackets for rsync), and the switch is confirmed over
/// a new IPv6 connection.
fn a_host_is_deployed_to_and_confirmed_over_ipv6(flavour: Flavour) {
    let lab = BootLab::with(flavour, &["nas"]);
    // Generation 1, deployed over IPv4, admits ssh from the operator's
    // IPv6 address too.
    let both = r#""10.0.200.1/32", "fd00:200::1/128""#;
    let a = lab.compile(
        "a",
        &Variant {
            admin: both,
            ..BASE
        },
    );
    let out = lab.push_ok(&a, &["--confirm-timeout", "60", "e2e", "nas"]);
    assert!(out.contains("nas: ok, generation 1 confirmed"), "{out}");
    // Generation 2 is deployed to over IPv6, and changes the ruleset, so
    // it must be confirmed over a new IPv6 connection.
    let v6 = lab.compile(
        "v6",
        &Variant {
            admin: r#""10.0.200.1/32", "fd00:200::1/128", "fd00:98::/64""#,
            nas_deploy: r#"{ address = "fd00:200::13" }"#,
            ..BASE
        },
    );
    let index = std::fs::read_to_string(v6.join("e2e/nas/index")).unwrap();
    assert!(index.contains("d\taddress\tfd00:200::13\n"), "{index}");
    let out = lab.push_ok(&v6, &["--confirm-timeout", "60", "e2e", "nas"]);
    assert!(out.contains("nas: ok, generation 2 confirmed"), "{out}");
    assert_eq!(lab.current("nas"), "generations/2");
    // The sessions came from the operator's IPv6 address.
    let log = lab.on_ok(
        "nas",
        "journalctl -q -u ssh.service --no-pager | grep -c 'from fd00:200::1 ' || true",
    );
    assert!(
        log.trim().parse::<u32>().unwrap_or(0) > 0,
        "no ssh session over IPv6 in sshd's log: {log}"
    );
}

/// A host that cannot apply a bundle refuses it before anything changes,
/// saying why: on Debian 12 a bridge without bridge-utils' ifupdown hook,
/// on Debian 13 a bundle written for Debian 12 with classic ifupdown; on
/// both, an apt source whose keyring is not on the host.
fn a_host_that_cannot_apply_a_bundle_refuses_it_before_the_switch(flavour: Flavour) {
    let lab = BootLab::with(flavour, &["pve1"]);
    let a = lab.compile("a", &BASE);
    let refused = match flavour {
        // Classic ifupdown makes bridges only through bridge-utils' hook.
        Flavour::Debian12 => {
            lab.on_ok(
                "pve1",
                "mv /etc/network/if-pre-up.d/bridge /root/bridge-hook",
            );
            a.clone()
        }
        // On Debian 13, a bundle written for Debian 12 with classic
        // ifupdown (what the site says when it says nothing).
        Flavour::Debian13 => lab.compile(
            "wrong",
            &Variant {
                system: Some("{}"),
                ..BASE
            },
        ),
    };
    let (code, out) = lab.push(&refused, &["e2e", "pve1"]);
    assert_eq!(code, 3, "{out}");
    match flavour {
        Flavour::Debian12 => assert!(out.contains("bridge-utils"), "{out}"),
        Flavour::Debian13 => assert!(
            out.contains("the bundle is written for Debian 12 (bookworm) (the release of this host in the site); this host runs Debian 13 (trixie): set its release in the site (release = 'debian13)")
                && out.contains("etc/network/interfaces is written for classic ifupdown (the ifupdown of this host in the site); this host has ifupdown2: set ifupdown = 'ifupdown2")
                && out.contains("nothing changed")
                && !out.contains("validated "),
            "{out}"
        ),
    }
    assert_eq!(lab.current("pve1"), "none");
    let link = lab.on_ok("pve1", "ip -br link show vmbr0 2>&1 || true");
    assert!(link.contains("does not exist"), "{link}");
    // With the hook back, the bundle written for the host deploys and the
    // bridge comes up.
    if flavour == Flavour::Debian12 {
        lab.on_ok(
            "pve1",
            "mv /root/bridge-hook /etc/network/if-pre-up.d/bridge",
        );
    }
    // Without the keyring its apt source names, apt would refuse the
    // repository: so does check, before anything changes.
    lab.on_ok(
        "pve1",
        "mv /etc/apt/keyrings/e2e-archive.gpg /root/e2e-archive.gpg",
    );
    let (code, out) = lab.push(&a, &["e2e", "pve1"]);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("the keyring /etc/apt/keyrings/e2e-archive.gpg is not on this host"),
        "{out}"
    );
    assert_eq!(lab.current("pve1"), "none");
    lab.on_ok(
        "pve1",
        "mv /root/e2e-archive.gpg /etc/apt/keyrings/e2e-archive.gpg",
    );
    lab.push_ok(&a, &["e2e", "pve1"]);
    let bridge = lab.on_ok(
        "pve1",
        "ip -4 -br addr show vmbr0; ip -4 -br addr show vmbr1",
    );
    assert!(bridge.contains("10.0.111.1/24"), "{bridge}");
    assert!(bridge.contains("10.0.101.1/24"), "{bridge}");
}

/// The admin set of the live ruleset of a host.
fn admin_set(lab: &BootLab, host: &str) -> String {
    lab.on_ok(host, "nft list set inet sitec admin.v4")
}

/// Admits a second network to ssh: a network change that keeps the operator in.
const WIDER_ADMIN: &str = r#""10.0.200.1/32", "10.0.99.0/24""#;

/// A host that crashes while a generation awaits confirmation boots the
/// generation before it: sitec-boot.service rolls the unconfirmed one back
/// before the firewall and the network come up, and a late confirm is
/// refused.
fn a_host_that_crashes_while_a_generation_awaits_confirmation_boots_the_confirmed_one(
    flavour: Flavour,
) {
    let lab = BootLab::with(flavour, &["nas"]);
    deploy(&lab);
    let b = lab.compile(
        "b",
        &Variant {
            admin: WIDER_ADMIN,
            ..BASE
        },
    );
    lab.stage(&b, "nas");
    let (act, name) = lab.agent(&b, "nas");
    let switched = lab.on_ok("nas", &format!("{act} switch --confirm-timeout 600 {name}"));
    assert!(switched.contains("confirm within 600 s"), "{switched}");
    assert!(admin_set(&lab, "nas").contains("10.0.99.0/24"));

    lab.crash("nas");
    assert_eq!(lab.current("nas"), "generations/1");
    assert_eq!(lab.result("nas", 2), "unconfirmed-rolled-back");
    let set = admin_set(&lab, "nas");
    assert!(
        !set.contains("10.0.99.0/24"),
        "booted with generation 2's ruleset: {set}"
    );
    assert_eq!(lab.unit("nas", "is-active", "sitec-boot.service"), "active");
    // Longer than an action's timeout: systemd does not cut a recovery off
    // while a command of it still has time.
    assert_eq!(
        lab.unit("nas", "show -P TimeoutStartUSec", "sitec-boot.service"),
        "30min"
    );
    let confirm = lab.on("nas", &format!("{act} confirm 2"));
    assert_eq!(confirm.status.code(), Some(5), "{}", text(&confirm));
    let log = lab.on_ok("nas", "cat /var/lib/sitec/log");
    assert!(
        log.contains(
            "generation 2: unconfirmed-rolled-back (the host restarted before it was confirmed)"
        ),
        "{log}"
    );
    lab.wait_active(
        "nas",
        20,
        &["smbd.service", "wg-quick@wg0.service", "web.service"],
    );
}

/// A host that crashes in the middle of a switch (its links half made, or
/// in its actions) boots the generation the switch left, with no journal
/// left over and the new generation's unit gone.
fn a_host_that_crashes_in_the_middle_of_a_switch_boots_the_generation_it_left(flavour: Flavour) {
    let lab = BootLab::with(flavour, &["pve1"]);
    deploy(&lab);
    let b = lab.compile(
        "b",
        &Variant {
            admin: WIDER_ADMIN,
            pve1_units: "{ extra = web_server 8081 }",
            ..BASE
        },
    );
    lab.stage(&b, "pve1");
    for (generation, step) in [(2, "links"), (3, "actions")] {
        let mut switch = lab.paused(
            "pve1",
            step,
            &format!("switch --confirm-timeout 600 {}", store_name(&b, "pve1")),
        );
        lab.crash("pve1");
        let _ = switch.wait();
        assert_eq!(lab.current("pve1"), "generations/1", "crashed at {step}");
        assert_eq!(
            lab.result("pve1", generation),
            "interrupted-rolled-back",
            "crashed at {step}"
        );
        let set = admin_set(&lab, "pve1");
        assert!(!set.contains("10.0.99.0/24"), "crashed at {step}: {set}");
        lab.on_ok(
            "pve1",
            "! test -e /var/lib/sitec/journal && ! test -e /var/lib/sitec/armed &&
             ! test -e /etc/systemd/system/extra.service",
        );
        assert_eq!(lab.unit("pve1", "is-active", "extra.service"), "inactive");
        for unit in ["web.service", "wg-quick@wg0.service"] {
            wait_for(
                &format!("{unit} after a crash at {step}"),
                Duration::from_secs(20),
                || lab.unit("pve1", "is-active", unit) == "active",
            );
        }
    }
}

/// A service whose start waits forever on pve1: the host has a drop-in
/// that makes it a oneshot with no start timeout (an admin's, say).
const HANGING: &str = r#"{ extra = {
  description = "waits forever",
  exec = { command = "/usr/bin/python3", args = ["-m", "http.server", "8081"] },
  restart = 'no,
} }"#;

/// Until the test kills the switch, or reboots its host, waiting in the
/// action that restarts the hanging service of generation `generation`.
fn hang(lab: &BootLab, generation: u32) {
    wait_for(
        "the switch to hang in its action",
        Duration::from_secs(120),
        || {
            lab.on_ok("pve1", "cat /var/lib/sitec/log")
                .contains(&format!(
                    "action restart:extra.service (generation 1 -> {generation})"
                ))
        },
    );
    std::thread::sleep(Duration::from_secs(2));
}

/// An action that hangs is cut off (`--action-timeout`) and the switch
/// rolled back. A switch killed while it hangs in a network change is
/// undone by the timer armed before the first action; a host rebooted
/// while it hangs boots the generation the switch left.
fn a_hanging_action_is_cut_off_and_a_switch_killed_or_rebooted_in_one_is_undone(flavour: Flavour) {
    let lab = BootLab::with(flavour, &["pve1"]);
    deploy(&lab);
    lab.on_ok(
        "pve1",
        "mkdir -p /etc/systemd/system/extra.service.d &&
         printf '[Service]\\nType=oneshot\\nTimeoutStartSec=infinity\\n' >/etc/systemd/system/extra.service.d/hang.conf",
    );
    let settled = |generation: u32| {
        lab.rolled_back("pve1", generation);
        assert_eq!(lab.current("pve1"), "generations/1");
        assert!(!admin_set(&lab, "pve1").contains("10.0.99.0/24"));
        assert_eq!(lab.unit("pve1", "is-active", "extra.service"), "inactive");
        wait_for("web.service", Duration::from_secs(20), || {
            lab.unit("pve1", "is-active", "web.service") == "active"
        });
    };

    // Cut off: the action fails after 5 s and the switch rolls back.
    let b = lab.compile(
        "b",
        &Variant {
            pve1_units: HANGING,
            ..BASE
        },
    );
    let (code, out) = lab.push(&b, &["--action-timeout", "5", "e2e", "pve1"]);
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("pve1: failed and rolled back"), "{out}");
    assert_eq!(lab.result("pve1", 2), "failed-rolled-back");
    settled(2);
    let log = lab.on_ok("pve1", "cat /var/lib/sitec/log");
    assert!(
        log.contains("cut off after 5 s: systemctl restart extra.service"),
        "{log}"
    );

    // A push that waits on its action as long as the test needs.
    let push = |bundle: &Path, confirm_timeout: &str| {
        lab.push_command(
            bundle,
            &[
                "--confirm-timeout",
                confirm_timeout,
                "--action-timeout",
                "600",
                "e2e",
                "pve1",
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
    };
    // Its result: exit 4, the host back on generation 1; the output.
    let did_not_take = |push: std::process::Child| {
        let out = push.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(4), "{}", text(&out));
        assert!(
            text(&out).contains("pve1: the switch did not take: the host is on generation 1"),
            "{}",
            text(&out)
        );
        text(&out)
    };

    // Killed while it hangs in a change that arms no timer: nothing on the
    // host would settle it before its next activation, so push does
    // (`activate settle`).
    let killed = push(&b, "10");
    hang(&lab, 3);
    lab.on_ok("pve1", "pkill -9 -f 'agent[s]/[0-9a-f]* switch'");
    let out = did_not_take(killed);
    assert!(
        out.contains("pve1: the switch was interrupted; settling it"),
        "{out}"
    );
    assert_eq!(lab.result("pve1", 3), "interrupted-rolled-back");
    settled(3);

    // Killed while it hangs in a network change: the timer armed before
    // its first action undoes it, or push settles it first.
    let c = lab.compile(
        "c",
        &Variant {
            admin: WIDER_ADMIN,
            pve1_units: HANGING,
            ..BASE
        },
    );
    let start = Instant::now();
    let killed = push(&c, "10");
    hang(&lab, 4);
    lab.on_ok("pve1", "pkill -9 -f 'agent[s]/[0-9a-f]* switch'");
    assert_eq!(lab.rolled_back("pve1", 4), "interrupted-rolled-back");
    assert!(
        start.elapsed() < Duration::from_secs(90),
        "{:?}",
        start.elapsed()
    );
    settled(4);
    // Its ssh session died with it: push asks again and finds generation 1.
    did_not_take(killed);

    // Rebooted while it hangs: the host boots generation 1.
    let rebooted = push(&c, "600");
    hang(&lab, 5);
    lab.reboot("pve1");
    settled(5);
    assert_eq!(
        lab.unit("pve1", "is-active", "sitec-boot.service"),
        "active"
    );
    did_not_take(rebooted);
}

// ------------------------------------------------------------------ pull mode

/// The key the lab signs its releases with (nas's and lb's signer), and
/// one no host trusts.
const RELEASE_KEY: &str = "release_key";
const INTRUDER_KEY: &str = "intruder_key";

/// Pull mode for nas and lb: the operator's web server, every 10 s, 30 s
/// for the health checks.
const PULL: &str = r#"{ pull = { url = "http://10.0.200.1:8088", interval = 10, confirm_timeout = 30, signers.operator = "@SIGNER@" } }"#;

/// A service a release brings, which runs; and one that fails at once.
const PULLED: &str = r#"{ units.services.pulled = { description = "a service a release brought", exec = { command = "/bin/sleep", args = ["infinity"] } } }"#;
const PULLED_FAILS: &str = r#"{ units.services.pulled = { description = "a service that fails", exec.command = "/bin/false", restart = 'no } }"#;

/// nas and lb in pull mode, with more fields of each.
fn pulling(nas_extra: &'static str, lb_extra: &'static str) -> Variant {
    Variant {
        pull: PULL,
        nas_extra,
        lb_extra,
        ..BASE
    }
}

/// A lab of `hosts` with the operator's web server up, and the first
/// bundle in pull mode pushed (generation 1): its releases come pulled.
fn pull_lab(flavour: Flavour, hosts: &[&str]) -> (BootLab, PathBuf) {
    let lab = BootLab::with(flavour, hosts);
    lab.serve();
    let a = lab.compile("a", &pulling("{}", "{}"));
    let mut args = vec!["--confirm-timeout", "60", "e2e"];
    args.extend(hosts);
    lab.push_ok(&a, &args);
    (lab, a)
}

impl BootLab {
    /// The public half of a signing key of the lab's (made on first use).
    fn release_key(&self, name: &str) -> String {
        let key = self.dir.join(name);
        if !key.exists() {
            run_ok(
                Command::new("ssh-keygen")
                    .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
                    .arg(&key),
            );
        }
        let public = std::fs::read_to_string(self.dir.join(format!("{name}.pub"))).unwrap();
        public.trim().to_string()
    }

    /// The directory the operator's web server serves.
    fn published(&self) -> PathBuf {
        self.dir.join("published")
    }

    /// The operator's web server (a real nginx in its namespace) serving
    /// `published()` at 10.0.200.1:8088.
    fn serve(&self) {
        let conf = self.dir.join("web.conf");
        std::fs::create_dir_all(self.published()).unwrap();
        std::fs::write(
            &conf,
            format!(
                "user root;\npid {dir}/web.pid;\nerror_log {dir}/web.err;\nevents {{}}\nhttp {{\n access_log {dir}/web.log;\n server {{\n  listen 10.0.200.1:8088;\n  root {pub_};\n }}\n}}\n",
                dir = self.dir.display(),
                pub_ = self.published().display()
            ),
        )
        .unwrap();
        let mut c = self.op();
        run_ok(c.args(["nginx", "-c"]).arg(&conf));
    }

    /// Stops the operator's web server.
    fn stop_serving(&self) {
        let mut c = self.op();
        run_ok(
            c.args(["nginx", "-s", "stop", "-c"])
                .arg(self.dir.join("web.conf")),
        );
    }

    /// push --publish of `out`'s bundles of `hosts`, signed by key `key`.
    fn publish(&self, out: &Path, key: &str, hosts: &[&str]) -> String {
        self.publish_with(None, out, key, hosts)
    }

    /// As `publish`, with the agent file `agent` instead of this sitec's.
    fn publish_with(&self, agent: Option<&Path>, out: &Path, key: &str, hosts: &[&str]) -> String {
        self.release_key(key);
        let mut args = vec![
            "--publish".to_string(),
            self.published().display().to_string(),
            "--sign-key".to_string(),
            self.dir.join(key).display().to_string(),
            "e2e".to_string(),
        ];
        args.extend(hosts.iter().map(|h| h.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut c = self.push_command(out, &args);
        if let Some(agent) = agent {
            c.env("SITEC_AGENT", agent);
        }
        text(&run_ok(&mut c))
    }

    /// What the host's last pull came to (/var/lib/sitec/pull/last).
    fn last_pull(&self, host: &str) -> String {
        let o = self.on(host, "cat /var/lib/sitec/pull/last 2>/dev/null");
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    /// Waits, polling every second, until the last pull of a host says
    /// `what`, or the host logged a pull that says it since the wait began
    /// (the next pull may follow at once and say something else).
    fn pulled(&self, host: &str, secs: u64, what: &str) -> String {
        let start = Instant::now();
        let logged = || {
            let o = self.on(host, "cat /var/lib/sitec/log 2>/dev/null");
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter(|l| l.contains("] pull: ") && l.contains(what))
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        let before = logged().len();
        loop {
            let last = self.last_pull(host);
            if last.contains(what) {
                return last;
            }
            if let Some(line) = logged().get(before) {
                return line.clone();
            }
            assert!(
                start.elapsed() < Duration::from_secs(secs),
                "{host}'s last pull never said `{what}`; it says: {last}\n{}",
                self.on_ok(host, "tail -n 30 /var/lib/sitec/log")
            );
            std::thread::sleep(Duration::from_secs(1));
        }
    }
}

/// Pull mode: hosts fetch their signed releases from a static web server
/// (a real nginx of the operator's) and end on them, confirmed by their
/// own health checks; a release published for one host first (a canary)
/// leaves the others as they are; with the server gone the hosts keep
/// their generation, say why, and catch up once it is back.
fn hosts_in_pull_mode_follow_their_signed_releases_a_canary_first_and_outlast_the_server(
    flavour: Flavour,
) {
    let (lab, a) = pull_lab(flavour, &["nas", "lb"]);
    assert_eq!(lab.unit("nas", "is-enabled", "sitec-pull.timer"), "enabled");
    let published = lab.publish(&a, RELEASE_KEY, &["nas", "lb"]);
    assert!(published.contains("nas: published"), "{published}");
    for host in ["nas", "lb"] {
        lab.pulled(host, 60, "is generation 1, which runs");
    }
    // Pulls' lock is root's alone: no local user holds it to freeze them.
    assert_eq!(
        lab.on_ok("nas", "stat -c %u:%a /var/lib/sitec/private/pull.lock"),
        "0:600\n"
    );
    // What fleets scrape says the host pulled, and that it is well.
    let prom = lab.on_ok("nas", "cat /var/lib/sitec/status.prom");
    for line in [
        "sitec_generation 1\n",
        "sitec_pull_last_seconds ",
        "sitec_pull_failing 0\n",
        "sitec_pull_serial ",
    ] {
        assert!(prom.contains(line), "{line}: {prom}");
    }
    // The canary: lb alone gets b.
    let b = lab.compile("b", &pulling(PULLED, PULLED));
    lab.publish(&b, RELEASE_KEY, &["lb"]);
    let last = lab.pulled(
        "lb",
        90,
        "runs as generation 2, confirmed by its health checks",
    );
    assert!(last.contains("signed by operator"), "{last}");
    assert_eq!(lab.current("lb"), "generations/2");
    assert_eq!(lab.result("lb", 2), "confirmed");
    assert_eq!(lab.unit("lb", "is-active", "pulled.service"), "active");
    // The freshness statement publish signed beside the release is kept,
    // and shown to fleets.
    let fresh = lab.on_ok("lb", "cat /var/lib/sitec/pull/fresh");
    assert!(
        fresh.split_whitespace().count() == 2
            && fresh.split_whitespace().all(|w| w.parse::<u64>().is_ok()),
        "{fresh}"
    );
    assert!(
        lab.on_ok("lb", "cat /var/lib/sitec/status.prom")
            .contains("\nsitec_pull_fresh_until_seconds "),
        "status.prom shows no freshness"
    );
    // Published again, the release stands; --resign signs it anew.
    let again = lab.publish(&b, RELEASE_KEY, &["lb"]);
    assert!(again.contains("is published already"), "{again}");
    let serial = |lab: &BootLab| {
        let r = std::fs::read_to_string(lab.published().join("lb/release")).unwrap();
        r.lines()
            .find_map(|l| l.strip_prefix("serial "))
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    let before = serial(&lab);
    let key = lab.dir.join(RELEASE_KEY).display().to_string();
    let published = lab.published().display().to_string();
    let resigned = lab.push_ok(
        &b,
        &[
            "--publish",
            &published,
            "--sign-key",
            &key,
            "--resign",
            "e2e",
            "lb",
        ],
    );
    assert!(resigned.contains("lb: published"), "{resigned}");
    let after = serial(&lab);
    assert!(after > before);
    let last = lab.pulled("lb", 30, &format!("release {after} ("));
    assert!(last.contains("is generation 2, which runs"), "{last}");
    // nas pulled since, and stays on its release.
    lab.on_ok("nas", "rm /var/lib/sitec/pull/last");
    lab.pulled("nas", 30, "is generation 1, which runs");
    assert_eq!(lab.current("nas"), "generations/1");
    // The server goes away; nas's release is b meanwhile.
    lab.stop_serving();
    lab.publish(&b, RELEASE_KEY, &["nas"]);
    let down = lab.pulled(
        "nas",
        30,
        "could not fetch http://10.0.200.1:8088/nas/release",
    );
    assert!(down.contains("the host keeps generation 1"), "{down}");
    std::thread::sleep(Duration::from_secs(15));
    assert_eq!(lab.current("nas"), "generations/1");
    assert_eq!(lab.current("lb"), "generations/2");
    lab.wait_active("nas", 10, &["smbd.service", "wg-quick@wg0.service"]);
    // Back: nas catches up (after its backoff), lb stays on its release.
    lab.serve();
    lab.pulled(
        "nas",
        150,
        "runs as generation 2, confirmed by its health checks",
    );
    assert_eq!(lab.unit("nas", "is-active", "pulled.service"), "active");
    assert_eq!(lab.current("lb"), "generations/2");
    let status = lab.push_ok(&b, &["--status", "e2e", "nas", "lb"]);
    for host in ["nas", "lb"] {
        assert!(
            status.contains(&format!("[{host}] {host}: in sync (generation 2)")),
            "{status}"
        );
    }
    // What each host last fetched, when, and that it runs it.
    for host in ["nas", "lb"] {
        let prefix = format!("[{host}]   last pull: ");
        let line = status
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no last pull of {host}:\n{status}"));
        let when = line.split(' ').next().unwrap_or_default();
        assert!(when.len() == 20 && when.ends_with('Z'), "{line}");
        assert!(line.contains("release"), "{line}");
        assert!(line.contains("generation 2"), "{line}");
    }
}

/// What a host in pull mode refuses, each time with nothing changed and a
/// line that says why: a release signed by a key it does not trust, a
/// release changed after it was signed, a file changed on the server; and
/// a release whose health checks fail is rolled back and never applied
/// again, while the next good release is.
fn a_host_in_pull_mode_refuses_what_is_not_signed_or_changed_and_rolls_back_a_release_that_fails_its_health_checks(
    flavour: Flavour,
) {
    let (lab, a) = pull_lab(flavour, &["nas"]);
    let b = lab.compile("b", &pulling(PULLED, "{}"));
    let b_store = format!("/var/lib/sitec/store/{}", store_name(&b, "nas"));
    let unchanged = |lab: &BootLab| {
        assert_eq!(lab.current("nas"), "generations/1");
        lab.on_ok("nas", &format!("test ! -e {b_store}"));
        assert_eq!(lab.unit("nas", "is-active", "pulled.service"), "inactive");
    };
    // Signed by a key nas does not trust (push warns of it).
    let published = lab.publish(&b, INTRUDER_KEY, &["nas"]);
    assert!(
        published.contains("is none of the signers this bundle names"),
        "{published}"
    );
    lab.pulled(
        "nas",
        60,
        "release refused: the release is signed by no key this host trusts",
    );
    unchanged(&lab);
    // Signed, then changed: the bundle line names another hash.
    lab.publish(&b, RELEASE_KEY, &["nas"]);
    lab.stop_serving();
    let release = lab.published().join("nas/release");
    let text = std::fs::read_to_string(&release).unwrap();
    let hash = store_name(&b, "nas").split('-').next().unwrap().to_string();
    let a_hash = store_name(&a, "nas").split('-').next().unwrap().to_string();
    std::fs::write(&release, text.replace(&hash, &a_hash)).unwrap();
    lab.serve();
    lab.pulled(
        "nas",
        90,
        "does not verify: the statement was changed after it was signed",
    );
    unchanged(&lab);
    // Signed, and a file changed on the server.
    lab.stop_serving();
    lab.publish(&b, RELEASE_KEY, &["nas"]);
    let unit = lab
        .published()
        .join(format!("nas/{hash}/etc/systemd/system/pulled.service"));
    let text = std::fs::read_to_string(&unit).unwrap();
    std::fs::write(&unit, text.replace("sleep", "sleeq")).unwrap();
    lab.serve();
    lab.pulled(
        "nas",
        120,
        "pulled.service does not hash to what the signed listing says",
    );
    unchanged(&lab);
    lab.on_ok(
        "nas",
        "test -z \"$(ls -A /var/lib/sitec/store | grep incoming)\"",
    );
    // Signed, with a serial ten days ahead of the host's clock: refused
    // and not recorded as the floor (publish goes on from the clock).
    lab.stop_serving();
    let statement = lab.dir.join("far.release");
    let far = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 10 * 86400;
    let text = std::fs::read_to_string(&release).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .take_while(|l| !l.starts_with("-----"))
        .collect();
    let mut signed = lines
        .iter()
        .map(|l| {
            if l.starts_with("serial ") {
                format!("serial {far}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect::<String>();
    std::fs::write(&statement, &signed).unwrap();
    let _ = std::fs::remove_file(statement.with_extension("release.sig"));
    run_ok(
        Command::new("ssh-keygen")
            .args(["-Y", "sign", "-q", "-n", "sitec-release", "-f"])
            .arg(lab.dir.join(RELEASE_KEY))
            .arg(&statement),
    );
    signed.push_str(&std::fs::read_to_string(statement.with_extension("release.sig")).unwrap());
    std::fs::write(&release, signed).unwrap();
    lab.serve();
    lab.pulled(
        "nas",
        150,
        &format!("its serial {far} is more than a day ahead of this host's clock"),
    );
    unchanged(&lab);
    assert!(
        !lab.on_ok("nas", "cat /var/lib/sitec/pull/serial 2>/dev/null || true")
            .contains(&far.to_string())
    );
    std::fs::remove_file(&release).unwrap();
    // Signed, and the agent it names changed on the server, for a host
    // that lacks it: neither kept nor run.
    lab.stop_serving();
    lab.publish(&b, RELEASE_KEY, &["nas"]);
    let agent = support::host_agent();
    let sha = agent.rsplit('/').next().unwrap().to_string();
    let served = lab.published().join(format!("agents/{sha}"));
    let mut bytes = std::fs::read(&served).unwrap();
    bytes.extend_from_slice(b"\nrm -rf / # changed on the server\n");
    std::fs::write(&served, bytes).unwrap();
    lab.on_ok("nas", &format!("rm {agent}"));
    lab.serve();
    lab.pulled(
        "nas",
        150,
        &format!("agents/{sha} does not hash to the signed {sha}"),
    );
    unchanged(&lab);
    lab.on_ok("nas", "test -z \"$(ls -A /var/lib/sitec/agents)\"");
    // A release whose service fails: switched, unhealthy, rolled back at
    // the deadline, and not tried again; the agent it came with goes with
    // it.
    let c = lab.compile("c", &pulling(PULLED_FAILS, "{}"));
    let newer = lab.dir.join("activate-newer");
    let mut bytes = std::fs::read(support::agent_source()).unwrap();
    bytes.extend_from_slice(b"# a newer agent\n");
    std::fs::write(&newer, bytes).unwrap();
    lab.publish_with(Some(&newer), &c, RELEASE_KEY, &["nas"]);
    let rejected = lab.pulled(
        "nas",
        200,
        "rejected: its health checks did not pass within 30 s",
    );
    assert!(rejected.contains("pulled.service is failed"), "{rejected}");
    assert_eq!(lab.current("nas"), "generations/1");
    assert_eq!(lab.result("nas", 2), "unconfirmed-rolled-back");
    assert_eq!(
        lab.on_ok("nas", "sha256sum /var/lib/sitec/activate | cut -d' ' -f1")
            .trim(),
        sha,
        "the rejected release's agent stayed the host's"
    );
    lab.pulled("nas", 60, "was rejected before: waiting for a new release");
    std::thread::sleep(Duration::from_secs(12));
    assert_eq!(lab.current("nas"), "generations/1");
    assert!(
        !lab.on_ok("nas", "ls /var/lib/sitec/generations")
            .contains('3')
    );
    lab.wait_active("nas", 10, &["smbd.service", "wg-quick@wg0.service"]);
    // The next good release is applied, with the agent it names fetched
    // from the server.
    lab.publish(&b, RELEASE_KEY, &["nas"]);
    lab.pulled(
        "nas",
        90,
        "runs as generation 3, confirmed by its health checks",
    );
    assert_eq!(lab.unit("nas", "is-active", "pulled.service"), "active");
    lab.on_ok("nas", &format!("cmp {agent} /var/lib/sitec/activate"));
}

/// A host that goes down while it applies a pulled release (here while its
/// health checks wait for a service that failed) boots the generation
/// before, and the next pull rejects that release instead of trying it
/// again: a release that takes a host down is not applied in a loop.
fn a_host_that_goes_down_while_it_applies_a_pulled_release_boots_the_one_before_and_rejects_it(
    flavour: Flavour,
) {
    let (lab, _) = pull_lab(flavour, &["nas"]);
    let c = lab.compile("c", &pulling(PULLED_FAILS, "{}"));
    lab.publish(&c, RELEASE_KEY, &["nas"]);
    wait_for(
        "nas to switch to the pulled release",
        Duration::from_secs(60),
        || {
            lab.on(
                "nas",
                "grep -q '^awaiting-confirmation$' /var/lib/sitec/results/2 2>/dev/null",
            )
            .status
            .success()
        },
    );
    let applying = lab.on_ok(
        "nas",
        "systemctl list-units --no-legend --plain --state=active 'sitec-pull-apply-*'",
    );
    assert!(applying.contains("sitec-pull-apply-"), "{applying}");
    lab.crash("nas");
    assert_eq!(lab.current("nas"), "generations/1");
    assert_eq!(lab.result("nas", 2), "unconfirmed-rolled-back");
    lab.wait_active("nas", 30, &["smbd.service", "wg-quick@wg0.service"]);
    // The same pull rejects it and says it waits for a new release.
    lab.pulled("nas", 60, "was rejected before: waiting for a new release");
    let log = lab.on_ok("nas", "grep 'pull: ' /var/lib/sitec/log");
    assert!(
        log.contains("rejected: the host went down, or its apply was cut off, while it applied it"),
        "{log}"
    );
    assert_eq!(lab.current("nas"), "generations/1");
    assert!(
        !lab.on_ok("nas", "ls /var/lib/sitec/generations")
            .contains('3')
    );
}

/// lb's fields that commit its WireGuard key encrypted (`@LB_HOST_KEY@`,
/// `@LB_WG_AGE@`: its ssh host key and the age file).
const SEALED: &str = r#"{ ssh_host_keys = ["@LB_HOST_KEY@"], secrets."/etc/wireguard/wg0.key".age = m%"
@LB_WG_AGE@
"% }"#;
const SEALED_PULLED: &str = r#"{ ssh_host_keys = ["@LB_HOST_KEY@"], secrets."/etc/wireguard/wg0.key".age = m%"
@LB_WG_AGE@
"%, units.services.pulled = { description = "a service a release brought", exec = { command = "/bin/sleep", args = ["infinity"] } } }"#;

/// A WireGuard key pair: private, public.
fn wg_key_pair() -> (String, String) {
    let private = text(&run_ok(Command::new("wg").arg("genkey")));
    let mut c = Command::new("sh");
    c.args([
        "-c",
        "printf '%s\n' \"$1\" | wg pubkey",
        "sh",
        private.trim(),
    ]);
    let public = text(&run_ok(&mut c));
    (private.trim().to_string(), public.trim().to_string())
}

/// Every file under `dir` that holds `needle`.
fn files_holding(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else if std::fs::read(&p)
                .unwrap()
                .windows(needle.len())
                .any(|w| w == needle.as_bytes())
            {
                found.push(p);
            }
        }
    }
    found
}

/// Secrets committed with the site: lb's new WireGuard key, encrypted with
/// age to lb's ssh host key (and the operator's), travels in a pulled
/// release and is nowhere in plaintext, not in out/ and not in the
/// published tree; lb decrypts it to /etc/wireguard/wg0.key, root's at
/// 0600, and its tunnel to nas comes up on it. push refuses to upload a
/// plaintext of a secret the site commits encrypted; a host whose host key
/// no longer decrypts a release's secret refuses the release with nothing
/// changed and no plaintext left behind.
fn a_secret_committed_encrypted_reaches_its_host_in_a_pulled_release_and_brings_its_tunnel_up(
    flavour: Flavour,
) {
    let (lab, _a) = pull_lab(flavour, &["nas", "lb"]);
    let (private, public) = wg_key_pair();
    let host_key =
        std::fs::read_to_string(lab.dir().join("lb/root/etc/ssh/ssh_host_ed25519_key.pub"))
            .unwrap();
    let plain = lab.dir().join("lb-wg0.key");
    std::fs::write(&plain, format!("{private}\n")).unwrap();
    let sealed = String::from_utf8(
        run_ok(
            Command::new("age")
                .arg("-a")
                .arg("-R")
                .arg(lab.dir().join("lb/root/etc/ssh/ssh_host_ed25519_key.pub"))
                .arg("-R")
                .arg(lab.dir().join("operator_key.pub"))
                .arg(&plain),
        )
        .stdout,
    )
    .unwrap();
    std::fs::remove_file(&plain).unwrap();
    let mut keys = lab.keys.clone();
    keys.insert("lb".into(), public);
    let more = [
        ("LB_HOST_KEY", host_key.trim()),
        ("LB_WG_AGE", sealed.trim()),
    ];
    let b = lab.compile_with("b", &pulling("{}", SEALED), &more, &keys);
    assert_eq!(files_holding(&b, &private), Vec::<PathBuf>::new());
    assert!(b.join("e2e/lb/secrets/etc/wireguard/wg0.key.age").is_file());
    // The lab's secrets directory holds a plaintext of lb's (old) key:
    // push refuses to upload it beside the committed one.
    let (code, out) = lab.push(&b, &["--confirm-timeout", "60", "e2e", "lb"]);
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("is a secret the site commits encrypted (secrets/etc/wireguard/wg0.key.age)"),
        "{out}"
    );
    assert_eq!(lab.current("lb"), "generations/1");
    // Published: the ciphertext travels, the plaintext does not.
    lab.publish(&b, RELEASE_KEY, &["nas", "lb"]);
    assert_eq!(
        files_holding(&lab.published(), &private),
        Vec::<PathBuf>::new()
    );
    assert_eq!(
        files_holding(&lab.published(), "-----BEGIN AGE ENCRYPTED FILE-----").len(),
        1
    );
    for host in ["nas", "lb"] {
        lab.pulled(
            host,
            120,
            "runs as generation 2, confirmed by its health checks",
        );
    }
    assert_eq!(
        lab.on_ok("lb", "stat -c %a:%u:%g /etc/wireguard/wg0.key")
            .trim(),
        "600:0:0"
    );
    assert_eq!(
        lab.on_ok("lb", "cat /etc/wireguard/wg0.key").trim(),
        private
    );
    let tunnel = || lab.on("nas", "ping -c 1 -W 1 10.99.0.4").status.success();
    wait_for(
        "the tunnel from nas to lb on lb's new key",
        Duration::from_secs(30),
        tunnel,
    );
    // A check on the host decrypts to check, and leaves no plaintext.
    let checked = lab.on(
        "lb",
        "/var/lib/sitec/activate check \"$(basename \"$(readlink -f /var/lib/sitec/current)\")\"",
    );
    assert!(checked.status.success(), "{}", text(&checked));
    assert!(
        text(&checked).contains("decrypted secret /etc/wireguard/wg0.key"),
        "{}",
        text(&checked)
    );
    assert_eq!(
        lab.on_ok(
            "lb",
            "find /var/lib/sitec/secrets -path '*/.incoming-*' -type f | wc -l"
        )
        .trim(),
        "0"
    );
    // lb is reinstalled with a new host key: its next release, whose secret
    // is encrypted to the old one, is refused, and nothing changes.
    lab.on_ok(
        "lb",
        "rm /etc/ssh/ssh_host_ed25519_key /etc/ssh/ssh_host_ed25519_key.pub && ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key",
    );
    let c = lab.compile_with("c", &pulling("{}", SEALED_PULLED), &more, &keys);
    lab.publish(&c, RELEASE_KEY, &["lb"]);
    let last = lab.pulled("lb", 90, "rejected");
    assert!(last.contains("its check refused it"), "{last}");
    assert!(
        last.contains("do not decrypt secrets/etc/wireguard/wg0.key.age"),
        "{last}"
    );
    assert_eq!(lab.current("lb"), "generations/2");
    assert_ne!(lab.unit("lb", "is-active", "pulled.service"), "active");
    assert_eq!(
        lab.on_ok("lb", "cat /etc/wireguard/wg0.key").trim(),
        private
    );
    assert_eq!(
        lab.on_ok(
            "lb",
            "find /var/lib/sitec/secrets -path '*/.incoming-*' -type f | wc -l"
        )
        .trim(),
        "0"
    );
    assert!(tunnel(), "the tunnel went down with the refused release");
}

/// nas in pull mode, its boot confirmation due 45 s after a boot.
const PULL_BOOT: Variant = Variant {
    pull: PULL,
    nas_deploy: "{ boot_confirm_timeout = 45 }",
    ..BASE
};

/// Kernel files in pull mode: a pulled release with new module options
/// runs, confirmed by its health checks, and takes effect at the next boot,
/// which nobody confirms over ssh: the host's health checks do, at its next
/// pull, and the host stays on the release past the boot's deadline.
fn a_pulled_release_with_new_kernel_files_has_its_boot_confirmed_by_its_health_checks(
    flavour: Flavour,
) {
    let lab = BootLab::with(flavour, &["nas"]);
    lab.serve();
    let a = lab.compile("a", &PULL_BOOT);
    lab.push_ok(&a, &["--confirm-timeout", "60", "e2e", "nas"]);
    let k = lab.compile(
        "k",
        &Variant {
            nas_extra: loop_options("").nas_extra,
            ..PULL_BOOT
        },
    );
    lab.publish(&k, RELEASE_KEY, &["nas"]);
    lab.pulled(
        "nas",
        90,
        "runs as generation 2, confirmed by its health checks",
    );
    // The server is down for the boot: it refuses the host's connection,
    // which the network the boot brought up carried there and back.
    lab.stop_serving();
    let since = boots(&lab, "nas");
    lab.reboot("nas");
    lab.pulled("nas", 40, "passes its health checks: confirmed");
    lab.serve();
    // Past the boot's deadline: no going back, no reboot.
    std::thread::sleep(Duration::from_secs(50));
    assert_eq!(boots(&lab, "nas"), since + 1);
    assert_eq!(lab.current("nas"), "generations/2");
    let options = lab.on_ok(
        "nas",
        "modprobe --showconfig | grep -c '^options loop ' || true",
    );
    assert_eq!(options.trim(), "1");
    let status = lab.on_ok("nas", "/var/lib/sitec/activate status");
    assert!(!status.contains("awaits confirmation"), "{status}");
}

/// ... but a boot that cannot reach the server at all (no route, the
/// network or the host unreachable: what a boot that lost its NIC gets) is
/// no boot to confirm: its health checks fail, and the host goes back to
/// the kernel files that booted and reboots by itself.
fn a_pulled_boot_that_cannot_reach_its_server_is_not_confirmed_and_goes_back(flavour: Flavour) {
    let lab = BootLab::with(flavour, &["nas"]);
    lab.serve();
    let a = lab.compile("a", &PULL_BOOT);
    lab.push_ok(&a, &["--confirm-timeout", "60", "e2e", "nas"]);
    let k = lab.compile(
        "k",
        &Variant {
            nas_extra: loop_options("").nas_extra,
            ..PULL_BOOT
        },
    );
    lab.publish(&k, RELEASE_KEY, &["nas"]);
    lab.pulled(
        "nas",
        90,
        "runs as generation 2, confirmed by its health checks",
    );
    // The operator's side answers the host's connections to the server
    // with "host unreachable", as a router does for a link that is down.
    let mut c = lab.op();
    run_ok(c.args([
        "nft",
        "add table ip unreachable; add chain ip unreachable in { type filter hook input priority 0; }; add rule ip unreachable in tcp dport 8088 reject with icmp type host-unreachable",
    ]));
    let since = boots(&lab, "nas");
    lab.reboot("nas");
    let said = lab.pulled("nas", 60, "fails its health checks");
    assert!(said.contains("could not fetch"), "{said}");
    reboots_by_itself(&lab, "nas", since, 2);
    // The pull after the reboot says where the host is now.
    lab.pulled("nas", 60, "the host keeps generation 1");
    assert_back_on_generation_1(&lab, 2);
    let log = lab.on_ok("nas", "cat /var/lib/sitec/log");
    assert!(
        !log.contains("passes its health checks: confirmed"),
        "{log}"
    );
}

// Every booted-host test runs on Debian 13 with ifupdown2 (what Proxmox VE 9
// runs); deploy and traffic, reboot, lockout, the crash tests and what a
// host that cannot apply a bundle says run on Debian 12 with classic
// ifupdown too.

#[test]
fn a_site_deploys_to_booted_hosts_and_carries_traffic_on_debian12() {
    a_site_deploys_to_booted_hosts_and_carries_traffic(Flavour::Debian12);
}

#[test]
fn a_site_deploys_to_booted_hosts_and_carries_traffic_on_debian13() {
    a_site_deploys_to_booted_hosts_and_carries_traffic(Flavour::Debian13);
}

#[test]
fn a_reboot_keeps_every_host_on_its_generation_with_everything_live_on_debian12() {
    a_reboot_keeps_every_host_on_its_generation_with_everything_live(Flavour::Debian12);
}

#[test]
fn a_reboot_keeps_every_host_on_its_generation_with_everything_live_on_debian13() {
    a_reboot_keeps_every_host_on_its_generation_with_everything_live(Flavour::Debian13);
}

#[test]
fn units_follow_their_generation_and_a_rollback_on_debian13() {
    units_follow_their_generation_and_a_rollback(Flavour::Debian13);
}

#[test]
fn the_management_address_moves_onto_a_bridge_and_a_bridge_that_cuts_it_off_is_rolled_back_on_debian13()
 {
    the_management_address_moves_onto_a_bridge_and_a_bridge_that_cuts_it_off_is_rolled_back(
        Flavour::Debian13,
    );
}

#[test]
fn a_lockout_on_a_booted_host_is_rolled_back_by_the_host_on_debian12() {
    a_lockout_on_a_booted_host_is_rolled_back_by_the_host(Flavour::Debian12);
}

#[test]
fn a_lockout_on_a_booted_host_is_rolled_back_by_the_host_on_debian13() {
    a_lockout_on_a_booted_host_is_rolled_back_by_the_host(Flavour::Debian13);
}

#[test]
fn sshd_follows_the_site_and_a_key_that_locks_the_operator_out_is_rolled_back_on_debian13() {
    sshd_follows_the_site_and_a_key_that_locks_the_operator_out_is_rolled_back(Flavour::Debian13);
}

#[test]
fn a_change_that_waits_for_a_boot_is_reported_until_the_host_reboots_on_debian13() {
    a_change_that_waits_for_a_boot_is_reported_until_the_host_reboots(Flavour::Debian13);
}

#[test]
fn a_boot_on_new_kernel_files_that_nobody_confirms_goes_back_and_reboots_by_itself_on_debian13() {
    a_boot_on_new_kernel_files_that_nobody_confirms_goes_back_and_reboots_by_itself(
        Flavour::Debian13,
    );
}

#[test]
fn a_host_that_goes_down_while_its_boot_awaits_confirmation_goes_back_at_the_next_boot_on_debian13()
{
    a_host_that_goes_down_while_its_boot_awaits_confirmation_goes_back_at_the_next_boot(
        Flavour::Debian13,
    );
}

#[test]
fn a_host_is_deployed_to_and_confirmed_over_ipv6_on_debian13() {
    a_host_is_deployed_to_and_confirmed_over_ipv6(Flavour::Debian13);
}

#[test]
fn the_confirmation_timer_outlives_the_session_that_switched_on_debian13() {
    the_confirmation_timer_outlives_the_session_that_switched(Flavour::Debian13);
}

#[test]
fn local_users_can_neither_hold_sitecs_lock_nor_read_what_it_backed_up_on_debian13() {
    local_users_can_neither_hold_sitecs_lock_nor_read_what_it_backed_up(Flavour::Debian13);
}

#[test]
fn a_host_that_cannot_apply_a_bundle_refuses_it_before_the_switch_on_debian12() {
    a_host_that_cannot_apply_a_bundle_refuses_it_before_the_switch(Flavour::Debian12);
}

#[test]
fn a_host_that_cannot_apply_a_bundle_refuses_it_before_the_switch_on_debian13() {
    a_host_that_cannot_apply_a_bundle_refuses_it_before_the_switch(Flavour::Debian13);
}

#[test]
fn a_host_that_crashes_while_a_generation_awaits_confirmation_boots_the_confirmed_one_on_debian12()
{
    a_host_that_crashes_while_a_generation_awaits_confirmation_boots_the_confirmed_one(
        Flavour::Debian12,
    );
}

#[test]
fn a_host_that_crashes_while_a_generation_awaits_confirmation_boots_the_confirmed_one_on_debian13()
{
    a_host_that_crashes_while_a_generation_awaits_confirmation_boots_the_confirmed_one(
        Flavour::Debian13,
    );
}

#[test]
fn a_host_that_crashes_in_the_middle_of_a_switch_boots_the_generation_it_left_on_debian12() {
    a_host_that_crashes_in_the_middle_of_a_switch_boots_the_generation_it_left(Flavour::Debian12);
}

#[test]
fn a_host_that_crashes_in_the_middle_of_a_switch_boots_the_generation_it_left_on_debian13() {
    a_host_that_crashes_in_the_middle_of_a_switch_boots_the_generation_it_left(Flavour::Debian13);
}

#[test]
fn a_hanging_action_is_cut_off_and_a_switch_killed_or_rebooted_in_one_is_undone_on_debian12() {
    a_hanging_action_is_cut_off_and_a_switch_killed_or_rebooted_in_one_is_undone(Flavour::Debian12);
}

#[test]
fn a_hanging_action_is_cut_off_and_a_switch_killed_or_rebooted_in_one_is_undone_on_debian13() {
    a_hanging_action_is_cut_off_and_a_switch_killed_or_rebooted_in_one_is_undone(Flavour::Debian13);
}

#[test]
fn hosts_in_pull_mode_follow_their_signed_releases_a_canary_first_and_outlast_the_server_on_debian13()
 {
    hosts_in_pull_mode_follow_their_signed_releases_a_canary_first_and_outlast_the_server(
        Flavour::Debian13,
    );
}

#[test]
fn a_host_in_pull_mode_refuses_what_is_not_signed_or_changed_and_rolls_back_a_release_that_fails_its_health_checks_on_debian13()
 {
    a_host_in_pull_mode_refuses_what_is_not_signed_or_changed_and_rolls_back_a_release_that_fails_its_health_checks(Flavour::Debian13);
}

#[test]
fn a_host_that_goes_down_while_it_applies_a_pulled_release_boots_the_one_before_and_rejects_it_on_debian13()
 {
    a_host_that_goes_down_while_it_applies_a_pulled_release_boots_the_one_before_and_rejects_it(
        Flavour::Debian13,
    );
}

#[test]
fn a_secret_committed_encrypted_reaches_its_host_in_a_pulled_release_and_brings_its_tunnel_up_on_debian13()
 {
    a_secret_committed_encrypted_reaches_its_host_in_a_pulled_release_and_brings_its_tunnel_up(
        Flavour::Debian13,
    );
}

#[test]
fn a_pulled_boot_that_cannot_reach_its_server_is_not_confirmed_and_goes_back_on_debian13() {
    a_pulled_boot_that_cannot_reach_its_server_is_not_confirmed_and_goes_back(Flavour::Debian13);
}

#[test]
fn a_pulled_release_with_new_kernel_files_has_its_boot_confirmed_by_its_health_checks_on_debian13()
{
    a_pulled_release_with_new_kernel_files_has_its_boot_confirmed_by_its_health_checks(
        Flavour::Debian13,
    );
}
