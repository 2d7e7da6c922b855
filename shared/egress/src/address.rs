//! Which IP addresses a caller-given URL may reach: one table of the special-purpose ranges
//! (IANA's IPv4 and IPv6 special-purpose address registries, RFC 6890 and its updates), each
//! either refused or, for the ranges that embed an IPv4 address (mapped, NAT64, 6to4),
//! judged by the embedded address. Everything outside the table is a public address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// Why an address is not public.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserved {
    /// "This network", including the unspecified address (Linux connects it to localhost).
    ThisNetwork,
    /// Loopback.
    Loopback,
    /// Private networks (RFC 1918) and IPv6 unique-local addresses (RFC 4193).
    Private,
    /// Carrier-grade NAT's shared space (RFC 6598; some clouds' metadata services live here).
    SharedAddressSpace,
    /// Link-local, where cloud metadata services answer (169.254.169.254).
    LinkLocal,
    /// Documentation, benchmarking and protocol-assignment ranges: never a real server.
    NotRoutable,
    /// Multicast and broadcast.
    Multicast,
    /// Reserved for future use or deprecated.
    Reserved,
}

impl Reserved {
    /// The reason in words, for an error message.
    pub fn describe(self) -> &'static str {
        match self {
            Self::ThisNetwork => "an unspecified or this-network address",
            Self::Loopback => "a loopback address",
            Self::Private => "a private network address",
            Self::SharedAddressSpace => "a carrier-grade NAT (shared) address",
            Self::LinkLocal => "a link-local address (cloud metadata)",
            Self::NotRoutable => "a documentation or benchmarking address",
            Self::Multicast => "a multicast or broadcast address",
            Self::Reserved => "a reserved address",
        }
    }
}

/// What the table says about a range.
#[derive(Debug, Clone, Copy)]
enum Rule {
    /// Refused.
    Refuse(Reserved),
    /// The IPv4 address embedded at this bit offset decides.
    EmbeddedIpv4 { bit_offset: u32 },
}

/// The special-purpose ranges, most specific first where they overlap.
const RANGES: &[(&str, Rule)] = &[
    // IPv4
    ("0.0.0.0/8", Rule::Refuse(Reserved::ThisNetwork)),
    ("10.0.0.0/8", Rule::Refuse(Reserved::Private)),
    ("100.64.0.0/10", Rule::Refuse(Reserved::SharedAddressSpace)),
    ("127.0.0.0/8", Rule::Refuse(Reserved::Loopback)),
    ("169.254.0.0/16", Rule::Refuse(Reserved::LinkLocal)),
    ("172.16.0.0/12", Rule::Refuse(Reserved::Private)),
    ("192.0.0.0/24", Rule::Refuse(Reserved::NotRoutable)),
    ("192.0.2.0/24", Rule::Refuse(Reserved::NotRoutable)),
    ("192.88.99.0/24", Rule::Refuse(Reserved::Reserved)),
    ("192.168.0.0/16", Rule::Refuse(Reserved::Private)),
    ("198.18.0.0/15", Rule::Refuse(Reserved::NotRoutable)),
    ("198.51.100.0/24", Rule::Refuse(Reserved::NotRoutable)),
    ("203.0.113.0/24", Rule::Refuse(Reserved::NotRoutable)),
    ("224.0.0.0/4", Rule::Refuse(Reserved::Multicast)),
    ("240.0.0.0/4", Rule::Refuse(Reserved::Reserved)),
    // IPv6
    ("::1/128", Rule::Refuse(Reserved::Loopback)),
    ("::ffff:0:0/96", Rule::EmbeddedIpv4 { bit_offset: 96 }),
    ("::/96", Rule::Refuse(Reserved::ThisNetwork)),
    ("64:ff9b::/96", Rule::EmbeddedIpv4 { bit_offset: 96 }),
    ("64:ff9b:1::/48", Rule::Refuse(Reserved::Private)),
    ("100::/64", Rule::Refuse(Reserved::NotRoutable)),
    ("2001:db8::/32", Rule::Refuse(Reserved::NotRoutable)),
    ("2001::/23", Rule::Refuse(Reserved::NotRoutable)),
    ("2002::/16", Rule::EmbeddedIpv4 { bit_offset: 16 }),
    ("fc00::/7", Rule::Refuse(Reserved::Private)),
    ("fe80::/10", Rule::Refuse(Reserved::LinkLocal)),
    ("fec0::/10", Rule::Refuse(Reserved::Reserved)),
    ("ff00::/8", Rule::Refuse(Reserved::Multicast)),
];

/// The table, parsed once.
static TABLE: std::sync::LazyLock<Vec<(IpNet, Rule)>> = std::sync::LazyLock::new(|| {
    RANGES
        .iter()
        .filter_map(|(net, rule)| net.parse::<IpNet>().ok().map(|net| (net, *rule)))
        .collect()
});

/// Why `address` is not a public address, or `None` when it is.
pub fn reserved(address: IpAddr) -> Option<Reserved> {
    let (_, rule) = TABLE.iter().find(|(net, _)| net.contains(&address))?;
    match (*rule, address) {
        (Rule::Refuse(reason), _) => Some(reason),
        (Rule::EmbeddedIpv4 { bit_offset }, IpAddr::V6(v6)) => {
            reserved(IpAddr::V4(embedded_ipv4(v6, bit_offset)))
        }
        // Only IPv6 ranges embed addresses.
        (Rule::EmbeddedIpv4 { .. }, IpAddr::V4(_)) => Some(Reserved::Reserved),
    }
}

/// The IPv4 address whose 32 bits start `bit_offset` bits into `address`.
fn embedded_ipv4(address: Ipv6Addr, bit_offset: u32) -> Ipv4Addr {
    let bits = u128::from(address);
    let shift = 128u32.saturating_sub(bit_offset).saturating_sub(32);
    Ipv4Addr::from(((bits >> shift) & 0xffff_ffff) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(address: &str) -> Option<Reserved> {
        reserved(address.parse().expect("an address"))
    }

    #[test]
    fn the_table_parses_whole() {
        assert_eq!(TABLE.len(), RANGES.len());
    }

    #[test]
    fn internal_and_metadata_addresses_are_refused() {
        for (address, reason) in [
            ("127.0.0.1", Reserved::Loopback),
            ("127.255.255.254", Reserved::Loopback),
            ("0.0.0.0", Reserved::ThisNetwork),
            ("10.1.2.3", Reserved::Private),
            ("172.16.0.1", Reserved::Private),
            ("172.31.255.255", Reserved::Private),
            ("192.168.1.1", Reserved::Private),
            ("169.254.169.254", Reserved::LinkLocal),
            ("100.100.100.200", Reserved::SharedAddressSpace),
            ("192.0.0.192", Reserved::NotRoutable),
            ("198.18.0.1", Reserved::NotRoutable),
            ("224.0.0.1", Reserved::Multicast),
            ("255.255.255.255", Reserved::Reserved),
            ("::1", Reserved::Loopback),
            ("::", Reserved::ThisNetwork),
            ("::127.0.0.1", Reserved::ThisNetwork),
            ("fe80::1", Reserved::LinkLocal),
            ("fd00:ec2::254", Reserved::Private),
            ("fc00::1", Reserved::Private),
            ("ff02::1", Reserved::Multicast),
            ("2001:db8::1", Reserved::NotRoutable),
            // Addresses that embed an internal IPv4 address are judged by it.
            ("::ffff:127.0.0.1", Reserved::Loopback),
            ("::ffff:169.254.169.254", Reserved::LinkLocal),
            ("64:ff9b::a00:1", Reserved::Private),
            ("2002:7f00:1::", Reserved::Loopback),
            ("2002:c0a8:101::1", Reserved::Private),
        ] {
            assert_eq!(verdict(address), Some(reason), "{address}");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for address in [
            "1.1.1.1",
            "8.8.8.8",
            "157.240.22.35",
            "172.32.0.1",
            "100.128.0.1",
            "2a03:2880:f10d:83:face:b00c::25de",
            "2001:4860:4860::8888",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert_eq!(verdict(address), None, "{address}");
        }
    }
}
