//! Stage 5: a host's rendered files, its manifest and the activate script
//! become a bundle; the canonical listing of the bundle gives its hash.
//!
//! Canonical listing (docs/host-protocol.md): for every regular file except `BUNDLE`,
//! sorted by path bytewise, `<mode, 4 octal digits> <sha256 hex> <path>\n`.
//! The bundle hash is the sha256 of the listing.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::model::Host;
use crate::render::HostOutput;

/// The activation script, the same in every bundle.
pub(crate) const ACTIVATE: &str = include_str!("../host/activate");

/// A file of a bundle: mode and bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleFile {
    pub mode: u32,
    pub content: Vec<u8>,
}

/// One host's bundle, ready to write to `out/<site>/<host>/`.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub host: String,
    /// Every file including `BUNDLE`, by path relative to the bundle.
    pub files: BTreeMap<String, BundleFile>,
    pub hash: String,
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lowercase hex of a digest.
pub(crate) fn hex(digest: &[u8]) -> String {
    let mut s = String::with_capacity(2 * digest.len());
    for b in digest {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// The canonical listing of files (which must not include `BUNDLE`).
pub(crate) fn listing<'a>(files: impl IntoIterator<Item = (&'a str, u32, &'a [u8])>) -> String {
    let mut lines: Vec<(&str, String)> = files
        .into_iter()
        .map(|(path, mode, content)| (path, format!("{mode:04o} {} {path}\n", sha256_hex(content))))
        .collect();
    lines.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    lines.into_iter().map(|(_, l)| l).collect()
}

/// Assembles a host's bundle.
pub(crate) fn build(site: &str, host_name: &str, host: &Host, out: HostOutput) -> Bundle {
    let mut files = BTreeMap::new();
    let mut manifest_files = serde_json::Map::new();
    for f in &out.files {
        manifest_files.insert(
            f.path.clone(),
            serde_json::json!({
                "actions": f.actions,
                "check": f.check,
                "mode": format!("{:04o}", f.mode),
                "network": f.network,
                "sha256": sha256_hex(f.content.as_bytes()),
            }),
        );
    }
    let units: serde_json::Map<String, serde_json::Value> = out
        .units
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().into()))
        .collect();
    let manifest = serde_json::json!({
        "deploy": {
            "address": host.deploy_address(),
            "port": host.deploy.port,
            "user": host.deploy.user,
        },
        "files": manifest_files,
        "format": 1,
        "host": host_name,
        "roles": host.roles,
        "secrets": out.secrets.iter().collect::<Vec<_>>(),
        "site": site,
        "units": units,
    });
    let mut manifest_text =
        serde_json::to_string_pretty(&sorted(manifest)).unwrap_or_else(|_| String::from("{}"));
    manifest_text.push('\n');

    for f in out.files {
        files.insert(
            f.path,
            BundleFile {
                mode: f.mode,
                content: f.content.into_bytes(),
            },
        );
    }
    files.insert(
        "manifest.json".into(),
        BundleFile {
            mode: 0o644,
            content: manifest_text.into_bytes(),
        },
    );
    files.insert(
        "activate".into(),
        BundleFile {
            mode: 0o755,
            content: ACTIVATE.as_bytes().to_vec(),
        },
    );
    let hash = sha256_hex(
        listing(
            files
                .iter()
                .map(|(p, f)| (p.as_str(), f.mode, f.content.as_slice())),
        )
        .as_bytes(),
    );
    files.insert(
        "BUNDLE".into(),
        BundleFile {
            mode: 0o644,
            content: format!("{hash}\n").into_bytes(),
        },
    );
    Bundle {
        host: host_name.to_string(),
        files,
        hash,
    }
}

/// Rebuilds every object with its keys in sorted order, whatever map
/// implementation serde_json was built with.
fn sorted(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(map) => {
            let ordered: BTreeMap<String, serde_json::Value> =
                map.into_iter().map(|(k, v)| (k, sorted(v))).collect();
            serde_json::Value::Object(ordered.into_iter().collect())
        }
        serde_json::Value::Array(items) => items.into_iter().map(sorted).collect(),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_is_sorted_bytewise_with_four_digit_modes() {
        let l = listing([
            ("b", 0o600, &b"x"[..]),
            ("B", 0o755, &b""[..]),
            ("a/c", 0o644, &b"y"[..]),
        ]);
        let paths: Vec<&str> = l.lines().map(|l| l.rsplit(' ').next().unwrap()).collect();
        assert_eq!(paths, ["B", "a/c", "b"]);
        assert!(l.starts_with(
            "0755 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 B\n"
        ));
        assert!(l.ends_with(" b\n"));
        assert!(l.lines().nth(2).unwrap().starts_with("0600 "));
    }
}
