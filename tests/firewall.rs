//! The generated ruleset carries real traffic: a host's `nftables.conf`
//! is loaded in a network namespace of its own, a peer namespace on a veth
//! pair talks to it over IPv6. With the input policy drop, IPv6 neighbour
//! discovery must pass (else no address on the link resolves and a host
//! that had IPv6 loses it when sitec's firewall loads), and a site's
//! `proto = 'icmpv6` rule admits ping6. The same ruleset without sitec's
//! ICMPv6 rule is the control: there the neighbour never resolves.

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
    let without = |drop: &[&str]| -> std::path::PathBuf {
        let kept: String = text
            .lines()
            .filter(|l| !drop.iter().any(|d| l.contains(d)))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(kept.lines().count() + drop.len(), text.lines().count());
        let path = tmp.path().join(format!("without-{}.conf", drop.len()));
        std::fs::write(&path, kept).unwrap();
        path
    };
    let link = Link::new("nd-own");
    load(&link, &without(&["comment \"ping6\""]));
    let (answered, neigh) = ping_from_peer(&link);
    assert!(!answered, "ping6 answered without a rule for it");
    assert!(
        neigh.contains("lladdr"),
        "neighbour discovery under policy drop: {neigh}"
    );

    // The control: without sitec's rule too, the peer cannot even resolve
    // the host, which is what a drop policy did to IPv6 before.
    let link = Link::new("nd-none");
    load(&link, &without(&["comment \"ping6\"", "what IPv6 needs"]));
    let (answered, neigh) = ping_from_peer(&link);
    assert!(!answered, "ping6 answered without neighbour discovery");
    assert!(
        !neigh.contains("lladdr"),
        "the host resolved without neighbour discovery: {neigh}"
    );
}
