//! A generation as its index says, typed: a bundle's (`sitec_format::Index`)
//! or generation 0's, the host as sitec found it (`backup/index`).
//!
//! Generation 0's index has four kinds of record, one per thing sitec
//! first changed, each written once, before the change:
//!
//! ```text
//! f PATH SHA256 MODE     a managed path as sitec found it ("-" "-": nothing there)
//! x PATH SHA256          a secret as sitec found it ("-": none)
//! u UNIT STATE           a unit's state (`systemctl is-enabled`: enabled, static, not-found, ...)
//! k KEY VALUE            a sysctl key's value
//! ```

use std::collections::BTreeMap;

use sitec_format::manifest::IndexError;
use sitec_format::{Action, Index};

/// What sitec found at a managed path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub sha256: String,
    pub mode: u32,
}

/// Generation 0: the host as sitec found it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Backup {
    /// Each managed path: what was there, or `None`.
    pub files: BTreeMap<String, Option<Found>>,
    /// Each secret: its sha256, or `None`.
    pub secrets: BTreeMap<String, Option<String>>,
    /// Each unit's state, as `systemctl is-enabled` said it.
    pub units: BTreeMap<String, String>,
    /// Each sysctl key's value.
    pub sysctl: BTreeMap<String, String>,
}

impl Backup {
    pub fn parse(text: &str) -> Result<Backup, IndexError> {
        let mut b = Backup::default();
        for (i, line) in text.lines().enumerate() {
            let fields: Vec<&str> = line.split('\t').collect();
            let err = |why: &str| IndexError {
                line: i + 1,
                why: why.to_string(),
            };
            let dash = |s: &str| (s != "-").then(|| s.to_string());
            match fields.as_slice() {
                ["f", path, ..] if !sitec_format::manifest::managed_path(path) => {
                    return Err(err("a managed path is relative, without . or .."));
                }
                ["f", path, "-", ..] => {
                    b.files.insert(path.to_string(), None);
                }
                ["f", path, sha, mode, ..] => {
                    let mode =
                        u32::from_str_radix(mode, 8).map_err(|_| err("a file's mode is octal"))?;
                    let found = Found {
                        sha256: sha.to_string(),
                        mode,
                    };
                    b.files.insert(path.to_string(), Some(found));
                }
                ["x", path, sha, ..] => {
                    b.secrets.insert(path.to_string(), dash(sha));
                }
                ["u", unit, state, ..] => {
                    b.units.insert(unit.to_string(), state.to_string());
                }
                ["k", key, value, ..] => {
                    b.sysctl.insert(key.to_string(), value.to_string());
                }
                ["f" | "x" | "u" | "k", ..] => return Err(err("a record lacks a field")),
                _ => {}
            }
        }
        Ok(b)
    }
}

/// A managed file of a generation, as a transition compares it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileView<'a> {
    /// Its sha256; `None` where generation 0 found nothing.
    pub sha256: Option<&'a str>,
    /// What runs when it changes (generation 0's files ask for nothing:
    /// the generation left names what its files need).
    pub actions: &'a [Action],
    pub network: bool,
}

/// One generation, as the transitions decide on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Generation {
    /// Generation 0.
    Backup(Backup),
    /// A bundle's generation.
    Bundle(Index),
}

impl Generation {
    /// Its managed files, by path.
    pub fn files(&self) -> Box<dyn Iterator<Item = (&str, FileView<'_>)> + '_> {
        match self {
            Generation::Backup(b) => Box::new(b.files.iter().map(|(p, f)| {
                let view = FileView {
                    sha256: f.as_ref().map(|f| f.sha256.as_str()),
                    actions: &[],
                    network: false,
                };
                (p.as_str(), view)
            })),
            Generation::Bundle(i) => Box::new(i.files.iter().map(|(p, f)| {
                let view = FileView {
                    sha256: Some(f.sha256.as_str()),
                    actions: &f.actions,
                    network: f.network,
                };
                (p.as_str(), view)
            })),
        }
    }

    pub fn file(&self, path: &str) -> Option<FileView<'_>> {
        match self {
            Generation::Backup(b) => b.files.get(path).map(|f| FileView {
                sha256: f.as_ref().map(|f| f.sha256.as_str()),
                actions: &[],
                network: false,
            }),
            Generation::Bundle(i) => i.files.get(path).map(|f| FileView {
                sha256: Some(f.sha256.as_str()),
                actions: &f.actions,
                network: f.network,
            }),
        }
    }

    /// The secrets it requires, each with the file that reads it
    /// (generation 0 requires none).
    pub fn secrets(&self) -> Vec<(&str, &str)> {
        match self {
            Generation::Backup(_) => Vec::new(),
            Generation::Bundle(i) => i
                .secrets
                .iter()
                .map(|s| (s.path.as_str(), s.read_by.as_str()))
                .collect(),
        }
    }

    /// The unit states it names: a bundle's as it sets them, generation
    /// 0's as the host had them (`static`, `not-found`, ...).
    pub fn units(&self) -> BTreeMap<&str, &str> {
        match self {
            Generation::Backup(b) => b
                .units
                .iter()
                .map(|(u, s)| (u.as_str(), s.as_str()))
                .collect(),
            Generation::Bundle(i) => i
                .units
                .iter()
                .map(|(u, s)| (u.as_str(), s.as_str()))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_zero_reads_each_kind_of_record() {
        let b = Backup::parse(
            "f\tetc/a\tab12\t644\nf\tetc/b\t-\t-\nx\t/etc/k\tcd\nx\t/etc/l\t-\nu\tnginx.service\tstatic\nk\tnet.ipv4.ip_forward\t0\n",
        )
        .unwrap();
        assert_eq!(
            b.files["etc/a"],
            Some(Found {
                sha256: "ab12".into(),
                mode: 0o644
            })
        );
        assert_eq!(b.files["etc/b"], None);
        assert_eq!(b.secrets["/etc/k"].as_deref(), Some("cd"));
        assert_eq!(b.secrets["/etc/l"], None);
        assert_eq!(b.units["nginx.service"], "static");
        assert_eq!(b.sysctl["net.ipv4.ip_forward"], "0");
        assert_eq!(Backup::parse("u\tx\n").unwrap_err().line, 1);
        assert_eq!(
            Backup::parse("f\tetc/../../root/x\tab\t644\n")
                .unwrap_err()
                .why,
            "a managed path is relative, without . or .."
        );
    }
}
