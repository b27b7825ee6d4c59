//! Shared producers (DESIGN 4.3): one per distinct connection configuration, created on first use,
//! shared by every request, dropped from the pool when its cluster proved unreachable.

use crate::failure::{classify_connection_error, probe_cluster, unknown};
use crate::settings::{ConnectionProperties, ProducerSettings};
use bytes::Bytes;
use futures::future::join_all;
use kafka_edge_definition::CompressionType;
use kafka_edge_message::{EndpointFailure, FailureKind, Headers};
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::config::RDKafkaLogLevel;
use crate::security::oauth::TokenProvider;
use rdkafka::client::OAuthToken;
use rdkafka::ClientContext;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// How long a publish may wait for room in the producer's queue.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(5);

type PoolKey = (ConnectionProperties, CompressionType);

/// All producers of the gateway, keyed by their resolved configuration.
#[derive(Default)]
pub struct ProducerPool {
    producers: Mutex<HashMap<PoolKey, Arc<SharedProducer>>>,
}

impl std::fmt::Debug for ProducerPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = self.producers.lock().map(|p| p.len()).unwrap_or(0);
        f.debug_struct("ProducerPool").field("producers", &count).finish()
    }
}

/// A producer and what its callbacks learned about its cluster.
struct SharedProducer {
    client_id: String,
    health: Arc<Health>,
    producer: FutureProducer<HealthContext>,
}

/// What the producer's callbacks learned about its cluster.
struct Health {
    ever_connected: AtomicBool,
    failure: watch::Sender<Option<EndpointFailure>>,
    client_id: String,
}

/// Receives librdkafka's client-level errors on its polling thread; only records them. Also
/// hands out OAUTHBEARER tokens, computed without I/O.
struct HealthContext(Arc<Health>, Option<TokenProvider>);

impl ClientContext for HealthContext {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(&self, _config: Option<&str>) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        match &self.1 {
            Some(provider) => Ok(provider.token(std::time::SystemTime::now())?),
            None => Err("no OAUTHBEARER token source configured".into()),
        }
    }

    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        crate::failure::log_librdkafka(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let health = &self.0;
        let ever_connected = health.ever_connected.load(Ordering::Relaxed);
        match classify_connection_error(&error, ever_connected) {
            Some(failure) => {
                // Log once per state change, not once per retry.
                let changed = health.failure.send_if_modified(|current| {
                    let changed = current.as_ref() != Some(&failure);
                    *current = Some(failure.clone());
                    changed
                });
                if changed {
                    tracing::warn!(client_id = %health.client_id, %reason, "Kafka producer cannot reach its cluster.");
                }
            }
            None => tracing::debug!(client_id = %health.client_id, %error, %reason, "Kafka producer error."),
        }
    }
}

impl ProducerPool {
    pub fn new() -> Self {
        Self::default()
    }

    /// Produces `content` once to each topic and waits until the cluster acknowledged every record.
    pub(crate) async fn publish(
        &self,
        settings: &ProducerSettings,
        key: Option<&str>,
        content: &Bytes,
        headers: &Headers,
    ) -> Result<(), EndpointFailure> {
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
            shared.producer.send(record, QUEUE_TIMEOUT)
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
        for result in results {
            if let Err((error, _)) = result {
                return Err(self.delivery_failure(&pool_key, &shared, &error));
            }
        }
        shared.health.ever_connected.store(true, Ordering::Relaxed);
        Ok(())
    }

    fn delivery_failure(&self, pool_key: &PoolKey, shared: &Arc<SharedProducer>, error: &KafkaError) -> EndpointFailure {
        let ever_connected = shared.health.ever_connected.load(Ordering::Relaxed);
        match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::MessageSizeTooLarge) => {
                EndpointFailure::new(FailureKind::PayloadTooLarge, "Message too large for the Kafka cluster")
            }
            Some(RDKafkaErrorCode::MessageTimedOut) => {
                self.evict(pool_key, shared);
                let known = shared.health.failure.borrow().clone();
                known.unwrap_or_else(|| {
                    if ever_connected {
                        EndpointFailure::new(FailureKind::ConnectionClosed, "Endpoint connection closed: the Kafka cluster did not acknowledge in time")
                    } else {
                        EndpointFailure::configuration_invalid("no Kafka broker acknowledged the message")
                    }
                })
            }
            _ => classify_connection_error(error, ever_connected).unwrap_or_else(|| unknown(error)),
        }
    }

    /// The pooled producer for `key`, created (and its cluster probed) on first use.
    async fn producer_for(&self, key: &PoolKey, probe_topic: &str) -> Result<Arc<SharedProducer>, EndpointFailure> {
        if let Some(existing) = self.lock()?.get(key) {
            return Ok(existing.clone());
        }
        let client_id = format!("gio-apim-producer-{}", short_uuid());
        let mut config = ClientConfig::new();
        key.0.apply(&mut config);
        config
            .set("client.id", &client_id)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("partitioner", "murmur2_random")
            .set("compression.type", key.1.as_str())
            .set("linger.ms", "5")
            .set("message.timeout.ms", "30000")
            .set("socket.connection.setup.timeout.ms", "10000");
        let (failure, _) = watch::channel(None);
        let health = Arc::new(Health { ever_connected: AtomicBool::new(false), failure, client_id: client_id.clone() });
        let provider = match key.0.token_source() {
            Some(source) => Some(TokenProvider::prepare(source.clone()).await.map_err(|reason| {
                tracing::warn!(%reason, "OAUTHBEARER credentials could not be prepared.");
                EndpointFailure::configuration_invalid("OAUTHBEARER credentials could not be resolved")
            })?),
            None => None,
        };
        let producer: FutureProducer<HealthContext> = config.create_with_context(HealthContext(health.clone(), provider)).map_err(|error| {
            tracing::warn!(%error, "Kafka producer could not be created.");
            EndpointFailure::configuration_invalid("the Kafka client configuration was refused")
        })?;
        let shared = Arc::new(SharedProducer { client_id, health, producer });
        let probing = shared.clone();
        let topic = probe_topic.to_string();
        let probe = tokio::task::spawn_blocking(move || probe_cluster(probing.producer.client(), &topic)).await;
        match probe {
            Ok(Ok(())) => shared.health.ever_connected.store(true, Ordering::Relaxed),
            // The error callback may have told why (authentication, TLS) while the probe waited.
            Ok(Err(failure)) => return Err(shared.health.failure.borrow().clone().unwrap_or(failure)),
            Err(_) => return Err(EndpointFailure::new(FailureKind::Unknown, "Endpoint unknown error: cluster probe failed")),
        }
        let mut producers = self.lock()?;
        // Another request may have created one meanwhile: keep a single producer per key.
        let pooled = producers.entry(key.clone()).or_insert_with(|| shared.clone()).clone();
        if Arc::ptr_eq(&pooled, &shared) {
            tracing::info!(client_id = %shared.client_id, "Kafka producer created.");
        }
        Ok(pooled)
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, HashMap<PoolKey, Arc<SharedProducer>>>, EndpointFailure> {
        self.producers.lock().map_err(|_| EndpointFailure::new(FailureKind::Unknown, "Endpoint unknown error: producer pool unavailable"))
    }

    /// Forgets a broken producer so the next request builds a fresh one (in-flight requests keep
    /// theirs until they finish).
    fn evict(&self, key: &PoolKey, broken: &Arc<SharedProducer>) {
        if let Ok(mut producers) = self.producers.lock() {
            if producers.get(key).is_some_and(|current| Arc::ptr_eq(current, broken)) {
                producers.remove(key);
                tracing::info!(client_id = %broken.client_id, "Kafka producer removed from the pool.");
            }
        }
    }

    /// Waits until every queued record was delivered (or `timeout` passed); used at shutdown.
    pub fn flush(&self, timeout: Duration) {
        let producers: Vec<_> = match self.producers.lock() {
            Ok(mut producers) => producers.drain().map(|(_, p)| p).collect(),
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
        self.producers.lock().map(|p| p.len()).unwrap_or(0)
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

/// The first 8 hex characters of a random UUID, as Gravitee names its clients.
pub(crate) fn short_uuid() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}
