//! The agent's effects on a real file system, under a root directory: `/`
//! on a host, a temporary directory in tests. Links are resolved under the
//! root as the kernel resolves them under `/`, so a tree written in a test
//! behaves as on a host.

use std::ffi::OsString;
use std::fs;
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::effects::{Cmd, Effects, Kind, Ran, Tree};

pub struct Os {
    root: PathBuf,
}

impl Os {
    /// Effects on the tree under `root` (`/` on a host).
    pub fn new(root: &Path) -> Os {
        Os {
            root: root.to_path_buf(),
        }
    }

    /// Where a host path is on this machine, without resolving links.
    fn real(&self, path: &Path) -> PathBuf {
        self.root.join(path.strip_prefix("/").unwrap_or(path))
    }

    /// Where on this machine the host path `path` resolves to.
    fn target(&self, path: &Path) -> io::Result<PathBuf> {
        Ok(self.real(&self.resolved(path)?))
    }

    /// Where the entry `path` is, on this machine.
    fn at(&self, path: &Path) -> io::Result<PathBuf> {
        Ok(self.real(&self.entry(path)?))
    }
}

impl Tree for Os {
    fn lkind(&self, path: &Path) -> io::Result<Option<Kind>> {
        match fs::symlink_metadata(self.real(path)) {
            Ok(m) if m.file_type().is_symlink() => Ok(Some(Kind::Link)),
            Ok(m) if m.is_dir() => Ok(Some(Kind::Dir)),
            Ok(_) => Ok(Some(Kind::File)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn link(&self, path: &Path) -> io::Result<PathBuf> {
        fs::read_link(self.real(path))
    }
}

impl Effects for Os {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(self.target(path)?)
    }

    fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
        fs::read_link(self.at(path)?)
    }

    fn kind(&self, path: &Path) -> io::Result<Option<Kind>> {
        self.entry_kind(path)
    }

    fn exists(&self, path: &Path) -> bool {
        self.resolves(path)
    }

    fn mode(&self, path: &Path) -> io::Result<u32> {
        Ok(fs::metadata(self.target(path)?)?.permissions().mode() & 0o7777)
    }

    fn owner(&self, path: &Path) -> io::Result<(u32, u32)> {
        use std::os::unix::fs::MetadataExt as _;
        let m = fs::metadata(self.target(path)?)?;
        Ok((m.uid(), m.gid()))
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<OsString>> {
        let mut names: Vec<OsString> = fs::read_dir(self.target(dir)?)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()?;
        names.sort();
        Ok(names)
    }

    fn now(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    fn write(&mut self, path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(self.at(path)?)?;
        f.write_all(bytes)
    }

    fn sync_file(&mut self, path: &Path) -> io::Result<()> {
        fs::File::open(self.target(path)?)?.sync_all()
    }

    fn sync_dir(&mut self, path: &Path) -> io::Result<()> {
        fs::File::open(self.target(path)?)?.sync_all()
    }

    fn sync_all(&mut self) -> io::Result<()> {
        // SAFETY: sync(2) takes no arguments and cannot fail.
        unsafe { libc_sync() };
        Ok(())
    }

    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(self.at(from)?, self.at(to)?)
    }

    fn symlink(&mut self, target: &Path, link: &Path) -> io::Result<()> {
        std::os::unix::fs::symlink(target, self.at(link)?)
    }

    fn unlink(&mut self, path: &Path) -> io::Result<()> {
        fs::remove_file(self.at(path)?)
    }

    fn mkdir(&mut self, path: &Path, mode: u32) -> io::Result<()> {
        fs::DirBuilder::new().mode(mode).create(self.at(path)?)
    }

    fn chmod(&mut self, path: &Path, mode: u32) -> io::Result<()> {
        fs::set_permissions(self.target(path)?, fs::Permissions::from_mode(mode))
    }

    fn chown(&mut self, path: &Path, uid: u32, gid: u32) -> io::Result<()> {
        std::os::unix::fs::lchown(self.at(path)?, Some(uid), Some(gid))
    }

    fn rmdir(&mut self, path: &Path) -> io::Result<()> {
        fs::remove_dir(self.at(path)?)
    }

    fn run(&mut self, cmd: &Cmd) -> io::Result<Ran> {
        use std::io::Read as _;
        use std::os::unix::process::CommandExt as _;
        use std::process::Stdio;
        // An action's command (logged) runs under timeout(1), a process
        // of its own that cuts it off at its deadline even if the agent
        // is killed meanwhile (a hung ifreload must not outlive it and
        // race the next activation). Other commands (validators, queries,
        // a pull's fetches) are cut off by a watchdog thread of the agent,
        // which spares a process each.
        let watched = cmd.timeout.filter(|_| cmd.log.is_none());
        let mut c = match cmd.timeout {
            Some(secs) if cmd.log.is_some() => {
                let mut c = Command::new("timeout");
                c.args(["-k", "5", &secs.to_string(), &cmd.program]);
                c
            }
            _ => Command::new(&cmd.program),
        };
        if watched.is_some() {
            // A group of its own, as timeout(1) makes: what it starts is
            // cut off with it.
            c.process_group(0);
        }
        c.args(&cmd.args).stdin(if cmd.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        if let Some(log) = &cmd.log {
            let log = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(self.real(log))?;
            c.stdout(log.try_clone()?).stderr(log);
        } else {
            c.stdout(Stdio::piped()).stderr(Stdio::piped());
        }
        let mut child = c.spawn()?;
        let watch = watched.map(|secs| Watchdog::start(child.id(), secs));
        if let Some(bytes) = &cmd.stdin {
            let mut input = child.stdin.take().expect("piped");
            let bytes = bytes.clone();
            // A writer of its own: a command that does not read all of its
            // input must not block this one.
            std::thread::spawn(move || {
                let _ = input.write_all(&bytes);
            });
        }
        let stderr = child.stderr.take().map(|mut e| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = e.read_to_end(&mut buf);
                buf
            })
        });
        let mut stdout = Vec::new();
        if let Some(out) = child.stdout.take() {
            match cmd.stdout_limit {
                None => {
                    let _ = { out }.read_to_end(&mut stdout);
                }
                Some(limit) => {
                    let _ = out.take(limit as u64 + 1).read_to_end(&mut stdout);
                    if stdout.len() > limit {
                        let _ = child.kill();
                    }
                }
            }
        }
        let cut_off = watch.is_some_and(|w| w.exited(child.id()));
        let status = child.wait()?;
        let stderr = stderr.and_then(|t| t.join().ok()).unwrap_or_default();
        Ok(Ran {
            success: status.success() && !cut_off,
            // timeout(1)'s code for a command it cut off.
            code: if cut_off { Some(124) } else { status.code() },
            stdout,
            stderr,
        })
    }

    fn log(&mut self, to: &Path, line: &str) {
        let path = self.real(to);
        if !path.parent().is_some_and(Path::is_dir) {
            return;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let text = format!("{} [{}] {line}\n", crate::utc::utc(now), std::process::id());
        let _ = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut f| f.write_all(text.as_bytes()));
    }

    fn sleep(&mut self, secs: u64) {
        std::thread::sleep(std::time::Duration::from_secs(secs));
    }
}

/// Cuts a command off as `timeout -k 5 SECS` does, without a process of
/// its own: TERM to the command's process group after `secs`, KILL 5 s
/// later. The group is signalled only while its leader is unreaped (a
/// zombie at worst), so its number cannot belong to anyone else yet.
struct Watchdog {
    state: std::sync::Arc<(std::sync::Mutex<Watch>, std::sync::Condvar)>,
}

#[derive(Default)]
struct Watch {
    exited: bool,
    cut_off: bool,
}

/// Signals the group while its leader is not reaped; whether it exited.
fn signal_group(
    state: &(std::sync::Mutex<Watch>, std::sync::Condvar),
    pgid: u32,
    sig: i32,
    deadline: std::time::Duration,
) -> bool {
    let (lock, cv) = state;
    let guard = lock.lock().unwrap_or_else(|e| e.into_inner());
    let (mut w, _) = cv
        .wait_timeout_while(guard, deadline, |w| !w.exited)
        .unwrap_or_else(|e| e.into_inner());
    if w.exited {
        return true;
    }
    w.cut_off = true;
    // SAFETY: kill(2) with a process group this process made and has not
    // reaped the leader of.
    unsafe { kill(-(pgid as i32), sig) };
    false
}

impl Watchdog {
    fn start(pgid: u32, secs: u64) -> Watchdog {
        let state = std::sync::Arc::new((
            std::sync::Mutex::new(Watch::default()),
            std::sync::Condvar::new(),
        ));
        let shared = state.clone();
        std::thread::spawn(move || {
            let secs = std::time::Duration::from_secs(secs);
            if !signal_group(&shared, pgid, SIGTERM, secs) {
                signal_group(&shared, pgid, SIGKILL, std::time::Duration::from_secs(5));
            }
        });
        Watchdog { state }
    }

    /// Waits for the leader `pid` to exit, leaving it unreaped, stops the
    /// watch; whether it was cut off.
    fn exited(self, pid: u32) -> bool {
        let mut info = [0u64; 16];
        loop {
            // SAFETY: waitid(2) into a buffer the size of a siginfo_t;
            // WNOWAIT leaves the child for Child::wait to reap.
            let r = unsafe { waitid(P_PID, pid, info.as_mut_ptr().cast(), WEXITED | WNOWAIT) };
            if r == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                break;
            }
        }
        let (lock, cv) = &*self.state;
        let mut w = lock.lock().unwrap_or_else(|e| e.into_inner());
        w.exited = true;
        cv.notify_all();
        w.cut_off
    }
}

const SIGTERM: i32 = 15;
const SIGKILL: i32 = 9;
const P_PID: i32 = 1;
const WEXITED: i32 = 4;
const WNOWAIT: i32 = 0x0100_0000;

unsafe extern "C" {
    #[link_name = "sync"]
    fn libc_sync();
    fn kill(pid: i32, sig: i32) -> i32;
    fn waitid(idtype: i32, id: u32, infop: *mut u8, options: i32) -> i32;
}
