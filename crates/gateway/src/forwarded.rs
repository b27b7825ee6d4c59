//! The client's address behind reverse proxies (`--trusted-proxies`). Only a connection from a
//! trusted proxy has its `X-Forwarded-For` header read; the client is the right-most address in
//! it that is not itself a trusted proxy, since every proxy appends the address it received the
//! request from and anything to its left may have been written by the client. `Forwarded`
//! (RFC 7239) is not read: most proxies append to `X-Forwarded-For` only and pass a client's own
//! `Forwarded` through, so reading it would let the client choose its address (and so its
//! key-less consumer group).

use http::HeaderMap;
use ipnet::IpNet;
use std::net::IpAddr;
use std::str::FromStr;

/// The proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    networks: Vec<IpNet>,
}

impl FromStr for TrustedProxies {
    type Err = String;

    /// A comma-separated list of addresses or CIDR networks (`10.0.0.0/8,192.168.1.7,::1`).
    fn from_str(list: &str) -> Result<Self, String> {
        let mut networks = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|entry| !entry.is_empty()) {
            let network = entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("`{entry}` is not an IP address or a CIDR network (10.0.0.0/8, ::1)"))?;
            networks.push(network);
        }
        Ok(Self { networks })
    }
}

impl TrustedProxies {
    fn trusts(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.networks.iter().any(|network| network.contains(&address))
    }

    /// The client's address: `peer` itself unless `peer` is a trusted proxy that forwarded one.
    pub fn client_address(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        // Right to left: the first hop that is not one of ours is the client. When every hop is
        // ours, nothing in the header can be told from what a client wrote: the peer it is.
        forwarded_for(headers).into_iter().rev().find(|hop| !self.trusts(*hop)).unwrap_or(peer)
    }
}

/// The addresses of `X-Forwarded-For`, in header order. Entries that are not addresses
/// (`unknown`, obfuscated names) end the chain there: nothing to their left can be placed.
fn forwarded_for(headers: &HeaderMap) -> Vec<IpAddr> {
    let entries: Vec<&str> = headers
        .get_all(http::HeaderName::from_static("x-forwarded-for"))
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    let mut chain = Vec::new();
    for entry in entries.iter().rev() {
        match parse_node(entry) {
            Some(address) => chain.push(address),
            None => break,
        }
    }
    chain.reverse();
    chain
}

/// `203.0.113.7`, `203.0.113.7:4711`, `[2001:db8::1]:4711`, `2001:db8::1`.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(address) = node.parse::<IpAddr>() {
        return Some(address);
    }
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split_once(']').and_then(|(address, _)| address.parse().ok());
    }
    node.rsplit_once(':').and_then(|(address, port)| port.parse::<u16>().ok().and(address.parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(http::HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn only_trusted_peers_are_believed_and_the_right_most_untrusted_hop_is_the_client() {
        let proxies: TrustedProxies = "10.0.0.0/8, 192.168.1.7".parse().unwrap();
        let spoofed = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.7, 10.1.2.3")]);
        assert_eq!(proxies.client_address(ip("10.9.9.9"), &spoofed), ip("203.0.113.7"));
        assert_eq!(proxies.client_address(ip("198.51.100.1"), &spoofed), ip("198.51.100.1"), "untrusted peer");
        let internal = headers(&[("x-forwarded-for", "10.4.4.4, 10.1.2.3")]);
        assert_eq!(
            proxies.client_address(ip("192.168.1.7"), &internal),
            ip("192.168.1.7"),
            "all hops trusted: the peer"
        );
        assert_eq!(proxies.client_address(ip("10.9.9.9"), &HeaderMap::new()), ip("10.9.9.9"));
        let mapped = "::ffff:10.9.9.9".parse().unwrap();
        assert_eq!(proxies.client_address(mapped, &spoofed), ip("203.0.113.7"), "IPv4-mapped peers");
    }

    #[test]
    fn only_x_forwarded_for_is_read_with_ports_and_brackets() {
        let proxies: TrustedProxies = "127.0.0.1".parse().unwrap();
        let both =
            headers(&[("forwarded", "for=198.51.100.9"), ("x-forwarded-for", "203.0.113.7, [2001:db8::5]:4711")]);
        assert_eq!(proxies.client_address(ip("127.0.0.1"), &both), ip("2001:db8::5"));
        let spoof = headers(&[("forwarded", "for=198.51.100.9")]);
        assert_eq!(proxies.client_address(ip("127.0.0.1"), &spoof), ip("127.0.0.1"), "Forwarded is not read");
        let unknown = headers(&[("x-forwarded-for", "203.0.113.1, unknown, 198.51.100.2:80")]);
        assert_eq!(proxies.client_address(ip("127.0.0.1"), &unknown), ip("198.51.100.2"));
    }

    #[test]
    fn lists_are_checked() {
        assert!("10.0.0.0/8,::1".parse::<TrustedProxies>().is_ok());
        assert!("".parse::<TrustedProxies>().unwrap().networks.is_empty());
        let error = "10.0.0.0/33".parse::<TrustedProxies>().unwrap_err();
        assert!(error.contains("`10.0.0.0/33`"), "{error}");
    }
}
