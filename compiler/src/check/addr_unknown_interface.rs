//! `addr::unknown-interface`
//!
//! What it catches: a bridge port that is not one of the host's
//! `interfaces`; a `masquerade_via`, or an interface of a firewall rule
//! (`iface`, `oiface`), DNAT (`iface`) or masquerade (`oiface`), that names
//! no interface, bridge or mesh of the host. The firewall may also name
//! `lo`, and `docker0` on a host that runs containers on Docker's bridge.
//!
//! Why it matters: `ifup` fails on a bridge whose port does not exist, and
//! nftables matches an interface by name: a rule for a missing one loads,
//! never matches, and says nothing. A masquerade through it leaves the VM
//! network without internet; a typo in a drop rule leaves the traffic it
//! was meant to stop flowing.
//!
//! Example: `bridges.vmbr0.ports = ["eno2"]` when the host only declares
//! `interfaces.eno1`, or `{ iface = "vmrb1", action = 'drop }`.

use crate::diagnostic::Diagnostic;
use crate::model::{DockerNetwork, Firewall, Host, Site};
use crate::path;
use crate::tree::FieldPath;

pub(crate) const CODE: &str = "addr::unknown-interface";

pub(crate) fn check(site: &Site, out: &mut Vec<Diagnostic>) {
    for (host_name, host) in &site.spec.hosts {
        let meshes = site
            .spec
            .wireguard
            .iter()
            .filter(|(_, m)| m.host_member(host_name).is_some())
            .map(|(name, _)| name);
        let known: Vec<&str> = host
            .interfaces
            .keys()
            .chain(host.bridges.keys())
            .chain(meshes)
            .map(String::as_str)
            .collect();
        if let Some(fw) = &host.firewall {
            firewall(site, host_name, host, fw, &known, out);
        }
        for (bridge_name, bridge) in &host.bridges {
            for (i, port) in bridge.ports.iter().enumerate() {
                if host.interfaces.contains_key(port) {
                    continue;
                }
                out.push(
                    Diagnostic::error(CODE, format!("bridge {bridge_name} of `{host_name}` has port {port}, which is not one of its interfaces"))
                        .help(format!("declare `interfaces.{port} = {{}}` on the host, or fix the port's name"))
                        .at(site, &path!["hosts", host_name, "bridges", bridge_name, "ports", i], "no such interface"),
                );
            }
            let Some(via) = &bridge.masquerade_via else {
                continue;
            };
            if known.contains(&via.as_str()) {
                continue;
            }
            out.push(
                Diagnostic::error(CODE, format!("bridge {bridge_name} of `{host_name}` is masqueraded via {via}, which the host does not have"))
                    .help(format!("name one of the host's interfaces or bridges: {}", known.join(", ")))
                    .at(site, &path!["hosts", host_name, "bridges", bridge_name, "masquerade_via"], "no such interface"),
            );
        }
    }
}

/// The interfaces the firewall names, against the host's own, `lo` and
/// Docker's bridge where containers use it.
fn firewall(
    site: &Site,
    host_name: &str,
    host: &Host,
    fw: &Firewall,
    known: &[&str],
    out: &mut Vec<Diagnostic>,
) {
    let docker = host.units.services.values().any(|s| {
        s.container
            .as_ref()
            .is_some_and(|c| c.network == DockerNetwork::Bridge)
    });
    let at = |rest: FieldPath| path!["hosts", host_name, "firewall"].join(&rest);
    let mut named: Vec<(FieldPath, &str)> = Vec::new();
    for (chain_name, chain) in fw.chains() {
        for (i, r) in chain.rules.iter().enumerate() {
            for (field, value) in [("iface", &r.iface), ("oiface", &r.oiface)] {
                if let Some(v) = value {
                    named.push((at(path![chain_name, "rules", i, field]), v));
                }
            }
        }
    }
    for (i, d) in fw.dnat.iter().enumerate() {
        if let Some(v) = &d.iface {
            named.push((at(path!["dnat", i, "iface"]), v));
        }
    }
    for (i, m) in fw.masquerade.iter().enumerate() {
        named.push((at(path!["masquerade", i, "oiface"]), &m.oiface));
    }
    for (path, name) in named {
        if name == "lo" || (docker && name == "docker0") || known.contains(&name) {
            continue;
        }
        out.push(
            Diagnostic::error(
                CODE,
                format!("the firewall of `{host_name}` names interface {name}, which the host does not have"),
            )
            .help(format!(
                "name one of the host's interfaces, bridges or meshes: {}",
                std::iter::once("lo").chain(known.iter().copied()).collect::<Vec<_>>().join(", ")
            ))
            .at(site, &path, "no such interface"),
        );
    }
}
