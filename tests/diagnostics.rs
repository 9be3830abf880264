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

/// The code a case says it produces (its first line, up to the colon).
fn expected_code(text: &str) -> String {
    let first = text.lines().next().unwrap_or("");
    first
        .strip_prefix("# ")
        .and_then(|l| l.split_once(": "))
        .map(|(code, _)| code.to_string())
        .unwrap_or_else(|| panic!("first line must be `# CODE: description`, got {first:?}"))
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `sitec check NAME [extra]` in a project holding only this case.
fn run_case(case: &Path, extra: &[&str]) -> Run {
    let name = case.file_stem().unwrap().to_str().unwrap();
    let text = std::fs::read_to_string(case).unwrap();
    let tmp = schema_project("diag");
    write_site(tmp.path(), name, &text);
    let mut args = vec!["check".to_string(), name.to_string()];
    let keys: Vec<(&str, &str)> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# key "))
        .filter_map(|l| l.split_once(' '))
        .collect();
    if !keys.is_empty() {
        let dir = tmp.path().join("keys");
        std::fs::create_dir_all(&dir).unwrap();
        for (file, value) in keys {
            std::fs::write(dir.join(file), format!("{value}\n")).unwrap();
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

#[test]
fn every_case_produces_its_code_located_and_snapshotted() {
    let cases = cases();
    assert!(cases.len() > 30, "cases went missing: {}", cases.len());
    for case in &cases {
        let name = case.file_stem().unwrap().to_str().unwrap();
        let text = std::fs::read_to_string(case).unwrap();
        let code = expected_code(&text);

        let json = run_case(case, &["--format", "json"]);
        let found: Vec<serde_json::Value> =
            serde_json::from_str(&json.stdout).unwrap_or_else(|e| {
                panic!("{name}: --format json is not JSON ({e}):\n{}", json.stdout)
            });
        let mine: Vec<&serde_json::Value> = found
            .iter()
            .filter(|d| d["code"] == code.as_str())
            .collect();
        assert!(
            !mine.is_empty(),
            "{name}: no `{code}` among {found:#?}\n{}",
            json.stderr
        );
        for d in &found {
            for field in [
                "site", "code", "severity", "message", "help", "file", "line", "column",
            ] {
                assert!(!d[field].is_null(), "{name}: `{field}` missing in {d:#}");
            }
            assert!(
                d["file"]
                    .as_str()
                    .unwrap()
                    .ends_with(&format!("sites/{name}/site.ncl"))
                    || d["file"].as_str().unwrap().starts_with("schemas/"),
                "{name}: {d:#}"
            );
        }
        let errors = found.iter().any(|d| d["severity"] == "error");
        assert_eq!(
            json.code,
            if errors { 1 } else { 0 },
            "{name}: exit code\n{}",
            json.stderr
        );

        let text_run = run_case(case, &[]);
        assert_eq!(text_run.code, json.code, "{name}: text and json disagree");
        assert!(
            text_run.stdout.is_empty(),
            "{name}: diagnostics belong on stderr"
        );
        assert!(
            text_run.stderr.contains(&code),
            "{name}: {}",
            text_run.stderr
        );

        insta::with_settings!({ snapshot_path => "snapshots/diagnostics", prepend_module_to_snapshot => false, description => text.lines().next().unwrap_or("").to_string() }, {
            insta::assert_snapshot!(format!("{name}.txt"), text_run.stderr);
            insta::assert_snapshot!(format!("{name}.json"), json.stdout);
        });
    }
}

#[test]
fn every_code_has_a_case() {
    let covered: Vec<String> = cases()
        .iter()
        .map(|c| expected_code(&std::fs::read_to_string(c).unwrap()))
        .collect();
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
