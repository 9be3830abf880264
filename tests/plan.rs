//! `sitec plan` on the example sites with a change applied: each case is a
//! file in tests/plan/ (`site`, and `[[edit]]` replacements made to its
//! site.ncl in a copy of the project); the plan in text, markdown and JSON is
//! snapshotted in tests/snapshots/plan/. Add a case by dropping in a file and
//! reviewing its snapshots with `cargo insta review`.

mod support;

use support::{TempDir, copy_project, project_root, sitec};

#[derive(serde::Deserialize)]
struct Case {
    site: String,
    #[serde(default)]
    edit: Vec<Edit>,
}

#[derive(serde::Deserialize)]
struct Edit {
    replace: String,
    with: String,
}

#[test]
fn plans_of_edited_sites() {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(project_root().join("tests/snapshots/plan"));
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| {
        for path in support::case_files("plan", "toml") {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let case: Case = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let tmp = TempDir::new("plan");
            copy_project(tmp.path(), true);
            let site_file = tmp.path().join("sites").join(&case.site).join("site.ncl");
            let mut text = std::fs::read_to_string(&site_file).unwrap();
            for e in &case.edit {
                assert!(
                    text.contains(&e.replace),
                    "{name}: `{}` is not in the site",
                    e.replace
                );
                text = text.replacen(&e.replace, &e.with.replace("\\n", "\n"), 1);
            }
            std::fs::write(&site_file, text).unwrap();
            for (format, ext) in [("text", "txt"), ("markdown", "md"), ("json", "json")] {
                let o = sitec()
                    .current_dir(tmp.path())
                    .args(["plan", &case.site, "--format", format])
                    .output()
                    .unwrap();
                let stdout = String::from_utf8(o.stdout).unwrap();
                let want = if case.edit.is_empty() { 0 } else { 1 };
                assert_eq!(
                    o.status.code(),
                    Some(want),
                    "{name} ({format}): {}",
                    String::from_utf8_lossy(&o.stderr)
                );
                insta::assert_snapshot!(format!("{name}.{ext}"), stdout);
            }
            // Planning writes nothing.
            let check = sitec()
                .current_dir(tmp.path())
                .args(["compile", "--check", &case.site])
                .output()
                .unwrap();
            assert_eq!(check.status.success(), case.edit.is_empty(), "{name}");
        }
    });
}

/// `--base` compares with another directory, e.g. the target branch's out/.
#[test]
fn base_names_the_bundles_to_compare_with() {
    let tmp = TempDir::new("plan-base");
    copy_project(tmp.path(), true);
    let o = sitec()
        .current_dir(tmp.path())
        .args(["plan", "homelab", "--base", "/nonexistent-base"])
        .output()
        .unwrap();
    let text = String::from_utf8(o.stdout).unwrap();
    assert_eq!(o.status.code(), Some(1));
    for host in ["nas", "pve1", "pve2"] {
        assert!(
            text.contains(&format!("homelab/{host}: (none) -> ")),
            "{text}"
        );
        assert!(text.contains("(new host)"), "{text}");
    }
}
