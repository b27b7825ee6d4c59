//! `kafka://HOST:PORT/TOPIC`: the state of a fleet in a compacted topic. Key
//! `subscription/<api>/<id>`, value the subscription as JSON (secrets included: protect the topic
//! with ACLs), a tombstone on delete. Every gateway reads the topic from the beginning when it
//! opens the store and then follows it, so a change made through any gateway reaches all of them
//! within the consumer's fetch latency. A write returns once this gateway's follower has applied
//! it (read your writes), so the in-memory view only ever moves forward in topic order.
//!
//! The topic is reached over PLAINTEXT, or with the TLS and SASL settings of a Kafka endpoint's
//! `security` block (`--state-security`).

use super::{Cache, StateError, StateStore, Subscription};
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
        (Some(key), Some(value)) => match serde_json::from_slice::<Subscription>(value) {
            Ok(subscription) if subscription.key() == key => {
                cache.update(|map| map.insert(key, subscription));
            }
            // No detail: the value may hold secrets.
            _ => tracing::warn!(offset = record.offset, "Ignoring a state record that is not a subscription."),
        },
        (None, _) => tracing::warn!(offset = record.offset, "Ignoring a state record without a key."),
    }
}

#[async_trait::async_trait]
impl StateStore for KafkaStore {
    fn list(&self) -> Vec<Subscription> {
        self.cache.list()
    }

    fn get(&self, api: &str, id: &str) -> Option<Subscription> {
        self.cache.get(api, id)
    }

    async fn put(&self, subscription: Subscription) -> Result<(), StateError> {
        let value = serde_json::to_vec(&subscription)
            .map_err(|e| StateError::Kafka(format!("encoding a subscription: {e}")))?;
        self.write(&subscription.key(), Some(value)).await
    }

    async fn delete(&self, api: &str, id: &str) -> Result<bool, StateError> {
        if self.cache.get(api, id).is_none() {
            return Ok(false);
        }
        self.write(&super::model::key(api, id), None).await?;
        Ok(true)
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.cache.changes()
    }
}
