//! Stage 6: the only stage that touches `out/`. A site is written to a
//! temporary directory beside its target and renamed into place, so `out/`
//! never holds a half-written site; hosts that no longer exist disappear with
//! the old directory. `--check` compares instead of writing.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use walkdir::WalkDir;

use crate::bundle::{Bundle, BundleFile};
use crate::plan::BaseSite;

/// Replaces `out_dir/<site>` with the given bundles.
pub fn write_site(out_dir: &Path, site: &str, bundles: &[Bundle]) -> io::Result<()> {
    fs::create_dir_all(out_dir)?;
    let target = out_dir.join(site);
    let tmp = out_dir.join(format!(".{site}.tmp"));
    let old = out_dir.join(format!(".{site}.old"));
    for leftover in [&tmp, &old] {
        if leftover.exists() {
            fs::remove_dir_all(leftover)?;
        }
    }
    for b in bundles {
        let host_dir = tmp.join(&b.host);
        for (path, f) in &b.files {
            let p = host_dir.join(path);
            if let Some(parent) = p.parent() {
                fs::create_dir_all(parent)?;
            }
            fs::write(&p, &f.content)?;
            fs::set_permissions(&p, fs::Permissions::from_mode(f.mode))?;
        }
    }
    fs::create_dir_all(&tmp)?;
    if target.exists() {
        fs::rename(&target, &old)?;
    }
    fs::rename(&tmp, &target)?;
    if old.exists() {
        fs::remove_dir_all(&old)?;
    }
    Ok(())
}

/// Lists how `out_dir/<site>` differs from the bundles, one line per file.
/// Modes are compared as git keeps them (executable or not), since a fresh
/// clone cannot have any other.
pub fn diff_site(out_dir: &Path, site: &str, bundles: &[Bundle]) -> io::Result<Vec<String>> {
    let root = out_dir.join(site);
    let mut expected = std::collections::BTreeMap::new();
    for b in bundles {
        for (path, f) in &b.files {
            expected.insert(format!("{}/{path}", b.host), f);
        }
    }
    let mut differences = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    if root.is_dir() {
        for entry in WalkDir::new(&root).sort_by_file_name() {
            let entry = entry.map_err(io::Error::other)?;
            if !entry.file_type().is_file() {
                continue;
            }
            let rel = entry
                .path()
                .strip_prefix(&root)
                .map_err(io::Error::other)?
                .to_string_lossy()
                .into_owned();
            let shown = format!("{}/{site}/{rel}", out_dir.display());
            match expected.get(&rel) {
                None => differences.push(format!("{shown}: not produced by the site (stale)")),
                Some(f) => {
                    seen.insert(rel.clone());
                    let content = fs::read(entry.path())?;
                    let mode = entry
                        .metadata()
                        .map_err(io::Error::other)?
                        .permissions()
                        .mode();
                    if content != f.content {
                        differences.push(format!("{shown}: content differs"));
                    } else if (mode & 0o111 != 0) != (f.mode & 0o111 != 0) {
                        differences.push(format!("{shown}: executable bit differs"));
                    }
                }
            }
        }
    }
    for rel in expected.keys() {
        if !seen.contains(rel) {
            differences.push(format!("{}/{site}/{rel}: missing", out_dir.display()));
        }
    }
    Ok(differences)
}

/// Reads the bundles of `out_dir/<site>` (for `plan`): host -> path -> file.
/// A site that was never compiled has none.
pub fn read_site(out_dir: &Path, site: &str) -> io::Result<BaseSite> {
    let root = out_dir.join(site);
    let mut hosts = BaseSite::new();
    if !root.is_dir() {
        return Ok(hosts);
    }
    for entry in WalkDir::new(&root).min_depth(2).sort_by_file_name() {
        let entry = entry.map_err(io::Error::other)?;
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry.path().strip_prefix(&root).map_err(io::Error::other)?;
        let mut parts = rel.components();
        let host = parts
            .next()
            .map(|c| c.as_os_str().to_string_lossy().into_owned());
        let path = parts.as_path().to_string_lossy().into_owned();
        let Some(host) = host else { continue };
        let mode = entry
            .metadata()
            .map_err(io::Error::other)?
            .permissions()
            .mode()
            & 0o7777;
        let content = fs::read(entry.path())?;
        hosts
            .entry(host)
            .or_default()
            .insert(path, BundleFile { mode, content });
    }
    Ok(hosts)
}
