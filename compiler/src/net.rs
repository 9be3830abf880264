//! IPv4 addresses and networks, as the site writes them (`10.0.0.1`,
//! `10.0.0.0/24`). The schema contracts guarantee the syntax; these helpers
//! still refuse anything else rather than panic.

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

impl std::fmt::Display for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::Net;

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
