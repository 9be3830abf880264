//! What `compile` would change in `out/`, told for review: per host the
//! bundle hash before and after, each added, removed or changed file with a
//! unified diff, the actions activation will run, unit state changes, and
//! whether the change arms confirm-or-rollback. Pure: the committed bundles
//! come in as data (read by `write::read_site`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Serialize;

use crate::bundle::manifest::Manifest;
use crate::bundle::{BaseSite, Bundle, BundleFile};
use crate::render::Action;

#[derive(Debug, Serialize)]
pub struct SitePlan {
    pub site: String,
    pub hosts: Vec<HostPlan>,
}

#[derive(Debug, Serialize)]
pub struct HostPlan {
    pub host: String,
    /// Bundle hash in the base (`None`: a new host).
    pub before: Option<String>,
    /// Bundle hash after compile (`None`: the host is gone from the site).
    pub after: Option<String>,
    pub files: Vec<FileChange>,
    /// What activation runs, in its order.
    pub actions: Vec<String>,
    pub units: Vec<UnitChange>,
    /// nftables, interfaces, WireGuard or sshd changed: the switch must be
    /// confirmed or it rolls back.
    pub network: bool,
    /// Changed files that take effect only at the next boot (the kernel
    /// command line, module options): the host needs a reboot.
    pub reboot: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct FileChange {
    pub path: String,
    pub change: Change,
    /// Unified diff; `None` when withheld, for a mode change, and for a
    /// manifest in which only file hashes changed (the files show those).
    pub diff: Option<String>,
    /// The file looks like it holds a secret: its content is never shown.
    pub withheld: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Added,
    Removed,
    Changed,
    /// Only the executable bit (the one mode git keeps).
    Mode,
}

impl Change {
    fn word(self) -> &'static str {
        match self {
            Change::Added => "added",
            Change::Removed => "removed",
            Change::Changed => "changed",
            Change::Mode => "mode changed",
        }
    }
}

#[derive(Debug, Serialize)]
pub struct UnitChange {
    pub unit: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

impl SitePlan {
    pub fn changed(&self) -> bool {
        self.hosts.iter().any(HostPlan::changed)
    }
}

impl HostPlan {
    pub fn changed(&self) -> bool {
        self.before != self.after
    }
}

/// Compares the compiled bundles with the base.
pub fn plan(site: &str, base: &BaseSite, bundles: &[Bundle]) -> SitePlan {
    let after: BTreeMap<&str, &BTreeMap<String, BundleFile>> = bundles
        .iter()
        .map(|b| (b.host.as_str(), &b.files))
        .collect();
    let empty = BTreeMap::new();
    let hosts: BTreeSet<&str> = base
        .keys()
        .map(String::as_str)
        .chain(after.keys().copied())
        .collect();
    let hosts = hosts
        .into_iter()
        .map(|host| {
            host_plan(
                host,
                base.get(host).unwrap_or(&empty),
                after.get(host).copied(),
            )
        })
        .collect();
    SitePlan {
        site: site.to_string(),
        hosts,
    }
}

fn host_plan(
    host: &str,
    before: &BTreeMap<String, BundleFile>,
    after: Option<&BTreeMap<String, BundleFile>>,
) -> HostPlan {
    let empty = BTreeMap::new();
    let after_files = after.unwrap_or(&empty);
    let hash = |files: &BTreeMap<String, BundleFile>| {
        files
            .get("BUNDLE")
            .map(|f| String::from_utf8_lossy(&f.content).trim().to_string())
    };
    // A manifest that does not parse (hand-edited, from another sitec)
    // contributes no actions or units; its diff still shows.
    let manifest = |files: &BTreeMap<String, BundleFile>| {
        files
            .get("manifest.json")
            .and_then(|f| Manifest::from_json(&f.content).ok())
    };
    let (m_before, m_after) = (manifest(before), manifest(after_files));
    let paths: BTreeSet<&String> = before.keys().chain(after_files.keys()).collect();
    let mut files = Vec::new();
    let mut actions = BTreeSet::new();
    let mut network = false;
    let mut reboot = Vec::new();
    for path in paths {
        if path == "BUNDLE" {
            continue;
        }
        let change = match (before.get(path), after_files.get(path)) {
            (None, Some(_)) => Change::Added,
            (Some(_), None) => Change::Removed,
            (Some(a), Some(b)) if a.content != b.content => Change::Changed,
            (Some(a), Some(b)) if (a.mode & 0o111 != 0) != (b.mode & 0o111 != 0) => Change::Mode,
            _ => continue,
        };
        let old = before
            .get(path)
            .map(|f| f.content.as_slice())
            .unwrap_or(&[]);
        let new = after_files
            .get(path)
            .map(|f| f.content.as_slice())
            .unwrap_or(&[]);
        let withheld = looks_secret(old) || looks_secret(new);
        // The index says what the manifest says: its diff would repeat it.
        let only_hashes = path == "index"
            || path == "manifest.json" && without_hashes(old) == without_hashes(new);
        let diff =
            (!withheld && change != Change::Mode && !only_hashes).then(|| unified(path, old, new));
        let entry = [&m_after, &m_before]
            .into_iter()
            .flatten()
            .find_map(|m| m.files.get(path.as_str()));
        if let Some(entry) = entry {
            actions.extend(entry.actions.iter().cloned());
            network |= entry.network;
            if entry.actions.iter().any(Action::needs_reboot) {
                reboot.push(path.clone());
            }
        }
        files.push(FileChange {
            path: path.clone(),
            change,
            diff,
            withheld,
        });
    }
    HostPlan {
        host: host.to_string(),
        before: hash(before),
        after: after.and_then(hash),
        files,
        actions: in_activation_order(actions),
        units: unit_changes(m_before.as_ref(), m_after.as_ref()),
        network,
        reboot,
    }
}

/// The actions as `activate` runs them: by `Action::rank`, then by name.
fn in_activation_order(actions: BTreeSet<Action>) -> Vec<String> {
    let mut actions: Vec<Action> = actions.into_iter().collect();
    actions.sort_by_key(|a| (a.rank(), a.to_string()));
    actions.iter().map(Action::to_string).collect()
}

fn unit_changes(before: Option<&Manifest>, after: Option<&Manifest>) -> Vec<UnitChange> {
    let states = |m: Option<&Manifest>| -> BTreeMap<String, String> {
        m.into_iter()
            .flat_map(|m| &m.units)
            .map(|(k, v)| (k.clone(), v.as_str().to_string()))
            .collect()
    };
    let (b, a) = (states(before), states(after));
    let units: BTreeSet<&String> = b.keys().chain(a.keys()).collect();
    units
        .into_iter()
        .filter(|u| b.get(*u) != a.get(*u))
        .map(|u| UnitChange {
            unit: u.clone(),
            before: b.get(u).cloned(),
            after: a.get(u).cloned(),
        })
        .collect()
}

/// A bundle should never hold a secret (the site names secret files, their
/// content stays on the host); if one slipped in, the plan must not print it.
fn looks_secret(content: &[u8]) -> bool {
    let text = String::from_utf8_lossy(content);
    text.contains("PRIVATE KEY-----")
        || text.lines().any(|l| {
            l.trim_start()
                .to_ascii_lowercase()
                .starts_with("privatekey")
        })
}

fn without_hashes(manifest: &[u8]) -> String {
    String::from_utf8_lossy(manifest)
        .lines()
        .filter(|l| !l.trim_start().starts_with("\"sha256\":"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn unified(path: &str, old: &[u8], new: &[u8]) -> String {
    let (old, new) = (String::from_utf8_lossy(old), String::from_utf8_lossy(new));
    similar::TextDiff::from_lines(old.as_ref(), new.as_ref())
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{path}"), &format!("b/{path}"))
        .to_string()
}

fn short(hash: &Option<String>) -> String {
    match hash {
        Some(h) => h.chars().take(12).collect(),
        None => "(none)".to_string(),
    }
}

fn summary(h: &HostPlan) -> String {
    match (&h.before, &h.after) {
        (None, _) => "new host".to_string(),
        (_, None) => "removed from the site".to_string(),
        _ => format!("{} file(s) changed", h.files.len()),
    }
}

fn unit_line(u: &UnitChange) -> String {
    format!(
        "{}: {} -> {}",
        u.unit,
        u.before.as_deref().unwrap_or("(none)"),
        u.after.as_deref().unwrap_or("(none)")
    )
}

const ARMED: &str = "touches the network: confirm-or-rollback will be armed";

/// What the plan says of changes that wait for the next boot.
fn reboot_line(h: &HostPlan) -> String {
    format!(
        "needs a reboot: {} take effect at the next boot",
        h.reboot.join(", ")
    )
}

impl SitePlan {
    /// For a terminal.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for h in &self.hosts {
            let name = format!("{}/{}", self.site, h.host);
            if !h.changed() {
                let _ = writeln!(s, "{name}: unchanged ({})", short(&h.after));
                continue;
            }
            let _ = writeln!(
                s,
                "{name}: {} -> {} ({})",
                short(&h.before),
                short(&h.after),
                summary(h)
            );
            for f in &h.files {
                let _ = writeln!(s, "  {} {}", f.change.word(), f.path);
            }
            if !h.actions.is_empty() {
                let _ = writeln!(s, "  actions: {}", h.actions.join(", "));
            }
            for u in &h.units {
                let _ = writeln!(s, "  unit {}", unit_line(u));
            }
            if h.network {
                let _ = writeln!(s, "  {ARMED}");
            }
            if !h.reboot.is_empty() {
                let _ = writeln!(s, "  {}", reboot_line(h));
            }
            for f in &h.files {
                if f.withheld {
                    let _ = writeln!(s, "\n  {}: content withheld (looks like a secret)", f.path);
                } else if let Some(d) = &f.diff {
                    let _ = write!(s, "\n{d}");
                }
            }
            s.push('\n');
        }
        s
    }

    /// For a pull-request comment: a table, then a collapsible section per
    /// changed host.
    pub fn markdown(&self) -> String {
        let mut s = format!("### sitec plan: `{}`\n\n", self.site);
        s.push_str("| host | before | after | change | actions | network |\n");
        s.push_str("| --- | --- | --- | --- | --- | --- |\n");
        for h in &self.hosts {
            let change = if h.changed() {
                summary(h)
            } else {
                "unchanged".to_string()
            };
            let actions = if h.actions.is_empty() {
                String::new()
            } else {
                format!("`{}`", h.actions.join("`, `"))
            };
            let _ = writeln!(
                s,
                "| {} | `{}` | `{}` | {change} | {actions} | {} |",
                h.host,
                short(&h.before),
                short(&h.after),
                if h.network { "confirm-or-rollback" } else { "" }
            );
        }
        for h in self.hosts.iter().filter(|h| h.changed()) {
            let _ = write!(
                s,
                "\n<details><summary><b>{}</b>: {}</summary>\n\n",
                h.host,
                summary(h)
            );
            if h.network {
                let _ = writeln!(s, "**{ARMED}**\n");
            }
            if !h.reboot.is_empty() {
                let _ = writeln!(s, "**{}**\n", reboot_line(h));
            }
            for u in &h.units {
                let _ = writeln!(s, "- unit {}", unit_line(u));
            }
            for f in &h.files {
                let _ = writeln!(s, "- {} `{}`", f.change.word(), f.path);
            }
            for f in &h.files {
                if f.withheld {
                    let _ = writeln!(s, "\n`{}`: content withheld (looks like a secret)", f.path);
                } else if let Some(d) = &f.diff {
                    let fence = if d.contains("```") { "````" } else { "```" };
                    let _ = write!(s, "\n{fence}diff\n{d}{fence}\n");
                }
            }
            s.push_str("\n</details>\n");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> BundleFile {
        BundleFile {
            mode: 0o644,
            content: text.as_bytes().to_vec(),
        }
    }

    #[test]
    fn a_secret_is_never_printed() {
        let mut base = BaseSite::new();
        base.insert(
            "h".into(),
            [
                ("BUNDLE".to_string(), file("a\n")),
                ("etc/k".to_string(), file("x\n")),
            ]
            .into(),
        );
        let after = Bundle {
            host: "h".into(),
            files: [
                ("BUNDLE".to_string(), file("b\n")),
                (
                    "etc/k".to_string(),
                    file("[Interface]\nPrivateKey = c2VjcmV0\n"),
                ),
            ]
            .into(),
            hash: "b".into(),
        };
        let p = plan("s", &base, &[after]);
        assert!(p.hosts[0].files[0].withheld);
        for out in [p.text(), p.markdown(), serde_json::to_string(&p).unwrap()] {
            assert!(!out.contains("c2VjcmV0"), "{out}");
        }
    }
}
