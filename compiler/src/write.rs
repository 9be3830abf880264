//! Stage 6: the only stage that touches `out/`. A site never compiled is
//! written to a temporary directory beside its target and renamed into
//! place. A site already in `out/` is updated host by host, and only where
//! bytes changed: a host whose files are all as rendered is not touched; a
//! changed host is built beside its directory (its unchanged files
//! hard-linked, so they keep inode and mtime) and exchanged with it in one
//! atomic rename at commit. So `out/` never holds a half-written host, and
//! a compile that fails before commit changes nothing. Hosts that no longer
//! exist go at commit. `--check` compares instead of writing, host by host.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use walkdir::WalkDir;

use crate::bundle::{BaseSite, Bundle, BundleFile};

/// Writes a site's bundles as they are rendered (see the module doc).
/// Dropped without `commit` (an error, a site that failed), everything it
/// built goes and `out/` is as it was.
pub struct SiteWriter {
    target: PathBuf,
    /// `out/.<site>.tmp`, the whole site, when `out/<site>` did not exist.
    fresh: Option<PathBuf>,
    /// Host → its rebuilt directory beside it, exchanged at commit.
    staged: Mutex<BTreeMap<String, PathBuf>>,
    /// Every host of the site, changed or not.
    hosts: Mutex<BTreeSet<String>>,
    committed: bool,
}

/// Where a host's rebuilt directory waits for commit, and where a gone
/// host's directory goes before removal. Host names start with a letter,
/// so these never clash with one.
fn staging(target: &Path, host: &str) -> PathBuf {
    target.join(format!(".{host}.sitec-new"))
}

impl SiteWriter {
    pub fn begin(out_dir: &Path, site: &str) -> io::Result<SiteWriter> {
        fs::create_dir_all(out_dir)?;
        let target = out_dir.join(site);
        for leftover in [
            out_dir.join(format!(".{site}.tmp")),
            out_dir.join(format!(".{site}.old")),
        ] {
            if leftover.exists() {
                fs::remove_dir_all(leftover)?;
            }
        }
        let fresh = if target.is_dir() {
            // What an interrupted compile left beside the hosts.
            for entry in fs::read_dir(&target)? {
                let entry = entry?;
                if entry.file_name().as_bytes().starts_with(b".") {
                    remove(&entry.path())?;
                }
            }
            None
        } else {
            let tmp = out_dir.join(format!(".{site}.tmp"));
            fs::create_dir_all(&tmp)?;
            Some(tmp)
        };
        Ok(SiteWriter {
            target,
            fresh,
            staged: Mutex::new(BTreeMap::new()),
            hosts: Mutex::new(BTreeSet::new()),
            committed: false,
        })
    }

    /// Writes one host's bundle, or stages it when its directory differs;
    /// hosts may be written from several threads.
    pub fn write(&self, b: &Bundle) -> io::Result<()> {
        lock(&self.hosts)?.insert(b.host.clone());
        if let Some(tmp) = &self.fresh {
            return write_files(&tmp.join(&b.host), b, None);
        }
        let host_dir = self.target.join(&b.host);
        if host_dir.is_dir() && same_files(&host_dir, b)? {
            return Ok(());
        }
        let new = staging(&self.target, &b.host);
        write_files(&new, b, host_dir.is_dir().then_some(host_dir.as_path()))?;
        lock(&self.staged)?.insert(b.host.clone(), new);
        Ok(())
    }

    /// Keeps a host's directory as it is: the compile found it holds the
    /// bundle it would render.
    pub fn keep(&self, host: &str) -> io::Result<()> {
        if self.fresh.is_some() || !self.target.join(host).is_dir() {
            return Err(io::Error::other(format!("no bundle of {host} to keep")));
        }
        lock(&self.hosts)?.insert(host.to_string());
        Ok(())
    }

    /// Puts every staged host in place (one atomic exchange each) and
    /// removes the hosts that are gone.
    pub fn commit(mut self) -> io::Result<()> {
        if let Some(tmp) = self.fresh.take() {
            fs::rename(&tmp, &self.target)?;
            self.committed = true;
            return Ok(());
        }
        let staged = std::mem::take(&mut *lock(&self.staged)?);
        for (host, new) in &staged {
            let host_dir = self.target.join(host);
            if host_dir.is_dir() {
                exchange(new, &host_dir)?;
                // `new` now holds the host's previous files.
                fs::remove_dir_all(new)?;
            } else {
                if fs::symlink_metadata(&host_dir).is_ok() {
                    fs::remove_file(&host_dir)?;
                }
                fs::rename(new, &host_dir)?;
            }
        }
        self.committed = true;
        let hosts = lock(&self.hosts)?;
        for entry in fs::read_dir(&self.target)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !hosts.contains(&name) {
                // Out of the way in one rename, so a host is whole or gone.
                let gone = staging(&self.target, &name);
                fs::rename(entry.path(), &gone)?;
                remove(&gone)?;
            }
        }
        Ok(())
    }
}

impl Drop for SiteWriter {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        if let Some(tmp) = &self.fresh {
            let _ = fs::remove_dir_all(tmp);
        }
        if let Ok(staged) = self.staged.lock() {
            for new in staged.values() {
                let _ = fs::remove_dir_all(new);
            }
        }
    }
}

/// A lock whose holder panicked: a writer thread died mid-host.
fn poisoned() -> io::Error {
    io::Error::other("a thread writing out/ panicked")
}

fn lock<T>(m: &Mutex<T>) -> io::Result<std::sync::MutexGuard<'_, T>> {
    m.lock().map_err(|_| poisoned())
}

fn remove(path: &Path) -> io::Result<()> {
    if path.is_dir() && !path.is_symlink() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    }
}

/// Whether `dir` holds exactly the bundle's files, byte for byte and mode
/// for mode.
fn same_files(dir: &Path, b: &Bundle) -> io::Result<bool> {
    let mut count = 0;
    for entry in WalkDir::new(dir) {
        let entry = entry.map_err(io::Error::other)?;
        if entry.file_type().is_dir() {
            continue;
        }
        count += 1;
        let rel = entry.path().strip_prefix(dir).map_err(io::Error::other)?;
        let Some(f) = b.files.get(rel.to_string_lossy().as_ref()) else {
            return Ok(false);
        };
        if !entry.file_type().is_file() || !unchanged(entry.path(), f)? {
            return Ok(false);
        }
    }
    Ok(count == b.files.len())
}

/// Whether the file at `path` already is `f`: its bytes and its mode.
fn unchanged(path: &Path, f: &BundleFile) -> io::Result<bool> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    Ok(meta.is_file()
        && meta.permissions().mode() & 0o7777 == f.mode
        && meta.len() == f.content.len() as u64
        && fs::read(path)? == f.content)
}

/// Writes a bundle into `dir`; a file that `old` (the host's current
/// directory) already holds as it is is hard-linked from there instead.
fn write_files(dir: &Path, b: &Bundle, old: Option<&Path>) -> io::Result<()> {
    for (path, f) in &b.files {
        let p = dir.join(path);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent)?;
        }
        if let Some(old) = old {
            let o = old.join(path);
            if unchanged(&o, f)? {
                fs::hard_link(&o, &p)?;
                continue;
            }
        }
        fs::write(&p, &f.content)?;
        fs::set_permissions(&p, fs::Permissions::from_mode(f.mode))?;
    }
    Ok(())
}

/// Swaps two directories in one step (Linux `renameat2` with
/// `RENAME_EXCHANGE`): there is no moment when either name is missing.
fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    let a = CString::new(a.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let b = CString::new(b.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: both are valid NUL-terminated paths that outlive the call.
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
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

/// Stops a [`SiteComparison::prefetch`] when dropped.
pub struct Prefetch(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Drop for Prefetch {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Compares bundles with `out_dir/<site>` as they are rendered (`--check`),
/// one line per file that differs. Modes are compared as git keeps them
/// (executable or not), since a fresh clone cannot have any other.
pub struct SiteComparison {
    out_dir: PathBuf,
    site: String,
    differences: Mutex<Vec<String>>,
    hosts: Mutex<BTreeSet<String>>,
}

impl SiteComparison {
    pub fn new(out_dir: &Path, site: &str) -> SiteComparison {
        SiteComparison {
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
    pub fn compare(&self, b: &Bundle) -> io::Result<()> {
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
        lock(&self.hosts)?.insert(b.host.clone());
        lock(&self.differences)?.extend(found);
        Ok(())
    }

    /// Every difference, sorted, with the host directories no bundle claimed.
    pub fn finish(self) -> io::Result<Vec<String>> {
        let hosts = self.hosts.into_inner().map_err(|_| poisoned())?;
        let mut differences = self.differences.into_inner().map_err(|_| poisoned())?;
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
