//! /etc/nftables.conf: the host firewall in two tables of its own
//! (`inet sitec` for filtering, `ip sitec_nat` for NAT), replaced atomically
//! and idempotently by one `nft -f` without touching other tools' tables.

use std::collections::BTreeSet;

use serde::Serialize;

use super::{File, HostInput, HostOutput, RenderError, Validator, template};
use crate::model::{Action, Chain, Policy, Proto, Rule};
use crate::net::Net;

/// The input rule that keeps IPv6 working under policy drop.
const ICMPV6_NEEDED: &str = "icmpv6 type { destination-unreachable, packet-too-big, time-exceeded, \
     parameter-problem, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } \
     accept comment \"what IPv6 needs\"";

#[derive(Serialize)]
struct SetDef {
    name: String,
    elements: String,
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

    // Named sets used by this host's rules, in name order.
    let used: BTreeSet<&str> = [&fw.input, &fw.forward, &fw.output]
        .iter()
        .flat_map(|c| c.rules.iter())
        .filter_map(|r| r.source.as_deref()?.strip_prefix('@'))
        .collect();
    let sets = used
        .into_iter()
        .map(|name| {
            let elements = ctx.address_sets.get(name).ok_or_else(|| {
                RenderError::Unchecked(format!("address set @{name} is not defined"))
            })?;
            Ok(SetDef {
                name: name.to_string(),
                elements: elements.join(", "),
            })
        })
        .collect::<Result<Vec<_>, RenderError>>()?;

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
    input.extend(fw.input.rules.iter().map(rule));
    let mut forward = vec!["ct state established,related accept".to_string()];
    if !fw.dnat.is_empty() {
        forward.push("ct status dnat accept comment \"port forwards\"".to_string());
    }
    forward.extend(fw.forward.rules.iter().map(rule));
    let output: Vec<String> = fw.output.rules.iter().map(rule).collect();
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
            parts.push(format!("{} dport {}", d.proto.as_str(), d.port));
            parts.push(format!("dnat to {}:{}", d.to, d.to_port.unwrap_or(d.port)));
            if let Some(c) = &d.comment {
                parts.push(format!("comment \"{c}\""));
            }
            parts.join(" ")
        })
        .collect();
    let mut postrouting = Vec::new();
    for (name, bridge) in &ctx.host.bridges {
        let (Some(via), Some(addr)) = (&bridge.masquerade_via, &bridge.address) else {
            continue;
        };
        let net = Net::parse(addr)
            .ok_or_else(|| RenderError::Unchecked(format!("bridge {name}: bad address {addr}")))?
            .network();
        postrouting.push(format!(
            "ip saddr {net} oifname \"{via}\" masquerade comment \"{name} via {via}\""
        ));
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

/// One rule as an nftables statement.
fn rule(r: &Rule) -> String {
    let mut parts = Vec::new();
    if let Some(i) = &r.iface {
        parts.push(format!("iifname \"{i}\""));
    }
    if let Some(s) = &r.source {
        parts.push(format!("ip saddr {s}"));
    }
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
