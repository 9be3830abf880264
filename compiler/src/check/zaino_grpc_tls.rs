//! `zaino::grpc-tls`
//!
//! What it catches: Zaino's gRPC server on an address that is not private
//! (RFC 1918, loopback, link-local or CGNAT; for IPv6 loopback, unique local
//! or link-local) without `grpc.tls`. With
//! `build = 'unencrypted_traffic` it is a warning instead.
//!
//! Why it matters: the official Zaino build refuses to start with
//! `ConfigError("TLS required when connecting to external addresses.")`,
//! and `grpc_tls = false` in zindexer.toml does not change that.
//! Only a custom build with the `disable_tls_unencrypted_traffic_mode`
//! feature runs so, and then wallets talk to it in clear text.
//!
//! Example: `grpc = { address = "203.0.113.7" }` without `tls`.

use std::net::IpAddr;

use crate::diagnostic::Diagnostic;
use crate::model::{Site, ZainoBuild};
use crate::net::Net;
use crate::path;

pub(crate) const CODE: &str = "zaino::grpc-tls";

pub(crate) fn check(site: &Site, out: &mut Vec<Diagnostic>) {
    for (host_name, host) in &site.spec.hosts {
        let Some(z) = &host.zaino else { continue };
        let Ok(ip) = z.grpc.address.parse::<IpAddr>() else {
            continue;
        };
        if z.grpc.tls.is_some() || Net::is_private_address(ip) {
            continue;
        }
        let path = path!["hosts", host_name, "zaino", "grpc", "address"];
        let d = if z.build == ZainoBuild::UnencryptedTraffic {
            Diagnostic::warning(CODE, format!("Zaino on `{host_name}` serves gRPC on the public address {ip} without TLS"))
                .help("wallets' traffic crosses the network in clear text; add `grpc.tls = { certificate = ..., key = ... }`")
        } else {
            Diagnostic::error(CODE, format!("Zaino on `{host_name}` would refuse to start: gRPC on the public address {ip} needs TLS"))
                .help("add `grpc.tls = { certificate = \"/etc/zaino/tls/cert.pem\", key = \"/etc/zaino/tls/key.pem\" }`, listen on a private address, or run a build with `disable_tls_unencrypted_traffic_mode` and say so with `build = 'unencrypted_traffic`")
        };
        out.push(d.at(site, &path, "public address without TLS"));
    }
}
