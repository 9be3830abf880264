//! Boots on new kernel files, stopped at every step: a boot that came up
//! on kernel files no confirmed boot had is never taken as good without a
//! confirmation, whatever was cut off, and one nobody confirms goes back
//! to kernel files known to boot and reboots.
//!
//! The story: generation 1 brings a bootloader file (`update-grub` runs
//! when it changes); the host reboots on it; the boot is confirmed.
//! Generation 2 changes the file; the host reboots on it; nobody confirms
//! it, and the timer takes the host back to generation 1 and reboots. Each
//! of the boots, the confirmation and the timer's go-back is stopped after
//! each of its operations, as a kill and as a power loss, and what runs
//! next runs: after a kill the next activation (an operator's, a push's),
//! after a power loss the next boot.

use std::path::Path;

use sitec_agent::effects::{Effects, EffectsExt as _};
use sitec_agent::index::Gen;
use sitec_agent::layout::Layout;
use sitec_agent::sim::{Crash, SimFs};
use sitec_agent::transition::Agent;

const GRUB: &str = "etc/default/grub";

fn store(fs: &mut SimFs, name: &str, grub: &str) {
    let layout = Layout::default();
    let dir = layout.store_copy(name);
    fs.mkdir_all(&dir.join("etc/default"), 0o755).unwrap();
    fs.write(&dir.join(GRUB), grub.as_bytes(), 0o444).unwrap();
    let index = format!(
        "d\tboot_confirm_timeout\t120\nf\t{GRUB}\t{}\t0644\tfalse\tshell\tupdate-grub\n",
        sitec_format::sha256_hex(grub.as_bytes())
    );
    fs.write(&dir.join("index"), index.as_bytes(), 0o444)
        .unwrap();
    let hash = sitec_format::listing::bundle_hash([
        (GRUB, 0o444, grub.as_bytes()),
        ("index", 0o444, index.as_bytes()),
    ]);
    fs.write(&dir.join("BUNDLE"), format!("{hash}\n").as_bytes(), 0o444)
        .unwrap();
    for d in ["etc/default", "etc", ""] {
        fs.chmod(&dir.join(d), 0o555).unwrap();
    }
}

fn host() -> SimFs {
    let mut fs = SimFs::new();
    fs.mkdir_all(&Layout::default().store(), 0o755).unwrap();
    fs.mkdir_all(Path::new("/run/systemd/system"), 0o755)
        .unwrap();
    fs.mkdir_all(Path::new("/proc/sys/kernel/random"), 0o755)
        .unwrap();
    fs.mkdir_all(Path::new("/etc/default"), 0o755).unwrap();
    fs.write(
        Path::new("/etc/default/grub"),
        b"grub as installed\n",
        0o644,
    )
    .unwrap();
    store(&mut fs, "b1-host", "grub of 1\n");
    store(&mut fs, "b2-host", "grub of 2\n");
    power_on(&mut fs, "boot-0");
    fs.settle();
    fs
}

/// A boot: a new boot id, the uptime from 0.
fn power_on(fs: &mut SimFs, id: &str) {
    fs.write(
        Path::new("/proc/sys/kernel/random/boot_id"),
        format!("{id}\n").as_bytes(),
        0o444,
    )
    .unwrap();
    uptime(fs, 5);
}

fn uptime(fs: &mut SimFs, s: u64) {
    fs.write(
        Path::new("/proc/uptime"),
        format!("{s}.00 1.00\n").as_bytes(),
        0o444,
    )
    .unwrap();
}

fn live(fs: &SimFs) -> Option<Gen> {
    fs.read_link(&Layout::default().current())
        .ok()
        .and_then(|t| t.to_str()?.strip_prefix("generations/")?.parse().ok())
        .map(Gen)
}

fn grub(fs: &SimFs) -> String {
    String::from_utf8(fs.read(Path::new("/etc/default/grub")).unwrap()).unwrap()
}

fn boot_armed(fs: &SimFs) -> Option<String> {
    fs.read(&Layout::default().boot_armed())
        .ok()
        .map(|b| String::from_utf8(b).unwrap())
}

/// Whether generation `g`'s kernel files are known to boot.
fn known(fs: &mut SimFs, g: Gen) -> bool {
    Agent::new(fs, Layout::default()).known_good(g)
}

/// The safety of a boot on generation `g`: whole on disk, and unless its
/// kernel files are known to boot, a confirmation awaits it.
fn assert_boot_guarded(fs: &mut SimFs, g: Gen, what: &str) {
    assert_eq!(live(fs), Some(g), "{what}: the wrong generation is live");
    assert_eq!(grub(fs), format!("grub of {g}\n"), "{what}");
    assert!(
        fs.kind(&Layout::default().journal()).unwrap().is_none(),
        "{what}: a journal is left"
    );
    if !known(fs, g) {
        let armed = boot_armed(fs).unwrap_or_else(|| {
            panic!("{what}: generation {g} booted on unknown kernel files, and nothing awaits its confirmation")
        });
        assert!(armed.starts_with(&format!("{g} ")), "{what}: {armed}");
        // Its timer was asked for (or the next activation goes back).
        assert!(
            fs.ops()
                .iter()
                .any(|o| o.0.contains("--unit=sitec-boot-confirm"))
                || fs.ops().is_empty(),
            "{what}: no timer"
        );
    }
}

/// Runs `step` on a copy of `fs`, stopped after each of its operations
/// in turn, both ways, then what runs next, and checks `after` on the
/// result. Returns the number of crash points.
fn at_every_step(
    fs: &SimFs,
    step: &dyn Fn(&mut SimFs) -> Result<(), sitec_agent::host::Error>,
    next_boot: &str,
    after: &dyn Fn(&mut SimFs, &str),
) -> usize {
    let mut whole = fs.after(Crash::Kill);
    step(&mut whole).unwrap();
    let n = whole.ops().len();
    for k in 0..n {
        let mut run = fs.after(Crash::Kill);
        run.crash_after(k);
        assert!(
            step(&mut run).is_err() && run.crashed(),
            "stopped after {k}"
        );
        for crash in [Crash::Kill, Crash::PowerLoss] {
            let mut left = run.after(crash);
            let what = format!(
                "stopped after {k} of {n} ({crash:?}: after `{}`)",
                k.checked_sub(1)
                    .map_or("nothing", |i| whole.ops()[i].0.as_str())
            );
            match crash {
                // The next activation.
                Crash::Kill => Agent::new(&mut left, Layout::default())
                    .recover(false)
                    .map(|_| ())
                    .or_else(|e| match e {
                        // A boot past its deadline went back: said so.
                        sitec_agent::host::Error::Unconfirmed(_) => Ok(()),
                        e => Err(e),
                    })
                    .unwrap_or_else(|e| panic!("{what}: the next activation failed: {e}")),
                // The next boot.
                Crash::PowerLoss => {
                    power_on(&mut left, next_boot);
                    Agent::new(&mut left, Layout::default())
                        .boot()
                        .unwrap_or_else(|e| panic!("{what}: the next boot failed: {e}"));
                }
            }
            after(&mut left, &what);
        }
    }
    n
}

#[test]
fn a_boot_on_unknown_kernel_files_is_guarded_at_every_step() {
    let mut report = Vec::new();
    let mut fs = host();
    // Generation 1, and the boot on it.
    Agent::new(&mut fs, Layout::default())
        .switch("b1-host", None)
        .unwrap();
    assert!(fs.ops().iter().any(|o| o.0 == "run update-grub"));
    let before = fs.after(Crash::Kill);
    power_on(&mut fs, "boot-1");
    let boot = |f: &mut SimFs| Agent::new(f, Layout::default()).boot();
    let mut on_1 = fs.after(Crash::Kill);
    let n = at_every_step(&on_1, &boot, "boot-1b", &|f, what| {
        assert_boot_guarded(f, Gen(1), &format!("the boot on generation 1, {what}"));
    });
    report.push(format!("the boot on 1: {n} crash points"));
    boot(&mut on_1).unwrap();
    assert_boot_guarded(&mut on_1, Gen(1), "the boot on generation 1");
    assert!(!known(&mut on_1, Gen(1)));
    drop(before);

    // Its confirmation.
    let confirm = |f: &mut SimFs| {
        Agent::new(f, Layout::default())
            .confirm_boot(Some("b1-host"))
            .map(|_| ())
    };
    let n = at_every_step(&on_1, &confirm, "boot-1c", &|f, what| {
        assert_boot_guarded(f, Gen(1), &format!("confirm-boot, {what}"));
    });
    report.push(format!("confirm-boot: {n} crash points"));
    confirm(&mut on_1).unwrap();
    assert!(known(&mut on_1, Gen(1)));
    assert_eq!(boot_armed(&on_1), None);

    // Generation 2, the boot on it, and nobody confirms it.
    let mut fs = on_1.after(Crash::Kill);
    Agent::new(&mut fs, Layout::default())
        .switch("b2-host", None)
        .unwrap();
    power_on(&mut fs, "boot-2");
    let n = at_every_step(&fs, &boot, "boot-2b", &|f, what| {
        assert_boot_guarded(f, Gen(2), &format!("the boot on generation 2, {what}"));
    });
    report.push(format!("the boot on 2: {n} crash points"));
    boot(&mut fs).unwrap();
    let armed = boot_armed(&fs).expect("the boot on 2 awaits confirmation");
    assert!(armed.starts_with("2 120 125 boot-2 "), "{armed}");

    // The timer: back to generation 1, update-grub for it, a reboot.
    uptime(&mut fs, 200);
    let expire = |f: &mut SimFs| Agent::new(f, Layout::default()).boot_expire();
    let n = at_every_step(&fs, &expire, "boot-3", &|f, what| {
        let what = format!("the timer's go-back, {what}");
        // After a kill, the timer runs again a minute later; after a power
        // loss, the boot judged what it came up on.
        let _ = Agent::new(f, Layout::default()).boot_expire();
        let g = live(f).unwrap();
        assert_boot_guarded(f, g, &what);
        if g == Gen(2) {
            // Not yet back: it still awaits, and a later timer goes back.
            uptime(f, 10_000);
            let _ = Agent::new(f, Layout::default()).boot_expire();
            assert_eq!(live(f), Some(Gen(1)), "{what}: never went back");
        }
    });
    report.push(format!("the timer's go-back: {n} crash points"));
    expire(&mut fs).unwrap();
    assert_eq!(live(&fs), Some(Gen(1)));
    assert_eq!(grub(&fs), "grub of 1\n");
    let ops: Vec<&str> = fs.ops().iter().map(|o| o.0.as_str()).collect();
    let grub_at = ops.iter().rposition(|o| *o == "run update-grub").unwrap();
    let reboot_at = ops
        .iter()
        .position(|o| *o == "run systemctl --no-block reboot")
        .expect("it reboots");
    assert!(
        grub_at < reboot_at,
        "the bootloader is generation 1's before the reboot"
    );
    assert_eq!(
        String::from_utf8(fs.read(&Layout::default().result(Gen(2))).unwrap()).unwrap(),
        "boot-unconfirmed-rolled-back\n"
    );
    // The reboot: on known kernel files, nothing awaits.
    power_on(&mut fs, "boot-3");
    boot(&mut fs).unwrap();
    assert_eq!(boot_armed(&fs), None);
    assert_eq!(live(&fs), Some(Gen(1)));
    println!("{}", report.join("\n"));
}
