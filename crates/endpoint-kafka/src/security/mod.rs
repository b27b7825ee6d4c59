//! Connecting securely to Kafka: OAUTHBEARER tokens, JAAS login lines, AWS MSK IAM signing (trust
//! and key stores are read by the `kafka-edge-stores` crate).

pub(crate) mod client_credentials;
pub(crate) mod jaas;
pub(crate) mod msk_iam;
pub(crate) mod oauth;
