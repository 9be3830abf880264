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
