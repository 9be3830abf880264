//! What a bundle must be, and the host, before anything of it applies:
//! every bundle in `out/` passes; each kind of bundle or host that must
//! not is refused with what to do, and nothing is changed.

mod support;

use std::path::Path;

use support::bundles;

use sitec_agent::check;
use sitec_agent::effects::{Effects, EffectsExt as _};
use sitec_agent::host::Error;
use sitec_agent::sim::SimFs;
use sitec_format::Index;

const STATE: &str = "/var/lib/sitec";

/// A bundle of `out/` copied into a simulated host at /b.
fn load(out: &Path) -> SimFs {
    let mut fs = SimFs::new();
    support::copy_in(&mut fs, out, Path::new("/b"));
    fs
}

fn index(fs: &SimFs) -> Index {
    Index::parse(&String::from_utf8(fs.read(Path::new("/b/index")).unwrap()).unwrap()).unwrap()
}

/// Writes `BUNDLE` anew for what /b holds.
fn reseal(fs: &mut SimFs) {
    let h = sitec_agent::bundle::hash(&*fs, Path::new("/b")).unwrap();
    fs.write(Path::new("/b/BUNDLE"), format!("{h}\n").as_bytes(), 0o644)
        .unwrap();
}

/// What a check off a host runs its validators with (process `pid`).
fn stand_in_context(index: &Index, pid: u32) -> sitec_agent::validate::Context<'_> {
    sitec_agent::validate::Context {
        stand_ins: true,
        scratch: "/scratch".into(),
        index,
        staged: "/staged".into(),
        ssh_connection: None,
        pid,
        netns: Default::default(),
    }
}

fn refusal(r: Result<(), Error>) -> String {
    match r {
        Err(Error::Refused(why)) => why,
        other => panic!("not refused: {other:?}"),
    }
}

#[test]
fn every_bundle_in_out_has_its_shape_and_protocol() {
    let all = bundles();
    assert!(all.len() >= 5);
    for dir in all {
        let fs = load(&dir);
        let i = index(&fs);
        check::shape(&fs, Path::new("/b"), &i, Path::new(STATE), false)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        check::protocol(&i).unwrap();
    }
}

#[test]
fn a_bundle_that_is_not_what_it_says_is_refused() {
    let dir = bundles().into_iter().next().unwrap();
    let shape = |fs: &SimFs| check::shape(fs, Path::new("/b"), &index(fs), Path::new(STATE), false);
    // A link rides along unhashed.
    let mut fs = load(&dir);
    fs.symlink(Path::new("/etc/shadow"), Path::new("/b/shadow"))
        .unwrap();
    assert_eq!(
        refusal(shape(&fs)),
        "shadow is not a regular file or a directory: a bundle holds only those"
    );
    // A file changed after the compile.
    let mut fs = load(&dir);
    fs.write(Path::new("/b/manifest.json"), b"{}", 0o644)
        .unwrap();
    assert!(refusal(shape(&fs)).starts_with("bundle hash mismatch: BUNDLE says "));
    // An index that reaches into sitec's own state, hashed as it is.
    let mut fs = load(&dir);
    let text = String::from_utf8(fs.read(Path::new("/b/index")).unwrap()).unwrap();
    fs.write(
        Path::new("/b/index"),
        (text + "f\tvar/lib/sitec/activate\tab\t0755\tfalse\t-\t\n").as_bytes(),
        0o644,
    )
    .unwrap();
    reseal(&mut fs);
    assert_eq!(
        refusal(shape(&fs)),
        "the manifest names 'var/lib/sitec/activate', which sitec may not manage (or the bundle lacks it)"
    );
    // A unit of sitec's own.
    let mut fs = load(&dir);
    let text = String::from_utf8(fs.read(Path::new("/b/index")).unwrap()).unwrap();
    fs.write(
        Path::new("/b/index"),
        (text + "u\tsitec-boot.service\tmasked\n").as_bytes(),
        0o644,
    )
    .unwrap();
    reseal(&mut fs);
    assert!(refusal(shape(&fs)).starts_with("the manifest names 'sitec-boot.service': "));
    // A protocol from the future.
    let mut i = index(&load(&dir));
    i.host.insert("agent_protocol".into(), "99".into());
    assert!(
        refusal(check::protocol(&i))
            .starts_with("the bundle needs agent protocol 99 and this agent speaks 1")
    );
}

#[test]
fn a_host_that_runs_another_system_or_lacks_a_tool_refuses_the_bundle() {
    let mut fs = SimFs::new();
    fs.mkdir_all(Path::new("/etc"), 0o755).unwrap();
    fs.write(
        Path::new("/etc/os-release"),
        b"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n",
        0o644,
    )
    .unwrap();
    assert_eq!(check::host_release(&fs), "debian12");
    let i =
        Index::parse("h\trelease\tdebian13\nf\tetc/nftables.conf\tab\t0644\ttrue\tnft\tnft-load\n")
            .unwrap();
    let why = match check::system(&mut fs, &i) {
        Err(Error::RefusedListing { listed, why }) => {
            assert_eq!(
                why,
                "this host's daemons cannot parse the bundle: it is written for another system (see above); nothing changed"
            );
            listed.join("\n")
        }
        other => panic!("{other:?}"),
    };
    assert!(why.contains("the bundle is written for Debian 13 (trixie) (the release of this host in the site); this host runs Debian 12 (bookworm): set its release in the site (release = 'debian12), or run the bundle where it belongs"), "{why}");
    match check::host_needs(&fs, Path::new("/b"), &i, true, |_| true) {
        Err(Error::RefusedListing { listed, why }) => {
            assert_eq!(listed, ["  etc/nftables.conf needs nft: install nftables"]);
            assert_eq!(
                why,
                "this host cannot apply the bundle: install what is listed above"
            );
        }
        other => panic!("{other:?}"),
    }
    fs.mkdir_all(Path::new("/usr/sbin"), 0o755).unwrap();
    fs.write(Path::new("/usr/sbin/nft"), b"", 0o755).unwrap();
    check::host_needs(&fs, Path::new("/b"), &i, true, |_| true).unwrap();
}

/// ifupdown2's listener thread now and then loses a race over the netlink
/// socket it shares with the main thread and says only `recv() error`:
/// the syntax check runs again, up to three times, and a file it refuses
/// is refused at once.
#[test]
fn an_ifupdown2_syntax_check_that_only_raced_is_run_again() {
    use sitec_agent::effects::{Cmd, Ran};
    use sitec_agent::validate::validate;
    use sitec_format::Validator;

    let dir = bundles().into_iter().next().unwrap();
    let said = |err: &str, code: i32| Ran {
        success: code == 0,
        code: Some(code),
        stdout: Vec::new(),
        stderr: err.as_bytes().to_vec(),
    };
    let race = "error: recv() error: [Errno 22] Invalid argument\n";
    let verdict = |answers: Vec<Ran>| {
        let mut fs = load(&dir);
        fs.mkdir_all(Path::new("/usr/sbin"), 0o755).unwrap();
        fs.write(Path::new("/usr/sbin/ifreload"), b"", 0o755)
            .unwrap();
        fs.write(Path::new("/b/interfaces"), b"auto lo\n", 0o644)
            .unwrap();
        let script = "set -eu\nmount -t tmpfs none /run\nmkdir /run/network\nmount -t tmpfs none /var/tmp\nexec ifup -s -a -i \"$1\"";
        let line = Cmd::new(
            "unshare",
            &["-m", "-n", "sh", "-c", script, "sh", "/b/interfaces"],
        )
        .line();
        let tries = answers.len();
        fs.answers_in_turn(&line, answers);
        let i = index(&fs);
        let cx = stand_in_context(&i, 1);
        let v = validate(
            &mut fs,
            &cx,
            Validator::Ifupdown,
            Path::new("/b/interfaces"),
            "etc/network/interfaces",
        )
        .unwrap();
        let run = format!("run {line}");
        let ran = fs.ops().iter().filter(|o| o.0 == run).count();
        assert!(ran <= tries);
        (v, ran)
    };
    assert_eq!(verdict(vec![said(race, 0), said("", 0)]), (Ok(()), 2));
    assert_eq!(
        verdict(vec![said(race, 1), said(race, 1), said(race, 1), said("", 0)]),
        (
            Err("error: recv() error: [Errno 22] Invalid argument (ifupdown2 said only this, 3 times)".into()),
            3
        )
    );
    let bad = "error: vmbr0: bridge-vlan-aware: invalid value \"maybe\"\n";
    assert_eq!(
        verdict(vec![said(bad, 1), said("", 0)]),
        (Err(bad.trim_end().into()), 1)
    );
}

#[test]
fn the_validators_of_one_check_share_one_namespace_and_leave_none() {
    use sitec_agent::validate::validate;
    use sitec_format::Validator;
    let dir = bundles().into_iter().next().unwrap();
    let mut fs = load(&dir);
    let i = index(&fs);
    fs.mkdir_all(Path::new("/scratch"), 0o700).unwrap();
    fs.write(Path::new("/b/nftables.conf"), b"table inet t {}\n", 0o644)
        .unwrap();
    fs.write(Path::new("/b/wg0.conf"), b"[Interface]\n", 0o600)
        .unwrap();
    let check = |fs: &mut SimFs, refuse_nft: bool| {
        let nft = "ip netns exec sitec-check-7 nft -f /b/nftables.conf";
        if refuse_nft {
            fs.answer(nft, "", false);
        }
        let cx = stand_in_context(&i, 7);
        let a = validate(
            fs,
            &cx,
            Validator::Nft,
            Path::new("/b/nftables.conf"),
            "etc/nftables.conf",
        )
        .unwrap();
        let b = validate(
            fs,
            &cx,
            Validator::Wg,
            Path::new("/b/wg0.conf"),
            "etc/wireguard/wg0.conf",
        )
        .unwrap();
        cx.finish(fs).unwrap();
        // Finished twice, it does nothing more.
        cx.finish(fs).unwrap();
        (a.is_ok(), b.is_ok())
    };
    for refuse in [false, true] {
        let before = fs.ops().len();
        assert_eq!(check(&mut fs, refuse), (!refuse, true));
        let ran: Vec<String> = fs.ops()[before..]
            .iter()
            .filter_map(|o| o.0.strip_prefix("run ").map(str::to_string))
            .collect();
        let count = |line: &str| ran.iter().filter(|r| *r == line).count();
        assert_eq!(count("ip netns add sitec-check-7"), 1, "{ran:#?}");
        assert_eq!(count("ip netns del sitec-check-7"), 1, "{ran:#?}");
        assert_eq!(
            ran.first().map(String::as_str),
            Some("ip netns add sitec-check-7"),
            "{ran:#?}"
        );
        assert_eq!(
            ran.last().map(String::as_str),
            Some("ip netns del sitec-check-7"),
            "{ran:#?}"
        );
    }
}
