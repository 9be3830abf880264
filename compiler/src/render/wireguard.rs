//! /etc/wireguard/<mesh>.conf (mode 0600): the host's interface and every
//! other member of the mesh as a peer. The private key is never in the file:
//! wg-quick loads it from its path on the host, and activation feeds it to
//! `wg syncconf` (a config without PrivateKey would reset the key).

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Action, File, HostInput, HostOutput, RenderError, Secret, Validator, template};
use crate::model::{Member, Mesh, Site};
use crate::net::Net;

#[derive(Serialize)]
struct Peer<'a> {
    name: &'a str,
    public_key: &'a str,
    allowed_ips: String,
    endpoint: Option<String>,
    keepalive: Option<u32>,
}

/// Every member's `[Peer]` stanza as the other members' configs carry it,
/// by mesh and member: rendered once, copied into N-1 files.
pub(super) fn peer_stanzas(
    site: &Site,
) -> Result<BTreeMap<String, BTreeMap<String, String>>, RenderError> {
    let mut meshes = BTreeMap::new();
    for (mesh_name, mesh) in &site.spec.wireguard {
        let mut stanzas = BTreeMap::new();
        for (name, m) in &mesh.members {
            let peer = Peer::of(name, m, mesh, m.keepalive);
            stanzas.insert(name.clone(), template("wg-peer", &peer)?);
        }
        meshes.insert(mesh_name.clone(), stanzas);
    }
    Ok(meshes)
}

/// The WireGuard configuration of every external member (a machine with no
/// bundle, such as an admin's laptop), by path under the site's
/// `_external/` directory: `MEMBER/MESH.conf`. Its peers are the mesh's
/// hosts, with the member's keepalive towards each; its private key is the
/// member's to add and is never written.
pub(crate) fn external_configs(site: &Site) -> Result<BTreeMap<String, String>, RenderError> {
    let mut out = BTreeMap::new();
    for (mesh_name, mesh) in &site.spec.wireguard {
        for (name, me) in mesh.members.iter().filter(|(_, m)| m.external) {
            let address = interface_address(mesh_name, mesh, me)?;
            let mut content = template(
                "wg-external",
                &serde_json::json!({
                    "site": site.name,
                    "member": name,
                    "mesh": mesh_name,
                    "public_key": me.public_key,
                    "address": address,
                    "mtu": mesh.mtu,
                }),
            )?;
            for (peer_name, m) in mesh.members.iter().filter(|(_, m)| !m.external) {
                let peer = Peer::of(peer_name, m, mesh, me.keepalive);
                content.push_str(&template("wg-peer", &peer)?);
            }
            out.insert(format!("{name}/{mesh_name}.conf"), content);
        }
    }
    Ok(out)
}

impl<'a> Peer<'a> {
    /// Member `m` of `mesh` as a peer, with the keepalive of whoever lists it.
    fn of(name: &'a str, m: &'a Member, mesh: &Mesh, keepalive: Option<u32>) -> Peer<'a> {
        Peer {
            name,
            public_key: &m.public_key,
            allowed_ips: allowed_ips(m),
            endpoint: m
                .endpoint
                .as_ref()
                .map(|e| crate::net::socket(e, m.port.unwrap_or(mesh.port))),
            keepalive,
        }
    }
}

/// A member's `Address` line: its tunnel addresses with the mesh's prefix
/// lengths (`wg::address-outside-mesh` makes sure a dual-stack mesh's
/// members each have an IPv6 address).
fn interface_address(mesh_name: &str, mesh: &Mesh, me: &Member) -> Result<String, RenderError> {
    let mut address = format!("{}/{}", me.address, prefix(mesh_name, &mesh.network)?);
    if let (Some(network6), Some(address6)) = (&mesh.network6, &me.address6) {
        address.push_str(&format!(", {address6}/{}", prefix(mesh_name, network6)?));
    }
    Ok(address)
}

/// A member's AllowedIPs as its peers list them: its tunnel addresses and
/// the networks it routes.
fn allowed_ips(m: &Member) -> String {
    std::iter::once(format!("{}/32", m.address))
        .chain(m.address6.iter().map(|a| format!("{a}/128")))
        .chain(m.routes.iter().cloned())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The prefix length of a mesh's network.
fn prefix(mesh_name: &str, network: &str) -> Result<u8, RenderError> {
    Net::parse(network).map(|n| n.prefix).ok_or_else(|| {
        RenderError::Unchecked(format!("wireguard {mesh_name}: bad network {network}"))
    })
}

pub(super) fn render(ctx: &HostInput, out: &mut HostOutput) -> Result<(), RenderError> {
    for (mesh_name, mesh) in ctx.meshes {
        let Some(me) = mesh.host_member(ctx.host_name) else {
            continue;
        };
        let address = interface_address(mesh_name, mesh, me)?;
        let key_file = me.key_file(mesh_name);
        let mut content = template(
            "wg.conf",
            &serde_json::json!({
                "header": ctx.header(),
                "mesh": mesh_name,
                "address": address,
                "port": me.port.unwrap_or(mesh.port),
                "mtu": mesh.mtu,
                "key_file": key_file,
            }),
        )?;
        let stanzas = ctx.shared.peers.get(mesh_name).ok_or_else(|| {
            RenderError::Unchecked(format!("wireguard {mesh_name}: peers not prepared"))
        })?;
        let others = stanzas
            .iter()
            .filter(|(name, _)| name.as_str() != ctx.host_name);
        content.reserve(others.clone().map(|(_, s)| s.len()).sum());
        for (_, stanza) in others {
            content.push_str(stanza);
        }
        out.files.push(File {
            path: format!("etc/wireguard/{mesh_name}.conf"),
            mode: 0o600,
            content,
            actions: vec![Action::WgSync(mesh_name.clone())],
            validator: Some(Validator::Wg),
            network: true,
        });
        out.started_at_boot(format!("wg-quick@{mesh_name}.service"));
        out.secrets.insert(Secret {
            age: None,
            path: key_file,
            read_by: format!("etc/wireguard/{mesh_name}.conf"),
            used_by: format!("wireguard {mesh_name} private key"),
            uid: 0,
            gid: 0,
        });
    }
    Ok(())
}
