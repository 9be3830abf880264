//! Every artifact of every example site is accepted by its daemon's own
//! parser (the host agent's `check --stand-ins`), and the harness really rejects broken
//! files. A missing validator fails the test: there is no skip.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use support::{TempDir, bundles, compile_into, project_root};

/// The systems the validators run on: this machine (Debian 12, classic
/// ifupdown) and a Debian 13 root with ifupdown2 (tests/e2e/debian13.sh,
/// chrooted in a throwaway layer), each with its own daemons' parsers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum System {
    Debian12,
    Debian13,
}

impl System {
    const ALL: [System; 2] = [System::Debian12, System::Debian13];

    /// The system a bundle is written for (its manifest's `system`).
    fn of(bundle: &Path) -> System {
        let m = support::manifest(bundle);
        match (
            m["system"]["release"].as_str(),
            m["system"]["ifupdown"].as_str(),
        ) {
            (Some("debian12"), Some("classic")) => System::Debian12,
            (Some("debian13"), Some("ifupdown2")) => System::Debian13,
            other => panic!(
                "{}: no validators for {other:?}: the example sites are tested on Debian 12 with classic ifupdown and Debian 13 with ifupdown2",
                bundle.display()
            ),
        }
    }
}

/// The host agent's `check --stand-ins` of a bundle on one system: what
/// CI and operators run off a host.
fn validate_on(system: System, bundle: &Path) -> std::process::Output {
    let agent = support::agent_source();
    let c = &mut match system {
        System::Debian12 => {
            let mut c = Command::new(&agent);
            c.args(["check", "--stand-ins"]).arg(bundle);
            c
        }
        System::Debian13 => {
            let mut c = Command::new("sh");
            c.env("SITEC_CHROOT_BIND", bundle)
                .env("SITEC_CHROOT_AGENT", &agent)
                .arg(project_root().join("tests/e2e/debian13.sh"))
                .args(["run", "/activate", "check", "--stand-ins", "/mnt"]);
            c
        }
    };
    c.output().unwrap()
}

/// On the system it is written for.
fn validate(bundle: &Path) -> std::process::Output {
    validate_on(System::of(bundle), bundle)
}

fn checked_files(bundle: &Path) -> BTreeSet<String> {
    support::manifest(bundle)["files"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, f)| !f["check"].is_null())
        .map(|(p, f)| format!("validated {p} {}", f["check"].as_str().unwrap()))
        .collect()
}

#[test]
fn every_artifact_passes_its_daemons_validator() {
    let tmp = TempDir::new("validators");
    let out = tmp.path().join("out");
    compile_into(&out);
    let mut tools = BTreeSet::new();
    let mut systems = BTreeSet::new();
    for bundle in bundles(&out) {
        let own = System::of(&bundle);
        systems.insert(format!("{own:?}"));
        let o = validate_on(own, &bundle);
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "{} rejected on {own:?}:\n{stdout}\n{}",
            bundle.display(),
            String::from_utf8_lossy(&o.stderr)
        );
        let seen: BTreeSet<String> = stdout
            .lines()
            .filter(|l| l.starts_with("validated "))
            .map(str::to_string)
            .collect();
        let want = checked_files(&bundle);
        assert_eq!(
            seen,
            want,
            "{}: not every file was validated",
            bundle.display()
        );
        tools.extend(
            want.iter()
                .map(|l| l.rsplit(' ').next().unwrap().to_string()),
        );
        // On the other system the host refuses it before any validator
        // runs, saying what the bundle is written for.
        for other in System::ALL.into_iter().filter(|s| *s != own) {
            let o = validate_on(other, &bundle);
            let stderr = String::from_utf8_lossy(&o.stderr);
            assert!(
                o.status.code() == Some(3)
                    && stderr.contains("this host's daemons cannot parse the bundle")
                    && stderr.contains("the bundle is written for Debian 1")
                    && !String::from_utf8_lossy(&o.stdout).contains("validated "),
                "{} on {other:?} was not refused as written for {own:?}:\n{stderr}",
                bundle.display()
            );
        }
    }
    assert_eq!(
        systems.len(),
        System::ALL.len(),
        "the example sites must have bundles for every system: {systems:?}"
    );
    let all: BTreeSet<String> = [
        "ifupdown",
        "nft",
        "apt",
        "authorized-keys",
        "chrony",
        "modprobe",
        "nginx",
        "shell",
        "sshd",
        "systemd-analyze",
        "testparm",
        "toml",
        "wg",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(
        tools, all,
        "the example sites must exercise every validator"
    );
}

/// The WireGuard configurations of the external members (which get no
/// bundle): `wg-quick strip` and `wg setconf` take each, and a broken one
/// is refused.
#[test]
fn every_external_member_config_passes_wg_setconf() {
    let tmp = TempDir::new("external");
    let out = tmp.path().join("out");
    compile_into(&out);
    let mut configs = Vec::new();
    for site in std::fs::read_dir(&out).unwrap() {
        let dir = site.unwrap().path().join("_external");
        if !dir.is_dir() {
            continue;
        }
        for member in std::fs::read_dir(&dir).unwrap() {
            let member = member.unwrap().path();
            if member.is_dir() {
                for conf in std::fs::read_dir(&member).unwrap() {
                    configs.push(conf.unwrap().path());
                }
            }
        }
    }
    assert!(
        !configs.is_empty(),
        "the example sites have an external member"
    );
    let check = |conf: &Path| {
        Command::new("sh")
            .arg(project_root().join("tests/validate-wg.sh"))
            .arg(conf)
            .output()
            .unwrap()
    };
    for conf in &configs {
        let o = check(conf);
        assert!(
            o.status.success(),
            "{}: {}",
            conf.display(),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let text = std::fs::read_to_string(&configs[0]).unwrap();
    assert!(
        !text.lines().any(|l| l.starts_with("PrivateKey")),
        "a private key in out/"
    );
    std::fs::write(
        &configs[0],
        text.replacen("PublicKey = ", "PublicKey = x", 1),
    )
    .unwrap();
    assert!(!check(&configs[0]).status.success(), "a broken key passed");
}

/// Breaks one file of a freshly compiled bundle and expects rejection.
fn rejects(host: &str, file: &str, edit: impl Fn(String) -> String) {
    rejects_saying(host, file, "", edit);
}

/// As [`rejects`], and the validator's own words say `why`: the file is
/// refused for the reason the test is about, not another.
fn rejects_saying(host: &str, file: &str, why: &str, edit: impl Fn(String) -> String) {
    let tmp = TempDir::new("reject");
    let out = tmp.path().join("out");
    compile_into(&out);
    let bundle = out.join(host);
    let path = bundle.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let broken = edit(text.clone());
    assert_ne!(broken, text, "the edit must change {file}");
    std::fs::write(&path, broken).unwrap();
    support::reseal(&bundle);
    let o = validate(&bundle);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success()
            && stderr.contains(&format!("{file}: rejected by"))
            && stderr.contains(why),
        "{host}/{file}: a broken file was not rejected by its validator:\n{stderr}"
    );
}

#[test]
fn a_dnat_in_a_filter_chain_is_rejected_by_the_real_load() {
    // nft -c accepts this; only a real load in a namespace refuses it.
    rejects("homelab/pve1", "etc/nftables.conf", |t| {
        t.replacen(
            "ct state invalid drop",
            "ct state invalid drop\n\t\ttcp dport 1 dnat to 10.0.0.1",
            1,
        )
    });
}

#[test]
fn an_unknown_samba_parameter_is_rejected() {
    rejects("homelab/nas", "etc/samba/smb.conf", |t| {
        t.replacen("map to guest", "mapp to guest", 1)
    });
}

#[test]
fn a_bad_systemd_value_is_rejected() {
    rejects("homelab/pve2", "etc/systemd/system/zaino.service", |t| {
        t.replacen("Restart=always", "Restart=sometimes", 1)
    });
}

#[test]
fn a_bad_wireguard_key_is_rejected() {
    rejects("homelab/nas", "etc/wireguard/wg0.conf", |t| {
        t.replacen("PublicKey = ", "PublicKey = x", 1)
    });
}

#[test]
fn a_bad_nginx_directive_is_rejected() {
    rejects("opensource/lb", "etc/nginx/nginx.conf", |t| {
        t.replacen("sendfile on;", "sendfile maybe;", 1)
    });
}

/// Debian 13's ifupdown2 has no `inet6 auto` (SLAAC is written as options
/// of the stanza for it) and exits 0 on it: the validator reads its words.
#[test]
fn ifupdown2_refuses_slaac_as_classic_ifupdown_writes_it() {
    rejects_saying(
        "homelab/pve1",
        "etc/network/interfaces",
        "unsupported address method 'auto'",
        |t| {
            let post_up = t
                .lines()
                .find(|l| l.contains("post-up sysctl -qw net/ipv6/conf/vmbr0/accept_ra=2"))
                .expect("vmbr0 takes SLAAC")
                .to_string();
            t.replacen(&format!("{post_up}\n"), "iface vmbr0 inet6 auto\n", 1)
        },
    );
}

/// ... and only warns about a value it refuses: a warning fails the file
/// (all but the one about `bridge-ports none`, which it applies, and which
/// pve1's host-only bridge has).
#[test]
fn a_value_ifupdown2_only_warns_about_is_rejected() {
    rejects_saying(
        "homelab/pve1",
        "etc/network/interfaces",
        "bridge-stp: invalid value \"sometimes\"",
        |t| t.replacen("bridge-stp off", "bridge-stp sometimes", 1),
    );
}

/// A bundle whose nginx.conf needs a newer nginx than the host's is refused
/// before any validator runs, naming what needs it and what to install.
#[test]
fn a_bundle_that_needs_a_newer_nginx_is_refused_naming_what_to_install() {
    let tmp = TempDir::new("needs");
    let out = tmp.path().join("out");
    compile_into(&out);
    let o = validate_on(System::Debian12, &out.join("opensource/lb"));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(
            "HTTP/3 (listen ... quic): needs nginx 1.25 or newer; this host has 1.22: install nginx 1.25+"
        ),
        "{stderr}"
    );
}

#[test]
fn a_bad_interfaces_stanza_is_rejected() {
    rejects("opensource/edge", "etc/network/interfaces", |t| {
        t.replacen("iface lo inet loopback", "iface lo inet nonsense", 1)
    });
}

#[test]
fn a_bad_sshd_setting_is_rejected() {
    rejects("homelab/nas", "etc/ssh/sshd_config.d/00-sitec.conf", |t| {
        t.replacen(
            "PermitRootLogin prohibit-password",
            "PermitRootLogin maybe",
            1,
        )
    });
}

/// sshd parses it, but would not listen where push logs in: `sshd -T`
/// says so on the host's whole configuration.
#[test]
fn an_sshd_drop_in_that_moves_off_the_deploy_port_is_rejected() {
    let why = "sshd would not listen on 10.0.200.13:22";
    rejects_saying(
        "homelab/nas",
        "etc/ssh/sshd_config.d/00-sitec.conf",
        why,
        |t| t.replacen("Port 22\n", "Port 2200\n", 1),
    );
}

/// A Match block after the drop-in cannot be seen by sitec; sshd -T, run
/// for the deploy user, sees that root would be refused.
#[test]
fn an_sshd_drop_in_under_which_root_is_refused_is_rejected() {
    let why = "sshd would not let root log in (permitrootlogin no)";
    rejects_saying(
        "homelab/pve1",
        "etc/ssh/sshd_config.d/00-sitec.conf",
        why,
        |t| t + "Match User root\n\tPermitRootLogin no\n",
    );
}

/// `Match Host` matches the client's address (sshd's UseDNS is off): the
/// check asks sshd for the address the operator comes from.
#[test]
fn an_sshd_match_host_block_that_overrides_the_drop_in_is_rejected() {
    let why = "sshd would use PasswordAuthentication yes, not the drop-in's no";
    rejects_saying(
        "homelab/pve1",
        "etc/ssh/sshd_config.d/00-sitec.conf",
        why,
        |t| t + "Match Host 10.0.200.*\n\tPasswordAuthentication yes\n",
    );
}

/// `AllowUsers root@HOST` lets root in only from HOST.
#[test]
fn an_allow_users_entry_for_another_address_is_rejected() {
    let why = "sshd's AllowUsers leaves out root coming from 10.0.200.11";
    rejects_saying(
        "homelab/pve1",
        "etc/ssh/sshd_config.d/00-sitec.conf",
        why,
        |t| t + "AllowUsers root@192.0.2.50\n",
    );
}

/// A host deployed to over IPv6: sshd -T writes the address in brackets.
#[test]
fn an_sshd_drop_in_is_checked_at_an_ipv6_deploy_address() {
    let tmp = TempDir::new("ssh6");
    let out = tmp.path().join("out");
    compile_into(&out);
    let bundle = out.join("homelab/nas");
    for file in ["index", "manifest.json"] {
        let path = bundle.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let moved = text
            .replacen("d\taddress\t10.0.200.13\n", "d\taddress\tfd00:200::13\n", 1)
            .replacen(
                "\"address\": \"10.0.200.13\"",
                "\"address\": \"fd00:200::13\"",
                1,
            );
        assert_ne!(moved, text, "{file} names the deploy address");
        std::fs::write(&path, moved).unwrap();
    }
    support::reseal(&bundle);
    let o = validate(&bundle);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // And a drop-in that listens on the IPv4 address alone is refused.
    let dropin = bundle.join("etc/ssh/sshd_config.d/00-sitec.conf");
    let text = std::fs::read_to_string(&dropin).unwrap();
    std::fs::write(
        &dropin,
        text.replacen("ListenAddress fd00:200::13\n", "", 1),
    )
    .unwrap();
    support::reseal(&bundle);
    let o = validate(&bundle);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && stderr.contains("sshd would not listen on [fd00:200::13]:22"),
        "{stderr}"
    );
}

#[test]
fn a_damaged_authorized_key_is_rejected() {
    let why = "ssh-keygen reads 1 of the 2 keys";
    rejects_saying("homelab/nas", "etc/ssh/authorized_keys.d/root", why, |t| {
        t.replacen("AAAAC3NzaC1lZDI1NTE5AAAAI", "AAAAC3NzaC1lZDI1NTE5AAAAJ", 1)
    });
}

#[test]
fn a_bad_chrony_source_is_rejected() {
    rejects("homelab/nas", "etc/chrony/sources.d/sitec.sources", |t| {
        t.replacen(" iburst", " iburst sometimes", 1)
    });
}

/// chronyd reads only server, pool and peer lines from a sources file.
#[test]
fn a_chrony_directive_other_than_a_source_is_rejected() {
    let why = "a chrony sources file holds server, pool and peer lines only";
    rejects_saying(
        "homelab/nas",
        "etc/chrony/sources.d/sitec.sources",
        why,
        |t| t + "makestep 1 3\n",
    );
}

/// libkmod ignores a line it cannot read and exits 0: the complaint fails.
#[test]
fn a_bad_modprobe_line_is_rejected() {
    rejects("homelab/pve1", "etc/modprobe.d/sitec.conf", |t| {
        t.replacen("blacklist nouveau", "blacklistt nouveau", 1)
    });
}

#[test]
fn a_grub_drop_in_that_is_no_shell_is_rejected() {
    rejects("homelab/pve1", "etc/default/grub.d/sitec.cfg", |t| {
        t.replacen(" iommu=pt\"", " iommu=pt", 1)
    });
}

#[test]
fn a_bad_apt_source_is_rejected() {
    rejects(
        "homelab/pve1",
        "etc/apt/sources.list.d/pve-no-subscription.sources",
        |t| t.replacen("Suites: ", "Suitez: ", 1),
    );
}

#[test]
fn a_bad_toml_is_rejected() {
    rejects("homelab/pve2", "etc/zaino/zindexer.toml", |t| {
        t.replacen("network = ", "network == ", 1)
    });
}

/// `activate check` refuses a manifest that names a path outside what sitec
/// may manage (absolute, `..`, its own state, a file the bundle lacks), even
/// when the bundle's hash is right.
#[test]
fn a_manifest_path_outside_what_sitec_manages_is_refused() {
    for bad in [
        "../../etc/shadow",
        "/etc/shadow",
        "etc/../../root/.ssh/authorized_keys",
        "var/lib/sitec/current",
        "etc//nftables.conf",
        "etc/not-in-the-bundle.conf",
    ] {
        let tmp = TempDir::new("path");
        let out = tmp.path().join("out");
        compile_into(&out);
        let bundle = out.join("homelab/nas");
        // activate reads the manifest through the index.
        let index = bundle.join("index");
        let text = std::fs::read_to_string(&index).unwrap();
        let edited = text.replace("f\tetc/nftables.conf\t", &format!("f\t{bad}\t"));
        assert_ne!(edited, text);
        std::fs::write(&index, edited).unwrap();
        if bad == "var/lib/sitec/current" {
            // In the bundle, with the bytes the index says: refused for
            // where it would go alone, also by a check off the host
            // (whose own state is a scratch directory).
            std::fs::create_dir_all(bundle.join("var/lib/sitec")).unwrap();
            std::fs::copy(bundle.join("etc/nftables.conf"), bundle.join(bad)).unwrap();
        }
        support::reseal(&bundle);
        let o = validate(&bundle);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(3), "{bad}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "the manifest names '{bad}', which sitec may not manage"
            )),
            "{bad}: {stderr}"
        );
    }
}

/// A symlink in a bundle (the hash covers regular files only) is refused by
/// `activate check` and by `sitec verify`.
#[test]
fn a_bundle_holding_a_symlink_is_refused() {
    let tmp = TempDir::new("symlink");
    let out = tmp.path().join("out");
    compile_into(&out);
    let bundle = out.join("homelab/nas");
    std::os::unix::fs::symlink("/etc/shadow", bundle.join("etc/shadow")).unwrap();
    let o = validate(&bundle);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("etc/shadow is not a regular file or a directory"),
        "{stderr}"
    );
    let o = support::sitec()
        .arg("verify")
        .arg(&bundle)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("etc/shadow is not a regular file or a directory"),
        "{stderr}"
    );
}

/// A unit's ExecStart with `..` in its path is rejected before `activate
/// check` puts a stand-in for it anywhere (the stand-in goes under a
/// throwaway root; `..` would lead it out).
#[test]
fn an_exec_path_leading_out_of_the_check_root_is_rejected() {
    let target = std::env::temp_dir().join(format!("sitec-stand-in-{}", std::process::id()));
    let _ = std::fs::remove_file(&target);
    let escape = format!("/../../../../../../..{}", target.display());
    rejects(
        "homelab/pve1",
        "etc/systemd/system/node-exporter.service",
        |t| {
            t.replace(
                "ExecStart=/usr/bin/prometheus-node-exporter",
                &format!("ExecStart={escape}"),
            )
        },
    );
    assert!(
        !target.exists(),
        "a stand-in was written to {}",
        target.display()
    );
}

/// The units of sitec's own boot protocol (the boot guard and the timer of
/// a boot's confirmation) are no bundle's to ship or to set.
#[test]
fn a_bundle_that_sets_sitecs_own_boot_units_is_refused() {
    for unit in ["sitec-boot.service", "sitec-boot-confirm.timer"] {
        let tmp = TempDir::new("own-units");
        let out = tmp.path().join("out");
        compile_into(&out);
        let bundle = out.join("homelab/nas");
        let index = bundle.join("index");
        let mut text = std::fs::read_to_string(&index).unwrap();
        text.push_str(&format!("u\t{unit}\tmasked\n"));
        std::fs::write(&index, text).unwrap();
        support::reseal(&bundle);
        let o = validate(&bundle);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(3), "{unit}: {stderr}");
        assert!(
            stderr.contains(&format!("the manifest names '{unit}'"))
                && stderr.contains("are sitec's own"),
            "{unit}: {stderr}"
        );
    }
}

/// What `activate check` of `bundle` (with `args`) wrote on the system that
/// checked it, outside the check's own scratch directory: on this machine,
/// the upper layers of overlays over its writable trees in a mount namespace
/// of the check's own; in the Debian 13 root, what is newer than the check's
/// start there.
fn written_by_check(system: System, bundle: &Path, args: &str) -> Vec<String> {
    let tmp = TempDir::new("hygiene");
    let o = match system {
        System::Debian12 => Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c"])
            .arg(
                r#"set -eu
t=$1 a=$2 b=$3
shift 3
for d in etc var root usr opt srv home; do
    [ -d "/$d" ] || continue
    mkdir -p "$t/u/$d" "$t/w/$d"
    mount -t overlay overlay -o "lowerdir=/$d,upperdir=$t/u/$d,workdir=$t/w/$d" "/$d"
done
"$a" check "$@" "$b" >/dev/null 2>&1 || true
cd "$t/u" && find . -mindepth 2 | sort"#,
            )
            .arg("sh")
            .arg(tmp.path())
            .arg(support::agent_source())
            .arg(bundle)
            .args(args.split_whitespace())
            .output()
            .unwrap(),
        System::Debian13 => Command::new("sh")
            .env("SITEC_CHROOT_BIND", bundle)
            .env("SITEC_CHROOT_AGENT", support::agent_source())
            .arg(project_root().join("tests/e2e/debian13.sh"))
            .args(["run", "sh", "-c"])
            .arg(
                r#"set -eu
touch /tmp/.started
sleep 1
/activate check "$@" /mnt >/dev/null 2>&1 || true
find / -xdev -newer /tmp/.started | grep -Ev '^/(mnt|run|tmp|dev|proc|sys)(/|$)' | sort || true"#,
            )
            .arg("sh")
            .args(args.split_whitespace())
            .output()
            .unwrap(),
    };
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// A check on a machine that is no managed host (CI, an operator's laptop,
/// `--stand-ins` or not) writes nothing outside its own scratch directory:
/// no state of sitec's, no log, no staged or decrypted secrets, no
/// directories where the bundle's certificates would be.
#[test]
fn a_check_off_a_managed_host_writes_nothing_outside_its_scratch_directory() {
    let tmp = TempDir::new("hygiene-out");
    let out = tmp.path().join("out");
    compile_into(&out);
    for bundle in bundles(&out) {
        let system = System::of(&bundle);
        for args in ["--stand-ins", ""] {
            let written = written_by_check(system, &bundle, args);
            assert!(
                written.is_empty(),
                "`check {args}` of {} on {system:?} wrote: {written:#?}",
                bundle.display()
            );
        }
    }
}
