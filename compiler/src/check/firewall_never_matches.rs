//! `firewall::never-matches`
//!
//! What it catches: a firewall rule, DNAT or masquerade that can match no
//! packet: a `source` and `destination` with no address family in common;
//! `proto = 'icmp` (IPv4's) with IPv6 addresses only, or `'icmpv6` with
//! IPv4 ones only; an `oiface` in the input chain or an `iface` in the
//! output chain (traffic to this host has no output interface yet, traffic
//! from it no input one); a DNAT whose `source` has no address of its
//! target's family; an address field naming an empty set.
//!
//! Why it matters: nftables loads such a rule and it never fires. An
//! accept that never fires leaves a service unreachable, a drop that never
//! fires leaves it open, and nothing says so.
//!
//! Example: `{ source = "10.0.200.0/24", destination = "fd00:101::/64" }`,
//! or `{ proto = 'icmp, source = "2001:db8::/32" }`.

use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::diagnostic::Diagnostic;
use crate::model::{Proto, Site};
use crate::net::Family;
use crate::path;
use crate::tree::FieldPath;

use super::facts;

pub(crate) const CODE: &str = "firewall::never-matches";

type Families = BTreeSet<Family>;

/// The families an address field has; `None` for no field or an unknown
/// set (which `firewall::unknown-set` reports).
fn families(site: &Site, address: Option<&str>) -> Option<Families> {
    let nets = facts::networks(site, address?)?;
    Some(nets.iter().map(|n| n.family()).collect())
}

fn names(families: &Families) -> String {
    let names: Vec<&str> = families.iter().map(|f| f.name()).collect();
    if names.is_empty() {
        "no address at all (an empty set)".into()
    } else {
        format!("{} addresses only", names.join(" and "))
    }
}

pub(crate) fn check(site: &Site, out: &mut Vec<Diagnostic>) {
    for (host_name, host) in &site.spec.hosts {
        let Some(fw) = &host.firewall else { continue };
        let at = |rest: FieldPath| path!["hosts", host_name, "firewall"].join(&rest);
        for (chain_name, chain) in fw.chains() {
            for (i, rule) in chain.rules.iter().enumerate() {
                let rule_at = at(path![chain_name, "rules", i]);
                let why = match (chain_name, &rule.iface, &rule.oiface) {
                    ("input", _, Some(_)) => {
                        Some(("oiface", "traffic to this host has no output interface yet"))
                    }
                    ("output", Some(_), _) => {
                        Some(("iface", "traffic from this host has no input interface"))
                    }
                    _ => None,
                };
                if let Some((field, why)) = why {
                    out.push(
                        Diagnostic::error(CODE, format!("rule {i} of `{host_name}`'s {chain_name} chain never matches: {why}"))
                            .help(format!("remove `{field}`, or move the rule to the chain it belongs in (`forward` for traffic routed through the host)"))
                            .at(site, &rule_at.field(field), "never set in this chain"),
                    );
                }
                let source = families(site, rule.source.as_deref());
                let destination = families(site, rule.destination.as_deref());
                let shared = match (&source, &destination) {
                    (Some(s), Some(d)) => {
                        let shared: Families = s.intersection(d).copied().collect();
                        if shared.is_empty() {
                            out.push(
                                Diagnostic::error(CODE, format!("rule {i} of `{host_name}`'s {chain_name} chain never matches: its source has {}, its destination {}", names(s), names(d)))
                                    .help("a packet's source and destination are of one family: give both addresses of the same family, or split the rule in two")
                                    .at(site, &rule_at.field("source"), "source")
                                    .at(site, &rule_at.field("destination"), "destination"),
                            );
                            continue;
                        }
                        Some(shared)
                    }
                    (Some(f), None) | (None, Some(f)) => Some(f.clone()),
                    (None, None) => None,
                };
                let Some(shared) = shared else { continue };
                let field = if rule.source.is_some() {
                    "source"
                } else {
                    "destination"
                };
                let proto_family = match rule.proto {
                    Proto::Icmp => Some((Family::V4, "'icmp", "'icmpv6")),
                    Proto::Icmpv6 => Some((Family::V6, "'icmpv6", "'icmp")),
                    _ => None,
                };
                let d = match proto_family {
                    _ if shared.is_empty() => Diagnostic::error(CODE, format!("rule {i} of `{host_name}`'s {chain_name} chain never matches: its {field} names an empty set"))
                        .help("add the set's networks, or remove the rule")
                        .at(site, &rule_at.field(field), "no address"),
                    Some((family, proto, other)) if !shared.contains(&family) => Diagnostic::error(
                        CODE,
                        format!("rule {i} of `{host_name}`'s {chain_name} chain never matches: {proto} is {} and its addresses are not", family.name()),
                    )
                    .help(format!("use `proto = {other}` for the other family, or {} addresses", family.name()))
                    .at(site, &rule_at.field("proto"), "this protocol")
                    .at(site, &rule_at.field(field), "these addresses"),
                    _ => continue,
                };
                out.push(d);
            }
        }
        for (i, d) in fw.dnat.iter().enumerate() {
            let (Ok(to), Some(source)) =
                (d.to.parse::<IpAddr>(), families(site, d.source.as_deref()))
            else {
                continue;
            };
            let family = Family::of(to);
            if source.contains(&family) {
                continue;
            }
            out.push(
                Diagnostic::error(CODE, format!("the DNAT of {} port {} on `{host_name}` to {to} never matches: its source has {}", d.proto.as_str(), d.port, names(&source)))
                    .help(format!("a DNAT rewrites packets of its target's family: give `source` {} addresses, or forward the other family to a target of its own", family.name()))
                    .at(site, &at(path!["dnat", i, "source"]), "the source")
                    .at(site, &at(path!["dnat", i, "to"]), "the target"),
            );
        }
        for (i, m) in fw.masquerade.iter().enumerate() {
            if families(site, m.source.as_deref()).is_some_and(|f| f.is_empty()) {
                out.push(
                    Diagnostic::error(CODE, format!("the masquerade through {} on `{host_name}` never matches: its source names an empty set", m.oiface))
                        .help("add the set's networks, or remove the masquerade")
                        .at(site, &at(path!["masquerade", i, "source"]), "no address"),
                );
            }
        }
    }
}
