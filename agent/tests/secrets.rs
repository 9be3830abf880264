//! A secret is written as root only into a directory nobody else can
//! write to, at every install: a switch into an unsafe one fails and rolls
//! back, leaving the host's own file as it was.

use std::path::Path;

use sitec_agent::actions::Note;
use sitec_agent::effects::{Effects, EffectsExt as _};
use sitec_agent::host::Error;
use sitec_agent::index::Gen;
use sitec_agent::layout::Layout;
use sitec_agent::sim::SimFs;
use sitec_agent::transition::Agent;

fn host(secret_dir_mode: u32, owner: u32) -> SimFs {
    let mut fx = SimFs::new();
    let layout = Layout::default();
    let store = layout.store_copy("b1-host");
    fx.mkdir_all(&store.join("etc"), 0o755).unwrap();
    fx.write(&store.join("etc/a"), b"a of 1\n", 0o444).unwrap();
    let index = format!(
        "f\tetc/a\t{}\t0644\tfalse\t-\t\ns\t/etc/s/key\tetc/a\t0\t0\t-\n",
        sitec_format::sha256_hex(b"a of 1\n")
    );
    fx.write(&store.join("index"), index.as_bytes(), 0o444)
        .unwrap();
    let staged = layout.staged_secrets("b1-host").join("etc/s/key");
    fx.mkdir_all(staged.parent().unwrap(), 0o700).unwrap();
    fx.write(&staged, b"new key\n", 0o600).unwrap();
    fx.mkdir_all(Path::new("/etc/s"), 0o755).unwrap();
    fx.chmod(Path::new("/etc/s"), secret_dir_mode).unwrap();
    fx.chown(Path::new("/etc/s"), owner, owner).unwrap();
    fx.write(Path::new("/etc/s/key"), b"own key\n", 0o600)
        .unwrap();
    fx
}

#[test]
fn a_secret_goes_into_a_root_only_directory_and_its_staged_copy_leaves() {
    let mut fx = host(0o700, 0);
    let mut agent = Agent::new(&mut fx, Layout::default());
    assert_eq!(agent.switch("b1-host", None).unwrap(), Gen(1));
    assert_eq!(fx.read(Path::new("/etc/s/key")).unwrap(), b"new key\n");
    let layout = Layout::default();
    assert!(!fx.exists(&layout.staged_secrets("b1-host")));
    assert_eq!(
        fx.read(&layout.kept_secrets(Gen(1)).join("etc/s/key"))
            .unwrap(),
        b"new key\n"
    );
    // Back to the host as sitec found it: its own key, its own owner.
    Agent::new(&mut fx, Layout::default())
        .rollback(Gen(0))
        .unwrap();
    assert_eq!(fx.read(Path::new("/etc/s/key")).unwrap(), b"own key\n");
}

#[test]
fn a_secret_in_a_directory_others_may_write_fails_the_switch() {
    for (mode, owner) in [(0o775, 0), (0o755, 1000)] {
        let mut fx = host(mode, owner);
        let mut agent = Agent::new(&mut fx, Layout::default());
        let e = agent.switch("b1-host", None).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Failed {
                    generation: Gen(1),
                    back: Gen(0)
                }
            ),
            "{e}"
        );
        let warned = agent.notes.iter().any(|n| {
            matches!(n, Note::Warn(w) if w.starts_with("secret /etc/s/key not installed: it is in /etc/s, which is not root's alone"))
        });
        assert!(warned, "{:?}", agent.notes);
        assert_eq!(fx.read(Path::new("/etc/s/key")).unwrap(), b"own key\n");
        assert_eq!(
            fx.read_link(&Layout::default().current()).unwrap(),
            Path::new("generations/0")
        );
    }
}

fn bundle_with_sealed_secret(fx: &mut SimFs) -> sitec_format::Index {
    let dir = Path::new("/b");
    fx.mkdir_all(&dir.join("secrets/etc/s"), 0o755).unwrap();
    fx.write(
        &dir.join("secrets/etc/s/key.age"),
        b"age-encrypted\n",
        0o644,
    )
    .unwrap();
    sitec_format::Index::parse("s\t/etc/s/key\tetc/a\t0\t0\tsecrets/etc/s/key.age\n").unwrap()
}

const AGE: &str = "age -d -i /etc/ssh/ssh_host_ed25519_key -o /var/lib/sitec/secrets/.incoming-b1-host/etc/s/key.sitec-new /b/secrets/etc/s/key.age";

#[test]
fn a_secret_the_bundle_carries_is_decrypted_with_the_host_key_and_dropped_on_failure() {
    let mut fx = host(0o700, 0);
    let index = bundle_with_sealed_secret(&mut fx);
    // Without a host key, or without age: refused, saying what to do.
    let mut agent = Agent::new(&mut fx, Layout::default());
    let e = agent
        .decrypt_secrets(Path::new("/b"), "b1-host", &index)
        .unwrap_err();
    assert!(
        e.to_string()
            .ends_with("and the host has none (/etc/ssh/ssh_host_ed25519_key)"),
        "{e}"
    );
    fx.mkdir_all(Path::new("/etc/ssh"), 0o755).unwrap();
    fx.write(Path::new("/etc/ssh/ssh_host_ed25519_key"), b"k", 0o600)
        .unwrap();
    let e = Agent::new(&mut fx, Layout::default())
        .decrypt_secrets(Path::new("/b"), "b1-host", &index)
        .unwrap_err();
    assert!(e.to_string().contains("(apt install age)"), "{e}");
    fx.mkdir_all(Path::new("/usr/bin"), 0o755).unwrap();
    fx.write(Path::new("/usr/bin/age"), b"", 0o755).unwrap();
    let staged = Layout::default()
        .staged_secrets("b1-host")
        .join("etc/s/key");
    fx.command_writes(
        AGE,
        Path::new("/var/lib/sitec/secrets/.incoming-b1-host/etc/s/key.sitec-new"),
        b"decrypted\n",
    );
    let done = Agent::new(&mut fx, Layout::default())
        .decrypt_secrets(Path::new("/b"), "b1-host", &index)
        .unwrap();
    assert_eq!(done, std::slice::from_ref(&staged));
    assert_eq!(fx.read(&staged).unwrap(), b"decrypted\n");
    assert_eq!(fx.mode(&staged).unwrap(), 0o600);
    // A key that does not decrypt it: refused, nothing left decrypted.
    fx.answer(AGE, "", false);
    let e = Agent::new(&mut fx, Layout::default())
        .decrypt_secrets(Path::new("/b"), "b1-host", &index)
        .unwrap_err();
    assert!(
        e.to_string().starts_with(
            "secret /etc/s/key: the host's ssh host keys do not decrypt secrets/etc/s/key.age"
        ),
        "{e}"
    );
    assert!(!fx.exists(&staged));
}

#[test]
fn secrets_are_checked_before_anything_changes() {
    let check = |fx: &mut SimFs, index: &str| {
        let index = sitec_format::Index::parse(index).unwrap();
        Agent::new(fx, Layout::default())
            .check_secrets("b1-host", &index)
            .map_err(|e| e.to_string())
    };
    let required = "s\t/etc/s/key\tetc/a\t0\t0\t-\n";
    let mut fx = host(0o700, 0);
    check(&mut fx, required).unwrap();
    // Staged but not required.
    assert_eq!(
        check(&mut fx, "s\t/etc/s/other\tetc/a\t0\t0\t-\n").unwrap_err(),
        "push staged /etc/s/key, which is no secret this bundle requires"
    );
    // The host's own file, without what push staged.
    Agent::new(&mut fx, Layout::default())
        .drop_staged("b1-host")
        .unwrap();
    check(&mut fx, required).unwrap();
    fx.chmod(Path::new("/etc/s/key"), 0o644).unwrap();
    assert_eq!(
        check(&mut fx, required).unwrap_err(),
        "secret /etc/s/key is readable by others (mode 644); chmod 600 it"
    );
    fx.chmod(Path::new("/etc/s/key"), 0o600).unwrap();
    assert_eq!(
        check(&mut fx, "s\t/etc/s/key\tetc/a\t107\t113\t-\n").unwrap_err(),
        "secret /etc/s/key is owned by uid 0, not uid 107, which reads it (chown 107 /etc/s/key)"
    );
    fx.unlink(Path::new("/etc/s/key")).unwrap();
    assert_eq!(
        check(&mut fx, required).unwrap_err(),
        "required secret /etc/s/key is missing (push --secrets DIR uploads it)"
    );
    let mut fx = host(0o775, 0);
    assert!(
        check(&mut fx, required)
            .unwrap_err()
            .starts_with("secret /etc/s/key is in /etc/s, which is not root's alone")
    );
}
