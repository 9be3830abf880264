//! A file system in memory that can stop the agent after any operation,
//! as a killed process or as a power loss.
//!
//! It keeps two images. The live one is what processes see: every
//! operation changes it. The durable one is what the disk holds, and only
//! the syncs move things there, as POSIX promises and no more: `fsync` of a
//! file puts its contents on disk (not its name), `fsync` of a directory
//! the names in it, `sync` everything. A kill leaves the live image (the
//! kernel's page cache outlives the process); a power loss leaves the
//! durable one, where a file whose name reached the disk before its
//! contents did is empty, and a name whose directory never reached it is
//! gone. (The kernel may write back more than was synced, in any order:
//! that is not modelled yet, so an order between two unsynced writes that
//! matters, a result on disk before the links it reports, goes unseen.)
//!
//! With a budget of k, the first k changing operations run and every one
//! after fails with [`crashed`]; the agent's code cannot tell that from an
//! I/O error, and as a dead process it changes nothing more.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

use crate::effects::{Cmd, Effects, Kind, Ran, Tree};

type Ino = u64;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Node {
    Dir(u32),
    File(Ino),
    Link(PathBuf),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Data {
    bytes: Vec<u8>,
    mode: u32,
    /// uid, gid
    owner: (u32, u32),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Image {
    names: BTreeMap<PathBuf, Node>,
    inodes: BTreeMap<Ino, Data>,
    /// The owner of each directory not root's (uid, gid).
    dir_owners: BTreeMap<PathBuf, (u32, u32)>,
}

impl Image {
    /// Renames the directory `from`, with everything under it, to `to`.
    fn move_tree(&mut self, from: &Path, to: &Path) {
        let moved: Vec<PathBuf> = self
            .names
            .keys()
            .filter(|n| n.starts_with(from))
            .cloned()
            .collect();
        for old in moved {
            let new = to.join(old.strip_prefix(from).expect("under from"));
            let node = self.names.remove(&old).expect("listed");
            self.names.insert(new.clone(), node);
            if let Some(o) = self.dir_owners.remove(&old) {
                self.dir_owners.insert(new, o);
            }
        }
    }

    fn new() -> Image {
        let mut names = BTreeMap::new();
        names.insert(PathBuf::from("/"), Node::Dir(0o755));
        Image {
            names,
            inodes: BTreeMap::new(),
            dir_owners: BTreeMap::new(),
        }
    }
}

/// How a simulated crash ends the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Crash {
    /// The process dies; what it wrote stays in the page cache.
    Kill,
    /// The machine loses power; what was not synced is lost.
    PowerLoss,
}

/// One changing operation, as the simulation recorded it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op(pub String);

pub struct SimFs {
    live: Image,
    durable: Image,
    next_ino: Ino,
    /// Changing operations left before the crash; `None`: no crash.
    budget: Option<usize>,
    crashed: bool,
    ops: Vec<Op>,
    /// Commands and whether each succeeds (default: yes).
    failing: Vec<String>,
    /// What a command prints and whether it succeeds, by its line.
    answers: std::collections::BTreeMap<String, Ran>,
    /// What a command does on each run in turn, by its line.
    in_turn: std::collections::BTreeMap<String, std::collections::VecDeque<Ran>>,
    /// Entries a command removes when it runs (as `ifdown` deletes a
    /// bridge and its ports with it), by its line.
    removes: std::collections::BTreeMap<String, Vec<PathBuf>>,
    /// Files a command writes when it runs (as `age -o` does), by its line.
    writes: std::collections::BTreeMap<String, Vec<(PathBuf, Vec<u8>)>>,
    /// The wall clock.
    clock: u64,
    /// What was logged, in order.
    logged: Vec<String>,
    /// Directories renamed since the last sync, (old name, new name): a
    /// directory's contents belong to it, not to its name, so an fsync
    /// of the new name's parent takes what was on disk under the old name
    /// to the new one.
    dir_moves: Vec<(PathBuf, PathBuf)>,
}

impl Default for SimFs {
    fn default() -> Self {
        SimFs::new()
    }
}

/// The error every operation returns once the simulated process died.
pub fn crashed() -> io::Error {
    io::Error::other("the simulated process is dead")
}

impl SimFs {
    pub fn new() -> SimFs {
        SimFs {
            live: Image::new(),
            durable: Image::new(),
            next_ino: 1,
            budget: None,
            crashed: false,
            ops: Vec::new(),
            failing: Vec::new(),
            answers: std::collections::BTreeMap::new(),
            in_turn: std::collections::BTreeMap::new(),
            removes: std::collections::BTreeMap::new(),
            writes: std::collections::BTreeMap::new(),
            clock: 1_800_000_000,
            logged: Vec::new(),
            dir_moves: Vec::new(),
        }
    }

    /// Sets the wall clock.
    pub fn set_clock(&mut self, now: u64) {
        self.clock = now;
    }

    /// Stop after `k` more changing operations.
    pub fn crash_after(&mut self, k: usize) {
        self.budget = Some(k);
    }

    /// Whether the process died.
    pub fn crashed(&self) -> bool {
        self.crashed
    }

    /// The lines logged so far, in order.
    pub fn logged(&self) -> &[String] {
        &self.logged
    }

    /// The changing operations run so far, in order.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// A command (by its program and arguments joined with spaces) that
    /// fails when run.
    pub fn fail_command(&mut self, line: &str) {
        self.failing.push(line.to_string());
    }

    /// What the command `line` prints, and whether it succeeds.
    pub fn answer(&mut self, line: &str, stdout: &str, success: bool) {
        let ran = Ran {
            success,
            code: Some(if success { 0 } else { 1 }),
            stdout: stdout.as_bytes().to_vec(),
            stderr: Vec::new(),
        };
        self.answers.insert(line.to_string(), ran);
    }

    /// What the command `line` does each time it runs, in turn; the last
    /// answer stands for every run after.
    pub fn answers_in_turn(&mut self, line: &str, ran: Vec<Ran>) {
        self.in_turn.insert(line.to_string(), ran.into());
    }

    /// Makes the command `line` remove the file or link `path` (from what
    /// processes see) when it runs.
    pub fn command_removes(&mut self, line: &str, path: &Path) {
        self.removes
            .entry(line.to_string())
            .or_default()
            .push(path.to_path_buf());
    }

    /// Makes the command `line` write `bytes` to the file `path` (0600,
    /// as processes see it) when it runs and succeeds.
    pub fn command_writes(&mut self, line: &str, path: &Path, bytes: &[u8]) {
        self.writes
            .entry(line.to_string())
            .or_default()
            .push((path.to_path_buf(), bytes.to_vec()));
    }

    /// The machine as the next process finds it after the crash: the live
    /// image after a kill, the durable one after a power loss. No budget,
    /// no operations recorded.
    pub fn after(&self, crash: Crash) -> SimFs {
        let image = match crash {
            Crash::Kill => self.live.clone(),
            Crash::PowerLoss => self.on_disk(),
        };
        SimFs {
            durable: image.clone(),
            live: image,
            next_ino: self.next_ino,
            budget: None,
            crashed: false,
            ops: Vec::new(),
            failing: self.failing.clone(),
            answers: self.answers.clone(),
            in_turn: self.in_turn.clone(),
            removes: self.removes.clone(),
            writes: self.writes.clone(),
            clock: self.clock,
            logged: Vec::new(),
            dir_moves: Vec::new(),
        }
    }

    /// The durable image as a boot reads it: names whose directory is not
    /// on disk are gone; a file whose contents never were is empty.
    fn on_disk(&self) -> Image {
        let mut image = self.durable.clone();
        let names: Vec<PathBuf> = image.names.keys().cloned().collect();
        for name in names {
            let orphan = name
                .ancestors()
                .skip(1)
                .any(|a| !matches!(image.names.get(a), Some(Node::Dir(_))));
            if orphan {
                image.names.remove(&name);
            }
        }
        for node in image.names.values() {
            if let Node::File(ino) = node {
                image.inodes.entry(*ino).or_insert(Data {
                    bytes: Vec::new(),
                    mode: 0o644,
                    owner: (0, 0),
                });
            }
        }
        image
    }

    /// Everything in the live image is on disk (as after a clean
    /// shutdown): used to set a scene up.
    pub fn settle(&mut self) {
        self.durable = self.live.clone();
    }

    /// Counts a changing operation: fails once the process died.
    fn step(&mut self, what: impl FnOnce() -> String) -> io::Result<()> {
        if self.crashed {
            return Err(crashed());
        }
        if let Some(left) = self.budget.as_mut() {
            if *left == 0 {
                self.crashed = true;
                return Err(crashed());
            }
            *left -= 1;
        }
        self.ops.push(Op(what()));
        Ok(())
    }

    fn inode(&self, path: &Path) -> io::Result<Ino> {
        match self.live.names.get(&self.resolved(path)?) {
            Some(Node::File(ino)) => Ok(*ino),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: not a file", path.display()),
            )),
        }
    }

    /// A new file (root's) at the resolved entry `at`, as processes see it.
    fn new_file(&mut self, at: PathBuf, bytes: Vec<u8>, mode: u32) -> Ino {
        let ino = self.next_ino;
        self.next_ino += 1;
        self.live.names.insert(at, Node::File(ino));
        let data = Data {
            bytes,
            mode,
            owner: (0, 0),
        };
        self.live.inodes.insert(ino, data);
        ino
    }

    /// The entry must not exist, and its directory must.
    fn fresh(&self, at: &Path) -> io::Result<()> {
        if self.live.names.contains_key(at) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{}: exists", at.display()),
            ));
        }
        Ok(())
    }

    fn children(image: &Image, dir: &Path) -> Vec<PathBuf> {
        image
            .names
            .keys()
            .filter(|n| n.parent() == Some(dir))
            .cloned()
            .collect()
    }

    fn dir_of(&self, at: &Path) -> io::Result<()> {
        match at.parent().and_then(|p| self.live.names.get(p)) {
            Some(Node::Dir(_)) => Ok(()),
            _ => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: no such directory", at.display()),
            )),
        }
    }
}

impl Tree for SimFs {
    fn lkind(&self, path: &Path) -> io::Result<Option<Kind>> {
        Ok(self.live.names.get(path).map(|n| match n {
            Node::Dir(_) => Kind::Dir,
            Node::File(_) => Kind::File,
            Node::Link(_) => Kind::Link,
        }))
    }

    fn link(&self, path: &Path) -> io::Result<PathBuf> {
        match self.live.names.get(path) {
            Some(Node::Link(t)) => Ok(t.clone()),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: not a symbolic link", path.display()),
            )),
        }
    }
}

impl Effects for SimFs {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let ino = self.inode(path)?;
        Ok(self.live.inodes[&ino].bytes.clone())
    }

    fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
        self.link(&self.entry(path)?)
    }

    fn kind(&self, path: &Path) -> io::Result<Option<Kind>> {
        self.entry_kind(path)
    }

    fn exists(&self, path: &Path) -> bool {
        self.resolves(path)
    }

    fn mode(&self, path: &Path) -> io::Result<u32> {
        let at = self.resolved(path)?;
        match &self.live.names[&at] {
            Node::Dir(mode) => Ok(*mode),
            Node::File(ino) => Ok(self.live.inodes[ino].mode),
            Node::Link(_) => unreachable!("resolved"),
        }
    }

    fn owner(&self, path: &Path) -> io::Result<(u32, u32)> {
        let at = self.resolved(path)?;
        match &self.live.names[&at] {
            Node::Dir(_) => Ok(self.live.dir_owners.get(&at).copied().unwrap_or((0, 0))),
            Node::File(ino) => Ok(self.live.inodes[ino].owner),
            Node::Link(_) => unreachable!("resolved"),
        }
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<OsString>> {
        let at = self.resolved(dir)?;
        Ok(SimFs::children(&self.live, &at)
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_os_string()))
            .collect())
    }

    fn now(&self) -> u64 {
        self.clock
    }

    fn write(&mut self, path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
        self.step(|| format!("write {} {mode:04o}", path.display()))?;
        let at = self.entry(path)?;
        self.dir_of(&at)?;
        let ino = match self.live.names.get(&at) {
            Some(Node::File(ino)) => *ino,
            Some(Node::Link(_)) => self.inode(path)?,
            Some(Node::Dir(_)) => {
                return Err(io::Error::new(
                    io::ErrorKind::IsADirectory,
                    format!("{}: a directory", path.display()),
                ));
            }
            None => self.new_file(at, Vec::new(), mode),
        };
        self.live.inodes.get_mut(&ino).expect("inode").bytes = bytes.to_vec();
        Ok(())
    }

    fn sync_file(&mut self, path: &Path) -> io::Result<()> {
        self.step(|| format!("fsync {}", path.display()))?;
        let ino = self.inode(path)?;
        let data = self.live.inodes[&ino].clone();
        self.durable.inodes.insert(ino, data);
        Ok(())
    }

    fn sync_dir(&mut self, path: &Path) -> io::Result<()> {
        self.step(|| format!("fsync {}/", path.display()))?;
        let at = self.resolved(path)?;
        // A directory renamed into this one: its name goes to disk, and
        // with it what was on disk of its contents under the old name.
        let (into, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.dir_moves)
            .into_iter()
            .partition(|(_, new)| new.parent() == Some(at.as_path()));
        self.dir_moves = rest;
        for (old, new) in into {
            self.durable.move_tree(&old, &new);
        }
        for gone in SimFs::children(&self.durable, &at) {
            if !self.live.names.contains_key(&gone) {
                self.durable.names.remove(&gone);
            }
        }
        for name in SimFs::children(&self.live, &at) {
            let node = self.live.names[&name].clone();
            self.durable.names.insert(name, node);
        }
        Ok(())
    }

    fn sync_all(&mut self) -> io::Result<()> {
        self.step(|| "sync".to_string())?;
        self.durable = self.live.clone();
        self.dir_moves.clear();
        Ok(())
    }

    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        self.step(|| format!("rename {} {}", from.display(), to.display()))?;
        let src = self.entry(from)?;
        let dst = self.entry(to)?;
        self.dir_of(&dst)?;
        let node = self.live.names.get(&src).cloned().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: no such file", from.display()),
            )
        })?;
        if matches!(self.live.names.get(&dst), Some(Node::Dir(_))) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the agent renames nothing onto a directory",
            ));
        }
        if let Node::Dir(_) = node {
            // A directory moves with everything in it; an fsync of the new
            // name's parent takes it to disk with what was on disk of it
            // (dir_moves), a sync(2) everything.
            if self.live.names.contains_key(&dst) || dst.starts_with(&src) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "a directory is renamed to a free name outside itself",
                ));
            }
            self.live.move_tree(&src, &dst);
            // Moved again before a sync: it is still what is on disk under
            // its first name.
            let mut first = src.clone();
            for (old, new) in &mut self.dir_moves {
                if *new == src {
                    first = old.clone();
                } else if new.starts_with(&src) {
                    *new = dst.join(new.strip_prefix(&src).expect("under src"));
                }
            }
            self.dir_moves.retain(|(_, new)| *new != src);
            self.dir_moves.push((first, dst));
            return Ok(());
        }
        self.live.names.remove(&src);
        self.live.names.insert(dst, node);
        Ok(())
    }

    fn symlink(&mut self, target: &Path, link: &Path) -> io::Result<()> {
        self.step(|| format!("symlink {} {}", target.display(), link.display()))?;
        let at = self.entry(link)?;
        self.dir_of(&at)?;
        self.fresh(&at)?;
        self.live.names.insert(at, Node::Link(target.to_path_buf()));
        Ok(())
    }

    fn unlink(&mut self, path: &Path) -> io::Result<()> {
        self.step(|| format!("unlink {}", path.display()))?;
        let at = self.entry(path)?;
        match self.live.names.get(&at) {
            Some(Node::File(_) | Node::Link(_)) => {
                self.live.names.remove(&at);
                Ok(())
            }
            Some(Node::Dir(_)) => Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                format!("{}: a directory", path.display()),
            )),
            None => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: no such file", path.display()),
            )),
        }
    }

    fn mkdir(&mut self, path: &Path, mode: u32) -> io::Result<()> {
        self.step(|| format!("mkdir {}", path.display()))?;
        let at = self.entry(path)?;
        self.dir_of(&at)?;
        self.fresh(&at)?;
        self.live.names.insert(at, Node::Dir(mode));
        Ok(())
    }

    fn chmod(&mut self, path: &Path, mode: u32) -> io::Result<()> {
        self.step(|| format!("chmod {:o} {}", mode, path.display()))?;
        let at = self.resolved(path)?;
        match self.live.names.get_mut(&at) {
            Some(Node::Dir(m)) => *m = mode,
            Some(Node::File(ino)) => {
                let ino = *ino;
                self.live.inodes.get_mut(&ino).expect("inode").mode = mode;
            }
            _ => unreachable!("resolved"),
        }
        Ok(())
    }

    fn chown(&mut self, path: &Path, uid: u32, gid: u32) -> io::Result<()> {
        self.step(|| format!("chown {} {uid}:{gid}", path.display()))?;
        let at = self.entry(path)?;
        match self.live.names.get(&at).cloned() {
            Some(Node::File(ino)) => {
                self.live.inodes.get_mut(&ino).expect("inode").owner = (uid, gid);
                Ok(())
            }
            Some(Node::Dir(_)) => {
                self.live.dir_owners.insert(at, (uid, gid));
                Ok(())
            }
            // A link's own owner is no concern of the simulation.
            Some(Node::Link(_)) => Ok(()),
            None => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: no such file", path.display()),
            )),
        }
    }

    fn rmdir(&mut self, path: &Path) -> io::Result<()> {
        self.step(|| format!("rmdir {}", path.display()))?;
        let at = self.entry(path)?;
        match self.live.names.get(&at) {
            Some(Node::Dir(_)) if SimFs::children(&self.live, &at).is_empty() => {
                self.live.names.remove(&at);
                self.live.dir_owners.remove(&at);
                Ok(())
            }
            Some(Node::Dir(_)) => Err(io::Error::new(
                io::ErrorKind::DirectoryNotEmpty,
                format!("{}: not empty", path.display()),
            )),
            _ => Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{}: no directory", path.display()),
            )),
        }
    }

    fn sleep(&mut self, secs: u64) {
        self.clock += secs;
    }

    fn log(&mut self, _to: &Path, line: &str) {
        self.logged.push(line.to_string());
    }

    fn run(&mut self, cmd: &Cmd) -> io::Result<Ran> {
        let line = cmd.line();
        self.step(|| format!("run {}", cmd.line_with_input()))?;
        for path in self.removes.get(&line).cloned().unwrap_or_default() {
            if let Ok(at) = self.entry(&path) {
                self.live.names.remove(&at);
            }
        }
        let failing = self.failing.contains(&line);
        let turn = self.in_turn.get_mut(&line).and_then(|q| {
            if q.len() > 1 {
                q.pop_front()
            } else {
                q.front().cloned()
            }
        });
        let ran = turn
            .or_else(|| self.answers.get(&line).cloned())
            .unwrap_or(Ran {
                success: !failing,
                code: Some(i32::from(failing)),
                stdout: Vec::new(),
                stderr: Vec::new(),
            });
        if ran.success {
            for (path, bytes) in self.writes.get(&line).cloned().unwrap_or_default() {
                let at = self.entry(&path)?;
                self.dir_of(&at)?;
                self.new_file(at, bytes, 0o600);
            }
        }
        Ok(ran)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::effects::EffectsExt as _;

    fn p(s: &str) -> &Path {
        Path::new(s)
    }

    #[test]
    fn a_file_written_and_renamed_without_syncs_is_lost_at_a_power_loss() {
        let mut fs = SimFs::new();
        fs.mkdir(p("/s"), 0o755).unwrap();
        fs.settle();
        fs.write(p("/s/a.new"), b"one", 0o644).unwrap();
        fs.rename(p("/s/a.new"), p("/s/a")).unwrap();
        assert_eq!(fs.after(Crash::Kill).read(p("/s/a")).unwrap(), b"one");
        assert!(!fs.after(Crash::PowerLoss).exists(p("/s/a")));
    }

    /// A directory's contents belong to it, not to its name: renamed, its
    /// new name on disk (its parent synced) has what was on disk of it.
    #[test]
    fn a_renamed_directory_takes_what_was_on_disk_of_it_to_its_new_name() {
        let mut fs = SimFs::new();
        fs.mkdir(p("/s"), 0o755).unwrap();
        fs.mkdir(p("/s/.new"), 0o755).unwrap();
        fs.mkdir(p("/s/.new/d"), 0o755).unwrap();
        fs.write(p("/s/.new/d/a"), b"one", 0o644).unwrap();
        fs.settle();
        // Not on disk when the power goes: the rename alone.
        fs.write(p("/s/.new/b"), b"two", 0o644).unwrap();
        fs.rename(p("/s/.new"), p("/s/x")).unwrap();
        let lost = fs.after(Crash::PowerLoss);
        assert!(!lost.exists(p("/s/x")));
        assert_eq!(lost.read(p("/s/.new/d/a")).unwrap(), b"one");
        // Renamed again, then its parent synced: the new name, with what
        // was on disk, and the old name gone.
        fs.rename(p("/s/x"), p("/s/y")).unwrap();
        fs.sync_dir(p("/s")).unwrap();
        let after = fs.after(Crash::PowerLoss);
        assert_eq!(after.read(p("/s/y/d/a")).unwrap(), b"one");
        assert!(!after.exists(p("/s/y/b")));
        assert!(!after.exists(p("/s/.new")) && !after.exists(p("/s/x")));
        assert_eq!(fs.after(Crash::Kill).read(p("/s/y/b")).unwrap(), b"two");
    }

    #[test]
    fn a_name_on_disk_before_its_contents_is_an_empty_file() {
        let mut fs = SimFs::new();
        fs.mkdir(p("/s"), 0o755).unwrap();
        fs.settle();
        fs.write(p("/s/a"), b"one", 0o644).unwrap();
        fs.sync_dir(p("/s")).unwrap();
        assert_eq!(fs.after(Crash::PowerLoss).read(p("/s/a")).unwrap(), b"");
    }

    #[test]
    fn a_durable_write_is_the_old_bytes_or_the_new_ones() {
        let mut fs = SimFs::new();
        fs.mkdir(p("/s"), 0o755).unwrap();
        fs.write(p("/s/a"), b"old", 0o644).unwrap();
        fs.settle();
        let mut seen = std::collections::BTreeSet::new();
        for k in 0..5 {
            let mut run = fs.after(Crash::Kill);
            run.crash_after(k);
            let _ = run.write_durably(p("/s/a"), b"new", 0o644);
            for crash in [Crash::Kill, Crash::PowerLoss] {
                seen.insert(run.after(crash).read(p("/s/a")).unwrap());
            }
        }
        assert_eq!(
            seen,
            [b"new".to_vec(), b"old".to_vec()].into_iter().collect()
        );
    }

    #[test]
    fn links_resolve_relative_to_their_directory_and_absolute_from_the_root() {
        let mut fs = SimFs::new();
        for d in ["/v", "/v/store", "/v/store/b1", "/v/gens", "/etc"] {
            fs.mkdir(p(d), 0o755).unwrap();
        }
        fs.write(p("/v/store/b1/x"), b"x", 0o644).unwrap();
        fs.symlink(p("../store/b1"), p("/v/gens/1")).unwrap();
        fs.symlink(p("gens/1"), p("/v/current")).unwrap();
        fs.symlink(p("/v/current/x"), p("/etc/x")).unwrap();
        assert_eq!(fs.read(p("/etc/x")).unwrap(), b"x");
        fs.symlink(p("/v/current/y"), p("/etc/y")).unwrap();
        assert!(!fs.exists(p("/etc/y")));
        assert_eq!(fs.kind(p("/etc/y")).unwrap(), Some(Kind::Link));
    }

    #[test]
    fn nothing_changes_after_the_crash() {
        let mut fs = SimFs::new();
        fs.crash_after(1);
        fs.mkdir(p("/a"), 0o755).unwrap();
        let dead = crashed().to_string();
        assert_eq!(fs.mkdir(p("/b"), 0o755).unwrap_err().to_string(), dead);
        assert!(fs.crashed());
        assert_eq!(fs.mkdir(p("/c"), 0o755).unwrap_err().to_string(), dead);
        assert!(!fs.after(Crash::Kill).exists(p("/b")));
    }
}
