//! One activation at a time: `private/lock`, in a directory only root may
//! enter (flock works on any open descriptor, even a read-only one, so a
//! lock file others could open is one any local user could hold). flock
//! releases the lock when its holder dies, even by SIGKILL: there is no
//! stale lock to break. An activation waits for another (up to a limit,
//! then it is busy); the timers wait for as long as it runs.
//!
//! Earlier agents locked `lock` in the state directory, open to all;
//! while one of them may still run, that lock is held too when a process
//! of root's holds it, and passed over when only other users do.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::host::{Error, at};
use crate::layout::Layout;

/// Held until dropped.
pub struct Lock {
    _files: Vec<File>,
}

/// How long an activation waits for another.
#[derive(Clone, Copy, Debug)]
pub enum Wait {
    /// Up to this long, then busy.
    Up(Duration),
    /// As long as it takes (the timers).
    Forever,
}

fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
}

/// Takes `file`'s lock; whether it was had before the wait ran out.
fn take(file: &File, wait: Wait) -> io::Result<bool> {
    let start = Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(true),
            Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
        if let Wait::Up(limit) = wait
            && start.elapsed() >= limit
        {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Whether a process whose real user is root, other than this one, has
/// `path` open.
fn root_holds(path: &Path) -> bool {
    let me = std::process::id().to_string();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return false;
    };
    procs.flatten().any(|p| {
        let name = p.file_name();
        let name = name.to_string_lossy();
        if name == me || !name.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        let opened = std::fs::read_dir(p.path().join("fd")).is_ok_and(|fds| {
            fds.flatten()
                .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| t == path))
        });
        opened
            && std::fs::read_to_string(p.path().join("status")).is_ok_and(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Uid:"))
                    .and_then(|l| l.split_whitespace().next())
                    == Some("0")
            })
    })
}

/// The lock file `name` in `private/` (made root's alone, 0700, first),
/// opened, 0600.
fn private_lock(layout: &Layout, name: &str) -> Result<(PathBuf, File), Error> {
    let private = layout.private();
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&private)
        .map_err(at(&private))?;
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700))
        .map_err(at(&private))?;
    let path = private.join(name);
    let file = open(&path).map_err(at(&path))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(at(&path))?;
    Ok((path, file))
}

impl Lock {
    pub fn acquire(layout: &Layout, wait: Wait) -> Result<Lock, Error> {
        let (path, file) = private_lock(layout, "lock")?;
        if !take(&file, wait).map_err(at(&path))? {
            return Err(Error::Busy(format!(
                "another activation holds {}",
                path.display()
            )));
        }
        let mut files = vec![file];
        let old = layout.state.join("lock");
        if std::fs::symlink_metadata(&old).is_ok_and(|m| m.is_file()) {
            let _ = std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o600));
            let f = open(&old).map_err(at(&old))?;
            if !take(&f, Wait::Up(Duration::ZERO)).map_err(at(&old))? {
                if root_holds(&old) {
                    if !take(&f, wait).map_err(at(&old))? {
                        return Err(Error::Busy(format!(
                            "an activation of an earlier sitec holds {}",
                            old.display()
                        )));
                    }
                    files.push(f);
                }
            } else {
                files.push(f);
            }
        }
        Ok(Lock { _files: files })
    }

    /// The pull lock (`private/pull.lock`), or `None` while another pull
    /// holds it: a pull does not wait for another.
    pub fn pull(layout: &Layout) -> Result<Option<Lock>, Error> {
        let (path, file) = private_lock(layout, "pull.lock")?;
        Ok(take(&file, Wait::Up(Duration::ZERO))
            .map_err(at(&path))?
            .then(|| Lock { _files: vec![file] }))
    }

    /// Whether an activation holds the lock now (for `status`).
    pub fn held(layout: &Layout) -> bool {
        let path = layout.private().join("lock");
        match File::open(&path) {
            Ok(f) => matches!(f.try_lock(), Err(std::fs::TryLockError::WouldBlock)),
            Err(_) => false,
        }
    }
}
