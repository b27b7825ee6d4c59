//! Every librdkafka client of the gateway is configured and created here: the endpoint's pooled
//! producers, each subscription's consumer, and the clients of a compacted topic (the gateway
//! state). One place sets the properties each role needs, one callback context serves them all
//! (OAUTHBEARER tokens, librdkafka's log lines, client-level errors, rebalances), and one function
//! turns a refused configuration into a failure that names no value.

use crate::failure::{creation_error, log_librdkafka};
use crate::security::oauth::TokenProvider;
use crate::settings::ConnectionProperties;
use crate::subscriber::Rebalance;
use kafka_edge_definition::{AutoOffsetReset, CompressionType};
use kafka_edge_message::EndpointFailure;
use rdkafka::client::OAuthToken;
use rdkafka::config::{ClientConfig, FromClientConfigAndContext, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::topic_partition_list::TopicPartitionList;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::ClientContext;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// What a producer allows beyond a record's value: key, headers, batch and protocol framing.
const RECORD_OVERHEAD_BYTES: usize = 64 * 1024;

/// What a client is for; each role adds its properties to the connection's.
/// How long a consumer's fetch may wait at the broker for records. A partition with nothing new
/// must not hold a request: offset lookups and seeks of the other partitions wait behind it on
/// the same connection (with librdkafka's 500 ms default, short http-get windows came back empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FetchWait {
    /// 100 ms: a stream's consumer, which fetches as long as it lives.
    Stream,
    /// 20 ms: an http-get consumer. A warm one is resumed and sought as the client's next GET
    /// arrives, and its first fetch waits until the fetch the broker still holds from the last
    /// page ends: at 100 ms that made a returning client's GET at the end of a topic 90 ms
    /// instead of 6-20 ms. The cost is up to 50 empty fetches a second while a GET waits on a
    /// partition with nothing new (a parked consumer does not fetch).
    Page,
}

impl FetchWait {
    fn millis(self) -> &'static str {
        match self {
            FetchWait::Stream => "100",
            FetchWait::Page => "20",
        }
    }
}

pub(crate) enum Role<'a> {
    /// A pooled producer of the Kafka endpoint (DESIGN 4.3, 6: acks=all, idempotence).
    Producer { compression: CompressionType, max_message_bytes: usize, message_timeout: Duration },
    /// The consumer of one subscription (DESIGN 4.4).
    Consumer {
        group_id: &'a str,
        auto_offset_reset: AutoOffsetReset,
        auto_commit: bool,
        /// KIP-848's protocol rather than the classic one.
        consumer_protocol: bool,
        /// How long the broker may hold a fetch that finds nothing new (`fetch.wait.max.ms`).
        fetch_wait: FetchWait,
    },
    /// Reads a compacted topic from the beginning, by assignment (the group is never joined).
    TopicFollower,
    /// The consumer many streams share: assigns itself every partition at its end, never joins
    /// a group, commits nothing.
    FanOut,
    /// Writes a compacted topic.
    TopicWriter,
    /// Probes the cluster and manages topics; a producer so that polling it serves the error
    /// callback (an admin client's main queue is not polled).
    Probe,
}

/// The librdkafka properties of a client: the connection's, then the role's.
pub(crate) fn config(connection: &ConnectionProperties, client_id: &str, role: &Role<'_>) -> ClientConfig {
    let mut config = ClientConfig::new();
    connection.apply(&mut config);
    config.set("client.id", client_id);
    match role {
        Role::Producer { compression, max_message_bytes, message_timeout } => {
            // Room for the record's key, headers and batch framing on top of its value; librdkafka
            // refuses anything over 1e9. The cluster's own limit still applies.
            let message_max_bytes = max_message_bytes.saturating_add(RECORD_OVERHEAD_BYTES).min(1_000_000_000);
            config
                .set("acks", "all")
                .set("enable.idempotence", "true")
                // The Java client's hash, so a key lands where a Java producer would put it.
                .set("partitioner", "murmur2_random")
                .set("compression.type", compression.as_str())
                .set("linger.ms", "5")
                // librdkafka gives up on a record no later than the client's answer says it
                // failed, so it does not keep retrying a record its client was told was lost.
                .set("message.timeout.ms", message_timeout.as_millis().max(1).to_string())
                .set("socket.connection.setup.timeout.ms", "10000")
                .set("message.max.bytes", message_max_bytes.to_string())
                // Broker round-trip times for /metrics (BrokerLatencies).
                .set("statistics.interval.ms", STATISTICS_INTERVAL_MS.to_string());
        }
        Role::Consumer { group_id, auto_offset_reset, auto_commit, consumer_protocol, fetch_wait } => {
            let auto_offset_reset = match auto_offset_reset {
                AutoOffsetReset::Earliest => "earliest",
                AutoOffsetReset::Latest => "latest",
                AutoOffsetReset::None => "error",
            };
            config
                .set("group.id", *group_id)
                .set("auto.offset.reset", auto_offset_reset)
                .set("enable.auto.commit", if *auto_commit { "true" } else { "false" })
                // Only what the entrypoint acknowledged is stored, so only that is committed.
                .set("enable.auto.offset.store", "false")
                .set("enable.partition.eof", "false")
                .set("fetch.wait.max.ms", fetch_wait.millis())
                .set("queued.max.messages.kbytes", "4096")
                // With the queue bounded that low, a fast reader empties it before the next
                // fetch: the 1000 ms default stalled an SSE drain for a second every 4 MiB.
                .set("fetch.queue.backoff.ms", "50")
                .set("socket.connection.setup.timeout.ms", "10000")
                .set("reconnect.backoff.ms", "100")
                .set("statistics.interval.ms", STATISTICS_INTERVAL_MS.to_string());
            if *consumer_protocol {
                // The broker owns session and assignment settings under KIP-848: librdkafka
                // refuses `session.timeout.ms` and the other classic-only properties with it.
                config.set("group.protocol", "consumer");
            } else {
                config.set("session.timeout.ms", "10000");
            }
        }
        Role::TopicFollower => {
            // Required by librdkafka for a consumer, never joined: partitions are assigned.
            config
                .set("group.id", format!("kafka-edge-state-{}", uuid::Uuid::new_v4().simple()))
                .set("enable.auto.commit", "false")
                .set("enable.partition.eof", "false");
        }
        Role::FanOut => {
            config
                .set("group.id", format!("kafka-edge-fan-out-{}", uuid::Uuid::new_v4().simple()))
                .set("enable.auto.commit", "false")
                .set("enable.auto.offset.store", "false")
                .set("enable.partition.eof", "false")
                .set("fetch.wait.max.ms", "100")
                .set("socket.connection.setup.timeout.ms", "10000")
                .set("reconnect.backoff.ms", "100");
        }
        Role::TopicWriter => {
            config.set("acks", "all").set("enable.idempotence", "true");
        }
        Role::Probe => {
            // A producer asks the broker to auto-create what it looks up, without compaction.
            config.set("allow.auto.create.topics", "false");
        }
    }
    config
}

/// Creates a client of type `T` (a producer, a consumer, an admin client) with its callbacks. A
/// refused configuration is logged by property name only (librdkafka quotes the value, which may
/// be a password) and answered as an invalid endpoint configuration.
pub(crate) fn create<T>(config: &ClientConfig, callbacks: Callbacks) -> Result<T, EndpointFailure>
where
    T: FromClientConfigAndContext<Callbacks>,
{
    T::from_config_and_context(config, callbacks).map_err(|error| {
        tracing::warn!(error = %creation_error(&error), "Kafka client could not be created.");
        EndpointFailure::configuration_invalid("the Kafka client configuration was refused")
    })
}

/// Client-level errors, as librdkafka reports them on its polling thread: record, never block.
pub(crate) type ErrorSink = Box<dyn Fn(&KafkaError, &str) + Send + Sync>;
/// Receives a consumer's lag (records behind the high watermark, over its partitions) from each
/// of librdkafka's statistics reports.
pub(crate) type LagSink = Box<dyn Fn(i64) + Send + Sync>;

/// How often a subscription's consumer reports its statistics (for its lag), and a producer (for
/// broker round-trip times).
pub(crate) const STATISTICS_INTERVAL_MS: u32 = 5000;

/// The part of librdkafka's statistics JSON that the lag needs; the rest is not parsed.
#[derive(serde::Deserialize)]
struct LagStatistics {
    #[serde(default)]
    topics: HashMap<String, LagTopic>,
}

#[derive(serde::Deserialize)]
struct LagTopic {
    #[serde(default)]
    partitions: HashMap<String, LagPartition>,
}

#[derive(serde::Deserialize)]
struct LagPartition {
    partition: i32,
    #[serde(default = "unknown_lag")]
    consumer_lag: i64,
}

fn unknown_lag() -> i64 {
    -1
}

/// The lag over every assigned partition that knows it (librdkafka says -1 when it does not).
fn lag_of(statistics: &[u8]) -> Option<i64> {
    let parsed: LagStatistics = serde_json::from_slice(statistics).ok()?;
    let lags = parsed.topics.values().flat_map(|topic| topic.partitions.values());
    Some(lags.filter(|p| p.partition >= 0 && p.consumer_lag >= 0).map(|p| p.consumer_lag).sum())
}

/// Round-trip times of requests to each broker, from the producers' statistics reports (every
/// 5 s): what `/metrics` shows as `kafka_edge_broker_rtt_*`. A broker no producer reported on
/// for a minute (its producer closed) is left out.
#[derive(Debug, Default)]
pub struct BrokerLatencies {
    brokers: Mutex<BTreeMap<String, (BrokerLatency, Instant)>>,
}

/// One broker's round-trip times over librdkafka's last statistics window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BrokerLatency {
    pub average: Duration,
    pub p99: Duration,
}

/// How long a broker's last report stands.
const LATENCY_KEPT: Duration = Duration::from_secs(60);

impl BrokerLatencies {
    /// Broker (`host:port/node id`) → its latest round-trip times.
    pub fn snapshot(&self) -> BTreeMap<String, BrokerLatency> {
        let mut brokers = self.brokers.lock().unwrap_or_else(PoisonError::into_inner);
        brokers.retain(|_, (_, reported)| reported.elapsed() < LATENCY_KEPT);
        brokers.iter().map(|(name, (latency, _))| (name.clone(), *latency)).collect()
    }

    fn record(&self, statistics: &[u8]) {
        let Ok(parsed) = serde_json::from_slice::<BrokerStatistics>(statistics) else { return };
        let now = Instant::now();
        let mut brokers = self.brokers.lock().unwrap_or_else(PoisonError::into_inner);
        // Bootstrap entries (node id -1) are not brokers of the cluster; a window without a
        // request measured nothing.
        for (name, broker) in parsed.brokers.into_iter().filter(|(_, b)| b.nodeid >= 0 && b.rtt.cnt > 0) {
            let latency = BrokerLatency {
                average: Duration::from_micros(broker.rtt.avg.max(0) as u64),
                p99: Duration::from_micros(broker.rtt.p99.max(0) as u64),
            };
            brokers.insert(name, (latency, now));
        }
    }
}

/// The part of librdkafka's statistics JSON that broker round-trip times need.
#[derive(serde::Deserialize)]
struct BrokerStatistics {
    #[serde(default)]
    brokers: HashMap<String, BrokerEntry>,
}

#[derive(serde::Deserialize)]
struct BrokerEntry {
    nodeid: i32,
    rtt: Window,
}

/// librdkafka's rolling window statistics, in microseconds.
#[derive(serde::Deserialize)]
struct Window {
    avg: i64,
    p99: i64,
    cnt: i64,
}

/// The callbacks of one client. They run on the thread that polls the client and must be quick:
/// tokens are computed from credentials resolved beforehand, errors are only recorded.
pub(crate) struct Callbacks {
    pub(crate) client_id: String,
    tokens: Option<TokenProvider>,
    errors: Option<ErrorSink>,
    rebalance: Option<Rebalance>,
    lag: Option<LagSink>,
    latencies: Option<Arc<BrokerLatencies>>,
    /// Milliseconds since the epoch of the last refused re-authentication, 0 for none.
    reauthentication_failed_at: AtomicU64,
}

impl Callbacks {
    /// The callbacks of a client that authenticates with `connection`: for OAUTHBEARER, what the
    /// token callback needs is resolved now (AWS credentials for MSK IAM), off the callback.
    pub(crate) async fn for_connection(
        connection: &ConnectionProperties,
        client_id: impl Into<String>,
    ) -> Result<Self, EndpointFailure> {
        let tokens = match connection.token_source() {
            Some(source) => Some(TokenProvider::prepare(source.clone()).await.map_err(|reason| {
                // Each new client tries again (a producer, a consumer per request): once a minute.
                if crate::report::first_in_a_while((reason.clone(), "oauthbearer", String::new())) {
                    tracing::warn!(%reason, "OAUTHBEARER credentials could not be prepared.");
                }
                EndpointFailure::configuration_invalid("OAUTHBEARER credentials could not be resolved")
            })?),
            None => None,
        };
        Ok(Self::with_tokens(client_id.into(), tokens))
    }

    /// Callbacks without a token source (the connection uses none).
    pub(crate) fn plain(client_id: impl Into<String>) -> Self {
        Self::with_tokens(client_id.into(), None)
    }

    fn with_tokens(client_id: String, tokens: Option<TokenProvider>) -> Self {
        Self {
            client_id,
            tokens,
            errors: None,
            rebalance: None,
            lag: None,
            latencies: None,
            reauthentication_failed_at: AtomicU64::new(0),
        }
    }

    /// Client-level errors go to `sink` as well as to the debug log.
    pub(crate) fn with_errors(mut self, sink: ErrorSink) -> Self {
        self.errors = Some(sink);
        self
    }

    /// Rebalances of a consumer that subscribes (rather than assigns) go to `rebalance`.
    pub(crate) fn with_rebalance(mut self, rebalance: Rebalance) -> Self {
        self.rebalance = Some(rebalance);
        self
    }

    /// The consumer's lag goes to `sink` with each statistics report.
    pub(crate) fn with_lag(mut self, sink: LagSink) -> Self {
        self.lag = Some(sink);
        self
    }

    /// The client's round-trip times to each broker go to `latencies` with each statistics report.
    pub(crate) fn with_latencies(mut self, latencies: Arc<BrokerLatencies>) -> Self {
        self.latencies = Some(latencies);
        self
    }

    pub(crate) fn rebalance(&self) -> Option<&Rebalance> {
        self.rebalance.as_ref()
    }

    /// Whether a re-authentication of this client was refused in the last few seconds: the
    /// authentication error a consumer then reads is that one, and passes.
    pub(crate) fn reauthentication_failed_lately(&self) -> bool {
        let at = self.reauthentication_failed_at.load(Ordering::Relaxed);
        at != 0 && now_millis().saturating_sub(at) < 5_000
    }
}

/// A broker refusing a KIP-368 re-authentication with ILLEGAL_SASL_STATE, as Kafka 4.4 does with
/// librdkafka 2.12 when an OAUTHBEARER session nears its token's expiry: the connection closes
/// and librdkafka logs in afresh with the current token, so nothing is wrong with the
/// credentials and no request needs to fail for it.
fn is_failed_reauthentication(reason: &str) -> bool {
    reason.contains("Request not valid in current SASL state")
}

fn now_millis() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

impl ClientContext for Callbacks {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(&self, _config: Option<&str>) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        match &self.tokens {
            Some(provider) => Ok(provider.token(std::time::SystemTime::now())?),
            None => Err("no OAUTHBEARER token source configured".into()),
        }
    }

    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        log_librdkafka(level, facility, message);
    }

    fn stats_raw(&self, statistics: &[u8]) {
        if let (Some(sink), Some(lag)) = (&self.lag, lag_of(statistics)) {
            sink(lag);
        }
        if let Some(latencies) = &self.latencies {
            latencies.record(statistics);
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if is_failed_reauthentication(reason) {
            self.reauthentication_failed_at.store(now_millis(), Ordering::Relaxed);
            tracing::debug!(client_id = %self.client_id, %reason, "Kafka re-authentication refused; the client logs in again.");
            return;
        }
        match &self.errors {
            Some(sink) => sink(&error, reason),
            // The gateway's own clients (the state topic): librdkafka retries, so this repeats.
            None => tracing::warn!(client_id = %self.client_id, %error, %reason, "Kafka client error."),
        }
    }
}

impl rdkafka::producer::ProducerContext for Callbacks {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &rdkafka::message::DeliveryResult<'_>, _: ()) {}
}

impl ConsumerContext for Callbacks {
    fn rebalance(&self, consumer: &BaseConsumer<Self>, event: RDKafkaRespErr, partitions: &mut TopicPartitionList) {
        match &self.rebalance {
            Some(rebalance) => rebalance.apply(&self.client_id, consumer, event, partitions),
            None => Rebalance::assign_as_told(&self.client_id, consumer, event, partitions),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{lag_of, BrokerLatencies, BrokerLatency};
    use std::time::Duration;

    #[test]
    fn brokers_that_measured_a_round_trip_are_kept_bootstrap_entries_are_not() {
        let latencies = BrokerLatencies::default();
        latencies.record(
            br#"{"brokers":{
            "127.0.0.1:9092/1":{"name":"127.0.0.1:9092/1","nodeid":1,"rtt":{"avg":1500,"p99":4000,"cnt":12}},
            "127.0.0.1:9092/bootstrap":{"nodeid":-1,"rtt":{"avg":900,"p99":900,"cnt":1}},
            "127.0.0.1:9093/2":{"nodeid":2,"rtt":{"avg":0,"p99":0,"cnt":0}}}}"#,
        );
        let expected = BrokerLatency { average: Duration::from_micros(1500), p99: Duration::from_micros(4000) };
        assert_eq!(latencies.snapshot().into_iter().collect::<Vec<_>>(), [("127.0.0.1:9092/1".to_string(), expected)]);
        latencies.record(b"not json");
        assert_eq!(latencies.snapshot().len(), 1, "a report that cannot be read changes nothing");
    }

    #[test]
    fn the_lag_sums_the_assigned_partitions_that_know_theirs() {
        let statistics = br#"{"name":"c","topics":{"orders":{"topic":"orders","partitions":{
            "0":{"partition":0,"consumer_lag":4},"1":{"partition":1,"consumer_lag":-1},
            "-1":{"partition":-1,"consumer_lag":7}}},
            "audit":{"partitions":{"0":{"partition":0,"consumer_lag":3}}}}}"#;
        assert_eq!(lag_of(statistics), Some(7));
        assert_eq!(lag_of(b"{}"), Some(0));
        assert_eq!(lag_of(b"not json"), None);
    }
}
