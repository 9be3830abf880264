//! `firewall::forwarding-off`
//!
//! What it catches: a host with a DNAT, a masquerade (its own or a bridge's
//! `masquerade_via`) or forward-chain rules for a family whose forwarding
//! its `sysctl` does not turn on: `net.ipv4.ip_forward = 1` for IPv4,
//! `net.ipv6.conf.all.forwarding = 1` for IPv6. A rule or masquerade
//! without addresses needs one of the two.
//!
//! Why it matters: without forwarding the kernel routes nothing through
//! the host: the forwarded port, the NAT'd VM network and the forward rules
//! load and do nothing, and every VM behind the host is offline.
//!
//! Example: `dnat = [{ proto = 'tcp, port = 80, to = "10.20.0.10" }]` on a
//! host whose `sysctl` has no `net.ipv4.ip_forward`.

use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::diagnostic::Diagnostic;
use crate::model::{Host, Site};
use crate::net::{Family, Net};
use crate::path;
use crate::tree::FieldPath;

use super::facts;

pub(crate) const CODE: &str = "firewall::forwarding-off";

/// Something that needs forwarding: of one family, or of either (`None`).
struct Need {
    family: Option<Family>,
    what: String,
    path: FieldPath,
}

fn sysctl_key(family: Family) -> &'static str {
    match family {
        Family::V4 => "net.ipv4.ip_forward",
        Family::V6 => "net.ipv6.conf.all.forwarding",
    }
}

/// Whether the host's sysctl turns forwarding of the family on.
fn forwards(host: &Host, family: Family) -> bool {
    let keys: &[&str] = match family {
        Family::V4 => &["net.ipv4.ip_forward", "net.ipv4.conf.all.forwarding"],
        Family::V6 => &["net.ipv6.conf.all.forwarding"],
    };
    keys.iter().any(|k| match host.sysctl.get(*k) {
        Some(serde_json::Value::Number(n)) => n.as_u64() == Some(1),
        Some(serde_json::Value::String(s)) => s == "1",
        _ => false,
    })
}

/// One need per family the address field has; one of either family when
/// there is no field.
fn by_address(site: &Site, address: Option<&str>, what: String, path: FieldPath) -> Vec<Need> {
    let families: BTreeSet<Family> = match address.and_then(|a| facts::networks(site, a)) {
        Some(nets) => nets.iter().map(|n| n.family()).collect(),
        None => {
            return vec![Need {
                family: None,
                what,
                path,
            }];
        }
    };
    families
        .into_iter()
        .map(|f| Need {
            family: Some(f),
            what: what.clone(),
            path: path.clone(),
        })
        .collect()
}

fn needs(site: &Site, host_name: &str, host: &Host) -> Vec<Need> {
    let mut needs = Vec::new();
    let at = |rest: FieldPath| path!["hosts", host_name].join(&rest);
    if let Some(fw) = &host.firewall {
        for (i, d) in fw.dnat.iter().enumerate() {
            needs.push(Need {
                family: d.to.parse::<IpAddr>().ok().map(Family::of),
                what: format!("a DNAT of {} port {}", d.proto.as_str(), d.port),
                path: at(path!["firewall", "dnat", i]),
            });
        }
        for (i, m) in fw.masquerade.iter().enumerate() {
            needs.extend(by_address(
                site,
                m.source.as_deref(),
                format!("a masquerade through {}", m.oiface),
                at(path!["firewall", "masquerade", i]),
            ));
        }
        for (i, r) in fw.forward.rules.iter().enumerate() {
            let address = r.source.as_deref().or(r.destination.as_deref());
            needs.extend(by_address(
                site,
                address,
                format!("forward rule {i}"),
                at(path!["firewall", "forward", "rules", i]),
            ));
        }
    }
    for (name, b) in &host.bridges {
        if b.masquerade_via.is_none() {
            continue;
        }
        for address in [&b.address, &b.address6].into_iter().flatten() {
            needs.push(Need {
                family: Net::parse(address).map(Net::family),
                what: format!("the masquerade of bridge {name}"),
                path: at(path!["bridges", name, "masquerade_via"]),
            });
        }
    }
    needs
}

pub(crate) fn check(site: &Site, out: &mut Vec<Diagnostic>) {
    for (host_name, host) in &site.spec.hosts {
        let needs = needs(site, host_name, host);
        let on = |f: Family| forwards(host, f);
        for family in [Family::V4, Family::V6] {
            let unmet: Vec<&Need> = needs
                .iter()
                .filter(|n| n.family == Some(family) && !on(family))
                .collect();
            if let Some(first) = unmet.first() {
                out.push(report(site, host_name, Some(family), first, unmet.len()));
            }
        }
        // Needs of either family are met by either sysctl.
        let either: Vec<&Need> = needs
            .iter()
            .filter(|n| n.family.is_none() && !on(Family::V4) && !on(Family::V6))
            .collect();
        if let Some(first) = either.first() {
            out.push(report(site, host_name, None, first, either.len()));
        }
    }
}

fn report(
    site: &Site,
    host_name: &str,
    family: Option<Family>,
    first: &Need,
    count: usize,
) -> Diagnostic {
    let more = match count {
        1 => String::new(),
        n => format!(" (and {} more)", n - 1),
    };
    let (traffic, help) = match family {
        Some(f) => (
            format!("{} traffic", f.name()),
            format!("add `\"{}\" = 1` to the host's `sysctl`", sysctl_key(f)),
        ),
        None => (
            "traffic".to_string(),
            format!(
                "add `\"{}\" = 1` (and for IPv6 `\"{}\" = 1`) to the host's `sysctl`",
                sysctl_key(Family::V4),
                sysctl_key(Family::V6)
            ),
        ),
    };
    Diagnostic::error(
        CODE,
        format!(
            "`{host_name}` routes {traffic} for {}{more}, but its `sysctl` does not turn on forwarding",
            first.what
        ),
    )
    .help(help)
    .at(site, &first.path, "needs forwarding")
    .at(site, &path!["hosts", host_name, "sysctl"], "no forwarding here")
}
