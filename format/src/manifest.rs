//! The bundle's contract with the host: `manifest.json` for people and
//! tools, and `index`, the same facts as tab-separated lines for the shell
//! scripts (`push` on the operator's machine, and `activate` on the host while it is
//! sh), which
//! read it with `awk -F '\t'` instead of parsing JSON.
//!
//! Index records, one per line, fields separated by a tab:
//!
//! ```text
//! d KEY VALUE                                   deploy target: address, port, user;
//!                                               boot_confirm_timeout (seconds)
//! h KEY VALUE                                   what the host runs: release (debian12,
//!                                               debian13), ifupdown (classic, ifupdown2)
//! n PROGRAM VERSION WHY                         a program the host needs at least at
//!                                               VERSION (MAJOR.MINOR), and what for
//! p KEY VALUE                                   pull mode: site, url, interval,
//!                                               confirm_timeout (seconds)
//! p signer NAME KEY                             a key whose releases the host accepts
//!                                               (type and base64, no comment)
//! f PATH SHA256 MODE NETWORK CHECK ACTIONS      a managed file (CHECK "-" when none,
//!                                               ACTIONS space-separated)
//! u UNIT STATE                                  a unit state: enabled, disabled, masked
//! s PATH READ-BY UID GID AGE                    a required secret, the file reading it, its owner,
//!                                               the bundle file holding it encrypted ("-" when none)
//! o RANK KIND                                   activation order of an action kind
//! r KIND                                        an action kind whose effect waits for
//!                                               the next boot
//! b KIND                                        an action kind whose files the boot
//!                                               reads (their boot is confirmed)
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::action::{Action, Need, Secret, Validator};
use crate::system::{Ifupdown, Release, Role, UnitState};

/// The manifest format this sitec writes (3: bundles carry no agent).
pub const FORMAT: u32 = 3;

/// The host agent protocol this sitec's bundles need: what the agent must
/// understand of a bundle and of the state directory to apply it. A host
/// agent refuses a bundle that names a protocol newer than its own
/// (docs/host-protocol.md, "The agent"). Raised when either changes
/// meaning; bundles from before the agent travelled apart name none (0).
pub const AGENT_PROTOCOL: u32 = 1;

/// `manifest.json`. Fields are declared in sorted order and maps are
/// `BTreeMap`s, so the JSON has sorted keys without a post-pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The agent protocol the bundle needs (`AGENT_PROTOCOL`).
    #[serde(default)]
    pub agent_protocol: u32,
    pub deploy: Deploy,
    pub files: BTreeMap<String, ManifestFile>,
    pub format: u32,
    pub host: String,
    /// Programs the host must have at least at a version.
    #[serde(default)]
    pub needs: Vec<Need>,
    pub roles: Vec<Role>,
    pub secrets: Vec<Secret>,
    pub site: String,
    /// What the host runs, as the site says; `activate check` refuses the
    /// bundle on a host that runs something else.
    #[serde(default)]
    pub system: System,
    pub units: BTreeMap<String, UnitState>,
}

/// The host's Debian release and ifupdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct System {
    pub ifupdown: Ifupdown,
    pub release: Release,
}

/// Where `push` reaches the host, and how long a boot on changed kernel
/// files awaits the operator's confirmation (docs/host-protocol.md,
/// "Boots on new kernel files").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deploy {
    pub address: String,
    pub boot_confirm_timeout: u32,
    pub port: u16,
    /// Pull mode; absent from the manifest when the host has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull: Option<Pull>,
    pub user: String,
}

/// Where and how the host pulls its releases (docs/host-protocol.md,
/// "Pull mode").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pull {
    pub confirm_timeout: u32,
    pub interval: u32,
    /// Name → ssh public key (type and base64; a comment is dropped).
    pub signers: BTreeMap<String, String>,
    pub url: String,
}

/// A managed file: what activation does with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestFile {
    pub actions: Vec<Action>,
    /// Which daemon's parser validates the file on the host
    /// (`activate check`); `check` in the bundle format.
    #[serde(rename = "check")]
    pub validator: Option<Validator>,
    /// The mode it is installed with on the host (its store copy has this
    /// mode less the write bits). out/ and the bundle hash know only what
    /// git keeps: whether it is executable.
    pub mode: Mode,
    /// A change can cut the operator off: confirm-or-rollback is armed.
    pub network: bool,
    pub sha256: String,
}

/// A file mode, written as four octal digits ("0600").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Mode(pub u32);

impl From<Mode> for String {
    fn from(m: Mode) -> String {
        format!("{:04o}", m.0)
    }
}

impl TryFrom<String> for Mode {
    type Error = String;

    fn try_from(s: String) -> Result<Mode, String> {
        match u32::from_str_radix(&s, 8) {
            // No setuid, setgid or sticky bit: a store file is never one.
            Ok(m) if s.len() == 4 && m <= 0o777 => Ok(Mode(m)),
            _ => Err(format!("'{s}' is not a file mode (0000 to 0777)")),
        }
    }
}

impl Manifest {
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self)
            .expect("a manifest of strings, numbers and maps serializes");
        text.push('\n');
        text
    }

    pub fn from_json(bytes: &[u8]) -> Result<Manifest, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }

    /// The line index (see the module comment), generated from the manifest.
    pub fn index(&self) -> String {
        let mut s = String::new();
        let d = &self.deploy;
        let _ = writeln!(s, "d\taddress\t{}", d.address);
        let _ = writeln!(s, "d\tboot_confirm_timeout\t{}", d.boot_confirm_timeout);
        let _ = writeln!(s, "d\tport\t{}", d.port);
        let _ = writeln!(s, "d\tuser\t{}", d.user);
        let _ = writeln!(s, "h\tagent_protocol\t{}", self.agent_protocol);
        let _ = writeln!(s, "h\trelease\t{}", self.system.release.as_str());
        let _ = writeln!(s, "h\tifupdown\t{}", self.system.ifupdown.as_str());
        for need in &self.needs {
            let _ = writeln!(
                s,
                "n\t{}\t{}\t{}",
                need.program.as_str(),
                need.version,
                need.why
            );
        }
        if let Some(p) = &d.pull {
            // A release names its site: the host takes none of another's.
            let _ = writeln!(s, "p\tsite\t{}", self.site);
            let _ = writeln!(s, "p\turl\t{}", p.url);
            let _ = writeln!(s, "p\tinterval\t{}", p.interval);
            let _ = writeln!(s, "p\tconfirm_timeout\t{}", p.confirm_timeout);
            for (name, key) in &p.signers {
                let _ = writeln!(s, "p\tsigner\t{name}\t{key}");
            }
        }
        for (path, f) in &self.files {
            let actions: Vec<String> = f.actions.iter().map(Action::to_string).collect();
            let _ = writeln!(
                s,
                "f\t{path}\t{}\t{}\t{}\t{}\t{}",
                f.sha256,
                String::from(f.mode),
                f.network,
                f.validator.map_or("-", Validator::as_str),
                actions.join(" ")
            );
        }
        for (unit, state) in &self.units {
            let _ = writeln!(s, "u\t{unit}\t{}", state.as_str());
        }
        for secret in &self.secrets {
            let _ = writeln!(
                s,
                "s\t{}\t{}\t{}\t{}\t{}",
                secret.path,
                secret.read_by,
                secret.uid,
                secret.gid,
                secret.age.as_deref().unwrap_or("-")
            );
        }
        for (kind, rank) in Action::ORDER {
            let _ = writeln!(s, "o\t{rank}\t{kind}");
        }
        for kind in Action::REBOOT {
            let _ = writeln!(s, "r\t{kind}");
        }
        for kind in Action::BOOT {
            let _ = writeln!(s, "b\t{kind}");
        }
        s
    }
}

/// Whether `p` is a managed path as an index writes it: relative, of
/// plain components (no `.`, `..` or empty one), so that it cannot lead
/// out of `/` or of a store copy.
pub fn managed_path(p: &str) -> bool {
    !p.is_empty()
        && !p.starts_with('/')
        && p.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
}

/// A bundle's `index` read back: what the host agent needs of a bundle,
/// typed as the manifest it was generated from. Records of a kind it does
/// not know are left alone (a newer sitec may add some; the agent protocol
/// says when it must understand them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Index {
    /// `d` records: the deploy target.
    pub deploy: BTreeMap<String, String>,
    /// `h` records: the agent protocol, release and ifupdown.
    pub host: BTreeMap<String, String>,
    /// `f` records: the managed files, by path (`etc/...`).
    pub files: BTreeMap<String, IndexFile>,
    /// `u` records: each unit's state.
    pub units: BTreeMap<String, UnitState>,
    /// `s` records: the secrets the bundle requires.
    pub secrets: Vec<IndexSecret>,
    /// `n` records: programs the host needs at least at a version.
    pub needs: Vec<Need>,
    /// `p` records but the signers: pull mode's site, url, interval,
    /// confirm_timeout.
    pub pull: BTreeMap<String, String>,
    /// `p signer` records: name -> key.
    pub signers: BTreeMap<String, String>,
}

/// A managed file as the index has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFile {
    pub sha256: String,
    pub mode: Mode,
    pub network: bool,
    pub validator: Option<Validator>,
    pub actions: Vec<Action>,
}

/// A required secret as the index has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexSecret {
    pub path: String,
    pub read_by: String,
    pub uid: u32,
    pub gid: u32,
    pub age: Option<String>,
}

/// An index line that is not what [`Manifest::index`] writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexError {
    pub line: usize,
    pub why: String,
}

impl std::fmt::Display for IndexError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.why)
    }
}

impl Index {
    /// The facts of `manifest` that its index carries.
    pub fn of(manifest: &Manifest) -> Index {
        Index::parse(&manifest.index()).expect("an index sitec writes reads back")
    }

    /// The agent protocol the bundle needs (0: it names none).
    pub fn agent_protocol(&self) -> Result<u32, String> {
        match self.host.get("agent_protocol") {
            None => Ok(0),
            Some(v) if !v.is_empty() && v.len() <= 8 && v.bytes().all(|b| b.is_ascii_digit()) => {
                Ok(v.parse().expect("at most 8 digits"))
            }
            Some(v) => Err(format!("'{v}' is no protocol number")),
        }
    }

    /// The index of a bundle an older sitec wrote, before bundles carried
    /// one (manifest format 1): what its `manifest.json` says, so that a
    /// host can still go back to, and from, such a generation. Its secrets
    /// name no reader and belong to root; it names no agent protocol.
    pub fn legacy(manifest_json: &str) -> Result<Index, String> {
        use serde_json::Value;
        let v: Value = serde_json::from_str(manifest_json)
            .map_err(|e| format!("manifest.json is not JSON: {e}"))?;
        let obj = |key: &str| v.get(key).and_then(Value::as_object);
        let text = |v: &Value, what: &str| {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("{what} is not a string"))
        };
        let mut lines = String::new();
        for (key, value) in obj("deploy").into_iter().flatten() {
            let value = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let _ = writeln!(lines, "d\t{key}\t{value}");
        }
        for (path, file) in obj("files").into_iter().flatten() {
            let field = |k: &str| file.get(k).unwrap_or(&Value::Null);
            let check = match field("check") {
                Value::Null => "-".to_string(),
                c => text(c, &format!("{path}: check"))?,
            };
            let actions = field("actions")
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| text(a, &format!("{path}: an action")))
                .collect::<Result<Vec<_>, _>>()?;
            let network = field("network")
                .as_bool()
                .ok_or_else(|| format!("{path}: network is not true or false"))?;
            let _ = writeln!(
                lines,
                "f\t{path}\t{}\t{}\t{network}\t{check}\t{}",
                text(field("sha256"), &format!("{path}: sha256"))?,
                text(field("mode"), &format!("{path}: mode"))?,
                actions.join(" ")
            );
        }
        for (unit, state) in obj("units").into_iter().flatten() {
            let _ = writeln!(lines, "u\t{unit}\t{}", text(state, unit)?);
        }
        for secret in v
            .get("secrets")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let path = text(
                secret.get("path").unwrap_or(&Value::Null),
                "a secret's path",
            )?;
            let _ = writeln!(lines, "s\t{path}\t-\t0\t0\t-");
        }
        Index::parse(&lines).map_err(|e| e.why)
    }

    pub fn parse(text: &str) -> Result<Index, IndexError> {
        let mut index = Index::default();
        for (i, line) in text.lines().enumerate() {
            let err = |why: String| IndexError { line: i + 1, why };
            let fields: Vec<&str> = line.split('\t').collect();
            let want = |n: usize| {
                if fields.len() < n {
                    Err(err(format!("a {} record has {n} fields", fields[0])))
                } else {
                    Ok(())
                }
            };
            match fields[0] {
                "d" => {
                    want(3)?;
                    index.deploy.insert(fields[1].into(), fields[2].into());
                }
                "h" => {
                    want(3)?;
                    index.host.insert(fields[1].into(), fields[2].into());
                }
                "f" => {
                    want(7)?;
                    let mode = Mode::try_from(fields[3].to_string()).map_err(err)?;
                    let network = match fields[4] {
                        "true" => true,
                        "false" => false,
                        other => {
                            return Err(err(format!("network is true or false, not '{other}'")));
                        }
                    };
                    let validator = match fields[5] {
                        "-" => None,
                        v => Some(
                            serde_json::from_value(serde_json::Value::String(v.into()))
                                .map_err(|_| err(format!("no validator '{v}'")))?,
                        ),
                    };
                    let actions = fields[6]
                        .split(' ')
                        .filter(|a| !a.is_empty())
                        .map(|a| Action::try_from(a.to_string()))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(err)?;
                    let file = IndexFile {
                        sha256: fields[2].into(),
                        mode,
                        network,
                        validator,
                        actions,
                    };
                    index.files.insert(fields[1].into(), file);
                }
                "n" => {
                    want(4)?;
                    let program =
                        serde_json::from_value(serde_json::Value::String(fields[1].into()))
                            .map_err(|_| err(format!("no program '{}'", fields[1])))?;
                    index.needs.push(Need {
                        program,
                        version: fields[2].into(),
                        why: fields[3].into(),
                    });
                }
                "p" if fields.get(1) == Some(&"signer") => {
                    want(4)?;
                    index.signers.insert(fields[2].into(), fields[3].into());
                }
                "p" => {
                    want(3)?;
                    index.pull.insert(fields[1].into(), fields[2].into());
                }
                "u" => {
                    want(3)?;
                    let state = serde_json::from_value(serde_json::Value::String(fields[2].into()))
                        .map_err(|_| err(format!("no unit state '{}'", fields[2])))?;
                    index.units.insert(fields[1].into(), state);
                }
                "s" => {
                    want(6)?;
                    let id = |v: &str| {
                        v.parse::<u32>()
                            .map_err(|_| err(format!("'{v}' is no user or group id")))
                    };
                    index.secrets.push(IndexSecret {
                        path: fields[1].into(),
                        read_by: fields[2].into(),
                        uid: id(fields[3])?,
                        gid: id(fields[4])?,
                        age: (fields[5] != "-").then(|| fields[5].to_string()),
                    });
                }
                _ => {}
            }
        }
        Ok(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            deploy: Deploy {
                address: "192.0.2.1".into(),
                boot_confirm_timeout: 600,
                port: 22,
                pull: None,
                user: "root".into(),
            },
            files: [(
                "etc/wireguard/wg0.conf".to_string(),
                ManifestFile {
                    actions: vec![Action::WgSync("wg0".into())],
                    validator: Some(Validator::Wg),
                    mode: Mode(0o600),
                    network: true,
                    sha256: "ab".into(),
                },
            )]
            .into(),
            agent_protocol: AGENT_PROTOCOL,
            format: FORMAT,
            host: "h".into(),
            needs: vec![Need {
                program: crate::action::Program::Nginx,
                version: "1.25".into(),
                why: "HTTP/3 (listen ... quic)".into(),
            }],
            roles: vec![],
            secrets: vec![Secret {
                age: None,
                path: "/etc/wireguard/wg0.key".into(),
                read_by: "etc/wireguard/wg0.conf".into(),
                used_by: "wireguard wg0 private key".into(),
                uid: 0,
                gid: 0,
            }],
            site: "s".into(),
            system: System {
                ifupdown: Ifupdown::Ifupdown2,
                release: Release::Debian13,
            },
            units: [("nginx.service".to_string(), UnitState::Masked)].into(),
        }
    }

    #[test]
    fn the_manifest_reads_back_as_written_with_sorted_keys() {
        let m = manifest();
        let json = m.to_json();
        assert_eq!(Manifest::from_json(json.as_bytes()).unwrap(), m);
        let keys: Vec<&str> = json
            .lines()
            .filter(|l| l.starts_with("  \""))
            .map(|l| l.trim().split('"').nth(1).unwrap())
            .collect();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        assert_eq!(keys, sorted);
        assert!(json.contains("\"mode\": \"0600\""), "{json}");
        assert!(json.contains("\"wg-sync:wg0\""), "{json}");
    }

    #[test]
    fn the_index_has_one_record_per_fact_and_the_action_order() {
        let index = manifest().index();
        assert!(index.contains("f\tetc/wireguard/wg0.conf\tab\t0600\ttrue\twg\twg-sync:wg0\n"));
        assert!(index.contains("u\tnginx.service\tmasked\n"));
        assert!(index.contains("s\t/etc/wireguard/wg0.key\tetc/wireguard/wg0.conf\t0\t0\t-\n"));
        assert!(index.contains("d\taddress\t192.0.2.1\n"));
        assert!(index.contains("o\t1\tdaemon-reload\no\t2\tnft-load\n"));
        assert!(
            index.contains("h\tagent_protocol\t1\nh\trelease\tdebian13\nh\tifupdown\tifupdown2\n")
        );
        assert!(index.contains("n\tnginx\t1.25\tHTTP/3 (listen ... quic)\n"));
    }

    #[test]
    fn the_index_reads_back_as_the_manifest_says() {
        let m = manifest();
        let index = Index::parse(&m.index()).unwrap();
        assert_eq!(index.agent_protocol(), Ok(AGENT_PROTOCOL));
        let f = &index.files["etc/wireguard/wg0.conf"];
        assert_eq!(f.actions, [Action::WgSync("wg0".into())]);
        assert_eq!(
            (f.mode, f.network, f.validator),
            (Mode(0o600), true, Some(Validator::Wg))
        );
        assert_eq!(index.units["nginx.service"], UnitState::Masked);
        assert_eq!(index.secrets[0].read_by, "etc/wireguard/wg0.conf");
        assert_eq!(index.secrets[0].age, None);
        assert_eq!(index.host["release"], "debian13");
        assert_eq!(index.deploy["port"], "22");
        assert_eq!(index.needs[0].version, "1.25");
        assert!(index.pull.is_empty() && index.signers.is_empty());
        let e = Index::parse("d\tport\t22\nf\tetc/a\tab\t0644\tmaybe\t-\t\n").unwrap_err();
        assert_eq!(
            e,
            IndexError {
                line: 2,
                why: "network is true or false, not 'maybe'".into()
            }
        );
        assert_eq!(
            Index::parse("f\tetc/a\tab\t0644\tfalse\t-\tformat-disk\n")
                .unwrap_err()
                .why,
            "unknown action 'format-disk'"
        );
        assert!(Index::parse("z\tsomething new\n").unwrap().files.is_empty());
        for bad in ["etc/../../x", "/etc/x", "etc//x", "./etc/x", ""] {
            assert!(!managed_path(bad), "{bad}");
        }
        assert!(managed_path("etc/wireguard/wg0.conf"));
    }

    #[test]
    fn actions_parse_back_and_unknown_ones_are_refused() {
        for a in [
            Action::DaemonReload,
            Action::WgSync("wg0".into()),
            Action::Restart("a.service".into()),
        ] {
            assert_eq!(Action::try_from(a.to_string()), Ok(a));
        }
        assert_eq!(
            Action::try_from("restart:".to_string()),
            Err("unknown action 'restart:'".to_string())
        );
        assert_eq!(
            Action::try_from("format-disk".to_string()),
            Err("unknown action 'format-disk'".to_string())
        );
        for bad in ["600", "4755"] {
            assert_eq!(
                Mode::try_from(bad.to_string()),
                Err(format!("'{bad}' is not a file mode (0000 to 0777)"))
            );
        }
    }

    /// A format-1 manifest (sitec before bundles carried an index), as
    /// such a sitec wrote it.
    const FORMAT_1: &str = r#"{
  "deploy": {
    "address": "10.0.200.13",
    "port": 22,
    "user": "root"
  },
  "files": {
    "etc/sitec/zfs-properties": {
      "actions": [
        "zfs-set"
      ],
      "check": null,
      "mode": "0644",
      "network": false,
      "sha256": "76fe"
    },
    "etc/wireguard/wg0.conf": {
      "actions": [
        "wg-sync:wg0"
      ],
      "check": "wg",
      "mode": "0600",
      "network": true,
      "sha256": "e13a"
    }
  },
  "format": 1,
  "host": "nas",
  "roles": [
    "fileserver"
  ],
  "secrets": [
    {
      "path": "/etc/wireguard/wg0.key",
      "used_by": "wireguard wg0 private key"
    }
  ],
  "site": "homelab",
  "units": {
    "nftables.service": "enabled"
  }
}
"#;

    #[test]
    fn a_format_1_manifest_reads_as_its_index() {
        let index = Index::legacy(FORMAT_1).unwrap();
        assert_eq!(index.deploy["address"], "10.0.200.13");
        assert_eq!(index.deploy["port"], "22");
        assert_eq!(index.agent_protocol(), Ok(0));
        assert_eq!(
            index.files["etc/wireguard/wg0.conf"],
            IndexFile {
                sha256: "e13a".into(),
                mode: Mode(0o600),
                network: true,
                validator: Some(Validator::Wg),
                actions: vec![Action::WgSync("wg0".into())],
            }
        );
        let zfs = &index.files["etc/sitec/zfs-properties"];
        assert_eq!((zfs.validator.as_ref(), zfs.network), (None, false));
        assert_eq!(index.units["nftables.service"], UnitState::Enabled);
        assert_eq!(
            index.secrets,
            vec![IndexSecret {
                path: "/etc/wireguard/wg0.key".into(),
                read_by: "-".into(),
                uid: 0,
                gid: 0,
                age: None,
            }]
        );
    }

    #[test]
    fn a_manifest_that_is_not_format_1_is_refused_with_why() {
        assert!(
            Index::legacy("{")
                .unwrap_err()
                .starts_with("manifest.json is not JSON")
        );
        let bad = FORMAT_1.replace("\"network\": true", "\"network\": 1");
        assert_eq!(
            Index::legacy(&bad).unwrap_err(),
            "etc/wireguard/wg0.conf: network is not true or false"
        );
        let bad = FORMAT_1.replace("wg-sync:wg0", "format-disk");
        assert_eq!(
            Index::legacy(&bad).unwrap_err(),
            "unknown action 'format-disk'"
        );
    }
}
