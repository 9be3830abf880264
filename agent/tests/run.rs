//! The commands as the operator runs them: what they say, their exit, and
//! `status.prom` after each that may change the host.

use std::path::Path;

use sitec_agent::cli::Command;
use sitec_agent::effects::{Effects, EffectsExt as _};
use sitec_agent::layout::Layout;
use sitec_agent::run::{Line, execute};
use sitec_agent::sim::SimFs;
use sitec_agent::transition::Agent;
use sitec_format::exit::Exit;

fn store(fs: &mut SimFs, name: &str, a: &str) {
    let dir = Layout::default().store_copy(name);
    fs.mkdir_all(&dir.join("etc"), 0o755).unwrap();
    fs.write(&dir.join("etc/a"), a.as_bytes(), 0o444).unwrap();
    let index = format!(
        "f\tetc/a\t{}\t0644\tfalse\t-\t\n",
        sitec_format::sha256_hex(a.as_bytes())
    );
    fs.write(&dir.join("index"), index.as_bytes(), 0o444)
        .unwrap();
    let hash = sitec_format::listing::bundle_hash([
        ("etc/a", 0o444, a.as_bytes()),
        ("index", 0o444, index.as_bytes()),
    ]);
    fs.write(&dir.join("BUNDLE"), format!("{hash}\n").as_bytes(), 0o444)
        .unwrap();
    fs.chmod(&dir.join("etc"), 0o555).unwrap();
    fs.chmod(&dir, 0o555).unwrap();
}

fn host() -> SimFs {
    let mut fs = SimFs::new();
    fs.mkdir_all(Path::new("/etc"), 0o755).unwrap();
    store(&mut fs, "h1-host", "a of 1\n");
    store(&mut fs, "h2-host", "a of 2\n");
    for name in ["h1-host", "h2-host"] {
        Agent::new(&mut fs, Layout::default())
            .switch(name, None)
            .unwrap();
    }
    fs
}

fn said(fs: &mut SimFs, args: &[&str]) -> (Vec<String>, Exit) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let command = Command::parse(&args).unwrap();
    let out = execute(
        fs,
        &Layout::default(),
        &command,
        &Default::default(),
        &mut |_| {},
    );
    let lines = out
        .lines
        .iter()
        .map(|l| match l {
            Line::Say(s) => s.clone(),
            Line::Warn(w) => format!("! {w}"),
            Line::Listed(l) => format!("| {l}"),
        })
        .collect();
    (lines, out.exit)
}

#[test]
fn status_list_rollback_and_confirm_say_what_the_host_is() {
    let mut fs = host();
    assert_eq!(
        said(&mut fs, &["status"]),
        (
            vec![
                "current generation 2: ../store/h2-host (switched)".to_string(),
                "state: LIVE(2)".to_string()
            ],
            Exit::Ok
        )
    );
    assert_eq!(
        said(&mut fs, &["rollback"]),
        (
            vec!["rolled back from generation 2 to 1".to_string()],
            Exit::Ok
        )
    );
    assert_eq!(fs.read(Path::new("/etc/a")).unwrap(), b"a of 1\n");
    assert_eq!(
        said(&mut fs, &["list"]).0,
        [
            "  0 ../backup",
            "* 1 ../store/h1-host switched",
            "  2 ../store/h2-host rolled-back"
        ]
    );
    assert_eq!(
        said(&mut fs, &["confirm", "2"]),
        (
            vec!["! generation 2 was already rolled back (rolled-back)".to_string()],
            Exit::Unconfirmed
        )
    );
    assert_eq!(
        said(&mut fs, &["rollback", "7"]),
        (
            vec!["! no generation 7 to roll back to".to_string()],
            Exit::Error
        )
    );
    let prom =
        String::from_utf8(fs.read(Path::new("/var/lib/sitec/status.prom")).unwrap()).unwrap();
    assert!(prom.contains("\nsitec_generation 1\n"), "{prom}");
    assert!(
        prom.contains("sitec_generation_info{bundle=\"h1\",host=\"host\"} 1\n"),
        "{prom}"
    );
    assert!(prom.contains("\nsitec_awaiting_confirmation 0\n"), "{prom}");
}

#[test]
fn a_rollback_to_a_copy_changed_on_the_host_is_refused() {
    let mut fs = host();
    // Root ignores the missing write bits: an edit in place.
    let a = Layout::default().store_copy("h1-host").join("etc/a");
    fs.write(&a, b"edited\n", 0o444).unwrap();
    let (lines, exit) = said(&mut fs, &["rollback", "1"]);
    assert_eq!(exit, Exit::Refused);
    assert!(lines[0].starts_with("! generation 1's copy in /var/lib/sitec/generations/1 was changed on the host since it was pushed"), "{lines:?}");
    assert_eq!(fs.read(Path::new("/etc/a")).unwrap(), b"a of 2\n");
}

#[test]
fn plan_says_what_a_switch_would_do_and_drift_what_changed_on_the_host() {
    let mut fs = host();
    assert_eq!(
        said(&mut fs, &["plan", "h1-host"]),
        (vec!["  changed etc/a".to_string()], Exit::Ok)
    );
    assert_eq!(
        said(&mut fs, &["plan", "h2-host"]).0,
        ["already on generation 2: nothing would change"]
    );
    assert_eq!(
        said(&mut fs, &["drift"]),
        (vec!["generation 2 h2-host".to_string()], Exit::Ok)
    );
    // Edited through the link: the store copy is.
    fs.write(Path::new("/etc/a"), b"edited\n", 0o644).unwrap();
    assert_eq!(
        said(&mut fs, &["drift"]),
        (
            vec![
                "generation 2 h2-host".to_string(),
                "modified: files of generation 2 were edited on the host".to_string()
            ],
            Exit::Drifted
        )
    );
    fs.unlink(Path::new("/etc/a")).unwrap();
    fs.write(Path::new("/etc/a"), b"mine\n", 0o644).unwrap();
    let (said, exit) = said(&mut fs, &["drift"]);
    assert_eq!(exit, Exit::Drifted);
    assert_eq!(
        said.last().unwrap(),
        "replaced: /etc/a is no longer sitec's link"
    );
}

#[test]
fn a_transition_never_follows_a_managed_path_out_of_the_root() {
    let mut fs = host();
    let dir = Layout::default().store_copy("h3-host");
    fs.mkdir_all(&dir, 0o755).unwrap();
    fs.write(
        &dir.join("index"),
        b"f\tetc/../../root/x\tab\t0644\tfalse\t-\t\n",
        0o444,
    )
    .unwrap();
    let e = Agent::new(&mut fs, Layout::default())
        .switch("h3-host", None)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "/var/lib/sitec/store/h3-host/index: 'etc/../../root/x': a managed path is relative, without . or .."
    );
    // Refused as its store copy is read, before it is a generation.
    assert!(!fs.exists(&Layout::default().generation(sitec_agent::index::Gen(3))));
    assert!(!fs.exists(Path::new("/root/x")));
    assert_eq!(fs.read(Path::new("/etc/a")).unwrap(), b"a of 2\n");
}
