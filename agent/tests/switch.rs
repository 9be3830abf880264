//! `switch` on the command line: checked, switched, awaiting confirmation
//! when the network changes, refused while something awaits, rolled back
//! when an action fails, and the agent that ran it made the host's.

use std::path::Path;

mod support;

use sitec_agent::cli::Command;
use sitec_agent::effects::{Effects, EffectsExt as _};
use sitec_agent::layout::Layout;
use sitec_agent::run::{Env, Line, execute};
use sitec_agent::sim::SimFs;
use sitec_format::exit::Exit;

const EXE: &str = "/usr/lib/sitec/agent";

/// A store copy `NAME` (its hash and host) of one file, `etc/a`, and its
/// name.
fn store(fs: &mut SimFs, a: &str, network: bool, action: &str) -> String {
    let index = format!(
        "d\tuser\troot\nh\tagent_protocol\t1\nh\trelease\tdebian12\nf\tetc/a\t{}\t0644\t{network}\tshell\t{action}\n",
        sitec_format::sha256_hex(a.as_bytes())
    );
    support::store_copy_of_a(fs, a, &index).0
}

fn host() -> SimFs {
    let mut fs = SimFs::new();
    fs.mkdir_all(Path::new("/etc"), 0o755).unwrap();
    fs.write(
        Path::new("/etc/os-release"),
        b"ID=debian\nVERSION_ID=\"12\"\n",
        0o644,
    )
    .unwrap();
    fs.mkdir_all(Path::new("/bin"), 0o755).unwrap();
    fs.write(Path::new("/bin/sh"), b"", 0o755).unwrap();
    fs.mkdir_all(Path::new("/usr/lib/sitec"), 0o755).unwrap();
    fs.write(Path::new(EXE), b"the agent\n", 0o755).unwrap();
    fs.mkdir_all(Path::new("/run/systemd/system"), 0o755)
        .unwrap();
    for u in ["a.service", "broken.service"] {
        fs.answer(
            &format!("systemctl list-unit-files --no-legend {u}"),
            &format!("{u} enabled enabled\n"),
            true,
        );
    }
    fs.fail_command("systemctl restart broken.service");
    fs
}

fn switch(fs: &mut SimFs, name: &str) -> (Vec<String>, Exit) {
    let command = Command::parse(&["switch".to_string(), name.to_string()]).unwrap();
    let env = Env {
        exe: Some(EXE.into()),
        pid: 7,
        tmp: "/tmp".into(),
        ..Default::default()
    };
    fs.mkdir_all(Path::new("/tmp"), 0o1777).unwrap();
    let out = execute(fs, &Layout::default(), &command, &env, &mut |_| {});
    let lines = out
        .lines
        .iter()
        .map(|l| match l {
            Line::Say(s) => s.clone(),
            Line::Warn(w) | Line::Listed(w) => format!("! {w}"),
        })
        .collect();
    (lines, out.exit)
}

#[test]
fn a_switch_checks_switches_and_makes_its_agent_the_hosts() {
    let mut fs = host();
    let one = store(&mut fs, "a of 1\n", false, "restart:a.service");
    assert_eq!(
        switch(&mut fs, &one),
        (
            vec![
                "validated etc/a shell".to_string(),
                format!("switching generation 0 -> 1 ({one})"),
                "  action restart:a.service".to_string(),
                "switched to generation 1".to_string(),
            ],
            Exit::Ok
        )
    );
    assert_eq!(fs.read(Path::new("/etc/a")).unwrap(), b"a of 1\n");
    assert_eq!(
        fs.read(Path::new("/var/lib/sitec/activate")).unwrap(),
        b"the agent\n"
    );
    let guard = String::from_utf8(
        fs.read(Path::new("/etc/systemd/system/sitec-boot.service"))
            .unwrap(),
    )
    .unwrap();
    assert!(
        guard.contains("\nExecStart=/var/lib/sitec/activate boot\n"),
        "{guard}"
    );
    assert_eq!(
        fs.read_link(Path::new(
            "/etc/systemd/system/sysinit.target.wants/sitec-boot.service"
        ))
        .unwrap(),
        Path::new("/etc/systemd/system/sitec-boot.service")
    );
    assert!(
        fs.ops()
            .iter()
            .any(|o| o.0 == "run systemctl restart a.service")
    );
    // The same again: nothing to do.
    let (said, exit) = switch(&mut fs, &one);
    assert_eq!(exit, Exit::Ok);
    assert_eq!(
        said.last().unwrap(),
        &format!("already on generation 1 ({one}): nothing to do")
    );

    // A network change awaits confirmation; nothing else switches meanwhile.
    let two = store(&mut fs, "a of 2\n", true, "restart:a.service");
    let (said, exit) = switch(&mut fs, &two);
    assert_eq!(exit, Exit::Ok);
    assert_eq!(
        said.last().unwrap(),
        "switched to generation 2; network configuration changed: confirm within 60 s or it rolls back"
    );
    // Armed before its first change and again after its actions, within
    // the same second: two timers, two unit names (systemd refuses a name
    // still loaded).
    let timers: Vec<String> = fs
        .ops()
        .iter()
        .filter_map(|o| {
            o.0.split(' ')
                .find(|w| w.starts_with("--unit=sitec-confirm-"))
        })
        .map(str::to_string)
        .collect();
    assert_eq!(timers.len(), 2, "{timers:?}");
    assert_ne!(timers[0], timers[1]);
    let three = store(&mut fs, "a of 3\n", false, "restart:broken.service");
    assert_eq!(
        switch(&mut fs, &three),
        (
            vec!["! generation 2 awaits confirmation: confirm or roll back first".to_string()],
            Exit::Busy
        )
    );
    let confirm = Command::parse(&["confirm".to_string()]).unwrap();
    assert_eq!(
        execute(
            &mut fs,
            &Layout::default(),
            &confirm,
            &Env::default(),
            &mut |_| {}
        )
        .exit,
        Exit::Ok
    );

    // An action fails: back to 2, exit 4.
    let (said, exit) = switch(&mut fs, &three);
    assert_eq!(exit, Exit::RolledBack);
    assert_eq!(
        said[said.len() - 2..],
        [
            "an action failed: rolling back to generation 2".to_string(),
            "! generation 3 failed and was rolled back to 2".to_string()
        ]
    );
    assert_eq!(fs.read(Path::new("/etc/a")).unwrap(), b"a of 2\n");
}

/// A store copy an older sitec pushed carries `manifest.json` (format 1)
/// and no index: a host on it switches from it, and goes back to it.
#[test]
fn a_generation_an_older_sitec_pushed_is_switched_from_and_back_to() {
    let mut fs = host();
    let one = store(&mut fs, "a of 1\n", false, "restart:a.service");
    assert_eq!(switch(&mut fs, &one).1, Exit::Ok);
    let dir = Layout::default().store_copy(&one);
    let manifest = format!(
        r#"{{
  "deploy": {{
    "user": "root"
  }},
  "files": {{
    "etc/a": {{
      "actions": [
        "restart:a.service"
      ],
      "check": "shell",
      "mode": "0644",
      "network": false,
      "sha256": "{}"
    }}
  }},
  "format": 1,
  "host": "host",
  "roles": [],
  "secrets": [],
  "site": "site",
  "units": {{}}
}}
"#,
        sitec_format::sha256_hex(b"a of 1\n")
    );
    // Such a sitec hashed the copy with the modes its files have.
    let hash = sitec_format::sha256_hex(
        sitec_format::listing::listing_as_is([
            ("etc/a", 0o444, &b"a of 1\n"[..]),
            ("manifest.json", 0o644, manifest.as_bytes()),
        ])
        .as_bytes(),
    );
    fs.chmod(&dir, 0o755).unwrap();
    fs.unlink(&dir.join("index")).unwrap();
    fs.write(&dir.join("manifest.json"), manifest.as_bytes(), 0o644)
        .unwrap();
    fs.unlink(&dir.join("BUNDLE")).unwrap();
    fs.write(&dir.join("BUNDLE"), format!("{hash}\n").as_bytes(), 0o644)
        .unwrap();

    let two = store(&mut fs, "a of 2\n", false, "restart:a.service");
    let (said, exit) = switch(&mut fs, &two);
    assert_eq!(exit, Exit::Ok, "{said:?}");
    assert_eq!(said.last().unwrap(), "switched to generation 2");
    assert_eq!(fs.read(Path::new("/etc/a")).unwrap(), b"a of 2\n");
    let rollback = Command::parse(&["rollback".to_string()]).unwrap();
    let out = execute(
        &mut fs,
        &Layout::default(),
        &rollback,
        &Env::default(),
        &mut |_| {},
    );
    assert_eq!(out.exit, Exit::Ok, "{:?}", out.lines);
    assert_eq!(fs.read(Path::new("/etc/a")).unwrap(), b"a of 1\n");
    assert_eq!(
        fs.ops()
            .iter()
            .filter(|o| o.0 == "run systemctl restart a.service")
            .count(),
        3,
        "restarted going to 1, to 2 and back to 1"
    );
}

#[test]
fn a_bundle_the_validator_rejects_changes_nothing() {
    let mut fs = host();
    let one = store(&mut fs, "a of 1\n", false, "");
    fs.answer(
        &format!(
            "sh -n {}/etc/a",
            Layout::default().store_copy(&one).display()
        ),
        "",
        false,
    );
    let (said, exit) = switch(&mut fs, &one);
    assert_eq!(exit, Exit::Refused);
    assert_eq!(said.last().unwrap(), "! etc/a: rejected by shell");
    assert!(!fs.exists(Path::new("/etc/a")));
    assert!(!fs.exists(&Layout::default().current()));
}

#[test]
fn a_switch_stopped_by_an_error_of_its_own_is_settled_at_once() {
    for step in ["retire", "links", "swap", "actions", "units"] {
        let mut fs = host();
        let one = store(&mut fs, "a of 1\n", false, "restart:a.service");
        switch(&mut fs, &one);
        let two = store(&mut fs, "a of 2\n", false, "restart:a.service");
        let command = Command::parse(&["switch".to_string(), two.clone()]).unwrap();
        let env = Env {
            exe: Some(EXE.into()),
            tmp: "/tmp".into(),
            hooks: sitec_agent::transition::Hooks {
                fail_at: Some(step.to_string()),
                ..Default::default()
            },
            ..Default::default()
        };
        let out = execute(&mut fs, &Layout::default(), &command, &env, &mut |_| {});
        assert_eq!(out.exit, Exit::RolledBack, "{step}: {:?}", out.lines);
        assert!(
            out.lines
                .iter()
                .any(|l| matches!(l, Line::Warn(w) if w == "settled: generation 1 is live")),
            "{step}: {:?}",
            out.lines
        );
        assert_eq!(fs.read(Path::new("/etc/a")).unwrap(), b"a of 1\n", "{step}");
        assert!(!fs.exists(&Layout::default().journal()), "{step}");
    }
}
