//! The gateway state (DESIGN 8): webhook subscriptions, API keys and client certificates created at
//! run time ([`Record`]). Held in memory by every store and persisted by the store the `--state`
//! URI names:
//! - `file:PATH`: one JSON file, rewritten atomically (temp file + rename, mode 0600), for one gateway;
//! - `kafka://HOST:PORT/TOPIC`: a compacted topic every gateway of a fleet follows.
//!
//! Changes are announced on a watch channel, so delivery can follow changes made by other gateways.

mod file;
mod kafka;
pub mod record;
/// The subscription model lives with the other definitions (it is pure data).
pub use kafka_edge_definition::subscription as model;
pub mod validate;

pub use file::FileStore;
pub use kafka::KafkaStore;
pub use model::{Subscription, SubscriptionState};
pub use record::{ApiKey, ClientCertificate, Record};

use kafka_edge_definition::{Problem, SecurityConfiguration};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// The default `--state`.
pub const DEFAULT_STATE: &str = "file:./kafka-edge-state";

/// Why the state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("invalid state URI `{0}`: expected file:PATH or kafka://HOST:PORT/TOPIC")]
    InvalidUri(String),
    #[error("state file {path}: {source}")]
    File { path: String, source: std::io::Error },
    #[error("state file {path} is not valid: {message}")]
    Corrupt { path: String, message: String },
    #[error("state topic: {0}")]
    Kafka(String),
    /// The path is relative to the `--state-security` file, like the problems of that file.
    #[error("--state-security: {0}")]
    Security(Problem),
    #[error("--state-security (KAFKA_EDGE_STATE_SECURITY) applies to a kafka:// state only")]
    SecurityWithoutKafka,
}

/// Where the state lives. Stores implement the record operations; the typed ones are built on them.
#[async_trait::async_trait]
pub trait StateStore: Send + Sync {
    /// Every record, in key order.
    fn records(&self) -> Vec<Record>;
    fn record(&self, key: &str) -> Option<Record>;
    /// Creates or replaces the record under its key; durable when it returns.
    async fn put_record(&self, record: Record) -> Result<(), StateError>;
    /// Removes the record under `key`; false when there was none.
    async fn delete_record(&self, key: &str) -> Result<bool, StateError>;
    /// Changes (by this gateway or, for a shared store, by others) bump the value.
    fn changes(&self) -> watch::Receiver<u64>;

    /// Every subscription, in key order.
    fn list(&self) -> Vec<Subscription> {
        self.records().into_iter().filter_map(|record| record.as_subscription().cloned()).collect()
    }

    fn get(&self, api: &str, id: &str) -> Option<Subscription> {
        self.record(&model::key(api, id)).and_then(|record| record.as_subscription().cloned())
    }

    async fn put(&self, subscription: Subscription) -> Result<(), StateError> {
        self.put_record(subscription.into()).await
    }

    async fn delete(&self, api: &str, id: &str) -> Result<bool, StateError> {
        self.delete_record(&model::key(api, id)).await
    }

    /// The API key of `api` whose SHA-256 is `key_hash`.
    fn api_key(&self, api: &str, key_hash: &str) -> Option<ApiKey> {
        match self.record(&record::api_key_key(api, key_hash)) {
            Some(Record::ApiKey(key)) => Some(key),
            _ => None,
        }
    }

    /// The client certificate of `api` with this fingerprint.
    fn client_certificate(&self, api: &str, fingerprint: &str) -> Option<ClientCertificate> {
        match self.record(&record::certificate_key(api, fingerprint)) {
            Some(Record::ClientCertificate(certificate)) => Some(certificate),
            _ => None,
        }
    }
}

/// Opens the store a `--state` URI names; a `kafka://` store over PLAINTEXT.
pub async fn open(uri: &str) -> Result<Arc<dyn StateStore>, StateError> {
    open_with(uri, None).await
}

/// Opens the store a `--state` URI names; a `kafka://` store connects with `kafka_security` (the
/// `security` block of a Kafka endpoint), PLAINTEXT without it.
pub async fn open_with(
    uri: &str,
    kafka_security: Option<&SecurityConfiguration>,
) -> Result<Arc<dyn StateStore>, StateError> {
    if let Some(path) = uri.strip_prefix("file:") {
        if path.is_empty() {
            return Err(StateError::InvalidUri(uri.into()));
        }
        if kafka_security.is_some() {
            return Err(StateError::SecurityWithoutKafka);
        }
        return Ok(Arc::new(FileStore::open(path)?));
    }
    if let Some(rest) = uri.strip_prefix("kafka://") {
        let (bootstrap, topic) = rest.split_once('/').ok_or_else(|| StateError::InvalidUri(uri.into()))?;
        if bootstrap.is_empty() || topic.is_empty() || topic.contains('/') {
            return Err(StateError::InvalidUri(uri.into()));
        }
        let security = kafka_security.cloned().unwrap_or_default();
        let connection = kafka_edge_endpoint_kafka::static_connection(bootstrap, &security).map_err(|error| {
            let path = error.path.strip_prefix("security.").unwrap_or(&error.path).to_string();
            StateError::Security(Problem { path, ..error })
        })?;
        return Ok(Arc::new(KafkaStore::open(&connection, topic).await?));
    }
    Err(StateError::InvalidUri(uri.into()))
}

/// The in-memory view every store keeps, keyed by [`Record::key`], with its change counter.
pub(crate) struct Cache {
    entries: Mutex<BTreeMap<String, Record>>,
    version: watch::Sender<u64>,
}

impl Cache {
    pub(crate) fn new(entries: BTreeMap<String, Record>) -> Self {
        Self { entries: Mutex::new(entries), version: watch::channel(0).0 }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Record>> {
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn records(&self) -> Vec<Record> {
        self.lock().values().cloned().collect()
    }

    pub(crate) fn record(&self, key: &str) -> Option<Record> {
        self.lock().get(key).cloned()
    }

    /// Applies a change with the map locked, then announces it; returns what `change` returned.
    pub(crate) fn update<R>(&self, change: impl FnOnce(&mut BTreeMap<String, Record>) -> R) -> R {
        let result = change(&mut self.lock());
        self.version.send_modify(|v| *v += 1);
        result
    }

    pub(crate) fn changes(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn state_uris_are_checked() {
        for uri in [
            "",
            "file:",
            "kafka://",
            "kafka://host:9092",
            "kafka://host:9092/",
            "kafka:///topic",
            "kafka://h:1/a/b",
            "redis://x",
        ] {
            assert!(matches!(super::open(uri).await, Err(super::StateError::InvalidUri(_))), "{uri}");
        }
    }
}
