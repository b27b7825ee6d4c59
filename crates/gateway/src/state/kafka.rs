//! `kafka://HOST:PORT/TOPIC`: the state of a fleet in a compacted topic. Key the record's
//! ([`Record::key`]: `subscription/<api>/<id>`, `apikey/<api>/<sha256>`, …), value the record as
//! JSON (secrets included: protect the topic with ACLs), a tombstone on delete. Every gateway reads the topic from the beginning when it
//! opens the store and then follows it, so a change made through any gateway reaches all of them
//! within the consumer's fetch latency. A write returns once this gateway's follower has applied
//! it (read your writes), so the in-memory view only ever moves forward in topic order.
//!
//! The topic is reached over PLAINTEXT, or with the TLS and SASL settings of a Kafka endpoint's
//! `security` block (`--state-security`).

use super::{Cache, Record, StateError, StateStore};
use kafka_edge_endpoint_kafka::{ConnectionProperties, TopicLog, TopicLogError, TopicRecord};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::watch;

pub struct KafkaStore {
    log: TopicLog,
    cache: Arc<Cache>,
}

impl KafkaStore {
    /// Creates the topic if missing, reads it to its end, and starts following it.
    pub async fn open(connection: &ConnectionProperties, topic: &str) -> Result<Self, StateError> {
        let cache = Arc::new(Cache::new(BTreeMap::new()));
        let follower = cache.clone();
        let log =
            TopicLog::open(connection, topic, move |record| apply(&follower, record)).await.map_err(state_error)?;
        Ok(Self { log, cache })
    }

    /// Produces one record and waits until the follower applied it.
    async fn write(&self, key: &str, value: Option<Vec<u8>>) -> Result<(), StateError> {
        self.log.write(key, value.as_deref()).await.map_err(state_error)
    }
}

fn state_error(error: TopicLogError) -> StateError {
    StateError::Kafka(match error {
        // librdkafka's error for a refused configuration quotes the value, which may be a password.
        TopicLogError::ClientRefused => "the Kafka client configuration was refused (see --state-security)".into(),
        TopicLogError::NotCompacted { topic, policy } => format!(
            "topic `{topic}` has cleanup.policy={policy}: subscriptions would expire with its retention; set cleanup.policy=compact"
        ),
        other => other.to_string(),
    })
}

/// One record of the topic applied to the in-memory view.
fn apply(cache: &Cache, record: TopicRecord<'_>) {
    let key = record.key.map(|k| String::from_utf8_lossy(k).into_owned());
    match (key, record.value) {
        (Some(key), None) => {
            cache.update(|map| map.remove(&key));
        }
        (Some(key), Some(value)) => {
            let decoded = serde_json::from_slice(value)
                .map_err(|_| "not JSON".to_string())
                .and_then(|value| Record::from_json(Some(&key), value).map_err(|error| error.to_string()));
            match decoded {
                Ok(Record::Unknown { value, .. }) => {
                    let kind = value.get("kind").and_then(serde_json::Value::as_str).unwrap_or("?").to_owned();
                    tracing::debug!(
                        offset = record.offset,
                        kind,
                        "Keeping a state record of a kind or version this gateway does not serve."
                    );
                    cache.update(|map| map.insert(key.clone(), Record::Unknown { key, value }));
                }
                Ok(decoded) => {
                    cache.update(|map| map.insert(key, decoded));
                }
                // The reason quotes no value: records may hold secrets.
                Err(reason) => tracing::warn!(offset = record.offset, %reason, "Ignoring a state record."),
            }
        }
        (None, _) => tracing::warn!(offset = record.offset, "Ignoring a state record without a key."),
    }
}

#[async_trait::async_trait]
impl StateStore for KafkaStore {
    fn records(&self) -> Vec<Record> {
        self.cache.records()
    }

    fn record(&self, key: &str) -> Option<Record> {
        self.cache.record(key)
    }

    async fn put_record(&self, record: Record) -> Result<(), StateError> {
        let value = serde_json::to_vec(&record.to_json())
            .map_err(|e| StateError::Kafka(format!("encoding a state record: {e}")))?;
        self.write(&record.key(), Some(value)).await
    }

    async fn delete_record(&self, key: &str) -> Result<bool, StateError> {
        if self.cache.record(key).is_none() {
            return Ok(false);
        }
        self.write(key, None).await?;
        Ok(true)
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.cache.changes()
    }
}
