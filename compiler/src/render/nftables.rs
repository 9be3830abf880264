//! /etc/nftables.conf: the host firewall in one table of its own
//! (`inet sitec`: filtering and NAT of both families), replaced atomically
//! and idempotently by one `nft -f` without touching other tools' tables.
//! An address set of the site may mix families; nftables sets hold one, so
//! each becomes one set per family it has (`admin.v4`, `admin.v6`), and a
//! rule on it one rule per family (with a source and a destination, one
//! per family both have).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::Serialize;

use super::{File, HostInput, HostOutput, RenderError, Validator, template};
use crate::model::{Action, Chain, Method6, Policy, Proto, Rule};
use crate::net::{Family, Net};

/// The input rule that keeps IPv6 working under policy drop.
const ICMPV6_NEEDED: &str = "icmpv6 type { destination-unreachable, packet-too-big, time-exceeded, \
     parameter-problem, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } \
     accept comment \"what IPv6 needs\"";

/// The input rule that lets a DHCPv6 client's answers in under policy drop.
const DHCPV6_REPLIES: &str =
    "ip6 saddr fe80::/10 udp sport 547 udp dport 546 accept comment \"DHCPv6 replies\"";

/// Whether an interface or bridge of the host takes its IPv6 address by
/// DHCPv6.
fn dhcpv6_client(host: &crate::model::Host) -> bool {
    let interfaces = host
        .interfaces
        .values()
        .map(|i| Method6::effective(i.method6, i.address6.as_deref()));
    let bridges = host
        .bridges
        .values()
        .map(|b| Method6::effective(b.method6, b.address6.as_deref()));
    interfaces.chain(bridges).any(|m| m == Some(Method6::Dhcp))
}

#[derive(Serialize)]
struct SetDef {
    name: String,
    /// `ipv4_addr` or `ipv6_addr`.
    kind: &'static str,
    elements: String,
}

/// The families of each address set a rule refers to, so that a rule on a
/// set becomes one rule per family the set has.
type SetFamilies = BTreeMap<String, Vec<Family>>;

/// The nftables name of one family's part of an address set.
fn set_name(name: &str, family: Family) -> String {
    match family {
        Family::V4 => format!("{name}.v4"),
        Family::V6 => format!("{name}.v6"),
    }
}

#[derive(Serialize)]
struct ChainDef {
    name: &'static str,
    hook: &'static str,
    policy: &'static str,
    rules: Vec<String>,
}

pub(super) fn render(ctx: &HostInput, out: &mut HostOutput) -> Result<(), RenderError> {
    let Some(fw) = &ctx.host.firewall else {
        return Ok(());
    };

    // Named sets used by this host's rules, DNATs and masquerades, in name
    // order.
    let rule_addresses = [&fw.input, &fw.forward, &fw.output]
        .into_iter()
        .flat_map(|c| c.rules.iter())
        .flat_map(|r| [&r.source, &r.destination]);
    let used: BTreeSet<&str> = rule_addresses
        .chain(fw.dnat.iter().map(|d| &d.source))
        .chain(fw.masquerade.iter().map(|m| &m.source))
        .filter_map(|a| a.as_deref()?.strip_prefix('@'))
        .collect();
    let mut sets = Vec::new();
    let mut families = SetFamilies::new();
    for name in used {
        let elements = ctx
            .address_sets
            .get(name)
            .ok_or_else(|| RenderError::Unchecked(format!("address set @{name} is not defined")))?;
        let mut has = Vec::new();
        for (family, kind) in [(Family::V4, "ipv4_addr"), (Family::V6, "ipv6_addr")] {
            let of_family: Vec<&str> = elements
                .iter()
                .filter(|e| Net::parse(e).map(Net::family) == Some(family))
                .map(String::as_str)
                .collect();
            if !of_family.is_empty() {
                sets.push(SetDef {
                    name: set_name(name, family),
                    kind,
                    elements: of_family.join(", "),
                });
                has.push(family);
            }
        }
        families.insert(name.to_string(), has);
    }
    let rules =
        |c: &Chain| -> Vec<String> { c.rules.iter().flat_map(|r| rule(r, &families)).collect() };

    // The WireGuard port of every mesh this host is a member of is admitted:
    // one fact drives ListenPort, the peers' Endpoint and this rule.
    let mut input = vec![
        "ct state established,related accept".to_string(),
        "ct state invalid drop".to_string(),
    ];
    // With policy drop, IPv6 stops working unless the ICMPv6 it runs on
    // is admitted: neighbour discovery (without it no address on the link
    // resolves), router advertisements (SLAAC and the default route) and
    // the errors path MTU discovery and diagnostics need. Errors about a
    // connection arrive as `related`; these may come unsolicited.
    if fw.input.policy == Policy::Drop {
        input.push(ICMPV6_NEEDED.to_string());
        // A DHCPv6 client asks a multicast group and is answered from the
        // server's link-local address: conntrack cannot tie the reply to
        // the request, so it would fall to the policy.
        if dhcpv6_client(ctx.host) {
            input.push(DHCPV6_REPLIES.to_string());
        }
    }
    // Before the site's rules, so that no rule of the site can drop the
    // tunnel (WireGuard authenticates every packet itself).
    for (mesh_name, mesh) in ctx.meshes {
        if let Some(member) = mesh.host_member(ctx.host_name) {
            let port = member.port.unwrap_or(mesh.port);
            input.push(format!(
                "udp dport {port} accept comment \"wireguard {mesh_name}\""
            ));
        }
    }
    input.extend(rules(&fw.input));
    let mut forward = vec!["ct state established,related accept".to_string()];
    if !fw.dnat.is_empty() {
        forward.push("ct status dnat accept comment \"port forwards\"".to_string());
    }
    forward.extend(rules(&fw.forward));
    let output = rules(&fw.output);
    let chains = vec![
        chain("input", "input", &fw.input, input),
        chain("forward", "forward", &fw.forward, forward),
        chain("output", "output", &fw.output, output),
    ];

    let prerouting: Vec<String> = fw
        .dnat
        .iter()
        .map(|d| {
            let mut parts = Vec::new();
            if let Some(i) = &d.iface {
                parts.push(format!("iifname \"{i}\""));
            }
            // In an inet table the statement names the family it rewrites;
            // a packet of the other family passes it by.
            let to: IpAddr =
                d.to.parse()
                    .map_err(|_| RenderError::Unchecked(format!("dnat: bad address {}", d.to)))?;
            if let Some(source) = &d.source {
                // `firewall::never-matches` makes sure the source has an
                // address of the target's family.
                let (family, operand) = operands(source, &families)
                    .into_iter()
                    .find(|(f, _)| *f == Family::of(to))
                    .ok_or_else(|| {
                        RenderError::Unchecked(format!("dnat to {}: no source of its family", d.to))
                    })?;
                parts.push(format!("{} saddr {operand}", family.nft()));
            }
            parts.push(format!("{} dport {}", d.proto.as_str(), d.port));
            parts.push(format!(
                "dnat {} to {}",
                Family::of(to).nft(),
                crate::net::socket(&d.to, d.to_port.unwrap_or(d.port))
            ));
            if let Some(c) = &d.comment {
                parts.push(format!("comment \"{c}\""));
            }
            Ok(parts.join(" "))
        })
        .collect::<Result<_, RenderError>>()?;
    let mut postrouting = Vec::new();
    for m in &fw.masquerade {
        for mut parts in address_matches(m.source.as_deref(), None, &families) {
            parts.push(format!("oifname \"{}\" masquerade", m.oiface));
            if let Some(c) = &m.comment {
                parts.push(format!("comment \"{c}\""));
            }
            postrouting.push(parts.join(" "));
        }
    }
    for (name, bridge) in &ctx.host.bridges {
        let Some(via) = &bridge.masquerade_via else {
            continue;
        };
        for addr in [&bridge.address, &bridge.address6].into_iter().flatten() {
            let net = Net::parse(addr)
                .ok_or_else(|| {
                    RenderError::Unchecked(format!("bridge {name}: bad address {addr}"))
                })?
                .network();
            postrouting.push(format!(
                "{} saddr {net} oifname \"{via}\" masquerade comment \"{name} via {via}\"",
                net.family().nft()
            ));
        }
    }

    let content = template(
        "nftables.conf",
        &serde_json::json!({
            "header": ctx.header(),
            "sets": sets,
            "chains": chains,
            "prerouting": prerouting,
            "postrouting": postrouting,
        }),
    )?;
    out.files.push(File {
        path: "etc/nftables.conf".into(),
        mode: 0o755,
        content,
        actions: vec![super::Action::NftLoad],
        validator: Some(Validator::Nft),
        network: true,
    });
    out.started_at_boot("nftables.service".into());
    Ok(())
}

fn chain(name: &'static str, hook: &'static str, c: &Chain, rules: Vec<String>) -> ChainDef {
    ChainDef {
        name,
        hook,
        policy: match c.policy {
            Policy::Accept => "accept",
            Policy::Drop => "drop",
        },
        rules,
    }
}

/// One rule as nftables statements: one per family its addresses have
/// (one when it has none).
fn rule(r: &Rule, sets: &SetFamilies) -> Vec<String> {
    address_matches(r.source.as_deref(), r.destination.as_deref(), sets)
        .into_iter()
        .map(|addresses| statement(r, addresses))
        .collect()
}

/// An address field's nftables operand for each family it has.
type Operands = Vec<(Family, String)>;

/// The operands of an address field: the address or network itself, or
/// the set's part of each family.
fn operands(address: &str, sets: &SetFamilies) -> Operands {
    match address.strip_prefix('@') {
        Some(set) => sets
            .get(set)
            .into_iter()
            .flatten()
            .map(|&f| (f, format!("@{}", set_name(set, f))))
            .collect(),
        None => Net::parse(address)
            .map(|n| (n.family(), address.to_string()))
            .into_iter()
            .collect(),
    }
}

/// The address matches (`ip saddr ...`, `ip6 daddr ...`) of a source and a
/// destination: one list per family both have, or one empty list when
/// neither is set. Families they do not share match nothing, and are left
/// out (`firewall::never-matches` reports a rule left with none).
fn address_matches(
    source: Option<&str>,
    destination: Option<&str>,
    sets: &SetFamilies,
) -> Vec<Vec<String>> {
    if source.is_none() && destination.is_none() {
        return vec![Vec::new()];
    }
    let fields = [(source, "saddr"), (destination, "daddr")];
    let fields: Vec<(Option<Operands>, &str)> = fields
        .iter()
        .map(|(a, dir)| (a.map(|a| operands(a, sets)), *dir))
        .collect();
    [Family::V4, Family::V6]
        .into_iter()
        .filter_map(|family| {
            let mut parts = Vec::new();
            for (ops, dir) in &fields {
                let Some(ops) = ops else { continue };
                let (_, operand) = ops.iter().find(|(f, _)| *f == family)?;
                parts.push(format!("{} {dir} {operand}", family.nft()));
            }
            Some(parts)
        })
        .collect()
}

/// One rule as one nftables statement, with its address matches.
fn statement(r: &Rule, addresses: Vec<String>) -> String {
    let mut parts = Vec::new();
    if let Some(i) = &r.iface {
        parts.push(format!("iifname \"{i}\""));
    }
    if let Some(o) = &r.oiface {
        parts.push(format!("oifname \"{o}\""));
    }
    parts.extend(addresses);
    let ports = match r.ports.as_slice() {
        [] => None,
        [p] => Some(p.to_string()),
        ps => Some(format!(
            "{{ {} }}",
            ps.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")
        )),
    };
    match (r.proto, ports) {
        (Proto::Tcp, Some(p)) => parts.push(format!("tcp dport {p}")),
        (Proto::Udp, Some(p)) => parts.push(format!("udp dport {p}")),
        (Proto::Tcp, None) => parts.push("meta l4proto tcp".into()),
        (Proto::Udp, None) => parts.push("meta l4proto udp".into()),
        (Proto::Icmp, _) => parts.push("meta l4proto icmp".into()),
        (Proto::Icmpv6, _) => parts.push("meta l4proto ipv6-icmp".into()),
        (Proto::Any, Some(p)) => parts.push(format!("meta l4proto {{ tcp, udp }} th dport {p}")),
        (Proto::Any, None) => {}
    }
    parts.push(
        match r.action {
            Action::Accept => "accept",
            Action::Drop => "drop",
            Action::Reject => "reject",
        }
        .into(),
    );
    if let Some(c) = &r.comment {
        parts.push(format!("comment \"{c}\""));
    }
    parts.join(" ")
}
