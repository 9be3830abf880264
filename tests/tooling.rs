//! The files that fit sitec into its users' tools: the man page, shell
//! completions, every subcommand's help, the CI workflow, the Nix flake and
//! the site language reference. Each generated one must be current.

mod support;

use std::process::Command;

use support::{project_root, sitec};

fn stdout_of(args: &[&str]) -> String {
    let o = sitec().args(args).output().unwrap();
    assert!(
        o.status.success(),
        "sitec {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn subcommands() -> Vec<String> {
    let help = stdout_of(&["--help"]);
    let commands: Vec<String> = help
        .split("Commands:")
        .nth(1)
        .unwrap()
        .split("Options:")
        .next()
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect();
    assert!(commands.len() >= 7, "{help}");
    commands
}

#[test]
fn every_subcommand_help_has_an_example() {
    for c in subcommands() {
        let help = stdout_of(&[&c, "--help"]);
        assert!(
            help.contains("Example: sitec "),
            "`sitec {c} --help` has no example:\n{help}"
        );
    }
}

#[test]
fn the_man_page_is_current() {
    let page = stdout_of(&["man"]);
    let committed =
        std::fs::read_to_string(project_root().join("docs/sitec.1")).unwrap_or_default();
    assert!(
        page == committed,
        "docs/sitec.1 is stale: run `sitec man > docs/sitec.1`"
    );
    for c in subcommands() {
        assert!(
            page.contains(&format!(".SH \"SITEC {}\"", c.to_uppercase())),
            "{c}"
        );
    }
}

#[test]
fn completions_parse_in_their_shell() {
    let bash = stdout_of(&["completions", "bash"]);
    let dir = support::TempDir::new("completions");
    let file = dir.path().join("sitec.bash");
    std::fs::write(&file, &bash).unwrap();
    let o = Command::new("bash").arg("-n").arg(&file).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for shell in ["bash", "zsh", "fish"] {
        let script = stdout_of(&["completions", shell]);
        for c in subcommands() {
            assert!(script.contains(&c), "{shell} completions lack `{c}`");
        }
    }
}

/// The workflow is YAML, runs on pull requests, and each command line it
/// runs starts with a program that exists (a sitec subcommand, when it runs
/// sitec through cargo).
#[test]
fn the_ci_workflow_is_valid_and_runs_what_exists() {
    let path = project_root().join(".github/workflows/sitec.yml");
    let script = r#"
import json, sys, yaml
w = yaml.safe_load(open(sys.argv[1]))
on = w.get("on", w.get(True))
assert "pull_request" in on, on
runs = [s["run"] for job in w["jobs"].values() for s in job["steps"] if "run" in s]
print(json.dumps(runs))
"#;
    let o = Command::new("python3")
        .args(["-c", script])
        .arg(&path)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let runs: Vec<String> = serde_json::from_slice(&o.stdout).unwrap();
    let readme = std::fs::read_to_string(project_root().join("README.md")).unwrap();
    let mut sitec_subcommands = 0;
    for line in runs
        .iter()
        .flat_map(|r| r.lines())
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        let words: Vec<&str> = line.split_whitespace().collect();
        let exists = Command::new("sh")
            .args(["-c", &format!("command -v {}", words[0])])
            .output()
            .unwrap()
            .status
            .success();
        assert!(
            exists,
            "the workflow runs `{}`, which does not exist",
            words[0]
        );
        if words[0] == "sh" {
            assert!(project_root().join(words[1]).is_file(), "{line}");
            assert!(
                readme.contains(line),
                "`{line}` is not the README's command"
            );
        }
        if let Some(i) = words.iter().position(|w| *w == "--") {
            assert!(line.starts_with("cargo run --release -- "), "{line}");
            stdout_of(&[words[i + 1], "--help"]);
            sitec_subcommands += 1;
        }
    }
    assert!(sitec_subcommands >= 2, "{runs:?}");
    assert!(runs.iter().any(|r| r.trim() == "sh scripts/test"));
}

/// docs/site-language.md is what `sitec schema` prints (the schemas
/// typecheck and evaluate, as the language server would see them), and every
/// field of every schema record has a description.
#[test]
fn the_language_reference_is_current_and_complete() {
    let text = stdout_of(&["--root", project_root().to_str().unwrap(), "schema"]);
    let committed =
        std::fs::read_to_string(project_root().join("docs/site-language.md")).unwrap_or_default();
    assert!(
        text == committed,
        "docs/site-language.md is stale: run `sitec schema > docs/site-language.md`"
    );
    let mut rows = 0;
    for line in text.lines().filter(|l| l.starts_with("| `")) {
        rows += 1;
        let description = line.trim_end_matches('|').rsplit(" | ").next().unwrap();
        assert!(
            !description.trim().is_empty(),
            "a field without a doc: {line}"
        );
    }
    assert!(rows > 80, "only {rows} fields documented");
    // Every contract a field is written with by name is documented: a
    // value type (`t.Port`), a record of another module
    // (`wireguard_schema.Mesh`) or a named contract of its module (`Chain`).
    let token = regex::Regex::new(
        r"(^|[^'A-Za-z0-9_.])((?:[A-Za-z_][A-Za-z0-9_]*\.)*)([A-Za-z_][A-Za-z0-9_]*)",
    )
    .unwrap();
    let strings = regex::Regex::new(r#""[^"]*""#).unwrap();
    let builtin = [
        "Array", "Bool", "String", "Number", "Dyn", "record", "see", "std", "_", "default",
        "optional",
    ];
    for line in text.lines().filter(|l| l.starts_with("| `")) {
        let cell = line.split(" | ").nth(1).unwrap_or("");
        if cell.starts_with("record (see") {
            continue;
        }
        let cell = strings
            .replace_all(&cell.replace("\\|", "|"), "")
            .into_owned();
        for c in token.captures_iter(&cell) {
            let name = &c[3];
            let after = cell[c.get(3).unwrap().end()..].trim_start();
            // A field of an inline record (`{ host | t.Port }`), not a contract.
            let field = after.starts_with('|') && !after.starts_with("|]");
            if builtin.contains(&name) || field {
                continue;
            }
            assert!(
                text.contains(&format!("### `{name}`")),
                "`{name}` (in {line}) is not documented"
            );
        }
    }
    for module in std::fs::read_dir(project_root().join("schemas")).unwrap() {
        let name = module.unwrap().file_name().to_string_lossy().into_owned();
        if name != "contract.ncl" {
            assert!(
                text.contains(&format!("(`schemas/{name}`)")),
                "{name} is missing"
            );
        }
    }
}

/// Nix inputs cannot be fetched here: the flake is parsed, its outputs are
/// evaluated against stand-in inputs far enough to list the attributes it
/// defines, and what it names (files, sitec subcommands, test suites) exists.
#[test]
fn the_flake_parses_and_names_what_exists() {
    let flake = project_root().join("flake.nix");
    let parse = Command::new("nix-instantiate")
        .arg("--parse")
        .arg(&flake)
        .output()
        .expect("nix-instantiate is missing (Debian package nix-bin; sh scripts/test installs it)");
    assert!(
        parse.status.success(),
        "{}",
        String::from_utf8_lossy(&parse.stderr)
    );
    let expr = r#"
      let
        flake = import ./flake.nix;
        out = flake.outputs {
          self = { };
          nixpkgs = { legacyPackages.x86_64-linux = { }; };
          flake-utils = { lib.eachSystem = systems: f: f (builtins.head systems); };
        };
        names = builtins.attrNames;
      in builtins.concatStringsSep " " (
        map (n: "packages." + n) (names out.packages)
        ++ map (n: "devShells." + n) (names out.devShells)
        ++ map (n: "apps." + n) (names out.apps)
        ++ map (n: "checks." + n) (names out.checks))"#;
    let eval = Command::new("nix-instantiate")
        .current_dir(project_root())
        .args(["--eval", "--strict", "-E", expr])
        .output()
        .unwrap();
    assert!(
        eval.status.success(),
        "{}",
        String::from_utf8_lossy(&eval.stderr)
    );
    let attrs = String::from_utf8(eval.stdout).unwrap();
    for want in [
        "packages.default",
        "devShells.default",
        "apps.compile",
        "apps.push",
        "checks.compile",
        "checks.tests",
    ] {
        assert!(
            attrs.split(['"', ' ']).any(|a| a == want),
            "flake lacks {want}: {attrs}"
        );
    }
    let text = std::fs::read_to_string(&flake).unwrap();
    for file in [
        "Cargo.toml",
        "Cargo.lock",
        "compiler/host/push",
        "docs/sitec.1",
    ] {
        assert!(text.contains(file), "{file}");
        assert!(
            project_root().join(file).is_file(),
            "the flake names {file}, which is missing"
        );
    }
    for sub in ["compile", "completions"] {
        assert!(
            text.contains(&format!("/bin/sitec {sub} ")),
            "the flake does not run `sitec {sub}`"
        );
        stdout_of(&[sub, "--help"]);
    }
    let cargo = std::fs::read_to_string(project_root().join("Cargo.toml")).unwrap();
    let suites = text
        .split("cargoTestFlags")
        .nth(1)
        .unwrap()
        .split(']')
        .next()
        .unwrap();
    for suite in suites
        .split('"')
        .filter(|w| w.chars().all(|c| c.is_ascii_lowercase()) && !w.is_empty())
    {
        if suite != "test" {
            assert!(
                cargo.contains(&format!("name = \"{suite}\"")),
                "no test suite {suite}"
            );
        }
    }
}

/// Colours only on a terminal, and never with NO_COLOR: the diagnostics of a
/// broken site through a pseudo-terminal (script(1)), then with NO_COLOR,
/// then into a pipe.
#[test]
fn colours_only_on_a_terminal_without_no_color() {
    let tmp = support::schema_project("colours");
    support::write_site(
        tmp.path(),
        "bad",
        "let sitec = import \"../../schemas/site.ncl\" in\n{ hosts.a = { management_address = \"10.0.0.300\" } } | sitec.Site\n",
    );
    let bin = env!("CARGO_BIN_EXE_sitec");
    let on_tty = |no_color: bool| {
        let mut c = Command::new("script");
        c.current_dir(tmp.path())
            .args(["-qec", &format!("{bin} check bad"), "/dev/null"])
            .env_remove("NO_COLOR");
        if no_color {
            c.env("NO_COLOR", "1");
        }
        let o = c.output().unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let coloured = on_tty(false);
    assert!(coloured.contains("10.0.0.300"), "{coloured}");
    assert!(
        coloured.contains("\u{1b}["),
        "no colour on a terminal:\n{coloured}"
    );
    let plain = on_tty(true);
    assert!(plain.contains("10.0.0.300"), "{plain}");
    assert!(
        !plain.contains("\u{1b}["),
        "colour despite NO_COLOR:\n{plain}"
    );
    let piped = sitec()
        .current_dir(tmp.path())
        .args(["check", "bad"])
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    let piped = String::from_utf8_lossy(&piped.stderr);
    assert!(
        piped.contains("10.0.0.300") && !piped.contains("\u{1b}["),
        "{piped}"
    );
}

/// The modules of `compiler/src/` in pipeline order: each may use only the
/// ones before it (`lib.rs` and `main.rs`, which orchestrate, use any). A
/// module's submodules (`check/*`, `render/*`, `bundle/*`) count as it.
const LAYERS: &[&str] = &[
    "hash",
    "timing",
    "net",
    "tree",
    "diagnostic",
    "schema",
    "load",
    "reference",
    "model",
    "check",
    "render",
    "bundle",
    "verify",
    "write",
    "plan",
    "cache",
];

/// The modules a path after `crate::` names: `model::Site` → model,
/// `{model::Site, tree::{Node, Span}}` → model, tree (groups nest).
fn first_segments(rest: &str) -> Vec<String> {
    let ident = |s: &str| {
        s.split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .next()
            .unwrap_or("")
            .to_string()
    };
    let Some(group) = rest.strip_prefix('{') else {
        return vec![ident(rest)];
    };
    // The items of the group at its top level, up to its closing brace.
    let (mut depth, mut start, mut items) = (0usize, 0usize, Vec::new());
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(&group[start..i]);
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&group[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.into_iter().map(|item| ident(item.trim())).collect()
}

/// ARCHITECTURE.md's "each stage only reads what the one before produced",
/// as the module graph: no `crate::` path points at a later module.
#[test]
fn the_module_graph_points_one_way() {
    let src = project_root().join("compiler/src");
    let mut arrows = Vec::new();
    for entry in walkdir::WalkDir::new(&src) {
        let entry = entry.unwrap();
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let rel = path
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let module = rel.split(['/', '.']).next().unwrap().to_string();
        // lib.rs and main.rs orchestrate; cli/ is main's own.
        if module == "lib" || module == "main" || module == "cli" {
            continue;
        }
        let rank = LAYERS
            .iter()
            .position(|m| *m == module)
            .unwrap_or_else(|| panic!("compiler/src/{rel}: module `{module}` is not in LAYERS"));
        let text = std::fs::read_to_string(path).unwrap();
        let mut used: Vec<String> = Vec::new();
        for (i, _) in text.match_indices("crate::") {
            used.extend(first_segments(&text[i + "crate::".len()..]));
        }
        for dep in used {
            // `crate::path!` is tree's macro, exported at the crate root.
            let dep = if dep == "path" {
                "tree".to_string()
            } else {
                dep
            };
            if dep.is_empty() || dep == module {
                continue;
            }
            match LAYERS.iter().position(|m| *m == dep) {
                Some(r) if r < rank => {}
                Some(_) => arrows.push(format!("{rel} uses crate::{dep}, a later stage")),
                None => arrows.push(format!(
                    "{rel} uses crate::{dep}, which is not a module of LAYERS"
                )),
            }
        }
    }
    arrows.sort();
    arrows.dedup();
    assert!(arrows.is_empty(), "{arrows:#?}");
}

/// `cargo fmt` formats what the crate roots reach by `mod`; this formats
/// every `.rs` file of the repository by name, so a file a macro declares
/// (or none does) cannot escape it.
#[test]
fn rustfmt_sees_every_file() {
    let mut files = Vec::new();
    for dir in ["compiler", "agent", "format", "tests", "examples"] {
        for entry in walkdir::WalkDir::new(project_root().join(dir)) {
            let entry = entry.unwrap();
            if entry.path().extension().is_some_and(|e| e == "rs") {
                files.push(entry.path().to_path_buf());
            }
        }
    }
    assert!(files.len() > 60, "{} files", files.len());
    let o = Command::new("rustfmt")
        .args(["--edition", "2024", "--check"])
        .args(&files)
        .output()
        .expect("rustfmt (the toolchain's) runs");
    assert!(
        o.status.success(),
        "files rustfmt would change:\n{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

/// `push --status` of host `h` of site `site` in `out` (which holds no
/// bundle of it), by the script `push`: what push checks before it asks
/// any host.
fn push_status(push: &std::path::Path, out: &std::path::Path) -> Command {
    let mut c = Command::new("sh");
    c.arg(push)
        .args(["--status", "--out"])
        .arg(out)
        .args(["site", "h"]);
    c
}

/// push run from a checkout brings the repository's build of the agent,
/// and refuses one older than the agent's sources (built before the
/// checkout moved on), saying how to build it: a stale agent would become
/// every host's.
#[test]
fn push_refuses_a_repository_agent_older_than_its_sources() {
    let tmp = support::TempDir::new("stale-agent");
    let root = tmp.path();
    let mkdir = |p: &str| std::fs::create_dir_all(root.join(p)).unwrap();
    mkdir("compiler/host");
    mkdir("target/x86_64-unknown-linux-gnu/release");
    mkdir("agent/src");
    mkdir("format");
    mkdir("out/site/h");
    std::fs::copy(
        project_root().join("compiler/host/push"),
        root.join("compiler/host/push"),
    )
    .unwrap();
    let agent = root.join("target/x86_64-unknown-linux-gnu/release/sitec-agent");
    std::fs::write(&agent, b"\x7fELF").unwrap();
    std::fs::write(root.join("Cargo.lock"), b"").unwrap();
    let push = |when: &str| {
        // The agent's mtime, against sources written now.
        assert!(
            Command::new("touch")
                .args(["-d", when])
                .arg(&agent)
                .status()
                .unwrap()
                .success()
        );
        push_status(&root.join("compiler/host/push"), &root.join("out"))
            .env_remove("SITEC_AGENT")
            .current_dir(root)
            .output()
            .unwrap()
    };
    std::fs::write(root.join("agent/src/lib.rs"), b"").unwrap();
    let o = push("2000-01-01");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains(
            "sitec-agent is older than the agent's sources: build it again with sh scripts/agent"
        ),
        "{err}"
    );
    // Built after its sources: push goes on, to the host (which has no
    // bundle here).
    let o = push("tomorrow");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!said.contains("older than"), "{said}");
    assert!(said.contains("h: no bundle at "), "{said}");
}

/// Connection sharing set in SITEC_SSH would win over push's own options
/// (ssh keeps the first value of each), and a confirmation could then
/// ride a connection made before the switch: push refuses it.
#[test]
fn push_refuses_connection_sharing_in_sitec_ssh() {
    let tmp = support::TempDir::new("sitec-ssh");
    std::fs::create_dir_all(tmp.path().join("out/site/h")).unwrap();
    let agent = tmp.path().join("agent");
    std::fs::write(&agent, b"\x7fELF").unwrap();
    for ssh in [
        "ssh -o ControlMaster=auto -o ControlPath=/tmp/c",
        "ssh -S /tmp/c",
        "ssh -o controlpersist=yes",
    ] {
        let o = push_status(
            &project_root().join("compiler/host/push"),
            &tmp.path().join("out"),
        )
        .env("SITEC_AGENT", &agent)
        .env("SITEC_SSH", ssh)
        .output()
        .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{ssh}: {err}");
        assert!(err.contains("SITEC_SSH shares connections"), "{ssh}: {err}");
    }
}

/// A bundle's hash goes into commands push runs on the host as root: one
/// that is not 64 hex digits is refused before anything is sent, even with
/// --force (which skips the check that out/ is what the site compiles to).
#[test]
fn push_refuses_a_bundle_hash_that_is_not_one() {
    let tmp = support::TempDir::new("bundle-hash");
    let h = tmp.path().join("out/site/h");
    std::fs::create_dir_all(&h).unwrap();
    std::fs::write(
        h.join("index"),
        "d\tuser\troot\nd\taddress\t192.0.2.1\nd\tport\t22\n",
    )
    .unwrap();
    std::fs::write(h.join("BUNDLE"), "$(reboot)\n").unwrap();
    let agent = tmp.path().join("agent");
    std::fs::write(&agent, b"\x7fELF").unwrap();
    // An ssh that fails the test if push gets as far as running it.
    let ssh = tmp.path().join("ssh");
    std::fs::write(&ssh, "#!/bin/sh\necho \"ssh ran: $*\" >&2\nexit 99\n").unwrap();
    // With --force, and with a sitec whose check vouches for out/.
    for (force, sitec) in [(true, "/nonexistent/sitec"), (false, "true")] {
        let mut c = Command::new("sh");
        c.arg(project_root().join("compiler/host/push"));
        if force {
            c.arg("--force");
        }
        let o = c
            .arg("--out")
            .arg(tmp.path().join("out"))
            .args(["site", "h"])
            .env("SITEC_AGENT", &agent)
            .env("SITEC_SSH", format!("sh {}", ssh.display()))
            .env("SITEC", sitec)
            .current_dir(tmp.path())
            .output()
            .unwrap();
        let out = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(o.status.code(), Some(2), "{out}");
        assert!(
            out.contains("/out/site/h/BUNDLE is not a bundle hash (run sitec compile)"),
            "{out}"
        );
        assert!(!out.contains("ssh ran"), "{out}");
    }
}
