//! A compacted topic as a replicated key-value log, for what the gateway keeps beside its API
//! definitions (the gateway state of a fleet). Opening it proves the cluster answers and accepts
//! the login, creates the topic when it is missing (compacted), reads it to its end and then
//! follows it, handing every record to the caller in topic order. A write returns once this
//! process's follower has applied it (read your writes), so the caller's view only ever moves
//! forward in topic order. The log knows nothing of what its values mean.

use crate::client::{self, Callbacks, Role};
use crate::producer::short_uuid;
use crate::settings::ConnectionProperties;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, FutureProducer, FutureRecord, Producer as _};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::Message as _;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Longest wait for the broker (topic creation, metadata, a write to be applied).
const TIMEOUT: Duration = Duration::from_secs(15);
/// Longest wait for the first answer of the cluster when the log opens.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the log could not be opened, read or written. Messages carry librdkafka's reasons, which
/// name causes, never credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TopicLogError {
    /// librdkafka refused the client configuration (its own message would quote the value).
    #[error("the Kafka client configuration was refused")]
    ClientRefused,
    #[error("the cluster refused the login: {0}")]
    LoginRefused(String),
    #[error("cannot reach the cluster: {0}")]
    Unreachable(String),
    #[error("topic `{topic}` has cleanup.policy={policy}: records would expire with its retention; set cleanup.policy=compact")]
    NotCompacted { topic: String, policy: String },
    /// Any other failure: what was being done, and librdkafka's reason.
    #[error("{action}: {reason}")]
    Kafka { action: &'static str, reason: String },
}

fn kafka(action: &'static str, reason: impl std::fmt::Display) -> TopicLogError {
    TopicLogError::Kafka { action, reason: reason.to_string() }
}

/// One record as the follower reads it: a `None` value is a tombstone.
pub struct TopicRecord<'a> {
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub offset: i64,
}

/// An open compacted topic: write to it, and every record (of any writer) reaches `apply`.
pub struct TopicLog {
    topic: String,
    producer: FutureProducer<Callbacks>,
    /// Next offset to apply, per partition, as the follower advances.
    applied: watch::Receiver<HashMap<i32, i64>>,
}

impl TopicLog {
    /// Opens `topic` (created compacted when missing) and returns once every record written
    /// before the call has reached `apply`; `apply` then keeps receiving records as they come.
    pub async fn open(
        connection: &ConnectionProperties,
        topic: &str,
        apply: impl FnMut(TopicRecord<'_>) + Send + 'static,
    ) -> Result<Self, TopicLogError> {
        ensure_topic(connection, topic).await?;
        let follower_id = format!("kafka-edge-state-{}", short_uuid());
        let config = client::config(connection, &follower_id, &Role::TopicFollower);
        let consumer: StreamConsumer<Callbacks> =
            client::create(&config, Callbacks::plain(follower_id)).map_err(|_| TopicLogError::ClientRefused)?;
        let metadata = consumer.fetch_metadata(Some(topic), TIMEOUT).map_err(|e| kafka("state topic metadata", e))?;
        let partitions: Vec<i32> =
            metadata.topics().iter().flat_map(|t| t.partitions().iter().map(|p| p.id())).collect();
        let mut assignment = TopicPartitionList::new();
        let mut ends = HashMap::new();
        for partition in &partitions {
            assignment
                .add_partition_offset(topic, *partition, Offset::Beginning)
                .map_err(|e| kafka("state assignment", e))?;
            let (_, high) = consumer
                .fetch_watermarks(topic, *partition, TIMEOUT)
                .map_err(|e| kafka("state topic watermarks", e))?;
            ends.insert(*partition, high);
        }
        consumer.assign(&assignment).map_err(|e| kafka("state assignment", e))?;
        let writer_id = format!("kafka-edge-state-{}", short_uuid());
        let config = client::config(connection, &writer_id, &Role::TopicWriter);
        let producer: FutureProducer<Callbacks> =
            client::create(&config, Callbacks::plain(writer_id)).map_err(|_| TopicLogError::ClientRefused)?;
        let (applied_tx, applied) = watch::channel(HashMap::new());
        tokio::spawn(follow(consumer, apply, applied_tx));
        let log = Self { topic: topic.into(), producer, applied };
        for (partition, end) in ends {
            // The last offsets may be gone (a compacted-away tombstone): then this waits in vain,
            // and what was read so far is used.
            if let Err(error) = log.wait_applied(partition, end).await {
                tracing::warn!(%error, "Starting before the state topic was read to its end.");
            }
        }
        Ok(log)
    }

    /// Writes one record (`None`: a tombstone) and waits until the follower applied it.
    pub async fn write(&self, key: &str, value: Option<&[u8]>) -> Result<(), TopicLogError> {
        let mut record: FutureRecord<'_, str, [u8]> = FutureRecord::to(&self.topic).key(key);
        if let Some(value) = value {
            record = record.payload(value);
        }
        let delivery = self.producer.send(record, TIMEOUT).await.map_err(|(e, _)| kafka("state write", e))?;
        self.wait_applied(delivery.partition, delivery.offset + 1).await
    }

    async fn wait_applied(&self, partition: i32, next: i64) -> Result<(), TopicLogError> {
        if next <= 0 {
            return Ok(());
        }
        let mut applied = self.applied.clone();
        let reached = async move {
            applied.wait_for(|positions| positions.get(&partition).is_some_and(|p| *p >= next)).await.is_ok()
        };
        match tokio::time::timeout(TIMEOUT, reached).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(kafka("state topic", "the follower stopped")),
            Err(_) => {
                Err(kafka("state topic", format!("not read up to offset {next} of partition {partition} in time")))
            }
        }
    }
}

/// What librdkafka reported while probing. The first login refusal is kept: later errors (all
/// brokers down) would hide it.
#[derive(Default)]
struct ProbeReport {
    login_refusal: Mutex<Option<String>>,
    last_error: Mutex<Option<String>>,
}

impl ProbeReport {
    fn record(&self, error: &KafkaError, reason: &str) {
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

    fn login_refusal(&self) -> Option<String> {
        self.login_refusal.lock().map(|r| r.clone()).unwrap_or_default()
    }

    fn last_error(&self) -> Option<String> {
        self.last_error.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

/// Proves the cluster answers and accepts the login, and creates the topic when it is missing (a
/// principal allowed to use an existing topic need not be allowed to create one).
async fn ensure_topic(connection: &ConnectionProperties, topic: &str) -> Result<(), TopicLogError> {
    // A refused login shows in librdkafka's error callback within a second or two; the metadata
    // request only times out (and topic creation would wait out the 60 s request timeout).
    let probe_id = format!("kafka-edge-state-{}", short_uuid());
    let config = client::config(connection, &probe_id, &Role::Probe);
    let probe_topic = topic.to_string();
    let exists = tokio::task::spawn_blocking(move || {
        let report = Arc::new(ProbeReport::default());
        let recorder = report.clone();
        let callbacks =
            Callbacks::plain(probe_id).with_errors(Box::new(move |error, reason| recorder.record(error, reason)));
        let probe: BaseProducer<Callbacks> =
            client::create(&config, callbacks).map_err(|_| TopicLogError::ClientRefused)?;
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
                    if let Some(refusal) = report.login_refusal() {
                        return Err(TopicLogError::LoginRefused(refusal));
                    }
                    if Instant::now() >= deadline {
                        return Err(TopicLogError::Unreachable(
                            report.last_error().unwrap_or_else(|| error.to_string()),
                        ));
                    }
                }
            }
        }
    })
    .await
    .map_err(|e| kafka("state client", e))??;
    let admin_id = format!("kafka-edge-state-{}", short_uuid());
    let config = client::config(connection, &admin_id, &Role::Probe);
    let admin: AdminClient<Callbacks> =
        client::create(&config, Callbacks::plain(admin_id)).map_err(|_| TopicLogError::ClientRefused)?;
    if !exists {
        let new = NewTopic::new(topic, 1, TopicReplication::Fixed(-1)).set("cleanup.policy", "compact");
        let results = admin
            .create_topics(&[new], &AdminOptions::new().operation_timeout(Some(TIMEOUT)))
            .await
            .map_err(|e| kafka("creating the state topic", e))?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) => return Err(kafka("creating the state topic", code)),
            }
        }
    }
    check_compacted(&admin, topic).await
}

/// A topic that deletes old records would lose every record not written again within its
/// retention: refused. A principal not allowed to read the topic's configuration gets a warning.
async fn check_compacted(admin: &AdminClient<Callbacks>, topic: &str) -> Result<(), TopicLogError> {
    let options = AdminOptions::new().request_timeout(Some(TIMEOUT));
    let described = admin.describe_configs(&[ResourceSpecifier::Topic(topic)], &options).await;
    let policy = match described.as_deref() {
        Ok([Ok(resource)]) => resource.get("cleanup.policy").and_then(|entry| entry.value.clone()),
        _ => None,
    };
    match policy {
        Some(policy) if policy.split(',').any(|p| p.trim() == "compact") => Ok(()),
        Some(policy) => Err(TopicLogError::NotCompacted { topic: topic.into(), policy }),
        None => {
            tracing::warn!(topic, "Cannot read the state topic's cleanup.policy; it must be compact, or records expire with its retention.");
            Ok(())
        }
    }
}

/// Hands every record of the topic to `apply`, for as long as the process runs.
async fn follow(
    consumer: StreamConsumer<Callbacks>,
    mut apply: impl FnMut(TopicRecord<'_>) + Send,
    applied: watch::Sender<HashMap<i32, i64>>,
) {
    loop {
        let message = match consumer.recv().await {
            Ok(message) => message,
            Err(error) => {
                tracing::warn!(%error, "Reading the state topic failed; retrying.");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        apply(TopicRecord { key: message.key(), value: message.payload(), offset: message.offset() });
        let (partition, next) = (message.partition(), message.offset() + 1);
        applied.send_modify(|positions| {
            positions.insert(partition, next);
        });
        if applied.is_closed() {
            return;
        }
    }
}
