//! The soak: a mixed load of clients that connect and disconnect (POST, GET, SSE, WebSocket) on a
//! gateway of its own for a bounded time, with the gateway's RSS and thread count sampled every
//! 10 s, then a check that every record the gateway acknowledged (202) is on the broker.

use crate::gateway::{self, GatewayProcess};
use crate::http::{connect, exchange};
use crate::sse::{process_status, EventStream};
use anyhow::Context;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http::{header, Request, StatusCode};
use http_body_util::{Empty, Full};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CONTEXT_PATH: &str = "/bench-soak";
const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// Clients of each kind, and what one session of each does before it disconnects.
const POST_CLIENTS: usize = 8;
const POSTS_PER_CONNECTION: usize = 50;
/// Between two POSTs of a client: the soak is about time, not throughput.
const POST_PAUSE: Duration = Duration::from_millis(10);
const GET_CLIENTS: usize = 2;
const SSE_CLIENTS: usize = 4;
const SSE_SESSION: Duration = Duration::from_secs(8);
const WEBSOCKET_CLIENTS: usize = 2;
const WEBSOCKET_SESSION: Duration = Duration::from_secs(5);
const WEBSOCKET_SENDS: usize = 20;
/// After the load stops: longer than the warm http-get consumers' idle window (15 s).
const SETTLE: Duration = Duration::from_secs(20);

/// One sample of the gateway process.
pub struct Sample {
    pub at: Duration,
    pub rss_kib: u64,
    pub threads: u64,
}

#[derive(Default)]
pub struct Counts {
    pub acknowledged: AtomicU64,
    pub post_failures: AtomicU64,
    pub gets: AtomicU64,
    pub get_items: AtomicU64,
    pub get_failures: AtomicU64,
    pub sse_sessions: AtomicU64,
    pub sse_events: AtomicU64,
    pub sse_failures: AtomicU64,
    pub websocket_sessions: AtomicU64,
    pub websocket_sent: AtomicU64,
    pub websocket_received: AtomicU64,
    pub websocket_failures: AtomicU64,
}

pub struct SoakReport {
    pub duration: Duration,
    pub samples: Vec<Sample>,
    /// After the load stopped and the warm consumers' window passed.
    pub settled: Sample,
    pub counts: Counts,
    /// Acknowledged records not found on the broker.
    pub missing: usize,
    /// WebSocket messages sent that are not on the broker (a WebSocket publish has no ack).
    pub websocket_missing: usize,
}

/// Runs the soak for `duration` against a gateway of its own, on a topic of its own.
pub async fn run(
    binary: &Path,
    bootstrap: &str,
    temp: &Path,
    id: &str,
    duration: Duration,
) -> anyhow::Result<SoakReport> {
    let topic = format!("bench-soak-{id}");
    crate::kafka::create_topics(bootstrap, &[&topic], 3).await?;
    let result = soak(binary, bootstrap, temp, &topic, duration).await;
    crate::kafka::delete_topics(bootstrap, &[&topic]).await;
    result
}

async fn soak(
    binary: &Path,
    bootstrap: &str,
    temp: &Path,
    topic: &str,
    duration: Duration,
) -> anyhow::Result<SoakReport> {
    let mut api = gateway::topic_api_definition(bootstrap, "kafka-edge-bench-soak", CONTEXT_PATH, topic, 100);
    if let Some(entrypoints) = api["listeners"][0]["entrypoints"].as_array_mut() {
        entrypoints.push(serde_json::json!({"type": "websocket", "qos": "auto",
            "configuration": {"publisher": {"enabled": true}, "subscriber": {"enabled": true}}}));
    }
    let definition = temp.join("api-soak.json");
    std::fs::write(&definition, serde_json::to_vec_pretty(&api)?)?;
    let gateway =
        GatewayProcess::start_with(binary, std::slice::from_ref(&definition), temp, temp.join("gateway-soak.log"), &[])
            .await?;
    let address = gateway.address;
    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(Counts::default());
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let websocket_sent = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut clients = Vec::new();
    for client in 0..POST_CLIENTS {
        let (stop, counts, acknowledged) = (stop.clone(), counts.clone(), acknowledged.clone());
        clients.push(tokio::spawn(post_client(address, client, stop, counts, acknowledged)));
    }
    for client in 0..GET_CLIENTS {
        clients.push(tokio::spawn(get_client(address, client, stop.clone(), counts.clone())));
    }
    for client in 0..SSE_CLIENTS {
        clients.push(tokio::spawn(sse_client(address, client, stop.clone(), counts.clone())));
    }
    for client in 0..WEBSOCKET_CLIENTS {
        let (stop, counts, sent) = (stop.clone(), counts.clone(), websocket_sent.clone());
        clients.push(tokio::spawn(websocket_client(address, client, stop, counts, sent)));
    }
    let started = Instant::now();
    let mut samples = Vec::new();
    while started.elapsed() < duration {
        let (rss_kib, threads) = process_status(gateway.pid());
        samples.push(Sample { at: started.elapsed(), rss_kib, threads });
        eprintln!(
            "bench:   soak {:>4.0} s: RSS {} KiB, {threads} threads, {} POSTs acknowledged",
            started.elapsed().as_secs_f64(),
            rss_kib,
            counts.acknowledged.load(Ordering::Relaxed)
        );
        tokio::time::sleep(SAMPLE_EVERY.min(duration.saturating_sub(started.elapsed()))).await;
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.context("soak client")?;
    }
    let (rss_kib, threads) = process_status(gateway.pid());
    samples.push(Sample { at: started.elapsed(), rss_kib, threads });
    tokio::time::sleep(SETTLE).await;
    let (rss_kib, threads) = process_status(gateway.pid());
    let settled = Sample { at: started.elapsed(), rss_kib, threads };
    drop(gateway);

    let on_broker = read_all(bootstrap, topic).context("reading the soak topic back")?;
    let missing = acknowledged.lock().map_or(0, |acked| acked.iter().filter(|v| !on_broker.contains(*v)).count());
    let websocket_missing =
        websocket_sent.lock().map_or(0, |sent| sent.iter().filter(|v| !on_broker.contains(*v)).count());
    let counts = Arc::try_unwrap(counts).unwrap_or_default();
    Ok(SoakReport { duration, samples, settled, counts, missing, websocket_missing })
}

/// Connects, POSTs a numbered record `POSTS_PER_CONNECTION` times, disconnects; again until told.
async fn post_client(
    address: SocketAddr,
    client: usize,
    stop: Arc<AtomicBool>,
    counts: Arc<Counts>,
    acknowledged: Arc<Mutex<Vec<String>>>,
) {
    let mut sequence = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut sender) = connect::<Full<Bytes>>(address).await else {
            counts.post_failures.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        for _ in 0..POSTS_PER_CONNECTION {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            sequence += 1;
            let value = format!("soak-post-{client}-{sequence}");
            let request = Request::post(CONTEXT_PATH)
                .header(header::HOST, address.to_string())
                .body(Full::new(Bytes::from(value.clone())));
            let answered = match request {
                Ok(request) => exchange(&mut sender, request).await.ok(),
                Err(_) => None,
            };
            match answered {
                Some((StatusCode::ACCEPTED, _)) => {
                    counts.acknowledged.fetch_add(1, Ordering::Relaxed);
                    if let Ok(mut acked) = acknowledged.lock() {
                        acked.push(value);
                    }
                }
                _ => {
                    counts.post_failures.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
            tokio::time::sleep(POST_PAUSE).await;
        }
    }
}

/// One GET per connection, as one of four returning clients (so warm consumers are reused).
async fn get_client(address: SocketAddr, client: usize, stop: Arc<AtomicBool>, counts: Arc<Counts>) {
    let mut round = 0usize;
    while !stop.load(Ordering::Relaxed) {
        round += 1;
        let identifier = format!("soak-get-{client}-{}", round % 4);
        let got = async {
            let mut sender = connect::<Empty<Bytes>>(address).await?;
            let request = Request::get(format!("{CONTEXT_PATH}?limit=100"))
                .header(header::HOST, address.to_string())
                .header(header::ACCEPT, "application/json")
                .header("X-Gravitee-Client-Identifier", identifier)
                .body(Empty::new())?;
            let (status, body) = exchange(&mut sender, request).await?;
            anyhow::ensure!(status == StatusCode::OK, "GET answered {status}");
            let page: serde_json::Value = serde_json::from_slice(&body)?;
            Ok::<_, anyhow::Error>(page["items"].as_array().map_or(0, Vec::len))
        };
        match got.await {
            Ok(items) => {
                counts.gets.fetch_add(1, Ordering::Relaxed);
                counts.get_items.fetch_add(items as u64, Ordering::Relaxed);
            }
            Err(_) => {
                counts.get_failures.fetch_add(1, Ordering::Relaxed);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Streams for `SSE_SESSION`, disconnects, and comes back as the same client (which resumes from
/// what its group committed).
async fn sse_client(address: SocketAddr, client: usize, stop: Arc<AtomicBool>, counts: Arc<Counts>) {
    let identifier = format!("soak-sse-{client}");
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut stream) = EventStream::open(address, CONTEXT_PATH, &identifier).await else {
            counts.sse_failures.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        counts.sse_sessions.fetch_add(1, Ordering::Relaxed);
        let session = Instant::now();
        while session.elapsed() < SSE_SESSION && !stop.load(Ordering::Relaxed) {
            match tokio::time::timeout(Duration::from_secs(1), stream.next_message()).await {
                Ok(Ok(_)) => {
                    counts.sse_events.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Err(_)) => {
                    counts.sse_failures.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Err(_) => {}
            }
        }
    }
}

/// Opens a WebSocket, publishes `WEBSOCKET_SENDS` numbered messages, reads for `WEBSOCKET_SESSION`,
/// closes; again until told.
async fn websocket_client(
    address: SocketAddr,
    client: usize,
    stop: Arc<AtomicBool>,
    counts: Arc<Counts>,
    sent: Arc<Mutex<Vec<String>>>,
) {
    let mut sequence = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let request = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
            "ws://{address}{CONTEXT_PATH}"
        ));
        let Ok(mut request) = request else { return };
        if let Ok(value) = http::HeaderValue::from_str(&format!("soak-ws-{client}")) {
            request.headers_mut().insert("X-Gravitee-Client-Identifier", value);
        }
        let Ok((mut socket, _)) = tokio_tungstenite::connect_async(request).await else {
            counts.websocket_failures.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        counts.websocket_sessions.fetch_add(1, Ordering::Relaxed);
        for _ in 0..WEBSOCKET_SENDS {
            sequence += 1;
            let value = format!("soak-ws-{client}-{sequence}");
            if socket.send(tokio_tungstenite::tungstenite::Message::text(value.clone())).await.is_err() {
                counts.websocket_failures.fetch_add(1, Ordering::Relaxed);
                break;
            }
            counts.websocket_sent.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut sent) = sent.lock() {
                sent.push(value);
            }
        }
        let session = Instant::now();
        while session.elapsed() < WEBSOCKET_SESSION && !stop.load(Ordering::Relaxed) {
            match tokio::time::timeout(Duration::from_secs(1), socket.next()).await {
                Ok(Some(Ok(message))) if message.is_text() || message.is_binary() => {
                    counts.websocket_received.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Some(Ok(_))) | Err(_) => {}
                Ok(Some(Err(_))) | Ok(None) => break,
            }
        }
        let _ = socket.close(None).await;
    }
}

/// Every value on `topic`, read by assignment from the beginning to the high watermarks.
fn read_all(bootstrap: &str, topic: &str) -> anyhow::Result<HashSet<String>> {
    let consumer: BaseConsumer = crate::kafka::client_config(bootstrap)
        .set("group.id", format!("kafka-edge-bench-soak-check-{}", uuid::Uuid::new_v4().simple()))
        .set("enable.auto.commit", "false")
        .create()?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let partitions: Vec<i32> = metadata.topics().iter().flat_map(|t| t.partitions().iter().map(|p| p.id())).collect();
    let mut assignment = TopicPartitionList::new();
    let mut remaining = 0i64;
    for partition in &partitions {
        let (low, high) = consumer.fetch_watermarks(topic, *partition, Duration::from_secs(10))?;
        remaining += high - low;
        assignment.add_partition_offset(topic, *partition, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    let mut values = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while remaining > 0 && Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(500)) {
            let message = message?;
            remaining -= 1;
            if let Some(payload) = message.payload() {
                values.insert(String::from_utf8_lossy(payload).into_owned());
            }
        }
    }
    anyhow::ensure!(remaining == 0, "{remaining} records of {topic} not read back in 120 s");
    Ok(values)
}
