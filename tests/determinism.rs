//! The same site gives byte-identical bundles whatever the thread count,
//! locale, time zone or environment, and `sitec verify` agrees with a
//! recomputation of the canonical listing by coreutils.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use support::{TempDir, bundles, files_under, project_root, sitec};

fn compile(out: &std::path::Path, envs: &[(&str, &str)], clear: bool) {
    let mut cmd = sitec();
    if clear {
        cmd.env_clear();
    }
    let o = cmd
        .current_dir(project_root())
        .envs(envs.iter().copied())
        .args(["compile", "--out"])
        .arg(out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn compiles_are_byte_identical_across_threads_locale_tz_and_env() {
    let tmp = TempDir::new("det");
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    compile(
        &a,
        &[("RAYON_NUM_THREADS", "1"), ("LC_ALL", "C"), ("TZ", "UTC")],
        true,
    );
    compile(
        &b,
        &[
            ("RAYON_NUM_THREADS", "7"),
            ("LC_ALL", "de_DE.UTF-8"),
            ("LANG", "tr_TR.UTF-8"),
            ("TZ", "Pacific/Chatham"),
            ("HOME", "/nonexistent"),
            ("SITEC_UNUSED", "noise"),
        ],
        false,
    );
    let fa = files_under(&a);
    assert_eq!(
        fa,
        files_under(&b),
        "the two compiles wrote different files"
    );
    assert!(fa.len() > 30);
    for f in &fa {
        let (x, y) = (
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
        );
        assert!(x == y, "{} differs between the two compiles", f.display());
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode();
        assert_eq!(
            mode(&a.join(f)),
            mode(&b.join(f)),
            "mode of {}",
            f.display()
        );
    }
}

/// The canonical listing (docs/host-protocol.md), computed by find, stat, sha256sum and sort.
const COREUTILS_HASH: &str = r#"cd "$1" && find . -type f ! -path ./BUNDLE | sed 's|^\./||' | LC_ALL=C sort |
while IFS= read -r f; do
  case $(stat -c %A "$f") in *[xst]*) m=0755 ;; *) m=0644 ;; esac
  printf '%s %s %s\n' "$m" "$(sha256sum "$f" | cut -d' ' -f1)" "$f"
done | sha256sum | cut -d' ' -f1"#;

#[test]
fn verify_agrees_with_coreutils_and_bundle_file() {
    let tmp = TempDir::new("verify");
    let out = tmp.path().join("out");
    support::compile_into(&out);
    let all = bundles(&out);
    assert_eq!(all.len(), 5);
    for bundle in &all {
        let shell = Command::new("sh")
            .args(["-c", COREUTILS_HASH, "sh"])
            .arg(bundle)
            .output()
            .unwrap();
        assert!(shell.status.success());
        let by_coreutils = String::from_utf8(shell.stdout).unwrap().trim().to_string();
        let recorded = std::fs::read_to_string(bundle.join("BUNDLE"))
            .unwrap()
            .trim()
            .to_string();
        let v = sitec().arg("verify").arg(bundle).output().unwrap();
        assert!(
            v.status.success(),
            "verify {}: {}",
            bundle.display(),
            String::from_utf8_lossy(&v.stderr)
        );
        let by_sitec = String::from_utf8(v.stdout).unwrap().trim().to_string();
        assert_eq!(by_coreutils, recorded, "{}", bundle.display());
        assert_eq!(by_sitec, recorded, "{}", bundle.display());
        // The host agent's check recomputes the same listing.
        let act = Command::new(support::agent_source())
            .arg("check")
            .arg(bundle)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&act.stderr);
        assert!(
            // Off its host, a bundle lacks its secrets, or cannot decrypt
            // them, or is written for another Debian release (all checked
            // after the hash).
            act.status.success()
                || err.contains("this host's daemons cannot parse the bundle")
                || err.contains("required secret")
                || err.contains("the host's ssh host keys do not decrypt"),
            "check: {err}"
        );
    }

    // A fresh clone gives the files only what git keeps, the executable bit,
    // under the cloner's umask: 0002 here. Every bundle still verifies.
    for bundle in &all {
        for entry in walkdir::WalkDir::new(bundle) {
            let entry = entry.unwrap();
            if entry.file_type().is_file() {
                let mode = entry.metadata().unwrap().permissions().mode();
                let cloned = if mode & 0o111 != 0 { 0o775 } else { 0o664 };
                std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(cloned))
                    .unwrap();
            }
        }
        let v = sitec().arg("verify").arg(bundle).output().unwrap();
        assert!(
            v.status.success(),
            "verify of a fresh clone of {}: {}",
            bundle.display(),
            String::from_utf8_lossy(&v.stderr)
        );
    }

    // An index that says something else than the manifest (the host obeys
    // the index): verify fails with exit 1 and says so, even with a BUNDLE
    // written to match.
    let index = all[1].join("index");
    let text = std::fs::read_to_string(&index).unwrap();
    std::fs::write(&index, text.replace("\tenabled\n", "\tmasked\n")).unwrap();
    support::reseal(&all[1]);
    let v = sitec().arg("verify").arg(&all[1]).output().unwrap();
    assert_eq!(v.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&v.stderr)
            .contains("its index does not say what its manifest.json says"),
        "{}",
        String::from_utf8_lossy(&v.stderr)
    );

    // One changed byte: verify fails with exit 1 and says so.
    let victim = all[0].join("manifest.json");
    let mut text = std::fs::read_to_string(&victim).unwrap();
    text.push(' ');
    std::fs::write(&victim, text).unwrap();
    let v = sitec().arg("verify").arg(&all[0]).output().unwrap();
    assert_eq!(v.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&v.stderr).contains("BUNDLE says"));
}
