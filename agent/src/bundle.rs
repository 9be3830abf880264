//! A bundle as the host holds it (a store copy, or a directory `check`
//! is given): its canonical listing and hash, recomputed from its files as
//! the compiler computed them (`sitec_format::listing`), and its manifest.

use std::path::{Path, PathBuf};

use sitec_format::Manifest;

use crate::effects::{Effects, Kind};
use crate::host::{Error, at};

/// A file of a bundle: its path in the bundle (`etc/nginx/nginx.conf`),
/// its permission bits and its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleFile {
    pub path: String,
    pub mode: u32,
    pub bytes: Vec<u8>,
}

/// Every regular file under `dir` but the top `BUNDLE`, by path. Links and
/// other entries are no part of a bundle (the listing counts files only).
pub fn files(fx: &impl Effects, dir: &Path) -> Result<Vec<BundleFile>, Error> {
    let mut out = Vec::new();
    walk(fx, dir, "", &mut out)?;
    out.retain(|f| f.path != "BUNDLE");
    Ok(out)
}

fn walk(
    fx: &impl Effects,
    dir: &Path,
    prefix: &str,
    out: &mut Vec<BundleFile>,
) -> Result<(), Error> {
    for name in fx.list(dir).map_err(at(dir))? {
        let Some(name) = name.to_str().map(str::to_string) else {
            return Err(Error::State {
                path: dir.join(&name),
                why: "a bundle's file names are UTF-8".to_string(),
            });
        };
        let path = dir.join(&name);
        let rel = format!("{prefix}{name}");
        match fx.kind(&path).map_err(at(&path))? {
            Some(Kind::Dir) => walk(fx, &path, &format!("{rel}/"), out)?,
            Some(Kind::File) => out.push(BundleFile {
                mode: fx.mode(&path).map_err(at(&path))?,
                bytes: fx.read(&path).map_err(at(&path))?,
                path: rel,
            }),
            Some(Kind::Link) | None => {}
        }
    }
    Ok(())
}

/// The hash of the bundle in `dir`: the sha256 of its canonical listing.
pub fn hash(fx: &impl Effects, dir: &Path) -> Result<String, Error> {
    let files = files(fx, dir)?;
    Ok(sitec_format::listing::bundle_hash(
        files
            .iter()
            .map(|f| (f.path.as_str(), f.mode, f.bytes.as_slice())),
    ))
}

/// The manifest of the bundle in `dir`.
pub fn manifest(fx: &impl Effects, dir: &Path) -> Result<Manifest, Error> {
    let path: PathBuf = dir.join("manifest.json");
    let bytes = fx.read(&path).map_err(at(&path))?;
    Manifest::from_json(&bytes).map_err(|why| Error::State { path, why })
}

/// The mode a store copy's entry has once sealed: a managed file its
/// install mode less the write bits, the bundle's own files 0444 (an
/// `activate` that older bundles carried 0555), every directory 0555.
pub fn sealed_mode(path: &str, dir: bool, index: &sitec_format::Index) -> u32 {
    if dir || path == "activate" {
        return 0o555;
    }
    match index.files.get(path) {
        Some(f) => f.mode.0 & !0o222,
        None => 0o444,
    }
}

/// Why a bundle's index could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexFault {
    /// It has neither an `index` nor an older sitec's `manifest.json`.
    Missing,
    /// The file at `path` is not an index (or a manifest) sitec writes.
    Bad { path: PathBuf, why: String },
}

impl IndexFault {
    /// The fault in the operator's words, for `dir`.
    pub fn describe(&self, dir: &Path) -> String {
        match self {
            IndexFault::Missing => format!("{} has neither an index nor a manifest", dir.display()),
            IndexFault::Bad { path, why } => format!("{}: {why}", path.display()),
        }
    }
}

/// The index of the bundle in `dir`: its `index`, or for a store copy an
/// older sitec pushed before bundles carried one, what its `manifest.json`
/// (format 1) says.
pub fn index_of(fx: &impl Effects, dir: &Path) -> Result<sitec_format::Index, IndexFault> {
    let path = dir.join("index");
    if let Ok(text) = fx.read(&path) {
        return sitec_format::Index::parse(&String::from_utf8_lossy(&text)).map_err(|e| {
            IndexFault::Bad {
                path,
                why: e.to_string(),
            }
        });
    }
    let path = dir.join("manifest.json");
    let text = fx.read(&path).map_err(|_| IndexFault::Missing)?;
    sitec_format::Index::legacy(&String::from_utf8_lossy(&text))
        .map_err(|why| IndexFault::Bad { path, why })
}

/// Whether the store copy in `dir` still hashes to its `BUNDLE` and is
/// sealed: files are hard-linked across generations and linked from
/// `/etc`, so an edit in place (root ignores the missing write bits)
/// changes the rollback target too.
pub fn intact(fx: &impl Effects, dir: &Path) -> bool {
    let Ok(want) = fx.read(&dir.join("BUNDLE")) else {
        return false;
    };
    let Ok(text) = fx.read(&dir.join("index")) else {
        // A copy an older sitec pushed, never sealed and hashed with the
        // modes its files have.
        return files(fx, dir).is_ok_and(|files| {
            let listing = sitec_format::listing::listing_as_is(
                files
                    .iter()
                    .map(|f| (f.path.as_str(), f.mode, f.bytes.as_slice())),
            );
            sitec_format::sha256_hex(listing.as_bytes()) == String::from_utf8_lossy(&want).trim()
        });
    };
    if hash(fx, dir).ok().as_deref() != Some(String::from_utf8_lossy(&want).trim()) {
        return false;
    }
    let Ok(index) = sitec_format::Index::parse(&String::from_utf8_lossy(&text)) else {
        return false;
    };
    unsealed(fx, dir, &index).is_none()
}

/// The first entry of the store copy in `dir` whose mode is not its
/// sealed one, as `PATH (mode M, sealed S)`.
pub fn unsealed(fx: &impl Effects, dir: &Path, index: &sitec_format::Index) -> Option<String> {
    let top = fx.mode(dir).unwrap_or(0);
    if top != 0o555 {
        return Some(format!(". (mode {top:o}, sealed 0555)"));
    }
    first_unsealed(fx, dir, "", index)
}

fn first_unsealed(
    fx: &impl Effects,
    dir: &Path,
    prefix: &str,
    index: &sitec_format::Index,
) -> Option<String> {
    let Ok(names) = fx.list(dir) else {
        return Some(format!("{prefix}. (unreadable)"));
    };
    for name in names {
        let path = dir.join(&name);
        let rel = format!("{prefix}{}", name.to_string_lossy());
        let (dir_entry, want) = match fx.kind(&path) {
            Ok(Some(Kind::Dir)) => (true, sealed_mode(&rel, true, index)),
            Ok(Some(Kind::File)) => (false, sealed_mode(&rel, false, index)),
            _ => continue,
        };
        let have = fx.mode(&path).unwrap_or(0);
        if have != want {
            return Some(format!("{rel} (mode {have:o}, sealed {want:04o})"));
        }
        if dir_entry && let Some(odd) = first_unsealed(fx, &path, &format!("{rel}/"), index) {
            return Some(odd);
        }
    }
    None
}
