//! Kafka-side trouble, logged where an operator can act on it: with the API, the entrypoint and
//! the bootstrap servers (never credentials), once per API, entrypoint and cause per minute,
//! however many requests meet it. Each request still gets its answer; the log says why.

use crate::failure::classify_connection_error;
use kafka_edge_message::{EndpointFailure, ExecutionContext, FailureKind};
use rdkafka::error::KafkaError;
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long the same trouble stays quiet after it was logged.
const QUIET_FOR: Duration = Duration::from_secs(60);
/// Keys come from definitions and failure kinds, but a topic may come from a request: past this
/// many remembered keys, the ones older than `QUIET_FOR` are forgotten.
const MAX_REMEMBERED: usize = 1024;

type Key = (String, &'static str, String);

static LAST_LOGGED: LazyLock<Mutex<HashMap<Key, Instant>>> = LazyLock::new(Default::default);

/// Where a request meets its cluster.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    pub api: String,
    pub entrypoint: &'static str,
    pub bootstrap_servers: String,
    /// The client's address, which consumer slots are counted by (never logged).
    pub client_address: String,
}

impl Origin {
    pub(crate) fn new(context: &ExecutionContext, bootstrap_servers: &str) -> Self {
        Self {
            api: context.api_id().to_string(),
            entrypoint: context.entrypoint,
            bootstrap_servers: bootstrap_servers.to_string(),
            client_address: context.request.remote_address.clone(),
        }
    }

    /// A failure a request ended with. The client's own mistakes (a bad request, a record too
    /// large, a flow's interrupt) are the client's answer, not trouble with Kafka: not logged here.
    pub(crate) fn failure(&self, failure: &EndpointFailure) {
        let clients_own = matches!(
            failure.kind,
            FailureKind::BadRequest | FailureKind::PayloadTooLarge | FailureKind::Interrupted { .. }
        );
        if !clients_own && self.first_in_a_while(&failure.message) {
            tracing::warn!(
                api = %self.api,
                entrypoint = self.entrypoint,
                bootstrap_servers = %self.bootstrap_servers,
                key = failure.kind.key(),
                "Kafka request failed: {}", failure.message
            );
        }
    }

    /// Subscribed topics the cluster does not know: requests wait for them (and an http-get
    /// answers empty when its time is up) unless `checkTopicExistence` is on.
    pub(crate) fn missing_topics(&self, topics: &[String]) {
        let names = topics.join(", ");
        if self.first_in_a_while(&format!("missing topic {names}")) {
            tracing::warn!(
                api = %self.api,
                entrypoint = self.entrypoint,
                bootstrap_servers = %self.bootstrap_servers,
                topics = %names,
                "Subscribed topic does not exist (yet): consumers wait for it and receive nothing until it is created; \
                 set consumer.checkTopicExistence to true to fail such requests at once."
            );
        }
    }

    /// A client-level error librdkafka reported for a consumer (a refused login, a TLS failure):
    /// its reason names the cause, never a credential. Other errors go to the debug log only.
    pub(crate) fn client_error(&self, error: &KafkaError, reason: &str) {
        let Some(failure) = classify_connection_error(error, true) else {
            if self.first_in_a_while(&format!("client {error}")) {
                tracing::warn!(
                    api = %self.api,
                    entrypoint = self.entrypoint,
                    bootstrap_servers = %self.bootstrap_servers,
                    %reason,
                    "Kafka consumer error: {error}"
                );
            }
            return;
        };
        if self.first_in_a_while(&format!("client {}", failure.message)) {
            tracing::warn!(
                api = %self.api,
                entrypoint = self.entrypoint,
                bootstrap_servers = %self.bootstrap_servers,
                %reason,
                "Kafka consumer: {}", failure.message
            );
        }
    }

    fn first_in_a_while(&self, cause: &str) -> bool {
        let key = (format!("{}\u{0}{}", self.api, self.bootstrap_servers), self.entrypoint, cause.to_string());
        first_in_a_while(key)
    }
}

/// Whether `key` (where, which entrypoint, what) was not logged in the last minute; remembers it.
pub(crate) fn first_in_a_while(key: Key) -> bool {
    let now = Instant::now();
    let mut logged = LAST_LOGGED.lock().unwrap_or_else(PoisonError::into_inner);
    if logged.len() >= MAX_REMEMBERED {
        logged.retain(|_, at| now.duration_since(*at) < QUIET_FOR);
        if logged.len() >= MAX_REMEMBERED {
            // Many causes within a minute (topics from requests): forget them all rather than
            // grow; the worst case is a line per new cause.
            logged.clear();
        }
    }
    match logged.get(&key) {
        Some(at) if now.duration_since(*at) < QUIET_FOR => false,
        _ => {
            logged.insert(key, now);
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_trouble_is_logged_once_a_minute_per_api_entrypoint_and_cause() {
        let origin = |api: &str, entrypoint| Origin {
            api: api.into(),
            entrypoint,
            bootstrap_servers: "127.0.0.1:1".into(),
            client_address: String::new(),
        };
        let unique_api = format!("report-test-{:?}", Instant::now());
        assert!(origin(&unique_api, "http-get").first_in_a_while("cause"));
        assert!(!origin(&unique_api, "http-get").first_in_a_while("cause"), "quiet for a minute");
        assert!(origin(&unique_api, "sse").first_in_a_while("cause"), "another entrypoint");
        assert!(origin(&unique_api, "http-get").first_in_a_while("another cause"));
    }
}
