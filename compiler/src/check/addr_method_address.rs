//! `addr::method-address`
//!
//! What it catches: an interface or bridge whose address method and address
//! disagree: `method = 'static` without an `address`; an `address` or
//! `gateway` on an interface whose method (`'manual`, the default, or
//! `'dhcp`) does not use it; `method6 = 'static` without an `address6`; an
//! `address6` or `gateway6` with `method6 = 'auto` or `'dhcp`.
//!
//! Why it matters: ifupdown does what the method says and ignores the
//! address silently: the host comes up without the address the site gave
//! it (and every check that reasoned about that address was wrong), or
//! `ifup` fails for the missing one halfway through bringing the network up.
//!
//! Example: `interfaces.eno1 = { address = "10.0.200.11/24" }` (the method
//! is `'manual` unless set), or `{ method6 = 'auto, address6 = "2001:db8::11/64" }`.

use crate::diagnostic::Diagnostic;
use crate::model::{Method, Method6, Site};
use crate::path;
use crate::tree::FieldPath;

pub(crate) const CODE: &str = "addr::method-address";

/// The interface or bridge a finding is about.
struct Iface<'a> {
    site: &'a Site,
    host_name: &'a str,
    name: &'a str,
    at: FieldPath,
}

pub(crate) fn check(site: &Site, out: &mut Vec<Diagnostic>) {
    for (host_name, host) in &site.spec.hosts {
        for (name, i) in &host.interfaces {
            let iface = Iface {
                site,
                host_name,
                name,
                at: path!["hosts", host_name, "interfaces", name],
            };
            let method = match i.method {
                Method::Manual => "manual",
                Method::Static => "static",
                Method::Dhcp => "dhcp",
            };
            if i.method == Method::Static && i.address.is_none() {
                out.push(
                    Diagnostic::error(
                        CODE,
                        format!("{name} of `{host_name}` is `'static` but has no `address`"),
                    )
                    .help(format!(
                        "give {name} an `address` with its prefix length, e.g. `address = \"192.0.2.10/24\"`, or use `method = 'dhcp`"
                    ))
                    .at(site, &iface.at.field("method"), "static without an address"),
                );
            }
            if i.method != Method::Static {
                for (field, value) in [("address", &i.address), ("gateway", &i.gateway)] {
                    if value.is_some() {
                        out.push(iface.unused(field, &format!("method = '{method}"), "method"));
                    }
                }
            }
            iface.ipv6(i.method6, [&i.address6, &i.gateway6], out);
        }
        for (name, b) in &host.bridges {
            let iface = Iface {
                site,
                host_name,
                name,
                at: path!["hosts", host_name, "bridges", name],
            };
            iface.ipv6(b.method6, [&b.address6, &b.gateway6], out);
        }
    }
}

impl Iface<'_> {
    /// The IPv6 half, the same for interfaces and bridges: `address6` and
    /// `gateway6` against `method6`.
    fn ipv6(
        &self,
        method6: Option<Method6>,
        [address6, gateway6]: [&Option<String>; 2],
        out: &mut Vec<Diagnostic>,
    ) {
        let (name, host_name) = (self.name, self.host_name);
        match method6 {
            Some(Method6::Static) if address6.is_none() => out.push(
                Diagnostic::error(
                    CODE,
                    format!("{name} of `{host_name}` has `method6 = 'static` but no `address6`"),
                )
                .help(format!(
                    "give {name} an `address6` with its prefix length, e.g. `address6 = \"2001:db8::10/64\"`, or use `method6 = 'auto` for SLAAC"
                ))
                .at(self.site, &self.at.field("method6"), "static without an address"),
            ),
            Some(m @ (Method6::Auto | Method6::Dhcp)) => {
                for (field, value) in [("address6", address6), ("gateway6", gateway6)] {
                    if value.is_some() {
                        out.push(self.unused(field, &format!("method6 = '{}", m.as_str()), "method6"));
                    }
                }
            }
            _ => {}
        }
    }

    fn unused(&self, field: &str, method: &str, method_field: &str) -> Diagnostic {
        let fix = if method_field == "method" {
            "set `method = 'static`"
        } else {
            "drop `method6` (an `address6` makes it `'static`)"
        };
        Diagnostic::error(
            CODE,
            format!(
                "`{field}` of {} on `{}` is ignored with `{method}`",
                self.name, self.host_name
            ),
        )
        .help(format!(
            "to use the {field}, {fix}; otherwise remove `{field}`"
        ))
        .at(self.site, &self.at.field(field), "ignored by ifupdown")
        .at(self.site, &self.at.field(method_field), "the method")
    }
}
