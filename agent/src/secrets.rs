//! Secrets: each generation keeps its own copy (`secrets/N`, root's
//! alone), taken before the journal names the switch; every transition
//! installs the copy of the generation it makes live, or puts back what
//! sitec found (generation 0's) where that generation requires none.
//!
//! A secret is written as root into a directory of the host: only where
//! that directory and every one above it is root's and writable by root
//! alone, checked at every install (a rollback's and the boot's too, not
//! only when a bundle is checked: the host may have changed since), so
//! that nobody else can plant a link where it is written.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::actions::Note;
use crate::effects::{Effects, EffectsExt as _, Kind, with_suffix};
use crate::generation::Generation;
use crate::host::{Error, at};
use crate::index::Gen;
use crate::transition::Agent;

type R<T> = Result<T, Error>;

/// Where a generation's secrets are taken from when it is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source<'a> {
    /// What push staged (or the check decrypted) for store copy NAME, else
    /// the host's own file: the generation being switched to.
    Staged(&'a str),
    /// The host's own files, for a generation that keeps none (switched to
    /// by a sitec from before secrets were kept: what it ran with is what
    /// is live now).
    Live,
}

/// Why a directory is no place to write a secret as root, if it is not:
/// it and every directory above it that exists must be root's and
/// writable by root alone, and none a symbolic link.
pub fn unsafe_dir(fx: &impl Effects, dir: &Path) -> Option<String> {
    for d in dir.ancestors() {
        match fx.kind(d) {
            Ok(Some(Kind::Link)) => {
                return Some(format!(
                    "{}, a symbolic link: a secret's directory is a directory of its own",
                    d.display()
                ));
            }
            Ok(Some(Kind::Dir)) => {
                let (uid, _) = fx.owner(d).unwrap_or((u32::MAX, 0));
                let mode = fx.mode(d).unwrap_or(0o777);
                if uid != 0 || mode & 0o022 != 0 {
                    return Some(format!(
                        "{}, which is not root's alone (owner uid {uid}, mode {mode:o}): another user could plant a link where sitec writes the secret as root; chown root and chmod go-w {}",
                        d.display(),
                        d.display()
                    ));
                }
            }
            _ => {}
        }
    }
    None
}

/// The files under `dir`, as paths below it (`/etc/...`), sorted.
pub fn files_under(fx: &impl Effects, dir: &Path) -> R<BTreeSet<PathBuf>> {
    let mut out = BTreeSet::new();
    if fx.kind(dir).map_err(at(dir))? != Some(Kind::Dir) {
        return Ok(out);
    }
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for name in fx.list(&d).map_err(at(&d))? {
            let p = d.join(name);
            match fx.kind(&p).map_err(at(&p))? {
                Some(Kind::Dir) => todo.push(p),
                Some(Kind::File) => {
                    out.insert(Path::new("/").join(p.strip_prefix(dir).expect("under dir")));
                }
                _ => {}
            }
        }
    }
    Ok(out)
}

/// `base` joined with absolute path `p` (`secrets/3` + `/etc/k`).
fn under(base: &Path, p: &Path) -> PathBuf {
    base.join(p.strip_prefix("/").unwrap_or(p))
}

impl<F: Effects> Agent<'_, F> {
    /// Keeps generation `g`'s secrets (those `generation` requires) in
    /// `secrets/g`, whole or not at all: built beside it, on disk, then
    /// renamed into place. With [`Source::Live`], only when `g` keeps none.
    pub fn keep_secrets(&mut self, g: Gen, generation: &Generation, from: Source) -> R<()> {
        let dir = self.layout.kept_secrets(g);
        if from == Source::Live && (g.0 == 0 || self.fx.kind(&dir).map_err(at(&dir))?.is_some()) {
            return Ok(());
        }
        let new = with_suffix(&dir, ".sitec-new");
        self.fx.remove_all(&dir).map_err(at(&dir))?;
        self.fx.remove_all(&new).map_err(at(&new))?;
        self.fx.mkdir_all(&new, 0o700).map_err(at(&new))?;
        let secrets: BTreeSet<&str> = generation.secrets().into_iter().map(|(p, _)| p).collect();
        for p in secrets {
            let p = Path::new(p);
            let staged = match from {
                Source::Staged(name) => Some(under(&self.layout.staged_secrets(name), p)),
                Source::Live => None,
            };
            let src = match staged {
                Some(s) if self.fx.kind(&s).map_err(at(&s))? == Some(Kind::File) => s,
                _ => p.to_path_buf(),
            };
            // A link is no secret of sitec's: what it points at is not kept.
            if self.fx.kind(&src).map_err(at(&src))? != Some(Kind::File) {
                continue;
            }
            let bytes = self.fx.read(&src).map_err(at(&src))?;
            let copy = under(&new, p);
            if let Some(d) = copy.parent() {
                self.fx.mkdir_all(d, 0o700).map_err(at(d))?;
            }
            self.fx.write(&copy, &bytes, 0o600).map_err(at(&copy))?;
        }
        self.fx.sync_all().map_err(at(&new))?;
        self.fx.rename(&new, &dir).map_err(at(&dir))
    }

    /// Whether secret `p` differs between generations `a` and `b`'s
    /// copies (one that keeps none differs in every secret the other has).
    pub fn secret_differs(&self, a: Gen, b: Gen, p: &str) -> bool {
        let read = |g: Gen| {
            self.fx
                .read(&under(&self.layout.kept_secrets(g), Path::new(p)))
                .ok()
        };
        match (read(a), read(b)) {
            (Some(x), Some(y)) => x != y,
            _ => true,
        }
    }

    /// Generation `b`'s secrets at their paths, going from `a`: each secret
    /// either keeps goes to `b`'s copy, or back to how sitec found it where
    /// `b` has none. A generation that keeps no copy (from before sitec
    /// kept them) leaves them as they are. The secrets that could not be
    /// installed safely, which fail the generation.
    pub fn install_secrets(
        &mut self,
        a: Gen,
        b: Gen,
        owners: &dyn Fn(&str) -> (u32, u32),
    ) -> R<Vec<String>> {
        let (da, db) = (self.layout.kept_secrets(a), self.layout.kept_secrets(b));
        if b.0 != 0 && self.fx.kind(&db).map_err(at(&db))?.is_none() {
            return Ok(Vec::new());
        }
        let mut all = files_under(&*self.fx, &da)?;
        all.extend(files_under(&*self.fx, &db)?);
        let backup = match self.generation_of(Gen(0))? {
            Generation::Backup(b) => b,
            Generation::Bundle(_) => unreachable!("generation 0 is the backup"),
        };
        let mut failed = Vec::new();
        for p in all {
            let kept = under(&db, &p);
            let ok = if self.fx.kind(&kept).map_err(at(&kept))? == Some(Kind::File) {
                let (uid, gid) = owners(&p.to_string_lossy());
                self.put_secret(&kept, &p, uid, gid)?
            } else {
                match backup.secrets.get(&*p.to_string_lossy()) {
                    None => true,
                    Some(None) => {
                        self.fx.remove(&p).map_err(at(&p))?;
                        true
                    }
                    Some(Some(_)) => self.restore_secret(&p)?,
                }
            };
            if !ok {
                failed.push(p.to_string_lossy().into_owned());
            }
        }
        Ok(failed)
    }

    /// Secret `p` gets `from`'s content, private and owned by uid:gid, in
    /// one rename. Whether it could be written safely.
    fn put_secret(&mut self, from: &Path, p: &Path, uid: u32, gid: u32) -> R<bool> {
        let bytes = self.fx.read(from).map_err(at(from))?;
        if self.fx.kind(p).map_err(at(p))? == Some(Kind::File)
            && self.fx.read(p).ok().as_ref() == Some(&bytes)
            && self.fx.owner(p).ok() == Some((uid, gid))
            && self.fx.mode(p).ok() == Some(0o600)
        {
            return Ok(true);
        }
        let dir = p.parent().unwrap_or(Path::new("/"));
        if let Some(why) = unsafe_dir(&*self.fx, dir) {
            self.note(Note::Warn(format!(
                "secret {} not installed: it is in {why}",
                p.display()
            )));
            return Ok(false);
        }
        self.fx.mkdir_all(dir, 0o700).map_err(at(dir))?;
        // Never through a link planted at the temporary name: nobody but
        // root may write in the directory (checked above), and the name is
        // removed first.
        let new = with_suffix(p, ".sitec-new");
        self.fx.remove(&new).map_err(at(&new))?;
        self.fx.write(&new, &bytes, 0o600).map_err(at(&new))?;
        self.fx.chown(&new, uid, gid).map_err(at(&new))?;
        self.fx.chmod(&new, 0o600).map_err(at(&new))?;
        self.fx.sync_file(&new).map_err(at(&new))?;
        self.fx.rename(&new, p).map_err(at(p))?;
        Ok(true)
    }

    /// Secret `p` as sitec found it (generation 0's copy: a file with its
    /// owner and mode, or a link as it was).
    fn restore_secret(&mut self, p: &Path) -> R<bool> {
        let dir = p.parent().unwrap_or(Path::new("/"));
        if let Some(why) = unsafe_dir(&*self.fx, dir) {
            self.note(Note::Warn(format!(
                "secret {} not put back: it is in {why}",
                p.display()
            )));
            return Ok(false);
        }
        let saved = under(&self.layout.backup().join("files"), p);
        let new = with_suffix(p, ".sitec-new");
        self.fx.remove(&new).map_err(at(&new))?;
        self.fx.mkdir_all(dir, 0o755).map_err(at(dir))?;
        match self.fx.kind(&saved).map_err(at(&saved))? {
            // A link (certbot's live/*.pem) goes back as the link it was.
            Some(Kind::Link) => {
                let target = self.fx.read_link(&saved).map_err(at(&saved))?;
                self.fx.symlink(&target, &new).map_err(at(&new))?;
            }
            Some(Kind::File) => {
                let bytes = self.fx.read(&saved).map_err(at(&saved))?;
                let (uid, gid) = self.fx.owner(&saved).map_err(at(&saved))?;
                let mode = self.fx.mode(&saved).map_err(at(&saved))?;
                self.fx.write(&new, &bytes, 0o600).map_err(at(&new))?;
                self.fx.chown(&new, uid, gid).map_err(at(&new))?;
                self.fx.chmod(&new, mode).map_err(at(&new))?;
                self.fx.sync_file(&new).map_err(at(&new))?;
            }
            _ => {
                self.note(Note::Warn(format!(
                    "secret {} could not be put back as sitec found it",
                    p.display()
                )));
                return Ok(false);
            }
        }
        self.fx.rename(&new, p).map_err(at(p))?;
        Ok(true)
    }

    /// What push staged for store copy `name`, gone once its generation
    /// kept it: one rename first, so a kill during the removal never leaves
    /// half a set.
    pub fn drop_staged(&mut self, name: &str) -> R<()> {
        let staged = self.layout.staged_secrets(name);
        if self.fx.kind(&staged).map_err(at(&staged))? != Some(Kind::Dir) {
            return Ok(());
        }
        let gone = with_suffix(&staged, ".gone");
        self.fx.remove_all(&gone).map_err(at(&gone))?;
        self.fx.rename(&staged, &gone).map_err(at(&gone))?;
        self.fx.remove_all(&gone).map_err(at(&gone))
    }
}

impl<F: Effects> Agent<'_, F> {
    /// Secrets the bundle in `dir` carries encrypted with age (to the
    /// host's ssh host key), decrypted into what push staged for store
    /// copy `name`, where check and switch take them as they take what
    /// push staged; a copy push staged of the same path is replaced (the
    /// reviewed ciphertext is what the generation runs with). The paths
    /// decrypted, which a failed check or switch removes again.
    pub fn decrypt_secrets(
        &mut self,
        dir: &Path,
        name: &str,
        index: &sitec_format::Index,
    ) -> R<Vec<PathBuf>> {
        let sealed: Vec<(&str, &str)> = index
            .secrets
            .iter()
            .filter_map(|s| s.age.as_deref().map(|f| (s.path.as_str(), f)))
            .collect();
        if sealed.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<&str> = ["/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_rsa_key"]
            .into_iter()
            .filter(|k| self.fx.exists(Path::new(k)))
            .collect();
        if keys.is_empty() {
            return Err(Error::Refused("the bundle carries secrets encrypted to this host's ssh host key, and the host has none (/etc/ssh/ssh_host_ed25519_key)".to_string()));
        }
        if self.fx.which("age").is_none() {
            return Err(Error::Refused(
                "the bundle carries secrets encrypted with age, which is not installed (apt install age)"
                    .to_string(),
            ));
        }
        let staged = self.layout.staged_secrets(name);
        let mut done = Vec::new();
        for (p, f) in sealed {
            let to = under(&staged, Path::new(p));
            if let Some(d) = to.parent() {
                self.fx.mkdir_all(d, 0o700).map_err(at(d))?;
            }
            let new = with_suffix(&to, ".sitec-new");
            self.fx.remove(&new).map_err(at(&new))?;
            done.push(to.clone());
            let mut args = vec!["-d".to_string()];
            for k in &keys {
                args.push("-i".to_string());
                args.push(k.to_string());
            }
            args.extend([
                "-o".to_string(),
                new.to_string_lossy().into_owned(),
                dir.join(f).to_string_lossy().into_owned(),
            ]);
            let cmd = crate::effects::Cmd {
                program: "age".to_string(),
                args,
                log: None,
                timeout: Some(60),
                stdin: None,
                stdout_limit: None,
            };
            let ran = self.fx.run(&cmd).map_err(at(Path::new("age")))?;
            if !ran.success {
                self.fx.remove(&new).map_err(at(&new))?;
                let why = String::from_utf8_lossy(&ran.stderr);
                let first = why.lines().next().unwrap_or("").to_string();
                self.drop_decrypted(&done)?;
                return Err(Error::Refused(format!(
                    "secret {p}: the host's ssh host keys do not decrypt {f} ({first}); encrypt it to the key of /etc/ssh/ssh_host_ed25519_key.pub, which the site's ssh_host_keys must name"
                )));
            }
            self.fx.chmod(&new, 0o600).map_err(at(&new))?;
            self.fx.rename(&new, &to).map_err(at(&to))?;
            self.note(Note::Say(format!("decrypted secret {p}")));
            self.note(Note::Log(format!("decrypted secret {p}")));
        }
        Ok(done)
    }

    /// What a failed check or switch decrypted leaves the host with it.
    pub fn drop_decrypted(&mut self, decrypted: &[PathBuf]) -> R<()> {
        for p in decrypted {
            self.fx.remove(p).map_err(at(p))?;
            let new = with_suffix(p, ".sitec-new");
            self.fx.remove(&new).map_err(at(&new))?;
        }
        Ok(())
    }

    /// The secrets of the bundle, staged for store copy `name` or on the
    /// host: present, private, owned by the user that reads them, in a
    /// directory that is root's alone. Only secrets the bundle requires
    /// may be staged: anything else would be a file written as root where
    /// no reviewed bundle asked for one.
    pub fn check_secrets(&self, name: &str, index: &sitec_format::Index) -> R<()> {
        let staged = self.layout.staged_secrets(name);
        let required: BTreeSet<&str> = index.secrets.iter().map(|s| s.path.as_str()).collect();
        for p in files_under(&*self.fx, &staged)? {
            if !required.contains(&*p.to_string_lossy()) {
                return Err(Error::Refused(format!(
                    "push staged {}, which is no secret this bundle requires",
                    p.display()
                )));
            }
        }
        for s in &index.secrets {
            let p = Path::new(&s.path);
            let copy = under(&staged, p);
            let (src, want) = if self.fx.kind(&copy).map_err(at(&copy))? == Some(Kind::File) {
                (copy, 0)
            } else {
                (p.to_path_buf(), s.uid)
            };
            match self.fx.kind(&src).map_err(at(&src))? {
                None => {
                    return Err(Error::Refused(format!(
                        "required secret {} is missing (push --secrets DIR uploads it)",
                        s.path
                    )));
                }
                Some(Kind::Link) => {
                    return Err(Error::Refused(format!(
                        "secret {} is a symbolic link: sitec installs secrets as files of their own",
                        src.display()
                    )));
                }
                _ => {}
            }
            if let Some(why) = unsafe_dir(&*self.fx, p.parent().unwrap_or(Path::new("/"))) {
                return Err(Error::Refused(format!("secret {} is in {why}", s.path)));
            }
            let mode = self.fx.mode(&src).map_err(at(&src))?;
            if mode & 0o077 != 0 {
                return Err(Error::Refused(format!(
                    "secret {} is readable by others (mode {mode:o}); chmod 600 it",
                    s.path
                )));
            }
            let (uid, _) = self.fx.owner(&src).map_err(at(&src))?;
            if uid != want {
                return Err(Error::Refused(format!(
                    "secret {} is owned by uid {uid}, not uid {want}, which reads it (chown {want} {})",
                    src.display(),
                    src.display()
                )));
            }
        }
        Ok(())
    }
}

impl<F: Effects> Agent<'_, F> {
    /// Whether push staged (or the check decrypted) for store copy `name`
    /// secrets that generation `g` does not keep as they are.
    pub fn new_secrets(&self, g: Gen, name: &str) -> R<bool> {
        let staged = self.layout.staged_secrets(name);
        let kept = self.layout.kept_secrets(g);
        for p in files_under(&*self.fx, &staged)? {
            let a = self.fx.read(&under(&staged, &p)).ok();
            let b = self.fx.read(&under(&kept, &p)).ok();
            if a != b {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Whether a push repaired store copy `name` while it was live: a
    /// switch to it again acts on the repaired files.
    pub fn repaired(&self, name: &str) -> R<bool> {
        let text = self
            .fx
            .read(&self.layout.state.join("repaired"))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        Ok(text.lines().any(|l| l.split('\t').next() == Some(name)))
    }
}
