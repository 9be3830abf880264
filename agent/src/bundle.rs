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
