//! `api-key` plans: the key comes in the `X-Gravitee-Api-Key` header or the `api-key` query
//! parameter and is looked up, by its SHA-256, among the API's keys in the gateway state.

use super::{Admission, CompiledPlan, Refusal, ATTR_PLAN, ATTR_SUBSCRIPTION};
use crate::state::record::{api_key_key, sha256_hex};
use crate::state::StateStore;
use base64::Engine as _;
use http::request::Parts;
use kafka_edge_definition::PlanSecurityType;

pub const API_KEY_HEADER: &str = "x-gravitee-api-key";
pub const API_KEY_QUERY: &str = "api-key";

/// Length of a key given by an operator, and its alphabet (URL-unreserved characters, so the key
/// works unchanged in a query parameter). At least 16: the state holds a key's plain SHA-256, which
/// anyone who can read the state could try short keys against.
const KEY_LENGTH: std::ops::RangeInclusive<usize> = 16..=256;

/// Why a key given to the admin API or in a keys file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an API key is {min} to {max} characters of A-Z, a-z, 0-9, `-`, `_`, `.` and `~`", min = KEY_LENGTH.start(), max = KEY_LENGTH.end())]
pub struct ApiKeyError;

/// Checks a key an operator chose.
pub fn check_key(key: &str) -> Result<(), ApiKeyError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~');
    if KEY_LENGTH.contains(&key.len()) && key.chars().all(allowed) {
        Ok(())
    } else {
        Err(ApiKeyError)
    }
}

/// A new key: 32 random bytes, base64url without padding (43 characters).
pub fn generate_key() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// How a key is named in the state.
pub fn hash_key(key: &str) -> String {
    sha256_hex(key.as_bytes())
}

/// The key the request carries: the header first, then the query parameter.
pub(super) fn presented(parts: &Parts, query: &[(String, String)]) -> Option<String> {
    let from_header = parts.headers.get(API_KEY_HEADER).and_then(|value| value.to_str().ok()).map(str::trim);
    match from_header {
        Some(key) if !key.is_empty() => Some(key.to_owned()),
        _ => super::query_parameter(query, API_KEY_QUERY),
    }
}

pub(super) fn admit<'p>(
    candidates: &[&'p CompiledPlan],
    key: &str,
    api: &str,
    store: Option<&dyn StateStore>,
) -> Result<Admission<'p>, Refusal> {
    let refuse = |reason: &str| Refusal::invalid(PlanSecurityType::ApiKey, reason);
    let key_hash = hash_key(key);
    let record =
        store.and_then(|store| store.api_key(api, &key_hash)).ok_or_else(|| refuse("unknown or revoked API key"))?;
    let plan = candidates
        .iter()
        .find(|plan| plan.id == record.plan_id)
        .ok_or_else(|| refuse("the API key's plan does not take this request (closed, or its selection rule)"))?;
    let mut attributes = vec![
        (ATTR_PLAN.to_string(), record.plan_id.clone()),
        (ATTR_SUBSCRIPTION.to_string(), record.subscription.clone()),
    ];
    if plan.propagates_credential() {
        attributes.push(("gravitee.attribute.api-key".into(), key.to_owned()));
    }
    Ok(Admission {
        plan: Some(plan),
        revocable: Some(api_key_key(api, &key_hash)),
        attributes,
        client_identifier: record.subscription,
        claims: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_long_url_safe_and_pass_the_check() {
        let first = generate_key().unwrap();
        assert_eq!(first.len(), 43);
        assert!(check_key(&first).is_ok());
        assert_ne!(first, generate_key().unwrap());
    }

    #[test]
    fn chosen_keys_are_checked() {
        assert!(check_key("abcdefgh-12345678").is_ok());
        for bad in ["short", "abcdefgh", "with space in it", "semi;colon-key-x", &"x".repeat(257)] {
            assert_eq!(check_key(bad), Err(ApiKeyError), "{bad}");
        }
    }

    #[test]
    fn the_header_wins_over_the_query_parameter() {
        let request = |uri: &str, header: Option<&str>| {
            let mut builder = http::Request::builder().uri(uri);
            if let Some(header) = header {
                builder = builder.header("X-Gravitee-Api-Key", header);
            }
            builder.body(()).unwrap().into_parts().0
        };
        let presented = |parts: http::request::Parts| {
            let query = kafka_edge_entrypoints::query::parse(parts.uri.query());
            presented(&parts, &query)
        };
        assert_eq!(presented(request("/a?api-key=q", Some("h"))), Some("h".into()));
        assert_eq!(presented(request("/a?x=1&api-key=q%2Dk", None)), Some("q-k".into()));
        assert_eq!(presented(request("/a", None)), None);
    }
}
