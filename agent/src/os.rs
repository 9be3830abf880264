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
        use std::process::Stdio;
        let mut c = match cmd.timeout {
            Some(secs) => {
                let mut c = Command::new("timeout");
                c.args(["-k", "5", &secs.to_string(), &cmd.program]);
                c
            }
            None => Command::new(&cmd.program),
        };
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
        let status = child.wait()?;
        let stderr = stderr.and_then(|t| t.join().ok()).unwrap_or_default();
        Ok(Ran {
            success: status.success(),
            code: status.code(),
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

unsafe extern "C" {
    #[link_name = "sync"]
    fn libc_sync();
}
