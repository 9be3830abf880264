//! `receive NAME`: a bundle push (or a pull) put in
//! `store/.incoming-NAME` becomes the store copy `NAME`, sealed.
//!
//! The copy must hash to its `BUNDLE` and be named after that hash. A store
//! copy `NAME` already there that was changed on the host (its files or
//! their modes) is repaired from this one, file by file, each renamed into
//! place so that links into it never point at nothing; when it is the
//! live generation's, the files repaired under the running daemons are
//! recorded (`repaired`), and the next switch from or to it runs their
//! actions.

use std::collections::BTreeSet;
use std::path::Path;

use crate::actions::Note;
use crate::bundle::sealed_mode;
use crate::effects::{Effects, EffectsExt as _, Kind, with_suffix};
use crate::host::{Error, at};
use crate::transition::Agent;

type R<T> = Result<T, Error>;

/// Sets every entry of the bundle in `dir` to its sealed mode.
pub fn seal(fx: &mut impl Effects, dir: &Path, index: &sitec_format::Index) -> R<()> {
    fn walk(fx: &mut impl Effects, dir: &Path, prefix: &str, index: &sitec_format::Index) -> R<()> {
        for name in fx.list(dir).map_err(at(dir))? {
            let path = dir.join(&name);
            let rel = format!("{prefix}{}", name.to_string_lossy());
            match fx.kind(&path).map_err(at(&path))? {
                Some(Kind::Dir) => {
                    walk(fx, &path, &format!("{rel}/"), index)?;
                    fx.chmod(&path, sealed_mode(&rel, true, index))
                        .map_err(at(&path))?;
                }
                Some(Kind::File) => fx
                    .chmod(&path, sealed_mode(&rel, false, index))
                    .map_err(at(&path))?,
                _ => {}
            }
        }
        Ok(())
    }
    walk(fx, dir, "", index)?;
    fx.chmod(dir, 0o555).map_err(at(dir))
}

fn index_of(fx: &impl Effects, dir: &Path) -> R<sitec_format::Index> {
    crate::bundle::index_of(fx, dir).map_err(|f| Error::Refused(f.describe(dir)))
}

impl<F: Effects> Agent<'_, F> {
    /// Receives `store/.incoming-NAME` (or `.incoming-NAME.pull`, a
    /// pulled copy) as the store copy NAME.
    pub fn receive(&mut self, incoming_name: &str) -> R<String> {
        let incoming = self
            .layout
            .store()
            .join(format!(".incoming-{incoming_name}"));
        if self.fx.kind(&incoming).map_err(at(&incoming))? != Some(Kind::Dir) {
            return Err(Error::Usage(format!(
                "no bundle was put in {}",
                incoming.display()
            )));
        }
        let name = incoming_name.strip_suffix(".pull").unwrap_or(incoming_name);
        let dest = self.layout.store_copy(name);
        let index = index_of(&*self.fx, &incoming)?;
        crate::check::shape(&*self.fx, &incoming, &index, &self.layout.state, false)?;
        let hash = crate::bundle::hash(&*self.fx, &incoming)?;
        if name.split('-').next() != Some(hash.as_str()) {
            return Err(Error::Refused(format!(
                "{name} is not named after its hash {hash}"
            )));
        }
        if self.fx.kind(&dest).map_err(at(&dest))?.is_none() {
            seal(self.fx, &incoming, &index)?;
            self.fx.sync_all().map_err(at(&incoming))?;
            self.fx.rename(&incoming, &dest).map_err(at(&dest))?;
            let store = self.layout.store();
            self.fx.sync_dir(&store).map_err(at(&store))?;
            self.note(Note::Log(format!("received {name}")));
            return Ok(format!("received {name}"));
        }
        if crate::bundle::intact(&*self.fx, &dest) {
            self.fx.remove_all(&incoming).map_err(at(&incoming))?;
            return Ok(format!("{name} is on the host already"));
        }
        self.repair(name, &incoming, &dest, &index)
    }

    fn repair(
        &mut self,
        name: &str,
        incoming: &Path,
        dest: &Path,
        index: &sitec_format::Index,
    ) -> R<String> {
        let had = crate::bundle::files(&*self.fx, dest)?;
        let has = crate::bundle::files(&*self.fx, incoming)?;
        let live = self.state()?.current.and_then(|c| {
            self.state()
                .ok()?
                .generations
                .get(&c)
                .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()))
        });
        if live.as_deref() == Some(name) {
            // Files of the live generation repaired under the running
            // daemons: the next switch from or to this copy runs their
            // actions.
            let changed: BTreeSet<&str> = has
                .iter()
                .filter(|f| !had.iter().any(|h| h.path == f.path && h.bytes == f.bytes))
                .map(|f| f.path.as_str())
                .collect();
            let path = self.layout.state.join("repaired");
            let mut text = self
                .fx
                .read(&path)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            for p in changed {
                text.push_str(&format!("{name}\t{p}\n"));
            }
            self.fx
                .write_durably(&path, text.as_bytes(), 0o644)
                .map_err(at(&path))?;
        }
        // Writable while it is repaired, each file renamed into place.
        let mut dirs = vec![dest.to_path_buf()];
        for f in &has {
            let mut d = dest.join(&f.path);
            while d.pop() && d.starts_with(dest) {
                dirs.push(d.clone());
            }
        }
        dirs.sort();
        dirs.dedup();
        for d in &dirs {
            if self.fx.kind(d).map_err(at(d))? == Some(Kind::Dir) {
                self.fx.chmod(d, 0o755).map_err(at(d))?;
            }
        }
        for f in &has {
            let to = dest.join(&f.path);
            if let Some(d) = to.parent() {
                self.fx.mkdir_all(d, 0o755).map_err(at(d))?;
            }
            let new = with_suffix(&to, ".sitec-new");
            self.fx.remove(&new).map_err(at(&new))?;
            self.fx.write(&new, &f.bytes, 0o644).map_err(at(&new))?;
            self.fx.rename(&new, &to).map_err(at(&to))?;
        }
        for h in &had {
            if !has.iter().any(|f| f.path == h.path) {
                let gone = dest.join(&h.path);
                self.fx.remove(&gone).map_err(at(&gone))?;
            }
        }
        let bundle = dest.join("BUNDLE");
        let bytes = self
            .fx
            .read(&incoming.join("BUNDLE"))
            .map_err(at(incoming))?;
        let new = with_suffix(&bundle, ".sitec-new");
        self.fx.write(&new, &bytes, 0o444).map_err(at(&new))?;
        self.fx.rename(&new, &bundle).map_err(at(&bundle))?;
        seal(self.fx, dest, index)?;
        if !crate::bundle::intact(&*self.fx, dest) {
            return Err(Error::Refused(format!(
                "{} could not be repaired",
                dest.display()
            )));
        }
        self.fx.remove_all(incoming).map_err(at(incoming))?;
        self.fx.sync_all().map_err(at(dest))?;
        self.note(Note::Log(format!(
            "repaired {name}: its copy on the host had been changed"
        )));
        self.note(Note::Warn(format!(
            "{name}: the copy on the host had been changed; repaired"
        )));
        Ok(format!("received {name}"))
    }
}
