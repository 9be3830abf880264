//! `ssh::lockout`
//!
//! What it catches: an `ssh` block under which the deploy could not log in:
//! sshd does not listen on the host's `deploy.port`, or listens only on
//! addresses other than the deploy address, root may not log in while
//! `deploy.user` is root, `allow_users` leaves the deploy user out, or the
//! home directories' keys no longer count (`home_keys = false`) and
//! `authorized_keys` has no key for the deploy user.
//!
//! Why it matters: `push` logs in as the deploy user at the deploy address
//! and port to switch, and again to confirm. Under such a drop-in the
//! switch could not be confirmed: the host would roll it back by itself,
//! and no later bundle could reach it either until it did.
//!
//! Example: `ssh.ports = [2222]` on a host whose `deploy.port` is the
//! default 22.

use std::net::IpAddr;

use crate::diagnostic::Diagnostic;
use crate::model::{RootLogin, Site};
use crate::path;

pub(crate) const CODE: &str = "ssh::lockout";

pub(crate) fn check(site: &Site, out: &mut Vec<Diagnostic>) {
    for (host_name, host) in &site.spec.hosts {
        let Some(ssh) = &host.ssh else { continue };
        let deploy = &host.deploy;
        let at = |field: &'static str| path!["hosts", host_name, "ssh", field];
        if !ssh.ports.contains(&deploy.port) {
            out.push(
                Diagnostic::error(CODE, format!("this ssh drop-in would lock you out: sshd on `{host_name}` would not listen on port {}, where push logs in", deploy.port))
                    .help(format!("add {} to `ssh.ports`, or set `deploy.port` to one of them", deploy.port))
                    .at(site, &at("ports"), "the ports sshd listens on"),
            );
        }
        let address = host.deploy_address();
        if !ssh.listen_addresses.is_empty() && !listens_on(&ssh.listen_addresses, address) {
            out.push(
                Diagnostic::error(CODE, format!("this ssh drop-in would lock you out: sshd on `{host_name}` would not listen on {address}, where push logs in"))
                    .help(format!("add \"{address}\" to `ssh.listen_addresses`, or leave them empty to listen on every address"))
                    .at(site, &at("listen_addresses"), "the addresses sshd listens on"),
            );
        }
        if deploy.user == "root" && ssh.root_login == RootLogin::No {
            out.push(
                Diagnostic::error(CODE, format!("this ssh drop-in would lock you out: push logs in to `{host_name}` as root, which `root_login = 'no` refuses"))
                    .help("keep `root_login = 'keys_only`, or deploy as another user (`deploy.user`)")
                    .at(site, &at("root_login"), "root may not log in"),
            );
        }
        if let Some(users) = &ssh.allow_users
            && !users.contains(&deploy.user)
        {
            out.push(
                Diagnostic::error(CODE, format!("this ssh drop-in would lock you out: `allow_users` of `{host_name}` leaves out `{}`, the user push logs in as", deploy.user))
                    .help(format!("add \"{}\" to `ssh.allow_users`", deploy.user))
                    .at(site, &at("allow_users"), "the only users who may log in"),
            );
        }
        let has_key = ssh
            .authorized_keys
            .get(&deploy.user)
            .is_some_and(|keys| !keys.is_empty());
        if !ssh.home_keys && !has_key {
            out.push(
                Diagnostic::error(CODE, format!("this ssh drop-in would lock you out: with `home_keys = false`, only `authorized_keys` log in to `{host_name}`, and it has no key for `{}`, the user push logs in as", deploy.user))
                    .help(format!("add the deploy key: `authorized_keys.{} = [\"ssh-ed25519 AAAA... you@laptop\"]`", deploy.user))
                    .at(site, &at("home_keys"), "home directories' keys no longer count"),
            );
        }
    }
}

/// Whether sshd listening on `addresses` accepts connections to `address`:
/// it is one of them, or the wildcard of its family is.
fn listens_on(addresses: &[String], address: &str) -> bool {
    let Ok(ip) = address.parse::<IpAddr>() else {
        return true;
    };
    addresses
        .iter()
        .filter_map(|a| a.parse::<IpAddr>().ok())
        .any(|a| a == ip || (a.is_unspecified() && a.is_ipv4() == ip.is_ipv4()))
}
