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
use kafka_edge_endpoint_kafka::ConnectionProperties;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{BaseProducer, FutureProducer, FutureRecord, Producer as _};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::Message as _;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Longest wait for the broker (topic creation, metadata, a write to be applied).
const TIMEOUT: Duration = Duration::from_secs(15);
/// Longest wait for the first answer of the cluster when the store opens.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

pub struct KafkaStore {
    topic: String,
    cache: Arc<Cache>,
    producer: FutureProducer,
    /// Next offset to apply, per partition, as the follower advances.
    applied: watch::Receiver<HashMap<i32, i64>>,
}

fn kafka_error(context: &str, error: impl std::fmt::Display) -> StateError {
    StateError::Kafka(format!("{context}: {error}"))
}

impl KafkaStore {
    /// Creates the topic if missing, reads it to its end, and starts following it.
    pub async fn open(connection: &ConnectionProperties, topic: &str) -> Result<Self, StateError> {
        let mut config = ClientConfig::new();
        connection.apply(&mut config);
        ensure_topic(&config, topic).await?;
        let consumer: StreamConsumer = config
            .clone()
            .set("group.id", format!("kafka-edge-state-{}", uuid::Uuid::new_v4().simple()))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            .create()
            .map_err(|_| client_refused())?;
        let metadata =
            consumer.fetch_metadata(Some(topic), TIMEOUT).map_err(|e| kafka_error("state topic metadata", e))?;
        let partitions: Vec<i32> =
            metadata.topics().iter().flat_map(|t| t.partitions().iter().map(|p| p.id())).collect();
        let mut assignment = TopicPartitionList::new();
        let mut ends = HashMap::new();
        for partition in &partitions {
            assignment
                .add_partition_offset(topic, *partition, Offset::Beginning)
                .map_err(|e| kafka_error("state assignment", e))?;
            let (_, high) = consumer
                .fetch_watermarks(topic, *partition, TIMEOUT)
                .map_err(|e| kafka_error("state topic watermarks", e))?;
            ends.insert(*partition, high);
        }
        consumer.assign(&assignment).map_err(|e| kafka_error("state assignment", e))?;
        let producer: FutureProducer = config
            .clone()
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .create()
            .map_err(|_| client_refused())?;
        let cache = Arc::new(Cache::new(BTreeMap::new()));
        let (applied_tx, applied) = watch::channel(HashMap::new());
        tokio::spawn(follow(consumer, cache.clone(), applied_tx));
        let store = Self { topic: topic.into(), cache, producer, applied };
        for (partition, end) in ends {
            // The last offsets may be gone (a compacted-away tombstone): then this waits in vain,
            // and the state read so far is used.
            if let Err(error) = store.wait_applied(partition, end).await {
                tracing::warn!(%error, "Starting before the state topic was read to its end.");
            }
        }
        Ok(store)
    }

    /// Produces one record and waits until the follower applied it.
    async fn write(&self, key: &str, value: Option<Vec<u8>>) -> Result<(), StateError> {
        let mut record: FutureRecord<'_, str, Vec<u8>> = FutureRecord::to(&self.topic).key(key);
        if let Some(value) = value.as_ref() {
            record = record.payload(value);
        }
        let delivery = self.producer.send(record, TIMEOUT).await.map_err(|(e, _)| kafka_error("state write", e))?;
        self.wait_applied(delivery.partition, delivery.offset + 1).await
    }

    async fn wait_applied(&self, partition: i32, next: i64) -> Result<(), StateError> {
        if next <= 0 {
            return Ok(());
        }
        let mut applied = self.applied.clone();
        let reached = async move {
            applied.wait_for(|positions| positions.get(&partition).is_some_and(|p| *p >= next)).await.is_ok()
        };
        match tokio::time::timeout(TIMEOUT, reached).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(StateError::Kafka("the state topic follower stopped".into())),
            Err(_) => Err(StateError::Kafka(format!(
                "state topic not read up to offset {next} of partition {partition} in time"
            ))),
        }
    }
}

/// What librdkafka reported while probing (its reasons name the cause, never a credential). The
/// first login refusal is kept: later errors (all brokers down) would hide it.
#[derive(Default)]
struct ProbeContext {
    login_refusal: std::sync::Mutex<Option<String>>,
    last_error: std::sync::Mutex<Option<String>>,
}

impl ProbeContext {
    fn login_refusal(&self) -> Option<String> {
        self.login_refusal.lock().map(|r| r.clone()).unwrap_or_default()
    }

    fn last_error(&self) -> Option<String> {
        self.last_error.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

impl rdkafka::producer::ProducerContext for ProbeContext {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &rdkafka::message::DeliveryResult<'_>, _: ()) {}
}

impl ClientContext for ProbeContext {
    fn error(&self, error: KafkaError, reason: &str) {
        if matches!(
            error.rdkafka_error_code(),
            Some(RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed)
        ) {
            if let Ok(mut refusal) = self.login_refusal.lock() {
                refusal.get_or_insert_with(|| reason.to_string());
            }
        }
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(reason.to_string());
        }
    }
}

/// Proves the cluster answers and accepts the login, and creates the topic when it is missing (a
/// principal allowed to use an existing topic need not be allowed to create one).
async fn ensure_topic(config: &ClientConfig, topic: &str) -> Result<(), StateError> {
    // A refused login shows in librdkafka's error callback within a second or two; the metadata
    // request only times out (and topic creation would wait out the 60 s request timeout).
    let (mut probe_config, probe_topic) = (config.clone(), topic.to_string());
    // A producer asks the broker to auto-create what it looks up, without compaction.
    probe_config.set("allow.auto.create.topics", "false");
    let exists = tokio::task::spawn_blocking(move || {
        // A producer, because polling it serves librdkafka's error callback (an admin client's
        // main queue is not polled).
        let probe: BaseProducer<ProbeContext> =
            probe_config.create_with_context(ProbeContext::default()).map_err(|_| client_refused())?;
        let deadline = Instant::now() + PROBE_TIMEOUT;
        loop {
            match probe.client().fetch_metadata(Some(&probe_topic), Duration::from_millis(500)) {
                Ok(metadata) => {
                    return Ok(metadata
                        .topics()
                        .iter()
                        .any(|t| t.name() == probe_topic && t.error().is_none() && !t.partitions().is_empty()));
                }
                Err(error) => {
                    probe.poll(Duration::ZERO);
                    if let Some(refusal) = probe.context().login_refusal() {
                        return Err(kafka_error("the cluster refused the login", refusal));
                    }
                    if Instant::now() >= deadline {
                        let detail = probe.context().last_error().unwrap_or_else(|| error.to_string());
                        return Err(kafka_error("cannot reach the cluster", detail));
                    }
                }
            }
        }
    })
    .await
    .map_err(|e| kafka_error("state client", e))??;
    let admin: AdminClient<DefaultClientContext> = config.create().map_err(|_| client_refused())?;
    if !exists {
        let new = NewTopic::new(topic, 1, TopicReplication::Fixed(-1)).set("cleanup.policy", "compact");
        let results = admin
            .create_topics(&[new], &AdminOptions::new().operation_timeout(Some(TIMEOUT)))
            .await
            .map_err(|e| kafka_error("creating the state topic", e))?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) => return Err(kafka_error("creating the state topic", code)),
            }
        }
    }
    check_compacted(&admin, topic).await
}

/// A topic that deletes old records would lose every subscription not written again within its
/// retention: refused. A principal not allowed to read the topic's configuration gets a warning.
async fn check_compacted(admin: &AdminClient<DefaultClientContext>, topic: &str) -> Result<(), StateError> {
    let options = AdminOptions::new().request_timeout(Some(TIMEOUT));
    let described = admin.describe_configs(&[ResourceSpecifier::Topic(topic)], &options).await;
    let policy = match described.as_deref() {
        Ok([Ok(resource)]) => resource.get("cleanup.policy").and_then(|entry| entry.value.clone()),
        _ => None,
    };
    match policy {
        Some(policy) if policy.split(',').any(|p| p.trim() == "compact") => Ok(()),
        Some(policy) => Err(StateError::Kafka(format!("topic `{topic}` has cleanup.policy={policy}: subscriptions would expire with its retention; set cleanup.policy=compact"))),
        None => {
            tracing::warn!(topic, "Cannot read the state topic's cleanup.policy; it must be compact, or subscriptions expire with its retention.");
            Ok(())
        }
    }
}

/// librdkafka's error for a refused configuration quotes the value, which may be a password.
fn client_refused() -> StateError {
    StateError::Kafka("the Kafka client configuration was refused (see --state-security)".into())
}

/// Applies every record of the topic to the cache, for as long as the process runs.
async fn follow(consumer: StreamConsumer, cache: Arc<Cache>, applied: watch::Sender<HashMap<i32, i64>>) {
    loop {
        let message = match consumer.recv().await {
            Ok(message) => message,
            Err(error) => {
                tracing::warn!(%error, "Reading the state topic failed; retrying.");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let key = message.key().map(|k| String::from_utf8_lossy(k).into_owned());
        match (key, message.payload()) {
            (Some(key), None) => {
                cache.update(|map| map.remove(&key));
            }
            (Some(key), Some(value)) => match serde_json::from_slice::<Subscription>(value) {
                Ok(subscription) if subscription.key() == key => {
                    cache.update(|map| map.insert(key, subscription));
                }
                // No detail: the value may hold secrets.
                _ => tracing::warn!(offset = message.offset(), "Ignoring a state record that is not a subscription."),
            },
            (None, _) => tracing::warn!(offset = message.offset(), "Ignoring a state record without a key."),
        }
        let (partition, next) = (message.partition(), message.offset() + 1);
        applied.send_modify(|positions| {
            positions.insert(partition, next);
        });
        if applied.is_closed() {
            return;
        }
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
        let value = serde_json::to_vec(&subscription).map_err(|e| kafka_error("encoding a subscription", e))?;
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
