//! Connecting securely to Kafka (issue 4): trust and key stores turned into PEM for librdkafka,
//! OAUTHBEARER tokens, JAAS login lines, AWS MSK IAM signing.

pub(crate) mod jaas;
pub(crate) mod msk_iam;
