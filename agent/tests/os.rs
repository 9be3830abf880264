//! The simulation agrees with a real file system: the same transitions run
//! through [`Os`] in a temporary directory and through [`SimFs`] leave the
//! same tree (names, kinds, link targets, bytes, modes), and the links the
//! real one leaves resolve as the kernel resolves them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sitec_agent::effects::{Effects, EffectsExt as _, Kind};
use sitec_agent::index::Gen;
use sitec_agent::layout::Layout;
use sitec_agent::os::Os;
use sitec_agent::sim::SimFs;
use sitec_agent::transition::Agent;

/// What a tree holds, path by path.
#[derive(Debug, PartialEq, Eq)]
enum Entry {
    Dir(u32),
    File(Vec<u8>, u32),
    Link(PathBuf),
}

fn tree(fx: &impl Effects, dir: &Path, out: &mut BTreeMap<PathBuf, Entry>) {
    for name in fx.list(dir).unwrap() {
        let path = dir.join(name);
        // The log is no state: the simulation keeps it apart.
        if path == Path::new("/var/lib/sitec/log") {
            continue;
        }
        match fx.kind(&path).unwrap().unwrap() {
            Kind::Dir => {
                out.insert(path.clone(), Entry::Dir(fx.mode(&path).unwrap()));
                tree(fx, &path, out);
            }
            Kind::File => {
                out.insert(
                    path.clone(),
                    Entry::File(fx.read(&path).unwrap(), fx.mode(&path).unwrap()),
                );
            }
            Kind::Link => {
                out.insert(path.clone(), Entry::Link(fx.read_link(&path).unwrap()));
            }
        }
    }
}

fn scene(fx: &mut impl Effects) {
    let layout = Layout::default();
    fx.mkdir_all(&layout.store(), 0o755).unwrap();
    fx.mkdir(Path::new("/etc"), 0o755).unwrap();
    fx.write(Path::new("/etc/a"), b"the host's own a\n", 0o600)
        .unwrap();
    for (name, files) in [
        ("b1-host", &[("etc/a", "a of 1\n"), ("etc/b", "b of 1\n")]),
        (
            "b2-host",
            &[("etc/a", "a of 2\n"), ("etc/sub/c", "c of 2\n")],
        ),
    ] {
        let dir = layout.store_copy(name);
        fx.mkdir(&dir, 0o755).unwrap();
        let mut index = String::new();
        for (p, bytes) in files {
            let path = dir.join(p);
            fx.mkdir_all(path.parent().unwrap(), 0o755).unwrap();
            fx.write(&path, bytes.as_bytes(), 0o444).unwrap();
            index.push_str(&format!("f\t{p}\tsha\t0644\tfalse\t-\t\n"));
        }
        fx.write(&dir.join("index"), index.as_bytes(), 0o444)
            .unwrap();
    }
}

#[derive(Clone, Copy)]
enum Step {
    Switch(&'static str),
    Rollback(Gen),
}

impl Step {
    /// Runs the step; the generation it ends on.
    fn apply<F: Effects>(self, agent: &mut Agent<'_, F>) -> Gen {
        match self {
            Step::Switch(name) => agent.switch(name, None).unwrap(),
            Step::Rollback(g) => {
                agent.rollback(g).unwrap();
                g
            }
        }
    }
}

#[test]
fn the_simulation_and_a_real_file_system_end_alike() {
    let root = std::env::temp_dir().join(format!("sitec-agent-os-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    // New files get their modes as asked.
    // SAFETY: umask(2) cannot fail; this test binary runs this test alone.
    unsafe { umask(0) };
    let mut os = Os::new(&root);
    let mut sim = SimFs::new();
    scene(&mut os);
    scene(&mut sim);
    let steps = [
        Step::Switch("b1-host"),
        Step::Switch("b2-host"),
        Step::Rollback(Gen(1)),
        Step::Rollback(Gen(0)),
    ];
    for (i, step) in steps.into_iter().enumerate() {
        if i == 3 {
            // Eleven switches on: generations 1 to 3 are let go of, and
            // b2's copy, which only generation 2 ran, with them.
            for _ in 0..11 {
                let g = Step::Switch("b1-host").apply(&mut Agent::new(&mut os, Layout::default()));
                let h = Step::Switch("b1-host").apply(&mut Agent::new(&mut sim, Layout::default()));
                assert_eq!(g, h);
            }
            assert!(!root.join("var/lib/sitec/store/b2-host").exists());
            assert!(!root.join("var/lib/sitec/generations/3").exists());
            assert!(root.join("var/lib/sitec/generations/4").exists());
        }
        let g = step.apply(&mut Agent::new(&mut os, Layout::default()));
        assert_eq!(g, step.apply(&mut Agent::new(&mut sim, Layout::default())));
        let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
        tree(&os, Path::new("/"), &mut a);
        tree(&sim, Path::new("/"), &mut b);
        assert_eq!(a, b, "step {i}: the trees differ");
        // The kernel resolves the links the agent made as it does.
        if g.0 == 1 {
            let through = std::fs::read_link(root.join("etc/a")).unwrap();
            assert_eq!(through, Path::new("/var/lib/sitec/current/etc/a"));
            assert_eq!(
                std::fs::read(root.join("var/lib/sitec/current/etc/a")).unwrap(),
                b"a of 1\n"
            );
        }
    }
    // Back at generation 0: the host's own file, its own mode.
    assert_eq!(
        std::fs::read(root.join("etc/a")).unwrap(),
        b"the host's own a\n"
    );
    std::fs::remove_dir_all(&root).unwrap();
}

unsafe extern "C" {
    fn umask(mask: u32) -> u32;
}

/// An action's command writes to the log under the root, not to a pipe a
/// daemon it starts would hold open, and one that hangs is cut off.
#[test]
fn logged_commands_append_to_the_log_and_a_hanging_one_is_cut_off() {
    use sitec_agent::effects::Cmd;
    let root = std::env::temp_dir().join(format!("sitec-agent-run-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("var/lib/sitec")).unwrap();
    let mut fx = Os::new(&root);
    let log = Path::new("/var/lib/sitec/log");
    let said = fx
        .run(&Cmd::new("sh", &["-c", "echo out; echo err >&2"]).logged(log, 30))
        .unwrap();
    assert!(said.success);
    let failed = fx.run(&Cmd::new("false", &[]).logged(log, 30)).unwrap();
    assert!(!failed.success);
    let start = std::time::Instant::now();
    let hung = fx.run(&Cmd::new("sleep", &["30"]).logged(log, 1)).unwrap();
    assert!(!hung.success);
    assert!(start.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(
        hung.code,
        Some(124),
        "timeout(1)'s code for a cut-off command"
    );
    let text = std::fs::read_to_string(root.join("var/lib/sitec/log")).unwrap();
    assert_eq!(text, "out\nerr\n");
    std::fs::remove_dir_all(&root).unwrap();
}

/// A command cut off takes what it started with it (a child holding its
/// output open would otherwise keep the agent waiting), and one that
/// ignores TERM is killed 5 s later; one that ends in time is not touched.
#[test]
fn a_command_cut_off_takes_its_children_and_one_ignoring_term_is_killed() {
    use sitec_agent::effects::Cmd;
    let mut fx = Os::new(Path::new("/"));
    let start = std::time::Instant::now();
    let ran = fx
        .run(&Cmd::new("sh", &["-c", "echo started; sleep 60 & wait"]).within(1))
        .unwrap();
    assert!(!ran.success);
    assert_eq!(ran.code, Some(124));
    assert_eq!(ran.stdout, b"started\n");
    assert!(
        start.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    let start = std::time::Instant::now();
    let ran = fx
        .run(
            &Cmd::new(
                "sh",
                &["-c", "trap '' TERM; sleep 2; sleep 2; sleep 2; sleep 2"],
            )
            .within(1),
        )
        .unwrap();
    let took = start.elapsed();
    assert_eq!(ran.code, Some(124));
    assert!(
        took >= std::time::Duration::from_secs(5) && took < std::time::Duration::from_secs(8),
        "{took:?}"
    );
    let ran = fx
        .run(&Cmd::new("sh", &["-c", "exit 3"]).within(5))
        .unwrap();
    assert_eq!((ran.success, ran.code), (false, Some(3)));
    let ran = fx.run(&Cmd::new("true", &[]).within(5)).unwrap();
    assert!(ran.success);
}

/// The agent's own strip of a WireGuard file (for `wg syncconf`) prints
/// what `wg-quick strip` prints, on files as sitec renders them and on
/// what hand-written ones hold: keys in any case, blanks, comments,
/// sections after `[Interface]`, a last line without its newline.
#[test]
fn the_agent_strips_a_wireguard_file_as_wg_quick_does() {
    use sitec_agent::actions::wireguard::strip;
    use std::os::unix::fs::PermissionsExt as _;
    let dir = std::env::temp_dir().join(format!("sitec-agent-strip-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let files = [
        "[Interface]\nListenPort = 51820\nAddress = 10.9.0.1/24\nPostUp = wg set %i private-key /etc/wireguard/wg0.key\n\n[Peer]\nPublicKey = x\nAllowedIPs = 10.9.0.2/32\nEndpoint = 192.0.2.2:51820\n",
        "# a comment\n  [interface]  # the interface\n\taddress=10.0.0.1/24\nMtu = 1420\n DNS = 1.1.1.1, example.net\nTable = off\nSaveConfig = false\nPreUp = true\nPreDown = true\nPostDown = true\nFwMark = 7\nListenPort=1 # port\n[Peer]\nAddress = kept in a peer\nPublicKey = y",
        "",
        "\n\n",
        "[Peer]\nPublicKey = z\n[Interface]\nAddress = a # = b\n#Address = c\nA#ddress = d\n",
    ];
    for (i, conf) in files.iter().enumerate() {
        let f = dir.join(format!("wg{i}.conf"));
        std::fs::write(&f, conf).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        let o = std::process::Command::new("wg-quick")
            .arg("strip")
            .arg(&f)
            .output()
            .expect("wg-quick (wireguard-tools) is installed");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(
            strip(conf),
            String::from_utf8(o.stdout).unwrap(),
            "file {i}: {conf:?}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An action's command is cut off at its deadline even when the agent
/// that ran it is killed meanwhile (a hung ifreload must not race the
/// next activation): it runs under a process of its own.
#[test]
fn an_actions_command_is_cut_off_even_when_the_agent_is_killed() {
    use sitec_agent::effects::Cmd;
    let dir = std::env::temp_dir().join(format!("sitec-agent-killed-{}", std::process::id()));
    if let Ok(child_dir) = std::env::var("SITEC_TEST_KILLED_AGENT") {
        // The agent to kill: it runs the command and is killed in it.
        let mut fx = Os::new(Path::new(&child_dir));
        let _ = fx.run(
            &Cmd::new("sh", &["-c", "echo $$ >pid; exec sleep 37"]).logged(Path::new("/log"), 2),
        );
        return;
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut agent = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "an_actions_command_is_cut_off_even_when_the_agent_is_killed",
            "--test-threads=1",
        ])
        .env("SITEC_TEST_KILLED_AGENT", &dir)
        .current_dir(&dir)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid_file = dir.join("pid");
    let start = std::time::Instant::now();
    while !pid_file.exists()
        || std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .is_empty()
    {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "the command never ran"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    agent.kill().unwrap();
    agent.wait().unwrap();
    let pid = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .to_string();
    let alive = || {
        std::process::Command::new("kill")
            .args(["-0", &pid])
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap()
            .success()
    };
    while alive() && start.elapsed() < std::time::Duration::from_secs(12) {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let survived = alive();
    if survived {
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid])
            .status();
    }
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(!survived, "the command outlived its deadline and its agent");
}
