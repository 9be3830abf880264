//! How compile updates `out/`: only the files whose bytes changed are
//! written (the others keep their inode and mtime), and a compile killed at
//! any moment leaves every host whole, the previous bundle or the new one,
//! with `compile --check` telling which.

mod support;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use support::{TempDir, copy_project, run, sitec, write_site};

#[allow(dead_code)]
#[path = "../examples/gen_site.rs"]
mod gen_site;

/// Inode, mtime and content of every file under `dir`, by path.
fn files(dir: &Path) -> BTreeMap<String, (u64, i64, i64, Vec<u8>)> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(Result::unwrap)
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let m = e.metadata().unwrap();
            (
                e.path()
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
                (
                    m.ino(),
                    m.mtime(),
                    m.mtime_nsec(),
                    std::fs::read(e.path()).unwrap(),
                ),
            )
        })
        .collect()
}

/// Names in `dir` that start with a dot: what a compile left behind.
fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect()
}

#[test]
fn a_recompile_writes_only_the_files_whose_bytes_changed() {
    let tmp = TempDir::new("incremental");
    copy_project(tmp.path(), true);
    let out = tmp.path().join("out/homelab");
    let before = files(&out);
    // Nothing changed (and no cache yet): not one file is written again.
    let (code, err) = run(tmp.path(), &["compile", "homelab"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(files(&out), before);

    // One host's firewall comment: its ruleset, manifest, index and BUNDLE.
    let site = tmp.path().join("sites/homelab/site.ncl");
    let text = std::fs::read_to_string(&site).unwrap();
    let edited = text.replacen("Proxmox web UI from the LAN", "Proxmox web UI", 1);
    assert_ne!(edited, text);
    std::fs::write(&site, edited).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let (code, err) = run(tmp.path(), &["compile", "homelab"]);
    assert_eq!(code, 0, "{err}");
    // The other hosts are not even rendered: their render keys are the
    // ones the last compile recorded, and out/ holds what it wrote.
    // Hosts: bundles with an index (`_external` holds no host's).
    let hosts = before.keys().filter(|p| p.ends_with("/index")).count();
    assert!(
        err.contains(&format!("({hosts} hosts, {} of them unchanged)", hosts - 1)),
        "{err}"
    );
    let after = files(&out);
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>()
    );
    let rewritten: Vec<&String> = after
        .iter()
        .filter(|(path, now)| before[*path] != **now)
        .map(|(path, _)| path)
        .collect();
    assert_eq!(
        rewritten,
        [
            "pve1/BUNDLE",
            "pve1/etc/nftables.conf",
            "pve1/index",
            "pve1/manifest.json"
        ]
    );
    for path in &rewritten {
        assert_ne!(
            before[*path].3, after[*path].3,
            "{path} was rewritten unchanged"
        );
    }
    let (code, err) = run(tmp.path(), &["compile", "--check", "homelab"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(leftovers(&out), [""; 0]);
    // The cache entry that compile left knows both the rewritten host and
    // the kept ones as they are: nothing to do now.
    let (code, err) = run(tmp.path(), &["compile", "homelab"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("nothing to do"), "{err}");
    assert_eq!(leftovers(&tmp.path().join("out")), [""; 0]);

    // A host edited by hand in out/ is not kept: it is rendered and put
    // right, while the others are kept.
    let edited = out.join("pve2/etc/nftables.conf");
    let mut text = std::fs::read_to_string(&edited).unwrap();
    text.push_str("# a hand edit\n");
    std::fs::write(&edited, text).unwrap();
    std::fs::write(&site, std::fs::read_to_string(&site).unwrap() + "\n").unwrap();
    one_host_rendered_and_put_right(tmp.path(), hosts);

    // With no input changed, a hand edit of a host the last compile kept
    // (its stat taken while the site evaluated) is seen and put right.
    let (code, err) = run(tmp.path(), &["compile", "homelab"]);
    assert!(code == 0 && err.contains("nothing to do"), "{err}");
    let edited = out.join("pve1/etc/nftables.conf");
    std::fs::write(&edited, "# a hand edit\n").unwrap();
    one_host_rendered_and_put_right(tmp.path(), hosts);
}

/// A compile of homelab renders one host of `hosts` and keeps the others,
/// and leaves out/ current.
fn one_host_rendered_and_put_right(project: &Path, hosts: usize) {
    let (code, err) = run(project, &["compile", "homelab"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&format!("({hosts} hosts, {} of them unchanged)", hosts - 1)),
        "{err}"
    );
    let (code, err) = run(project, &["compile", "--check", "homelab"]);
    assert_eq!(code, 0, "{err}");
}

/// The bundle hash of every host directory of `out`, and whether each
/// still hashes to it (`sitec verify`).
fn hosts(out: &Path) -> BTreeMap<String, String> {
    let mut hosts = BTreeMap::new();
    for entry in std::fs::read_dir(out).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let o = sitec().arg("verify").arg(entry.path()).output().unwrap();
        assert!(
            o.status.success(),
            "{name} is not a whole bundle: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let hash = std::fs::read_to_string(entry.path().join("BUNDLE")).unwrap();
        hosts.insert(name, hash.trim().to_string());
    }
    hosts
}

#[test]
fn a_compile_killed_at_any_moment_leaves_every_host_whole() {
    let tmp = TempDir::new("killed-compile");
    copy_project(tmp.path(), false);
    let a = gen_site::site(150);
    // The mesh port is in every host's tunnel config and firewall.
    let b = a.replacen("port = 51820", "port = 51821", 1);
    assert_ne!(a, b);
    let out = tmp.path().join("out/mesh");
    write_site(tmp.path(), "mesh", &b);
    let (code, err) = run(tmp.path(), &["compile", "--no-cache", "mesh"]);
    assert_eq!(code, 0, "{err}");
    let on_b = hosts(&out);
    write_site(tmp.path(), "mesh", &a);
    let start = Instant::now();
    let (code, err) = run(tmp.path(), &["compile", "--no-cache", "mesh"]);
    assert_eq!(code, 0, "{err}");
    let took = start.elapsed();
    let on_a = hosts(&out);
    assert!(on_a.iter().all(|(h, hash)| on_b[h] != *hash));

    // Back and forth between the two, killed at ever later moments.
    for step in 0..12 {
        let (from, to, text) = if step % 2 == 0 {
            (&on_a, &on_b, &b)
        } else {
            (&on_b, &on_a, &a)
        };
        write_site(tmp.path(), "mesh", text);
        let mut child = sitec()
            .current_dir(tmp.path())
            .args(["compile", "--no-cache", "mesh"])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(took.mul_f64(0.3 + 0.07 * f64::from(step)));
        let _ = child.kill();
        let _ = child.wait();
        let now = hosts(&out);
        assert_eq!(
            now.keys().collect::<Vec<_>>(),
            from.keys().collect::<Vec<_>>(),
            "killed at step {step}: a host is missing"
        );
        let done = now.iter().filter(|(h, hash)| to[*h] == **hash).count();
        assert!(
            now.iter()
                .all(|(h, hash)| from[h] == *hash || to[h] == *hash),
            "killed at step {step}: a host is neither bundle"
        );
        // A kill in the middle of the commit can leave a swapped-out
        // host's old files beside it (`.<host>.sitec-new`): out/ is then
        // not what the site compiles to either, and --check says so.
        let unfinished = done < now.len() || !leftovers(&out).is_empty();
        let (code, err) = run(tmp.path(), &["compile", "--check", "--no-cache", "mesh"]);
        assert_eq!(code, i32::from(unfinished), "step {step}: {err}");
        // The next compile finishes what the killed one left.
        let (code, err) = run(tmp.path(), &["compile", "--no-cache", "mesh"]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(&hosts(&out), to, "step {step}");
        assert_eq!(leftovers(&out), [""; 0], "step {step}");
    }
}
