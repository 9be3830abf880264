//! The input-hash cache (like Nix's evaluation cache): a compile whose
//! inputs are the same as last time's, and whose output was not touched
//! since, is answered without evaluating anything.
//!
//! Inputs are everything a compile is a pure function of: every file the
//! evaluation read (the site, what it imports, the schemas; the list comes
//! from Nickel), the sitec binary itself (the templates are embedded in
//! it), the `--keys` directory and the output directory.
//! The output is `out/<site>` as `write` left it: every file's size,
//! modification time and mode (a hand edit or a `git checkout` of out/
//! changes them). Any difference means a compile; it keeps, unrendered, the
//! hosts whose render key and directory are as recorded ([`Keepable`]).
//!
//! The cache lives in `<project>/.sitec/cache/<site>.json`, outside `out/`
//! and outside git. Inputs are recorded with the hash of the content Nickel
//! evaluated, so a file edited during a compile is seen as changed next time.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::bundle::HostHash;
use crate::diagnostic::{Report, Shown};
use crate::hash::{hex, sha256_hex};

const VERSION: u32 = 5;

#[derive(Serialize, Deserialize, PartialEq, Eq, Debug, Clone)]
struct BinaryId {
    path: PathBuf,
    size: u64,
    mtime_ns: i128,
    inode: u64,
    sha256: String,
}

/// What a compile depends on besides the files it reads.
#[derive(Serialize, Deserialize, PartialEq, Eq, Debug)]
struct Settings {
    binary: String,
    keys: Option<String>,
    out: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct CachedReport {
    report: Report,
    shown: Shown,
}

/// What `.sitec/cache/<site>.json` holds: the last compile's inputs,
/// settings, output and answer.
#[derive(Serialize, Deserialize)]
struct CacheEntry {
    version: u32,
    settings: Settings,
    /// Every file the evaluation read, with its sha256.
    inputs: BTreeMap<PathBuf, String>,
    /// What `out/<site>` held when the entry was written.
    outputs: SiteStats,
    hosts: Vec<HostHash>,
    /// Each host's render key (`render::host_key`).
    render_keys: BTreeMap<String, String>,
    warnings: Vec<CachedReport>,
}

/// A compile answered from the cache.
pub(crate) struct CachedAnswer {
    pub(crate) hosts: Vec<HostHash>,
    pub(crate) warnings: Vec<Report>,
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

fn settings(binary: &BinaryId, keys_dir: Option<&Path>, out: &Path) -> Settings {
    Settings {
        binary: binary.sha256.clone(),
        keys: keys_hash(keys_dir),
        out: out.to_path_buf(),
    }
}

/// What the cache answers for a compile.
pub(crate) enum Lookup {
    /// Nothing changed: the last compile's answer.
    Hit(CachedAnswer),
    /// Something changed: the hosts the compile may keep, found meanwhile.
    Miss(Pending),
}

/// The hosts of the last compile of a site whose directory in `out/<site>`
/// is still as that compile left it (every file's size, modification time
/// and mode), by the same binary: a compile whose inputs changed renders
/// only the others. Stat'ing `out/` takes a while at a thousand hosts, so
/// it runs on a thread of its own while the site evaluates (which is
/// single-threaded); [`Pending::wait`] is called when rendering starts.
#[derive(Default)]
pub(crate) struct Pending(Option<std::thread::JoinHandle<Keepable>>);

/// Hosts a compile may keep unrendered, and what their directories hold.
#[derive(Default, Debug)]
pub(crate) struct Keepable {
    /// As the last compile recorded them.
    pub(crate) hosts: BTreeMap<String, KeptHost>,
    /// The files of those hosts' directories, as stat'ed: what the next
    /// cache entry records for each of them that the compile keeps.
    pub(crate) stats: SiteStats,
}

/// A host the last compile wrote: its render key and bundle hash.
#[derive(Debug)]
pub(crate) struct KeptHost {
    pub(crate) render_key: String,
    pub(crate) hash: String,
}

impl Pending {
    /// The hosts that may be kept (none when stat'ing failed).
    pub(crate) fn wait(self) -> Keepable {
        self.0.and_then(|h| h.join().ok()).unwrap_or_default()
    }
}

/// What a compile asks of the cache.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    /// The answer, or else the hosts it may keep (writing `out/`).
    HitOrKeepable,
    /// The answer only (comparing with `out/` keeps nothing).
    Hit,
}

/// The cached result of compiling `site` into `out` when none of its inputs
/// changed and `out/<site>` is as the last compile left it; else, when
/// asked, the hosts that compile may keep. The entry is read once for both.
pub(crate) fn lookup(
    root: &Path,
    site: &str,
    keys_dir: Option<&Path>,
    out: &Path,
    want: Want,
) -> Lookup {
    let Some(entry) = fs::read(entry_path(root, site))
        .ok()
        .and_then(|text| serde_json::from_slice::<CacheEntry>(&text).ok())
        .filter(|e| e.version == VERSION)
    else {
        return Lookup::Miss(Pending::default());
    };
    let Some(binary) = binary_id(root) else {
        return Lookup::Miss(Pending::default());
    };
    if binary.sha256 != entry.settings.binary || entry.settings.out != out {
        return Lookup::Miss(Pending::default());
    }
    let inputs_unchanged = entry
        .inputs
        .iter()
        .all(|(path, sha)| fs::read(path).is_ok_and(|text| sha256_hex(&text) == *sha));
    if settings(&binary, keys_dir, out) == entry.settings && inputs_unchanged {
        let Ok(now) = stat_site(out, site) else {
            return Lookup::Miss(Pending::default());
        };
        if now == entry.outputs {
            return Lookup::Hit(CachedAnswer {
                hosts: entry.hosts,
                warnings: entry
                    .warnings
                    .into_iter()
                    .map(|c| Report {
                        shown: c.shown,
                        ..c.report
                    })
                    .collect(),
            });
        }
        if want == Want::Hit {
            return Lookup::Miss(Pending::default());
        }
        return Lookup::Miss(Pending(Some(std::thread::spawn(move || {
            keepable(entry, now)
        }))));
    }
    if want == Want::Hit {
        return Lookup::Miss(Pending::default());
    }
    let (out, site) = (out.to_path_buf(), site.to_string());
    Lookup::Miss(Pending(Some(std::thread::spawn(move || {
        // On this one thread: the evaluation has the other core.
        keepable(entry, stat_hosts_meanwhile(&out, &site))
    }))))
}

/// The hosts of `entry` whose files are as it recorded them.
fn keepable(entry: CacheEntry, mut now: SiteStats) -> Keepable {
    let mut kept = Keepable::default();
    for HostHash { host, hash } in entry.hosts {
        if let (Some(key), Some(then)) = (entry.render_keys.get(&host), entry.outputs.get(&host))
            && now.get(&host) == Some(then)
            && let Some(stats) = now.remove(&host)
        {
            kept.hosts.insert(
                host.clone(),
                KeptHost {
                    render_key: key.clone(),
                    hash,
                },
            );
            kept.stats.insert(host, stats);
        }
    }
    kept
}

/// Records a compile that wrote `out/<site>`: `inputs` are the files the
/// evaluation read with the hash of what it read. Best effort: a cache that
/// cannot be written only costs the next compile its shortcut.
#[allow(clippy::too_many_arguments)]
pub(crate) fn store(
    root: &Path,
    site: &str,
    keys_dir: Option<&Path>,
    out: &Path,
    inputs: &[(PathBuf, String)],
    hosts: &[HostHash],
    render_keys: &BTreeMap<String, String>,
    warnings: &[Report],
    kept: SiteStats,
) {
    let path = entry_path(root, site);
    let _ = fs::remove_file(&path);
    let Some(binary) = binary_id(root) else {
        return;
    };
    let hashed: BTreeMap<PathBuf, String> = inputs.iter().cloned().collect();
    // The hosts kept were stat'ed by the lookup; only the others changed.
    let Ok(outputs) = stat_site_on(out, site, kept) else {
        return;
    };
    let entry = CacheEntry {
        version: VERSION,
        settings: settings(&binary, keys_dir, out),
        inputs: hashed,
        outputs,
        hosts: hosts.to_vec(),
        render_keys: render_keys.clone(),
        warnings: warnings
            .iter()
            .map(|r| CachedReport {
                report: r.clone(),
                shown: r.shown.clone(),
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

/// A file of a host's directory in `out/<site>` as the cache remembers it:
/// what tells it that nobody touched the output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FileStat {
    /// Relative to the host's directory (empty for the entry itself).
    path: String,
    size: u64,
    mtime_ns: i128,
    mode: u32,
}

/// Each entry of `out/<site>` (a host's directory, or anything else found
/// there) → its files, sorted by path.
pub(crate) type SiteStats = BTreeMap<String, Vec<FileStat>>;

/// A file's modification time in nanoseconds.
fn mtime_ns(meta: &fs::Metadata) -> i128 {
    i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec())
}

/// Every file of `out_dir/<site>`, by host, stat'ed on every core.
fn stat_site(out_dir: &Path, site: &str) -> std::io::Result<SiteStats> {
    stat_site_on(out_dir, site, SiteStats::new())
}

/// [`stat_site`], taking the hosts of `known` as they are in it.
fn stat_site_on(out_dir: &Path, site: &str, mut known: SiteStats) -> std::io::Result<SiteStats> {
    use rayon::prelude::*;
    let root = out_dir.join(site);
    let mut names = Vec::new();
    for entry in fs::read_dir(&root)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if !known.contains_key(&name) {
            names.push(name);
        }
    }
    let stated = names
        .into_par_iter()
        .map(|name| Ok((stat_host(&root.join(&name))?, name)))
        .collect::<std::io::Result<Vec<_>>>()?;
    for (stats, name) in stated {
        known.insert(name, stats);
    }
    Ok(known)
}

/// The host directories of `out_dir/<site>`, stat'ed on one thread while
/// the compile goes on: the writer meanwhile removes what an interrupted
/// compile left (`.<host>.sitec-new`, never a host), so those are skipped,
/// and a host that cannot be stat'ed is only not kept.
fn stat_hosts_meanwhile(out_dir: &Path, site: &str) -> SiteStats {
    let root = out_dir.join(site);
    let Ok(entries) = fs::read_dir(&root) else {
        return SiteStats::new();
    };
    entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with('.'))
        .filter_map(|name| Some((stat_host(&root.join(&name)).ok()?, name)))
        .map(|(stats, name)| (name, stats))
        .collect()
}

/// Every file under `dir` (or `dir` itself when it is not a directory).
fn stat_host(dir: &Path) -> std::io::Result<Vec<FileStat>> {
    let mut stats = Vec::new();
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.map_err(std::io::Error::other)?;
        if entry.file_type().is_dir() {
            continue;
        }
        let meta = entry.metadata().map_err(std::io::Error::other)?;
        stats.push(FileStat {
            path: entry
                .path()
                .strip_prefix(dir)
                .map_err(std::io::Error::other)?
                .to_string_lossy()
                .into_owned(),
            size: meta.len(),
            mtime_ns: mtime_ns(&meta),
            mode: meta.mode(),
        });
    }
    Ok(stats)
}
