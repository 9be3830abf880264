//! /etc/nginx/nginx.conf: HTTP virtual hosts (TLS, HTTP/2, HTTP/3) proxied to
//! upstreams, and L4 stream mappings for TCP and UDP.

use std::collections::BTreeSet;

use serde::Serialize;

use super::{
    Action, File, HostInput, HostOutput, Need, Program, RenderError, Secret, Validator, template,
};
use crate::net::socket;

/// The address part of `listen` for a listen address: every address of
/// both families when there is none (a bare port is IPv4 only in NGINX).
fn listen_prefixes(address: Option<&str>) -> Vec<String> {
    match address {
        None => vec![String::new(), "[::]:".into()],
        Some(a) if a.contains(':') => vec![format!("[{a}]:")],
        Some(a) => vec![format!("{a}:")],
    }
}

#[derive(Serialize)]
struct VhostDef<'a> {
    upstream: String,
    server_names: String,
    /// What comes before the port in each `listen` (`""`, `"[::]:"`,
    /// `"10.0.0.1:"`).
    listen: Vec<String>,
    tls: Option<(&'a str, &'a str)>,
    http2: bool,
    http3: bool,
    /// Its QUIC `listen` values (HTTP/3): `reuseport`, which NGINX takes
    /// once per address and port, on the first server listening there
    /// (the default server, when there is one).
    quic: Vec<String>,
    servers: Vec<String>,
    max_body_size: Option<String>,
    websockets: bool,
    timeouts: Option<&'a crate::model::Timeouts>,
}

#[derive(Serialize)]
struct StreamDef<'a> {
    upstream: String,
    /// Each `listen` value.
    listen: Vec<String>,
    server: String,
    timeout: Option<&'a str>,
    responses: Option<u32>,
    proxy_protocol: bool,
    comment: Option<&'a str>,
}

/// `client_max_body_size`'s value: NGINX spells no limit `0`.
fn body_size(size: &str) -> String {
    if size == "unlimited" {
        "0".into()
    } else {
        size.into()
    }
}

/// The `listen` addresses of the default servers that refuse unknown
/// names: one per address and port a virtual host listens on, plain for
/// port 80, TLS for 443 and QUIC for UDP 443, in a fixed order.
#[derive(Default)]
struct Defaults {
    plain: Vec<String>,
    tls: Vec<String>,
    quic: Vec<String>,
}

fn default_listens(vhosts: &[VhostDef]) -> Defaults {
    let mut plain = BTreeSet::new();
    let mut tls = BTreeSet::new();
    let mut quic = BTreeSet::new();
    for v in vhosts {
        for prefix in &v.listen {
            plain.insert(format!("{prefix}80"));
            if v.tls.is_some() {
                tls.insert(format!("{prefix}443"));
            }
            if v.http3 {
                quic.insert(format!("{prefix}443"));
            }
        }
    }
    Defaults {
        plain: plain.into_iter().collect(),
        tls: tls.into_iter().collect(),
        quic: quic.into_iter().collect(),
    }
}

/// Each virtual host's QUIC `listen` values. NGINX refuses a second
/// `reuseport` on one address and port ("duplicate listen options"), so
/// it goes on the first server there: the default server when unknown
/// names are refused (which then has it), else the first virtual host.
fn quic_listens(vhosts: &mut [VhostDef], default_server: bool) {
    let mut taken = BTreeSet::new();
    for v in vhosts.iter_mut().filter(|v| v.http3) {
        v.quic = v
            .listen
            .iter()
            .map(|prefix| {
                let first = !default_server && taken.insert(prefix.clone());
                format!("{prefix}443 quic{}", if first { " reuseport" } else { "" })
            })
            .collect();
    }
}

pub(super) fn render(ctx: &HostInput, out: &mut HostOutput) -> Result<(), RenderError> {
    let Some(n) = &ctx.host.nginx else {
        return Ok(());
    };
    let mut vhosts: Vec<VhostDef> = n
        .vhosts
        .iter()
        .map(|(name, v)| VhostDef {
            upstream: format!("vhost_{name}"),
            server_names: v.server_names.join(" "),
            listen: listen_prefixes(v.listen_address.as_deref()),
            tls: v
                .tls
                .as_ref()
                .map(|t| (t.certificate.as_str(), t.key.as_str())),
            http2: v.http2,
            // QUIC is TLS: a virtual host without it has no HTTP/3.
            http3: v.http3 && v.tls.is_some(),
            quic: Vec::new(),
            servers: v
                .backends
                .iter()
                .map(|b| socket(&b.address, b.port))
                .collect(),
            max_body_size: v.max_body_size.as_deref().map(body_size),
            websockets: v.websockets,
            timeouts: v.timeouts.as_ref(),
        })
        .collect();
    let streams: Vec<StreamDef> = n
        .streams
        .iter()
        .map(|s| {
            let udp = if s.proto == crate::model::L4::Udp {
                " udp"
            } else {
                ""
            };
            StreamDef {
                upstream: format!("stream_{}_{}", s.proto.as_str(), s.port),
                listen: listen_prefixes(s.listen_address.as_deref())
                    .iter()
                    .map(|prefix| format!("{prefix}{}{udp}", s.port))
                    .collect(),
                server: socket(&s.backend.address, s.backend.port),
                timeout: s.timeout.as_deref(),
                responses: s.responses,
                proxy_protocol: s.proxy_protocol,
                comment: s.comment.as_deref(),
            }
        })
        .collect();
    for v in n.vhosts.values() {
        if let Some(tls) = &v.tls {
            out.secrets.insert(Secret {
                age: None,
                path: tls.key.clone(),
                read_by: "etc/nginx/nginx.conf".into(),
                used_by: "nginx TLS key".into(),
                uid: 0,
                gid: 0,
            });
        }
    }
    let version = n.version(ctx.host.release);
    // `listen ... http2` is deprecated from NGINX 1.25.1 on, where
    // `http2 on;` replaces it; 1.25.0 has no such directive, so it is
    // written from 1.26 on (what Debian 13 ships).
    let http2_directive = version >= (1, 26);
    let mut need = |version: &str, why: &str| {
        out.needs.insert(Need {
            program: Program::Nginx,
            version: version.into(),
            why: why.into(),
        })
    };
    if vhosts.iter().any(|v| v.http3) {
        need("1.25", "HTTP/3 (listen ... quic)");
    }
    if http2_directive && vhosts.iter().any(|v| v.http2 && v.tls.is_some()) {
        need("1.26", "HTTP/2 written as `http2 on;`");
    }
    let defaults = if n.refuse_unknown_hosts {
        default_listens(&vhosts)
    } else {
        Defaults::default()
    };
    quic_listens(&mut vhosts, n.refuse_unknown_hosts);
    let content = template(
        "nginx.conf",
        &serde_json::json!({
            "header": ctx.header(),
            "worker_connections": n.worker_connections,
            "max_body_size": n.max_body_size.as_deref().map(body_size),
            "websockets": vhosts.iter().any(|v| v.websockets),
            "default_plain": defaults.plain,
            "default_tls": defaults.tls,
            "default_quic": defaults.quic,
            "http2_directive": http2_directive,
            "vhosts": vhosts,
            "streams": streams,
        }),
    )?;
    out.files.push(File {
        path: "etc/nginx/nginx.conf".into(),
        mode: 0o644,
        content,
        actions: vec![Action::Reload("nginx.service".into())],
        validator: Some(Validator::Nginx),
        network: false,
    });
    out.started_at_boot("nginx.service".into());
    Ok(())
}
