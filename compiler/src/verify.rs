//! `sitec verify DIR`: recompute a bundle's hash from the files on disk,
//! exactly as coreutils would (find, stat, sha256sum, sort), and check that
//! its index says what its manifest says.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use walkdir::WalkDir;

use crate::bundle::listing;
use crate::bundle::manifest::Manifest;
use crate::hash::sha256_hex;

/// The result of verifying a bundle directory.
#[derive(Debug)]
pub struct Verified {
    pub recorded: Option<String>,
    pub computed: String,
    /// Whether `index` says what `manifest.json` says (the scripts on the
    /// host obey the index, reviewers read the manifest): `false` when it
    /// is missing, or the manifest does not parse, or they differ.
    pub index_agrees: bool,
}

impl Verified {
    pub fn hash_ok(&self) -> bool {
        self.recorded.as_deref() == Some(self.computed.as_str())
    }

    pub fn ok(&self) -> bool {
        self.hash_ok() && self.index_agrees
    }
}

pub fn verify(dir: &Path) -> std::io::Result<Verified> {
    let mut files = Vec::new();
    for entry in WalkDir::new(dir) {
        let entry = entry.map_err(std::io::Error::other)?;
        let rel = entry
            .path()
            .strip_prefix(dir)
            .map_err(std::io::Error::other)?
            .to_string_lossy()
            .into_owned();
        // The hash covers regular files only: anything else would ride
        // along unhashed (a symlink to /etc/shadow, say).
        if entry.file_type().is_dir() {
            continue;
        }
        if !entry.file_type().is_file() {
            return Err(std::io::Error::other(format!(
                "{rel} is not a regular file or a directory: a bundle holds only those"
            )));
        }
        if rel == "BUNDLE" {
            continue;
        }
        let mode = entry
            .metadata()
            .map_err(std::io::Error::other)?
            .permissions()
            .mode()
            & 0o7777;
        files.push((rel, mode, fs::read(entry.path())?));
    }
    let computed = sha256_hex(
        listing(files.iter().map(|(p, m, c)| (p.as_str(), *m, c.as_slice()))).as_bytes(),
    );
    let recorded = fs::read_to_string(dir.join("BUNDLE"))
        .ok()
        .map(|s| s.trim().to_string());
    let index_agrees = match (
        fs::read(dir.join("manifest.json")),
        fs::read(dir.join("index")),
    ) {
        (Ok(manifest), Ok(index)) => {
            Manifest::from_json(&manifest).is_ok_and(|m| m.index().into_bytes() == index)
        }
        _ => false,
    };
    Ok(Verified {
        recorded,
        computed,
        index_agrees,
    })
}
