//! What a transition from one generation to another does, decided from
//! their indexes alone: the files that change and the actions they ask
//! for, in the order they run; the unit states to apply; the units to
//! retire. No effect: the transition asks the host what these need
//! (whether two secrets differ, whether the distribution ships a unit) and
//! passes the answers in.

use std::collections::{BTreeMap, BTreeSet};

use sitec_format::{Action, UnitState};

use crate::generation::Generation;

/// A managed file (or the file reading a secret) that changes, with the
/// actions that then run and whether the change can cut the operator off.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Change {
    pub path: String,
    pub actions: Vec<Action>,
    pub network: bool,
}

/// The files whose content differs between `from` and `to`: each of
/// `to`'s that `from` lacks or has with another sha256, and each of
/// `from`'s that `to` lacks. The actions are the generation's that names
/// some (`to`'s, else `from`'s: generation 0 names none, so going back to
/// it runs what the generation left asks for); network when either says
/// so.
pub fn file_changes(from: &Generation, to: &Generation) -> Vec<Change> {
    let mut out = Vec::new();
    for (path, t) in to.files() {
        let f = from.file(path);
        if f.is_some_and(|f| f.sha256 == t.sha256) {
            continue;
        }
        let actions = match (t.actions, f) {
            (a, _) if !a.is_empty() => a.to_vec(),
            (_, Some(f)) => f.actions.to_vec(),
            (a, None) => a.to_vec(),
        };
        out.push(Change {
            path: path.to_string(),
            actions,
            network: t.network || f.is_some_and(|f| f.network),
        });
    }
    for (path, f) in from.files() {
        if to.file(path).is_none() {
            out.push(Change {
                path: path.to_string(),
                actions: f.actions.to_vec(),
                network: f.network,
            });
        }
    }
    out
}

/// The file named `path` that asks for some action, `to`'s first: what a
/// changed secret or a repaired store file changes.
fn reader(path: &str, from: &Generation, to: &Generation) -> Option<Change> {
    [to, from].into_iter().find_map(|g| {
        g.file(path)
            .filter(|f| !f.actions.is_empty())
            .map(|f| Change {
                path: path.to_string(),
                actions: f.actions.to_vec(),
                network: f.network,
            })
    })
}

/// A secret whose content differs between the two generations' kept
/// copies (`differs`, the host's answer) changes the file that reads it.
pub fn secret_changes(
    from: &Generation,
    to: &Generation,
    mut differs: impl FnMut(&str) -> bool,
) -> Vec<Change> {
    let pairs: BTreeSet<(&str, &str)> = from.secrets().into_iter().chain(to.secrets()).collect();
    pairs
        .into_iter()
        .filter(|(secret, _)| differs(secret))
        .filter_map(|(_, read_by)| reader(read_by, from, to))
        .collect()
}

/// Files of the store copy being left that a push repaired while it was
/// live: the daemons still run what was edited, so they count as changed.
pub fn repaired_changes(
    from: &Generation,
    to: &Generation,
    repaired: &BTreeSet<String>,
) -> Vec<Change> {
    repaired
        .iter()
        .filter(|p| from.file(p).is_some())
        .filter_map(|p| reader(p, from, to))
        .collect()
}

/// Every change once, sorted.
pub fn all_changes(parts: impl IntoIterator<Item = Vec<Change>>) -> Vec<Change> {
    let set: BTreeSet<Change> = parts.into_iter().flatten().collect();
    set.into_iter().collect()
}

/// The actions the changes ask for, each once, in the order they run: by
/// their kind's rank (`Action::ORDER`), then by name.
pub fn ordered_actions(changes: &[Change]) -> Vec<Action> {
    let mut actions: Vec<Action> = changes
        .iter()
        .flat_map(|c| c.actions.iter().cloned())
        .collect::<BTreeSet<Action>>()
        .into_iter()
        .collect();
    actions.sort_by(|a, b| {
        (a.rank(), a.to_string().as_bytes()).cmp(&(b.rank(), b.to_string().as_bytes()))
    });
    actions
}

/// Where a unit state to apply comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A generation sets it, or generation 0 puts back an explicit one
    /// (enabled, disabled, masked): applied, the unit started or stopped.
    Set,
    /// Generation 0 puts back a state that is no explicit one (static,
    /// indirect, generated): only made so again, whether it runs stays.
    Base,
}

/// A unit state to apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitChange {
    pub unit: String,
    pub state: UnitState,
    pub source: Source,
}

/// What a unit state amounts to: enabled, masked, or else disabled.
fn effective(state: &str) -> UnitState {
    match state {
        "enabled" => UnitState::Enabled,
        "masked" => UnitState::Masked,
        _ => UnitState::Disabled,
    }
}

fn explicit(state: &str) -> bool {
    matches!(state, "enabled" | "disabled" | "masked")
}

/// The unit states to apply going from `from` to `to`. A unit `to` does
/// not name goes back to the state the host had before sitec first set it
/// (generation 0's, `base`), so a state leaves with the generation that set
/// it. Stops before starts: a unit that leaves may hold what one that
/// comes needs (a port, an interface). Each group by unit name.
pub fn unit_changes(
    base: &BTreeMap<String, String>,
    from: &Generation,
    to: &Generation,
) -> Vec<UnitChange> {
    let old = from.units();
    let mut new: BTreeMap<&str, (&str, Source)> = BTreeMap::new();
    if let Generation::Bundle(_) = to {
        for (u, s) in to.units() {
            new.insert(u, (s, Source::Set));
        }
    }
    for u in old.keys() {
        if new.contains_key(u) {
            continue;
        }
        if let Some(b) = base.get(*u) {
            let source = if explicit(b) {
                Source::Set
            } else {
                Source::Base
            };
            new.insert(u, (b.as_str(), source));
        }
    }
    let mut out: Vec<UnitChange> = new
        .into_iter()
        .filter_map(|(u, (s, source))| {
            let was = old.get(u).copied().or(base.get(u).map(String::as_str));
            let state = effective(s);
            (was.is_none_or(|w| effective(w) != state)).then(|| UnitChange {
                unit: u.to_string(),
                state,
                source,
            })
        })
        .collect();
    out.sort_by_key(|c| (c.state == UnitState::Enabled, c.unit.clone()));
    out
}

/// The unit name of a unit file sitec installs (`etc/systemd/system/NAME`).
fn unit_file(path: &str) -> Option<&str> {
    path.strip_prefix("etc/systemd/system/")
        .filter(|n| !n.is_empty() && !n.contains('/'))
}

/// Units whose file `from` has and `to` does not: stopped and disabled
/// while systemd still has the file. A unit that stays on the host is not
/// retired: one whose file generation 0 has (the host's own, put back), or
/// that the distribution ships (`shipped`, the host's answer).
pub fn retired_units(
    base: &Generation,
    from: &Generation,
    to: &Generation,
    mut shipped: impl FnMut(&str) -> bool,
) -> Vec<String> {
    let units = |g: &Generation| -> BTreeSet<String> {
        g.files()
            .filter(|(_, f)| f.sha256.is_some())
            .filter_map(|(p, _)| unit_file(p).map(str::to_string))
            .collect()
    };
    let keep: BTreeSet<String> = units(base).union(&units(to)).cloned().collect();
    units(from)
        .into_iter()
        .filter(|u| !keep.contains(u) && !shipped(u))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generation::Backup;
    use sitec_format::Index;

    fn bundle(text: &str) -> Generation {
        Generation::Bundle(Index::parse(text).unwrap())
    }

    fn backup(text: &str) -> Generation {
        Generation::Backup(Backup::parse(text).unwrap())
    }

    const ONE: &str = "f\tetc/nftables.conf\taa\t0644\ttrue\tnft\tnft-load\n\
        f\tetc/wireguard/wg0.conf\tbb\t0600\ttrue\twg\twg-sync:wg0\n\
        f\tetc/systemd/system/zaino.service\tcc\t0644\tfalse\tsystemd-analyze\tdaemon-reload restart:zaino.service\n\
        s\t/etc/wireguard/wg0.key\tetc/wireguard/wg0.conf\t0\t0\t-\n\
        u\tzaino.service\tenabled\n\
        u\tnginx.service\tmasked\n";

    const TWO: &str = "f\tetc/nftables.conf\ta2\t0644\ttrue\tnft\tnft-load\n\
        f\tetc/wireguard/wg0.conf\tbb\t0600\ttrue\twg\twg-sync:wg0\n\
        f\tetc/nginx/nginx.conf\tdd\t0644\tfalse\tnginx\treload:nginx.service\n\
        s\t/etc/wireguard/wg0.key\tetc/wireguard/wg0.conf\t0\t0\t-\n\
        u\tnginx.service\tenabled\n";

    fn names(actions: &[Action]) -> Vec<String> {
        actions.iter().map(Action::to_string).collect()
    }

    #[test]
    fn changed_and_left_files_run_their_actions_in_order() {
        let (one, two) = (bundle(ONE), bundle(TWO));
        let changes = all_changes([file_changes(&one, &two)]);
        let paths: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "etc/nftables.conf",
                "etc/nginx/nginx.conf",
                "etc/systemd/system/zaino.service"
            ]
        );
        assert_eq!(
            names(&ordered_actions(&changes)),
            [
                "daemon-reload",
                "nft-load",
                "reload:nginx.service",
                "restart:zaino.service"
            ]
        );
        assert!(changes[0].network);
    }

    #[test]
    fn going_back_to_generation_zero_runs_what_the_generation_left_asks() {
        let zero = backup("f\tetc/nftables.conf\tee\t644\nf\tetc/wireguard/wg0.conf\t-\t-\n");
        let changes = file_changes(&bundle(ONE), &zero);
        let nft = changes
            .iter()
            .find(|c| c.path == "etc/nftables.conf")
            .unwrap();
        assert_eq!(names(&nft.actions), ["nft-load"]);
        assert!(nft.network);
        let wg = changes
            .iter()
            .find(|c| c.path == "etc/wireguard/wg0.conf")
            .unwrap();
        assert_eq!(names(&wg.actions), ["wg-sync:wg0"]);
    }

    #[test]
    fn a_changed_secret_changes_its_reader_and_an_unchanged_one_nothing() {
        let (one, two) = (bundle(ONE), bundle(TWO));
        let changed = secret_changes(&one, &two, |p| p == "/etc/wireguard/wg0.key");
        assert_eq!(changed.len(), 1);
        assert_eq!(names(&changed[0].actions), ["wg-sync:wg0"]);
        assert!(secret_changes(&one, &two, |_| false).is_empty());
        let repaired = BTreeSet::from(["etc/wireguard/wg0.conf".to_string()]);
        assert_eq!(repaired_changes(&one, &two, &repaired), changed);
    }

    #[test]
    fn unit_states_stop_before_they_start_and_leave_with_their_generation() {
        let base: BTreeMap<String, String> =
            [("nginx.service", "enabled"), ("zaino.service", "not-found")]
                .into_iter()
                .map(|(u, s)| (u.to_string(), s.to_string()))
                .collect();
        let changes = unit_changes(&base, &bundle(ONE), &bundle(TWO));
        let got: Vec<(&str, UnitState, Source)> = changes
            .iter()
            .map(|c| (c.unit.as_str(), c.state, c.source))
            .collect();
        assert_eq!(
            got,
            [
                ("zaino.service", UnitState::Disabled, Source::Base),
                ("nginx.service", UnitState::Enabled, Source::Set),
            ]
        );
        // Nothing to do where the state stays what it was.
        assert!(unit_changes(&base, &bundle(TWO), &bundle(TWO)).is_empty());
        // Back to generation 0: the host's own explicit state is set again.
        let zero = backup("u\tnginx.service\tenabled\nu\tzaino.service\tnot-found\n");
        let back = unit_changes(&base, &bundle(ONE), &zero);
        assert_eq!(back[0].unit, "zaino.service");
        assert_eq!(
            (back[1].state, back[1].source),
            (UnitState::Enabled, Source::Set)
        );
    }

    #[test]
    fn a_unit_file_that_leaves_is_retired_unless_it_stays_on_the_host() {
        let zero = backup("");
        let (one, two) = (bundle(ONE), bundle(TWO));
        assert_eq!(
            retired_units(&zero, &one, &two, |_| false),
            ["zaino.service"]
        );
        assert!(retired_units(&zero, &one, &two, |u| u == "zaino.service").is_empty());
        let own = backup("f\tetc/systemd/system/zaino.service\tff\t644\n");
        assert!(retired_units(&own, &one, &two, |_| false).is_empty());
        assert!(retired_units(&zero, &two, &one, |_| false).is_empty());
    }
}
