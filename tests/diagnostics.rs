//! Every diagnostic, from a self-describing site under `tests/diagnostics/`.
//!
//! Each `*.ncl` file is a whole site whose first line names the code it must
//! produce: `# wg::duplicate-key: two members share one public key`. Lines
//! `# key NAME VALUE` put a file NAME holding VALUE into a keys directory
//! passed with `--keys`. The case runs through the real CLI twice, and the
//! full output is snapshotted: the graphical report (colours off) and
//! `--format json`. Adding a case is dropping in a file and reviewing its
//! snapshots with `cargo insta review`.

mod support;

use std::path::{Path, PathBuf};

use support::{project_root, schema_project, sitec, write_site};

fn cases() -> Vec<PathBuf> {
    support::case_files("diagnostics", "ncl")
}

/// A case file: a whole site, and what its header says it produces.
struct Case {
    name: String,
    text: String,
    /// The code it must produce (the first line, up to the colon).
    code: String,
    /// The first line, shown in the snapshots' header.
    description: String,
    /// `# key FILE VALUE` lines: files of the `--keys` directory.
    keys: Vec<KeyFile>,
}

struct KeyFile {
    file: String,
    value: String,
}

impl Case {
    fn read(path: &Path) -> Case {
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        let text = std::fs::read_to_string(path).unwrap();
        let description = text.lines().next().unwrap_or("").to_string();
        let code = description
            .strip_prefix("# ")
            .and_then(|l| l.split_once(": "))
            .map(|(code, _)| code.to_string())
            .unwrap_or_else(|| {
                panic!("{name}: the first line must be `# CODE: description`, got {description:?}")
            });
        let keys = text
            .lines()
            .filter_map(|l| l.strip_prefix("# key "))
            .map(|l| {
                let (file, value) = l
                    .split_once(' ')
                    .unwrap_or_else(|| panic!("{name}: `# key FILE VALUE`, got {l:?}"));
                KeyFile {
                    file: file.to_string(),
                    value: value.to_string(),
                }
            })
            .collect();
        Case {
            name,
            text,
            code,
            description,
            keys,
        }
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `sitec check NAME [extra]` in a project holding only this case.
fn run_case(case: &Case, extra: &[&str]) -> Run {
    let tmp = schema_project("diag");
    write_site(tmp.path(), &case.name, &case.text);
    let mut args = vec!["check".to_string(), case.name.clone()];
    if !case.keys.is_empty() {
        let dir = tmp.path().join("keys");
        std::fs::create_dir_all(&dir).unwrap();
        for k in &case.keys {
            std::fs::write(dir.join(&k.file), format!("{}\n", k.value)).unwrap();
        }
        args.extend(["--keys".to_string(), "keys".to_string()]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let o = sitec()
        .current_dir(tmp.path())
        .args(&args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// One case: it produces its code, every finding is located, the exit code
/// follows the severities, and both renderings are snapshotted.
fn case(stem: &str) {
    let case = Case::read(&project_root().join(format!("tests/diagnostics/{stem}.ncl")));
    let (name, code) = (&case.name, &case.code);
    let json = run_case(&case, &["--format", "json"]);
    let found: Vec<serde_json::Value> = serde_json::from_str(&json.stdout)
        .unwrap_or_else(|e| panic!("{name}: --format json is not JSON ({e}):\n{}", json.stdout));
    assert!(
        found.iter().any(|d| d["code"] == code.as_str()),
        "{name}: no `{code}` among {found:#?}\n{}",
        json.stderr
    );
    for d in &found {
        for field in [
            "site", "code", "severity", "message", "help", "file", "line", "column",
        ] {
            assert!(!d[field].is_null(), "{name}: `{field}` missing in {d:#}");
        }
        let file = d["file"].as_str().unwrap();
        assert!(
            file.ends_with(&format!("sites/{name}/site.ncl")) || file.starts_with("schemas/"),
            "{name}: {d:#}"
        );
    }
    let errors = found.iter().any(|d| d["severity"] == "error");
    assert_eq!(
        json.code,
        i32::from(errors),
        "{name}: exit code\n{}",
        json.stderr
    );

    let text_run = run_case(&case, &[]);
    assert_eq!(text_run.code, json.code, "{name}: text and json disagree");
    assert!(
        text_run.stdout.is_empty(),
        "{name}: diagnostics belong on stderr"
    );
    assert!(
        text_run.stderr.contains(code.as_str()),
        "{name}: {}",
        text_run.stderr
    );

    insta::with_settings!({ snapshot_path => "snapshots/diagnostics", prepend_module_to_snapshot => false, description => case.description.clone() }, {
        insta::assert_snapshot!(format!("{name}.txt"), text_run.stderr);
        insta::assert_snapshot!(format!("{name}.json"), json.stdout);
    });
}

// One test per file of tests/diagnostics/, generated by compiler/build.rs.
include!(concat!(env!("OUT_DIR"), "/diagnostics_cases.rs"));

#[test]
fn the_cases_are_there() {
    assert!(cases().len() > 30, "cases went missing: {}", cases().len());
}

#[test]
fn every_code_has_a_case() {
    let covered: Vec<String> = cases().iter().map(|c| Case::read(c).code).collect();
    let o = sitec().arg("explain").output().unwrap();
    let codes = String::from_utf8(o.stdout).unwrap();
    assert!(
        codes.lines().count() > 30,
        "`sitec explain` lists too few codes:\n{codes}"
    );
    let missing: Vec<&str> = codes
        .lines()
        // internal:: codes mean a bug in sitec (no site is known to cause
        // one); io::error is not about a site's content (tests/cli.rs has it).
        .filter(|c| {
            !c.starts_with("internal::") && *c != "io::error" && !covered.iter().any(|k| k == c)
        })
        .collect();
    assert!(
        missing.is_empty(),
        "codes without a case in tests/diagnostics/: {missing:?}"
    );
}

#[test]
fn diagnostics_md_is_current() {
    let o = sitec().args(["explain", "--all"]).output().unwrap();
    assert!(o.status.success());
    let generated = String::from_utf8(o.stdout).unwrap();
    let committed =
        std::fs::read_to_string(project_root().join("DIAGNOSTICS.md")).unwrap_or_default();
    assert!(
        generated == committed,
        "DIAGNOSTICS.md is out of date; run `cargo run -- explain --all > DIAGNOSTICS.md`"
    );
}

#[test]
fn explain_prints_one_code_and_refuses_unknown_ones() {
    let o = sitec()
        .args(["explain", "firewall::lockout"])
        .output()
        .unwrap();
    assert!(o.status.success());
    let text = String::from_utf8(o.stdout).unwrap();
    for part in [
        "firewall::lockout",
        "What it catches:",
        "Why it matters:",
        "Example:",
    ] {
        assert!(text.contains(part), "{text}");
    }
    let o = sitec().args(["explain", "no::such-code"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
}
