//! Connecting securely to Kafka (issue 4): trust and key stores turned into PEM for librdkafka,
//! OAUTHBEARER tokens, JAAS login lines, AWS MSK IAM signing.

pub(crate) mod jaas;
mod jks;
pub(crate) mod msk_iam;
pub(crate) mod oauth;
pub(crate) mod stores;
