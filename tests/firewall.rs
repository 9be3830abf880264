//! The generated ruleset carries real traffic: a host's `nftables.conf`
//! is loaded in a network namespace of its own, a peer namespace on a veth
//! pair talks to it over IPv6. With the input policy drop, IPv6 neighbour
//! discovery must pass (else no address on the link resolves and a host
//! that had IPv6 loses it when sitec's firewall loads), and a site's
//! `proto = 'icmpv6` rule admits ping6. The same ruleset without sitec's
//! ICMPv6 rule is the control: there the neighbour never resolves. On a
//! host with `method6 = 'dhcp`, a DHCPv6 server's reply passes too, and
//! not without sitec's rule for it.
//!
//! A router's ruleset, with its forwarding sysctls, carries real
//! connections between three namespaces: a DNAT restricted by source, a
//! masquerade on an interface and a forward rule on a destination, in both
//! families. And rulesets of this and an earlier version of sitec take each
//! other's NAT away, as a rollback across versions must.

mod support;

use std::path::Path;
use std::process::Command;

use support::{TempDir, compile_into};

/// Two namespaces joined by a veth pair, removed when dropped.
struct Link {
    host: String,
    peer: String,
}

impl Link {
    fn new(tag: &str) -> Link {
        static LINKS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = LINKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Interface names have 15 characters at most.
        let id = format!("{}{n}", std::process::id());
        let link = Link {
            host: format!("sitec-{tag}-h-{id}"),
            peer: format!("sitec-{tag}-p-{id}"),
        };
        for ns in [&link.host, &link.peer] {
            sh(&format!("ip netns add {ns}"));
        }
        sh(&format!(
            "ip link add vh{id} netns {} type veth peer name vp{id} netns {}",
            link.host, link.peer
        ));
        link.on_host(&format!(
            "ip link set lo up && ip link set vh{id} up && ip -6 addr add fd00:5::1/64 dev vh{id} nodad"
        ));
        link.on_peer(&format!(
            "ip link set lo up && ip link set vp{id} up && ip -6 addr add fd00:5::2/64 dev vp{id} nodad"
        ));
        link
    }

    fn on_host(&self, cmd: &str) -> std::process::Output {
        in_ns(&self.host, cmd)
    }

    fn on_peer(&self, cmd: &str) -> std::process::Output {
        in_ns(&self.peer, cmd)
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        for ns in [&self.host, &self.peer] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn in_ns(ns: &str, cmd: &str) -> std::process::Output {
    Command::new("ip")
        .args(["netns", "exec", ns, "sh", "-c", cmd])
        .output()
        .expect("ip netns exec runs")
}

fn sh(cmd: &str) {
    let o = Command::new("sh").args(["-c", cmd]).output().unwrap();
    assert!(
        o.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// What the peer sees of the host after one ping6 (-W 2): whether the ping
/// was answered and the host's neighbour entry.
fn ping_from_peer(link: &Link) -> (bool, String) {
    let ping = link.on_peer("ping -6 -c 1 -W 2 fd00:5::1");
    let neigh = link.on_peer("ip -6 neigh show fd00:5::1");
    (
        ping.status.success(),
        String::from_utf8_lossy(&neigh.stdout).trim().to_string(),
    )
}

fn load(link: &Link, ruleset: &Path) {
    let o = link.on_host(&format!("nft -f {}", ruleset.display()));
    assert!(
        o.status.success(),
        "nft -f {}: {}",
        ruleset.display(),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `ruleset` without its lines that contain one of `markers` (each marks
/// exactly one line), written beside it as a control.
fn without(ruleset: &Path, markers: &[&str]) -> std::path::PathBuf {
    let text = std::fs::read_to_string(ruleset).unwrap();
    let kept: String = text
        .lines()
        .filter(|l| !markers.iter().any(|m| l.contains(m)))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(kept.lines().count() + markers.len(), text.lines().count());
    let path = ruleset.with_file_name(format!("without-{}.conf", markers.len()));
    std::fs::write(&path, kept).unwrap();
    path
}

/// Compiles `text` as the site `name` of a project of its own: the project
/// (removed when dropped) and its out/.
fn compile_site(tag: &str, name: &str, text: &str) -> (TempDir, std::path::PathBuf) {
    let tmp = support::schema_project(tag);
    support::write_site(tmp.path(), name, text);
    let out = tmp.path().join("out");
    let o = support::sitec()
        .current_dir(tmp.path())
        .args(["compile", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (tmp, out)
}

#[test]
fn ipv6_neighbour_discovery_and_ping6_pass_a_drop_policy() {
    let tmp = TempDir::new("firewall");
    let out = tmp.path().join("out");
    let o = compile_into(&out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ruleset = out.join("homelab/pve1/etc/nftables.conf");
    let text = std::fs::read_to_string(&ruleset).unwrap();
    assert!(text.contains("policy drop"), "{text}");
    assert!(text.contains("meta l4proto ipv6-icmp accept"), "{text}");

    let link = Link::new("nd");
    load(&link, &ruleset);
    let (answered, neigh) = ping_from_peer(&link);
    assert!(answered, "ping6 through the site's 'icmpv6 rule: {neigh}");
    assert!(
        neigh.contains("lladdr"),
        "the host's address resolved: {neigh}"
    );

    // Without the site's 'icmpv6 rule (which admits every ICMPv6 type),
    // sitec's own rule alone: the echo is dropped, the neighbour resolves.
    let link = Link::new("nd-own");
    load(&link, &without(&ruleset, &["comment \"ping6\""]));
    let (answered, neigh) = ping_from_peer(&link);
    assert!(!answered, "ping6 answered without a rule for it");
    assert!(
        neigh.contains("lladdr"),
        "neighbour discovery under policy drop: {neigh}"
    );

    // The control: without sitec's rule too, the peer cannot even resolve
    // the host, which is what a drop policy did to IPv6 before.
    let link = Link::new("nd-none");
    load(
        &link,
        &without(&ruleset, &["comment \"ping6\"", "what IPv6 needs"]),
    );
    let (answered, neigh) = ping_from_peer(&link);
    assert!(!answered, "ping6 answered without neighbour discovery");
    assert!(
        !neigh.contains("lladdr"),
        "the host resolved without neighbour discovery: {neigh}"
    );
}

/// A router's site: a LAN and a VM network of both families, a forwarded
/// port for two partner addresses only, the VM network masqueraded out
/// through the LAN interface, and a forward rule keeping the VMs away from
/// one guarded LAN address.
const ROUTER: &str = r#"
{
  address_sets = {
    admin = ["10.0.200.0/24", "fd00:200::/64"],
    vms = ["10.0.101.0/24", "fd00:101::/64"],
    partners = ["10.0.200.5/32", "fd00:200::5/128"],
    guarded = ["10.0.200.6/32", "fd00:200::6/128"],
  },
  hosts.router = {
    management_address = "10.0.200.11",
    interfaces = {
      lan0 = { method = 'static, address = "10.0.200.11/24", address6 = "fd00:200::11/64" },
      vm0 = { method = 'static, address = "10.0.101.1/24", address6 = "fd00:101::1/64" },
    },
    firewall = {
      input.rules = [{ iface = "lo" }, { proto = 'tcp, ports = [22], source = "@admin" }],
      forward.rules = [{ iface = "vm0", destination = "@guarded", action = 'drop, comment = "VMs stay off the guarded host" }],
      dnat = [
        { iface = "lan0", proto = 'tcp, port = 8080, to = "10.0.101.10", to_port = 80, source = "@partners" },
        { iface = "lan0", proto = 'tcp, port = 8080, to = "fd00:101::10", to_port = 80, source = "@partners" },
      ],
      masquerade = [{ oiface = "lan0", source = "@vms", comment = "VMs out" }],
    },
    sysctl = { "net.ipv4.ip_forward" = 1, "net.ipv6.conf.all.forwarding" = 1 },
  },
}
"#;

/// A TCP server of both families that answers every connection with the
/// address it came from (so a test sees what NAT did), then closes it.
const ECHO_PEER: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET6)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", int(sys.argv[1])))
s.listen()
print("listening", flush=True)
while True:
    c, a = s.accept()
    host = a[0][7:] if a[0].startswith("::ffff:") else a[0]
    c.sendall((host + "\n").encode())
    c.close()
"#;

/// Connects from `source` to `address`:`port` (2 s timeout) and prints what
/// the server answered.
const CONNECT: &str = r#"
import socket, sys
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(family)
s.settimeout(2)
s.bind((sys.argv[3], 0))
s.connect((sys.argv[1], int(sys.argv[2])))
print(s.recv(100).decode().strip())
"#;

/// Three namespaces: a router with the ruleset, a LAN with two clients'
/// addresses, a VM network with one VM. Removed, with what runs in them,
/// when dropped.
struct Routed {
    router: String,
    lan: String,
    vm: String,
    servers: Vec<std::process::Child>,
}

impl Routed {
    fn new() -> Routed {
        let id = std::process::id();
        let r = Routed {
            router: format!("sitec-nat-r-{id}"),
            lan: format!("sitec-nat-l-{id}"),
            vm: format!("sitec-nat-v-{id}"),
            servers: Vec::new(),
        };
        for ns in [&r.router, &r.lan, &r.vm] {
            sh(&format!("ip netns add {ns} && ip -n {ns} link set lo up"));
        }
        sh(&format!(
            "ip link add lan0 netns {} type veth peer name eth0 netns {}",
            r.router, r.lan
        ));
        sh(&format!(
            "ip link add vm0 netns {} type veth peer name eth0 netns {}",
            r.router, r.vm
        ));
        let setup = [
            (
                &r.router,
                "ip addr add 10.0.200.11/24 dev lan0 && ip addr add fd00:200::11/64 dev lan0 nodad \
                 && ip addr add 10.0.101.1/24 dev vm0 && ip addr add fd00:101::1/64 dev vm0 nodad \
                 && ip link set lan0 up && ip link set vm0 up",
            ),
            (
                &r.lan,
                "ip addr add 10.0.200.5/24 dev eth0 && ip addr add 10.0.200.6/24 dev eth0 \
                 && ip addr add fd00:200::5/64 dev eth0 nodad && ip addr add fd00:200::6/64 dev eth0 nodad \
                 && ip link set eth0 up",
            ),
            (
                &r.vm,
                "ip addr add 10.0.101.10/24 dev eth0 && ip addr add fd00:101::10/64 dev eth0 nodad \
                 && ip link set eth0 up && ip route add default via 10.0.101.1 \
                 && ip -6 route add default via fd00:101::1",
            ),
        ];
        for (ns, cmd) in setup {
            let o = in_ns(ns, cmd);
            assert!(
                o.status.success(),
                "{ns}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        r
    }

    /// Starts the answering server in `ns` on `port` and waits for it.
    fn serve(&mut self, ns: &str, port: u16) {
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                ns,
                "python3",
                "-c",
                ECHO_PEER,
                &port.to_string(),
            ])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line.trim(), "listening");
        self.servers.push(child);
    }

    /// What a connection from `source` in `ns` to `address`:`port` was
    /// answered, or `None` when it did not connect.
    fn connect(&self, ns: &str, source: &str, address: &str, port: u16) -> Option<String> {
        let o = Command::new("ip")
            .args(["netns", "exec", ns, "python3", "-c", CONNECT, address])
            .args([&port.to_string(), source])
            .output()
            .unwrap();
        o.status
            .success()
            .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
    }
}

impl Drop for Routed {
    fn drop(&mut self) {
        for child in &mut self.servers {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in [&self.router, &self.lan, &self.vm] {
            let _ = Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "ip netns pids {ns} | xargs -r kill -9; ip netns del {ns}"
                ))
                .status();
        }
    }
}

/// The generated ruleset and sysctl file, loaded into a router namespace,
/// forward a port for the partner addresses only (of both families),
/// masquerade the VMs out through the LAN interface, and keep them off the
/// guarded address: every connection is made for real.
#[test]
fn dnat_by_source_masquerade_on_an_interface_and_a_forward_rule_carry_both_families() {
    let (_project, out) = compile_site("firewall-nat", "router", ROUTER);
    let bundle = out.join("router/router");

    let mut net = Routed::new();
    let load = in_ns(
        &net.router,
        &format!(
            "sysctl -q -p {} && nft -f {}",
            bundle.join("etc/sysctl.d/90-sitec.conf").display(),
            bundle.join("etc/nftables.conf").display()
        ),
    );
    assert!(
        load.status.success(),
        "{}",
        String::from_utf8_lossy(&load.stderr)
    );
    let (vm, lan) = (net.vm.clone(), net.lan.clone());
    net.serve(&vm, 80);
    net.serve(&lan, 9000);

    // The forwarded port: a partner reaches the VM with its own address;
    // anyone else is not forwarded and meets the input chain's drop.
    for (partner, other, router) in [
        ("10.0.200.5", "10.0.200.6", "10.0.200.11"),
        ("fd00:200::5", "fd00:200::6", "fd00:200::11"),
    ] {
        assert_eq!(
            net.connect(&net.lan, partner, router, 8080).as_deref(),
            Some(partner),
            "a partner through the DNAT"
        );
        assert_eq!(
            net.connect(&net.lan, other, router, 8080),
            None,
            "{other} was forwarded, though not a partner"
        );
    }
    // The VMs: out through lan0 with the router's address, but never to
    // the guarded address.
    for (open, guarded, router) in [
        ("10.0.200.5", "10.0.200.6", "10.0.200.11"),
        ("fd00:200::5", "fd00:200::6", "fd00:200::11"),
    ] {
        let vm = if open.contains(':') {
            "fd00:101::10"
        } else {
            "10.0.101.10"
        };
        assert_eq!(
            net.connect(&net.vm, vm, open, 9000).as_deref(),
            Some(router),
            "the VM masqueraded to {open}"
        );
        assert_eq!(
            net.connect(&net.vm, vm, guarded, 9000),
            None,
            "the VM reached the guarded {guarded}"
        );
    }
}

/// A ruleset as sitec wrote it before NAT moved into `inet sitec`: the
/// filter table and a table `ip sitec_nat` of its own.
const EARLIER_VERSION: &str = "#!/usr/sbin/nft -f
table inet sitec
delete table inet sitec
table inet sitec {
	chain input {
		type filter hook input priority filter; policy accept;
		ct state established,related accept
	}
}
table ip sitec_nat
delete table ip sitec_nat
table ip sitec_nat {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		tcp dport 8123 dnat to 10.0.101.10:8123 comment \"earlier\"
	}
}
";

/// A rollback across versions takes the other version's NAT away in both
/// directions: today's ruleset deletes the earlier `ip sitec_nat`, and the
/// earlier one, loaded back, deletes `inet sitec` with today's NAT chains.
#[test]
fn a_ruleset_takes_the_nat_of_an_earlier_or_later_version_away() {
    let tmp = TempDir::new("firewall-versions");
    let out = tmp.path().join("out");
    compile_into(&out);
    let today = out.join("homelab/pve1/etc/nftables.conf");
    let earlier = tmp.path().join("earlier.conf");
    std::fs::write(&earlier, EARLIER_VERSION).unwrap();
    let link = Link::new("ver");
    let tables =
        |link: &Link| String::from_utf8_lossy(&link.on_host("nft list tables").stdout).into_owned();

    load(&link, &earlier);
    assert_eq!(tables(&link), "table inet sitec\ntable ip sitec_nat\n");
    load(&link, &today);
    assert_eq!(
        tables(&link),
        "table inet sitec\n",
        "the earlier NAT table stayed"
    );
    let nat = link.on_host("nft list chain inet sitec prerouting");
    assert!(
        String::from_utf8_lossy(&nat.stdout).contains("dnat ip to 10.0.101.10:8123"),
        "today's NAT: {}",
        String::from_utf8_lossy(&nat.stderr)
    );
    load(&link, &earlier);
    assert_eq!(tables(&link), "table inet sitec\ntable ip sitec_nat\n");
    let gone = link.on_host("nft list chain inet sitec prerouting");
    assert!(
        !gone.status.success(),
        "today's NAT chains outlived the rollback"
    );
    let ruleset = String::from_utf8_lossy(&link.on_host("nft list ruleset").stdout).into_owned();
    assert_eq!(ruleset.matches("dnat").count(), 1, "{ruleset}");
}

/// A host that takes IPv6 by DHCPv6, behind policy drop.
const DHCPV6_CLIENT: &str = r#"
{
  address_sets.admin = ["fd00:5::/64"],
  hosts.client = {
    management_address = "fd00:5::1",
    interfaces.eth0 = { method6 = 'dhcp },
    firewall.input.rules = [{ iface = "lo" }, { proto = 'tcp, ports = [22], source = "@admin" }],
  },
}
"#;

/// Waits for one UDP datagram on port 546 (2 s) and prints its source.
const RECEIVE_546: &str = r#"
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind(("::", 546))
s.settimeout(2)
print("ready", flush=True)
try:
    data, peer = s.recvfrom(100)
    print(peer[0])
except socket.timeout:
    print("nothing")
"#;

/// Sends one datagram from port 547 to link-local address argv[1] on
/// interface argv[2], as a DHCPv6 server answers a client.
const SEND_FROM_547: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind(("::", 547))
s.sendto(b"reply", (sys.argv[1], 546, 0, socket.if_nametoindex(sys.argv[2])))
"#;

/// What the host received on port 546 when the peer answered it as a
/// DHCPv6 server does, from its link-local address and port 547.
fn dhcpv6_reply_reaches(link: &Link) -> String {
    let text = |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).trim().to_string();
    let host_if = text(&link.on_host("ip -o link | sed -n 's/^[0-9]*: \\(vh[0-9]*\\)@.*/\\1/p'"));
    let peer_if = text(&link.on_peer("ip -o link | sed -n 's/^[0-9]*: \\(vp[0-9]*\\)@.*/\\1/p'"));
    // The link-local addresses must have finished duplicate address
    // detection, or the kernel sends from none and receives on none.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while [
        link.on_host("ip -6 addr show scope link"),
        link.on_peer("ip -6 addr show scope link"),
    ]
    .iter()
    .any(|o| text(o).contains("tentative") || !text(o).contains("fe80:"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "link-local addresses never settled"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let host_ll = text(&link.on_host(&format!(
        "ip -6 -o addr show dev {host_if} scope link | sed -n 's/.* inet6 \\([^/]*\\)\\/.*/\\1/p'"
    )));
    assert!(
        host_ll.starts_with("fe80:"),
        "no link-local address yet: {host_ll:?}"
    );
    let mut receiver = Command::new("ip")
        .args(["netns", "exec", &link.host, "python3", "-c", RECEIVE_546])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(receiver.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    let send = Command::new("ip")
        .args([
            "netns",
            "exec",
            &link.peer,
            "python3",
            "-c",
            SEND_FROM_547,
            &host_ll,
            &peer_if,
        ])
        .output()
        .unwrap();
    assert!(
        send.status.success(),
        "{}",
        String::from_utf8_lossy(&send.stderr)
    );
    line.clear();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    receiver.wait().unwrap();
    line.trim().to_string()
}

/// With `method6 = 'dhcp` and policy drop, the DHCPv6 server's reply (from
/// its link-local address, which conntrack cannot tie to the client's
/// multicast request) reaches the client; without sitec's rule for it, the
/// control, it does not.
#[test]
fn a_dhcpv6_reply_passes_a_drop_policy() {
    let (_project, out) = compile_site("firewall-dhcpv6", "dhcp", DHCPV6_CLIENT);
    let ruleset = out.join("dhcp/client/etc/nftables.conf");
    let text = std::fs::read_to_string(&ruleset).unwrap();
    assert!(text.contains("comment \"DHCPv6 replies\""), "{text}");

    let link = Link::new("dhcp");
    load(&link, &ruleset);
    assert!(
        dhcpv6_reply_reaches(&link).starts_with("fe80:"),
        "the DHCPv6 reply was dropped"
    );

    let link = Link::new("dhcp-none");
    load(&link, &without(&ruleset, &["DHCPv6 replies"]));
    assert_eq!(
        dhcpv6_reply_reaches(&link),
        "nothing",
        "the control let it in"
    );
}
