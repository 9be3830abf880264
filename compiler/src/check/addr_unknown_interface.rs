//! `addr::unknown-interface`
//!
//! What it catches: a bridge port that is not one of the host's
//! `interfaces`, or a `masquerade_via` that names no interface, bridge or
//! mesh of the host.
//!
//! Why it matters: `ifup` fails on a bridge whose port does not exist, and a
//! masquerade rule for a missing interface never matches, so the VM network
//! silently has no internet.
//!
//! Example: `bridges.vmbr0.ports = ["eno2"]` when the host only declares `interfaces.eno1`.

use crate::diagnostic::Diagnostic;
use crate::model::Site;
use crate::path;

pub(crate) const CODE: &str = "addr::unknown-interface";

pub(crate) fn check(site: &Site, out: &mut Vec<Diagnostic>) {
    for (host_name, host) in &site.spec.hosts {
        let known: Vec<&str> = host
            .interfaces
            .keys()
            .chain(host.bridges.keys())
            .map(String::as_str)
            .collect();
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
            let mesh = site
                .spec
                .wireguard
                .get(via)
                .is_some_and(|m| m.members.contains_key(host_name));
            if known.contains(&via.as_str()) || mesh {
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
