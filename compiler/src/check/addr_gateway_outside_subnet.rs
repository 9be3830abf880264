//! `addr::gateway-outside-subnet`
//!
//! What it catches: an interface or bridge whose `gateway` is not inside the
//! subnet of its `address`, or that has a gateway but no address.
//!
//! Why it matters: the kernel refuses a default route through a gateway it
//! cannot reach on-link; `ifup` fails halfway and the host comes up without
//! a default route, often unreachable.
//!
//! Example: `address = "10.0.200.11/24"` with `gateway = "10.0.100.1"`.

use std::net::Ipv4Addr;

use crate::diagnostic::Diagnostic;
use crate::model::Site;
use crate::net::Net;
use crate::path;

pub(crate) const CODE: &str = "addr::gateway-outside-subnet";

pub(crate) fn check(site: &Site, out: &mut Vec<Diagnostic>) {
    for (host_name, host) in &site.spec.hosts {
        let ifaces = host
            .interfaces
            .iter()
            .map(|(n, i)| ("interfaces", n, &i.address, &i.gateway))
            .chain(
                host.bridges
                    .iter()
                    .map(|(n, b)| ("bridges", n, &b.address, &b.gateway)),
            );
        for (kind, name, address, gateway) in ifaces {
            let Some(gw) = gateway.as_deref().and_then(|g| g.parse::<Ipv4Addr>().ok()) else {
                continue;
            };
            let path = path!["hosts", host_name, kind, name];
            let d = match address.as_deref().and_then(Net::parse) {
                None => Diagnostic::error(CODE, format!("{name} of `{host_name}` has a gateway but no address"))
                    .help(format!("give {name} an `address` in the gateway's subnet, e.g. `address = \"{gw}/24\"` with your own host part"))
                    .at(site, &path.field("gateway"), "gateway without an address"),
                Some(net) if !net.contains(gw) => Diagnostic::error(
                    CODE,
                    format!("gateway {gw} of {name} on `{host_name}` is outside its subnet {}", net.network()),
                )
                .help(format!("use a gateway inside {}, or fix the prefix length of the address", net.network()))
                .at(site, &path.field("gateway"), "not reachable on-link")
                .at(site, &path.field("address"), "the subnet"),
                Some(_) => continue,
            };
            out.push(d);
        }
    }
}
