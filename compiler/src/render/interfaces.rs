//! /etc/network/interfaces (classic ifupdown or ifupdown2, as the host's
//! `ifupdown` says): loopback, physical interfaces, bridges, and a `source`
//! of interfaces.d, where other tools (Proxmox's SDN) write.

use serde::Serialize;

use super::{Action, File, HostInput, HostOutput, RenderError, Validator, template};
use crate::model::{Ifupdown, Method, Method6};

#[derive(Serialize)]
struct Stanza<'a> {
    name: &'a str,
    auto: bool,
    method: &'static str,
    comment: Option<&'a str>,
    /// `key value` option lines, in order.
    options: Vec<String>,
    /// The `inet6` stanza, when the interface has IPv6 configured.
    inet6: Option<Inet6>,
}

/// The `iface NAME inet6 METHOD` stanza that follows the `inet` one.
#[derive(Serialize)]
struct Inet6 {
    method: &'static str,
    options: Vec<String>,
}

/// The `inet6` stanza, or (SLAAC under ifupdown2) what the `inet` one
/// gets instead. Debian's ifupdown2 has no `inet6 auto` (it refuses it,
/// and exits 0) and no `accept-ra`/`autoconf` options (it ignores them
/// without a word; Proxmox's build has both): a command both run after
/// the interface is up accepts router advertisements, also where the host
/// forwards, and takes an address from them.
fn inet6(
    name: &str,
    ifupdown: Ifupdown,
    method6: Option<Method6>,
    address6: Option<&str>,
    gateway6: Option<&str>,
    inet_options: &mut Vec<String>,
) -> Option<Inet6> {
    let method = Method6::effective(method6, address6)?;
    if method == Method6::Auto && ifupdown == Ifupdown::Ifupdown2 {
        // Slashes: an interface name may hold a dot (a VLAN, eth0.10).
        inet_options.push(format!(
            "post-up sysctl -qw net/ipv6/conf/{name}/accept_ra=2 net/ipv6/conf/{name}/autoconf=1"
        ));
        return None;
    }
    let mut options = Vec::new();
    push_opt(&mut options, "address", address6);
    push_opt(&mut options, "gateway", gateway6);
    Some(Inet6 {
        method: method.as_str(),
        options,
    })
}

pub(super) fn render(ctx: &HostInput, out: &mut HostOutput) -> Result<(), RenderError> {
    let host = ctx.host;
    if host.interfaces.is_empty() && host.bridges.is_empty() {
        return Ok(());
    }
    let mut stanzas = Vec::new();
    for (name, iface) in &host.interfaces {
        let mut options = Vec::new();
        push_opt(&mut options, "address", iface.address.as_deref());
        push_opt(&mut options, "gateway", iface.gateway.as_deref());
        if let Some(mtu) = iface.mtu {
            options.push(format!("mtu {mtu}"));
        }
        let inet6 = inet6(
            name,
            host.ifupdown,
            iface.method6,
            iface.address6.as_deref(),
            iface.gateway6.as_deref(),
            &mut options,
        );
        stanzas.push(Stanza {
            name,
            auto: iface.method != Method::Manual
                || iface.method6.is_some()
                || iface.address6.is_some(),
            method: match iface.method {
                Method::Manual => "manual",
                Method::Static => "static",
                Method::Dhcp => "dhcp",
            },
            comment: iface.comment.as_deref(),
            options,
            inet6,
        });
    }
    for (name, bridge) in &host.bridges {
        let mut options = Vec::new();
        push_opt(&mut options, "address", bridge.address.as_deref());
        push_opt(&mut options, "gateway", bridge.gateway.as_deref());
        let ports = if bridge.ports.is_empty() {
            // What Proxmox itself writes for a bridge without uplink. Both
            // ifupdowns apply it; Debian's ifupdown2 warns about it when it
            // checks the syntax (activate's validator knows).
            "none".to_string()
        } else {
            bridge.ports.join(" ")
        };
        options.push(format!("bridge-ports {ports}"));
        if host.ifupdown == Ifupdown::Ifupdown2 {
            // The ports Proxmox adds itself (VMs' taps, containers' veths,
            // firewall bridges): Debian's ifupdown2 would take them off the
            // bridge at every reload; Proxmox's build leaves these alone.
            options.push("bridge-ports-condone-regex ^(tap|veth|fwpr)".into());
        }
        options.push(format!(
            "bridge-stp {}",
            if bridge.stp { "on" } else { "off" }
        ));
        options.push(format!("bridge-fd {}", bridge.forward_delay));
        // The bridge's ports and settings are in the inet stanza only:
        // ifupdown would run the bridge hooks again for a second one.
        let inet6 = inet6(
            name,
            host.ifupdown,
            bridge.method6,
            bridge.address6.as_deref(),
            bridge.gateway6.as_deref(),
            &mut options,
        );
        stanzas.push(Stanza {
            name,
            auto: true,
            method: if bridge.address.is_some() {
                "static"
            } else {
                "manual"
            },
            comment: bridge.comment.as_deref(),
            options,
            inet6,
        });
    }
    let content = template(
        "interfaces",
        &serde_json::json!({ "header": ctx.header(), "stanzas": stanzas }),
    )?;
    out.files.push(File {
        path: "etc/network/interfaces".into(),
        mode: 0o644,
        content,
        actions: vec![Action::Ifreload],
        validator: Some(Validator::Ifupdown),
        network: true,
    });
    Ok(())
}

fn push_opt(options: &mut Vec<String>, key: &str, value: Option<&str>) {
    if let Some(v) = value {
        options.push(format!("{key} {v}"));
    }
}
