//! What a bundle must be before anything of it is applied, and what the
//! host must be to apply it: checked before the journal names a switch,
//! so that a refusal changes nothing (exit 3).
//!
//! - **its shape**: regular files and directories only (the hash covers
//!   files alone), hashing to its `BUNDLE`, every path its index names one
//!   sitec may manage, a store copy sealed;
//! - **its protocol**: at most the one this agent speaks;
//! - **the system it is written for**: the host's release and ifupdown,
//!   and the programs its files need at a version;
//! - **what applying it needs**: the tools of its actions, the units it
//!   restarts or enables;
//! - **its secrets**: present, private, owned by their reader, in
//!   directories that are root's alone, nothing staged that it does not
//!   require.
//!
//! The daemons' own parsers (the validators) are still `activate`'s.

use std::path::Path;

use sitec_format::{AGENT_PROTOCOL, Action, Index};

use crate::effects::{Cmd, Effects, EffectsExt as _, Kind};
use crate::host::Error;

type R<T> = Result<T, Error>;

fn refused(why: impl Into<String>) -> Error {
    Error::Refused(why.into())
}

/// Whether host path `p` is one sitec may manage or read: absolute, of
/// plain components, outside sitec's own state directory.
pub fn manageable(p: &str, state: &Path) -> bool {
    let plain = p.bytes().all(|b| {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'.' | b'_' | b'@' | b':' | b'+' | b'=' | b',' | b'/' | b'-'
            )
    });
    let parts_ok = p.starts_with('/')
        && !p.ends_with('/')
        && p[1..]
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..");
    let state = state.to_string_lossy();
    plain && parts_ok && p != state && !p.starts_with(&format!("{state}/"))
}

/// Names sitec keeps for itself: no bundle ships or sets them.
const OWN: [&str; 4] = [
    "sitec-boot.service",
    "sitec-boot-confirm.",
    "sitec-pull-apply",
    "sitec-pull.service.d/",
];

/// The bundle in `dir` is what its `BUNDLE` says, and names only what
/// sitec may manage; a store copy (`sealed`) is sealed.
pub fn shape(fx: &impl Effects, dir: &Path, index: &Index, state: &Path, sealed: bool) -> R<()> {
    if let Some(odd) = odd_entry(fx, dir, "")? {
        return Err(refused(format!(
            "{odd} is not a regular file or a directory: a bundle holds only those"
        )));
    }
    let want = fx
        .read(&dir.join("BUNDLE"))
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let got = crate::bundle::hash(fx, dir)?;
    if want != got {
        return Err(refused(format!(
            "bundle hash mismatch: BUNDLE says {want}, the files hash to {got}"
        )));
    }
    let own = |p: &str| OWN.iter().any(|o| p.contains(o));
    let said = |p: &str| {
        refused(format!(
            "the manifest names '{p}': sitec-boot.service, the timer of a boot's confirmation, the apply of a pulled release and sitec-pull.service's drop-in are sitec's own"
        ))
    };
    for p in index.files.keys() {
        if own(p) {
            return Err(said(p));
        }
        if !manageable(&format!("/{p}"), state)
            || fx.kind(&dir.join(p)).ok().flatten() != Some(Kind::File)
        {
            return Err(refused(format!(
                "the manifest names '{p}', which sitec may not manage (or the bundle lacks it)"
            )));
        }
    }
    for s in &index.secrets {
        if own(&s.path) {
            return Err(said(&s.path));
        }
        if !manageable(&s.path, state) {
            return Err(refused(format!(
                "the manifest names the secret '{}', which sitec may not manage",
                s.path
            )));
        }
        if let Some(f) = &s.age {
            let want = format!("secrets{}.age", s.path);
            if *f != want || fx.kind(&dir.join(f)).ok().flatten() != Some(Kind::File) {
                return Err(refused(format!(
                    "the manifest gives the secret '{}' the encrypted file '{f}', which is not {want} of the bundle",
                    s.path
                )));
            }
        }
    }
    for u in index.units.keys() {
        if own(u) {
            return Err(said(u));
        }
        if u.is_empty() || u.contains('/') || u.starts_with('.') {
            return Err(refused(format!(
                "the manifest names the unit '{u}', which is not a unit name"
            )));
        }
    }
    if sealed && let Some(odd) = crate::bundle::unsealed(fx, dir, index) {
        return Err(refused(format!(
            "the store copy {} is not sealed: {odd}; push the bundle again to repair it",
            dir.file_name().unwrap_or_default().to_string_lossy()
        )));
    }
    Ok(())
}

fn odd_entry(fx: &impl Effects, dir: &Path, prefix: &str) -> R<Option<String>> {
    for name in fx.list(dir).map_err(crate::host::at(dir))? {
        let path = dir.join(&name);
        let rel = format!("{prefix}{}", name.to_string_lossy());
        match fx.kind(&path).map_err(crate::host::at(&path))? {
            Some(Kind::Dir) => {
                if let Some(odd) = odd_entry(fx, &path, &format!("{rel}/"))? {
                    return Ok(Some(odd));
                }
            }
            Some(Kind::File) => {}
            _ => return Ok(Some(rel)),
        }
    }
    Ok(None)
}

/// A bundle needs at most the agent protocol this agent speaks: an older
/// agent refuses a newer bundle before anything changes, saying so.
pub fn protocol(index: &Index) -> R<()> {
    let need = index
        .agent_protocol()
        .map_err(|why| refused(format!("the bundle names agent protocol {why}")))?;
    if need > AGENT_PROTOCOL {
        return Err(refused(format!(
            "the bundle needs agent protocol {need} and this agent speaks {AGENT_PROTOCOL}: push it with the sitec that compiled it, which brings its agent"
        )));
    }
    Ok(())
}

/// This host's release as the site spells it (`debian12`), from
/// os-release: ID and VERSION_ID run together.
pub fn host_release(fx: &impl Effects) -> String {
    let text = ["/etc/os-release", "/usr/lib/os-release"]
        .iter()
        .find_map(|p| fx.read(Path::new(p)).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned());
    let Some(text) = text else {
        return "unknown".to_string();
    };
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(|v| v.trim().trim_matches(['"', '\'']).to_string())
    };
    format!(
        "{}{}",
        value("ID").unwrap_or_else(|| "unknown".to_string()),
        value("VERSION_ID").unwrap_or_default()
    )
}

fn release_name(r: &str) -> String {
    match r {
        "debian12" => "Debian 12 (bookworm)".to_string(),
        "debian13" => "Debian 13 (trixie)".to_string(),
        "unknown" => "a system whose os-release names no release".to_string(),
        other => format!("{other}, which sitec does not know"),
    }
}

fn release_advice(r: &str) -> String {
    match r {
        "debian12" | "debian13" => {
            format!(
                "set its release in the site (release = '{r}), or run the bundle where it belongs"
            )
        }
        _ => "sitec writes for Debian 12 and 13 only".to_string(),
    }
}

fn ifupdown_name(i: &str) -> &str {
    if i == "classic" {
        "classic ifupdown"
    } else {
        i
    }
}

/// Whether MAJOR.MINOR `a` is older than `b`.
fn older(a: &str, b: &str) -> bool {
    let parts = |v: &str| -> (u64, u64) {
        let (x, y) = v.split_once('.').unwrap_or((v, "0"));
        (x.parse().unwrap_or(0), y.parse().unwrap_or(0))
    };
    parts(a) < parts(b)
}

/// The bundle is written for what this host runs: its release, its
/// ifupdown (when it manages the interfaces), its programs' versions.
pub fn system(fx: &mut impl Effects, index: &Index) -> R<()> {
    let mut differs = Vec::new();
    let have = host_release(&*fx);
    if let Some(want) = index.host.get("release")
        && !want.is_empty()
        && *want != have
    {
        differs.push(format!(
            "the bundle is written for {} (the release of this host in the site); this host runs {}: {}",
            release_name(want),
            release_name(&have),
            release_advice(&have)
        ));
    }
    let have = if fx.which("ifreload").is_some() {
        "ifupdown2"
    } else {
        "classic"
    };
    if let Some(want) = index.host.get("ifupdown")
        && !want.is_empty()
        && want != have
        && index.files.contains_key("etc/network/interfaces")
    {
        differs.push(format!(
            "etc/network/interfaces is written for {} (the ifupdown of this host in the site); this host has {}: set ifupdown = '{have} for it in the site",
            ifupdown_name(want),
            ifupdown_name(have)
        ));
    }
    for need in &index.needs {
        let program = need.program.as_str();
        if fx.which(program).is_none() {
            continue; // missing altogether: what the host needs says so
        }
        let ran = fx
            .run(&Cmd::new(program, &["-v"]))
            .map_err(crate::host::at(Path::new(program)))?;
        let said = String::from_utf8_lossy(&ran.stderr).into_owned()
            + &String::from_utf8_lossy(&ran.stdout);
        let Some(v) = said.split("nginx/").nth(1).map(|r| {
            r.split('.')
                .take(2)
                .map(|p| p.trim_end_matches(|c: char| !c.is_ascii_digit()))
                .collect::<Vec<_>>()
                .join(".")
        }) else {
            continue;
        };
        if older(&v, &need.version) {
            differs.push(format!(
                "{}: needs {program} {} or newer; this host has {v}: install {program} {}+ (Debian 13 ships nginx 1.26), or take it out of the site",
                need.why, need.version, need.version
            ));
        }
    }
    if differs.is_empty() {
        return Ok(());
    }
    Err(Error::RefusedListing {
        listed: differs.iter().map(|d| format!("  {d}")).collect(),
        why: "this host's daemons cannot parse the bundle: it is written for another system (see above); nothing changed".to_string(),
    })
}

/// What applying the bundle needs of the host: the tools of its actions,
/// the units it restarts or enables. `unit_exists` is the host's answer.
pub fn host_needs(
    fx: &impl Effects,
    dir: &Path,
    index: &Index,
    systemd: bool,
    mut unit_exists: impl FnMut(&str) -> bool,
) -> R<()> {
    let mut lacks = std::collections::BTreeSet::new();
    // (tool, what needs it, the package to install)
    let mut tools: Vec<(&str, String, &str)> = Vec::new();
    let have = |t: &str| fx.which(t).is_some();
    let mut units: Vec<(String, String)> = Vec::new();
    for (path, f) in &index.files {
        for a in &f.actions {
            match a {
                Action::NftLoad => tools.push(("nft", path.clone(), "nftables")),
                Action::Ifreload => {
                    tools.push(("ifup", path.clone(), "ifupdown (or ifupdown2)"));
                    let text = fx
                        .read(&dir.join(path))
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default();
                    let bridges = text.lines().any(|l| {
                        let l = l.trim_start();
                        l.starts_with("bridge-ports") || l.starts_with("bridge_ports")
                    });
                    if bridges
                        && !have("ifreload")
                        && !fx.exists(Path::new("/etc/network/if-pre-up.d/bridge"))
                    {
                        lacks.insert("etc/network/interfaces (a bridge) needs bridge-utils' ifupdown hook: install bridge-utils, or ifupdown2".to_string());
                    }
                }
                Action::WgSync(_) => {
                    tools.push(("wg", path.clone(), "wireguard-tools"));
                    tools.push(("wg-quick", path.clone(), "wireguard-tools"));
                }
                Action::SysctlLoad => tools.push(("sysctl", path.clone(), "procps")),
                Action::ChronyReload => tools.push(("chronyc", path.clone(), "chrony")),
                Action::UpdateGrub => tools.push((
                    "update-grub",
                    path.clone(),
                    "grub2-common (the host boots with GRUB)",
                )),
                Action::ProxmoxBootRefresh => tools.push((
                    "proxmox-boot-tool",
                    path.clone(),
                    "proxmox-kernel-helper (the host boots with systemd-boot)",
                )),
                Action::Restart(u) | Action::Reload(u) => units.push((u.clone(), path.clone())),
                _ => {}
            }
        }
    }
    if !index.pull.is_empty() || !index.signers.is_empty() {
        for (t, pkg) in [
            ("curl", "curl"),
            ("ssh-keygen", "openssh-client"),
            ("systemd-run", "systemd"),
            ("ss", "iproute2"),
        ] {
            tools.push((t, "pull mode (deploy.pull)".to_string(), pkg));
        }
    }
    if index.secrets.iter().any(|s| s.age.is_some()) {
        tools.push((
            "age",
            "secrets encrypted in the site (hosts.H.secrets)".to_string(),
            "age",
        ));
    }
    for (u, s) in &index.units {
        if *s == sitec_format::UnitState::Enabled {
            units.push((u.clone(), format!("the unit state {u}=enabled")));
        }
    }
    for (t, why, pkg) in tools {
        if !have(t) {
            lacks.insert(format!("{why} needs {t}: install {pkg}"));
        }
    }
    if systemd {
        for (u, why) in units {
            let shipped = fx.exists(&dir.join("etc/systemd/system").join(&u));
            if !shipped && !unit_exists(&u) {
                let pkg = match u.as_str() {
                    "smbd.service" => "samba".to_string(),
                    "nginx.service" => "nginx".to_string(),
                    "nftables.service" => "nftables".to_string(),
                    "ssh.service" => "openssh-server".to_string(),
                    "chrony.service" => "chrony".to_string(),
                    w if w.starts_with("wg-quick@") => "wireguard-tools".to_string(),
                    other => format!("the package that ships {other}"),
                };
                lacks.insert(format!("{why} needs {u}: install {pkg}"));
            }
        }
    }
    if lacks.is_empty() {
        return Ok(());
    }
    Err(Error::RefusedListing {
        listed: lacks.into_iter().map(|l| format!("  {l}")).collect(),
        why: "this host cannot apply the bundle: install what is listed above".to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manageable_paths_are_plain_and_not_sitecs() {
        let state = Path::new("/var/lib/sitec");
        for ok in [
            "/etc/nginx/nginx.conf",
            "/etc/wireguard/wg0.key",
            "/etc/systemd/system/wg-quick@wg0.service",
        ] {
            assert!(manageable(ok, state), "{ok}");
        }
        for bad in [
            "etc/x",
            "/etc/../root/.ssh/authorized_keys",
            "/etc//x",
            "/etc/x/",
            "/etc/./x",
            "/var/lib/sitec/current",
            "/var/lib/sitec",
            "/etc/x y",
            "/etc/$x",
        ] {
            assert!(!manageable(bad, state), "{bad}");
        }
    }

    #[test]
    fn versions_compare_as_numbers() {
        assert!(older("1.22", "1.25"));
        assert!(!older("1.26", "1.25"));
        assert!(older("1.9", "1.10"));
        assert!(!older("2.0", "1.99"));
    }
}
