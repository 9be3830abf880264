//! Old generations let go: a host keeps the newest [`KEEP`] generations
//! and every one a way back may need; older ones go with their secrets,
//! their results and the store copies nothing else uses, so that a
//! rotated key does not stay on the host for good.
//!
//! Kept, whatever their age: generation 0 (the host as sitec found it),
//! the live one and the one it was switched from (which an operator's
//! rollback to an old generation makes old), the one the operator's
//! rollback goes to, the one an
//! unconfirmed boot goes back to, and every generation a state file
//! names (the journal, `armed`, `boot-armed`, `boot-files`, `booted`,
//! `boot-rolled-back`). Collection runs only where the host is settled
//! (a switch that needs no confirmation, a confirmation), under the
//! activation lock.
//!
//! Crash-safe by its order: the generation links go first, synced, then
//! their secrets and results, then the store copies only they used. A
//! crash leaves no link to anything missing; secrets and results it left
//! behind are removed by the next collection (a number below the newest
//! generation with no link is never a generation again), a store copy it
//! left behind stays as one never switched to does.

use std::collections::BTreeSet;
use std::path::Path;

use crate::effects::{Effects, EffectsExt as _, Kind};
use crate::host::{Error, HostState, at, number};
use crate::index::Gen;
use crate::transition::Agent;

type R<T> = Result<T, Error>;

/// How many of the newest generations a host keeps (the live one
/// included).
pub const KEEP: usize = 10;

/// The store copy name a generation link (`../store/NAME`) points at.
fn store_name(target: &Path) -> Option<String> {
    let rest = target.strip_prefix("../store").ok()?;
    let name = rest.to_str()?;
    (!name.is_empty() && !name.contains('/')).then(|| name.to_string())
}

impl<F: Effects> Agent<'_, F> {
    /// The generations among the first `words` words of each line of
    /// state file `path`.
    fn named_in(&self, path: &Path, words: usize) -> Vec<Gen> {
        let text = self.fx.text(path).unwrap_or_default();
        text.lines()
            .flat_map(|l| l.split_whitespace().take(words))
            .filter_map(number)
            .collect()
    }

    /// The generations kept (see the module's doc), and `previous`: the
    /// generation the live one was switched from (after an operator's
    /// rollback to an old generation, a way back no rule above names).
    pub fn kept(&self, previous: Gen) -> R<BTreeSet<Gen>> {
        self.kept_in(&self.state()?, previous)
    }

    /// [`Agent::kept`] of the host state `state`, read once by its caller.
    fn kept_in(&self, state: &HostState, previous: Gen) -> R<BTreeSet<Gen>> {
        let live = state.current.unwrap_or(Gen(0));
        let mut keep: BTreeSet<Gen> = state.generations.keys().rev().take(KEEP).copied().collect();
        keep.insert(Gen(0));
        keep.insert(live);
        keep.insert(previous);
        keep.extend(state.rollback_target(live));
        keep.insert(self.boot_target()?);
        if let Some(j) = &state.journal {
            keep.extend([j.from, j.to]);
        }
        if let Some(a) = state.armed {
            keep.extend([a.generation, a.previous]);
        }
        keep.extend(state.boot_awaiting);
        // `boot-files` GEN...; `booted` GEN BOOT-ID; `boot-rolled-back`
        // GEN TO BOOT-ID; `boot-armed` GEN TIMEOUT ...
        for (path, words) in [
            (self.layout.boot_files(), usize::MAX),
            (self.layout.booted(), 1),
            (self.layout.boot_rolled_back(), 2),
            (self.layout.boot_armed(), 1),
        ] {
            keep.extend(self.named_in(&path, words));
        }
        Ok(keep)
    }

    /// Lets go of the generations [`Agent::kept`] does not keep (the live
    /// one switched from `previous`); returns them. Only where the host is
    /// settled: nothing while a transition, a confirmation or a boot's
    /// confirmation is pending.
    pub fn collect(&mut self, previous: Gen) -> R<Vec<Gen>> {
        let state = self.state()?;
        // Nothing to let go of (and nothing a collection left: it ran only
        // with more generations than it keeps, and left at least as many).
        let numbered = state.generations.keys().filter(|g| g.0 != 0).count();
        if numbered <= KEEP {
            return Ok(Vec::new());
        }
        if state.journal.is_some() || state.armed.is_some() || state.boot_awaiting.is_some() {
            return Ok(Vec::new());
        }
        let keep = self.kept_in(&state, previous)?;
        let gone: Vec<Gen> = state
            .generations
            .keys()
            .filter(|g| !keep.contains(g))
            .copied()
            .collect();
        let kept_copies: BTreeSet<String> = state
            .generations
            .iter()
            .filter(|(g, _)| keep.contains(g))
            .filter_map(|(_, t)| store_name(t))
            .collect();
        // A pulled release on its way may be an old generation's bundle.
        let pulled: Vec<String> = ["pending", "applying"]
            .iter()
            .filter_map(|f| self.fx.text(&self.layout.pull().join(f)))
            .filter_map(|t| t.split_whitespace().nth(2).map(|h| format!("{h}-")))
            .collect();
        let copies: BTreeSet<String> = gone
            .iter()
            .filter_map(|g| state.generations.get(g).and_then(|t| store_name(t)))
            .filter(|n| {
                !kept_copies.contains(n) && !pulled.iter().any(|p| n.starts_with(p.as_str()))
            })
            .collect();
        // The links first, on disk before anything they lead to goes.
        for g in &gone {
            let link = self.layout.generation(*g);
            self.fx.remove(&link).map_err(at(&link))?;
        }
        if !gone.is_empty() {
            let dir = self.layout.generations();
            self.fx.sync_dir(&dir).map_err(at(&dir))?;
        }
        // Secrets and results of a number below the newest generation that
        // has no link (these, and what a crashed collection left).
        let newest = state
            .generations
            .keys()
            .next_back()
            .copied()
            .unwrap_or(Gen(0));
        let linked = |g: &Gen| g.0 == 0 || (state.generations.contains_key(g) && !gone.contains(g));
        for dir in [self.layout.secrets(), self.layout.results()] {
            if self.fx.kind(&dir).map_err(at(&dir))? != Some(Kind::Dir) {
                continue;
            }
            for name in self.fx.list(&dir).map_err(at(&dir))? {
                let Some(g) = name.to_str().and_then(number) else {
                    continue;
                };
                if g < newest && !linked(&g) {
                    let path = dir.join(&name);
                    self.fx.remove_all(&path).map_err(at(&path))?;
                }
            }
        }
        for name in &copies {
            let path = self.layout.store_copy(name);
            self.fx.remove_all(&path).map_err(at(&path))?;
        }
        Ok(gone)
    }
}
