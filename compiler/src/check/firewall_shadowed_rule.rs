//! `firewall::shadowed-rule`
//!
//! What it catches: (a warning) a rule that matches nothing an earlier rule of
//! the same chain has not already matched.
//!
//! Why it matters: nftables stops at the first matching verdict, so the
//! later rule never decides anything. With the same action it is dead
//! weight that misleads the reader; with a different action it is a rule
//! the operator believes in that never applies.
//!
//! Example: `{ source = "@admin" }` followed by
//! `{ proto = 'tcp, ports = [8006], source = "@admin" }`.

use crate::diagnostic::Diagnostic;
use crate::model::{Action, Site};
use crate::path;
use crate::tree::FieldPath;

use super::facts::Matches;

pub(crate) const CODE: &str = "firewall::shadowed-rule";

fn verb(a: Action) -> &'static str {
    match a {
        Action::Accept => "accepts",
        Action::Drop => "drops",
        Action::Reject => "rejects",
    }
}

pub(crate) fn check(site: &Site, out: &mut Vec<Diagnostic>) {
    for (host_name, host) in &site.spec.hosts {
        let Some(fw) = &host.firewall else { continue };
        for (chain_name, chain) in fw.chains() {
            let matches: Vec<Option<Matches>> =
                chain.rules.iter().map(|r| Matches::of(site, r)).collect();
            for (j, later) in matches.iter().enumerate() {
                let Some(later) = later else { continue };
                let earlier = matches[..j]
                    .iter()
                    .position(|m| m.as_ref().is_some_and(|m| m.covers(later)));
                let Some(i) = earlier else { continue };
                let (first, rule) = (&chain.rules[i], &chain.rules[j]);
                let verdict = if first.action == rule.action {
                    "is redundant"
                } else {
                    "never applies"
                };
                let what = format!(
                    "rule {j} of `{host_name}`'s {chain_name} chain {verdict}: rule {i} already {} everything it matches",
                    verb(first.action)
                );
                out.push(
                    Diagnostic::warning(CODE, what)
                        .help(
                            "remove the rule, narrow the earlier one, or move this rule before it",
                        )
                        .at(site, &rule_path(host_name, chain_name, j), "shadowed")
                        .at(site, &rule_path(host_name, chain_name, i), "by this rule"),
                );
            }
        }
    }
}

/// Where rule `n` of a host's chain stands in the site.
fn rule_path(host: &str, chain: &str, n: usize) -> FieldPath {
    path!["hosts", host, "firewall", chain, "rules", n]
}
