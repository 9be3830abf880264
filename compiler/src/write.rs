//! Stage 6: the only stage that touches `out/`. A site is written, host by
//! host as they are rendered, to a temporary directory beside its target and
//! renamed into place, so `out/` never holds a half-written site; hosts that
//! no longer exist disappear with the old directory. `--check` compares
//! instead of writing, host by host too.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use walkdir::WalkDir;

use crate::bundle::{Bundle, BundleFile};
use crate::plan::BaseSite;

/// Writes a site's bundles as they are rendered: each into a temporary
/// directory beside the target; `commit` renames it into place. Dropped
/// without `commit` (an error, a site that failed), the temporary directory
/// goes and `out/` is as it was.
pub struct SiteWriter {
    target: PathBuf,
    tmp: PathBuf,
    old: PathBuf,
    committed: bool,
}

impl SiteWriter {
    pub fn begin(out_dir: &Path, site: &str) -> io::Result<SiteWriter> {
        fs::create_dir_all(out_dir)?;
        let w = SiteWriter {
            target: out_dir.join(site),
            tmp: out_dir.join(format!(".{site}.tmp")),
            old: out_dir.join(format!(".{site}.old")),
            committed: false,
        };
        for leftover in [&w.tmp, &w.old] {
            if leftover.exists() {
                fs::remove_dir_all(leftover)?;
            }
        }
        fs::create_dir_all(&w.tmp)?;
        Ok(w)
    }

    /// Writes one host's bundle; hosts may be written from several threads.
    pub fn write(&self, b: &Bundle) -> io::Result<()> {
        let host_dir = self.tmp.join(&b.host);
        for (path, f) in &b.files {
            let p = host_dir.join(path);
            if let Some(parent) = p.parent() {
                fs::create_dir_all(parent)?;
            }
            fs::write(&p, &f.content)?;
            fs::set_permissions(&p, fs::Permissions::from_mode(f.mode))?;
        }
        Ok(())
    }

    /// Replaces `out_dir/<site>`: hosts that are gone go with the old tree.
    pub fn commit(mut self) -> io::Result<()> {
        if self.target.exists() {
            fs::rename(&self.target, &self.old)?;
        }
        fs::rename(&self.tmp, &self.target)?;
        self.committed = true;
        if self.old.exists() {
            fs::remove_dir_all(&self.old)?;
        }
        Ok(())
    }
}

impl Drop for SiteWriter {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.tmp);
        }
    }
}

/// Replaces `out_dir/<site>` with the given bundles.
pub fn write_site(out_dir: &Path, site: &str, bundles: &[Bundle]) -> io::Result<()> {
    let w = SiteWriter::begin(out_dir, site)?;
    for b in bundles {
        w.write(b)?;
    }
    w.commit()
}

/// Stops a [`SiteCheck::prefetch`] when dropped.
pub struct Prefetch(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Drop for Prefetch {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Compares bundles with `out_dir/<site>` as they are rendered (`--check`),
/// one line per file that differs. Modes are compared as git keeps them
/// (executable or not), since a fresh clone cannot have any other.
pub struct SiteCheck {
    out_dir: PathBuf,
    site: String,
    differences: Mutex<Vec<String>>,
    hosts: Mutex<BTreeSet<String>>,
}

impl SiteCheck {
    pub fn new(out_dir: &Path, site: &str) -> SiteCheck {
        SiteCheck {
            out_dir: out_dir.to_path_buf(),
            site: site.to_string(),
            differences: Mutex::new(Vec::new()),
            hosts: Mutex::new(BTreeSet::new()),
        }
    }

    /// Reads every file of `out_dir/<site>` on a background thread, so the
    /// comparison that follows evaluation finds them in the page cache. The
    /// thread stops when the returned guard is dropped.
    pub fn prefetch(out_dir: &Path, site: &str) -> Prefetch {
        use std::io::Read;
        let root = out_dir.join(site);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 20];
            for entry in WalkDir::new(root).into_iter().filter_map(Result::ok) {
                if flag.load(std::sync::atomic::Ordering::Relaxed) {
                    return;
                }
                if !entry.file_type().is_file() {
                    continue;
                }
                if let Ok(mut f) = fs::File::open(entry.path()) {
                    while matches!(f.read(&mut buf), Ok(n) if n > 0) {}
                }
            }
        });
        Prefetch(stop)
    }

    fn shown(&self, rel: &str) -> String {
        format!("{}/{}/{rel}", self.out_dir.display(), self.site)
    }

    /// Compares one host's bundle with its directory.
    pub fn check(&self, b: &Bundle) -> io::Result<()> {
        let host_dir = self.out_dir.join(&self.site).join(&b.host);
        let mut found = Vec::new();
        let mut seen = BTreeSet::new();
        if host_dir.is_dir() {
            for entry in WalkDir::new(&host_dir).sort_by_file_name() {
                let entry = entry.map_err(io::Error::other)?;
                if !entry.file_type().is_file() {
                    continue;
                }
                let path = entry
                    .path()
                    .strip_prefix(&host_dir)
                    .map_err(io::Error::other)?
                    .to_string_lossy()
                    .into_owned();
                let rel = format!("{}/{path}", b.host);
                match b.files.get(&path) {
                    None => found.push(format!(
                        "{}: not produced by the site (stale)",
                        self.shown(&rel)
                    )),
                    Some(f) => {
                        seen.insert(path);
                        let meta = entry.metadata().map_err(io::Error::other)?;
                        let mode = meta.permissions().mode();
                        if meta.len() != f.content.len() as u64
                            || fs::read(entry.path())? != f.content
                        {
                            found.push(format!("{}: content differs", self.shown(&rel)));
                        } else if (mode & 0o111 != 0) != (f.mode & 0o111 != 0) {
                            found.push(format!("{}: executable bit differs", self.shown(&rel)));
                        }
                    }
                }
            }
        }
        for path in b.files.keys().filter(|p| !seen.contains(*p)) {
            found.push(format!(
                "{}: missing",
                self.shown(&format!("{}/{path}", b.host))
            ));
        }
        self.hosts
            .lock()
            .map_err(|_| io::Error::other("poisoned"))?
            .insert(b.host.clone());
        self.differences
            .lock()
            .map_err(|_| io::Error::other("poisoned"))?
            .extend(found);
        Ok(())
    }

    /// Every difference, sorted, with the host directories no bundle claimed.
    pub fn finish(self) -> io::Result<Vec<String>> {
        let hosts = self
            .hosts
            .into_inner()
            .map_err(|_| io::Error::other("poisoned"))?;
        let mut differences = self
            .differences
            .into_inner()
            .map_err(|_| io::Error::other("poisoned"))?;
        let root = self.out_dir.join(&self.site);
        if root.is_dir() {
            for entry in fs::read_dir(&root)? {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if hosts.contains(&name) {
                    continue;
                }
                for file in WalkDir::new(entry.path()).sort_by_file_name() {
                    let file = file.map_err(io::Error::other)?;
                    if file.file_type().is_file() {
                        let rel = file.path().strip_prefix(&root).map_err(io::Error::other)?;
                        differences.push(format!(
                            "{}/{}/{}: not produced by the site (stale)",
                            self.out_dir.display(),
                            self.site,
                            rel.to_string_lossy()
                        ));
                    }
                }
            }
        }
        differences.sort();
        Ok(differences)
    }
}

/// A file of `out/<site>` as the input-hash cache remembers it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct OutputStat {
    path: String,
    size: u64,
    mtime_ns: i128,
    mode: u32,
}

/// A file's modification time in nanoseconds.
pub(crate) fn mtime_ns(meta: &fs::Metadata) -> i128 {
    use std::os::unix::fs::MetadataExt;
    i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec())
}

/// Size, modification time and mode of every file of `out_dir/<site>`, by
/// path: what tells the cache that nobody touched the output.
pub(crate) fn stat_site(out_dir: &Path, site: &str) -> io::Result<Vec<OutputStat>> {
    use std::os::unix::fs::MetadataExt;
    let root = out_dir.join(site);
    let mut stats = Vec::new();
    for entry in WalkDir::new(&root).sort_by_file_name() {
        let entry = entry.map_err(io::Error::other)?;
        if entry.file_type().is_dir() {
            continue;
        }
        let meta = entry.metadata().map_err(io::Error::other)?;
        stats.push(OutputStat {
            path: entry
                .path()
                .strip_prefix(&root)
                .map_err(io::Error::other)?
                .to_string_lossy()
                .into_owned(),
            size: meta.len(),
            mtime_ns: mtime_ns(&meta),
            mode: meta.mode(),
        });
    }
    Ok(stats)
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
