//! What the admin listener tells operators without a token (docs/operations.md): `/health`
//! (the process answers), `/ready` (loaded, listening, not draining) and `/metrics` (Prometheus
//! text format). Labels carry only bounded values: API ids, entrypoint types, status codes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Upper bounds of the request duration and acknowledgement histograms, in seconds.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
/// Upper bounds of the record age histogram, in seconds: a drain hands out old records.
const AGE_BUCKETS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0, 300.0];

/// Whether the gateway takes traffic.
#[derive(Default)]
pub struct Readiness {
    listening: AtomicBool,
    draining: AtomicBool,
}

impl Readiness {
    /// Definitions are loaded and the client listener is bound.
    pub fn set_listening(&self) {
        self.listening.store(true, Ordering::SeqCst);
    }

    /// Shutdown started: load balancers should stop sending new requests.
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn state(&self) -> &'static str {
        match (self.listening.load(Ordering::SeqCst), self.draining.load(Ordering::SeqCst)) {
            (_, true) => "DRAINING",
            (true, false) => "READY",
            (false, false) => "STARTING",
        }
    }
}

#[derive(Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, bounds: &[f64; BUCKETS.len()], seconds: f64) {
        for (bucket, bound) in self.buckets.iter_mut().zip(bounds) {
            if seconds <= *bound {
                *bucket += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }

    /// Its `_bucket`, `_sum` and `_count` lines.
    fn render(&self, out: &mut String, name: &str, labels: &str, bounds: &[f64; BUCKETS.len()]) {
        for (bound, count) in bounds.iter().zip(self.buckets) {
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {count}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels},le=\"+Inf\"}} {}\n{name}_sum{{{labels}}} {}\n{name}_count{{{labels}}} {}",
            self.count, self.sum, self.count
        );
    }
}

/// Records and bytes one API moved through one topic.
#[derive(Default)]
struct Traffic {
    produced: u64,
    produced_bytes: u64,
    consumed: u64,
    consumed_bytes: u64,
}

/// The key under which dead letters are kept beside call outcomes.
const DEAD_LETTER: &str = "dead_letter";

/// One counter of [`Traffic`], for rendering.
type TrafficField = fn(&Traffic) -> u64;

/// What one API's endpoint did (crate::metered).
#[derive(Default)]
struct EndpointSeries {
    /// Topic label (a topic the definition names, or `other`) → traffic.
    topics: BTreeMap<Arc<str>, Traffic>,
    /// Failure key → failed publishes.
    produce_failures: BTreeMap<&'static str, u64>,
    /// From a publish to the cluster's acknowledgement.
    acknowledgements: Histogram,
    /// From a record's timestamp to its hand-off to a client.
    record_ages: Histogram,
}

/// The requests one entrypoint of one API answered.
#[derive(Default)]
struct Series {
    /// Status → requests answered.
    statuses: BTreeMap<u16, u64>,
    /// Time to the response head.
    durations: Histogram,
}

/// The gateway's counters.
#[derive(Default)]
pub struct Metrics {
    /// API → entrypoint → its series: one lock per request, and no allocation once an API and
    /// entrypoint were seen.
    requests: Mutex<BTreeMap<String, BTreeMap<&'static str, Series>>>,
    /// Requests no API or entrypoint took (404, 405).
    unrouted: AtomicU64,
    open_connections: AtomicU64,
    refused_connections: AtomicU64,
    /// API → what its endpoint did.
    endpoints: Mutex<BTreeMap<Arc<str>, EndpointSeries>>,
    /// What `/ready` says of each API's cluster.
    pub clusters: crate::clusters::Clusters,
    /// (API, outcome) → webhook calls; outcome `dead_letter` counts messages sent to a DLQ.
    webhook_calls: Mutex<BTreeMap<(Arc<str>, &'static str), u64>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Metrics {
    /// A request of `api` served by `entrypoint` was answered with `status` after `elapsed`
    /// (for a stream: when its head was sent).
    pub fn request(&self, api: &str, entrypoint: &'static str, status: u16, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let mut requests = lock(&self.requests);
        let entrypoints = match requests.get_mut(api) {
            Some(entrypoints) => entrypoints,
            None => requests.entry(api.to_owned()).or_default(),
        };
        let series = entrypoints.entry(entrypoint).or_default();
        *series.statuses.entry(status).or_default() += 1;
        series.durations.observe(&BUCKETS, seconds);
    }

    fn endpoint<R>(&self, api: &Arc<str>, update: impl FnOnce(&mut EndpointSeries) -> R) -> R {
        let mut endpoints = lock(&self.endpoints);
        let series = match endpoints.get_mut(api) {
            Some(series) => series,
            None => endpoints.entry(api.clone()).or_default(),
        };
        update(series)
    }

    fn traffic<'s>(series: &'s mut EndpointSeries, topic: &Arc<str>) -> &'s mut Traffic {
        series.topics.entry(topic.clone()).or_default()
    }

    /// A publish of `api` was acknowledged `elapsed` after it started, as one record of `bytes`
    /// on each of `topics` (labels: named or `other`).
    pub fn produced<'t>(
        &self,
        api: &Arc<str>,
        topics: impl Iterator<Item = &'t Arc<str>>,
        bytes: usize,
        elapsed: Duration,
    ) {
        self.endpoint(api, |series| {
            series.acknowledgements.observe(&BUCKETS, elapsed.as_secs_f64());
            for topic in topics {
                let traffic = Self::traffic(series, topic);
                traffic.produced += 1;
                traffic.produced_bytes += bytes as u64;
            }
        });
    }

    /// A publish of `api` failed with the failure `key`.
    pub fn produce_failed(&self, api: &Arc<str>, key: &'static str) {
        self.endpoint(api, |series| *series.produce_failures.entry(key).or_default() += 1);
    }

    /// One record of `bytes` was consumed from `topic` and handed to a client, `age` seconds
    /// after its timestamp.
    pub fn consumed(&self, api: &Arc<str>, topic: &Arc<str>, bytes: usize, age: Option<f64>) {
        self.endpoint(api, |series| {
            let traffic = Self::traffic(series, topic);
            traffic.consumed += 1;
            traffic.consumed_bytes += bytes as u64;
            if let Some(age) = age {
                series.record_ages.observe(&AGE_BUCKETS, age);
            }
        });
    }

    /// A webhook call of `api` ended with `outcome` (`delivered`, `rejected`, `failed`).
    pub fn webhook_call(&self, api: &Arc<str>, outcome: &'static str) {
        *lock(&self.webhook_calls).entry((api.clone(), outcome)).or_default() += 1;
    }

    /// A message `api`'s callback rejected went to the dead-letter queue.
    pub fn webhook_dead_letter(&self, api: &Arc<str>) {
        *lock(&self.webhook_calls).entry((api.clone(), DEAD_LETTER)).or_default() += 1;
    }

    pub fn unrouted(&self) {
        self.unrouted.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_opened(&self) {
        self.open_connections.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_closed(&self) {
        self.open_connections.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn connection_refused(&self) {
        self.refused_connections.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self, ready: bool, clients: &ClientCounts) -> String {
        let mut out = String::new();
        family(&mut out, "kafka_edge_build_info", "gauge", "The running version.");
        let _ = writeln!(out, "kafka_edge_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"));
        family(&mut out, "kafka_edge_ready", "gauge", "1 when the gateway takes traffic (as /ready answers 200).");
        let _ = writeln!(out, "kafka_edge_ready {}", u8::from(ready));
        family(&mut out, "kafka_edge_requests_total", "counter", "Requests answered, by API, entrypoint and status.");
        let requests = lock(&self.requests);
        let series = || {
            requests.iter().flat_map(|(api, entrypoints)| {
                entrypoints.iter().map(move |(entrypoint, series)| (escape(api), *entrypoint, series))
            })
        };
        for (api, entrypoint, series) in series() {
            for (status, count) in &series.statuses {
                let _ = writeln!(
                    out,
                    "kafka_edge_requests_total{{api=\"{api}\",entrypoint=\"{entrypoint}\",status=\"{status}\"}} {count}"
                );
            }
        }
        family(
            &mut out,
            "kafka_edge_unrouted_requests_total",
            "counter",
            "Requests no API or entrypoint served (404, 405).",
        );
        let _ = writeln!(out, "kafka_edge_unrouted_requests_total {}", self.unrouted.load(Ordering::Relaxed));
        family(
            &mut out,
            "kafka_edge_request_duration_seconds",
            "histogram",
            "Time from a request to its response head (for streams: to the stream's start), by API and entrypoint.",
        );
        for (api, entrypoint, series) in series() {
            let labels = format!("api=\"{api}\",entrypoint=\"{entrypoint}\"");
            series.durations.render(&mut out, "kafka_edge_request_duration_seconds", &labels, &BUCKETS);
        }
        drop(requests);
        self.render_endpoints(&mut out);
        family(&mut out, "kafka_edge_open_connections", "gauge", "Client connections open now.");
        let _ = writeln!(out, "kafka_edge_open_connections {}", self.open_connections.load(Ordering::Relaxed));
        family(
            &mut out,
            "kafka_edge_refused_connections_total",
            "counter",
            "Connections closed at once by --max-connections.",
        );
        let _ =
            writeln!(out, "kafka_edge_refused_connections_total {}", self.refused_connections.load(Ordering::Relaxed));
        family(
            &mut out,
            "kafka_edge_producers",
            "gauge",
            "Kafka producers in the pool (one per distinct producer configuration).",
        );
        let _ = writeln!(out, "kafka_edge_producers {}", clients.producers);
        for (name, help, pick) in BROKER_RTTS {
            family(&mut out, name, "gauge", help);
            for (broker, latency) in &clients.brokers {
                let _ = writeln!(out, "{name}{{broker=\"{}\"}} {}", escape(broker), pick(latency).as_secs_f64());
            }
        }
        family(
            &mut out,
            "kafka_edge_consumers",
            "gauge",
            "Kafka consumers of subscriptions open now, warm ones included (limited by --max-consumers).",
        );
        let _ = writeln!(out, "kafka_edge_consumers {}", clients.consumers);
        family(
            &mut out,
            "kafka_edge_consumer_lag_records",
            "gauge",
            "Records the live consumers of an API are behind the high watermark, from librdkafka's statistics (every 5 s).",
        );
        for (api, lag) in &clients.lag {
            let _ = writeln!(out, "kafka_edge_consumer_lag_records{{api=\"{}\"}} {lag}", escape(api));
        }
        family(
            &mut out,
            "kafka_edge_warm_consumers",
            "gauge",
            "http-get consumers parked in their group for their client's next GET.",
        );
        let _ = writeln!(out, "kafka_edge_warm_consumers {}", clients.warm_consumers);
        family(&mut out, "kafka_edge_shared_consumers", "gauge", "Consumers shared by streams (QoS none, latest).");
        let _ = writeln!(out, "kafka_edge_shared_consumers {}", clients.shared_consumers);
        family(
            &mut out,
            "kafka_edge_shared_streams",
            "gauge",
            "SSE and WebSocket streams served by a shared consumer.",
        );
        let _ = writeln!(out, "kafka_edge_shared_streams {}", clients.shared_streams);
        out
    }
}

impl Metrics {
    fn render_endpoints(&self, out: &mut String) {
        let endpoints = lock(&self.endpoints);
        let topics = || {
            endpoints.iter().flat_map(|(api, series)| {
                series.topics.iter().map(move |(topic, traffic)| (escape(api), escape(topic), traffic))
            })
        };
        let counters: [(&str, &str, TrafficField); 4] = [
            ("kafka_edge_produced_messages_total", "Records the cluster acknowledged, by API and topic.", |t| {
                t.produced
            }),
            ("kafka_edge_produced_bytes_total", "Bytes of record values acknowledged, by API and topic.", |t| {
                t.produced_bytes
            }),
            ("kafka_edge_consumed_messages_total", "Records consumed for clients, by API and topic.", |t| t.consumed),
            (
                "kafka_edge_consumed_bytes_total",
                "Bytes of record values consumed for clients, by API and topic.",
                |t| t.consumed_bytes,
            ),
        ];
        for (name, help, value) in counters {
            family(out, name, "counter", help);
            for (api, topic, traffic) in topics() {
                let _ = writeln!(out, "{name}{{api=\"{api}\",topic=\"{topic}\"}} {}", value(traffic));
            }
        }
        family(out, "kafka_edge_produce_failures_total", "counter", "Publishes that failed, by API and failure key.");
        for (api, series) in endpoints.iter() {
            for (key, count) in &series.produce_failures {
                let _ =
                    writeln!(out, "kafka_edge_produce_failures_total{{api=\"{}\",key=\"{key}\"}} {count}", escape(api));
            }
        }
        family(
            out,
            "kafka_edge_produce_ack_seconds",
            "histogram",
            "From a publish to the cluster's acknowledgement of its records, by API.",
        );
        for (api, series) in endpoints.iter().filter(|(_, series)| series.acknowledgements.count > 0) {
            let labels = format!("api=\"{}\"", escape(api));
            series.acknowledgements.render(out, "kafka_edge_produce_ack_seconds", &labels, &BUCKETS);
        }
        family(
            out,
            "kafka_edge_record_age_seconds",
            "histogram",
            "From a record's timestamp to its hand-off to a client (end to end when producers set the time), by API.",
        );
        for (api, series) in endpoints.iter().filter(|(_, series)| series.record_ages.count > 0) {
            let labels = format!("api=\"{}\"", escape(api));
            series.record_ages.render(out, "kafka_edge_record_age_seconds", &labels, &AGE_BUCKETS);
        }
        drop(endpoints);
        let calls = lock(&self.webhook_calls);
        family(
            out,
            "kafka_edge_webhook_calls_total",
            "counter",
            "Webhook calls by API and outcome: delivered (2xx), rejected (4xx), failed (5xx, timeout, no connection).",
        );
        for ((api, outcome), count) in calls.iter().filter(|((_, outcome), _)| *outcome != DEAD_LETTER) {
            let _ = writeln!(
                out,
                "kafka_edge_webhook_calls_total{{api=\"{}\",outcome=\"{outcome}\"}} {count}",
                escape(api)
            );
        }
        family(
            out,
            "kafka_edge_webhook_dead_letters_total",
            "counter",
            "Messages a webhook callback rejected that went to the API's dead-letter queue.",
        );
        for ((api, _), count) in calls.iter().filter(|((_, outcome), _)| *outcome == DEAD_LETTER) {
            let _ = writeln!(out, "kafka_edge_webhook_dead_letters_total{{api=\"{}\"}} {count}", escape(api));
        }
    }
}

/// The broker round-trip time families: name, help, which figure.
type LatencyFigure = fn(&kafka_edge_endpoint_kafka::BrokerLatency) -> Duration;
const BROKER_RTTS: [(&str, &str, LatencyFigure); 2] = [
    (
        "kafka_edge_broker_rtt_average_seconds",
        "Average round-trip time of requests to a broker over librdkafka's last statistics window (5 s), from the producers.",
        |latency| latency.average,
    ),
    (
        "kafka_edge_broker_rtt_p99_seconds",
        "99th percentile round-trip time of requests to a broker over the same window, from the producers.",
        |latency| latency.p99,
    ),
];

/// The Kafka clients of the gateway, counted for `/metrics`.
#[derive(Debug, Default)]
pub struct ClientCounts {
    pub producers: usize,
    pub consumers: usize,
    /// API → records its live consumers are behind.
    pub lag: BTreeMap<String, i64>,
    pub warm_consumers: usize,
    pub shared_consumers: usize,
    pub shared_streams: usize,
    /// Broker (`host:port/node id`) → round-trip times the producers measured.
    pub brokers: BTreeMap<String, kafka_edge_endpoint_kafka::BrokerLatency>,
}

impl ClientCounts {
    pub fn of(clients: &kafka_edge_endpoint_kafka::KafkaClients) -> Self {
        let (shared_streams, shared_consumers) = clients.shared_streams();
        Self {
            producers: clients.producers.len(),
            consumers: clients.consumers(),
            lag: clients.consumer_lag(),
            warm_consumers: clients.warm_consumers(),
            shared_consumers,
            shared_streams,
            brokers: clients.producers.broker_latencies().snapshot(),
        }
    }
}

/// The `# HELP` and `# TYPE` lines of a metric family.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value as the text format wants it.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_histograms_render_in_the_text_format() {
        let metrics = Metrics::default();
        metrics.request("orders", "http-post", 202, Duration::from_millis(3));
        metrics.request("orders", "http-post", 202, Duration::from_millis(30));
        metrics.request("orders", "http-post", 401, Duration::from_millis(1));
        let text = metrics.render(true, &ClientCounts { producers: 2, ..Default::default() });
        assert!(
            text.contains("kafka_edge_requests_total{api=\"orders\",entrypoint=\"http-post\",status=\"202\"} 2"),
            "{text}"
        );
        assert!(
            text.contains(
                "kafka_edge_request_duration_seconds_bucket{api=\"orders\",entrypoint=\"http-post\",le=\"0.005\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains("kafka_edge_request_duration_seconds_count{api=\"orders\",entrypoint=\"http-post\"} 3"),
            "{text}"
        );
        assert!(text.contains("kafka_edge_ready 1") && text.contains("kafka_edge_producers 2"), "{text}");
        assert!(metrics.render(false, &ClientCounts::default()).contains("kafka_edge_ready 0"));
    }
}
