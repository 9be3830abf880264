//! The one interface through which the agent reads and changes a host.
//!
//! Reads take `&self`; every operation that changes something takes
//! `&mut self` and is one step the crash simulation may stop after. Paths
//! are absolute host paths (`/etc/nginx/nginx.conf`,
//! `/var/lib/sitec/current`); symbolic links are followed by the reads
//! that say so, as the kernel follows them.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

/// What a path is, not following a final symbolic link (lstat).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Link,
}

/// An external command: a program and its arguments, where its output
/// goes, and how long it may run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cmd {
    pub program: String,
    pub args: Vec<String>,
    /// Appended to this file instead of captured: a daemon a command
    /// starts keeps its output open, which a capture would wait on.
    pub log: Option<PathBuf>,
    /// Cut off after this many seconds (then killed 5 s later), so a
    /// hanging command fails like any other.
    pub timeout: Option<u64>,
    /// What it reads on stdin (nothing when `None`).
    pub stdin: Option<Vec<u8>>,
    /// At most this many bytes of its stdout are kept; one more and it is
    /// killed (a server that sends more than it may).
    pub stdout_limit: Option<usize>,
}

impl Cmd {
    pub fn new(program: &str, args: &[&str]) -> Cmd {
        Cmd {
            program: program.to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
            log: None,
            timeout: None,
            stdin: None,
            stdout_limit: None,
        }
    }

    /// The command reading `bytes` on its stdin.
    pub fn input(mut self, bytes: &[u8]) -> Cmd {
        self.stdin = Some(bytes.to_vec());
        self
    }

    /// The command cut off after `timeout` seconds.
    pub fn within(mut self, timeout: u64) -> Cmd {
        self.timeout = Some(timeout);
        self
    }

    /// The command with its output appended to `log`, cut off after
    /// `timeout` seconds: how actions run.
    pub fn logged(mut self, log: &Path, timeout: u64) -> Cmd {
        self.log = Some(log.to_path_buf());
        self.timeout = Some(timeout);
        self
    }

    /// The command as a line: its program and arguments joined by spaces.
    pub fn line(&self) -> String {
        std::iter::once(self.program.as_str())
            .chain(self.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The line, and what it reads on stdin (its lines after `<<<`,
    /// joined by `; `) where that is text: how the log and the
    /// simulation's record show it.
    pub fn line_with_input(&self) -> String {
        let line = self.line();
        match self.stdin.as_deref().map(std::str::from_utf8) {
            Some(Ok(text)) => format!("{line} <<< {}", text.lines().collect::<Vec<_>>().join("; ")),
            _ => line,
        }
    }
}

/// What a command did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ran {
    pub success: bool,
    /// Its exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

pub trait Effects {
    /// A file's bytes, following symbolic links.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// A symbolic link's target as written.
    fn read_link(&self, path: &Path) -> io::Result<PathBuf>;
    /// What `path` is (not following a final link); `None` when absent.
    fn kind(&self, path: &Path) -> io::Result<Option<Kind>>;
    /// Whether `path` resolves to something (following links): a link to
    /// nothing does not exist.
    fn exists(&self, path: &Path) -> bool;
    /// A file's permission bits, following links.
    fn mode(&self, path: &Path) -> io::Result<u32>;
    /// Who owns a file or directory (uid, gid), following links.
    fn owner(&self, path: &Path) -> io::Result<(u32, u32)>;
    /// The names in a directory, sorted.
    fn list(&self, dir: &Path) -> io::Result<Vec<OsString>>;
    /// The wall clock, in seconds since the epoch (deadlines are written in
    /// it; timers run on the monotonic clock, which is PID 1's business).
    fn now(&self) -> u64;

    /// Creates or truncates a file and writes `bytes`, with `mode` for a
    /// new one. Not on disk until [`Effects::sync_file`].
    fn write(&mut self, path: &Path, bytes: &[u8], mode: u32) -> io::Result<()>;
    /// fsync(2) of a file: its contents are on disk (its name is not,
    /// until its directory is synced).
    fn sync_file(&mut self, path: &Path) -> io::Result<()>;
    /// fsync(2) of a directory: the names in it are on disk.
    fn sync_dir(&mut self, path: &Path) -> io::Result<()>;
    /// sync(2): everything written so far is on disk.
    fn sync_all(&mut self) -> io::Result<()>;
    /// rename(2), replacing `to` (a file or a link; not a directory).
    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()>;
    /// symlink(2): a new link at `link` to `target`.
    fn symlink(&mut self, target: &Path, link: &Path) -> io::Result<()>;
    /// unlink(2) of a file or link.
    fn unlink(&mut self, path: &Path) -> io::Result<()>;
    /// mkdir(2) with `mode` (less the umask, which the agent sets to 022).
    fn mkdir(&mut self, path: &Path, mode: u32) -> io::Result<()>;
    /// chmod(2), following links.
    fn chmod(&mut self, path: &Path, mode: u32) -> io::Result<()>;
    /// lchown(2): a file's (or a link's own) owner.
    fn chown(&mut self, path: &Path, uid: u32, gid: u32) -> io::Result<()>;
    /// rmdir(2) of an empty directory.
    fn rmdir(&mut self, path: &Path) -> io::Result<()>;
    /// Runs a command to its end.
    fn run(&mut self, cmd: &Cmd) -> io::Result<Ran>;
    /// Waits `secs` seconds (of the clock [`Effects::now`] reads).
    fn sleep(&mut self, secs: u64);
    /// Appends `line` to the log at `to` at once, stamped with the time
    /// and the process (when its directory exists: a check off a host
    /// writes none). No step: the log is no state a transition reads, and
    /// a line logged before a command that hangs or a kill is there.
    fn log(&mut self, to: &Path, line: &str);
}

/// A tree read one entry at a time, links not followed: what resolving a
/// path is built on. `Os` and `SimFs` give the two primitives; resolving
/// (and so `Effects::kind` and `Effects::exists`) is written once, here.
pub trait Tree {
    /// What the entry at a resolved host path is; `None` when absent.
    fn lkind(&self, path: &Path) -> io::Result<Option<Kind>>;
    /// The target of the link at a resolved host path.
    fn link(&self, path: &Path) -> io::Result<PathBuf>;

    /// The entry `path` names: its directory resolved, its own name as given.
    fn entry(&self, path: &Path) -> io::Result<PathBuf> {
        entry(path, |p| self.lkind(p), |p| self.link(p))
    }

    /// The host path `path` resolves to, following every link.
    fn resolved(&self, path: &Path) -> io::Result<PathBuf> {
        resolve(path, |p| self.lkind(p), |p| self.link(p))?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: no such file", path.display()),
            )
        })
    }

    /// What `path` is, not following a final link; `None` when it or its
    /// directory is absent ([`Effects::kind`]).
    fn entry_kind(&self, path: &Path) -> io::Result<Option<Kind>> {
        match self.entry(path) {
            Ok(at) => self.lkind(&at),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether `path` resolves to something ([`Effects::exists`]).
    fn resolves(&self, path: &Path) -> bool {
        matches!(
            resolve(path, |p| self.lkind(p), |p| self.link(p)),
            Ok(Some(_))
        )
    }
}

/// The operations the agent builds from the primitive ones, each a sequence
/// of steps of its own.
pub trait EffectsExt: Effects {
    /// A file's text (lossy UTF-8), following links; `None` when it
    /// cannot be read.
    fn text(&self, path: &Path) -> Option<String> {
        self.read(path)
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    /// Where `program` lives, in the directories activate's PATH names.
    fn which(&self, program: &str) -> Option<PathBuf> {
        [
            "/usr/local/sbin",
            "/usr/local/bin",
            "/usr/sbin",
            "/usr/bin",
            "/sbin",
            "/bin",
        ]
        .iter()
        .map(|d| Path::new(d).join(program))
        .find(|p| self.exists(p))
    }

    /// Whether systemd runs the host (and not a container without it).
    fn systemd_running(&self) -> bool {
        matches!(
            self.kind(Path::new("/run/systemd/system")),
            Ok(Some(Kind::Dir))
        )
    }

    /// `mkdir -p`: every missing directory of `path`, each with `mode`.
    fn mkdir_all(&mut self, path: &Path, mode: u32) -> io::Result<()> {
        let mut missing = Vec::new();
        let mut p = path;
        while self.kind(p)?.is_none() {
            missing.push(p.to_path_buf());
            match p.parent() {
                Some(parent) => p = parent,
                None => break,
            }
        }
        for d in missing.iter().rev() {
            self.mkdir(d, mode)?;
        }
        Ok(())
    }

    /// `rm -f`: unlinks a file or link that is there.
    fn remove(&mut self, path: &Path) -> io::Result<()> {
        match self.kind(path)? {
            None => Ok(()),
            Some(Kind::Dir) => Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                format!("{} is a directory", path.display()),
            )),
            Some(_) => self.unlink(path),
        }
    }

    /// `rm -rf`: a file, a link, or a directory with everything in it (a
    /// link is removed, never followed).
    fn remove_all(&mut self, path: &Path) -> io::Result<()> {
        match self.kind(path)? {
            None => Ok(()),
            Some(Kind::Dir) => {
                for name in self.list(path)? {
                    self.remove_all(&path.join(name))?;
                }
                self.rmdir(path)
            }
            Some(_) => self.unlink(path),
        }
    }

    /// Replaces `link` by a symbolic link to `target` in one rename, as
    /// `ln -sfn TARGET LINK.sitec-new && mv -Tf LINK.sitec-new LINK` does:
    /// at no moment is `link` absent.
    fn swap_link(&mut self, target: &Path, link: &Path) -> io::Result<()> {
        let new = with_suffix(link, ".sitec-new");
        self.remove(&new)?;
        self.symlink(target, &new)?;
        self.rename(&new, link)
    }

    /// Copies a file beside `to` and renames it into place, keeping its
    /// mode, as `cp -a FROM TO.sitec-new && mv -Tf TO.sitec-new TO` does.
    fn copy_into_place(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        let bytes = self.read(from)?;
        let mode = self.mode(from)?;
        let new = with_suffix(to, ".sitec-new");
        self.remove(&new)?;
        self.write(&new, &bytes, mode)?;
        self.rename(&new, to)
    }

    /// Writes a file beside `path`, syncs it, renames it into place and
    /// syncs the directory: after a power loss `path` holds the old bytes
    /// or the new ones, never a part.
    fn write_durably(&mut self, path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
        let new = with_suffix(path, ".sitec-new");
        self.write(&new, bytes, mode)?;
        self.sync_file(&new)?;
        self.rename(&new, path)?;
        self.sync_dir(path.parent().unwrap_or(Path::new("/")))
    }
}

impl<T: Effects + ?Sized> EffectsExt for T {}

/// `path` with `suffix` appended to its last component.
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// Follows the symbolic links of `path` as the kernel does (absolute
/// targets from `/`, relative ones from the link's directory, `..` after
/// what came before was resolved), through `kind` and `read_link` of one
/// component at a time. `None`: some component is missing. An error: a
/// loop, or more than 40 links.
pub fn resolve(
    path: &Path,
    kind: impl Fn(&Path) -> io::Result<Option<Kind>>,
    read_link: impl Fn(&Path) -> io::Result<PathBuf>,
) -> io::Result<Option<PathBuf>> {
    use std::collections::VecDeque;
    use std::path::Component;
    let mut rest: VecDeque<OsString> = VecDeque::new();
    let push_all = |rest: &mut VecDeque<OsString>, p: &Path, front: bool| {
        let parts: Vec<OsString> = p
            .components()
            .filter_map(|c| match c {
                Component::Normal(s) => Some(s.to_os_string()),
                Component::ParentDir => Some(OsString::from("..")),
                _ => None,
            })
            .collect();
        if front {
            for part in parts.into_iter().rev() {
                rest.push_front(part);
            }
        } else {
            rest.extend(parts);
        }
    };
    push_all(&mut rest, path, false);
    let mut cur = PathBuf::from("/");
    let mut links = 0;
    while let Some(part) = rest.pop_front() {
        if part == ".." {
            cur.pop();
            continue;
        }
        let next = cur.join(&part);
        match kind(&next)? {
            None => return Ok(None),
            Some(Kind::Link) => {
                links += 1;
                if links > 40 {
                    return Err(io::Error::other(format!(
                        "{}: too many levels of symbolic links",
                        path.display()
                    )));
                }
                let target = read_link(&next)?;
                if target.is_absolute() {
                    cur = PathBuf::from("/");
                }
                push_all(&mut rest, &target, true);
            }
            Some(Kind::File) if !rest.is_empty() => return Ok(None),
            Some(_) => cur = next,
        }
    }
    Ok(Some(cur))
}

/// Where an entry `path` is made, renamed or removed: its directory
/// resolved (links followed), its own name as given.
pub fn entry(
    path: &Path,
    kind: impl Fn(&Path) -> io::Result<Option<Kind>>,
    read_link: impl Fn(&Path) -> io::Result<PathBuf>,
) -> io::Result<PathBuf> {
    if path == Path::new("/") {
        return Ok(PathBuf::from("/"));
    }
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: no entry of a directory", path.display()),
        ));
    };
    match resolve(parent, kind, read_link)? {
        Some(dir) => Ok(dir.join(name)),
        None => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{}: no such directory", parent.display()),
        )),
    }
}
