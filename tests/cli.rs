//! The command line as an operator meets it: `compile --check` against the
//! committed out/, exit codes, stale hosts, and Nickel's errors shown with
//! their source snippets.

mod support;

use support::{TempDir, copy_project, project_root, run, sitec};

/// Copies the project, makes one edit to the homelab site, runs `sitec check`.
fn check_after_edit(tag: &str, from: &str, to: &str) -> (i32, String) {
    let tmp = TempDir::new(tag);
    copy_project(tmp.path(), false);
    let site = tmp.path().join("sites/homelab/site.ncl");
    let text = std::fs::read_to_string(&site).unwrap();
    let edited = text.replacen(from, to, 1);
    assert_ne!(edited, text, "the edit must change the site");
    std::fs::write(&site, edited).unwrap();
    run(tmp.path(), &["check", "homelab"])
}

#[test]
fn check_passes_on_the_committed_out() {
    let (code, err) = run(&project_root(), &["compile", "--check"]);
    assert_eq!(
        code, 0,
        "out/ is not current; run `sitec compile` and commit out/:\n{err}"
    );
}

#[test]
fn check_fails_naming_the_file_after_a_one_character_change() {
    let tmp = TempDir::new("check");
    copy_project(tmp.path(), true);
    let site = tmp.path().join("sites/homelab/site.ncl");
    let text = std::fs::read_to_string(&site).unwrap();
    std::fs::write(&site, text.replacen("port = 51820", "port = 51821", 1)).unwrap();
    let (code, err) = run(tmp.path(), &["compile", "--check"]);
    assert_eq!(code, 1, "{err}");
    // Every file of every host the port reaches, then what to run.
    insta::assert_snapshot!("check_after_port_change", err);
    // --check wrote nothing.
    let (code, _) = run(tmp.path(), &["compile", "--check", "opensource"]);
    assert_eq!(code, 0);
}

#[test]
fn compile_removes_hosts_that_no_longer_exist() {
    let tmp = TempDir::new("stale");
    copy_project(tmp.path(), true);
    let stale = tmp.path().join("out/homelab/oldhost");
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(stale.join("BUNDLE"), "x\n").unwrap();
    let (code, err) = run(tmp.path(), &["compile", "--check", "homelab"]);
    assert_eq!(code, 1);
    insta::assert_snapshot!("check_with_stale_host", err);
    let (code, err) = run(tmp.path(), &["compile", "homelab"]);
    assert_eq!(code, 0, "{err}");
    assert!(!stale.exists());
    assert!(tmp.path().join("out/homelab/pve1/BUNDLE").exists());
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary directories left behind: {leftovers:?}"
    );
}

#[test]
fn a_contract_violation_is_shown_at_its_line_with_exit_1() {
    let (code, err) = check_after_edit(
        "contract",
        "address = \"10.99.0.3\"",
        "address = \"10.99.0.300\"",
    );
    assert_eq!(code, 1, "{err}");
    insta::assert_snapshot!("contract_violation", err);
}

#[test]
fn a_sitec_diagnostic_has_code_help_and_label() {
    let (code, err) = check_after_edit(
        "diag",
        "source = \"@admin\", comment = \"admin",
        "source = \"@admins\", comment = \"admin",
    );
    assert_eq!(code, 1, "{err}");
    insta::assert_snapshot!("unknown_set", err);
}

#[test]
fn a_missing_site_is_an_io_error_with_exit_2() {
    let (code, err) = run(&project_root(), &["check", "no-such-site"]);
    assert_eq!(code, 2, "{err}");
    insta::assert_snapshot!("missing_site", err);
}

#[test]
fn a_missing_site_is_reported_in_json_too() {
    let o = sitec()
        .current_dir(project_root())
        .args(["check", "no-such-site", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let found: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(found[0]["code"], "io::error", "{found:#}");
    assert_eq!(found[0]["site"], "no-such-site");
}

#[test]
fn a_usage_error_exits_2() {
    let (code, _) = run(&project_root(), &["compile", "--no-such-flag"]);
    assert_eq!(code, 2);
}

#[test]
fn a_mesh_member_that_is_no_host_is_labelled_at_its_name() {
    let (code, err) = check_after_edit(
        "member",
        "        nas = {\n          address",
        "        nass = {\n          address",
    );
    assert_eq!(code, 1, "{err}");
    insta::assert_snapshot!("unknown_member_host", err);
}

#[test]
fn no_site_rule_can_drop_the_wireguard_port() {
    let tmp = TempDir::new("wgport");
    copy_project(tmp.path(), false);
    let site = tmp.path().join("sites/homelab/site.ncl");
    let text = std::fs::read_to_string(&site).unwrap();
    let from = "{ iface = \"lo\", comment = \"loopback first: cluster services talk over lo\" },";
    let edited = text.replacen(
        from,
        &format!("{from}\n  {{ proto = 'udp, action = 'drop, comment = \"no udp\" }},"),
        1,
    );
    assert_ne!(edited, text, "the edit must change the site");
    std::fs::write(&site, edited).unwrap();
    let (code, err) = run(tmp.path(), &["compile", "homelab"]);
    assert_eq!(code, 0, "{err}");
    let nft =
        std::fs::read_to_string(tmp.path().join("out/homelab/pve1/etc/nftables.conf")).unwrap();
    let admit = nft
        .find("udp dport 51820 accept")
        .expect("the port is admitted");
    let drop = nft
        .find("meta l4proto udp drop")
        .expect("the site's rule is there");
    assert!(admit < drop, "the site's drop comes first:\n{nft}");
}

/// `sitec plan | head`: a reader that goes away ends the output, not the
/// program with a panic (exit 101). The pipe's reader is closed before
/// sitec starts, so every write it makes fails.
#[test]
fn output_to_a_closed_pipe_is_no_panic() {
    for args in [&["plan"][..], &["schema"], &["explain", "--all"]] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let o = sitec()
            .current_dir(project_root())
            .args(args)
            .stdout(writer)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(o.status.code(), Some(0), "{args:?}: {err}");
    }
}
