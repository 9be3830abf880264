//! `addr::gateway-outside-subnet`
//!
//! What it catches: an interface or bridge whose `gateway` is not inside the
//! subnet of its `address` (or `gateway6` of its `address6`; an IPv6
//! link-local gateway is on-link anyway), or that has a gateway but no
//! address of its family.
//!
//! Why it matters: the kernel refuses a default route through a gateway it
//! cannot reach on-link; `ifup` fails halfway and the host comes up without
//! a default route, often unreachable.
//!
//! Example: `address = "10.0.200.11/24"` with `gateway = "10.0.100.1"`, or
//! `address6 = "2001:db8:1::11/64"` with `gateway6 = "2001:db8:2::1"`.

use std::net::IpAddr;

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
            .map(|(n, i)| {
                (
                    "interfaces",
                    n,
                    [(&i.address, &i.gateway), (&i.address6, &i.gateway6)],
                )
            })
            .chain(host.bridges.iter().map(|(n, b)| {
                (
                    "bridges",
                    n,
                    [(&b.address, &b.gateway), (&b.address6, &b.gateway6)],
                )
            }));
        for (kind, name, families) in ifaces {
            for ((address, gateway), suffix) in families.into_iter().zip(["", "6"]) {
                let Some(gw) = gateway.as_deref().and_then(|g| g.parse::<IpAddr>().ok()) else {
                    continue;
                };
                let path = path!["hosts", host_name, kind, name];
                let (address_field, gateway_field) =
                    (format!("address{suffix}"), format!("gateway{suffix}"));
                let d = match address.as_deref().and_then(Net::parse) {
                    None => Diagnostic::error(CODE, format!("{name} of `{host_name}` has a gateway but no address"))
                        .help(format!("give {name} an `{address_field}` in the gateway's subnet, e.g. `{address_field} = \"{gw}/{}\"` with your own host part", if suffix.is_empty() { 24 } else { 64 }))
                        .at(site, &path.field(&gateway_field), "gateway without an address"),
                    // An IPv6 router is usually named by its link-local
                    // address, which is on-link whatever the subnet.
                    Some(net) if !net.contains(gw) && !Net::is_link_local(gw) => Diagnostic::error(
                        CODE,
                        format!("gateway {gw} of {name} on `{host_name}` is outside its subnet {}", net.network()),
                    )
                    .help(format!(
                        "use a gateway inside {}{}, or fix the prefix length of the address",
                        net.network(),
                        if suffix.is_empty() { "" } else { " or a link-local one (fe80::/10)" }
                    ))
                    .at(site, &path.field(&gateway_field), "not reachable on-link")
                    .at(site, &path.field(&address_field), "the subnet"),
                    _ => continue,
                };
                out.push(d);
            }
        }
    }
}
