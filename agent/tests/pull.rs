//! Pull mode on a simulated host: a release verified, its bundle fetched
//! and received, applied and confirmed by its health checks or rejected
//! for good; refusals that change nothing but the backoff; and a crash
//! after every step of a pull and of an apply, after which the next pull
//! leaves the release applied, rejected, or taken up again, never two of
//! these, and never half.

use std::path::Path;

mod support;

use sitec_agent::cli::Command;
use sitec_agent::effects::{Effects, EffectsExt as _, Ran};
use sitec_agent::layout::Layout;
use sitec_agent::run::{Env, Line, execute};
use sitec_agent::sim::{Crash, SimFs};
use sitec_format::exit::Exit;

const EXE: &str = "/usr/lib/sitec/agent";
const URL: &str = "http://192.0.2.1:8088";
const SIG: &str = "-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----\n";
const SERIAL: u64 = 1_800_000_100;

/// A store copy of one file `etc/a` in pull mode: its name and listing.
fn store(fs: &mut SimFs, a: &str) -> (String, String) {
    store_at(fs, a, URL)
}

/// As `store`, its releases served at `url`.
fn store_at(fs: &mut SimFs, a: &str, url: &str) -> (String, String) {
    let index = format!(
        "d\tuser\troot\nd\tport\t22\nh\tagent_protocol\t1\nh\trelease\tdebian12\n\
         p\tsite\tsite\np\turl\t{url}\np\tinterval\t60\np\tconfirm_timeout\t30\n\
         p\tsigner\toperator\tssh-ed25519 AAAAkey\n\
         f\tetc/a\t{}\t0644\tfalse\t-\trestart:a.service\nu\ta.service\tenabled\n",
        sitec_format::sha256_hex(a.as_bytes())
    );
    support::store_copy_of_a(fs, a, &index)
}

fn ran(stdout: &[u8], code: i32, stderr: &str) -> Ran {
    Ran {
        success: code == 0,
        code: Some(code),
        stdout: stdout.to_vec(),
        stderr: stderr.as_bytes().to_vec(),
    }
}

fn curl(url: &str, limit: usize) -> String {
    format!(
        "curl -q -v -fsS --proto =http,https --proto-redir =https -L --max-redirs 3 --connect-timeout 10 --max-time 120 --max-filesize {limit} -o - -- {url}"
    )
}

/// Release `serial` of bundle `hash`, signed.
fn signed(hash: &str, serial: u64) -> String {
    format!("{}{SIG}", statement(hash, serial))
}

/// The release server does not answer (curl times out).
fn timed_out() -> Ran {
    ran(b"", 28, "curl: (28) Connection timed out")
}

fn statement(hash: &str, serial: u64) -> String {
    format!("sitec-release 1\nsite site\nhost host\nbundle {hash}\nserial {serial}\n")
}

const WORK: &str = "/var/lib/sitec/private/pull";

fn find_principals() -> String {
    format!("ssh-keygen -Y find-principals -f {WORK}/allowed_signers -s {WORK}/statement.sig")
}

fn verify() -> String {
    format!(
        "ssh-keygen -Y verify -f {WORK}/allowed_signers -I operator -n sitec-release -s {WORK}/statement.sig"
    )
}

fn run(fs: &mut SimFs, args: &[&str]) -> (Vec<String>, Exit) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let command = Command::parse(&args).unwrap();
    let env = Env {
        exe: Some(EXE.into()),
        pid: 7,
        tmp: "/tmp".into(),
        ..Default::default()
    };
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

fn pull_file(fs: &SimFs, name: &str) -> Option<String> {
    fs.text(&Layout::default().pull().join(name))
}

/// A host on generation 1 of a bundle in pull mode, its release server
/// serving release SERIAL of a second bundle; the second bundle's store
/// copy is made too (as receive would), and its name returned.
struct Host {
    fs: SimFs,
    two: String,
    digest: String,
}

fn host() -> Host {
    let mut fs = SimFs::new();
    fs.mkdir_all(Path::new("/etc"), 0o755).unwrap();
    fs.write(
        Path::new("/etc/os-release"),
        b"ID=debian\nVERSION_ID=\"12\"\n",
        0o644,
    )
    .unwrap();
    fs.mkdir_all(Path::new("/usr/lib/sitec"), 0o755).unwrap();
    fs.write(Path::new(EXE), b"the agent\n", 0o755).unwrap();
    fs.mkdir_all(Path::new("/usr/bin"), 0o755).unwrap();
    for tool in ["curl", "ss", "ssh-keygen", "systemd-run"] {
        fs.write(&Path::new("/usr/bin").join(tool), b"", 0o755)
            .unwrap();
    }
    fs.mkdir_all(Path::new("/run/systemd/system"), 0o755)
        .unwrap();
    fs.mkdir_all(Path::new("/tmp"), 0o1777).unwrap();
    fs.answer(
        "systemctl list-unit-files --no-legend a.service",
        "a.service enabled enabled\n",
        true,
    );
    let (one, _) = store(&mut fs, "a of 1\n");
    let (said, exit) = run(&mut fs, &["switch", &one]);
    assert_eq!(exit, Exit::Ok, "{said:?}");
    let (two, listing) = store(&mut fs, "a of 2\n");
    let hash = two.split('-').next().unwrap().to_string();
    let stmt = statement(&hash, SERIAL);
    let release = format!("{stmt}{SIG}");
    fs.answers_in_turn(
        &curl(&format!("{URL}/host/release"), 1 << 20),
        vec![ran(release.as_bytes(), 0, "")],
    );
    fs.answer(&find_principals(), "operator\n", true);
    fs.answer(
        "ss -Hltn sport = :22",
        "LISTEN 0 128 0.0.0.0:22 0.0.0.0:*\n",
        true,
    );
    fs.answers_in_turn(
        &curl(&format!("{URL}/host/{hash}.listing"), 8 << 20),
        vec![ran(listing.as_bytes(), 0, "")],
    );
    fs.answer(
        "systemctl show -p ActiveState -p Result -p Type -p InvocationID -p NRestarts a.service",
        "ActiveState=active\nResult=success\nType=simple\nInvocationID=1\nNRestarts=0\n",
        true,
    );
    Host {
        fs,
        digest: sitec_format::sha256_hex(stmt.as_bytes()),
        two,
    }
}

#[test]
fn a_signed_release_is_fetched_and_its_apply_started() {
    let Host {
        mut fs,
        two,
        digest,
    } = host();
    let hash = two.split('-').next().unwrap();
    // The store has the bundle already (as a push left it): nothing but
    // the release is fetched, and its apply starts in a unit of its own.
    let (said, exit) = run(&mut fs, &["pull"]);
    assert_eq!(exit, Exit::Ok, "{said:?}");
    assert_eq!(
        said,
        [format!(
            "pull: release {SERIAL} ({}, signed by operator) fetched: applying it",
            &hash[..12]
        )]
    );
    assert_eq!(
        pull_file(&fs, "pending").unwrap(),
        format!(
            "{digest} {SERIAL} {hash} operator - {}\n",
            key_of("AAAAkey")
        )
    );
    assert!(fs.ops().iter().any(|o| o.0
        == format!(
            "run systemd-run --quiet --collect --unit=sitec-pull-apply-{SERIAL} --property=KillMode=process --description=sitec: apply the release pulled {EXE} pull-apply"
        )));
    assert!(
        !fs.ops().iter().any(|o| o.0.contains(".listing")),
        "the store copy was intact: no listing fetched"
    );
    let last = pull_file(&fs, "last").unwrap();
    assert!(last.starts_with("2027-01-15T08:0"), "{last}");
    // status and drift say it too (push --status shows it).
    let (status, _) = run(&mut fs, &["status"]);
    assert_eq!(
        status.last().unwrap(),
        &format!("pull: {}", last.trim_end())
    );
    let (drift, _) = run(&mut fs, &["drift"]);
    assert!(
        drift.contains(&format!("pull: {}", last.trim_end())),
        "{drift:?}"
    );
    let prom = fs.text(Path::new("/var/lib/sitec/status.prom")).unwrap();
    assert!(prom.contains("\nsitec_pull_failing 0\n"), "{prom}");
    assert!(
        prom.contains("\nsitec_pull_last_seconds 18000000"),
        "{prom}"
    );
}

#[test]
fn a_bundle_the_store_lacks_is_fetched_file_by_file_and_received() {
    let Host { mut fs, two, .. } = host();
    let hash = two.split('-').next().unwrap().to_string();
    let copy = Layout::default().store_copy(&two);
    fs.chmod(&copy, 0o755).unwrap();
    fs.remove_all(&copy).unwrap();
    // etc/a is fetched (the live bundle's differs); the index too.
    let index = fs
        .text(&Layout::default().store_copy(&two).join("index"))
        .unwrap_or_default();
    assert!(index.is_empty());
    fs.answers_in_turn(
        &curl(&format!("{URL}/host/{hash}/etc/a"), 64 << 20),
        vec![ran(b"a of 2\n", 0, "")],
    );
    // The index as the server has it: the one of the bundle.
    let (_, listing) = {
        let mut scratch = SimFs::new();
        store(&mut scratch, "a of 2\n")
    };
    let index_sum = listing
        .lines()
        .find(|l| l.ends_with(" index"))
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .to_string();
    let mut scratch = SimFs::new();
    let (name, _) = store(&mut scratch, "a of 2\n");
    let index_bytes = scratch
        .read(&Layout::default().store_copy(&name).join("index"))
        .unwrap();
    assert_eq!(sitec_format::sha256_hex(&index_bytes), index_sum);
    fs.answers_in_turn(
        &curl(&format!("{URL}/host/{hash}/index"), 64 << 20),
        vec![ran(&index_bytes, 0, "")],
    );
    let (said, exit) = run(&mut fs, &["pull"]);
    assert_eq!(exit, Exit::Ok, "{said:?}");
    assert!(said[0].ends_with("fetched: applying it"), "{said:?}");
    let incoming = Layout::default()
        .store()
        .join(format!(".incoming-{two}.pull"));
    assert_eq!(fs.read(&incoming.join("etc/a")).unwrap(), b"a of 2\n");
    assert_eq!(fs.mode(&incoming.join("etc/a")).unwrap(), 0o644);
    assert_eq!(
        fs.text(&incoming.join("BUNDLE")).unwrap(),
        format!("{hash}\n")
    );
    assert!(
        fs.ops()
            .iter()
            .any(|o| o.0 == format!("run {EXE} receive {two}.pull"))
    );

    // A file changed on the server: nothing is kept, the pull backs off.
    let mut fs2 = host().fs;
    let copy = Layout::default().store_copy(&two);
    fs2.chmod(&copy, 0o755).unwrap();
    fs2.remove_all(&copy).unwrap();
    fs2.answers_in_turn(
        &curl(&format!("{URL}/host/{hash}/etc/a"), 64 << 20),
        vec![ran(b"a of 2, changed\n", 0, "")],
    );
    let (said, _) = run(&mut fs2, &["pull"]);
    assert!(
        said[0].contains("does not hash to what the signed listing says (changed on the server?)"),
        "{said:?}"
    );
    assert!(!fs2.exists(&incoming));
    assert!(pull_file(&fs2, "pending").is_none());
    assert!(pull_file(&fs2, "backoff").is_some());
}

#[test]
fn what_is_not_signed_by_a_trusted_key_changes_nothing_but_the_backoff() {
    let Host { mut fs, .. } = host();
    fs.answer(&find_principals(), "", false);
    let (said, exit) = run(&mut fs, &["pull"]);
    assert_eq!(exit, Exit::Ok);
    assert_eq!(
        said,
        [
            "pull: release refused: the release is signed by no key this host trusts (deploy.pull.signers of generation 1) (the host keeps generation 1; next try in 60 s)"
        ]
    );
    assert_eq!(
        pull_file(&fs, "backoff").unwrap(),
        format!("1 {}\n", 1_800_000_000 + 60)
    );
    // Not due: nothing is fetched.
    let before = fs.ops().len();
    assert_eq!(run(&mut fs, &["pull"]).0, Vec::<String>::new());
    assert!(
        !fs.ops()[before..]
            .iter()
            .any(|o| o.0.starts_with("run curl")),
        "{:?}",
        &fs.ops()[before..]
    );
    // Each failure waits twice as long, up to eight intervals.
    for want in [120, 240, 480, 480] {
        fs.sleep(1000);
        let (said, _) = run(&mut fs, &["pull"]);
        assert!(
            said[0].ends_with(&format!("next try in {want} s)")),
            "{said:?}"
        );
    }
    // Signed but changed after it was signed.
    fs.answer(&find_principals(), "operator\n", true);
    fs.answer(&verify(), "", false);
    fs.sleep(1000);
    let (said, _) = run(&mut fs, &["pull"]);
    assert!(
        said[0].contains("the release's signature by operator does not verify: the statement was changed after it was signed"),
        "{said:?}"
    );
    assert!(pull_file(&fs, "pending").is_none());
    assert!(pull_file(&fs, "serial").is_none());
}

#[test]
fn a_serial_not_above_the_floor_or_far_ahead_is_refused() {
    let Host { mut fs, two, .. } = host();
    let hash = two.split('-').next().unwrap().to_string();
    let release = |serial: u64| signed(&hash, serial);
    let url = curl(&format!("{URL}/host/release"), 1 << 20);
    fs.mkdir_all(&Layout::default().pull(), 0o755).unwrap();
    fs.write(
        &Layout::default().pull().join("serial"),
        format!("{SERIAL} other\n").as_bytes(),
        0o644,
    )
    .unwrap();
    let (said, _) = run(&mut fs, &["pull"]);
    assert!(
        said[0].contains(&format!("its serial {SERIAL} is not above {SERIAL}, the last release this host applied or rejected")),
        "{said:?}"
    );
    let far = 1_800_000_000 + 10_000 + 86_401;
    fs.answers_in_turn(&url, vec![ran(release(far).as_bytes(), 0, "")]);
    fs.sleep(10_000);
    let (said, _) = run(&mut fs, &["pull"]);
    assert!(
        said[0].contains(&format!(
            "its serial {far} is more than a day ahead of this host's clock"
        )),
        "{said:?}"
    );
    assert_eq!(
        pull_file(&fs, "serial").unwrap(),
        format!("{SERIAL} other\n")
    );
}

/// The sha256 of the ed25519 key `key` as `pending` records it.
fn key_of(key: &str) -> String {
    sitec_format::sha256_hex(format!("ssh-ed25519 {key}").as_bytes())
}

/// The apply of the pending release, with its switch answered as the
/// host's agent answers (generation 2 awaiting confirmation, `armed`
/// written).
fn pending(fs: &mut SimFs, two: &str, digest: &str) {
    pending_signed(fs, two, digest, "AAAAkey");
}

/// As `pending`, the release verified with the operator's key `key`.
fn pending_signed(fs: &mut SimFs, two: &str, digest: &str, key: &str) {
    let hash = two.split('-').next().unwrap();
    fs.mkdir_all(&Layout::default().pull(), 0o755).unwrap();
    fs.write(
        &Layout::default().pull().join("pending"),
        format!("{digest} {SERIAL} {hash} operator - {}\n", key_of(key)).as_bytes(),
        0o644,
    )
    .unwrap();
    let switch =
        format!("{EXE} switch --confirm-timeout 30 --await-confirmation --release {SERIAL} {two}");
    fs.answer(
        &switch,
        "switched to generation 2; network configuration changed: confirm within 30 s or it rolls back\n",
        true,
    );
    fs.command_writes(
        &switch,
        &Layout::default().armed(),
        format!("2 1 {}\n", 1_800_000_000 + 30).as_bytes(),
    );
    fs.command_removes(&format!("{EXE} confirm 2"), &Layout::default().armed());
}

/// A release verified with a key the live generation no longer names
/// for its signer (a push replaced or revoked it since the pull) is not
/// applied, and not rejected either: the next pull verifies it anew.
#[test]
fn a_release_whose_signer_a_push_revoked_since_its_pull_is_not_applied() {
    let Host {
        mut fs,
        two,
        digest,
    } = host();
    pending_signed(&mut fs, &two, &digest, "AAAAold");
    let serial = pull_file(&fs, "serial");
    let (said, exit) = run(&mut fs, &["pull-apply"]);
    assert_eq!(exit, Exit::Ok, "{said:?}");
    let hash = two.split('-').next().unwrap();
    assert_eq!(
        said,
        [format!(
            "pull: release {SERIAL} ({}) was signed by operator, whom the live generation no longer trusts with that key: not applied; the next pull verifies it again",
            &hash[..12]
        )]
    );
    assert!(pull_file(&fs, "pending").is_none());
    assert!(pull_file(&fs, "applying").is_none());
    assert!(pull_file(&fs, "rejected").is_none());
    assert_eq!(pull_file(&fs, "serial"), serial);
    assert!(
        !fs.ops()
            .iter()
            .any(|o| o.0.starts_with(&format!("run {EXE} "))),
        "an activation ran"
    );
}

#[test]
fn a_release_whose_health_checks_hold_is_confirmed_and_applied() {
    let Host {
        mut fs,
        two,
        digest,
    } = host();
    pending(&mut fs, &two, &digest);
    let (said, exit) = run(&mut fs, &["pull-apply"]);
    assert_eq!(exit, Exit::Ok, "{said:?}");
    let hash = two.split('-').next().unwrap();
    assert_eq!(
        said,
        [format!(
            "pull: release {SERIAL} ({}, signed by operator) runs as generation 2, confirmed by its health checks",
            &hash[..12]
        )]
    );
    assert_eq!(
        pull_file(&fs, "serial").unwrap(),
        format!("{SERIAL} {digest}\n")
    );
    assert!(pull_file(&fs, "pending").is_none());
    assert!(pull_file(&fs, "applying").is_none());
    assert!(
        fs.ops()
            .iter()
            .any(|o| o.0 == format!("run {EXE} confirm 2"))
    );
    // Held for 5 s: probed at least six times a second apart.
    let probes = fs
        .ops()
        .iter()
        .filter(|o| o.0 == "run ss -Hltn sport = :22")
        .count();
    assert!(probes >= 6, "{probes}");
}

#[test]
fn a_release_whose_health_checks_fail_is_rolled_back_and_rejected_for_good() {
    let Host {
        mut fs,
        two,
        digest,
    } = host();
    pending(&mut fs, &two, &digest);
    fs.answer("ss -Hltn sport = :22", "", true);
    // The timer takes the host back at the deadline.
    fs.command_removes(&format!("{EXE} settle"), &Layout::default().armed());
    let (said, exit) = run(&mut fs, &["pull-apply"]);
    assert_eq!(exit, Exit::Ok, "{said:?}");
    let hash = two.split('-').next().unwrap();
    assert_eq!(
        said,
        [format!(
            "pull: release {SERIAL} ({}) rejected: its health checks did not pass within 30 s (nothing listens on the deploy port 22 (sshd)): generation 2 was rolled back (unknown), the host is on generation 1",
            &hash[..12]
        )]
    );
    assert_eq!(pull_file(&fs, "rejected").unwrap(), format!("{digest}\n"));
    assert!(
        !fs.ops()
            .iter()
            .any(|o| o.0 == format!("run {EXE} confirm 2"))
    );
    // The next pull does not take it again.
    fs.sleep(100);
    let (said, _) = run(&mut fs, &["pull"]);
    assert_eq!(
        said,
        [format!(
            "pull: release {SERIAL} ({}) was rejected before: waiting for a new release",
            &hash[..12]
        )]
    );
}

#[test]
fn a_bundle_its_switch_refuses_at_its_checks_is_rejected() {
    let Host {
        mut fs,
        two,
        digest,
    } = host();
    pending(&mut fs, &two, &digest);
    let switch =
        format!("{EXE} switch --confirm-timeout 30 --await-confirmation --release {SERIAL} {two}");
    fs.answers_in_turn(
        &switch,
        vec![ran(
            b"validated etc/a\n",
            3,
            "activate: etc/a: rejected by shell\n",
        )],
    );
    let (said, _) = run(&mut fs, &["pull-apply"]);
    assert!(
        said[0].ends_with(
            "rejected: its check refused it (exit 3): activate: etc/a: rejected by shell"
        ),
        "{said:?}"
    );
    assert!(!fs.ops().iter().any(|o| o.0.contains(" check ")));
    assert!(!fs.exists(&Layout::default().armed()));
}

/// Whether the pull state says the release was applied, rejected, or is
/// taken up again (pending, its apply started).
fn outcome(fs: &SimFs, digest: &str) -> &'static str {
    let serial = pull_file(fs, "serial").unwrap_or_default();
    let rejected = pull_file(fs, "rejected").unwrap_or_default();
    let pending = pull_file(fs, "pending").is_some();
    let is_rejected = rejected.lines().any(|l| l == digest);
    let is_applied = serial == format!("{SERIAL} {digest}\n") && !is_rejected;
    assert!(
        pull_file(fs, "applying").is_none() || fs.exists(&Layout::default().armed()),
        "an apply left in the middle with nothing to decide it"
    );
    let deferred = pull_file(fs, "deferred").is_some_and(|d| d.starts_with(digest));
    match (is_applied, is_rejected, pending) {
        (true, false, false) => "applied",
        (false, true, false) => "rejected",
        (false, false, true) => "pending",
        // Not applied because only the release server failed it: taken
        // up again when the server is back.
        (false, false, false) if deferred => "deferred",
        other => panic!("applied, rejected, pending: {other:?}"),
    }
}

#[test]
fn a_pull_or_an_apply_stopped_at_any_step_is_decided_by_the_next_pull() {
    let mut points = 0;
    // The pull: stopped anywhere, the next pull takes the release up. The
    // server serves a freshness statement: its record is a step too.
    let Host {
        fs: mut base,
        two,
        digest,
    } = host();
    base.answer(
        &curl(&format!("{URL}/host/fresh"), 1 << 20),
        &fresh(SERIAL, 1_800_000_000 + 864_000),
        true,
    );
    let mut full = base.after(Crash::Kill);
    run(&mut full, &["pull"]);
    let steps = full.ops().len() - base.after(Crash::Kill).ops().len();
    for k in 1..=steps {
        for crash in [Crash::Kill, Crash::PowerLoss] {
            let mut fs = base.after(Crash::Kill);
            fs.crash_after(k);
            run(&mut fs, &["pull"]);
            let mut next = fs.after(crash);
            next.sleep(3600);
            let (said, exit) = run(&mut next, &["pull"]);
            assert_eq!(exit, Exit::Ok, "k={k} {crash:?}: {said:?}");
            assert_eq!(
                outcome(&next, &digest),
                "pending",
                "k={k} {crash:?}: {said:?}"
            );
            assert_eq!(
                pull_file(&next, "fresh").as_deref(),
                Some(format!("{} {SERIAL}\n", 1_800_000_000 + 864_000).as_str()),
                "k={k} {crash:?}: {said:?}"
            );
            points += 1;
        }
    }
    println!("pull: {steps} steps, {points} crash points");
    // The apply, with health checks that hold, with ones that fail, and
    // with ones only a down release server fails (the generation before
    // cannot reach it either: deferred).
    for health in ["holds", "fails", "server down"] {
        let Host { fs: mut base, .. } = host();
        pending(&mut base, &two, &digest);
        if health == "fails" {
            base.answer("ss -Hltn sport = :22", "", true);
        }
        if health == "server down" {
            base.answers_in_turn(
                &curl(&format!("{URL}/host/release"), 1 << 20),
                vec![timed_out()],
            );
        }
        if health != "holds" {
            base.command_removes(&format!("{EXE} settle"), &Layout::default().armed());
        }
        let mut full = base.after(Crash::Kill);
        run(&mut full, &["pull-apply"]);
        let want = match health {
            "holds" => "applied",
            "fails" => "rejected",
            _ => "deferred",
        };
        assert_eq!(outcome(&full, &digest), want);
        let steps = full.ops().len();
        let mut n = 0;
        for k in 1..=steps {
            for crash in [Crash::Kill, Crash::PowerLoss] {
                let mut fs = base.after(Crash::Kill);
                fs.crash_after(k);
                run(&mut fs, &["pull-apply"]);
                let mut next = fs.after(crash);
                // What the confirmation timer does meanwhile: the
                // deadline passed, the generation was rolled back.
                let armed = Layout::default().armed();
                if next.exists(&armed) {
                    next.unlink(&armed).unwrap();
                }
                next.sleep(3600);
                let (said, exit) = run(&mut next, &["pull"]);
                assert_eq!(exit, Exit::Ok, "k={k} {crash:?}: {said:?}");
                let got = outcome(&next, &digest);
                // Stopped before it recorded that it applies: taken up
                // again; after: rejected unless its confirmation was
                // recorded whole.
                assert!(
                    got == "pending" || got == "rejected" || got == want,
                    "k={k} {crash:?}: {got}"
                );
                n += 1;
            }
        }
        points += n;
        println!("pull-apply (health {health}): {steps} steps, {n} crash points");
    }
    assert!(points > 50, "{points}");
}

/// The pending release names `agent`; its switch makes it the host's
/// when `installs`; its health checks fail.
fn failing_with_agent(agent: &[u8], installs: bool) -> SimFs {
    let Host {
        mut fs,
        two,
        digest,
    } = host();
    pending(&mut fs, &two, &digest);
    let hash = two.split('-').next().unwrap();
    let sha = sitec_format::sha256_hex(agent);
    fs.write(
        &Layout::default().pull().join("pending"),
        format!("{digest} {SERIAL} {hash} operator {sha}\n").as_bytes(),
        0o644,
    )
    .unwrap();
    if installs {
        fs.command_writes(
            &format!(
                "{EXE} switch --confirm-timeout 30 --await-confirmation --release {SERIAL} {two}"
            ),
            Path::new("/var/lib/sitec/activate"),
            agent,
        );
    }
    fs.answer("ss -Hltn sport = :22", "", true);
    fs.command_removes(&format!("{EXE} settle"), &Layout::default().armed());
    fs
}

#[test]
fn a_rejected_release_puts_back_the_agent_its_switch_replaced_and_only_that() {
    // Rejected, and the host's agent is the one it had before the apply.
    let rejected_with_the_agent = |fs: &mut SimFs| {
        let (said, _) = run(fs, &["pull-apply"]);
        assert!(said[0].contains(" rejected: "), "{said:?}");
        assert_eq!(
            fs.read(Path::new("/var/lib/sitec/activate")).unwrap(),
            b"the agent\n"
        );
    };
    // Its switch made its agent the host's: the one before comes back.
    let mut fs = failing_with_agent(b"a newer agent\n", true);
    let before = sitec_format::sha256_hex(b"the agent\n");
    fs.mkdir_all(Path::new("/var/lib/sitec/agents"), 0o755)
        .unwrap();
    fs.write(
        &Path::new("/var/lib/sitec/agents").join(&before),
        b"the agent\n",
        0o555,
    )
    .unwrap();
    rejected_with_the_agent(&mut fs);
    // It names the agent the host has already: nothing is put back, not
    // even an older one kept as activate.prev.
    let mut fs = failing_with_agent(b"the agent\n", false);
    fs.write(
        Path::new("/var/lib/sitec/activate.prev"),
        b"an older agent\n",
        0o555,
    )
    .unwrap();
    rejected_with_the_agent(&mut fs);
}

#[test]
fn a_release_of_the_live_bundle_served_again_brings_no_agent() {
    let Host { mut fs, .. } = host();
    let live = fs
        .text(&Layout::default().current().join("BUNDLE"))
        .unwrap();
    let other = "e".repeat(64);
    let stmt = format!(
        "sitec-release 2\nsite site\nhost host\nbundle {}\nagent {other}\nserial {SERIAL}\n",
        live.trim()
    );
    fs.answers_in_turn(
        &curl(&format!("{URL}/host/release"), 1 << 20),
        vec![ran(format!("{stmt}{SIG}").as_bytes(), 0, "")],
    );
    fs.mkdir_all(&Layout::default().pull(), 0o755).unwrap();
    fs.write(
        &Layout::default().pull().join("serial"),
        format!("{} other\n", SERIAL + 1).as_bytes(),
        0o644,
    )
    .unwrap();
    let (said, _) = run(&mut fs, &["pull"]);
    assert!(said[0].ends_with("is generation 1, which runs"), "{said:?}");
    assert!(
        !fs.ops().iter().any(|o| o.0.contains(&format!("/{other}"))),
        "{:?}",
        fs.ops()
    );
}

/// A release whose health checks only the release server failed (the
/// units ran, sshd listened), while the generation the host went back to
/// cannot reach the server either, is not rejected: the server was down,
/// which is no fault of the release. The next pull takes it up again, up
/// to three applies the server fails; then it is rejected all the same.
#[test]
fn a_release_whose_health_checks_only_a_down_server_failed_is_tried_again() {
    let Host {
        mut fs,
        two,
        digest,
    } = host();
    let hash = two.split('-').next().unwrap().to_string();
    let line = curl(&format!("{URL}/host/release"), 1 << 20);
    let release = signed(&hash, SERIAL);
    fs.command_removes(&format!("{EXE} settle"), &Layout::default().armed());
    pending(&mut fs, &two, &digest);
    for n in 1..=3 {
        // The server goes away once the apply began.
        fs.answers_in_turn(&line, vec![timed_out()]);
        let (said, exit) = run(&mut fs, &["pull-apply"]);
        assert_eq!(exit, Exit::Ok, "{said:?}");
        let down = format!("could not fetch {URL}/host/release: curl: (28) Connection timed out");
        let failed = format!(
            "its health checks did not pass within 30 s ({down}): generation 2 was rolled back (unknown), the host is on generation 1"
        );
        if n < 3 {
            assert_eq!(
                said,
                [format!(
                    "pull: release {SERIAL} ({}) not applied: {failed}; the generation before cannot reach the release server either ({down}): tried again at the next pull ({n} of 3)",
                    &hash[..12]
                )]
            );
            assert!(pull_file(&fs, "rejected").is_none());
            assert!(pull_file(&fs, "pending").is_none());
            assert!(pull_file(&fs, "applying").is_none());
            assert_eq!(
                pull_file(&fs, "deferred").unwrap(),
                format!("{digest} {n}\n")
            );
            // The server is back: the next pull takes the release up again.
            fs.answers_in_turn(&line, vec![ran(release.as_bytes(), 0, "")]);
            fs.sleep(100);
            let before = fs.ops().len();
            let (said, exit) = run(&mut fs, &["pull"]);
            assert_eq!(exit, Exit::Ok, "{said:?}");
            assert!(
                fs.ops()[before..]
                    .iter()
                    .any(|o| o.0.contains(&format!("--unit=sitec-pull-apply-{SERIAL}"))),
                "{said:?}"
            );
            assert!(pull_file(&fs, "pending").is_some(), "{said:?}");
        } else {
            assert_eq!(
                said,
                [format!(
                    "pull: release {SERIAL} ({}) rejected: {failed}",
                    &hash[..12]
                )]
            );
            assert_eq!(pull_file(&fs, "rejected").unwrap(), format!("{digest}\n"));
            assert!(pull_file(&fs, "deferred").is_none());
        }
    }
}

/// A generation that cannot reach its release server while the one before
/// it can (it moved to a server that is not there, or cut itself off from
/// it) is rejected at once: that is the release's fault.
#[test]
fn a_release_that_cannot_reach_a_server_the_generation_before_reaches_is_rejected() {
    let Host { mut fs, digest, .. } = host();
    // Its server moved to where nothing answers.
    let (three, _) = store_at(&mut fs, "a of 3\n", "http://192.0.2.9:8088");
    fs.answer(
        &curl("http://192.0.2.9:8088/host/release", 1 << 20),
        "",
        false,
    );
    let said = apply_rejected(&mut fs, &three, &digest);
    assert_eq!(
        said,
        [format!(
            "pull: release {SERIAL} ({}) rejected: its health checks did not pass within 30 s (could not fetch http://192.0.2.9:8088/host/release: ): generation 2 was rolled back (unknown), the host is on generation 1",
            &three[..12]
        )]
    );
    assert!(pull_file(&fs, "deferred").is_none());
}

/// Applies the release pending for store copy `name` (its statement's
/// digest `digest`), whose health checks fail and whose deadline's timer
/// the settle finds fired: it is rejected. What the apply said.
fn apply_rejected(fs: &mut SimFs, name: &str, digest: &str) -> Vec<String> {
    fs.command_removes(&format!("{EXE} settle"), &Layout::default().armed());
    pending(fs, name, digest);
    let (said, exit) = run(fs, &["pull-apply"]);
    assert_eq!(exit, Exit::Ok, "{said:?}");
    assert_eq!(pull_file(fs, "rejected").unwrap(), format!("{digest}\n"));
    said
}

/// A push makes the live generation of a pull-mode host: a release signed
/// before it (served late, or replayed to a host that never pulled) is
/// older than what the operator pushed, and is not taken (no failure, no
/// backoff: the server serves what was published); one signed after it
/// is. A pulled release a push overtook before its apply is dropped, not
/// rejected, and so is one whose apply's switch a push overtook while it
/// waited. A push never lowers the time, and one ahead of the host's
/// clock counts as the host's now.
#[test]
fn a_release_signed_before_the_last_push_is_not_taken() {
    let Host {
        mut fs,
        two,
        digest,
    } = host();
    let hash = two.split('-').next().unwrap().to_string();
    let short = &hash[..12];
    let (three, _) = store(&mut fs, "a of 3\n");
    let pushed = SERIAL + 50;
    fs.set_clock(pushed + 10);
    let (said, exit) = run(
        &mut fs,
        &["switch", "--pushed-at", &pushed.to_string(), &three],
    );
    assert_eq!(exit, Exit::Ok, "{said:?}");
    assert_eq!(pull_file(&fs, "pushed").unwrap(), format!("{pushed}\n"));
    // The server still serves release SERIAL, of bundle two.
    let (said, exit) = run(&mut fs, &["pull"]);
    assert_eq!(exit, Exit::Ok, "{said:?}");
    let before = format!(
        "release {SERIAL} ({short}) was signed before the last push to this host ({pushed}), and is older than what it deployed"
    );
    assert_eq!(
        said,
        [format!(
            "pull: {before}: waiting for a release published after it"
        )]
    );
    assert!(pull_file(&fs, "pending").is_none());
    assert!(pull_file(&fs, "backoff").is_none());
    // Pulled before the push, applied after it: dropped, not rejected.
    pending(&mut fs, &two, &digest);
    let (said, exit) = run(&mut fs, &["pull-apply"]);
    assert_eq!(exit, Exit::Ok, "{said:?}");
    assert_eq!(
        said,
        [format!(
            "pull: {before}: not applied; waiting for a release published after it"
        )]
    );
    assert!(pull_file(&fs, "pending").is_none() && pull_file(&fs, "applying").is_none());
    assert!(pull_file(&fs, "rejected").is_none());
    // The apply's switch, overtaken under the lock, refuses it too.
    let line = format!("switch --release {SERIAL} {three}");
    let (said, exit) = run(&mut fs, &line.split(' ').collect::<Vec<_>>());
    assert_eq!(exit, Exit::Refused, "{said:?}");
    assert_eq!(
        said,
        [format!(
            "! release {SERIAL} was signed before the last push to this host ({pushed})"
        )]
    );
    // Published again after the push: taken.
    let newer = pushed + 5;
    fs.answers_in_turn(
        &curl(&format!("{URL}/host/release"), 1 << 20),
        vec![ran(signed(&hash, newer).as_bytes(), 0, "")],
    );
    fs.sleep(1000);
    let (said, exit) = run(&mut fs, &["pull"]);
    assert_eq!(exit, Exit::Ok, "{said:?}");
    assert!(
        pull_file(&fs, "pending").is_some_and(|p| p.contains(&format!(" {newer} {hash} "))),
        "{said:?}"
    );
    // A push never lowers the time; one ahead of the host's clock is the
    // host's now.
    let (said, exit) = run(&mut fs, &["switch", "--pushed-at", "5", &three]);
    assert_eq!(exit, Exit::Ok, "{said:?}");
    assert_eq!(pull_file(&fs, "pushed").unwrap(), format!("{pushed}\n"));
    let now = fs.now();
    let (said, exit) = run(&mut fs, &["switch", "--pushed-at", "99999999999", &three]);
    assert_eq!(exit, Exit::Ok, "{said:?}");
    assert_eq!(pull_file(&fs, "pushed").unwrap(), format!("{now}\n"));
}

/// Applies a down server failed count in a row whichever release they
/// were: a server serving two releases in turn gets no more of them.
#[test]
fn applies_a_server_failed_count_in_a_row_across_releases() {
    let Host {
        mut fs,
        two,
        digest,
    } = host();
    fs.mkdir_all(&Layout::default().pull(), 0o755).unwrap();
    fs.write(
        &Layout::default().pull().join("deferred"),
        format!("{} 2\n", "e".repeat(64)).as_bytes(),
        0o644,
    )
    .unwrap();
    let line = curl(&format!("{URL}/host/release"), 1 << 20);
    fs.answers_in_turn(&line, vec![timed_out()]);
    let said = apply_rejected(&mut fs, &two, &digest);
    assert_eq!(
        said,
        [format!(
            "pull: release {SERIAL} ({}) rejected: its health checks did not pass within 30 s (could not fetch {URL}/host/release: curl: (28) Connection timed out): generation 2 was rolled back (unknown), the host is on generation 1",
            &two[..12]
        )]
    );
}

/// The freshness statement of release `serial`, valid until `until`,
/// signed.
fn fresh(serial: u64, until: u64) -> String {
    format!("sitec-fresh 1\nsite site\nhost host\nserial {serial}\nuntil {until}\n{SIG}")
}

/// A server that keeps serving an old release (or holds back a new one)
/// shows: once a host saw a freshness statement, a server whose statement
/// expired, names another release or is gone is refused like a bad
/// release (nothing taken, the backoff); a valid one is kept and shown
/// to fleets. A host that never saw one is not held to them.
#[test]
fn a_server_whose_freshness_statement_expired_or_went_is_refused() {
    let url = curl(&format!("{URL}/host/fresh"), 1 << 20);
    let now = 1_800_000_000;
    // Valid: the release is taken, the statement kept and shown.
    let Host { mut fs, .. } = host();
    fs.answer(&url, &fresh(SERIAL, now + 3600), true);
    let (said, exit) = run(&mut fs, &["pull"]);
    assert_eq!(exit, Exit::Ok, "{said:?}");
    assert!(said[0].ends_with("fetched: applying it"), "{said:?}");
    assert_eq!(
        pull_file(&fs, "fresh").unwrap(),
        format!("{} {SERIAL}\n", now + 3600)
    );
    let prom = fs.text(Path::new("/var/lib/sitec/status.prom")).unwrap();
    assert!(
        prom.contains(&format!(
            "\nsitec_pull_fresh_until_seconds {}\n",
            now + 3600
        )),
        "{prom}"
    );
    // Seen once: expired, another release's, gone.
    let gone = Ran {
        success: false,
        code: Some(22),
        stdout: Vec::new(),
        stderr: b"curl: (22) The requested URL returned error: 404".to_vec(),
    };
    for (served, why) in [
        (
            ran(fresh(SERIAL, now - 1).as_bytes(), 0, ""),
            "pull: the release server's freshness statement for release 1800000100 expired at 2027-01-15T07:59:59Z: the server may be keeping a newer release from this host; publish again (push --publish) or check the server (the host keeps generation 1; next try in 60 s)".to_string(),
        ),
        (
            ran(fresh(SERIAL - 5, now + 3600).as_bytes(), 0, ""),
            "pull: the release server's freshness statement names release 1800000095, older than release 1800000100, which it serves: publish again (push --publish) (the host keeps generation 1; next try in 60 s)".to_string(),
        ),
        (
            gone.clone(),
            format!("pull: the release server serves no freshness statement ({URL}/host/fresh), as it did before (last valid until 2027-01-15T07:59:00Z): it may be keeping a newer release from this host; publish again (push --publish) or check the server (the host keeps generation 1; next try in 60 s)"),
        ),
    ] {
        let Host { mut fs, .. } = host();
        fs.mkdir_all(&Layout::default().pull(), 0o755).unwrap();
        fs.write(
            &Layout::default().pull().join("fresh"),
            format!("{} {}\n", now - 60, SERIAL - 5).as_bytes(),
            0o644,
        )
        .unwrap();
        fs.answers_in_turn(&url, vec![served]);
        let (said, exit) = run(&mut fs, &["pull"]);
        assert_eq!(exit, Exit::Ok, "{said:?}");
        assert_eq!(said, [why]);
        assert!(pull_file(&fs, "pending").is_none());
        assert!(pull_file(&fs, "backoff").is_some());
    }
    // A newer release's statement (a publish between its two files) is
    // taken.
    let Host { mut fs, .. } = host();
    fs.answer(&url, &fresh(SERIAL + 1, now + 3600), true);
    let (said, _) = run(&mut fs, &["pull"]);
    assert!(said[0].ends_with("fetched: applying it"), "{said:?}");
    // Never seen: none served is no failure.
    let Host { mut fs, .. } = host();
    fs.answers_in_turn(&url, vec![gone]);
    let (said, _) = run(&mut fs, &["pull"]);
    assert!(said[0].ends_with("fetched: applying it"), "{said:?}");
    assert!(pull_file(&fs, "fresh").is_none());
}

/// A bundle that left the store between the pull that found it there and
/// its apply (an old generation's copy, let go of with it meanwhile) is
/// no fault of the release: it is fetched again, not rejected.
#[test]
fn a_bundle_gone_from_the_store_before_its_apply_is_fetched_again() {
    let Host { mut fs, two, .. } = host();
    let (said, exit) = run(&mut fs, &["pull"]);
    assert_eq!(exit, Exit::Ok, "{said:?}");
    assert!(pull_file(&fs, "pending").is_some());
    let copy = Layout::default().store_copy(&two);
    fs.chmod(&copy, 0o755).unwrap();
    fs.remove_all(&copy).unwrap();
    let (said, exit) = run(&mut fs, &["pull-apply"]);
    assert_eq!(exit, Exit::Ok, "{said:?}");
    assert!(
        said.iter().any(|l| l.ends_with(
            "its bundle left the store before its apply: fetched again at the next pull"
        )),
        "{said:?}"
    );
    assert!(pull_file(&fs, "pending").is_none());
    assert!(pull_file(&fs, "applying").is_none());
    assert!(pull_file(&fs, "rejected").is_none());
}
