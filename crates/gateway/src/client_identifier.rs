//! Who is calling (DESIGN 5.1, docs/plans.md): what the plan found (the subscription of an API key,
//! the client of a JWT; for key-less plans a hash of the API and the remote address), suffixed with
//! `X-Gravitee-Client-Identifier` when the client sends one. It is the default consumer group, so
//! repeated calls from one client to one API continue where the previous one stopped. The API is
//! part of the key-less hash so that one client's calls to two APIs are two groups: a GET on one
//! API does not rebalance a stream on another, and two APIs on one topic keep their own offsets.

use http::HeaderMap;
use sha2::{Digest, Sha256};
use std::net::IpAddr;

pub const CLIENT_IDENTIFIER_HEADER: &str = "x-gravitee-client-identifier";

/// The client identifier of a key-less request.
pub fn key_less(api_id: &str, remote: IpAddr, headers: &HeaderMap) -> String {
    with_sent(anonymous(api_id, remote), headers, '-')
}

/// Who a caller without credentials is: a hash of the API and the address.
pub fn anonymous(api_id: &str, remote: IpAddr) -> String {
    let mut hasher = Sha256::new();
    hasher.update(api_id.as_bytes());
    // API ids cannot hold a NUL, so the two parts cannot run into each other.
    hasher.update([0]);
    hasher.update(remote.to_string().as_bytes());
    let digest = hasher.finalize();
    digest.iter().take(16).map(|byte| format!("{byte:02x}")).collect()
}

/// `inferred`, with the value of `X-Gravitee-Client-Identifier` appended after `separator` when
/// the client sends one. Credentialed identities (subscription ids, client ids) may hold `-`, so
/// theirs is `/`, which subscription ids cannot hold: the key of subscription `mobile` sending `app`
/// never lands in the group of subscription `mobile-app`.
pub fn with_sent(inferred: String, headers: &HeaderMap, separator: char) -> String {
    match headers.get(CLIENT_IDENTIFIER_HEADER).and_then(|v| v.to_str().ok()).map(str::trim) {
        Some(provided) if !provided.is_empty() => format!("{inferred}{separator}{provided}"),
        _ => inferred,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_address_same_identifier_and_the_header_is_appended() {
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        let none = HeaderMap::new();
        assert_eq!(key_less("api", ip, &none), key_less("api", ip, &none));
        assert_ne!(key_less("api", ip, &none), key_less("api", other, &none));
        let mut headers = HeaderMap::new();
        headers.insert(CLIENT_IDENTIFIER_HEADER, "mobile-1".parse().unwrap());
        assert_eq!(key_less("api", ip, &headers), format!("{}-mobile-1", key_less("api", ip, &none)));
        assert_ne!(key_less("api", ip, &none), key_less("another-api", ip, &none), "one group per API");
    }
}
