//! IP addresses and networks of both families, as the site writes them
//! (`10.0.0.1`, `10.0.0.0/24`, `2001:db8::1`, `fd00:99::/64`). The schema
//! contracts guarantee the syntax; these helpers still refuse anything else
//! rather than panic. Networks of different families never overlap, contain
//! each other or compare equal: every check that reasons about addresses
//! does so per family without saying so.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Family {
    V4,
    V6,
}

impl Family {
    pub(crate) fn of(ip: IpAddr) -> Family {
        match ip {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// Bits in an address of this family: the longest prefix.
    pub(crate) fn width(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }

    /// The word nftables uses for the family (`ip saddr`, `ip6 saddr`).
    pub(crate) fn nft(self) -> &'static str {
        match self {
            Family::V4 => "ip",
            Family::V6 => "ip6",
        }
    }

    /// How people name it in messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }
}

/// An address as a number, with the family it belongs to.
fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn from_bits(family: Family, bits: u128) -> IpAddr {
    match family {
        // A v4 address's bits never exceed 32 (masks stay within the width).
        Family::V4 => IpAddr::V4(Ipv4Addr::from(bits as u32)),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(bits)),
    }
}

/// An IP network with its prefix length (or an address with the prefix of
/// its subnet, as an interface holds it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Net {
    pub(crate) addr: IpAddr,
    pub(crate) prefix: u8,
}

impl Net {
    /// Parses `address/len` or a bare address (a /32 or /128).
    pub(crate) fn parse(s: &str) -> Option<Net> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (s.parse::<IpAddr>().ok()?, None),
        };
        let width = Family::of(addr).width();
        let prefix = prefix.unwrap_or(width);
        if prefix > width {
            return None;
        }
        Some(Net { addr, prefix })
    }

    /// The network of exactly one address.
    pub(crate) fn host(addr: IpAddr) -> Net {
        Net {
            addr,
            prefix: Family::of(addr).width(),
        }
    }

    pub(crate) fn family(self) -> Family {
        Family::of(self.addr)
    }

    /// The prefix's bits, within the family's width.
    fn mask(self) -> u128 {
        let width = u32::from(self.family().width());
        let host_bits = width - u32::from(self.prefix);
        let all = u128::MAX >> (128 - width);
        // A /0 shifts every bit out.
        all & u128::MAX.checked_shl(host_bits).unwrap_or(0)
    }

    /// The network this address belongs to (`10.0.0.7/24` → `10.0.0.0/24`).
    pub(crate) fn network(self) -> Net {
        Net {
            addr: from_bits(self.family(), bits(self.addr) & self.mask()),
            prefix: self.prefix,
        }
    }

    /// The last address of the network (`10.0.0.0/24` → `10.0.0.255`).
    pub(crate) fn last(self) -> IpAddr {
        let width = u32::from(self.family().width());
        let all = u128::MAX >> (128 - width);
        from_bits(self.family(), (bits(self.addr) | !self.mask()) & all)
    }

    /// Whether an address lies inside this network (never one of the other
    /// family).
    pub(crate) fn contains(self, ip: IpAddr) -> bool {
        Family::of(ip) == self.family() && bits(ip) & self.mask() == bits(self.addr) & self.mask()
    }

    /// Whether every address of `other` lies inside this network.
    pub(crate) fn covers(self, other: Net) -> bool {
        self.prefix <= other.prefix && self.contains(other.addr)
    }

    /// Whether the two networks share any address.
    pub(crate) fn overlaps(self, other: Net) -> bool {
        self.covers(other) || other.covers(self)
    }

    /// Not reachable from the internet: for IPv4 private (RFC 1918),
    /// loopback, link-local or CGNAT; for IPv6 loopback, unique local
    /// (`fc00::/7`) or link-local (`fe80::/10`).
    pub(crate) fn is_private_address(ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(ip) => {
                ip.is_private() || ip.is_loopback() || ip.is_link_local() || {
                    let [a, b, ..] = ip.octets();
                    a == 100 && (64..128).contains(&b)
                }
            }
            IpAddr::V6(ip) => {
                let first = ip.segments()[0];
                ip.is_loopback() || first & 0xfe00 == 0xfc00 || first & 0xffc0 == 0xfe80
            }
        }
    }

    /// Whether the address is IPv6 link-local (`fe80::/10`): a gateway
    /// there is reached on the link itself, whatever the interface's subnet.
    pub(crate) fn is_link_local(ip: IpAddr) -> bool {
        matches!(ip, IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80)
    }
}

/// Networks indexed for overlap queries in O(log n). CIDR networks either
/// nest or are disjoint, so a network overlaps exactly its ancestors (one
/// lookup per shorter prefix) and the networks inside it (one range of the
/// keys sorted by family, first address and prefix). This keeps the checks
/// that compare every member's networks with every other's near-linear.
pub(crate) struct NetIndex<T> {
    by_start: BTreeMap<(Family, u128, u8), Vec<(Net, T)>>,
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
            .entry((n.family(), bits(n.addr), n.prefix))
            .or_default()
            .push((net, value));
    }

    /// Every indexed network that shares an address with `net`.
    pub(crate) fn overlapping(&self, net: Net) -> impl Iterator<Item = &(Net, T)> {
        let n = net.network();
        let family = n.family();
        let ancestors = (0..n.prefix).filter_map(move |p| {
            let a = Net {
                addr: n.addr,
                prefix: p,
            }
            .network();
            self.by_start.get(&(family, bits(a.addr), p))
        });
        let inside = self
            .by_start
            .range((family, bits(n.addr), n.prefix)..=(family, bits(n.last()), family.width()))
            .map(|(_, v)| v);
        ancestors.chain(inside).flatten()
    }
}

impl std::fmt::Display for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// An address with a port as daemons write it: `10.0.0.1:443`,
/// `[2001:db8::1]:443`.
pub(crate) fn socket(addr: &str, port: u16) -> String {
    if addr.contains(':') {
        format!("[{addr}]:{port}")
    } else {
        format!("{addr}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::{Net, NetIndex};

    /// The index finds exactly the overlaps a pairwise scan finds, in both
    /// families at once.
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
            "::/0",
            "fd00::/8",
            "fd00:99::/64",
            "fd00:99::1",
            "fd00:99::/48",
            "2001:db8::/32",
            "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
            "::a01:203",
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
                "fd00:99::2",
                "fd01::/16",
                "2001:db8:1::/48",
                "::/96",
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

    #[test]
    fn ipv6_networks_and_families_apart() {
        let n = Net::parse("fd00:101::1/64").unwrap();
        assert_eq!(n.network().to_string(), "fd00:101::/64");
        assert_eq!(n.last().to_string(), "fd00:101::ffff:ffff:ffff:ffff");
        assert!(n.contains("fd00:101::ff".parse().unwrap()));
        assert!(!n.contains("fd00:102::1".parse().unwrap()));
        assert_eq!(Net::parse("::1").unwrap().prefix, 128);
        assert!(Net::parse("::1/129").is_none());
        assert_eq!(Net::parse("::/0").unwrap().network().to_string(), "::/0");
        // `::a01:203` has the bits of 10.1.2.3, and `::/0` covers every
        // IPv6 address: neither says anything of IPv4.
        let v4 = Net::parse("10.1.2.3").unwrap();
        assert!(!Net::parse("::a01:203").unwrap().overlaps(v4));
        assert!(!Net::parse("::/0").unwrap().overlaps(v4));
        assert!(
            !Net::parse("0.0.0.0/0")
                .unwrap()
                .contains("::1".parse().unwrap())
        );
        assert!(Net::is_private_address("fd00::1".parse().unwrap()));
        assert!(Net::is_private_address("fe80::1".parse().unwrap()));
        assert!(!Net::is_private_address("2001:db8::1".parse().unwrap()));
        assert!(Net::is_link_local("fe80::1".parse().unwrap()));
        assert!(!Net::is_link_local("fd00::1".parse().unwrap()));
    }
}
