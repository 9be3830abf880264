//! `receive`: a pushed copy becomes a sealed store copy named after its
//! hash; one changed on the host is repaired file by file, and what was
//! repaired under the live generation's daemons is recorded.

mod support;

use std::path::Path;

use sitec_agent::effects::{Effects, EffectsExt as _};
use sitec_agent::host::Error;
use sitec_agent::layout::Layout;
use sitec_agent::sim::SimFs;
use sitec_agent::transition::Agent;

/// The store name of out/homelab/nas.
fn nas_name() -> String {
    let hash = std::fs::read_to_string(support::out().join("homelab/nas/BUNDLE")).unwrap();
    format!("{}-nas", hash.trim())
}

/// out/homelab/nas, put where push puts it; its store name.
fn pushed(fs: &mut SimFs) -> String {
    let out = support::out().join("homelab/nas");
    let name = nas_name();
    let to = Layout::default().store().join(format!(".incoming-{name}"));
    support::copy_in(fs, &out, &to);
    name
}

#[test]
fn a_pushed_copy_is_sealed_and_a_changed_one_repaired() {
    let mut fs = SimFs::new();
    let layout = Layout::default();
    let name = pushed(&mut fs);
    let said = Agent::new(&mut fs, layout.clone()).receive(&name).unwrap();
    assert_eq!(said, format!("received {name}"));
    let copy = layout.store_copy(&name);
    assert!(sitec_agent::bundle::intact(&fs, &copy));
    assert_eq!(
        fs.mode(&copy.join("etc/wireguard/wg0.conf")).unwrap(),
        0o400
    );
    assert_eq!(fs.mode(&copy.join("etc/nftables.conf")).unwrap(), 0o555);
    assert_eq!(fs.mode(&copy.join("manifest.json")).unwrap(), 0o444);
    assert_eq!(fs.mode(&copy.join("etc")).unwrap(), 0o555);
    // Again: nothing to do.
    pushed(&mut fs);
    let said = Agent::new(&mut fs, layout.clone()).receive(&name).unwrap();
    assert_eq!(said, format!("{name} is on the host already"));
    assert!(!fs.exists(&layout.store().join(format!(".incoming-{name}"))));

    // Live, then edited in place on the host (root ignores the modes).
    fs.mkdir_all(Path::new("/etc"), 0o755).unwrap();
    Agent::new(&mut fs, layout.clone())
        .switch(&name, None)
        .unwrap();
    fs.write(&copy.join("etc/samba/smb.conf"), b"edited\n", 0o444)
        .unwrap();
    assert!(!sitec_agent::bundle::intact(&fs, &copy));
    pushed(&mut fs);
    let mut agent = Agent::new(&mut fs, layout.clone());
    agent.receive(&name).unwrap();
    assert!(agent.notes.iter().any(|n| matches!(n, sitec_agent::actions::Note::Warn(w) if w.ends_with("the copy on the host had been changed; repaired"))));
    assert!(sitec_agent::bundle::intact(&fs, &copy));
    assert_ne!(
        fs.read(Path::new("/etc/samba/smb.conf")).unwrap(),
        b"edited\n"
    );
    assert_eq!(
        String::from_utf8(fs.read(&layout.state.join("repaired")).unwrap()).unwrap(),
        format!("{name}\tetc/samba/smb.conf\n")
    );
    // The next switch (to the same copy, say) acts on what was repaired,
    // once.
    fs.mkdir_all(Path::new("/run/systemd/system"), 0o755)
        .unwrap();
    fs.answer(
        "systemctl list-unit-files --no-legend smbd.service",
        "smbd.service enabled enabled\n",
        true,
    );
    // The tunnel's key, which wg syncconf is fed.
    fs.mkdir_all(Path::new("/etc/wireguard/wg0.key").parent().unwrap(), 0o700)
        .unwrap();
    fs.write(Path::new("/etc/wireguard/wg0.key"), b"key\n", 0o600)
        .unwrap();
    let start = fs.ops().len();
    let mut agent = Agent::new(&mut fs, layout.clone());
    let r = agent.switch(&name, None);
    assert!(r.is_ok(), "{r:?}: {:#?}", agent.notes);
    let ran: Vec<&str> = fs.ops()[start..].iter().map(|o| o.0.as_str()).collect();
    assert!(
        ran.contains(&"run systemctl reload-or-restart smbd.service"),
        "{ran:#?}"
    );
    assert_eq!(fs.read(&layout.state.join("repaired")).unwrap(), b"");
}

#[test]
fn a_copy_not_named_after_its_hash_is_refused() {
    let mut fs = SimFs::new();
    let name = pushed(&mut fs);
    let wrong = format!("{}-nas", "0".repeat(64));
    let layout = Layout::default();
    fs.rename(
        &layout.store().join(format!(".incoming-{name}")),
        &layout.store().join(format!(".incoming-{wrong}")),
    )
    .unwrap();
    match Agent::new(&mut fs, layout.clone()).receive(&wrong) {
        Err(Error::Refused(why)) => assert!(
            why.starts_with(&format!("{wrong} is not named after its hash ")),
            "{why}"
        ),
        other => panic!("{other:?}"),
    }
    assert!(!fs.exists(&layout.store_copy(&wrong)));
}

/// A receive stopped after any of its steps (the process killed, or the
/// power lost) leaves no copy under the store name that is not whole, and
/// the next push's receive makes it whole. A repair of the live copy
/// keeps every file the live generation links to there at every step.
#[test]
fn a_receive_stopped_at_any_step_leaves_no_partial_copy() {
    use sitec_agent::sim::Crash;
    let layout = Layout::default();
    let incoming = |name: &str| layout.store().join(format!(".incoming-{name}"));
    // What push does again: clears what it sent before, sends, receives.
    let push_again = |fs: &mut SimFs, what: &str| {
        let name = nas_name();
        fs.remove_all(&incoming(&name)).unwrap();
        pushed(fs);
        Agent::new(fs, layout.clone())
            .receive(&name)
            .unwrap_or_else(|e| panic!("{what}: the next receive: {e}"));
        assert!(
            sitec_agent::bundle::intact(&*fs, &layout.store_copy(&name)),
            "{what}: not whole after the next receive"
        );
    };
    let mut report = Vec::new();
    for repair in [false, true] {
        let mut base = SimFs::new();
        let name = pushed(&mut base);
        let copy = layout.store_copy(&name);
        let mut linked = Vec::new();
        if repair {
            // Live, then edited in place on the host; pushed again.
            Agent::new(&mut base, layout.clone())
                .receive(&name)
                .unwrap();
            base.mkdir_all(Path::new("/etc"), 0o755).unwrap();
            Agent::new(&mut base, layout.clone())
                .switch(&name, None)
                .unwrap();
            base.write(&copy.join("etc/samba/smb.conf"), b"edited\n", 0o444)
                .unwrap();
            pushed(&mut base);
            linked = sitec_agent::bundle::files(&base, &copy)
                .unwrap()
                .into_iter()
                .map(|f| copy.join(f.path))
                .collect();
        }
        base.settle();
        let mut whole = base.after(Crash::Kill);
        Agent::new(&mut whole, layout.clone())
            .receive(&name)
            .unwrap();
        let n = whole.ops().len();
        for k in 0..=n {
            let mut run = base.after(Crash::Kill);
            run.crash_after(k);
            let _ = Agent::new(&mut run, layout.clone()).receive(&name);
            for crash in [Crash::Kill, Crash::PowerLoss] {
                let mut left = run.after(crash);
                let what = format!(
                    "{}, stopped after {k} of {n} ({crash:?})",
                    if repair { "a repair" } else { "a receive" }
                );
                if repair {
                    for f in &linked {
                        assert!(left.exists(f), "{what}: {} is gone", f.display());
                    }
                } else {
                    assert!(
                        !left.exists(&copy) || sitec_agent::bundle::intact(&left, &copy),
                        "{what}: a copy that is not whole is under the store name"
                    );
                }
                push_again(&mut left, &what);
            }
        }
        report.push(format!(
            "{}: {n} crash points, each a kill and a power loss",
            if repair {
                "receive repairing the live copy"
            } else {
                "receive"
            }
        ));
    }
    println!("{}", report.join("\n"));
}
