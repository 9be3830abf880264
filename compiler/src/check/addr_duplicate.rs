//! `addr::duplicate`
//!
//! What it catches: one address (IPv4 or IPv6) assigned twice: on two hosts, on two
//! interfaces or bridges of one host, or as one host's tunnel address and
//! another's interface address; and a host whose `management_address` is an
//! address another host holds.
//!
//! Why it matters: duplicate addresses make ARP answer for whichever host is
//! fastest; connections flap, and `push` may deploy one host's bundle to the
//! other.
//!
//! Example: `pve1.bridges.vmbr0.address = "10.0.200.11/24"` and
//! `pve2.bridges.vmbr0.address = "10.0.200.11/24"`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::diagnostic::Diagnostic;
use crate::model::Site;
use crate::path;

use super::facts::{self, Path};

pub(crate) const CODE: &str = "addr::duplicate";

struct Holder {
    host: String,
    /// The interface, bridge or mesh; `None` for a management address.
    iface: Option<String>,
    path: Path,
}

pub(crate) fn check(site: &Site, out: &mut Vec<Diagnostic>) {
    let mut by_ip: BTreeMap<IpAddr, Vec<Holder>> = BTreeMap::new();
    for (host_name, host) in &site.spec.hosts {
        for a in facts::assigned(site, host_name, host) {
            by_ip.entry(a.net.addr).or_default().push(Holder {
                host: host_name.clone(),
                iface: Some(a.iface),
                path: a.path,
            });
        }
        if let Ok(ip) = host.management_address.parse() {
            by_ip.entry(ip).or_default().push(Holder {
                host: host_name.clone(),
                iface: None,
                path: path!["hosts", host_name, "management_address"],
            });
        }
    }
    for (ip, holders) in &by_ip {
        for (i, later) in holders.iter().enumerate() {
            let Some(first) = holders[..i].iter().find(|h| clash(h, later)) else {
                continue;
            };
            // Two tunnel addresses of one mesh are wg::duplicate-address.
            if first.iface == later.iface
                && site
                    .spec
                    .wireguard
                    .contains_key(first.iface.as_deref().unwrap_or(""))
            {
                continue;
            }
            let describe = |h: &Holder| match &h.iface {
                Some(i) => format!("{} of `{}`", i, h.host),
                None => format!("the management address of `{}`", h.host),
            };
            out.push(
                Diagnostic::error(
                    CODE,
                    format!(
                        "{ip} is assigned twice: to {} and to {}",
                        describe(first),
                        describe(later)
                    ),
                )
                .help("every address belongs to one interface of one host; pick an unused one")
                .at(site, &later.path, "assigned again here")
                .at(site, &first.path, "first assigned here"),
            );
        }
    }
}

/// Whether two holders of one address conflict. A host's management address
/// is meant to be one of its own addresses.
fn clash(a: &Holder, b: &Holder) -> bool {
    if a.host != b.host {
        return true;
    }
    a.iface.is_some() && b.iface.is_some()
}
