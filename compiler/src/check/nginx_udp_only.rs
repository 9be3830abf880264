//! `nginx::udp-only`
//!
//! What it catches: a TCP stream with `responses`.
//!
//! Why it matters: `proxy_responses` counts the datagrams a backend answers
//! each UDP datagram with; NGINX ignores it on a TCP stream, so the setting
//! would say something that does not happen.
//!
//! Example: `{ proto = 'tcp, port = 5432, responses = 1, backend = { ... } }`.

use crate::diagnostic::Diagnostic;
use crate::model::{L4, Site};
use crate::path;

pub(crate) const CODE: &str = "nginx::udp-only";

pub(crate) fn check(site: &Site, out: &mut Vec<Diagnostic>) {
    for (host_name, host) in &site.spec.hosts {
        let Some(n) = &host.nginx else { continue };
        for (i, s) in n.streams.iter().enumerate() {
            if s.proto == L4::Tcp && s.responses.is_some() {
                out.push(
                    Diagnostic::error(CODE, format!("stream {i} of `{host_name}` is TCP, and `responses` counts UDP datagrams"))
                        .help("drop `responses`, or make the stream `proto = 'udp`")
                        .at(site, &path!["hosts", host_name, "nginx", "streams", i, "responses"], "UDP only"),
                );
            }
        }
    }
}
