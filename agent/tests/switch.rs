//! `switch` on the command line: checked, switched, awaiting confirmation
//! when the network changes, refused while something awaits, rolled back
//! when an action fails, and the agent that ran it made the host's.

use std::path::Path;

mod support;

use sitec_agent::cli::Command;
use sitec_agent::effects::{Effects, EffectsExt as _};
use sitec_agent::index::Gen;
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
    agent(fs, &["switch", name])
}

/// The agent's command `args` on the host: what it said, and its exit.
fn agent(fs: &mut SimFs, args: &[&str]) -> (Vec<String>, Exit) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let command = Command::parse(&args).unwrap();
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

/// A store copy of etc/a requiring secret /etc/s/key, with `key` staged
/// for it.
fn store_with_key(fs: &mut SimFs, a: &str, key: &str) -> String {
    let index = format!(
        "d\tuser\troot\nh\tagent_protocol\t1\nh\trelease\tdebian12\nf\tetc/a\t{}\t0644\tfalse\tshell\trestart:a.service\ns\t/etc/s/key\tetc/a\t0\t0\t-\n",
        sitec_format::sha256_hex(a.as_bytes())
    );
    let name = support::store_copy_of_a(fs, a, &index).0;
    let staged = Layout::default().staged_secrets(&name).join("etc/s/key");
    fs.mkdir_all(staged.parent().unwrap(), 0o700).unwrap();
    fs.write(&staged, key.as_bytes(), 0o600).unwrap();
    name
}

/// A host whose generations 1 to `n` each keep their own key ("key N"),
/// switched to one after the other.
fn keyed_host(n: u64) -> SimFs {
    let mut fs = host();
    fs.mkdir_all(Path::new("/etc/s"), 0o700).unwrap();
    for i in 1..=n {
        let name = store_with_key(&mut fs, &format!("a of {i}\n"), &format!("key {i}\n"));
        assert_eq!(switch(&mut fs, &name).1, Exit::Ok);
    }
    fs
}

/// A host keeps its newest generations; older ones go with their
/// secrets (a rotated key leaves the host), their results and the store
/// copies only they used. A store copy a kept generation runs again
/// stays, and so does generation 0.
#[test]
fn a_host_lets_go_of_old_generations_with_their_secrets() {
    let mut fs = host();
    fs.mkdir_all(Path::new("/etc/s"), 0o700).unwrap();
    let layout = Layout::default();
    let mut names: Vec<String> = Vec::new();
    for i in 1..=13 {
        // Generation 10 runs generation 1's bundle again (with its key
        // of now).
        let name = if i == 10 {
            let staged = layout.staged_secrets(&names[0]).join("etc/s/key");
            fs.mkdir_all(staged.parent().unwrap(), 0o700).unwrap();
            fs.write(&staged, b"key 10\n", 0o600).unwrap();
            names[0].clone()
        } else {
            store_with_key(&mut fs, &format!("a of {i}\n"), &format!("key {i}\n"))
        };
        let (said, exit) = switch(&mut fs, &name);
        assert_eq!(exit, Exit::Ok, "{said:?}");
        names.push(name);
    }
    let key_of = |fs: &SimFs, g: u64| fs.text(&layout.kept_secrets(Gen(g)).join("etc/s/key"));
    for g in 1..=3 {
        assert!(
            !fs.exists(&layout.generation(Gen(g))),
            "generation {g} is kept"
        );
        assert_eq!(key_of(&fs, g), None, "generation {g}'s key stays");
        assert!(
            !fs.exists(&layout.result(Gen(g))),
            "generation {g}'s result stays"
        );
    }
    // Generation 1's copy runs as generation 10; 2's and 3's are gone.
    assert!(fs.exists(&layout.store_copy(&names[0])));
    assert!(!fs.exists(&layout.store_copy(&names[1])));
    assert!(!fs.exists(&layout.store_copy(&names[2])));
    for g in 4..=13 {
        assert!(
            fs.exists(&layout.generation(Gen(g))),
            "generation {g} is gone"
        );
        assert_eq!(key_of(&fs, g), Some(format!("key {g}\n")));
        assert!(fs.exists(&layout.store_copy(&names[g as usize - 1])));
    }
    assert!(fs.exists(&layout.backup()), "generation 0 is gone");
    let log = fs.logged().join("\n");
    assert!(
        log.contains("let go of generations 1 (a host keeps the newest 10 and every way back)"),
        "{log}"
    );
    // The next switch is 14, and the operator's rollback still works.
    let next = store_with_key(&mut fs, "a of 14\n", "key 14\n");
    let (said, exit) = switch(&mut fs, &next);
    assert_eq!(exit, Exit::Ok, "{said:?}");
    assert!(fs.exists(&layout.generation(Gen(14))));
    assert!(!fs.exists(&layout.generation(Gen(4))));
}

/// Whatever their age, a host keeps the generations a way back needs:
/// the operator's rollback target (the newest before the live one that
/// was live and kept) when newer ones all failed, and every generation a
/// state file names.
#[test]
fn a_host_keeps_every_generation_a_way_back_needs() {
    use sitec_agent::transition::Agent;
    let mut fs = host();
    let layout = Layout::default();
    for i in 1..=3 {
        let name = store(&mut fs, &format!("a of {i}\n"), false, "restart:a.service");
        assert_eq!(switch(&mut fs, &name).1, Exit::Ok);
    }
    for i in 4..=14 {
        let name = store(
            &mut fs,
            &format!("a of {i}\n"),
            false,
            "restart:broken.service",
        );
        assert_eq!(switch(&mut fs, &name).1, Exit::RolledBack);
    }
    // Live: 3; 4 to 14 failed and went back.
    fs.write(&layout.boot_files(), b"1 3\n", 0o644).unwrap();
    let kept: Vec<u64> = Agent::new(&mut fs, layout.clone())
        .kept(Gen(3))
        .unwrap()
        .into_iter()
        .map(|g| g.0)
        .collect();
    // The newest ten (5..14), 0, the live 3, the rollback target 2, and
    // 1, which boot-files names.
    assert_eq!(kept, [0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
}

/// Every generation link leads to a whole store copy; once `settled` (a
/// collection ran to its end), every numbered secrets directory below the
/// newest generation belongs to one.
fn assert_collected_soundly(fs: &SimFs, settled: bool, what: &str) {
    use sitec_agent::effects::Kind;
    let layout = Layout::default();
    let mut newest = 0;
    let mut linked = std::collections::BTreeSet::new();
    for name in fs.list(&layout.generations()).unwrap() {
        let Ok(g) = name.to_string_lossy().parse::<u64>() else {
            continue;
        };
        let link = layout.generation(Gen(g));
        if fs.kind(&link).unwrap() != Some(Kind::Link) {
            continue;
        }
        newest = newest.max(g);
        linked.insert(g);
        if g != 0 {
            let target = layout.generations().join(fs.read_link(&link).unwrap());
            assert!(
                fs.exists(&target.join("index")) && fs.exists(&target.join("etc/a")),
                "{what}: generation {g} leads to a copy that is not whole"
            );
        }
    }
    for name in fs
        .list(&layout.secrets())
        .unwrap()
        .into_iter()
        .filter(|_| settled)
    {
        if let Ok(g) = name.to_string_lossy().parse::<u64>() {
            assert!(
                linked.contains(&g) || g >= newest,
                "{what}: secrets/{g} outlived its generation"
            );
        }
    }
}

/// Letting go of old generations, stopped after each of its operations
/// (the switch that ends with it, killed or by a power loss): no link is
/// left to anything missing, and the next switch finishes the job.
#[test]
fn letting_go_of_generations_survives_a_crash_after_every_step() {
    use sitec_agent::sim::Crash;
    let mut fs = keyed_host(10);
    let layout = Layout::default();
    let eleven = store_with_key(&mut fs, "a of 11\n", "key 11\n");
    let twelve = store_with_key(&mut fs, "a of 12\n", "key 12\n");
    fs.settle();
    let mut whole = fs.after(Crash::Kill);
    assert_eq!(switch(&mut whole, &eleven).1, Exit::Ok);
    let ops = whole.ops().to_vec();
    let from = ops
        .iter()
        .position(|o| o.0 == format!("unlink {}", layout.generation(Gen(1)).display()))
        .expect("the switch lets go of generation 1");
    let mut points = 0;
    for k in from..=ops.len() {
        let mut run = fs.after(Crash::Kill);
        run.crash_after(k);
        switch(&mut run, &eleven);
        for crash in [Crash::Kill, Crash::PowerLoss] {
            let what = format!("stopped after {k} of {} ({crash:?})", ops.len());
            let mut left = run.after(crash);
            assert_collected_soundly(&left, false, &what);
            let (said, exit) = switch(&mut left, &twelve);
            assert_eq!(exit, Exit::Ok, "{what}: {said:?}");
            assert_collected_soundly(&left, true, &what);
            assert!(!left.exists(&layout.generation(Gen(1))), "{what}");
            assert!(!left.exists(&layout.kept_secrets(Gen(1))), "{what}");
            assert!(!left.exists(&layout.result(Gen(1))), "{what}");
            points += 1;
        }
    }
    println!("letting go of generations: {points} crash points");
    assert!(points >= 10, "{points}");
}

/// After the operator rolled back to an old generation, the generation
/// the next switch leaves is kept, with its key, however old: it is the
/// way back the operator knows to be good.
#[test]
fn the_generation_a_switch_leaves_is_kept_after_a_rollback_to_an_old_one() {
    let mut fs = keyed_host(12);
    let layout = Layout::default();
    let (said, exit) = agent(&mut fs, &["rollback", "3"]);
    assert_eq!(exit, Exit::Ok, "{said:?}");
    assert_eq!(
        said,
        [
            "  action restart:a.service",
            "rolled back from generation 12 to 3"
        ]
    );
    let fix = store_with_key(&mut fs, "a of 13\n", "key 13\n");
    let (said, exit) = switch(&mut fs, &fix);
    assert_eq!(exit, Exit::Ok, "{said:?}");
    assert!(
        fs.exists(&layout.generation(Gen(3))),
        "the generation left is gone"
    );
    assert_eq!(
        fs.text(&layout.kept_secrets(Gen(3)).join("etc/s/key")),
        Some("key 3\n".to_string())
    );
    assert!(!fs.exists(&layout.generation(Gen(2))));
}
