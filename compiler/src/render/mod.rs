//! Stage 4: one renderer per artifact kind. Renderers are pure functions of
//! the site: no clock, no environment, no filesystem, only ordered maps.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use minijinja::Environment;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::{Host, Mesh, Site, UnitState};
use crate::path;

mod apt;
mod interfaces;
mod kernel;
mod nftables;
mod nginx;
mod pull;
mod samba;
mod secrets;
mod ssh;
mod system;
mod systemd;
mod time;
mod wireguard;
mod zaino;

/// A rendered file of a bundle.
#[derive(Debug, Clone)]
pub(crate) struct File {
    /// Path on the host without the leading `/`, e.g. `etc/nftables.conf`.
    pub(crate) path: String,
    pub(crate) mode: u32,
    pub(crate) content: String,
    /// What activation runs when the file changed.
    pub(crate) actions: Vec<Action>,
    /// The daemon's own tool that validates the file before activation.
    pub(crate) validator: Option<Validator>,
    /// Whether a change can cut the operator off (arms confirm-or-rollback).
    pub(crate) network: bool,
}

/// What activation runs on the host when a file (or a secret it reads)
/// changed. Written `kind` or `kind:argument`, as the manifest and the
/// index carry it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Action {
    DaemonReload,
    NftLoad,
    Ifreload,
    /// `wg-sync:<interface>`
    WgSync(String),
    SysctlLoad,
    ZfsSet,
    /// `chronyc reload sources`
    ChronyReload,
    /// systemd-modules-load loads the modules now.
    ModulesLoad,
    /// The initramfs is rebuilt (update-initramfs or dracut).
    Initramfs,
    /// `update-grub`
    UpdateGrub,
    /// `proxmox-boot-tool refresh`
    ProxmoxBootRefresh,
    /// `restart:<unit>`
    Restart(String),
    /// `reload:<unit>`
    Reload(String),
}

impl Action {
    /// The one definition of the order activation runs actions in, by kind:
    /// units are known before they restart, the firewall before interfaces
    /// and tunnels, services last. The bundle's index carries it to
    /// `activate` (its `o` lines), `sitec plan` sorts by it.
    pub const ORDER: [(&'static str, u8); 13] = [
        ("daemon-reload", 1),
        ("nft-load", 2),
        ("ifreload", 3),
        ("wg-sync", 4),
        ("sysctl-load", 5),
        ("modules-load", 5),
        ("zfs-set", 6),
        ("chrony-reload", 6),
        ("restart", 7),
        ("reload", 7),
        ("initramfs", 8),
        ("update-grub", 9),
        ("proxmox-boot-refresh", 9),
    ];

    /// The kinds whose effect waits for the next boot: `activate` records
    /// that the host needs a reboot when it ran one (the index's `r`
    /// lines), `sitec plan` and `push` say so.
    pub const REBOOT: [&'static str; 3] = ["initramfs", "update-grub", "proxmox-boot-refresh"];

    /// The kinds whose files the next boot reads early (those of `REBOOT`
    /// and the modules loaded at boot, which also load at once): a boot on
    /// such files no confirmed boot had awaits the operator's confirmation
    /// (the index's `b` lines, docs/host-protocol.md).
    pub const BOOT: [&'static str; 4] = [
        "initramfs",
        "update-grub",
        "proxmox-boot-refresh",
        "modules-load",
    ];

    /// Whether the action takes effect only at the next boot.
    pub fn needs_reboot(&self) -> bool {
        Self::REBOOT.contains(&self.kind())
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Action::DaemonReload => "daemon-reload",
            Action::NftLoad => "nft-load",
            Action::Ifreload => "ifreload",
            Action::WgSync(_) => "wg-sync",
            Action::SysctlLoad => "sysctl-load",
            Action::ZfsSet => "zfs-set",
            Action::ChronyReload => "chrony-reload",
            Action::ModulesLoad => "modules-load",
            Action::Initramfs => "initramfs",
            Action::UpdateGrub => "update-grub",
            Action::ProxmoxBootRefresh => "proxmox-boot-refresh",
            Action::Restart(_) => "restart",
            Action::Reload(_) => "reload",
        }
    }

    /// Where the action runs in activation's order (see `ORDER`).
    pub fn rank(&self) -> u8 {
        let kind = self.kind();
        Self::ORDER
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(u8::MAX, |(_, r)| *r)
    }

    fn argument(&self) -> Option<&str> {
        match self {
            Action::WgSync(a) | Action::Restart(a) | Action::Reload(a) => Some(a),
            _ => None,
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.argument() {
            Some(a) => write!(f, "{}:{a}", self.kind()),
            None => f.write_str(self.kind()),
        }
    }
}

impl From<Action> for String {
    fn from(a: Action) -> String {
        a.to_string()
    }
}

impl TryFrom<String> for Action {
    type Error = String;

    fn try_from(s: String) -> Result<Action, String> {
        let (kind, arg) = match s.split_once(':') {
            Some((k, a)) => (k, Some(a.to_string())),
            None => (s.as_str(), None),
        };
        Ok(match (kind, arg) {
            ("daemon-reload", None) => Action::DaemonReload,
            ("nft-load", None) => Action::NftLoad,
            ("ifreload", None) => Action::Ifreload,
            ("sysctl-load", None) => Action::SysctlLoad,
            ("zfs-set", None) => Action::ZfsSet,
            ("chrony-reload", None) => Action::ChronyReload,
            ("modules-load", None) => Action::ModulesLoad,
            ("initramfs", None) => Action::Initramfs,
            ("update-grub", None) => Action::UpdateGrub,
            ("proxmox-boot-refresh", None) => Action::ProxmoxBootRefresh,
            ("wg-sync", Some(a)) if !a.is_empty() => Action::WgSync(a),
            ("restart", Some(a)) if !a.is_empty() => Action::Restart(a),
            ("reload", Some(a)) if !a.is_empty() => Action::Reload(a),
            _ => return Err(format!("unknown action '{s}'")),
        })
    }
}

/// The daemon's own parser that validates a file before activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Validator {
    Nft,
    Wg,
    Ifupdown,
    Testparm,
    SystemdAnalyze,
    Nginx,
    Toml,
    /// `sshd -t` on the host's configuration with the drop-in in place,
    /// and `sshd -T` for what the deploy user gets.
    Sshd,
    /// `ssh-keygen -l` reads every key.
    AuthorizedKeys,
    /// `chronyd -p` parses the sources.
    Chrony,
    /// `apt-get` reads the source file (and on the host, its keyring exists).
    Apt,
    /// `modprobe --showconfig` reads the file without a complaint.
    Modprobe,
    /// `sh -n`: the file is sourced as shell (GRUB's defaults).
    Shell,
}

impl Validator {
    pub fn as_str(self) -> &'static str {
        match self {
            Validator::Nft => "nft",
            Validator::Wg => "wg",
            Validator::Ifupdown => "ifupdown",
            Validator::Testparm => "testparm",
            Validator::SystemdAnalyze => "systemd-analyze",
            Validator::Nginx => "nginx",
            Validator::Toml => "toml",
            Validator::Sshd => "sshd",
            Validator::AuthorizedKeys => "authorized-keys",
            Validator::Chrony => "chrony",
            Validator::Apt => "apt",
            Validator::Modprobe => "modprobe",
            Validator::Shell => "shell",
        }
    }
}

/// A secret file the host must have before activation; in the bundle only
/// encrypted (`age`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Secret {
    /// The bundle file holding it encrypted with age to the host's ssh host
    /// key, when the site commits it (`hosts.H.secrets`); else push
    /// uploads it or the host has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age: Option<String>,
    /// Its path on the host, absolute.
    pub path: String,
    /// The bundle file that reads it: its actions run when the secret changes.
    pub read_by: String,
    /// What it is, for the operator.
    pub used_by: String,
    /// Who must own it on the host (the reader's user: root for the
    /// daemons, a container's own user for a container that mounts it).
    pub uid: u32,
    pub gid: u32,
}

/// A program the host must have at least at some version for a file of
/// the bundle to parse: `activate check` refuses the bundle on a host whose
/// program is older, saying what needs it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Need {
    /// The program, as `activate` asks it its version.
    pub program: Program,
    /// `MAJOR.MINOR`, the oldest that parses it.
    pub version: String,
    /// What needs it, in the file's own words.
    pub why: String,
}

/// A program whose version `activate check` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Program {
    /// `nginx -v`.
    Nginx,
}

impl Program {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Program::Nginx => "nginx",
        }
    }
}

/// Everything rendered for one host.
#[derive(Debug, Default)]
pub(crate) struct HostOutput {
    pub(crate) files: Vec<File>,
    pub(crate) needs: BTreeSet<Need>,
    pub(crate) units: BTreeMap<String, UnitState>,
    pub(crate) secrets: BTreeSet<Secret>,
    /// The encrypted secrets, by bundle path (`secrets/<host path>.age`):
    /// bundle files that are not installed, the host decrypts them.
    pub(crate) encrypted: BTreeMap<String, String>,
}

impl HostOutput {
    /// A unit the host must start at boot for an artifact to be live after a
    /// reboot (e.g. nftables.service loads /etc/nftables.conf). A state the
    /// site gives the unit itself wins: the systemd renderer runs later.
    pub(crate) fn started_at_boot(&mut self, unit: String) {
        self.units.entry(unit).or_insert(UnitState::Enabled);
    }
}

/// What every renderer receives: of the site, only what [`shared_key`]
/// hashes (its name, its meshes, its address sets), so that a host's
/// render key covers everything its bundle is made of.
pub(crate) struct HostInput<'a> {
    pub(crate) site_name: &'a str,
    pub(crate) meshes: &'a BTreeMap<String, Mesh>,
    pub(crate) address_sets: &'a BTreeMap<String, Vec<String>>,
    pub(crate) host_name: &'a str,
    pub(crate) host: &'a Host,
    pub(crate) shared: &'a Shared,
}

/// What several hosts' files have in common, rendered once per site rather
/// than once per host: each mesh member's `[Peer]` stanza, which every other
/// member's config repeats (N² stanzas in a full mesh of N).
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Mesh name → member name → its stanza.
    pub(crate) peers: BTreeMap<String, BTreeMap<String, String>>,
}

/// What every host's bundle depends on besides the host itself, hashed:
/// the site's name, its meshes and its address sets (renderers read
/// nothing else of the site).
pub(crate) fn shared_key(site: &Site) -> String {
    let mut h = Sha256::new();
    for part in [
        serde_json::Value::String(site.name.clone()),
        site.root
            .get(&path!["wireguard"])
            .map_or(serde_json::Value::Null, |n| n.to_json()),
        site.root
            .get(&path!["address_sets"])
            .map_or(serde_json::Value::Null, |n| n.to_json()),
    ] {
        h.update(serde_json::to_vec(&part).unwrap_or_default());
        h.update([0]);
    }
    crate::hash::hex(&h.finalize())
}

/// A host's render key: the shared key and the host's own values, hashed.
/// Two compiles that give a host the same key render it the same.
pub(crate) fn host_key(site: &Site, shared: &str, host: &str) -> String {
    let mut h = Sha256::new();
    h.update(shared.as_bytes());
    h.update([0]);
    h.update(host.as_bytes());
    h.update([0]);
    let values = site
        .root
        .get(&path!["hosts", host])
        .map_or(serde_json::Value::Null, |n| n.to_json());
    h.update(serde_json::to_vec(&values).unwrap_or_default());
    crate::hash::hex(&h.finalize())
}

/// The configurations of the meshes' external members, by path under the
/// site's [`EXTERNAL`] directory.
pub(crate) fn render_external(site: &Site) -> Result<BTreeMap<String, String>, RenderError> {
    wireguard::external_configs(site)
}

/// The directory of `out/<site>/` that holds the external members'
/// configurations: no host is named so (host names start with a letter).
pub const EXTERNAL: &str = "_external";

/// Renders what hosts share; [`render_host`] uses it.
pub(crate) fn prepare(site: &Site) -> Result<Shared, RenderError> {
    Ok(Shared {
        peers: wireguard::peer_stanzas(site)?,
    })
}

impl HostInput<'_> {
    /// The first line of every generated file.
    pub(crate) fn header(&self) -> String {
        format!(
            "# site {}, host {}: generated by sitec, do not edit",
            self.site_name, self.host_name
        )
    }
}

/// Renders every artifact of one host.
pub(crate) fn render_host(
    site: &Site,
    shared: &Shared,
    host_name: &str,
) -> Result<HostOutput, RenderError> {
    let host = &site.spec.hosts[host_name];
    let ctx = HostInput {
        site_name: &site.name,
        meshes: &site.spec.wireguard,
        address_sets: &site.spec.address_sets,
        host_name,
        host,
        shared,
    };
    let mut out = HostOutput::default();
    interfaces::render(&ctx, &mut out)?;
    nftables::render(&ctx, &mut out)?;
    wireguard::render(&ctx, &mut out)?;
    samba::render(&ctx, &mut out)?;
    zaino::render(&ctx, &mut out)?;
    nginx::render(&ctx, &mut out)?;
    ssh::render(&ctx, &mut out)?;
    time::render(&ctx, &mut out)?;
    apt::render(&ctx, &mut out)?;
    systemd::render(&ctx, &mut out)?;
    system::render(&ctx, &mut out)?;
    kernel::render(&ctx, &mut out)?;
    pull::render(&ctx, &mut out)?;
    // Last: it encrypts what the others require.
    secrets::render(&ctx, &mut out)?;
    out.files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// The templates, embedded in the binary.
fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_keep_trailing_newline(true);
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.add_filter("toml_str", toml_str);
        for (name, source) in TEMPLATES {
            // Templates are part of the binary; a syntax error in one is a bug
            // that the snapshot tests catch on the first run.
            env.add_template(name, source)
                .unwrap_or_else(|e| panic!("template {name}: {e}"));
        }
        env
    })
}

const TEMPLATES: &[(&str, &str)] = &[
    ("interfaces", include_str!("../../templates/interfaces.j2")),
    (
        "nftables.conf",
        include_str!("../../templates/nftables.conf.j2"),
    ),
    ("wg.conf", include_str!("../../templates/wg.conf.j2")),
    ("wg-peer", include_str!("../../templates/wg-peer.j2")),
    (
        "wg-external",
        include_str!("../../templates/wg-external.j2"),
    ),
    ("smb.conf", include_str!("../../templates/smb.conf.j2")),
    (
        "zindexer.toml",
        include_str!("../../templates/zindexer.toml.j2"),
    ),
    ("nginx.conf", include_str!("../../templates/nginx.conf.j2")),
    (
        "unit.service",
        include_str!("../../templates/unit.service.j2"),
    ),
    (
        "sshd_config",
        include_str!("../../templates/sshd_config.j2"),
    ),
    (
        "authorized_keys",
        include_str!("../../templates/authorized_keys.j2"),
    ),
    (
        "chrony.sources",
        include_str!("../../templates/chrony.sources.j2"),
    ),
    (
        "apt.sources",
        include_str!("../../templates/apt.sources.j2"),
    ),
    (
        "apt.disabled",
        include_str!("../../templates/apt.disabled.j2"),
    ),
    (
        "modules-load.conf",
        include_str!("../../templates/modules-load.conf.j2"),
    ),
    (
        "modprobe.conf",
        include_str!("../../templates/modprobe.conf.j2"),
    ),
    ("grub.cfg", include_str!("../../templates/grub.cfg.j2")),
    (
        "sitec-pull.service",
        include_str!("../../templates/sitec-pull.service.j2"),
    ),
    (
        "sitec-pull.timer",
        include_str!("../../templates/sitec-pull.timer.j2"),
    ),
    (
        "sysctl.conf",
        include_str!("../../templates/sysctl.conf.j2"),
    ),
    (
        "zfs-properties",
        include_str!("../../templates/zfs-properties.j2"),
    ),
];

/// Renders a template with a serializable context.
pub(crate) fn template<S: Serialize>(name: &str, ctx: &S) -> Result<String, RenderError> {
    env()
        .get_template(name)
        .and_then(|t| t.render(ctx))
        .map_err(|e| RenderError::Template {
            name: name.to_string(),
            message: format!("{e:#}"),
        })
}

/// Why a host could not be rendered. Every value a renderer reads passed
/// the schemas and the checks first, so either is a gap in them, reported
/// as `internal::render`.
#[derive(Debug)]
pub(crate) enum RenderError {
    /// A template refused its context (a value it does not expect).
    Template { name: String, message: String },
    /// A value the checks should have refused.
    Unchecked(String),
}

impl std::fmt::Display for RenderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RenderError::Template { name, message } => write!(f, "rendering {name}: {message}"),
            RenderError::Unchecked(what) => f.write_str(what),
        }
    }
}

/// A TOML basic string: JSON's string escapes are valid TOML escapes.
fn toml_str(value: String) -> String {
    serde_json::Value::String(value).to_string()
}
