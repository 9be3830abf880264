//! What the host does about a changed file: the actions it runs and their
//! order, the daemon's own parser that validates it, the secrets it reads,
//! and the programs it needs at a version.

use serde::{Deserialize, Serialize};

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
    pub fn as_str(self) -> &'static str {
        match self {
            Program::Nginx => "nginx",
        }
    }
}
