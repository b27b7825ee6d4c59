//! Connecting securely to Kafka: OAUTHBEARER tokens, JAAS login lines, AWS MSK IAM signing (trust
//! and key stores are read by the `kafka-edge-stores` crate).

pub(crate) mod client_credentials;
pub(crate) mod jaas;
pub(crate) mod msk_iam;
pub(crate) mod oauth;

/// An error and its causes, `: `-separated (reqwest's own text alone says little).
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
