//! `firewall::duplicate-port`
//!
//! What it catches: a port listed twice in one firewall rule's `ports`.
//!
//! Why it matters: the rule matches the same either way, so the repeat is
//! almost always a slip for another port, one that is now not admitted
//! (or not dropped).
//!
//! Example: `{ proto = 'tcp, ports = [8006, 8006] }` where `[8006, 3128]`
//! was meant.

use crate::diagnostic::Diagnostic;
use crate::model::Site;
use crate::path;

pub(crate) const CODE: &str = "firewall::duplicate-port";

pub(crate) fn check(site: &Site, out: &mut Vec<Diagnostic>) {
    for (host_name, host) in &site.spec.hosts {
        let Some(fw) = &host.firewall else { continue };
        for (chain_name, chain) in fw.chains() {
            for (i, rule) in chain.rules.iter().enumerate() {
                let at = path![
                    "hosts", host_name, "firewall", chain_name, "rules", i, "ports"
                ];
                for (j, port) in rule.ports.iter().enumerate() {
                    let Some(first) = rule.ports[..j].iter().position(|p| p == port) else {
                        continue;
                    };
                    out.push(
                        Diagnostic::error(
                            CODE,
                            format!("rule {i} of `{host_name}`'s {chain_name} chain lists port {port} twice"),
                        )
                        .help("remove the repeat, or write the port that was meant")
                        .at(site, &at.join(&path![j]), "again here")
                        .at(site, &at.join(&path![first]), "first here"),
                    );
                }
            }
        }
    }
}
