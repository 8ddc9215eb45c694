//! Which network addresses an admin-supplied provider URL may reach (no SSRF).
//!
//! A provider is a public service: an address on this machine, on a private or shared network,
//! a cloud metadata service, or one that is not a single host at all is refused. The rule is pure
//! (addresses as data), so it is tested without sending anything anywhere; the server applies it
//! to every address a provider host name resolves to, and connects only to the address checked.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is not a public host, or `Public`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    Public,
    /// 127.0.0.0/8, ::1: this machine.
    Loopback,
    /// RFC 1918 (10/8, 172.16/12, 192.168/16), IPv6 unique-local fc00::/7 and site-local.
    Private,
    /// 169.254/16, fe80::/10.
    LinkLocal,
    /// Cloud instance metadata services (169.254.169.254, fd00:ec2::254, 100.100.100.200, …).
    Metadata,
    /// Carrier-grade NAT shared space, 100.64/10.
    SharedNat,
    Multicast,
    /// 0.0.0.0/8, ::.
    Unspecified,
    Broadcast,
    /// Documentation, benchmarking, IETF-reserved and future-use ranges.
    Reserved,
}

impl AddressClass {
    /// Classifies `ip`; an IPv6 address that embeds an IPv4 one (mapped, compatible, NAT64,
    /// 6to4) is judged by the IPv4 address it reaches.
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self::of_v4(v4),
            IpAddr::V6(v6) => Self::of_v6(v6),
        }
    }

    fn of_v4(ip: Ipv4Addr) -> Self {
        let [a, b, c, d] = ip.octets();
        match (a, b, c, d) {
            (169, 254, 169, 254) | (169, 254, 170, 2) | (100, 100, 100, 200) => Self::Metadata,
            (192, 0, 0, 192) => Self::Metadata,
            (255, 255, 255, 255) => Self::Broadcast,
            (0, ..) => Self::Unspecified,
            (127, ..) => Self::Loopback,
            (10, ..) | (192, 168, ..) => Self::Private,
            (172, b, ..) if (16..=31).contains(&b) => Self::Private,
            (169, 254, ..) => Self::LinkLocal,
            (100, b, ..) if (64..=127).contains(&b) => Self::SharedNat,
            (224..=239, ..) => Self::Multicast,
            (240..=255, ..) => Self::Reserved,
            (192, 0, 0, _) | (192, 0, 2, _) | (198, 51, 100, _) | (203, 0, 113, _) => {
                Self::Reserved
            }
            (198, 18 | 19, ..) => Self::Reserved,
            _ => Self::Public,
        }
    }

    fn of_v6(ip: Ipv6Addr) -> Self {
        if ip.is_unspecified() {
            return Self::Unspecified;
        }
        if ip.is_loopback() {
            return Self::Loopback;
        }
        if let Some(v4) = embedded_v4(ip) {
            return Self::of_v4(v4);
        }
        let s = ip.segments();
        match s[0] {
            // AWS's IPv6 metadata endpoint sits inside the unique-local range.
            0xfd00 if s[1] == 0x0ec2 && s[2..7] == [0; 5] && s[7] == 0x254 => Self::Metadata,
            x if x & 0xfe00 == 0xfc00 => Self::Private,
            x if x & 0xffc0 == 0xfe80 => Self::LinkLocal,
            // Deprecated site-local: private by intent.
            x if x & 0xffc0 == 0xfec0 => Self::Private,
            x if x & 0xff00 == 0xff00 => Self::Multicast,
            // Documentation (2001:db8::/32), Teredo tunnels (2001::/32, which reach IPv4 hosts
            // behind NAT), ORCHID, and anything outside 2000::/3 (not yet allocated for
            // unicast; this takes in the discard prefix 100::/64).
            0x2001 if s[1] == 0x0db8 || s[1] == 0 || (0x10..=0x3f).contains(&s[1]) => {
                Self::Reserved
            }
            x if x & 0xe000 != 0x2000 => Self::Reserved,
            _ => Self::Public,
        }
    }

    pub fn is_public(self) -> bool {
        self == Self::Public
    }

    /// What the address is, in words an administrator reads.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Public => "a public address",
            Self::Loopback => "an address on this machine (loopback)",
            Self::Private => "a private network address",
            Self::LinkLocal => "a link-local address",
            Self::Metadata => "a cloud metadata service address",
            Self::SharedNat => "a carrier-grade NAT (shared) address",
            Self::Multicast => "a multicast address",
            Self::Unspecified => "an unspecified address",
            Self::Broadcast => "the broadcast address",
            Self::Reserved => "a reserved or documentation address",
        }
    }
}

/// The IPv4 address an IPv6 address carries and reaches: ::ffff:a.b.c.d (mapped), ::a.b.c.d
/// (compatible, deprecated), 64:ff9b::a.b.c.d (NAT64) and 2002:aabb:ccdd::/48 (6to4).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low =
        |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, hi, lo] => Some(low(hi, lo)),
        [0, 0, 0, 0, 0, 0, hi, lo] => Some(low(hi, lo)),
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(low(hi, lo)),
        [0x2002, hi, lo, ..] => Some(low(hi, lo)),
        _ => None,
    }
}

/// An address refused for a provider call, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressRefused {
    pub ip: IpAddr,
    pub class: AddressClass,
}

impl fmt::Display for AddressRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the provider's address {} is {}, which this app does not call; a provider must be \
             a public https service (an operator can allow a host in IMPACT_ALLOW_PROVIDER_HOSTS)",
            self.ip,
            self.class.describe()
        )
    }
}

impl std::error::Error for AddressRefused {}

/// `Ok` when `ip` is a public host address.
pub fn check_address(ip: IpAddr) -> Result<(), AddressRefused> {
    match AddressClass::of(ip) {
        AddressClass::Public => Ok(()),
        class => Err(AddressRefused { ip, class }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ProviderUrl;

    fn class(s: &str) -> AddressClass {
        AddressClass::of(s.parse().expect(s))
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "93.184.216.34",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            // In 2001::/16 but outside its documentation, Teredo and ORCHID parts.
            "2001:4860:4860::8888",
        ] {
            assert_eq!(class(ip), AddressClass::Public, "{ip}");
            assert!(class(ip).is_public(), "{ip}");
        }
    }

    #[test]
    fn every_non_public_range_is_refused() {
        use AddressClass::*;
        let cases = [
            ("127.0.0.1", Loopback),
            ("127.0.0.2", Loopback),
            ("127.255.255.254", Loopback),
            ("::1", Loopback),
            ("10.0.0.1", Private),
            ("10.255.255.255", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("192.168.1.1", Private),
            ("fc00::1", Private),
            ("fd12:3456::1", Private),
            ("fec0::1", Private),
            ("169.254.1.1", LinkLocal),
            ("fe80::1", LinkLocal),
            ("169.254.169.254", Metadata),
            ("169.254.170.2", Metadata),
            ("100.100.100.200", Metadata),
            ("192.0.0.192", Metadata),
            ("fd00:ec2::254", Metadata),
            // Its neighbours are merely private (the words an admin reads differ).
            ("fd00:ec2::253", Private),
            ("fd00:ec3::254", Private),
            ("fd00:ec2:0:0:1::254", Private),
            ("100.64.0.1", SharedNat),
            ("100.127.255.255", SharedNat),
            ("224.0.0.1", Multicast),
            ("239.255.255.250", Multicast),
            ("ff02::1", Multicast),
            ("0.0.0.0", Unspecified),
            ("0.1.2.3", Unspecified),
            ("::", Unspecified),
            ("255.255.255.255", Broadcast),
            ("240.0.0.1", Reserved),
            ("192.0.2.1", Reserved),
            ("198.51.100.7", Reserved),
            ("203.0.113.9", Reserved),
            ("198.18.0.1", Reserved),
            ("2001:db8::1", Reserved),
            ("2001:0:4136:e378::1", Reserved),
            ("100::1", Reserved),
            ("4000::1", Reserved),
        ];
        for (ip, want) in cases {
            assert_eq!(class(ip), want, "{ip}");
            assert!(!class(ip).is_public(), "{ip}");
            assert!(check_address(ip.parse().expect(ip)).is_err(), "{ip}");
        }
    }

    #[test]
    fn ipv6_forms_that_carry_an_ipv4_address_are_judged_by_it() {
        use AddressClass::*;
        for (ip, want) in [
            ("::ffff:127.0.0.1", Loopback),
            ("::ffff:7f00:1", Loopback),
            ("::ffff:10.1.2.3", Private),
            ("::ffff:169.254.169.254", Metadata),
            ("::127.0.0.1", Loopback),
            ("64:ff9b::10.0.0.1", Private),
            ("64:ff9b::a9fe:a9fe", Metadata),
            ("2002:c0a8:0101::1", Private),
            ("2002:7f00:1::", Loopback),
            ("::ffff:8.8.8.8", Public),
            ("64:ff9b::8.8.8.8", Public),
        ] {
            assert_eq!(class(ip), want, "{ip}");
        }
    }

    /// The URL parser turns every spelling of an IPv4 address into the address itself, so the
    /// check sees 127.0.0.1 however it was written.
    #[test]
    fn decimal_octal_and_hex_spellings_reach_the_same_check() {
        for (url, ip) in [
            ("https://2130706433:22/", "127.0.0.1"),
            ("https://0177.0.0.1/", "127.0.0.1"),
            ("https://0x7f.1/", "127.0.0.1"),
            ("https://017700000001/", "127.0.0.1"),
            ("https://167772161/", "10.0.0.1"),
            ("https://0xa9fea9fe/", "169.254.169.254"),
            ("https://[::ffff:a9fe:a9fe]/", "::ffff:169.254.169.254"),
            ("https://[0:0:0:0:0:0:0:1]/", "::1"),
        ] {
            let parsed = ProviderUrl::parse(url).expect(url);
            let want: IpAddr = ip.parse().expect(ip);
            assert_eq!(parsed.ip(), Some(want), "{url}");
            assert!(check_address(want).is_err(), "{url}");
        }
        assert_eq!(
            ProviderUrl::parse("https://idi.example.com")
                .expect("ok")
                .ip(),
            None
        );
    }

    #[test]
    fn the_refusal_names_the_address_and_what_it_is() {
        let e = check_address("10.1.2.3".parse().expect("ip")).expect_err("private");
        let text = e.to_string();
        assert!(text.contains("10.1.2.3"), "{text}");
        assert!(text.contains("a private network address"), "{text}");
        assert!(text.contains("IMPACT_ALLOW_PROVIDER_HOSTS"), "{text}");
    }
}
