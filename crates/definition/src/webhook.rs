//! The `webhook` entrypoint's API-level configuration (DESIGN 5.6): how the gateway connects to
//! subscribers' callback URLs. What each subscriber wants (URL, auth, retry) lives in its
//! subscription, in the gateway state, not in the definition.

use crate::value::{lenient_bool, lenient_u64, string_enum};
use serde::Deserialize;

/// `webhook` entrypoint configuration.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookConfiguration {
    /// HTTP client options for the callback calls.
    #[serde(default)]
    pub http: WebhookHttpOptions,
    /// The proxy the callback calls go through; none by default.
    #[serde(default)]
    pub proxy: WebhookProxy,
}

string_enum!(
    /// `proxy.type`.
    ProxyType default Http { Http => "HTTP", Socks4 => "SOCKS4", Socks5 => "SOCKS5" }
);

/// `configuration.proxy` of a webhook entrypoint (Gravitee's HTTP proxy options).
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookProxy {
    /// Calls go through a proxy only when true. Default false.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub enabled: bool,
    /// Take the proxy from `HTTP_PROXY` / `HTTPS_PROXY` / `ALL_PROXY` / `NO_PROXY` instead of
    /// `host` and `port`. Default false.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub use_system_proxy: bool,
    /// HTTP (default), SOCKS4 or SOCKS5.
    #[serde(default, rename = "type")]
    pub proxy_type: ProxyType,
    /// A host name or IP address alone; required when the proxy is enabled without the system's.
    #[serde(default)]
    pub host: Option<String>,
    /// 1 to 65535; required like `host`.
    #[serde(default, deserialize_with = "lenient_optional_port")]
    pub port: Option<u64>,
    /// Proxy credentials (HTTP and SOCKS5; SOCKS4 has no password).
    #[serde(default)]
    pub username: Option<String>,
    /// Secret: never logged (see `Debug`).
    #[serde(default)]
    pub password: Option<String>,
}

impl WebhookProxy {
    /// The proxy `host` and `port` apply (rather than no proxy or the system's).
    pub fn is_explicit(&self) -> bool {
        self.enabled && !self.use_system_proxy
    }
}

impl std::fmt::Debug for WebhookProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookProxy")
            .field("enabled", &self.enabled)
            .field("use_system_proxy", &self.use_system_proxy)
            .field("proxy_type", &self.proxy_type)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

fn lenient_optional_port<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    struct Port(#[serde(deserialize_with = "lenient_u64")] u64);
    Ok(Option::<Port>::deserialize(deserializer)?.map(|Port(port)| port))
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
    /// Most connections kept per callback host, and the most calls in flight per subscription at
    /// QoS none, auto and at-best. Default 5, at most 20 (at-most-once and at-least-once make one
    /// call at a time, to keep order).
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
