//! The `webhook` entrypoint's API-level configuration (DESIGN 5.6): how the gateway connects to
//! subscribers' callback URLs. What each subscriber wants (URL, auth, retry) lives in its
//! subscription, in the gateway state, not in the definition.

use crate::value::lenient_u64;
use serde::Deserialize;
use serde_json::Value;

/// `webhook` entrypoint configuration.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookConfiguration {
    /// HTTP client options for the callback calls.
    #[serde(default)]
    pub http: WebhookHttpOptions,
    /// Gravitee's outbound proxy options: accepted, not applied by this version.
    #[serde(default)]
    pub proxy: Option<Value>,
}

/// `configuration.http` of a webhook entrypoint.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookHttpOptions {
    /// Longest wait for the TCP (and TLS) connection to a callback URL, in ms. Default 3000.
    #[serde(default = "default_connect_timeout", deserialize_with = "lenient_u64")]
    pub connect_timeout: u64,
    /// Longest wait between two reads of a callback response, in ms. Default 10000.
    #[serde(default = "default_read_timeout", deserialize_with = "lenient_u64")]
    pub read_timeout: u64,
    /// How long an unused connection to a callback URL is kept, in ms. Default 60000.
    #[serde(default = "default_idle_timeout", deserialize_with = "lenient_u64")]
    pub idle_timeout: u64,
    /// Most connections kept per callback host. Default 5, at most 20; deliveries are sequential
    /// per subscription in this version, so one connection is used at a time.
    #[serde(default = "default_max_concurrent_connections", deserialize_with = "lenient_u64")]
    pub max_concurrent_connections: u64,
}

fn default_connect_timeout() -> u64 {
    3000
}

fn default_read_timeout() -> u64 {
    10000
}

fn default_idle_timeout() -> u64 {
    60000
}

fn default_max_concurrent_connections() -> u64 {
    5
}

impl Default for WebhookHttpOptions {
    fn default() -> Self {
        Self {
            connect_timeout: default_connect_timeout(),
            read_timeout: default_read_timeout(),
            idle_timeout: default_idle_timeout(),
            max_concurrent_connections: default_max_concurrent_connections(),
        }
    }
}
