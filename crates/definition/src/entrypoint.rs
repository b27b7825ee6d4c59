//! Entrypoint configurations (`listeners[].entrypoints[].configuration`), one struct per type.
//! Unknown fields are errors: these blocks are ours to implement completely.

use crate::value::{lenient_bool, lenient_u64};
use serde::Deserialize;

/// The typed `configuration` of an entrypoint.
#[derive(Debug, Clone)]
pub enum EntrypointConfiguration {
    HttpGet(HttpGetConfiguration),
    HttpPost(HttpPostConfiguration),
    Sse(SseConfiguration),
    Websocket(WebsocketConfiguration),
    Webhook(crate::WebhookConfiguration),
    /// An entrypoint type this build does not serve yet; reported at load as ignored.
    NotImplemented,
}

/// `http-get` (DESIGN 5.2).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpGetConfiguration {
    /// Most messages one response carries. Default 500; at least 1.
    #[serde(default = "default_messages_limit_count", deserialize_with = "lenient_u64")]
    pub messages_limit_count: u64,
    /// Longest time one response collects messages, in ms. Default 5000; 0 means no time limit.
    #[serde(default = "default_messages_limit_duration_ms", deserialize_with = "lenient_u64")]
    pub messages_limit_duration_ms: u64,
    /// Include each message's headers in the body. Default false.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub headers_in_payload: bool,
    /// Include each message's metadata (key, topic, partition, offset, timestamp). Default false.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub metadata_in_payload: bool,
}

fn default_messages_limit_count() -> u64 {
    500
}

fn default_messages_limit_duration_ms() -> u64 {
    5000
}

impl Default for HttpGetConfiguration {
    fn default() -> Self {
        Self {
            messages_limit_count: default_messages_limit_count(),
            messages_limit_duration_ms: default_messages_limit_duration_ms(),
            headers_in_payload: false,
            metadata_in_payload: false,
        }
    }
}

/// `http-post` (DESIGN 5.3).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpPostConfiguration {
    /// Copy every HTTP request header into the message headers. Default false.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub request_headers_to_message: bool,
}

/// `sse` (DESIGN 5.5).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SseConfiguration {
    /// Idle time after which a `:` comment keeps the connection alive, in ms. Default 5000; at least 1.
    #[serde(default = "default_heartbeat_interval_ms", deserialize_with = "lenient_u64")]
    pub heartbeat_interval_in_ms: u64,
    /// Send each message's metadata as `:name: value` comments. Default false.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub metadata_as_comment: bool,
    /// Send each message's headers as `:name: value` comments. Default false.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub headers_as_comment: bool,
}

fn default_heartbeat_interval_ms() -> u64 {
    5000
}

impl Default for SseConfiguration {
    fn default() -> Self {
        Self {
            heartbeat_interval_in_ms: default_heartbeat_interval_ms(),
            metadata_as_comment: false,
            headers_as_comment: false,
        }
    }
}

/// `websocket` (DESIGN 5.4): which directions one connection serves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebsocketConfiguration {
    /// Frames from the client are published. Default enabled.
    #[serde(default)]
    pub publisher: WebsocketDirection,
    /// Consumed messages are sent to the client. Default enabled.
    #[serde(default)]
    pub subscriber: WebsocketDirection,
}

/// `publisher` / `subscriber` of a `websocket` entrypoint.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebsocketDirection {
    /// Default true.
    #[serde(default = "enabled", deserialize_with = "lenient_bool")]
    pub enabled: bool,
}

fn enabled() -> bool {
    true
}

impl Default for WebsocketDirection {
    fn default() -> Self {
        Self { enabled: true }
    }
}
