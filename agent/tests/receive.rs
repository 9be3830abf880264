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

/// out/homelab/nas, put where push puts it; its store name.
fn pushed(fs: &mut SimFs) -> String {
    let out = support::out().join("homelab/nas");
    let hash = std::fs::read_to_string(out.join("BUNDLE")).unwrap();
    let name = format!("{}-nas", hash.trim());
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
