//! Each action runs the commands `activate` runs, in its order, and fails
//! or warns where it does: shown on the simulated host, whose command
//! lines are recorded.

use std::path::Path;

use sitec_agent::actions::{Actions, Done, Note};
use sitec_agent::decide::{Source, UnitChange};
use sitec_agent::effects::{Effects, EffectsExt as _};
use sitec_agent::generation::{Backup, Generation};
use sitec_agent::index::Gen;
use sitec_agent::layout::Layout;
use sitec_agent::sim::SimFs;
use sitec_format::{Action, Index, UnitState};

fn host(systemd: bool) -> SimFs {
    let mut fx = SimFs::new();
    fx.mkdir_all(Path::new("/var/lib/sitec/generations"), 0o755)
        .unwrap();
    fx.mkdir_all(Path::new("/etc/sysctl.d"), 0o755).unwrap();
    if systemd {
        fx.mkdir_all(Path::new("/run/systemd/system"), 0o755)
            .unwrap();
    }
    fx
}

fn write(fx: &mut SimFs, path: &str, text: &str) {
    let p = Path::new(path);
    fx.mkdir_all(p.parent().unwrap(), 0o755).unwrap();
    fx.write(p, text.as_bytes(), 0o644).unwrap();
}

/// The commands run since `from` operations.
fn commands(fx: &SimFs, from: usize) -> Vec<String> {
    fx.ops()[from..]
        .iter()
        .filter_map(|op| op.0.strip_prefix("run ").map(str::to_string))
        .collect()
}

struct Scene {
    layout: Layout,
    from: Generation,
    to: Generation,
    base: Backup,
}

fn scene(to_units: &str, base: &str) -> Scene {
    Scene {
        layout: Layout::default(),
        from: Generation::Bundle(Index::default()),
        to: Generation::Bundle(Index::parse(to_units).unwrap()),
        base: Backup::parse(base).unwrap(),
    }
}

fn run(fx: &mut SimFs, s: &Scene, from: Gen, action: &str) -> (Done, Vec<String>, Vec<Note>) {
    let start = fx.ops().len();
    let mut a = Actions::new(fx, &s.layout, (from, &s.from), &s.to, &s.base, 120);
    let done = a
        .run_action(&Action::try_from(action.to_string()).unwrap())
        .unwrap();
    let notes = a.notes;
    (done, commands(fx, start), notes)
}

fn warnings(notes: &[Note]) -> Vec<&str> {
    notes
        .iter()
        .filter_map(|n| match n {
            Note::Warn(w) => Some(w.as_str()),
            Note::Log(_) | Note::Say(_) => None,
        })
        .collect()
}

#[test]
fn nft_load_loads_the_ruleset_and_deletes_the_sitec_tables_it_no_longer_has() {
    let mut fx = host(true);
    write(
        &mut fx,
        "/etc/nftables.conf",
        "flush ruleset\ntable inet sitec {\n}\n",
    );
    fx.answer(
        "nft list tables",
        "table inet sitec\ntable inet sitec_nat\ntable ip docker\n",
        true,
    );
    let s = scene("", "");
    let (done, cmds, _) = run(&mut fx, &s, Gen(1), "nft-load");
    assert_eq!(done, Done::Ok);
    assert_eq!(
        cmds,
        [
            "nft -f /etc/nftables.conf",
            "nft list tables",
            "nft delete table inet sitec_nat"
        ]
    );
    fx.fail_command("nft -f /etc/nftables.conf");
    let (done, cmds, _) = run(&mut fx, &s, Gen(1), "nft-load");
    assert_eq!((done, cmds.len()), (Done::Failed, 1));
}

#[test]
fn sysctl_load_puts_back_the_keys_the_generation_left_set() {
    let mut fx = host(true);
    write(
        &mut fx,
        "/etc/sysctl.d/90-sitec.conf",
        "net.ipv4.ip_forward = 1\n",
    );
    write(
        &mut fx,
        "/var/lib/sitec/generations/1/etc/sysctl.d/90-sitec.conf",
        "net.ipv4.ip_forward = 1\nnet.core.somaxconn = 4096\nvm.swappiness = 10\n",
    );
    let s = scene("", "k\tnet.core.somaxconn\t128\n");
    let (done, cmds, notes) = run(&mut fx, &s, Gen(1), "sysctl-load");
    assert_eq!(done, Done::Ok);
    assert_eq!(
        cmds,
        [
            "sysctl -q -p /etc/sysctl.d/90-sitec.conf",
            "sysctl -q -w net.core.somaxconn=128"
        ]
    );
    assert_eq!(
        warnings(&notes),
        ["vm.swappiness: no value recorded from before sitec set it; left as it is"]
    );
}

#[test]
fn a_restart_checks_nginx_first_and_skips_what_the_host_lacks() {
    let mut fx = host(true);
    let s = scene("", "");
    fx.answer(
        "systemctl list-unit-files --no-legend nginx.service",
        "nginx.service enabled enabled\n",
        true,
    );
    let (done, cmds, _) = run(&mut fx, &s, Gen(1), "reload:nginx.service");
    assert_eq!(done, Done::Ok);
    assert_eq!(
        cmds[1..],
        ["nginx -t", "systemctl reload-or-restart nginx.service"]
    );
    fx.fail_command("nginx -t");
    let (done, cmds, _) = run(&mut fx, &s, Gen(1), "restart:nginx.service");
    assert_eq!(done, Done::Failed);
    assert_eq!(cmds.last().unwrap(), "nginx -t");
    // No such unit: skipped, said.
    let (done, cmds, notes) = run(&mut fx, &s, Gen(1), "restart:zaino.service");
    assert_eq!(done, Done::Ok);
    assert_eq!(
        cmds,
        ["systemctl list-unit-files --no-legend zaino.service"]
    );
    assert_eq!(
        warnings(&notes),
        ["zaino.service does not exist on this host: restart skipped"]
    );
    // A template instance exists through its template.
    fx.answer(
        "systemctl list-unit-files --no-legend wg-quick@.service",
        "wg-quick@.service indirect enabled\n",
        true,
    );
    let (_, cmds, _) = run(&mut fx, &s, Gen(1), "restart:wg-quick@wg0.service");
    assert_eq!(
        cmds.last().unwrap(),
        "systemctl restart wg-quick@wg0.service"
    );
}

#[test]
fn without_systemd_unit_actions_are_skipped_with_a_warning() {
    let mut fx = host(false);
    let s = scene("", "");
    for a in [
        "daemon-reload",
        "restart:a.service",
        "modules-load",
        "chrony-reload",
    ] {
        let (done, cmds, notes) = run(&mut fx, &s, Gen(1), a);
        assert_eq!(done, Done::Ok, "{a}");
        assert!(cmds.is_empty(), "{a}: {cmds:?}");
        assert_eq!(warnings(&notes).len(), 1, "{a}");
    }
}

#[test]
fn chrony_reloads_a_running_daemon_and_starts_one_the_generation_enables() {
    let mut fx = host(true);
    fx.answer("systemctl is-active --quiet chrony.service", "", true);
    let s = scene("u\tchrony.service\tenabled\n", "");
    let (_, cmds, _) = run(&mut fx, &s, Gen(1), "chrony-reload");
    assert_eq!(cmds.last().unwrap(), "chronyc reload sources");
    fx.answer("systemctl is-active --quiet chrony.service", "", false);
    let (_, cmds, _) = run(&mut fx, &s, Gen(1), "chrony-reload");
    assert_eq!(cmds.last().unwrap(), "systemctl start chrony.service");
    fx.answer("systemctl is-enabled chrony.service", "masked\n", false);
    let (done, cmds, notes) = run(&mut fx, &s, Gen(1), "chrony-reload");
    assert_eq!(done, Done::Ok);
    assert_eq!(cmds.last().unwrap(), "systemctl is-enabled chrony.service");
    assert_eq!(warnings(&notes).len(), 1);
}

#[test]
fn unit_states_are_what_runs_and_at_boot_nothing_waits() {
    let mut fx = host(true);
    fx.answer(
        "systemctl list-unit-files --no-legend nginx.service",
        "nginx.service enabled enabled\n",
        true,
    );
    let s = scene("", "");
    let change = |unit: &str, state, source| UnitChange {
        unit: unit.to_string(),
        state,
        source,
    };
    let changes = [
        change("nginx.service", UnitState::Disabled, Source::Set),
        change("samba-ad-dc.service", UnitState::Masked, Source::Set),
        change("smbd.service", UnitState::Disabled, Source::Base),
        change("zaino.service", UnitState::Enabled, Source::Set),
    ];
    for boot in [false, true] {
        let start = fx.ops().len();
        let mut a = Actions::new(&mut fx, &s.layout, (Gen(1), &s.from), &s.to, &s.base, 120);
        let failed = a.unit_states(&changes, &[], boot).unwrap();
        assert!(failed.is_empty());
        let nb = if boot { " --no-block" } else { "" };
        assert_eq!(
            commands(&fx, start),
            [
                "systemctl unmask nginx.service".to_string(),
                "systemctl list-unit-files --no-legend nginx.service".into(),
                "systemctl disable nginx.service".into(),
                format!("systemctl stop{nb} nginx.service"),
                // The host lacks it: masked all the same, nothing to stop.
                "systemctl list-unit-files --no-legend samba-ad-dc.service".into(),
                "systemctl mask samba-ad-dc.service".into(),
                // Generation 0's state that is no explicit one: the unit
                // the host lacks is only unmasked.
                "systemctl unmask smbd.service".into(),
                "systemctl list-unit-files --no-legend smbd.service".into(),
                "systemctl unmask zaino.service".into(),
                "systemctl enable zaino.service".into(),
                format!("systemctl start{nb} zaino.service"),
            ]
        );
    }
    fx.fail_command("systemctl enable zaino.service");
    let mut a = Actions::new(&mut fx, &s.layout, (Gen(1), &s.from), &s.to, &s.base, 120);
    assert_eq!(
        a.unit_states(&changes[3..], &[], false).unwrap(),
        ["zaino.service"]
    );
}

const WG0: &str = "[Interface]\nAddress = 10.9.0.1/24\nListenPort = 51820\n\
    PostUp = wg set %i private-key /etc/wireguard/wg0.key\n\n[Peer]\nPublicKey = x\n\
    AllowedIPs = 10.9.0.2/32, 192.168.2.0/24\n";

fn wg_host(left: &str, live: &str) -> SimFs {
    let mut fx = host(true);
    write(&mut fx, "/etc/wireguard/wg0.conf", live);
    write(&mut fx, "/etc/wireguard/wg0.key", "the-private-key\n");
    write(
        &mut fx,
        "/var/lib/sitec/generations/1/etc/wireguard/wg0.conf",
        left,
    );
    fx
}

#[test]
fn wg_sync_keeps_the_tunnel_up_and_moves_its_routes() {
    let new = WG0.replace("192.168.2.0/24", "192.168.3.0/24, 0.0.0.0/0");
    let mut fx = wg_host(WG0, &new);
    fx.answer("ip link show dev wg0", "4: wg0: <POINTOPOINT,UP>\n", true);
    let s = scene("", "");
    let start = fx.ops().len();
    let (done, cmds, notes) = run(&mut fx, &s, Gen(1), "wg-sync:wg0");
    assert_eq!(done, Done::Ok);
    assert_eq!(
        cmds,
        [
            "ip link show dev wg0",
            "wg syncconf wg0 /var/lib/sitec/private/wg0.sync",
            "ip -force -batch - <<< route del 192.168.2.0/24 dev wg0",
            "ip -batch - <<< route replace 10.9.0.2/32 dev wg0; route replace 192.168.3.0/24 dev wg0",
        ]
    );
    assert_eq!(
        warnings(&notes),
        ["wg0: default route through the tunnel is left to wg-quick"]
    );
    // The key reached syncconf's file, root's alone, and left with it.
    let wrote = fx.ops()[start..]
        .iter()
        .find(|op| op.0.starts_with("write /var/lib/sitec/private/wg0.sync"))
        .expect("the sync file is written");
    assert!(wrote.0.ends_with(" 0600"), "{}", wrote.0);
    assert!(!fx.exists(Path::new("/var/lib/sitec/private/wg0.sync")));
    assert_eq!(fx.mode(Path::new("/var/lib/sitec/private")).unwrap(), 0o700);
}

#[test]
fn wg_sync_restarts_what_syncconf_cannot_apply_and_stops_a_tunnel_that_left() {
    let readdressed = WG0.replace("10.9.0.1/24", "10.9.0.5/24");
    let mut fx = wg_host(WG0, &readdressed);
    fx.answer("ip link show dev wg0", "4: wg0\n", true);
    let s = scene("", "");
    let (done, cmds, _) = run(&mut fx, &s, Gen(1), "wg-sync:wg0");
    assert_eq!(done, Done::Ok);
    assert_eq!(
        cmds,
        ["ip link show dev wg0", "systemctl restart wg-quick@wg0"]
    );
    // Down: brought up, whatever changed.
    let mut fx = wg_host(WG0, WG0);
    fx.answer("ip link show dev wg0", "", false);
    let (_, cmds, _) = run(&mut fx, &s, Gen(1), "wg-sync:wg0");
    assert_eq!(cmds.last().unwrap(), "systemctl restart wg-quick@wg0");
    // Gone with its file.
    let mut fx = host(true);
    let (done, cmds, _) = run(&mut fx, &s, Gen(1), "wg-sync:wg1");
    assert_eq!(done, Done::Ok);
    assert_eq!(cmds, ["systemctl disable --now wg-quick@wg1"]);
}

const IFACES: &str = "auto lo\niface lo inet loopback\n\nauto eno1\niface eno1 inet manual\n\n\
    auto vmbr0\niface vmbr0 inet static\n\taddress 192.0.2.2/24\n\tbridge-ports eno1\n";

#[test]
fn classic_ifupdown_takes_down_what_changed_as_it_came_up_and_reattaches_ports() {
    let mut fx = host(true);
    let new = IFACES.replace("192.0.2.2/24", "192.0.2.3/24");
    write(&mut fx, "/etc/network/interfaces", &new);
    write(
        &mut fx,
        "/var/lib/sitec/generations/1/etc/network/interfaces",
        IFACES,
    );
    // A VM's tap on the bridge, which its stanza does not name.
    write(&mut fx, "/sys/class/net/vmbr0/brif/eno1", "");
    write(&mut fx, "/sys/class/net/vmbr0/brif/tap100i0", "");
    write(&mut fx, "/sys/class/net/tap100i0/ifindex", "9\n");
    let old = "/var/lib/sitec/private/interfaces.old";
    fx.answer(&format!("ifquery -i {old} vmbr0"), "", true);
    fx.answer("ifquery -i /etc/network/interfaces vmbr0", "", true);
    fx.answer("ifquery --state vmbr0", "vmbr0=vmbr0\n", true);
    // ifdown deletes the bridge: ifup makes it anew with eno1 alone.
    fx.command_removes(
        &format!("ifdown --force -i {old} vmbr0"),
        Path::new("/sys/class/net/vmbr0/brif/tap100i0"),
    );
    let s = scene("", "");
    let start = fx.ops().len();
    let (done, cmds, _) = run(&mut fx, &s, Gen(1), "ifreload");
    assert_eq!(done, Done::Ok);
    assert_eq!(
        cmds,
        [
            format!("ifquery -i {old} vmbr0"),
            format!("ifdown --force -i {old} vmbr0"),
            "ifup -a".to_string(),
            "ifquery -i /etc/network/interfaces vmbr0".to_string(),
            "ifquery --state vmbr0".to_string(),
            "ifquery --state vmbr0".to_string(),
            "ip link set dev tap100i0 master vmbr0".to_string(),
        ]
    );
    // What it applied is recorded before anything went down.
    let ops: Vec<&str> = fx.ops()[start..].iter().map(|o| o.0.as_str()).collect();
    let recorded = ops
        .iter()
        .position(|o| o.starts_with("rename /var/lib/sitec/interfaces.applied.sitec-new"))
        .unwrap();
    let ifdown = ops.iter().position(|o| o.contains("ifdown")).unwrap();
    assert!(recorded < ifdown, "{ops:#?}");
    assert_eq!(
        fx.read(Path::new("/var/lib/sitec/interfaces.applied"))
            .unwrap(),
        new.as_bytes()
    );
    // Next time it is what the interfaces came up from.
    let newer = new.replace("192.0.2.3/24", "192.0.2.4/24");
    write(&mut fx, "/etc/network/interfaces", &newer);
    fx.answer(&format!("ifquery -i {old} vmbr0"), "", false);
    let (_, cmds, _) = run(&mut fx, &s, Gen(1), "ifreload");
    assert_eq!(cmds[1], "ifup -a");
}

#[test]
fn ifupdown2_reloads_and_a_difference_is_only_said() {
    let mut fx = host(true);
    write(&mut fx, "/etc/network/interfaces", IFACES);
    write(&mut fx, "/usr/sbin/ifreload", "");
    fx.fail_command("ifquery -a --check");
    let s = scene("", "");
    let (done, cmds, notes) = run(&mut fx, &s, Gen(1), "ifreload");
    assert_eq!(done, Done::Ok);
    assert_eq!(cmds, ["ifreload -a", "ifquery -a --check"]);
    assert_eq!(warnings(&notes).len(), 1);
    fx.fail_command("ifreload -a");
    let (done, _, _) = run(&mut fx, &s, Gen(1), "ifreload");
    assert_eq!(done, Done::Failed);
}
