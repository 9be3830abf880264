//! `firewall::lockout`
//!
//! What it catches: an input chain with policy drop in which no rule admits
//! ssh (the host's `deploy.port`, tcp) from every network of the site's
//! `admin` address set to the deploy address (the networks of the deploy
//! address's family; there must be one), or in which an earlier rule
//! drops or rejects it. A rule bound to an interface counts only if that
//! interface holds the deploy address.
//!
//! Why it matters: this ruleset would lock the operator out the moment it is
//! loaded: `push` could not confirm the switch, and without the automatic
//! rollback someone would have to walk to the console.
//! The admin networks are `address_sets.admin`; define them so sitec can
//! check that they stay admitted. `ssh::lockout` checks the other half of
//! the way in: that sshd listens on that port and address and lets the
//! deploy user in.
//!
//! Example: `input.rules = [{ iface = "lo" }, { iface = "wg0", source = "@admin" }]`.

use std::net::IpAddr;

use crate::diagnostic::Diagnostic;
use crate::model::{Action, Policy, Rule, Site};
use crate::net::{Family, Net};
use crate::path;

use super::facts::{self, L4Matches, Matches, Ports};

pub(crate) const CODE: &str = "firewall::lockout";

pub(crate) fn check(site: &Site, out: &mut Vec<Diagnostic>) {
    for (host_name, host) in &site.spec.hosts {
        let Some(fw) = &host.firewall else { continue };
        if fw.input.policy != Policy::Drop {
            continue;
        }
        let port = host.deploy.port;
        let deploy = host.deploy_address();
        let suggestion = format!(
            "{{ proto = 'tcp, ports = [{port}], source = \"@admin\", comment = \"ssh from the admin network\" }}"
        );
        let Some(admin) = site.spec.address_sets.get("admin") else {
            out.push(
                Diagnostic::error(CODE, format!("this ruleset would lock you out: `{host_name}` drops input, and the site has no `admin` address set saying where you deploy from"))
                    .help(format!("define `address_sets.admin = [\"<your admin network>\"]` and admit it: `{suggestion}`"))
                    .at(site, &path!["hosts", host_name, "firewall", "input"], "policy drop"),
            );
            continue;
        };
        let Ok(deploy_ip) = deploy.parse::<IpAddr>() else {
            continue;
        };
        let family = Family::of(deploy_ip);
        let iface = facts::iface_holding(site, host_name, host, deploy_ip);
        // ssh reaches the deploy address from admin networks of its family.
        let admin: Vec<Net> = admin
            .iter()
            .filter_map(|n| Net::parse(n).map(Net::network))
            .filter(|n| n.family() == family)
            .collect();
        if admin.is_empty() {
            out.push(
                Diagnostic::error(CODE, format!("this ruleset would lock you out: `{host_name}` is deployed to over {} ({deploy}), and the `admin` address set has no {} network to admit ssh from", family.name(), family.name()))
                    .help(format!("add the {} network you deploy from to `address_sets.admin`, and admit it: `{suggestion}`", family.name()))
                    .at(site, &path!["address_sets", "admin"], "the admin networks")
                    .at(site, &path!["hosts", host_name, "firewall", "input"], "policy drop"),
            );
            continue;
        }
        for net in admin {
            let ssh = Matches {
                iface: iface.clone(),
                oiface: None,
                sources: Some(vec![net]),
                destinations: Some(vec![Net::host(deploy_ip)]),
                l4: Some(L4Matches {
                    tcp: Ports::These(vec![port]),
                    ..L4Matches::default()
                }),
            };
            let verdict = fw
                .input
                .rules
                .iter()
                .enumerate()
                .find(|(_, r)| Matches::of(site, r).is_some_and(|m| m.covers(&ssh)));
            let d = match verdict {
                Some((_, r)) if r.action == Action::Accept => continue,
                Some((i, r)) => Diagnostic::error(
                    CODE,
                    format!("this ruleset would lock you out: rule {i} of `{host_name}` {} ssh from the admin network {net}", verb(r)),
                )
                .help(format!("admit ssh before it: `{suggestion}`"))
                .at(site, &path!["hosts", host_name, "firewall", "input", "rules", i], "blocks ssh from the admin network"),
                None => Diagnostic::error(
                    CODE,
                    format!("this ruleset would lock you out: no rule of `{host_name}` admits ssh (tcp {port}) from the admin network {net} to {deploy}"),
                )
                .help(format!("add this input rule: `{suggestion}`"))
                .at(site, &path!["hosts", host_name, "firewall", "input"], "policy drop, and ssh from @admin is not admitted"),
            };
            out.push(d);
        }
    }
}

fn verb(r: &Rule) -> &'static str {
    if r.action == Action::Reject {
        "rejects"
    } else {
        "drops"
    }
}
