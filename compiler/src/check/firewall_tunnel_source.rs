//! `firewall::tunnel-source`
//!
//! What it catches: (a warning) a rule that matches both a WireGuard interface
//! (`iface = "wg0"`) and a `source`.
//!
//! Why it matters: the rule admits nothing until the tunnel is up and the
//! peer's traffic arrives through it. An admin network admitted only as
//! `iifname wg0 ip saddr @admin` locks the operator out whenever wg0 comes
//! up after the firewall, or not at all. Admit the
//! source on any interface, and trust the tunnel as a whole in a second rule.
//!
//! Example: `{ iface = "wg0", source = "@admin" }`.

use crate::diagnostic::Diagnostic;
use crate::model::Site;
use crate::path;

pub(crate) const CODE: &str = "firewall::tunnel-source";

pub(crate) fn check(site: &Site, out: &mut Vec<Diagnostic>) {
    for (host_name, host) in &site.spec.hosts {
        let Some(fw) = &host.firewall else { continue };
        for (chain_name, chain) in fw.chains() {
            for (i, rule) in chain.rules.iter().enumerate() {
                let (Some(iface), Some(source)) = (&rule.iface, &rule.source) else {
                    continue;
                };
                if !site.spec.wireguard.contains_key(iface) {
                    continue;
                }
                out.push(
                    Diagnostic::warning(
                        CODE,
                        format!("rule {i} of `{host_name}`'s {chain_name} chain admits {source} only through the tunnel {iface}"),
                    )
                    .help(format!("the rule races {iface} coming up and locks you out while the tunnel is down; admit `{source}` without `iface`, and the tunnel with a rule of its own: `{{ iface = \"{iface}\" }}`"))
                    .at(site, &path!["hosts", host_name, "firewall", chain_name, "rules", i, "iface"], "tunnel interface")
                    .at(site, &path!["hosts", host_name, "firewall", chain_name, "rules", i, "source"], "combined with a source"),
                );
            }
        }
    }
}
