//! Each artifact of a bundle through its daemon's own parser, in
//! throwaway namespaces where the tool would otherwise touch the live
//! host; off the host (`stand_ins`), stand-ins for what only the host has
//! (certificates, ExecStart binaries, host keys, units it depends on).
//!
//! A validator that exits 0 on a file it does not accept (testparm,
//! systemd-analyze, modprobe, ifupdown2 warnings, ssh-keygen skipping a
//! line) is held to what it prints as well.

use std::path::{Path, PathBuf};

use sitec_format::{Index, Validator};

use crate::effects::{Cmd, Effects, EffectsExt as _, Kind, Ran};
use crate::host::{Error, at};

type R<T> = Result<T, Error>;

/// What the validators know of their run.
pub struct Context<'a> {
    /// Off the host: stand-ins for what only the host has.
    pub stand_ins: bool,
    /// A directory of the check's own, removed after.
    pub scratch: PathBuf,
    /// The bundle's index.
    pub index: &'a Index,
    /// Where push staged the secrets (on the host).
    pub staged: PathBuf,
    /// `SSH_CONNECTION` of the session the check runs in, on the host.
    pub ssh_connection: Option<String>,
    /// This process, for names of throwaway namespaces.
    pub pid: u32,
    /// Whether the check's network namespace exists (made at its first
    /// use, removed by [`Context::finish`]).
    pub netns: std::cell::Cell<bool>,
}

impl Context<'_> {
    /// The throwaway network namespace the check's validators share,
    /// made when first asked for: one per check, not one per file.
    fn netns(&self, fx: &mut impl Effects) -> R<String> {
        let ns = self.netns_name();
        if !self.netns.get() {
            run(fx, "ip", &["netns", "add", &ns])?;
            self.netns.set(true);
        }
        Ok(ns)
    }

    fn netns_name(&self) -> String {
        format!("sitec-check-{}", self.pid)
    }

    /// Ends the check: what its validators left running in its namespace
    /// (a rejected WireGuard file leaves wireguard-go behind) is stopped,
    /// and the namespace removed.
    pub fn finish(&self, fx: &mut impl Effects) -> R<()> {
        if !self.netns.replace(false) {
            return Ok(());
        }
        let ns = self.netns_name();
        let pids = run(fx, "ip", &["netns", "pids", &ns])?;
        for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
            run(fx, "kill", &[pid])?;
        }
        run(fx, "ip", &["netns", "del", &ns])?;
        Ok(())
    }
}

/// How a file fared: accepted, or rejected with what the tool said.
pub type Verdict = Result<(), String>;

fn text(fx: &impl Effects, p: &Path) -> String {
    fx.text(p).unwrap_or_default()
}

fn said(ran: &Ran) -> String {
    let mut s = String::from_utf8_lossy(&ran.stderr).into_owned();
    s.push_str(&String::from_utf8_lossy(&ran.stdout));
    s.trim_end().to_string()
}

fn run(fx: &mut impl Effects, program: &str, args: &[&str]) -> R<Ran> {
    fx.run(&Cmd::new(program, args))
        .map_err(at(Path::new(program)))
}

/// The program a validator needs on the machine that checks.
pub fn tool(v: Validator) -> &'static str {
    match v {
        Validator::Nft => "nft",
        Validator::Wg => "wg",
        Validator::Ifupdown => "ifup",
        Validator::Testparm => "testparm",
        Validator::SystemdAnalyze => "systemd-analyze",
        Validator::Nginx => "nginx",
        Validator::Toml | Validator::Shell => "sh",
        Validator::Sshd => "sshd",
        Validator::AuthorizedKeys => "ssh-keygen",
        Validator::Chrony => "chronyd",
        Validator::Apt => "apt-get",
        Validator::Modprobe => "modprobe",
    }
}

/// Runs validator `v` on `file` (the bundle's copy of managed path
/// `path`).
pub fn validate(
    fx: &mut impl Effects,
    cx: &Context,
    v: Validator,
    file: &Path,
    path: &str,
) -> R<Verdict> {
    let f = file.to_string_lossy().into_owned();
    match v {
        Validator::Nft => nft(fx, cx, &f),
        Validator::Wg => wg(fx, cx, &f),
        Validator::Ifupdown => ifupdown(fx, cx, &f),
        Validator::Testparm => {
            let ran = run(fx, "testparm", &["-s", &f])?;
            let err = String::from_utf8_lossy(&ran.stderr).into_owned();
            let lower = err.to_lowercase();
            if !ran.success
                || ["unknown parameter", "ignoring", "error"]
                    .iter()
                    .any(|w| lower.contains(w))
            {
                return Ok(Err(err.trim_end().to_string()));
            }
            Ok(Ok(()))
        }
        Validator::SystemdAnalyze => systemd_analyze(fx, cx, &f, path),
        Validator::Nginx => nginx(fx, cx, &f),
        Validator::Sshd => sshd(fx, cx, &f, path),
        Validator::AuthorizedKeys => {
            let n = text(fx, file)
                .lines()
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .count();
            let ran = run(fx, "ssh-keygen", &["-l", "-f", &f])?;
            let got = String::from_utf8_lossy(&ran.stdout).lines().count();
            if n == 0 || got != n {
                return Ok(Err(format!("ssh-keygen reads {got} of the {n} keys")));
            }
            Ok(Ok(()))
        }
        Validator::Chrony => {
            let odd = text(fx, file).lines().any(|l| {
                !l.is_empty()
                    && !l.starts_with('#')
                    && !["server ", "pool ", "peer "]
                        .iter()
                        .any(|k| l.starts_with(k))
            });
            if odd {
                return Ok(Err(
                    "a chrony sources file holds server, pool and peer lines only".to_string(),
                ));
            }
            let conf = cx.scratch.join("chrony.conf");
            fx.write(&conf, format!("include {f}\n").as_bytes(), 0o600)
                .map_err(at(&conf))?;
            let ran = run(fx, "chronyd", &["-p", "-f", &conf.to_string_lossy()])?;
            Ok(if ran.success { Ok(()) } else { Err(said(&ran)) })
        }
        Validator::Apt => apt(fx, cx, &f, path),
        Validator::Modprobe => {
            let ran = run(fx, "modprobe", &["-C", &f, "--showconfig"])?;
            let err = String::from_utf8_lossy(&ran.stderr);
            Ok(if err.trim().is_empty() {
                Ok(())
            } else {
                Err(err.trim_end().to_string())
            })
        }
        Validator::Shell => {
            let ran = run(fx, "sh", &["-n", &f])?;
            Ok(if ran.success { Ok(()) } else { Err(said(&ran)) })
        }
        Validator::Toml => {
            if fx.which("python3").is_none() {
                return Ok(Ok(()));
            }
            let ran = run(
                fx,
                "python3",
                &[
                    "-c",
                    "import sys, tomllib; tomllib.load(open(sys.argv[1], 'rb'))",
                    &f,
                ],
            )?;
            Ok(if ran.success { Ok(()) } else { Err(said(&ran)) })
        }
    }
}

/// A real load in the check's network namespace (`nft -c` misses
/// kernel-side errors), twice: loading must be idempotent.
fn nft(fx: &mut impl Effects, cx: &Context, f: &str) -> R<Verdict> {
    let ns = cx.netns(fx)?;
    for _ in 0..2 {
        let ran = run(fx, "ip", &["netns", "exec", &ns, "nft", "-f", f])?;
        if !ran.success {
            return Ok(Err(said(&ran)));
        }
    }
    Ok(Ok(()))
}

const WG_SCRIPT: &str = r#"
set -eu
mkdir -p /run/wireguard
mount -t tmpfs none /run/wireguard
mount --bind "$2/hosts" /etc/hosts
ip link add wgcheck type wireguard 2>/dev/null ||
    WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 wireguard-go wgcheck >/dev/null 2>&1
wg setconf wgcheck "$1"
ip link del wgcheck"#;

/// `wg setconf` on a throwaway interface in the check's namespace: the
/// kernel's where it has WireGuard, else wireguard-go with a private
/// /run/wireguard. Endpoints given as names resolve to a documentation
/// address there: checking needs no DNS and sends nothing anywhere.
fn wg(fx: &mut impl Effects, cx: &Context, f: &str) -> R<Verdict> {
    let ran = run(fx, "wg-quick", &["strip", f])?;
    if !ran.success {
        return Ok(Err(said(&ran)));
    }
    let stripped = String::from_utf8_lossy(&ran.stdout).into_owned();
    let conf = cx.scratch.join("wg.conf");
    fx.write(&conf, stripped.as_bytes(), 0o600)
        .map_err(at(&conf))?;
    let mut hosts = text(fx, Path::new("/etc/hosts"));
    for l in stripped.lines() {
        if let Some(rest) = l.strip_prefix("Endpoint = ")
            && let Some((host, port)) = rest.rsplit_once(':')
            && port.bytes().all(|b| b.is_ascii_digit())
            && !host.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        {
            hosts.push_str(&format!("192.0.2.1 {host}\n"));
        }
    }
    let hosts_file = cx.scratch.join("hosts");
    fx.write(&hosts_file, hosts.as_bytes(), 0o644)
        .map_err(at(&hosts_file))?;
    let ns = cx.netns(fx)?;
    let scratch = cx.scratch.to_string_lossy().into_owned();
    let ran = run(
        fx,
        "ip",
        &[
            "netns",
            "exec",
            &ns,
            "unshare",
            "-m",
            "sh",
            "-c",
            WG_SCRIPT,
            "sh",
            &conf.to_string_lossy(),
            &scratch,
        ],
    )?;
    // A rejected file leaves wireguard-go running: Context::finish stops it.
    Ok(if ran.success { Ok(()) } else { Err(said(&ran)) })
}

const NONE_PORTS: &str = "bridge-ports: invalid value \"none\"";

/// What ifupdown2's listener thread says when it loses a race with its
/// own main thread over the netlink socket they share: nothing about the
/// file, and gone on the next run.
const LISTENER_RACE: &str = "error: recv() error: ";

/// How many times a syntax check is run that said only [`LISTENER_RACE`].
const IFUPDOWN2_TRIES: usize = 3;

/// What ifupdown2's syntax check said of a file.
#[derive(Debug, PartialEq, Eq)]
enum Said {
    Accepted,
    Refused(String),
    /// Only its listener thread's race: run it again.
    Raced(String),
}

/// ifupdown2 exits 0 on some errors and only warns about others: anything
/// it says fails the file, but its warning about `bridge-ports none`,
/// which it applies as Proxmox's build does.
fn ifupdown2_said(err: &str, success: bool, f: &str) -> Said {
    let is_none = |l: &str| {
        l.strip_prefix("warning: ")
            .and_then(|r| r.split_once(": "))
            .is_some_and(|(iface, rest)| !iface.contains(' ') && rest.starts_with(NONE_PORTS))
    };
    let left: Vec<&str> = err.lines().filter(|l| !is_none(l)).collect();
    if !left.is_empty() {
        let said = left.join("\n");
        return if left.iter().all(|l| l.starts_with(LISTENER_RACE)) {
            Said::Raced(said)
        } else {
            Said::Refused(said)
        };
    }
    if !success && !err.lines().any(is_none) {
        return Said::Refused(format!("ifup -s exited with an error on {f}"));
    }
    Said::Accepted
}

/// ifupdown's own parse, with its state in a private /run (and, for
/// ifupdown2, /var/tmp).
fn ifupdown(fx: &mut impl Effects, _cx: &Context, f: &str) -> R<Verdict> {
    if fx.read(Path::new(f)).is_err() {
        return Ok(Err(format!("{f} cannot be read")));
    }
    if fx.which("ifreload").is_some() {
        let script = "set -eu\nmount -t tmpfs none /run\nmkdir /run/network\nmount -t tmpfs none /var/tmp\nexec ifup -s -a -i \"$1\"";
        let mut raced = String::new();
        for _ in 0..IFUPDOWN2_TRIES {
            // A network namespace of its own, empty and quiet: ifupdown2
            // reads the links over netlink even for a syntax check.
            let ran = run(fx, "unshare", &["-m", "-n", "sh", "-c", script, "sh", f])?;
            match ifupdown2_said(&String::from_utf8_lossy(&ran.stderr), ran.success, f) {
                Said::Accepted => return Ok(Ok(())),
                Said::Refused(why) => return Ok(Err(why)),
                Said::Raced(why) => raced = why,
            }
        }
        return Ok(Err(format!(
            "{raced} (ifupdown2 said only this, {IFUPDOWN2_TRIES} times)"
        )));
    }
    let script =
        "set -eu\nmount -t tmpfs none /run\nmkdir /run/network\nexec ifup --no-act -a -i \"$1\"";
    let ran = run(fx, "unshare", &["-m", "sh", "-c", script, "sh", f])?;
    Ok(if ran.success { Ok(()) } else { Err(said(&ran)) })
}

/// `systemd-analyze verify` against a root holding the distribution's
/// units and this one (it exits 0 on bad values: any output fails). The
/// ExecStart binaries must exist on the host; off it, stand-ins.
fn systemd_analyze(fx: &mut impl Effects, cx: &Context, f: &str, path: &str) -> R<Verdict> {
    let root = cx.scratch.join("root");
    for d in ["etc/systemd/system", "usr/lib/systemd", "usr/bin"] {
        fx.mkdir_all(&root.join(d), 0o755).map_err(at(&root))?;
    }
    let units = root.join("usr/lib/systemd/system");
    if fx.kind(&units).map_err(at(&units))?.is_none() {
        run(
            fx,
            "cp",
            &[
                "-a",
                "/lib/systemd/system",
                &root.join("usr/lib/systemd").to_string_lossy(),
            ],
        )?;
    }
    let unit = text(fx, Path::new(f));
    for line in unit.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if !key.starts_with("Exec") || !key[4..].bytes().all(|b| b.is_ascii_alphabetic()) {
            continue;
        }
        let value = value.trim_start_matches(['-', '@', '+', '!', ':']);
        if !value.starts_with('/') {
            continue;
        }
        let cmd = value.split(' ').next().unwrap_or("");
        // The stand-in goes to root + cmd: a path with .. would put it
        // anywhere.
        if !crate::check::manageable(cmd, Path::new("/var/lib/sitec")) {
            return Ok(Err(format!("{cmd} is not a plain absolute path")));
        }
        let executable =
            fx.exists(Path::new(cmd)) && fx.mode(Path::new(cmd)).is_ok_and(|m| m & 0o111 != 0);
        if !cx.stand_ins && !executable {
            return Ok(Err(format!("{cmd} is not an executable on this host")));
        }
        let stand_in = root.join(cmd.trim_start_matches('/'));
        if let Some(d) = stand_in.parent() {
            fx.mkdir_all(d, 0o755).map_err(at(d))?;
        }
        fx.write(&stand_in, b"#!/bin/sh\n", 0o755)
            .map_err(at(&stand_in))?;
    }
    if cx.stand_ins {
        // Stand-ins for the units it depends on that only the host has.
        for line in unit.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            if !matches!(key, "Requires" | "Wants" | "BindsTo" | "Requisite") {
                continue;
            }
            for dep in value.split(' ').filter(|d| d.ends_with(".service")) {
                if !fx.exists(&units.join(dep)) {
                    let at_ = root.join("etc/systemd/system").join(dep);
                    fx.write(
                        &at_,
                        b"[Unit]\nDescription=stand-in\n[Service]\nExecStart=/bin/true\n",
                        0o644,
                    )
                    .map_err(at(&at_))?;
                }
            }
        }
    }
    let name = path.rsplit('/').next().unwrap_or(path);
    let copy = root.join("etc/systemd/system").join(name);
    fx.write(&copy, unit.as_bytes(), 0o644).map_err(at(&copy))?;
    let ran = run(
        fx,
        "systemd-analyze",
        &["verify", &format!("--root={}", root.display()), name],
    )?;
    let out = said(&ran);
    Ok(if out.is_empty() { Ok(()) } else { Err(out) })
}

const NGINX_SCRIPT: &str = r#"
set -eu
mount -t tmpfs none /run
[ ! -d /var/lib/nginx ] || mount -t tmpfs none /var/lib/nginx
ip link set lo up
sysctl -qw net.ipv4.ip_nonlocal_bind=1
nginx -q -t -p /usr/share/nginx/ -c "$1""#;

/// `nginx -t` in throwaway mount and network namespaces that allow
/// non-local binds. Off the host, a self-signed certificate stands in for
/// each one it names; on it, the keys push staged where nginx reads the
/// live ones.
fn nginx(fx: &mut impl Effects, cx: &Context, f: &str) -> R<Verdict> {
    if !fx.exists(Path::new("/usr/lib/nginx/modules/ngx_stream_module.so")) {
        return Ok(Err("libnginx-mod-stream is not installed".to_string()));
    }
    let mut conf = f.to_string();
    let original = text(fx, Path::new(f));
    let directive = |line: &str, name: &str| -> Option<(usize, String)> {
        let indent = line.len() - line.trim_start().len();
        let rest = line.trim_start().strip_prefix(name)?.strip_prefix(' ')?;
        rest.strip_suffix(';').map(|v| (indent, v.to_string()))
    };
    if cx.stand_ins {
        let (key, crt) = (cx.scratch.join("tls.key"), cx.scratch.join("tls.crt"));
        run(
            fx,
            "openssl",
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=sitec-check",
                "-keyout",
                &key.to_string_lossy(),
                "-out",
                &crt.to_string_lossy(),
            ],
        )?;
        let replaced: String = original
            .lines()
            .map(|l| {
                if let Some((i, _)) = directive(l, "ssl_certificate") {
                    format!("{}ssl_certificate {};\n", &l[..i], crt.display())
                } else if let Some((i, _)) = directive(l, "ssl_certificate_key") {
                    format!("{}ssl_certificate_key {};\n", &l[..i], key.display())
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        let at_ = cx.scratch.join("nginx.conf");
        fx.write(&at_, replaced.as_bytes(), 0o600)
            .map_err(at(&at_))?;
        conf = at_.to_string_lossy().into_owned();
    } else if fx.kind(&cx.staged).map_err(at(&cx.staged))? == Some(Kind::Dir) {
        let replaced: String = original
            .lines()
            .map(|l| match directive(l, "ssl_certificate_key") {
                Some((i, k)) if fx.exists(&cx.staged.join(k.trim_start_matches('/'))) => format!(
                    "{}ssl_certificate_key {};\n",
                    &l[..i],
                    cx.staged.join(k.trim_start_matches('/')).display()
                ),
                _ => format!("{l}\n"),
            })
            .collect();
        let at_ = cx.scratch.join("nginx.conf");
        fx.write(&at_, replaced.as_bytes(), 0o600)
            .map_err(at(&at_))?;
        conf = at_.to_string_lossy().into_owned();
    }
    let ran = run(
        fx,
        "unshare",
        &["-m", "-n", "sh", "-c", NGINX_SCRIPT, "sh", &conf],
    )?;
    Ok(if ran.success { Ok(()) } else { Err(said(&ran)) })
}

/// apt-get reads the sources as they will be: on the host, its own with
/// this file in the live one's place (two files naming one repository
/// with different keyrings break apt as a whole), and the keyrings it
/// names must be there; off the host, the file alone.
fn apt(fx: &mut impl Effects, cx: &Context, f: &str, path: &str) -> R<Verdict> {
    let d = cx.scratch.join("apt");
    fx.remove_all(&d).map_err(at(&d))?;
    for sub in ["parts", "lists/partial"] {
        fx.mkdir_all(&d.join(sub), 0o755).map_err(at(&d))?;
    }
    let mut list = "/dev/null".to_string();
    if !cx.stand_ins {
        if fx.exists(Path::new("/etc/apt/sources.list")) {
            list = "/etc/apt/sources.list".to_string();
        }
        let parts = Path::new("/etc/apt/sources.list.d");
        for name in fx.list(parts).unwrap_or_default() {
            let n = name.to_string_lossy();
            let p = parts.join(&name);
            if (n.ends_with(".list") || n.ends_with(".sources"))
                && p != Path::new("/").join(path)
                && let Ok(bytes) = fx.read(&p)
            {
                let to = d.join("parts").join(&name);
                fx.write(&to, &bytes, 0o644).map_err(at(&to))?;
            }
        }
    }
    let name = path.rsplit('/').next().unwrap_or(path);
    let copy = d.join("parts").join(name);
    let bytes = fx.read(Path::new(f)).map_err(at(Path::new(f)))?;
    fx.write(&copy, &bytes, 0o644).map_err(at(&copy))?;
    let ran = run(
        fx,
        "apt-get",
        &[
            "-o",
            &format!("Dir::Etc::SourceList={list}"),
            "-o",
            &format!("Dir::Etc::SourceParts={}", d.join("parts").display()),
            "-o",
            &format!("Dir::State::Lists={}", d.join("lists").display()),
            "-o",
            &format!("Dir::Cache={}", d.join("cache").display()),
            "indextargets",
        ],
    )?;
    if !ran.success {
        return Ok(Err(said(&ran)));
    }
    if cx.stand_ins {
        return Ok(Ok(()));
    }
    for k in String::from_utf8_lossy(&bytes)
        .lines()
        .filter_map(|l| l.strip_prefix("Signed-By: "))
    {
        if !fx.exists(Path::new(k)) {
            return Ok(Err(format!(
                "the keyring {k} is not on this host: put it there first (it is public, fetched out of band)"
            )));
        }
    }
    Ok(Ok(()))
}

const SSHD_SCRIPT: &str = r#"
set -eu
mount -t tmpfs none /run
mkdir -p /run/sshd
conf=$1 spec=$2
shift 2
sshd -t -f "$conf" "$@"
sshd -T -f "$conf" -C "$spec" "$@""#;

/// sshd keeps the first value it reads of each setting, and the host's
/// own sshd_config decides what it includes and in which order: the
/// drop-in is checked as part of the host's whole configuration, in the
/// place of the live one. `sshd -t` parses it; `sshd -T` says what the
/// deploy user would get (Match blocks applied) logging in as this
/// session did.
fn sshd(fx: &mut impl Effects, cx: &Context, f: &str, path: &str) -> R<Verdict> {
    let d = cx.scratch.join("sshd");
    fx.remove_all(&d).map_err(at(&d))?;
    let parts = d.join("sshd_config.d");
    fx.mkdir_all(&parts, 0o755).map_err(at(&parts))?;
    let live = Path::new("/etc/ssh/sshd_config.d");
    for name in fx.list(live).unwrap_or_default() {
        let p = live.join(&name);
        if name.to_string_lossy().ends_with(".conf")
            && p != Path::new("/").join(path)
            && let Ok(bytes) = fx.read(&p)
        {
            let to = parts.join(&name);
            fx.write(&to, &bytes, 0o644).map_err(at(&to))?;
        }
    }
    let name = path.rsplit('/').next().unwrap_or(path);
    let dropin_text = text(fx, Path::new(f));
    let dropin = parts.join(name);
    fx.write(&dropin, dropin_text.as_bytes(), 0o644)
        .map_err(at(&dropin))?;
    let main = text(fx, Path::new("/etc/ssh/sshd_config"))
        .replace("/etc/ssh/sshd_config.d/", &format!("{}/", parts.display()));
    if !main
        .lines()
        .any(|l| l.starts_with(&format!("Include {}/", parts.display())))
    {
        return Ok(Err(format!(
            "/etc/ssh/sshd_config does not include /etc/ssh/sshd_config.d/*.conf: sshd would not read {name}"
        )));
    }
    let config = d.join("sshd_config");
    fx.write(&config, main.as_bytes(), 0o644)
        .map_err(at(&config))?;
    let mut keys = Vec::new();
    if cx.stand_ins {
        let key = d.join("host_key");
        run(
            fx,
            "ssh-keygen",
            &[
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-f",
                &key.to_string_lossy(),
            ],
        )?;
        keys = vec!["-h".to_string(), key.to_string_lossy().into_owned()];
    }
    let get = |k: &str| cx.index.deploy.get(k).cloned().unwrap_or_default();
    let user = get("user");
    let (mut from, mut laddr, mut lport) = (get("address"), get("address"), get("port"));
    if !cx.stand_ins
        && let Some(conn) = &cx.ssh_connection
        && let [client, _, server, port] = conn.split_whitespace().collect::<Vec<_>>()[..]
    {
        (from, laddr, lport) = (client.to_string(), server.to_string(), port.to_string());
    }
    let spec = format!("user={user},host={from},addr={from},laddr={laddr},lport={lport}");
    let config_s = config.to_string_lossy().into_owned();
    let mut args: Vec<&str> = vec!["-m", "sh", "-c", SSHD_SCRIPT, "sh", &config_s, &spec];
    args.extend(keys.iter().map(String::as_str));
    let ran = run(fx, "unshare", &args)?;
    if !ran.success {
        return Ok(Err(said(&ran)));
    }
    let effective = String::from_utf8_lossy(&ran.stdout).into_owned();
    let ran = run(fx, "id", &["-Gn", &user])?;
    let groups = ran
        .success
        .then(|| String::from_utf8_lossy(&ran.stdout).trim().to_string());
    if let Err(why) = sshd_admits(&effective, &user, &laddr, &lport, &from, groups.as_deref()) {
        return Ok(Err(why));
    }
    Ok(sshd_applies(&dropin_text, &effective))
}

/// Whether `text` matches sshd's glob `pattern` (`*`, `?`).
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    fn go(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('*') => (0..=t.len()).any(|i| go(&p[1..], &t[i..])),
            Some('?') => !t.is_empty() && go(&p[1..], &t[1..]),
            Some(c) => t.first() == Some(c) && go(&p[1..], &t[1..]),
        }
    }
    go(&p, &t)
}

/// The values of sshd -T's `key` lines, word by word.
fn values<'a>(effective: &'a str, key: &str) -> Vec<&'a str> {
    effective
        .lines()
        .filter_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(' ')))
        .flat_map(|v| v.split(' '))
        .filter(|v| !v.is_empty())
        .collect()
}

/// Whether a pattern of `key` matches `user` coming from `addr`: USER, or
/// USER@HOST with HOST a pattern of the address. A HOST that is a network
/// (CIDR) is not matched here and counts as listed.
fn user_listed(effective: &str, key: &str, user: &str, addr: &str) -> bool {
    values(effective, key).iter().any(|p| {
        let (u, h) = p.split_once('@').unwrap_or((p, "*"));
        glob(u, user) && (h.contains('/') || glob(h, addr))
    })
}

fn group_listed(effective: &str, key: &str, groups: &str) -> bool {
    values(effective, key)
        .iter()
        .any(|p| groups.split_whitespace().any(|g| glob(p, g)))
}

/// Whether sshd's effective configuration lets `user`, coming from
/// `from`, log in with a key alone at `laddr`, port `lport`.
pub fn sshd_admits(
    effective: &str,
    user: &str,
    laddr: &str,
    lport: &str,
    from: &str,
    groups: Option<&str>,
) -> Result<(), String> {
    let has = |line: &str| effective.lines().any(|l| l == line);
    let (any, at_) = if laddr.contains(':') {
        (format!("[::]:{lport}"), format!("[{laddr}]:{lport}"))
    } else {
        (format!("0.0.0.0:{lport}"), format!("{laddr}:{lport}"))
    };
    if !has(&format!("listenaddress {any}")) && !has(&format!("listenaddress {at_}")) {
        return Err(format!(
            "sshd would not listen on {at_}, where push logs in"
        ));
    }
    if !has("pubkeyauthentication yes") {
        return Err("sshd would not accept keys".to_string());
    }
    if user == "root"
        && !["yes", "prohibit-password", "without-password"]
            .iter()
            .any(|v| has(&format!("permitrootlogin {v}")))
    {
        let line = effective
            .lines()
            .find(|l| l.starts_with("permitrootlogin "))
            .unwrap_or("");
        return Err(format!("sshd would not let root log in ({line})"));
    }
    let methods = values(effective, "authenticationmethods");
    if !methods.iter().any(|m| *m == "any" || *m == "publickey") {
        return Err(format!(
            "sshd would want more than a key (AuthenticationMethods {})",
            methods.join(" ")
        ));
    }
    if let Some(force) = effective.lines().find(|l| l.starts_with("forcecommand "))
        && force != "forcecommand none"
    {
        return Err(format!(
            "sshd would force a command on the session ({force})"
        ));
    }
    if effective.lines().any(|l| l.starts_with("allowusers "))
        && !user_listed(effective, "allowusers", user, from)
    {
        return Err(format!(
            "sshd's AllowUsers leaves out {user} coming from {from}"
        ));
    }
    if user_listed(effective, "denyusers", user, from) {
        return Err(format!("sshd's DenyUsers names {user}"));
    }
    // Groups are the host's: a user this machine does not have (a check
    // off the host) has none to compare.
    let Some(groups) = groups else {
        return Ok(());
    };
    if effective.lines().any(|l| l.starts_with("allowgroups "))
        && !group_listed(effective, "allowgroups", groups)
    {
        return Err(format!(
            "sshd's AllowGroups leaves out every group of {user} ({groups})"
        ));
    }
    if group_listed(effective, "denygroups", groups) {
        return Err(format!(
            "sshd's DenyGroups names a group of {user} ({groups})"
        ));
    }
    Ok(())
}

/// Whether the drop-in's settings are the ones sshd uses: the host's own
/// sshd_config may set one before its Include, or a Match block change it
/// for the deploy user; AllowUsers lines add up, and the host's may not
/// widen the drop-in's.
pub fn sshd_applies(dropin: &str, effective: &str) -> Result<(), String> {
    for k in [
        "PermitRootLogin",
        "PasswordAuthentication",
        "KbdInteractiveAuthentication",
        "AuthorizedKeysFile",
    ] {
        let Some(want) = dropin
            .lines()
            .find_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix(' ')))
        else {
            continue;
        };
        let lk = k.to_lowercase();
        let got: Vec<String> = effective
            .lines()
            .filter_map(|l| l.strip_prefix(&lk).and_then(|r| r.strip_prefix(' ')))
            .map(|v| {
                if v == "without-password" {
                    "prohibit-password".to_string()
                } else {
                    v.to_string()
                }
            })
            .collect();
        let got = got.join("\n");
        if got != want {
            return Err(format!(
                "sshd would use {k} {got}, not the drop-in's {want}: the host's own configuration sets it first"
            ));
        }
    }
    if !dropin.lines().any(|l| l.starts_with("AllowUsers ")) {
        return Ok(());
    }
    let set = |v: Vec<&str>| -> std::collections::BTreeSet<String> {
        v.into_iter().map(str::to_string).collect()
    };
    let want = set(dropin
        .lines()
        .filter_map(|l| l.strip_prefix("AllowUsers "))
        .flat_map(|v| v.split(' '))
        .filter(|v| !v.is_empty())
        .collect());
    let got = set(values(effective, "allowusers"));
    if want != got {
        let show = |s: &std::collections::BTreeSet<String>| {
            s.iter().map(|v| format!("{v} ")).collect::<String>()
        };
        return Err(format!(
            "sshd would let in AllowUsers {}, not only the drop-in's {}",
            show(&got),
            show(&want)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sshd_globs_and_lists() {
        assert!(glob("ad*", "admin"));
        assert!(glob("192.0.2.?", "192.0.2.7"));
        assert!(!glob("192.0.2.?", "192.0.2.17"));
        let eff = "allowusers root@192.0.2.* deploy@10.0.0.0/8\n";
        assert!(user_listed(eff, "allowusers", "root", "192.0.2.5"));
        assert!(!user_listed(eff, "allowusers", "root", "198.51.100.1"));
        assert!(user_listed(eff, "allowusers", "deploy", "198.51.100.1"));
    }

    const EFFECTIVE: &str = "listenaddress 0.0.0.0:22\npubkeyauthentication yes\npermitrootlogin without-password\nauthenticationmethods any\npasswordauthentication no\n";

    #[test]
    fn what_sshd_would_do_for_the_deploy_user() {
        assert_eq!(
            sshd_admits(EFFECTIVE, "root", "192.0.2.1", "22", "192.0.2.9", None),
            Ok(())
        );
        assert_eq!(
            sshd_admits(EFFECTIVE, "root", "192.0.2.1", "2222", "192.0.2.9", None),
            Err("sshd would not listen on 192.0.2.1:2222, where push logs in".to_string())
        );
        let no_root = EFFECTIVE.replace("without-password", "no");
        assert_eq!(
            sshd_admits(&no_root, "root", "192.0.2.1", "22", "192.0.2.9", None),
            Err("sshd would not let root log in (permitrootlogin no)".to_string())
        );
        assert_eq!(
            sshd_applies("PermitRootLogin prohibit-password\n", EFFECTIVE),
            Ok(())
        );
        assert_eq!(
            sshd_applies("PasswordAuthentication yes\n", EFFECTIVE),
            Err("sshd would use PasswordAuthentication no, not the drop-in's yes: the host's own configuration sets it first".to_string())
        );
    }
    #[test]
    fn ifupdown2_is_run_again_only_when_its_listener_raced() {
        let race = "error: recv() error: [Errno 22] Invalid argument\n";
        assert_eq!(
            ifupdown2_said(race, true, "f"),
            Said::Raced(race.trim_end().into())
        );
        let none = "warning: vmbr0: bridge-ports: invalid value \"none\": (bla)\n";
        assert_eq!(ifupdown2_said(none, false, "f"), Said::Accepted);
        assert_eq!(
            ifupdown2_said(&format!("{none}{race}"), false, "f"),
            Said::Raced(race.trim_end().into())
        );
        let bad = "error: vmbr0: bridge-vlan-aware: invalid value \"maybe\"\n";
        assert_eq!(
            ifupdown2_said(&format!("{race}{bad}"), true, "f"),
            Said::Refused(format!("{race}{bad}").trim_end().into())
        );
        assert_eq!(ifupdown2_said("", true, "f"), Said::Accepted);
        assert_eq!(
            ifupdown2_said("", false, "f"),
            Said::Refused("ifup -s exited with an error on f".into())
        );
    }
}
