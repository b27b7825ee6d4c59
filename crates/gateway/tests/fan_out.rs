//! Streams that share one consumer (DESIGN 4.4, changed for QoS none without a cursor), against
//! the real broker, read with a real SSE client library and over raw sockets: every stream gets
//! every message, two streams of one client both get all of them, and a client that stops reading
//! is ended with `goaway` while the others keep receiving.

mod common;

use common::*;
use eventsource_stream::Eventsource;
use futures::{Stream, StreamExt};
use serde_json::json;
use std::pin::Pin;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Events = Pin<Box<dyn Stream<Item = String> + Send>>;

fn spec_for(topic: &str) -> ApiSpec {
    let mut spec = ApiSpec::new(topic);
    spec.sse_qos = "none";
    spec.consumer_extra = json!({"autoOffsetReset": "latest"});
    spec
}

async fn open(gateway: &TestGateway, client: &str) -> Events {
    let response = gateway
        .http
        .get(gateway.url())
        .header("Accept", "text/event-stream")
        .header("X-Gravitee-Client-Identifier", client)
        .send()
        .await
        .expect("SSE connect");
    assert_eq!(response.status(), 200);
    let events = response.bytes_stream().eventsource().filter_map(|event| async move {
        let event = event.expect("SSE event");
        (event.event == "message").then_some(event.data)
    });
    Box::pin(events)
}

/// Produces pings until every stream has seen one: the shared consumer starts at the end of the
/// topic, so what is produced before it reached its partitions is, as documented, not delivered.
async fn until_every_stream_reads(topic: &str, streams: &mut [Events]) {
    for stream in streams.iter_mut() {
        let seen = tokio::time::timeout(TIMEOUT, async {
            loop {
                produce(topic, &[(None, "ping")]).await;
                if let Ok(Some(data)) = tokio::time::timeout(Duration::from_millis(300), stream.next()).await {
                    if data == "ping" {
                        return;
                    }
                }
            }
        })
        .await;
        assert!(seen.is_ok(), "a stream never read a ping");
    }
}

/// The next `count` messages of `stream` that are not pings.
async fn next_values(stream: &mut Events, count: usize) -> Vec<String> {
    let mut values = Vec::new();
    let read = tokio::time::timeout(TIMEOUT, async {
        while values.len() < count {
            match stream.next().await {
                Some(data) if data == "ping" => {}
                Some(data) => values.push(data),
                None => break,
            }
        }
    })
    .await;
    assert!(read.is_ok(), "only {} of {count} messages arrived", values.len());
    values
}

#[tokio::test]
async fn every_stream_of_every_client_gets_every_message() {
    let topic = unique("fan-out");
    create_topic(&topic, 2).await;
    let gateway = TestGateway::start(&spec_for(&topic)).await;
    let (alice, bob) = (unique("alice"), unique("bob"));
    // Two streams of one client no longer split the partitions between them: each gets all.
    let mut streams = vec![open(&gateway, &alice).await, open(&gateway, &alice).await, open(&gateway, &bob).await];
    until_every_stream_reads(&topic, &mut streams).await;

    let values: Vec<String> = (0..20).map(|n| format!("m{n}")).collect();
    let keys: Vec<String> = (0..20).map(|n| format!("k{n}")).collect();
    let records: Vec<(Option<&str>, &str)> =
        keys.iter().zip(&values).map(|(k, v)| (Some(k.as_str()), v.as_str())).collect();
    produce(&topic, &records).await;
    for stream in &mut streams {
        let mut received = next_values(stream, values.len()).await;
        received.sort_by_key(|value| value[1..].parse::<u32>().unwrap_or(u32::MAX));
        assert_eq!(received, values);
    }
    assert_eq!(group_members(&gateway.group_of(&alice)), 0, "a shared consumer joins no group");
    gateway.stop().await;
}

#[tokio::test]
async fn a_client_that_stops_reading_is_ended_and_the_others_keep_receiving() {
    const RECORDS: usize = 4_000;
    const RECORD_BYTES: usize = 4 * 1024;
    let topic = unique("fan-out-slow");
    create_topic(&topic, 1).await;
    let gateway = TestGateway::start(&spec_for(&topic)).await;
    let mut fast = vec![open(&gateway, &unique("fast")).await];

    // The slow client: a raw socket with a small receive buffer, read up to its first ping.
    let address = gateway.base.trim_start_matches("http://").to_string();
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(64 * 1024).expect("receive buffer");
    let mut slow = socket.connect(address.parse().expect("address")).await.expect("connect");
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {address}\r\nAccept: text/event-stream\r\nX-Gravitee-Client-Identifier: slow\r\n\r\n",
        gateway.path
    );
    slow.write_all(request.as_bytes()).await.expect("request");
    until_every_stream_reads(&topic, &mut fast).await;
    let mut seen = Vec::new();
    let pinged = tokio::time::timeout(TIMEOUT, async {
        while !String::from_utf8_lossy(&seen).contains("data: ping") {
            produce(&topic, &[(None, "ping")]).await;
            let mut chunk = [0u8; 4096];
            if let Ok(Ok(read)) = tokio::time::timeout(Duration::from_millis(300), slow.read(&mut chunk)).await {
                seen.extend_from_slice(&chunk[..read]);
            }
        }
    })
    .await;
    assert!(pinged.is_ok(), "the slow client never read a ping");

    // It stops reading; far more than the queues and socket buffers hold is produced.
    let values: Vec<String> = (0..RECORDS).map(|n| format!("{n:06} {}", "x".repeat(RECORD_BYTES))).collect();
    let records: Vec<(Option<&str>, &str)> = values.iter().map(|v| (None, v.as_str())).collect();
    produce(&topic, &records).await;
    let received = next_values(&mut fast[0], RECORDS).await;
    let first_difference = received.iter().zip(&values).position(|(got, sent)| got != sent);
    assert!(
        first_difference.is_none(),
        "the fast client got every message, in order, whatever the slow one does; first difference at {first_difference:?}: {:?}",
        first_difference.map(|at| &received[at][..20])
    );

    // Reading again, the slow client finds its stream ended with the reason.
    const REASON: &str = "event: goaway\ndata: Too slow: the client fell more than 1024 messages behind for 2 s";
    let mut rest = Vec::new();
    let ended = tokio::time::timeout(TIMEOUT, async {
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let read = slow.read(&mut chunk).await.expect("read");
            rest.extend_from_slice(&chunk[..read]);
            // The response ends with the reason, then the last chunk of the chunked body.
            if read == 0 || String::from_utf8_lossy(&rest[rest.len().saturating_sub(512)..]).contains("\r\n0\r\n\r\n") {
                return;
            }
        }
    })
    .await;
    let text = String::from_utf8_lossy(&rest);
    assert!(ended.is_ok(), "the slow client's stream was not ended");
    let tail = &text[text.len().saturating_sub(400)..];
    assert!(tail.contains(REASON), "the stream ends with the reason: {tail}");
    gateway.stop().await;
}
