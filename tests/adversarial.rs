//! Injection: no string of a site can break out of the syntax of the file it
//! lands in. Every string literal of `tests/adversarial/site.ncl` (which sets
//! every string field of the schema, and writes every key that reaches a file
//! as a quoted string) is replaced, one at a time, by itself with a hostile
//! character or an oversized tail appended. Each variant must end in one of:
//!
//! - a located diagnostic (file, line and column in the site), or
//! - bundles that hold the value intact and still pass the daemons' own
//!   validators (the host agent's `check --stand-ins`).
//!
//! Never a silently broken file, never a panic, never an I/O error.

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use rayon::prelude::*;
use sitec::{Bundle, Options, Project, SiteFailure};
use support::{TempDir, project_root, schema_project, write_site};

/// What is appended to a string, and its name in failure messages.
const HOSTILE: &[(&str, &str)] = &[
    ("newline", "\n"),
    ("carriage return", "\r"),
    ("tab", "\t"),
    ("double quote", "\""),
    ("single quote", "'"),
    ("backslash", "\\"),
    ("semicolon", ";"),
    ("open brace", "{"),
    ("close brace", "}"),
    ("open bracket", "["),
    ("close bracket", "]"),
    ("hash", "#"),
    ("NUL", "\0"),
    ("escape", "\x1b"),
    ("dollar", "$"),
    ("percent", "%"),
    ("backtick", "`"),
    ("space", " "),
    ("equals", "="),
    ("non-ASCII", "é"),
];

/// Nickel string literal syntax for any text.
fn nickel_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '%' => out.push_str("\\%"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Every string literal outside comments: (byte range of its content, content).
fn literals(text: &str) -> Vec<(std::ops::Range<usize>, String)> {
    let mut found = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if !line.trim_start().starts_with('#') {
            let mut start = None;
            for (i, c) in line.char_indices() {
                if c != '"' {
                    continue;
                }
                match start.take() {
                    None => start = Some(i + 1),
                    Some(s) => found.push((offset + s..offset + i, line[s..i].to_string())),
                }
            }
        }
        offset += line.len();
    }
    found
}

fn compile(dir: &Path, site_text: &str) -> Result<Vec<Bundle>, SiteFailure> {
    write_site(dir, "adv", site_text);
    let project = Project {
        root: dir.to_path_buf(),
    };
    project
        .compile("adv", &Options::default())
        .map(|c| c.bundles)
}

/// A project holding a copy of schemas/, with `schema_edit` (from, to)
/// applied to types.ncl when given.
fn new_project(tag: &str, schema_edit: Option<(&str, &str)>) -> TempDir {
    let tmp = schema_project(tag);
    if let Some((from, to)) = schema_edit {
        let types = tmp.path().join("schemas/types.ncl");
        let text = std::fs::read_to_string(&types).unwrap();
        assert!(text.contains(from), "the schema edit must apply");
        std::fs::write(&types, text.replacen(from, to, 1)).unwrap();
    }
    tmp
}

/// Whether the bundles carry `value` byte for byte (manifest.json as decoded JSON).
fn carries(bundles: &[Bundle], value: &str) -> bool {
    bundles.iter().any(|b| {
        b.files.iter().any(|(path, f)| {
            let text = String::from_utf8_lossy(&f.content);
            text.contains(value)
                || (path == "manifest.json"
                    && serde_json::from_slice::<serde_json::Value>(&f.content)
                        .is_ok_and(|j| json_contains(&j, value)))
        })
    })
}

fn json_contains(v: &serde_json::Value, value: &str) -> bool {
    match v {
        serde_json::Value::String(s) => s.contains(value),
        serde_json::Value::Array(a) => a.iter().any(|x| json_contains(x, value)),
        serde_json::Value::Object(o) => o
            .iter()
            .any(|(k, x)| k.contains(value) || json_contains(x, value)),
        _ => false,
    }
}

enum Outcome {
    Located,
    Accepted(Vec<Bundle>),
    Failed(String),
}

/// What a run over the variants found.
struct Summary {
    strings: usize,
    variants: usize,
    accepted: usize,
    failures: Vec<String>,
}

/// Runs every hostile variant of every string literal for which `only`
/// holds, against schemas/ with `schema_edit` applied.
fn run(schema_edit: Option<(&str, &str)>, only: impl Fn(&str) -> bool) -> Summary {
    let base_text =
        std::fs::read_to_string(project_root().join("tests/adversarial/site.ncl")).unwrap();
    let base_dir = new_project("adv-base", schema_edit);
    let base = compile(base_dir.path(), &base_text)
        .unwrap_or_else(|e| panic!("the base site must compile: {e:?}"));
    let base_hash: BTreeMap<String, String> = base
        .iter()
        .map(|b| (b.host.clone(), b.hash.clone()))
        .collect();
    let lits: Vec<_> = literals(&base_text)
        .into_iter()
        .filter(|(_, s)| only(s))
        .collect();

    let mut variants = Vec::new();
    for (range, original) in &lits {
        for (name, h) in HOSTILE {
            variants.push((
                range.clone(),
                format!("{name} appended to {original:?}"),
                format!("{original}{h}"),
            ));
        }
        variants.push((
            range.clone(),
            format!("5000 characters appended to {original:?}"),
            format!("{original}{}", "a".repeat(5000)),
        ));
    }

    let outcomes: Vec<(String, String, Outcome)> = variants
        .par_iter()
        .map(|(range, what, value)| {
            let text = format!(
                "{}{}{}",
                &base_text[..range.start],
                nickel_escape(value),
                &base_text[range.end..]
            );
            let dir = new_project("adv", schema_edit);
            let outcome = match compile(dir.path(), &text) {
                Err(SiteFailure::Invalid(reports)) => {
                    if reports
                        .iter()
                        .any(|r| r.file.is_some() && r.line.is_some() && r.column.is_some())
                    {
                        Outcome::Located
                    } else {
                        Outcome::Failed(format!("no located diagnostic: {reports:#?}"))
                    }
                }
                Err(SiteFailure::Io(e)) => Outcome::Failed(format!("I/O error: {}", e.message)),
                Ok(bundles) => Outcome::Accepted(bundles),
            };
            (what.clone(), value.clone(), outcome)
        })
        .collect();

    let mut failures = Vec::new();
    let mut accepted = 0;
    for (what, value, outcome) in &outcomes {
        match outcome {
            Outcome::Located => {}
            Outcome::Failed(why) => failures.push(format!("{what}: {why}")),
            Outcome::Accepted(bundles) => {
                accepted += 1;
                if !carries(bundles, value) {
                    failures.push(format!(
                        "{what}: accepted, but no generated file holds the value intact"
                    ));
                    continue;
                }
                // Every host whose bundle changed goes through the real validators.
                let out = TempDir::new("adv-out");
                sitec::write_site(out.path(), "adv", bundles).unwrap();
                for b in bundles
                    .iter()
                    .filter(|b| base_hash.get(&b.host) != Some(&b.hash))
                {
                    let o = std::process::Command::new(support::agent_source())
                        .args(["check", "--stand-ins"])
                        .arg(out.path().join("adv").join(&b.host))
                        .output()
                        .unwrap();
                    if !o.status.success() {
                        failures.push(format!(
                            "{what}: accepted, but {}'s bundle fails its validator:\n{}{}",
                            b.host,
                            String::from_utf8_lossy(&o.stdout),
                            String::from_utf8_lossy(&o.stderr)
                        ));
                    }
                }
            }
        }
    }
    Summary {
        strings: lits.len(),
        variants: outcomes.len(),
        accepted,
        failures,
    }
}

#[test]
fn no_hostile_string_breaks_a_generated_file() {
    let s = run(None, |_| true);
    assert!(
        s.strings > 100,
        "the base site lost its strings: {}",
        s.strings
    );
    eprintln!(
        "{} variants of {} strings: {} refused with a located diagnostic, {} accepted and validated",
        s.variants,
        s.strings,
        s.variants - s.accepted - s.failures.len(),
        s.accepted
    );
    assert!(
        s.failures.is_empty(),
        "{} variants failed:\n{}",
        s.failures.len(),
        s.failures.join("\n")
    );
}

/// The harness can fail: with the one-line-text contract weakened to accept
/// anything, a quote in a firewall rule comment reaches nftables.conf and
/// the real `nft` load refuses it.
#[test]
fn a_weakened_contract_is_caught() {
    let s = run(
        Some((
            "\"^[A-Za-z0-9 ._,:/()+=@-]{0,200}$\"",
            "\"^(.|\\n){0,200}$\"",
        )),
        |lit| lit == "loopback first",
    );
    assert!(
        s.failures.iter().any(|f| f.starts_with("double quote appended to \"loopback first\": accepted, but pve1's bundle fails its validator")),
        "the weakened contract went unnoticed: {:#?}",
        s.failures
    );
}
