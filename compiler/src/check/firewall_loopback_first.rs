//! `firewall::loopback-first`
//!
//! What it catches: an input chain with policy drop whose first rule is not
//! a plain loopback accept (`{ iface = "lo" }`, no source, any protocol).
//!
//! Why it matters: local services talk over `lo` (Proxmox's cluster
//! filesystem, pveproxy to pvedaemon, databases on 127.0.0.1). A drop policy
//! without an early loopback accept takes the Proxmox cluster services down
//! along with the operator's access, often hours later, when connections
//! that stateful tracking kept alive are re-established.
//!
//! Example: `input.rules = [{ proto = 'tcp, ports = [22] }]` with the default drop policy.

use crate::diagnostic::Diagnostic;
use crate::model::{Action, Policy, Proto, Rule, Site};
use crate::path;

pub(crate) const CODE: &str = "firewall::loopback-first";

fn is_loopback_accept(r: &Rule) -> bool {
    r.iface.as_deref() == Some("lo")
        && r.source.is_none()
        && r.proto == Proto::Any
        && r.ports.is_empty()
        && r.action == Action::Accept
}

pub(crate) fn check(site: &Site, out: &mut Vec<Diagnostic>) {
    for (host_name, host) in &site.spec.hosts {
        let Some(fw) = &host.firewall else { continue };
        if fw.input.policy != Policy::Drop || fw.input.rules.first().is_some_and(is_loopback_accept)
        {
            continue;
        }
        let d = Diagnostic::error(
            CODE,
            format!("the input chain of `{host_name}` drops by default but does not accept loopback traffic first"),
        )
        .help("make this the first input rule: `{ iface = \"lo\", comment = \"loopback first\" }`");
        out.push(if fw.input.rules.is_empty() {
            d.at(
                site,
                &path!["hosts", host_name, "firewall", "input"],
                "no rules, policy drop",
            )
        } else {
            d.at(
                site,
                &path!["hosts", host_name, "firewall", "input", "rules", 0usize],
                "first rule is not `iface = \"lo\"`",
            )
        });
    }
}
