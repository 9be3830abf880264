//! The input-hash cache (like Nix's evaluation cache): a compile whose
//! inputs are the same as last time's, and whose output was not touched
//! since, is answered without evaluating anything.
//!
//! Inputs are everything a compile is a pure function of: every file the
//! evaluation read (the site, what it imports, the schemas; the list comes
//! from Nickel), the sitec binary itself (templates and the activate script
//! are embedded in it), the `--keys` directory, the colour of rendered
//! warnings and the output directory. The output is `out/<site>` as `write`
//! left it: every file's size, modification time and mode (a hand edit or a
//! `git checkout` of out/ changes them). Any difference means a full compile.
//!
//! The cache lives in `<project>/.sitec/cache/<site>.json`, outside `out/`
//! and outside git. Inputs are recorded with the hash of the content Nickel
//! evaluated, so a file edited during a compile is seen as changed next time.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Report;
use crate::bundle::{hex, sha256_hex};
use crate::write::{OutputStat, mtime_ns, stat_site};

const VERSION: u32 = 3;

#[derive(Serialize, Deserialize, PartialEq, Eq, Debug, Clone)]
struct BinaryId {
    path: PathBuf,
    size: u64,
    mtime_ns: i128,
    inode: u64,
    sha256: String,
}

#[derive(Serialize, Deserialize, PartialEq, Eq, Debug)]
struct Key {
    binary: String,
    color: bool,
    keys: Option<String>,
    out: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct CachedReport {
    report: Report,
    rendered: String,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    version: u32,
    key: Key,
    /// Every file the evaluation read, with its sha256.
    inputs: BTreeMap<PathBuf, String>,
    outputs: Vec<OutputStat>,
    hosts: Vec<(String, String)>,
    /// Each host's render key (`render::host_key`).
    render_keys: BTreeMap<String, String>,
    warnings: Vec<CachedReport>,
}

/// A compile answered from the cache.
pub struct Hit {
    pub hosts: Vec<(String, String)>,
    pub warnings: Vec<Report>,
}

fn entry_path(root: &Path, site: &str) -> PathBuf {
    root.join(".sitec")
        .join("cache")
        .join(format!("{site}.json"))
}

/// The running binary's identity. Hashing it (streamed: it is large) is
/// done once per build: the hash is remembered in `.sitec/cache/binary.json`
/// with the file's path, size, modification time and inode, and reused while
/// those are unchanged.
fn binary_id(root: &Path) -> Option<BinaryId> {
    let path = std::env::current_exe().ok()?;
    let meta = fs::metadata(&path).ok()?;
    let mut id = BinaryId {
        path,
        size: meta.len(),
        mtime_ns: mtime_ns(&meta),
        inode: meta.ino(),
        sha256: String::new(),
    };
    let memo = root.join(".sitec").join("cache").join("binary.json");
    let known: Option<BinaryId> = fs::read(&memo)
        .ok()
        .and_then(|t| serde_json::from_slice(&t).ok());
    match known {
        Some(k)
            if BinaryId {
                sha256: k.sha256.clone(),
                ..id.clone()
            } == k =>
        {
            id.sha256 = k.sha256;
        }
        _ => {
            id.sha256 = sha256_file(&id.path)?;
            if let Some(dir) = memo.parent()
                && fs::create_dir_all(dir).is_ok()
                && let Ok(text) = serde_json::to_vec(&id)
            {
                let tmp = memo.with_extension("json.tmp");
                if fs::write(&tmp, text).is_ok() {
                    let _ = fs::rename(&tmp, &memo);
                }
            }
        }
    }
    Some(id)
}

fn sha256_file(path: &Path) -> Option<String> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut file = fs::File::open(path).ok()?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Some(hex(&hasher.finalize()))
}

fn keys_hash(keys_dir: Option<&Path>) -> Option<String> {
    let dir = keys_dir?;
    let mut listing = String::new();
    let mut names: Vec<PathBuf> = fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    names.sort();
    for p in names {
        let content = fs::read(&p).unwrap_or_default();
        listing.push_str(&format!("{} {}\n", sha256_hex(&content), p.display()));
    }
    Some(sha256_hex(listing.as_bytes()))
}

fn key(binary: &BinaryId, color: bool, keys_dir: Option<&Path>, out: &Path) -> Key {
    Key {
        binary: binary.sha256.clone(),
        color,
        keys: keys_hash(keys_dir),
        out: out.to_path_buf(),
    }
}

/// The cached result of compiling `site` into `out`, when nothing changed.
/// A compile answered from the cache (`Ok`), or else (`Err`) the hosts of
/// the last compile of `site` whose directory in `out/<site>` is still as
/// that compile left it (every file's size, modification time and mode),
/// by the same binary: host → (render key, bundle hash); a compile whose
/// inputs changed renders only the others. The entry is read and `out/`
/// stat'ed once for both answers.
pub(crate) fn lookup(
    root: &Path,
    site: &str,
    color: bool,
    keys_dir: Option<&Path>,
    out: &Path,
) -> Result<Hit, BTreeMap<String, (String, String)>> {
    let Some(entry) = fs::read(entry_path(root, site))
        .ok()
        .and_then(|text| serde_json::from_slice::<Entry>(&text).ok())
        .filter(|e| e.version == VERSION)
    else {
        return Err(BTreeMap::new());
    };
    let Some(binary) = binary_id(root) else {
        return Err(BTreeMap::new());
    };
    if binary.sha256 != entry.key.binary || entry.key.out != out {
        return Err(BTreeMap::new());
    }
    let Ok(now) = stat_site(out, site) else {
        return Err(BTreeMap::new());
    };
    let inputs_unchanged = entry
        .inputs
        .iter()
        .all(|(path, sha)| fs::read(path).is_ok_and(|text| sha256_hex(&text) == *sha));
    if key(&binary, color, keys_dir, out) == entry.key && inputs_unchanged && now == entry.outputs {
        return Ok(Hit {
            hosts: entry.hosts,
            warnings: entry
                .warnings
                .into_iter()
                .map(|c| Report {
                    rendered: c.rendered,
                    ..c.report
                })
                .collect(),
        });
    }
    let by_host = |stats: &[OutputStat]| {
        let mut hosts: BTreeMap<String, Vec<OutputStat>> = BTreeMap::new();
        for s in stats {
            hosts
                .entry(s.host().to_string())
                .or_default()
                .push(s.clone());
        }
        hosts
    };
    let (then, now) = (by_host(&entry.outputs), by_host(&now));
    let mut reusable = BTreeMap::new();
    for (host, hash) in entry.hosts {
        if let (Some(key), Some(a), Some(b)) = (
            entry.render_keys.get(&host),
            then.get(&host),
            now.get(&host),
        ) && a == b
        {
            reusable.insert(host, (key.clone(), hash));
        }
    }
    Err(reusable)
}

/// Records a compile that wrote `out/<site>`: `inputs` are the files the
/// evaluation read with the hash of what it read. Best effort: a cache that
/// cannot be written only costs the next compile its shortcut.
#[allow(clippy::too_many_arguments)]
pub(crate) fn store(
    root: &Path,
    site: &str,
    color: bool,
    keys_dir: Option<&Path>,
    out: &Path,
    inputs: &[(PathBuf, String)],
    hosts: &[(String, String)],
    render_keys: &[(String, String)],
    warnings: &[Report],
) {
    let path = entry_path(root, site);
    let _ = fs::remove_file(&path);
    let Some(binary) = binary_id(root) else {
        return;
    };
    let hashed: BTreeMap<PathBuf, String> = inputs.iter().cloned().collect();
    let Ok(outputs) = stat_site(out, site) else {
        return;
    };
    let entry = Entry {
        version: VERSION,
        key: key(&binary, color, keys_dir, out),
        inputs: hashed,
        outputs,
        hosts: hosts.to_vec(),
        render_keys: render_keys.iter().cloned().collect(),
        warnings: warnings
            .iter()
            .map(|r| CachedReport {
                report: r.clone(),
                rendered: r.rendered.clone(),
            })
            .collect(),
    };
    let Some(dir) = path.parent() else { return };
    if fs::create_dir_all(dir).is_err() {
        return;
    }
    let tmp = path.with_extension("json.tmp");
    if let Ok(text) = serde_json::to_vec(&entry)
        && fs::write(&tmp, text).is_ok()
    {
        let _ = fs::rename(&tmp, &path);
    }
}
