//! Shared producers (DESIGN 4.3): one per distinct connection configuration, created on first use,
//! shared by every request, dropped from the pool when its cluster proved unreachable or when it
//! has not been used for a while.

use crate::client::{self, BrokerLatencies, Callbacks, Role};
use crate::failure::{classify_connection_error, probe_cluster, unknown};
use crate::settings::{ConnectionProperties, ProducerSettings};
use bytes::Bytes;
use futures::future::join_all;
use kafka_edge_definition::CompressionType;
use kafka_edge_message::{
    EndpointFailure, FailureKind, Headers, RecordChoice, RecordPosition, DEFAULT_MAX_MESSAGE_BYTES,
};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use std::collections::HashMap;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long a publish may wait for room in the producer's queue.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a pooled producer may go unused before it is closed. Pool keys can come from request
/// values (a token or bootstrap servers from an expression or an override), so without a limit
/// every distinct value would keep its threads and connections forever. Five minutes keeps the
/// producer of any steadily used configuration (re-creating one costs a cluster probe and new
/// connections) while one-off configurations go away.
/// How long a record may wait for the cluster's acknowledgement, by default.
pub const DEFAULT_PRODUCE_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// Sweeps run while a producer is looked up; at most this often so a busy gateway does not scan
/// the pool on every publish.
const MAX_SWEEP_INTERVAL: Duration = Duration::from_secs(1);

type PoolKey = (ConnectionProperties, CompressionType);

/// All producers of the gateway, keyed by their resolved configuration.
pub struct ProducerPool {
    pool: Mutex<Pool>,
    idle_timeout: Duration,
    /// The largest record a client may send; producers accept it (`message.max.bytes`), and the
    /// cluster decides whether it takes it.
    max_message_bytes: usize,
    /// How long a record may wait for the cluster's acknowledgement (`message.timeout.ms`).
    produce_timeout: Duration,
    /// What the producers' statistics say of each broker's round-trip time.
    latencies: Arc<BrokerLatencies>,
}

impl std::fmt::Debug for ProducerPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProducerPool")
            .field("producers", &self.len())
            .field("idle_timeout", &self.idle_timeout)
            .finish()
    }
}

impl Default for ProducerPool {
    fn default() -> Self {
        Self::with_idle_timeout(DEFAULT_IDLE_TIMEOUT)
    }
}

#[derive(Default)]
struct Pool {
    producers: HashMap<PoolKey, Arc<SharedProducer>>,
    /// One creation at a time per configuration: the publishes that find no producer wait for the
    /// one being created (a batch would otherwise start a producer, and a probe, per record).
    creating: HashMap<PoolKey, Arc<tokio::sync::Mutex<()>>>,
    last_sweep: Option<Instant>,
}

impl Pool {
    /// Takes out the producers that no publish holds and that were last used `idle_timeout` ago
    /// or earlier. The caller holds the pool's lock, so nobody can borrow a producer between the
    /// check and its removal.
    fn take_idle(&mut self, idle_timeout: Duration, now: Instant) -> Vec<Arc<SharedProducer>> {
        // A sweep interval longer than the timeout would let producers outlive it.
        let sweep_interval = idle_timeout.min(MAX_SWEEP_INTERVAL);
        if self.last_sweep.is_some_and(|last| now.saturating_duration_since(last) < sweep_interval) {
            return Vec::new();
        }
        self.last_sweep = Some(now);
        let mut idle = Vec::new();
        self.producers.retain(|_, producer| {
            // Every publish holds a clone (its Lease), so a count of 1 is the pool's own reference.
            let unused =
                Arc::strong_count(producer) == 1 && now.saturating_duration_since(producer.last_used()) >= idle_timeout;
            if unused {
                idle.push(producer.clone());
            }
            !unused
        });
        idle
    }
}

/// A producer and what its callbacks learned about its cluster.
struct SharedProducer {
    client_id: String,
    health: Arc<Health>,
    producer: FutureProducer<Callbacks>,
    /// When a publish last started or finished with it.
    last_used: Mutex<Instant>,
}

impl SharedProducer {
    fn last_used(&self) -> Instant {
        *self.last_used.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn mark_used(&self) {
        *self.last_used.lock().unwrap_or_else(PoisonError::into_inner) = Instant::now();
    }
}

/// A pooled producer lent to one publish. While it exists the pool counts the producer as in use
/// (the Arc is shared); dropping it, whether the publish succeeded, failed or was cancelled, marks
/// the producer used, so its idle time counts from the end of its last publish.
struct Lease(Arc<SharedProducer>);

impl Lease {
    fn new(shared: Arc<SharedProducer>) -> Self {
        shared.mark_used();
        Self(shared)
    }
}

impl Deref for Lease {
    type Target = SharedProducer;

    fn deref(&self) -> &SharedProducer {
        &self.0
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.0.mark_used();
    }
}

/// Closes producers taken out of the pool. Dropping an rdkafka producer blocks (it purges,
/// flushes for up to 500 ms and joins its polling thread), so it happens off the async threads.
fn close_idle(idle: Vec<Arc<SharedProducer>>) {
    if idle.is_empty() {
        return;
    }
    for shared in &idle {
        tracing::debug!(client_id = %shared.client_id, idle_for = ?shared.last_used().elapsed(), "Idle Kafka producer closed.");
    }
    match tokio::runtime::Handle::try_current() {
        // Nobody waits for the close: the handle is dropped.
        Ok(runtime) => drop(runtime.spawn_blocking(move || drop(idle))),
        Err(_) => drop(idle),
    }
}

/// What the producer's callbacks learned about its cluster.
struct Health {
    ever_connected: AtomicBool,
    failure: watch::Sender<Option<EndpointFailure>>,
    client_id: String,
}

impl Health {
    /// Records a client-level error (on librdkafka's polling thread: quick, never blocking).
    fn record(&self, error: &KafkaError, reason: &str) {
        let ever_connected = self.ever_connected.load(Ordering::Relaxed);
        match classify_connection_error(error, ever_connected) {
            Some(failure) => {
                // Log once per state change, not once per retry.
                let changed = self.failure.send_if_modified(|current| {
                    let changed = current.as_ref() != Some(&failure);
                    *current = Some(failure.clone());
                    changed
                });
                if changed {
                    tracing::warn!(client_id = %self.client_id, %reason, "Kafka producer cannot reach its cluster.");
                }
            }
            None => tracing::debug!(client_id = %self.client_id, %error, %reason, "Kafka producer error."),
        }
    }
}

impl ProducerPool {
    /// Producers unused for 5 minutes are closed.
    pub fn new() -> Self {
        Self::default()
    }

    /// Producers no publish has used for `idle_timeout` are closed (the next publish with their
    /// configuration creates a new one).
    pub fn with_idle_timeout(idle_timeout: Duration) -> Self {
        Self {
            pool: Mutex::new(Pool::default()),
            idle_timeout,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            produce_timeout: DEFAULT_PRODUCE_TIMEOUT,
            latencies: Default::default(),
        }
    }

    /// A publish whose records the cluster has not acknowledged after `timeout` fails with
    /// [`FailureKind::TimedOut`], and librdkafka stops sending them (`message.timeout.ms`).
    /// Round-trip times to each broker the pool's producers talk to.
    pub fn broker_latencies(&self) -> &BrokerLatencies {
        &self.latencies
    }

    pub fn with_produce_timeout(mut self, timeout: Duration) -> Self {
        self.produce_timeout = timeout;
        self
    }

    /// Producers take records of up to `bytes` (the gateway's `--max-message-bytes`); whether the
    /// cluster accepts them is its own limit (`message.max.bytes`, a topic's `max.message.bytes`).
    pub fn with_max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes;
        self
    }

    /// Produces `content` once to each topic (to `partition` when given, else by the partitioner)
    /// and waits until the cluster acknowledged every record; returns where each landed.
    pub(crate) async fn publish(
        &self,
        settings: &ProducerSettings,
        key: Option<&[u8]>,
        choice: &RecordChoice,
        content: &Bytes,
        headers: &Headers,
    ) -> Result<Vec<RecordPosition>, EndpointFailure> {
        let pool_key = (settings.connection.clone(), settings.compression);
        let probe_topic = settings.topics.first().map(String::as_str).unwrap_or_default();
        let shared = self.producer_for(&pool_key, probe_topic).await?;
        let mut failure = shared.health.failure.subscribe();
        if let Some(known) = failure.borrow_and_update().clone() {
            self.evict(&pool_key, &shared);
            return Err(known);
        }
        let record_headers = to_record_headers(headers);
        let sends = settings.topics.iter().map(|topic| {
            let mut record = FutureRecord::to(topic).payload(content.as_ref()).headers(record_headers.clone());
            if let Some(key) = key {
                record = record.key(key);
            }
            if let Some(partition) = choice.partition {
                record = record.partition(partition);
            }
            if let Some(timestamp) = choice.timestamp {
                record = record.timestamp(timestamp);
            }
            shared.producer.send(record, QUEUE_TIMEOUT.min(self.produce_timeout))
        });
        let deliveries = join_all(sends);
        let results = tokio::select! {
            results = deliveries => results,
            // A cluster that never answered fails fast instead of waiting for message.timeout.ms.
            failed = failure.wait_for(|f| f.as_ref().is_some_and(|f| f.kind == FailureKind::ConfigurationInvalid)) => {
                let failure = failed.ok().and_then(|f| f.clone()).unwrap_or_else(|| EndpointFailure::configuration_invalid("Kafka producer stopped"));
                self.evict(&pool_key, &shared);
                return Err(failure);
            }
        };
        let mut positions = Vec::with_capacity(results.len());
        for (topic, result) in settings.topics.iter().zip(results) {
            match result {
                Ok(delivery) => positions.push(RecordPosition {
                    topic: topic.clone(),
                    partition: delivery.partition,
                    offset: delivery.offset,
                }),
                Err((error, _)) => return Err(self.delivery_failure(&pool_key, &shared, &error)),
            }
        }
        shared.health.ever_connected.store(true, Ordering::Relaxed);
        Ok(positions)
    }

    fn delivery_failure(&self, pool_key: &PoolKey, shared: &SharedProducer, error: &KafkaError) -> EndpointFailure {
        let ever_connected = shared.health.ever_connected.load(Ordering::Relaxed);
        match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::UnknownPartition) => {
                EndpointFailure::bad_request("the chosen partition does not exist in the topic")
            }
            Some(RDKafkaErrorCode::MessageSizeTooLarge) => EndpointFailure::new(
                FailureKind::PayloadTooLarge,
                "Message too large for the Kafka cluster: over the broker's message.max.bytes or the topic's max.message.bytes",
            ),
            Some(RDKafkaErrorCode::MessageTimedOut) => {
                self.evict(pool_key, shared);
                let known = shared.health.failure.borrow().clone();
                known.unwrap_or_else(|| {
                    if ever_connected {
                        let seconds = self.produce_timeout.as_secs_f64();
                        EndpointFailure::new(
                            FailureKind::TimedOut,
                            format!(
                                "The Kafka cluster did not acknowledge the record within {seconds} s (the gateway's \
                                 --produce-timeout): it is no longer sent, but one already on its way to a broker may \
                                 still be written"
                            ),
                        )
                    } else {
                        EndpointFailure::configuration_invalid("no Kafka broker acknowledged the message")
                    }
                })
            }
            _ => classify_connection_error(error, ever_connected).unwrap_or_else(|| unknown(error)),
        }
    }

    /// Creates (and probes) the producer `settings` need, if the pool has none yet.
    /// The probe asks for no topic: on a broker with `auto.create.topics.enable`, asking for one
    /// would create it at the gateway's start, before anyone produced to it.
    pub(crate) async fn warm(&self, settings: &ProducerSettings) -> Result<(), EndpointFailure> {
        let pool_key = (settings.connection.clone(), settings.compression);
        self.producer_for(&pool_key, "").await.map(drop)
    }

    /// The pooled producer for `key`, created (and its cluster probed) on first use. Also closes
    /// idle producers; the one asked for is lent first, so it is never among them.
    async fn producer_for(&self, key: &PoolKey, probe_topic: &str) -> Result<Lease, EndpointFailure> {
        let (existing, idle, creating) = {
            let mut pool = self.lock()?;
            let existing = pool.producers.get(key).cloned().map(Lease::new);
            let creating = existing.is_none().then(|| pool.creating.entry(key.clone()).or_default().clone());
            (existing, pool.take_idle(self.idle_timeout, Instant::now()), creating)
        };
        close_idle(idle);
        if let Some(existing) = existing {
            return Ok(existing);
        }
        let Some(creating) = creating else { return Err(pool_unavailable()) };
        let _creating = creating.lock().await;
        // Created by the publish this one waited for?
        if let Some(existing) = self.lock()?.producers.get(key).cloned() {
            return Ok(Lease::new(existing));
        }
        let created = self.create(key, probe_topic).await;
        if let Ok(mut pool) = self.pool.lock() {
            pool.creating.remove(key);
        }
        created
    }

    /// Creates the producer for `key`, probes its cluster and pools it.
    async fn create(&self, key: &PoolKey, probe_topic: &str) -> Result<Lease, EndpointFailure> {
        let client_id = format!("gio-apim-producer-{}", short_uuid());
        let config = client::config(
            &key.0,
            &client_id,
            &Role::Producer {
                compression: key.1,
                max_message_bytes: self.max_message_bytes,
                message_timeout: self.produce_timeout,
            },
        );
        let (failure, _) = watch::channel(None);
        let health = Arc::new(Health { ever_connected: AtomicBool::new(false), failure, client_id: client_id.clone() });
        let recorder = health.clone();
        let callbacks = Callbacks::for_connection(&key.0, client_id.clone())
            .await?
            .with_errors(Box::new(move |error, reason| recorder.record(error, reason)))
            .with_latencies(self.latencies.clone());
        let producer: FutureProducer<Callbacks> = client::create(&config, callbacks)?;
        let shared = Arc::new(SharedProducer { client_id, health, producer, last_used: Mutex::new(Instant::now()) });
        let probing = shared.clone();
        let topic = probe_topic.to_string();
        let probe = tokio::task::spawn_blocking(move || probe_cluster(probing.producer.client(), &topic)).await;
        match probe {
            Ok(Ok(_)) => shared.health.ever_connected.store(true, Ordering::Relaxed),
            // The error callback may have told why (authentication, TLS) while the probe waited.
            Ok(Err(failure)) => return Err(shared.health.failure.borrow().clone().unwrap_or(failure)),
            Err(_) => {
                return Err(EndpointFailure::new(FailureKind::Unknown, "Endpoint unknown error: cluster probe failed"))
            }
        }
        let mut pool = self.lock()?;
        // Another request may have created one meanwhile: keep a single producer per key.
        let pooled = pool.producers.entry(key.clone()).or_insert_with(|| shared.clone()).clone();
        if Arc::ptr_eq(&pooled, &shared) {
            tracing::info!(client_id = %shared.client_id, "Kafka producer created.");
        }
        Ok(Lease::new(pooled))
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Pool>, EndpointFailure> {
        self.pool.lock().map_err(|_| pool_unavailable())
    }

    /// Forgets a broken producer so the next request builds a fresh one (in-flight requests keep
    /// theirs until they finish).
    fn evict(&self, key: &PoolKey, broken: &SharedProducer) {
        if let Ok(mut pool) = self.pool.lock() {
            if pool.producers.get(key).is_some_and(|current| std::ptr::eq(current.as_ref(), broken)) {
                pool.producers.remove(key);
                tracing::info!(client_id = %broken.client_id, "Kafka producer removed from the pool.");
            }
        }
    }

    /// Waits until every queued record was delivered (or `timeout` passed); used at shutdown.
    pub fn flush(&self, timeout: Duration) {
        let producers: Vec<_> = match self.pool.lock() {
            Ok(mut pool) => pool.producers.drain().map(|(_, p)| p).collect(),
            Err(_) => return,
        };
        for shared in producers {
            if let Err(error) = shared.producer.flush(timeout) {
                tracing::warn!(client_id = %shared.client_id, %error, "Kafka producer did not flush before shutdown.");
            }
        }
    }

    /// Number of live producers (for tests and metrics).
    pub fn len(&self) -> usize {
        self.pool.lock().map(|pool| pool.producers.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn to_record_headers(headers: &Headers) -> OwnedHeaders {
    headers.iter().fold(OwnedHeaders::new_with_capacity(headers.len()), |record_headers, (name, value)| {
        record_headers.insert(Header { key: name, value: Some(value.as_bytes()) })
    })
}

fn pool_unavailable() -> EndpointFailure {
    EndpointFailure::new(FailureKind::Unknown, "Endpoint unknown error: producer pool unavailable")
}

/// The first 8 hex characters of a random UUID, as Gravitee names its clients.
pub(crate) fn short_uuid() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nothing listens there: these producers are never used to send, and need no broker.
    fn key(compression: CompressionType) -> PoolKey {
        let mut connection = ConnectionProperties::default();
        connection.insert("bootstrap.servers", "127.0.0.1:1");
        (connection, compression)
    }

    /// Puts a producer for `key` in the pool as `producer_for` would, without the cluster probe.
    fn pooled(pool: &ProducerPool, key: &PoolKey) {
        let (failure, _) = watch::channel(None);
        let health = Arc::new(Health { ever_connected: AtomicBool::new(false), failure, client_id: "test".into() });
        let role = Role::Producer {
            compression: key.1,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            message_timeout: DEFAULT_PRODUCE_TIMEOUT,
        };
        let config = client::config(&key.0, "test", &role);
        let producer = client::create(&config, Callbacks::plain("test")).expect("producer");
        let shared = Arc::new(SharedProducer {
            client_id: "test".into(),
            health,
            producer,
            last_used: Mutex::new(Instant::now()),
        });
        pool.lock().expect("pool").producers.insert(key.clone(), shared);
    }

    /// A Lease is exactly what `publish` holds from lookup until it returns, so holding one here
    /// is a publish in flight. With a zero idle timeout every sweep would close any producer that
    /// is not lent, so the outcome depends only on who holds a Lease, never on timing.
    #[tokio::test]
    async fn a_producer_lent_to_a_publish_is_never_closed() {
        let pool = ProducerPool::with_idle_timeout(Duration::ZERO);
        let (plain, lz4) = (key(CompressionType::None), key(CompressionType::Lz4));
        pooled(&pool, &plain);
        let in_flight = pool.producer_for(&plain, "").await.expect("producer");
        pooled(&pool, &lz4);
        // Weak: identifies the producer without counting as a user of it.
        let first_lz4 = Arc::downgrade(pool.lock().expect("pool").producers.get(&lz4).expect("pooled"));

        let lz4_again = pool.producer_for(&lz4, "").await.expect("producer");
        assert_eq!(pool.len(), 2, "the lent producer survived the sweep");
        assert!(
            std::ptr::eq(Arc::as_ptr(&lz4_again.0), first_lz4.as_ptr()),
            "the producer asked for is lent before the sweep, not closed and re-created"
        );
        drop(lz4_again);

        drop(in_flight);
        let _lz4 = pool.producer_for(&lz4, "").await.expect("producer");
        assert_eq!(pool.len(), 1, "once returned, the idle producer is closed");
        assert!(pool.lock().expect("pool").producers.contains_key(&lz4));
    }
}
