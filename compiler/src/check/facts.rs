//! Facts derived from the site that several checks share: the addresses a
//! host holds, the networks it can route to, the ports it listens on. Each
//! fact carries the site path it came from, so a check can label it.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::model::{Firewall, Host, L4, Member, Mesh, Site};
use crate::net::{Family, Net, NetIndex};
use crate::path;

/// Where a fact was written in the site.
pub(crate) type Path = crate::tree::FieldPath;

/// An address a host holds on one of its interfaces, with its prefix.
#[derive(Debug, Clone)]
pub(crate) struct Assigned {
    /// Address with the prefix of its subnet, e.g. `10.0.200.11/24`.
    pub(crate) net: Net,
    /// The interface, bridge or WireGuard interface that holds it.
    pub(crate) iface: String,
    pub(crate) path: Path,
}

/// Every address a host holds: interfaces, bridges, and its tunnel address
/// in each mesh it belongs to (with the mesh's prefix).
pub(crate) fn assigned(site: &Site, host_name: &str, host: &Host) -> Vec<Assigned> {
    let mut out = Vec::new();
    let ifaces = host.interfaces.iter().map(|(name, i)| {
        (
            "interfaces",
            name,
            [(&i.address, "address"), (&i.address6, "address6")],
        )
    });
    let bridges = host.bridges.iter().map(|(name, b)| {
        (
            "bridges",
            name,
            [(&b.address, "address"), (&b.address6, "address6")],
        )
    });
    for (kind, name, addresses) in ifaces.chain(bridges) {
        for (address, field) in addresses {
            if let Some(net) = address.as_deref().and_then(Net::parse) {
                out.push(Assigned {
                    net,
                    iface: name.clone(),
                    path: path!["hosts", host_name, kind, name, field],
                });
            }
        }
    }
    for (mesh_name, mesh) in &site.spec.wireguard {
        let Some(member) = mesh.host_member(host_name) else {
            continue;
        };
        let families = [
            (Some(&member.address), Some(&mesh.network), "address"),
            (member.address6.as_ref(), mesh.network6.as_ref(), "address6"),
        ];
        for (address, network, field) in families {
            let (Some(ip), Some(network)) = (
                address.and_then(|a| a.parse().ok()),
                network.and_then(|n| Net::parse(n)),
            ) else {
                continue;
            };
            out.push(Assigned {
                net: Net {
                    addr: ip,
                    prefix: network.prefix,
                },
                iface: mesh_name.clone(),
                path: path!["wireguard", mesh_name, "members", host_name, field],
            });
        }
    }
    out
}

/// A member's own tunnel addresses (a /32 and, in a dual-stack mesh, a
/// /128) and the networks routed through it: its AllowedIPs.
pub(crate) fn member_nets(member: &Member) -> impl Iterator<Item = Net> + '_ {
    std::iter::once(member.address.as_str())
        .chain(member.address6.as_deref())
        .chain(member.routes.iter().map(String::as_str))
        .filter_map(Net::parse)
}

/// The networks a host reaches without a default route: the subnets of its
/// own addresses, and through each mesh it belongs to, every other member's
/// tunnel address and routes.
pub(crate) fn routable(site: &Site, host_name: &str, host: &Host) -> Vec<Net> {
    let mut nets: Vec<Net> = assigned(site, host_name, host)
        .iter()
        .map(|a| a.net.network())
        .collect();
    for mesh in site.spec.wireguard.values() {
        if mesh.host_member(host_name).is_none() {
            continue;
        }
        for (name, peer) in &mesh.members {
            if name == host_name {
                continue;
            }
            nets.extend(member_nets(peer));
        }
    }
    nets
}

/// Which addresses each host reaches, indexed once per site: a host's own
/// subnets, and per mesh every member's tunnel address and routes. Asking
/// whether a host reaches an address costs a few lookups, not a scan of
/// every peer (a full mesh of N hosts would make that N² in all).
pub(crate) struct Reach<'a> {
    meshes: Vec<(&'a Mesh, NetIndex<&'a str>)>,
}

impl<'a> Reach<'a> {
    pub(crate) fn new(site: &'a Site) -> Reach<'a> {
        let meshes = site
            .spec
            .wireguard
            .values()
            .map(|mesh| {
                let mut index = NetIndex::new();
                for (name, peer) in &mesh.members {
                    for n in member_nets(peer) {
                        index.insert(n, name.as_str());
                    }
                }
                (mesh, index)
            })
            .collect();
        Reach { meshes }
    }

    /// What `host` reaches: its own subnets (computed once here) and the
    /// meshes it is a member of.
    pub(crate) fn host(&self, site: &Site, host_name: &'a str, host: &Host) -> HostReach<'_> {
        HostReach {
            name: host_name,
            own: assigned(site, host_name, host)
                .iter()
                .map(|a| a.net.network())
                .collect(),
            meshes: self
                .meshes
                .iter()
                .filter(|(mesh, _)| mesh.host_member(host_name).is_some())
                .map(|(_, index)| index)
                .collect(),
        }
    }
}

/// What one host reaches (see [`Reach::host`]).
pub(crate) struct HostReach<'r> {
    name: &'r str,
    own: Vec<Net>,
    meshes: Vec<&'r NetIndex<&'r str>>,
}

impl HostReach<'_> {
    /// Whether the host has a route to `ip`: one of its subnets holds it, or
    /// another member of one of its meshes does.
    pub(crate) fn reaches(&self, ip: IpAddr) -> bool {
        let target = Net::host(ip);
        self.own.iter().any(|n| n.contains(ip))
            || self.meshes.iter().any(|index| {
                index
                    .overlapping(target)
                    .any(|(_, member)| *member != self.name)
            })
    }
}

/// The networks `routable` lists, for a help line: at most `limit`, then how
/// many more there are.
pub(crate) fn routable_summary(site: &Site, host_name: &str, host: &Host, limit: usize) -> String {
    let nets = routable(site, host_name, host);
    let mut shown: Vec<String> = nets.iter().take(limit).map(|n| n.to_string()).collect();
    if nets.len() > limit {
        shown.push(format!("{} more", nets.len() - limit));
    }
    shown.join(", ")
}

/// A socket a host listens on (or a port it intercepts with DNAT).
#[derive(Debug, Clone)]
pub(crate) struct Listener {
    pub(crate) proto: L4,
    /// `None` listens on every address.
    pub(crate) address: Option<IpAddr>,
    pub(crate) port: u16,
    /// What listens, in the operator's words, e.g. `NGINX vhost docs (HTTPS)`.
    pub(crate) what: String,
    pub(crate) path: Path,
    pub(crate) kind: ListenerKind,
}

/// Listeners of some kinds may share a port among themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListenerKind {
    /// NGINX's HTTP listeners: one process shares them among virtual hosts.
    NginxHttp,
    /// Two DNATs of a port are `firewall::duplicate-dnat`.
    Dnat,
    Other,
}

impl Listener {
    /// Whether two listeners want the same socket.
    pub(crate) fn clashes(&self, other: &Listener) -> bool {
        !(self.kind == other.kind && self.kind != ListenerKind::Other)
            && self.proto == other.proto
            && self.port == other.port
            && match (self.address, other.address) {
                // `0.0.0.0` and `::` are every address of their family.
                (Some(a), Some(b)) => {
                    a == b
                        || (a.is_unspecified() || b.is_unspecified())
                            && Family::of(a) == Family::of(b)
                }
                _ => true,
            }
    }
}

/// Every listener of a host: NGINX (all virtual hosts share their ports),
/// NGINX streams, Zaino, WireGuard, DNAT and published container ports.
pub(crate) fn listeners(site: &Site, host_name: &str, host: &Host) -> Vec<Listener> {
    let mut out = Vec::new();
    let h = |rest: Path| path!["hosts", host_name].join(&rest);
    let addr = |a: &Option<String>| a.as_deref().and_then(|a| a.parse().ok());
    if let Some(n) = &host.nginx {
        // Virtual hosts on one address share its ports: one listener per
        // (address, port), named after the first virtual host that opens it.
        let mut seen: Vec<(L4, Option<IpAddr>, u16)> = Vec::new();
        for (name, v) in &n.vhosts {
            let mut ports = vec![(L4::Tcp, 80, "HTTP")];
            if v.tls.is_some() {
                ports.push((L4::Tcp, 443, "HTTPS"));
            }
            if v.http3 {
                ports.push((L4::Udp, 443, "HTTP/3"));
            }
            for (proto, port, kind) in ports {
                let key = (proto, addr(&v.listen_address), port);
                if seen.contains(&key) {
                    continue;
                }
                seen.push(key);
                out.push(Listener {
                    proto,
                    address: key.1,
                    port,
                    what: format!("NGINX virtual host `{name}` ({kind})"),
                    path: h(path!["nginx", "vhosts", name]),
                    kind: ListenerKind::NginxHttp,
                });
            }
        }
        for (i, s) in n.streams.iter().enumerate() {
            out.push(Listener {
                proto: s.proto,
                address: addr(&s.listen_address),
                port: s.port,
                what: format!("NGINX stream on {} port {}", s.proto.as_str(), s.port),
                path: h(path!["nginx", "streams", i, "port"]),
                kind: ListenerKind::Other,
            });
        }
    }
    if let Some(z) = &host.zaino {
        out.push(Listener {
            proto: L4::Tcp,
            address: z.grpc.address.parse().ok(),
            port: z.grpc.port,
            what: "Zaino gRPC".into(),
            path: h(path!["zaino", "grpc", "port"]),
            kind: ListenerKind::Other,
        });
        if let Some(j) = &z.json_rpc {
            out.push(Listener {
                proto: L4::Tcp,
                address: j.address.parse().ok(),
                port: j.port,
                what: "Zaino JSON-RPC".into(),
                path: h(path!["zaino", "json_rpc", "port"]),
                kind: ListenerKind::Other,
            });
        }
    }
    if let Some(ssh) = &host.ssh {
        let addresses: Vec<Option<IpAddr>> = if ssh.listen_addresses.is_empty() {
            vec![None]
        } else {
            ssh.listen_addresses
                .iter()
                .map(|a| a.parse().ok())
                .collect()
        };
        for (i, port) in ssh.ports.iter().enumerate() {
            for address in &addresses {
                out.push(Listener {
                    proto: L4::Tcp,
                    address: *address,
                    port: *port,
                    what: "sshd".into(),
                    path: h(path!["ssh", "ports", i]),
                    kind: ListenerKind::Other,
                });
            }
        }
    }
    for (mesh_name, mesh) in &site.spec.wireguard {
        if let Some(m) = mesh.host_member(host_name) {
            let (port, p) = match m.port {
                Some(port) => (
                    port,
                    path!["wireguard", mesh_name, "members", host_name, "port"],
                ),
                None => (mesh.port, path!["wireguard", mesh_name, "port"]),
            };
            out.push(Listener {
                proto: L4::Udp,
                address: None,
                port,
                what: format!("WireGuard {mesh_name}"),
                path: p,
                kind: ListenerKind::Other,
            });
        }
    }
    if let Some(fw) = &host.firewall {
        for (i, d) in fw.dnat.iter().enumerate() {
            out.push(Listener {
                proto: d.proto,
                address: None,
                port: d.port,
                what: format!("DNAT of {} port {} to {}", d.proto.as_str(), d.port, d.to),
                path: h(path!["firewall", "dnat", i, "port"]),
                kind: ListenerKind::Dnat,
            });
        }
    }
    for (name, s) in &host.units.services {
        let Some(c) = &s.container else { continue };
        for (i, p) in c.ports.iter().enumerate() {
            out.push(Listener {
                proto: p.proto,
                address: p.address.parse().ok(),
                port: p.host,
                what: format!("container `{name}` published port {}", p.host),
                path: h(path![
                    "units",
                    "services",
                    name,
                    "container",
                    "ports",
                    i,
                    "host",
                ]),
                kind: ListenerKind::Other,
            });
        }
    }
    out
}

/// The packets a firewall rule matches, as sets that can be compared.
#[derive(Debug, Clone)]
pub(crate) struct Matches {
    /// `None`: any interface.
    pub(crate) iface: Option<String>,
    /// `None`: any output interface.
    pub(crate) oiface: Option<String>,
    /// `None`: any source.
    pub(crate) sources: Option<Vec<Net>>,
    /// `None`: any destination.
    pub(crate) destinations: Option<Vec<Net>>,
    /// `None`: any protocol and port.
    pub(crate) l4: Option<L4Matches>,
}

/// Protocols and ports: what a rule matches of tcp, of udp, and whether
/// it matches icmp and icmpv6.
#[derive(Debug, Clone, Default)]
pub(crate) struct L4Matches {
    pub(crate) tcp: Ports,
    pub(crate) udp: Ports,
    pub(crate) icmp: bool,
    pub(crate) icmpv6: bool,
}

/// The ports of one protocol a rule matches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum Ports {
    /// The protocol does not match at all.
    #[default]
    None,
    /// Every port.
    Any,
    /// These ports only.
    These(Vec<u16>),
}

impl Ports {
    /// Whether every port `other` matches, `self` matches too.
    fn covers(&self, other: &Ports) -> bool {
        match (self, other) {
            (_, Ports::None) | (Ports::Any, _) => true,
            (Ports::None, _) | (Ports::These(_), Ports::Any) => false,
            (Ports::These(mine), Ports::These(theirs)) => theirs.iter().all(|p| mine.contains(p)),
        }
    }
}

impl Matches {
    /// What a rule matches; `None` when its source names an unknown set
    /// (which `firewall::unknown-set` reports).
    pub(crate) fn of(site: &Site, rule: &crate::model::Rule) -> Option<Matches> {
        use crate::model::Proto;
        let sources = match rule.source.as_deref() {
            None => None,
            Some(s) => Some(networks(site, s)?),
        };
        let destinations = match rule.destination.as_deref() {
            None => None,
            Some(d) => Some(networks(site, d)?),
        };
        let ports = if rule.ports.is_empty() {
            Ports::Any
        } else {
            Ports::These(rule.ports.clone())
        };
        let l4 = match rule.proto {
            Proto::Any if ports == Ports::Any => None,
            Proto::Any => Some(L4Matches {
                tcp: ports.clone(),
                udp: ports,
                icmp: false,
                icmpv6: false,
            }),
            Proto::Tcp => Some(L4Matches {
                tcp: ports,
                ..L4Matches::default()
            }),
            Proto::Udp => Some(L4Matches {
                udp: ports,
                ..L4Matches::default()
            }),
            Proto::Icmp => Some(L4Matches {
                icmp: true,
                ..L4Matches::default()
            }),
            Proto::Icmpv6 => Some(L4Matches {
                icmpv6: true,
                ..L4Matches::default()
            }),
        };
        Some(Matches {
            iface: rule.iface.clone(),
            oiface: rule.oiface.clone(),
            sources,
            destinations,
            l4,
        })
    }

    /// Whether every packet `other` matches is also matched by `self`.
    pub(crate) fn covers(&self, other: &Matches) -> bool {
        let iface = self.iface.is_none() || self.iface == other.iface;
        let oiface = self.oiface.is_none() || self.oiface == other.oiface;
        let addresses = |mine: &Option<Vec<Net>>, theirs: &Option<Vec<Net>>| match (mine, theirs) {
            (None, _) => true,
            // Any address: only a /0 of each family covers it.
            (Some(mine), None) => [Family::V4, Family::V6]
                .iter()
                .all(|&f| mine.iter().any(|n| n.prefix == 0 && n.family() == f)),
            (Some(mine), Some(theirs)) => theirs.iter().all(|t| mine.iter().any(|m| m.covers(*t))),
        };
        let sources = addresses(&self.sources, &other.sources)
            && addresses(&self.destinations, &other.destinations);
        let l4 = match (&self.l4, &other.l4) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(a), Some(b)) => {
                a.tcp.covers(&b.tcp)
                    && a.udp.covers(&b.udp)
                    && (a.icmp || !b.icmp)
                    && (a.icmpv6 || !b.icmpv6)
            }
        };
        iface && oiface && sources && l4
    }
}

/// Every address field of a host's firewall (rule sources and
/// destinations, DNAT and masquerade sources) with its site path.
pub(crate) fn firewall_addresses<'a>(host_name: &str, fw: &'a Firewall) -> Vec<(Path, &'a str)> {
    let at = |rest: Path| path!["hosts", host_name, "firewall"].join(&rest);
    let mut out = Vec::new();
    for (chain_name, chain) in fw.chains() {
        for (i, rule) in chain.rules.iter().enumerate() {
            for (field, value) in [("source", &rule.source), ("destination", &rule.destination)] {
                if let Some(v) = value {
                    out.push((at(path![chain_name, "rules", i, field]), v.as_str()));
                }
            }
        }
    }
    for (i, d) in fw.dnat.iter().enumerate() {
        if let Some(v) = &d.source {
            out.push((at(path!["dnat", i, "source"]), v.as_str()));
        }
    }
    for (i, m) in fw.masquerade.iter().enumerate() {
        if let Some(v) = &m.source {
            out.push((at(path!["masquerade", i, "source"]), v.as_str()));
        }
    }
    out
}

/// The networks an address field names: itself, or the members of its set;
/// `None` for an unknown set (which `firewall::unknown-set` reports).
pub(crate) fn networks(site: &Site, address: &str) -> Option<Vec<Net>> {
    Some(match address.strip_prefix('@') {
        Some(set) => site
            .spec
            .address_sets
            .get(set)?
            .iter()
            .filter_map(|n| Net::parse(n).map(Net::network))
            .collect(),
        None => vec![Net::parse(address)?.network()],
    })
}

/// The interface of a host that holds an address, if any.
pub(crate) fn iface_holding(
    site: &Site,
    host_name: &str,
    host: &Host,
    ip: IpAddr,
) -> Option<String> {
    assigned(site, host_name, host)
        .into_iter()
        .find(|a| a.net.addr == ip)
        .map(|a| a.iface)
}

/// A file a part of the host reads as a secret: what the renderers list
/// in the manifest as required secrets (a test holds the two together).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct SecretRead {
    /// Its path on the host.
    pub(crate) path: String,
    /// What reads it, for the operator.
    pub(crate) reader: String,
}

/// The secrets the host's parts read: each mesh member's private key,
/// each nginx vhost's TLS key, zaino's gRPC TLS key.
/// (The site's meshes, not the site: the renderers hold no more.)
pub(crate) fn secrets_read(
    meshes: &BTreeMap<String, Mesh>,
    host_name: &str,
    host: &Host,
) -> Vec<SecretRead> {
    let mut out = Vec::new();
    for (mesh_name, mesh) in meshes {
        if let Some(me) = mesh.host_member(host_name) {
            out.push(SecretRead {
                path: me.key_file(mesh_name),
                reader: format!("the WireGuard private key of {mesh_name}"),
            });
        }
    }
    if let Some(n) = &host.nginx {
        for (name, v) in &n.vhosts {
            if let Some(tls) = &v.tls {
                out.push(SecretRead {
                    path: tls.key.clone(),
                    reader: format!("the TLS key of nginx's {name}"),
                });
            }
        }
    }
    if let Some(tls) = host.zaino.as_ref().and_then(|z| z.grpc.tls.as_ref()) {
        out.push(SecretRead {
            path: tls.key.clone(),
            reader: "zaino's gRPC TLS key".into(),
        });
    }
    out.sort();
    out.dedup_by(|a, b| a.path == b.path);
    out
}
