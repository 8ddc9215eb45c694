//! Who a request comes from when a proxy stands between: behind a load balancer every browser
//! arrives from the balancer's address, so the sign-in throttle would count all of them as one.
//! The proxies named in IMPACT_TRUSTED_PROXIES say who their client was in `X-Forwarded-For`;
//! from anyone else the header is ignored (a client could write anything in it).
use std::net::IpAddr;

/// The address to count a request against: `peer`, unless `peer` is a trusted proxy, then the
/// nearest address in `forwarded_for` (read right to left, as each proxy appends the address it
/// saw) that is not itself a trusted proxy. A malformed entry ends the walk: what lies left of
/// it cannot be trusted either, so the last good address is used.
pub fn client_ip(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let mut client = peer;
    for entry in forwarded_for.unwrap_or("").rsplit(',') {
        match entry.trim().parse::<IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !trusted.contains(&ip) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::client_ip;
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_header_counts_only_from_a_trusted_proxy() {
        let proxy = [ip("10.0.0.1")];
        // No trusted proxies (the default): the header is ignored, whatever it says.
        assert_eq!(
            client_ip(ip("10.0.0.1"), Some("198.51.100.7"), &[]),
            ip("10.0.0.1")
        );
        // From someone not trusted: ignored.
        assert_eq!(
            client_ip(ip("192.0.2.9"), Some("198.51.100.7"), &proxy),
            ip("192.0.2.9")
        );
        // From the trusted proxy: the client it saw.
        assert_eq!(
            client_ip(ip("10.0.0.1"), Some("198.51.100.7"), &proxy),
            ip("198.51.100.7")
        );
        // IPv6, spaces.
        assert_eq!(
            client_ip(ip("10.0.0.1"), Some(" 2001:db8::5 "), &proxy),
            ip("2001:db8::5")
        );
    }

    #[test]
    fn the_nearest_untrusted_address_wins_over_what_the_client_wrote() {
        let proxies = [ip("10.0.0.1"), ip("10.0.0.2")];
        // The client wrote "203.0.113.1" itself; proxy 10.0.0.2 appended what it saw, then
        // 10.0.0.1 appended 10.0.0.2: the client is 198.51.100.7.
        assert_eq!(
            client_ip(
                ip("10.0.0.1"),
                Some("203.0.113.1, 198.51.100.7, 10.0.0.2"),
                &proxies
            ),
            ip("198.51.100.7")
        );
        // Only proxies in the header: the leftmost of them.
        assert_eq!(
            client_ip(ip("10.0.0.1"), Some("10.0.0.2"), &proxies),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn a_missing_or_malformed_header_falls_back_to_what_is_known() {
        let proxy = [ip("10.0.0.1")];
        assert_eq!(client_ip(ip("10.0.0.1"), None, &proxy), ip("10.0.0.1"));
        assert_eq!(client_ip(ip("10.0.0.1"), Some(""), &proxy), ip("10.0.0.1"));
        assert_eq!(
            client_ip(ip("10.0.0.1"), Some("unknown"), &proxy),
            ip("10.0.0.1")
        );
        // A malformed entry stops the walk at the last good address to its right.
        assert_eq!(
            client_ip(ip("10.0.0.1"), Some("198.51.100.7, junk, 10.0.0.1"), &proxy),
            ip("10.0.0.1")
        );
    }
}
