//! insta snapshots of every file of every bundle of every example site,
//! and of the external members' configurations.
//! A new site under sites/ is picked up by itself; review its snapshots with
//! `cargo insta review`.

mod support;

use support::{TempDir, bundles, compile_into, files_under};

#[test]
fn every_file_of_every_bundle() {
    let tmp = TempDir::new("snap");
    let out = tmp.path().join("out");
    compile_into(&out);
    let mut count = 0;
    // The external members' WireGuard configurations too.
    let external = std::fs::read_dir(&out)
        .unwrap()
        .map(|site| site.unwrap().path().join("_external"))
        .filter(|dir| dir.is_dir());
    let mut dirs: Vec<_> = bundles(&out).into_iter().chain(external).collect();
    dirs.sort();
    for bundle in dirs {
        for file in files_under(&bundle) {
            let rel = bundle.strip_prefix(&out).unwrap().join(&file);
            let name = rel.to_string_lossy().replace('/', "__");
            let content = std::fs::read_to_string(bundle.join(&file)).unwrap();
            insta::with_settings!({ snapshot_path => "snapshots/bundles", prepend_module_to_snapshot => false, description => rel.to_string_lossy().to_string(), omit_expression => true }, {
                insta::assert_snapshot!(name, content);
            });
            count += 1;
        }
    }
    assert!(
        count > 30,
        "expected the files of both example sites, saw {count}"
    );
}
