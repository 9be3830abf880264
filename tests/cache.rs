//! The input-hash cache: a compile with nothing changed is answered from
//! `.sitec/cache/`, and every input (site, imports, schemas, the binary) and
//! every touch of out/ invalidates it.

mod support;

use std::path::Path;
use std::process::Command;

use support::{TempDir, copy_project};

const UNCHANGED: &str = "no input changed";

fn compile_with(bin: &Path, dir: &Path, extra: &[&str]) -> (i32, String) {
    let o = Command::new(bin)
        .current_dir(dir)
        .args(["compile", "homelab"])
        .args(extra)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn compile(dir: &Path, extra: &[&str]) -> (i32, String) {
    compile_with(Path::new(env!("CARGO_BIN_EXE_sitec")), dir, extra)
}

fn project() -> TempDir {
    let tmp = TempDir::new("cache");
    copy_project(tmp.path(), false);
    tmp
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{from}");
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn nothing_changed_is_answered_from_the_cache_with_the_same_warnings() {
    let tmp = project();
    // A rule that draws a warning (firewall::tunnel-source).
    edit(
        &tmp.path().join("sites/homelab/site.ncl"),
        r#"{ iface = "wg0", comment"#,
        r#"{ iface = "wg0", source = "10.99.0.0/24", comment"#,
    );
    let (code, first) = compile(tmp.path(), &[]);
    assert_eq!(code, 0, "{first}");
    assert!(first.contains("compiled homelab"), "{first}");
    let wg0 = tmp.path().join("out/homelab/pve1/etc/wireguard/wg0.conf");
    let before = std::fs::read(&wg0).unwrap();
    let (code, second) = compile(tmp.path(), &[]);
    assert_eq!(code, 0, "{second}");
    assert!(second.contains(UNCHANGED), "{second}");
    // Warnings are part of the answer.
    let warnings = |s: &str| s.lines().skip(1).collect::<Vec<_>>().join("\n");
    assert!(
        warnings(&first).contains("firewall::tunnel-source"),
        "{first}"
    );
    assert_eq!(
        warnings(&first),
        warnings(&second),
        "{first}\n---\n{second}"
    );
    assert_eq!(std::fs::read(&wg0).unwrap(), before);
    // --check trusts it too, and --no-cache does not.
    let (code, check) = compile(tmp.path(), &["--check"]);
    assert_eq!(code, 0, "{check}");
    assert!(
        check.contains("out/ is current (no input changed"),
        "{check}"
    );
    let (code, forced) = compile(tmp.path(), &["--no-cache"]);
    assert_eq!(code, 0);
    assert!(forced.contains("compiled homelab"), "{forced}");
}

#[test]
fn any_changed_input_invalidates_the_cache() {
    let tmp = project();
    let root = tmp.path();
    assert_eq!(compile(root, &[]).0, 0);
    type Change<'a> = Box<dyn Fn() + 'a>;
    let cases: [(&str, Change); 4] = [
        (
            "a change to the site",
            Box::new(|| {
                edit(
                    &root.join("sites/homelab/site.ncl"),
                    "port = 51820,",
                    "port = 51821,",
                )
            }),
        ),
        (
            "a comment in the site (the output is the same, the input is not)",
            Box::new(|| {
                edit(
                    &root.join("sites/homelab/site.ncl"),
                    "# A homelab",
                    "# A home lab",
                )
            }),
        ),
        (
            "a change to a schema",
            Box::new(|| edit(&root.join("schemas/types.ncl"), "{", "# edited\n{")),
        ),
        (
            "a hand edit of out/",
            Box::new(|| {
                let f = root.join("out/homelab/nas/etc/nftables.conf");
                let mut text = std::fs::read_to_string(&f).unwrap();
                text.push_str("# hand edit\n");
                std::fs::write(f, text).unwrap();
            }),
        ),
    ];
    for (what, change) in cases {
        assert!(
            compile(root, &[]).1.contains(UNCHANGED),
            "{what}: not cached before"
        );
        change();
        let (code, err) = compile(root, &[]);
        assert_eq!(code, 0, "{what}: {err}");
        assert!(
            !err.contains(UNCHANGED),
            "{what} did not invalidate the cache:\n{err}"
        );
        assert!(err.contains("compiled homelab"), "{what}: {err}");
    }
    let nft = std::fs::read_to_string(root.join("out/homelab/nas/etc/nftables.conf")).unwrap();
    assert!(
        !nft.contains("# hand edit"),
        "the hand edit survived the recompile"
    );
    assert!(
        nft.contains("udp dport 51821"),
        "the site change is not in out/"
    );
    // A removed host directory is a change to out/ too.
    assert!(compile(root, &[]).1.contains(UNCHANGED));
    std::fs::remove_dir_all(root.join("out/homelab/pve2")).unwrap();
    let (_, err) = compile(root, &[]);
    assert!(!err.contains(UNCHANGED), "{err}");
    assert!(root.join("out/homelab/pve2/BUNDLE").is_file());
}

/// The binary is an input (the templates are embedded in it): a
/// different binary recompiles; the same bytes at another path do not.
#[test]
fn a_different_binary_invalidates_the_cache() {
    let tmp = project();
    let root = tmp.path();
    let bins = TempDir::new("cache-bins");
    let same = bins.path().join("sitec-copy");
    let other = bins.path().join("sitec-other");
    std::fs::copy(env!("CARGO_BIN_EXE_sitec"), &same).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_sitec"), &other).unwrap();
    // Trailing bytes leave an ELF file runnable and change its hash.
    let mut bytes = std::fs::read(&other).unwrap();
    bytes.extend_from_slice(b"another build");
    std::fs::write(&other, bytes).unwrap();
    assert_eq!(compile(root, &[]).0, 0);
    let (code, err) = compile_with(&same, root, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains(UNCHANGED), "identical bytes must hit: {err}");
    let (code, err) = compile_with(&other, root, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        !err.contains(UNCHANGED),
        "another binary must recompile: {err}"
    );
}
