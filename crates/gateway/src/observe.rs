//! What the admin listener tells operators without a token (docs/operations.md): `/health`
//! (the process answers), `/ready` (loaded, listening, not draining) and `/metrics` (Prometheus
//! text format). Labels carry only bounded values: API ids, entrypoint types, status codes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the request duration histogram, in seconds.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

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
        let histogram = &mut series.durations;
        for (bucket, bound) in histogram.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        histogram.count += 1;
        histogram.sum += seconds;
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
    pub fn render(&self, readiness: &Readiness, clients: &ClientCounts) -> String {
        let mut out = String::new();
        family(&mut out, "kafka_edge_build_info", "gauge", "The running version.");
        let _ = writeln!(out, "kafka_edge_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"));
        family(&mut out, "kafka_edge_ready", "gauge", "1 when the gateway takes traffic (as /ready answers 200).");
        let _ = writeln!(out, "kafka_edge_ready {}", u8::from(readiness.state() == "READY"));
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
            let histogram = &series.durations;
            let labels = format!("api=\"{api}\",entrypoint=\"{entrypoint}\"");
            for (bound, count) in BUCKETS.iter().zip(histogram.buckets) {
                let _ = writeln!(out, "kafka_edge_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}");
            }
            let _ = writeln!(
                out,
                "kafka_edge_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}\n\
                 kafka_edge_request_duration_seconds_sum{{{labels}}} {}\n\
                 kafka_edge_request_duration_seconds_count{{{labels}}} {}",
                histogram.count, histogram.sum, histogram.count
            );
        }
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

/// The Kafka clients of the gateway, counted for `/metrics`.
#[derive(Debug, Default)]
pub struct ClientCounts {
    pub producers: usize,
    pub warm_consumers: usize,
    pub shared_consumers: usize,
    pub shared_streams: usize,
}

impl ClientCounts {
    pub fn of(clients: &kafka_edge_endpoint_kafka::KafkaClients) -> Self {
        let (shared_streams, shared_consumers) = clients.shared_streams();
        Self {
            producers: clients.producers.len(),
            warm_consumers: clients.warm_consumers(),
            shared_consumers,
            shared_streams,
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
        let readiness = Readiness::default();
        readiness.set_listening();
        let text = metrics.render(&readiness, &ClientCounts { producers: 2, ..Default::default() });
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
        readiness.set_draining();
        assert!(metrics
            .render(&readiness, &ClientCounts { producers: 0, ..Default::default() })
            .contains("kafka_edge_ready 0"));
    }
}
