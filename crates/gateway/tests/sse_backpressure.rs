//! SSE and WebSocket backpressure against the real broker and the real `kafka-edge` binary: a
//! client that stops reading stops consumption (the group's committed offset stays within what the
//! socket buffers can hold) and the gateway's memory stays bounded; once it reads again, every
//! record arrives in order.

mod common;

use common::*;
use eventsource_stream::Eventsource;
use futures::StreamExt;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const BINARY: &str = env!("CARGO_BIN_EXE_kafka-edge");
const RECORDS: usize = 5_000;
const RECORD_BYTES: usize = 10 * 1024;
/// What the stalled client's socket may take (the kernel doubles it: SO_RCVBUF).
const CLIENT_RECEIVE_BUFFER: u32 = 128 * 1024;
/// How long the client stalls: more than two of the gateway's 5 s commit intervals.
const STALL: Duration = Duration::from_secs(12);
/// Allowed growth of the gateway's resident memory while the client stalls: a fraction of the
/// ~50 MiB the topic holds (librdkafka's fetch queue is capped at 4 MiB, the gateway holds at most
/// 32 messages, plus the consumer's own threads and buffers).
const RSS_GROWTH_BOUND_KIB: u64 = 40 * 1024;

fn record(n: usize) -> String {
    let head = format!("{n:06} ");
    head.clone() + &"x".repeat(RECORD_BYTES - head.len())
}

fn sysctl_max(name: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/sys/net/ipv4/{name}")).expect("sysctl");
    text.split_whitespace().last().expect("test setup").parse().expect("a number")
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("gateway alive");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS");
    line.split_whitespace().nth(1).expect("test setup").parse().expect("a number")
}

fn committed(group: &str, topic: &str) -> Option<i64> {
    let consumer: BaseConsumer = client_config().set("group.id", group).create().expect("consumer");
    let mut partitions = TopicPartitionList::new();
    partitions.add_partition(topic, 0);
    let committed = consumer.committed_offsets(partitions, TIMEOUT).expect("committed offsets");
    match committed.find_partition(topic, 0).map(|p| p.offset()) {
        Some(Offset::Offset(offset)) => Some(offset),
        _ => None,
    }
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A raw HTTP/1.1 SSE request on a socket with a small receive buffer; returns the reader
/// positioned at the start of the (chunked) body.
async fn stalled_client(port: u16, path: &str, client: &str) -> BufReader<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4().expect("test setup");
    socket.set_recv_buffer_size(CLIENT_RECEIVE_BUFFER).expect("test setup");
    let mut stream = socket.connect(([127, 0, 0, 1], port).into()).await.expect("connect");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\nX-Gravitee-Client-Identifier: {client}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("test setup");
    let mut reader = BufReader::with_capacity(8 * 1024, stream);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).await.expect("response head");
        if line == "\r\n" || line.is_empty() {
            break;
        }
        head.push_str(&line);
    }
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.to_ascii_lowercase().contains("transfer-encoding: chunked"), "{head}");
    reader
}

/// The chunked body as a stream of bytes.
fn dechunk(reader: BufReader<tokio::net::TcpStream>) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures::stream::unfold(reader, |mut reader| async move {
        let mut size_line = String::new();
        if reader.read_line(&mut size_line).await.ok()? == 0 {
            return None;
        }
        let size = usize::from_str_radix(size_line.trim_end().split(';').next()?, 16).ok()?;
        if size == 0 {
            return None;
        }
        let mut chunk = vec![0; size + 2];
        reader.read_exact(&mut chunk).await.ok()?;
        chunk.truncate(size);
        Some((Ok(chunk), reader))
    })
}

/// A topic holding `RECORDS` records of `RECORD_BYTES`, numbered in order.
async fn filled_topic(prefix: &str) -> String {
    let topic = unique(prefix);
    create_topic(&topic, 1).await;
    let producer: FutureProducer = client_config().set("linger.ms", "20").create().expect("test setup");
    for batch in (0..RECORDS).collect::<Vec<_>>().chunks(500) {
        let sends =
            batch.iter().map(|&n| {
                let value = record(n);
                let producer = &producer;
                let topic = &topic;
                async move {
                    producer.send(FutureRecord::<(), _>::to(topic).payload(&value), TIMEOUT).await.expect("produce")
                }
            });
        futures::future::join_all(sends).await;
    }
    assert_eq!(record_count(&topic), RECORDS as i64);
    topic
}

/// The gateway binary serving `definition`, once it serves `path`; with its port.
async fn serving(definition: serde_json::Value, path: &str, dir: &std::path::Path) -> (KillOnDrop, u16) {
    let file = dir.join("api.json");
    std::fs::write(&file, definition.to_string()).expect("test setup");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("test setup").local_addr().expect("test setup").port();
    let gateway = KillOnDrop(
        Command::new(BINARY)
            .args(["run", "--admin-listen", "127.0.0.1:0", "--api"])
            .arg(&file)
            .env("KAFKA_EDGE_LISTEN", format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("test setup"),
    );
    let ready = eventually(|| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()).await;
    assert!(ready, "the gateway listens");
    let status = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}{path}"))
        .header("Accept", "application/json")
        .send()
        .await
        .expect("test setup")
        .status();
    assert_eq!(status, 200, "the gateway serves the API");
    (gateway, port)
}

/// What can have been taken for writing while nobody reads, in records: the client's receive
/// buffer (doubled by the kernel), the gateway's send buffer (autotuned up to tcp_wmem's max),
/// hyper's or the WebSocket library's write buffer; a generous 1 MiB for the latter two's slack.
fn delivered_bound() -> i64 {
    let socket_bytes = 2 * u64::from(CLIENT_RECEIVE_BUFFER) + sysctl_max("tcp_wmem") + 1024 * 1024;
    let bound = (socket_bytes / RECORD_BYTES as u64) as i64 + 1;
    assert!(bound < RECORDS as i64 / 2, "the bound ({bound}) must be meaningful");
    bound
}

/// Watches a stalled client's group for `STALL`: its committed offset must stay within
/// `bound` and the gateway's memory must not grow past `RSS_GROWTH_BOUND_KIB` over `baseline`
/// (taken before the client connected).
async fn stays_stalled(pid: u32, baseline: u64, group: &str, topic: &str, bound: i64) {
    let stall_end = Instant::now() + STALL;
    let (mut max_committed, mut max_rss) = (0, baseline);
    while Instant::now() < stall_end {
        max_committed = max_committed.max(committed(group, topic).unwrap_or(0));
        max_rss = max_rss.max(rss_kib(pid));
        assert!(
            max_committed <= bound,
            "the stalled client's group committed {max_committed} of {RECORDS} (bound {bound}): consumption did not stop"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(group_members(group), 1, "the stalled stream is still open");
    let growth = max_rss.saturating_sub(baseline);
    eprintln!("stalled: committed {max_committed}/{RECORDS} (bound {bound}); RSS {baseline} KiB -> max {max_rss} KiB (+{growth} KiB)");
    assert!(
        growth <= RSS_GROWTH_BOUND_KIB,
        "the gateway's RSS grew by {growth} KiB (bound {RSS_GROWTH_BOUND_KIB} KiB) while the client stalled"
    );
}

#[tokio::test]
async fn a_client_that_stops_reading_stops_consumption_and_memory_stays_bounded() {
    let topic = filled_topic("sse-backpressure").await;
    let mut spec = ApiSpec::new(&topic);
    spec.sse_qos = "at-least-once";
    let dir = tempfile::tempdir().expect("test setup");
    let (gateway, port) = serving(spec.to_json(), &spec.path, dir.path()).await;
    let pid = gateway.0.id();
    let baseline = rss_kib(pid);

    let client = unique("slow");
    let group = group_of(&spec.id, &client);
    let reader = stalled_client(port, &spec.path, &client).await;
    // The stream has delivered (and committed) something: the gateway works and commits.
    assert!(eventually(|| committed(&group, &topic).is_some_and(|o| o > 0)).await, "no commit while streaming");

    stays_stalled(pid, baseline, &group, &topic, delivered_bound()).await;

    // The client reads again: every record, in order, once.
    let mut events = Box::pin(dechunk(reader).eventsource());
    let read = tokio::time::timeout(Duration::from_secs(120), async {
        let mut next = 0;
        while next < RECORDS {
            let event = events.next().await.expect("the stream continues").expect("event");
            assert_eq!(event.data, record(next), "record {next} in order");
            next += 1;
        }
        next
    })
    .await;
    assert_eq!(read.expect("all records read within 120 s"), RECORDS);
    drop(gateway);
}

#[tokio::test]
async fn a_websocket_client_that_stops_reading_stops_consumption_and_memory_stays_bounded() {
    let topic = filled_topic("ws-backpressure").await;
    let spec = ApiSpec::new(&topic);
    let mut definition = spec.to_json();
    let entrypoints = definition["listeners"][0]["entrypoints"].as_array_mut().expect("entrypoints");
    entrypoints.push(serde_json::json!({"type": "websocket", "qos": "auto"}));
    let dir = tempfile::tempdir().expect("test setup");
    let (gateway, port) = serving(definition, &spec.path, dir.path()).await;
    let pid = gateway.0.id();
    let baseline = rss_kib(pid);

    let client = unique("slow-ws");
    let group = group_of(&spec.id, &client);
    let socket = tokio::net::TcpSocket::new_v4().expect("test setup");
    socket.set_recv_buffer_size(CLIENT_RECEIVE_BUFFER).expect("test setup");
    let stream = socket.connect(([127, 0, 0, 1], port).into()).await.expect("connect");
    let mut request = format!("ws://127.0.0.1:{port}{}", spec.path).into_client_request().expect("request");
    request.headers_mut().insert("X-Gravitee-Client-Identifier", client.parse().expect("header"));
    let (mut socket, response) = tokio_tungstenite::client_async(request, stream).await.expect("upgrade");
    assert_eq!(response.status(), 101);
    assert!(eventually(|| committed(&group, &topic).is_some_and(|o| o > 0)).await, "no commit while streaming");

    stays_stalled(pid, baseline, &group, &topic, delivered_bound()).await;

    // The client reads again: every record, in order, once.
    let read = tokio::time::timeout(Duration::from_secs(120), async {
        let mut next = 0;
        while next < RECORDS {
            match socket.next().await.expect("the session continues").expect("a frame") {
                Message::Binary(data) => {
                    assert_eq!(data.as_ref(), record(next).as_bytes(), "record {next} in order");
                    next += 1;
                }
                Message::Ping(_) | Message::Pong(_) => {}
                other => panic!("unexpected frame {other:?}"),
            }
        }
        next
    })
    .await;
    assert_eq!(read.expect("all records read within 120 s"), RECORDS);
    drop(gateway);
}
