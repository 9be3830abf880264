//! IPv4 addresses and networks, as the site writes them (`10.0.0.1`,
//! `10.0.0.0/24`). The schema contracts guarantee the syntax; these helpers
//! still refuse anything else rather than panic.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// An IPv4 network with its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Net {
    pub(crate) addr: Ipv4Addr,
    pub(crate) prefix: u8,
}

impl Net {
    /// Parses `a.b.c.d/len` or a bare address (a /32).
    pub(crate) fn parse(s: &str) -> Option<Net> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, p.parse::<u8>().ok()?),
            None => (s, 32),
        };
        if prefix > 32 {
            return None;
        }
        Some(Net {
            addr: addr.parse().ok()?,
            prefix,
        })
    }

    fn mask(self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        }
    }

    /// The network this address belongs to (`10.0.0.7/24` → `10.0.0.0/24`).
    pub(crate) fn network(self) -> Net {
        Net {
            addr: Ipv4Addr::from(u32::from(self.addr) & self.mask()),
            prefix: self.prefix,
        }
    }

    /// The last address of the network (`10.0.0.0/24` → `10.0.0.255`).
    pub(crate) fn broadcast(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.mask())
    }

    /// Whether an address lies inside this network.
    pub(crate) fn contains(self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.addr) & self.mask()
    }

    /// Whether every address of `other` lies inside this network.
    pub(crate) fn covers(self, other: Net) -> bool {
        self.prefix <= other.prefix && self.contains(other.addr)
    }

    /// Whether the two networks share any address.
    pub(crate) fn overlaps(self, other: Net) -> bool {
        self.covers(other) || other.covers(self)
    }

    /// Private (RFC 1918), loopback, link-local or CGNAT: not reachable from the internet.
    pub(crate) fn is_private_address(ip: Ipv4Addr) -> bool {
        ip.is_private() || ip.is_loopback() || ip.is_link_local() || {
            let [a, b, ..] = ip.octets();
            a == 100 && (64..128).contains(&b)
        }
    }
}

/// Networks indexed for overlap queries in O(log n). CIDR networks either
/// nest or are disjoint, so a network overlaps exactly its ancestors (one
/// lookup per shorter prefix) and the networks inside it (one range of the
/// keys sorted by first address and prefix). This keeps the checks that
/// compare every member's networks with every other's near-linear.
pub(crate) struct NetIndex<T> {
    by_start: BTreeMap<(u32, u8), Vec<(Net, T)>>,
}

impl<T> NetIndex<T> {
    pub(crate) fn new() -> NetIndex<T> {
        NetIndex {
            by_start: BTreeMap::new(),
        }
    }

    pub(crate) fn insert(&mut self, net: Net, value: T) {
        let n = net.network();
        self.by_start
            .entry((u32::from(n.addr), n.prefix))
            .or_default()
            .push((net, value));
    }

    /// Every indexed network that shares an address with `net`.
    pub(crate) fn overlapping(&self, net: Net) -> impl Iterator<Item = &(Net, T)> {
        let n = net.network();
        let start = u32::from(n.addr);
        let ancestors = (0..n.prefix).filter_map(move |p| {
            let a = Net {
                addr: n.addr,
                prefix: p,
            }
            .network();
            self.by_start.get(&(u32::from(a.addr), p))
        });
        let inside = self
            .by_start
            .range((start, n.prefix)..=(u32::from(n.broadcast()), 32))
            .map(|(_, v)| v);
        ancestors.chain(inside).flatten()
    }
}

impl std::fmt::Display for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::{Net, NetIndex};

    /// The index finds exactly the overlaps a pairwise scan finds.
    #[test]
    fn the_index_agrees_with_a_pairwise_scan() {
        let nets: Vec<Net> = [
            "10.0.0.0/8",
            "10.1.0.0/16",
            "10.1.2.0/24",
            "10.1.2.3",
            "10.1.3.0/24",
            "10.2.0.0/16",
            "0.0.0.0/0",
            "192.168.1.0/24",
            "192.168.1.128/25",
            "192.168.1.129",
            "10.1.2.0/24",
            "172.16.0.0/12",
            "172.31.255.255",
        ]
        .iter()
        .map(|s| Net::parse(s).unwrap())
        .collect();
        let mut index = NetIndex::new();
        for (i, n) in nets.iter().enumerate() {
            index.insert(*n, i);
        }
        let probes = nets.iter().copied().chain(
            [
                "10.1.2.200",
                "10.3.0.0/16",
                "11.0.0.0/8",
                "192.168.0.0/16",
                "172.20.1.0/24",
            ]
            .iter()
            .map(|s| Net::parse(s).unwrap()),
        );
        for p in probes {
            let mut found: Vec<usize> = index.overlapping(p).map(|(_, i)| *i).collect();
            found.sort();
            let want: Vec<usize> = (0..nets.len()).filter(|&i| nets[i].overlaps(p)).collect();
            assert_eq!(found, want, "{p}");
        }
    }

    #[test]
    fn network_of_an_interface_address() {
        let n = Net::parse("10.0.101.1/24").unwrap();
        assert_eq!(n.network().to_string(), "10.0.101.0/24");
        assert!(n.contains("10.0.101.200".parse().unwrap()));
        assert!(!n.contains("10.0.102.1".parse().unwrap()));
        assert_eq!(
            Net::parse("0.0.0.0/0").unwrap().network().to_string(),
            "0.0.0.0/0"
        );
        assert_eq!(Net::parse("10.0.0.1").unwrap().prefix, 32);
        assert!(Net::parse("10.0.0.1/33").is_none());
        assert!(Net::parse("nonsense").is_none());
    }
}
