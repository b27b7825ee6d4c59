//! Server-Sent Events against the real broker, read with a real SSE client library
//! (eventsource-stream) and as raw bytes where the exact framing matters.

mod common;

use common::*;
use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::json;
use std::time::Duration;

async fn connect(gateway: &TestGateway, client: &str, last_event_id: Option<&str>) -> reqwest::Response {
    let mut request = gateway
        .http
        .get(gateway.url())
        .header("Accept", "text/event-stream")
        .header("X-Gravitee-Client-Identifier", client);
    if let Some(id) = last_event_id {
        request = request.header("Last-Event-ID", id);
    }
    let response = request.send().await.expect("SSE connect");
    assert_eq!(response.status(), 200);
    response
}

/// Reads raw body text until it contains `needle` (or TIMEOUT passes).
async fn read_until(response: &mut reqwest::Response, text: &mut String, needle: &str) {
    let found = tokio::time::timeout(TIMEOUT, async {
        while !text.contains(needle) {
            match response.chunk().await.expect("body chunk") {
                Some(chunk) => text.push_str(&String::from_utf8_lossy(&chunk)),
                None => break,
            }
        }
    })
    .await;
    assert!(found.is_ok() && text.contains(needle), "did not receive {needle:?}; got {text:?}");
}

#[tokio::test]
async fn events_have_the_exact_framing() {
    let topic = unique("sse-frame");
    create_topic(&topic, 1).await;
    produce_with_headers(&topic, b"line1\nline2", &[("greeting", "mate")]).await;
    let mut spec = ApiSpec::new(&topic);
    spec.sse_qos = "at-least-once";
    spec.sse = json!({"metadataAsComment": true, "headersAsComment": true});
    spec.consumer_extra = json!({"autoOffsetReset": "earliest", "encodeMessageId": false});
    let gateway = TestGateway::start(&spec).await;

    let mut response = connect(&gateway, &unique("c"), None).await;
    assert_eq!(response.headers()["content-type"], "text/event-stream;charset=UTF-8");
    assert_eq!(response.headers()["cache-control"], "no-cache");
    let mut text = String::new();
    read_until(&mut response, &mut text, ":greeting: mate\n\n").await;
    let (retry, event) = text.split_once("\n\n").unwrap();
    let retry_ms: u64 = retry.strip_prefix("retry: ").unwrap().parse().unwrap();
    assert!((1000..5000).contains(&retry_ms));
    let expected_start = format!("id: {topic}@0#0\nevent: message\ndata: line1\ndata: line2\n:topic: {topic}\n:partition: 0\n:offset: 0\n:sourceTimestamp: ");
    assert!(event.starts_with(&expected_start), "{event:?}");
    assert!(event.ends_with(":greeting: mate\n\n"), "{event:?}");
    gateway.stop().await;
}

#[tokio::test]
async fn a_client_library_reads_events_and_resumes_with_last_event_id() {
    let topic = unique("sse-resume");
    create_topic(&topic, 1).await;
    produce(&topic, &[(None, "a"), (None, "b"), (None, "c")]).await;
    let mut spec = ApiSpec::new(&topic);
    spec.sse_qos = "at-least-once";
    let gateway = TestGateway::start(&spec).await;

    let events: Vec<_> =
        connect(&gateway, &unique("c"), None).await.bytes_stream().eventsource().take(3).collect().await;
    let events: Vec<_> = events.into_iter().map(|e| e.expect("event")).collect();
    assert_eq!(events.iter().map(|e| e.data.as_str()).collect::<Vec<_>>(), ["a", "b", "c"]);
    assert!(events.iter().all(|e| e.event == "message"));

    // A new client (no committed offsets) resumes after the first event it was told about.
    let resumed: Vec<_> =
        connect(&gateway, &unique("c"), Some(&events[0].id)).await.bytes_stream().eventsource().take(2).collect().await;
    let data: Vec<String> = resumed.into_iter().map(|e| e.expect("event").data).collect();
    assert_eq!(data, ["b", "c"]);
    gateway.stop().await;
}

#[tokio::test]
async fn at_least_once_loses_nothing_across_a_reconnect() {
    let topic = unique("sse-reconnect");
    create_topic(&topic, 1).await;
    let records: Vec<String> = (1..=20).map(|n| n.to_string()).collect();
    produce(&topic, &records.iter().map(|r| (None, r.as_str())).collect::<Vec<_>>()).await;
    let mut spec = ApiSpec::new(&topic);
    spec.sse_qos = "at-least-once";
    let gateway = TestGateway::start(&spec).await;
    let client = unique("c");

    // The client stops after 5 events although more were already on the wire.
    let first: Vec<_> = connect(&gateway, &client, None)
        .await
        .bytes_stream()
        .eventsource()
        .take(5)
        .map(|e| e.expect("event"))
        .collect()
        .await;
    assert_eq!(first.iter().map(|e| e.data.as_str()).collect::<Vec<_>>(), ["1", "2", "3", "4", "5"]);
    assert!(eventually(|| group_members(&gateway.group_of(&client)) == 0).await, "the first connection is gone");

    // Reconnecting as EventSource does, with the last id it processed: nothing is skipped.
    let last_id = first[4].id.clone();
    let second: Vec<u32> = connect(&gateway, &client, Some(&last_id))
        .await
        .bytes_stream()
        .eventsource()
        .map(|e| e.expect("event").data.parse::<u32>().unwrap())
        .take(15)
        .collect()
        .await;
    assert_eq!(second, (6..=20).collect::<Vec<u32>>());
    gateway.stop().await;
}

#[tokio::test]
async fn idle_streams_get_heartbeats() {
    let topic = unique("sse-idle");
    create_topic(&topic, 1).await;
    let mut spec = ApiSpec::new(&topic);
    spec.sse = json!({"heartbeatIntervalInMs": "100"});
    let gateway = TestGateway::start(&spec).await;
    let mut response = connect(&gateway, &unique("c"), None).await;
    let mut text = String::new();
    read_until(&mut response, &mut text, "\n\n:\n\n:\n\n").await;
    gateway.stop().await;
}

#[tokio::test]
async fn a_disconnected_client_leaves_its_group() {
    let topic = unique("sse-leave");
    create_topic(&topic, 1).await;
    let gateway = TestGateway::start(&ApiSpec::new(&topic)).await;
    let client = unique("c");
    let group = gateway.group_of(&client);
    let response = connect(&gateway, &client, None).await;
    assert!(eventually(|| group_members(&group) == 1).await, "joined");
    drop(response);
    assert!(
        eventually_within(Duration::from_secs(1), || group_members(&group) == 0).await,
        "left within a second of the disconnect"
    );
    gateway.stop().await;
}

#[tokio::test]
async fn shutdown_says_goaway() {
    let topic = unique("sse-goaway");
    create_topic(&topic, 1).await;
    let gateway = TestGateway::start(&ApiSpec::new(&topic)).await;
    let client = unique("c");
    let mut response = connect(&gateway, &client, None).await;
    assert!(eventually(|| group_members(&gateway.group_of(&client)) == 1).await, "streaming");
    let mut text = String::new();
    let (_, ()) = tokio::join!(
        gateway.stop(),
        read_until(&mut response, &mut text, "event: goaway\ndata: Stopping, please reconnect\n\n")
    );
}

#[tokio::test]
async fn a_malformed_last_event_id_is_a_400() {
    let mut spec = ApiSpec::new(&unique("sse-bad"));
    spec.sse_qos = "at-most-once";
    let gateway = TestGateway::start(&spec).await;
    let response = gateway
        .http
        .get(gateway.url())
        .header("Accept", "text/event-stream")
        .header("Last-Event-ID", "%%%")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["message"], "Invalid cursor: not valid base64");
    gateway.stop().await;
}

/// Produces 1..=count as records of a fresh one-partition topic.
async fn numbered_topic(prefix: &str, count: u32) -> String {
    let topic = unique(prefix);
    create_topic(&topic, 1).await;
    let records: Vec<String> = (1..=count).map(|n| n.to_string()).collect();
    produce(&topic, &records.iter().map(|r| (None, r.as_str())).collect::<Vec<_>>()).await;
    topic
}

async fn read_numbers(gateway: &TestGateway, client: &str, count: usize) -> Vec<u32> {
    connect(gateway, client, None)
        .await
        .bytes_stream()
        .eventsource()
        .take(count)
        .map(|e| e.expect("event").data.parse::<u32>().expect("test setup"))
        .collect()
        .await
}

#[tokio::test]
async fn qos_none_never_commits() {
    let topic = numbered_topic("sse-none", 10).await;
    let mut spec = ApiSpec::new(&topic);
    spec.sse_qos = "none";
    let gateway = TestGateway::start(&spec).await;
    let client = unique("c");
    assert_eq!(read_numbers(&gateway, &client, 3).await, [1, 2, 3]);
    assert!(eventually(|| group_members(&gateway.group_of(&client)) == 0).await, "the connection is gone");
    assert_eq!(committed_offset(&gateway.group_of(&client), &topic, 0), None, "nothing committed");
    // So the next connection starts again from autoOffsetReset.
    assert_eq!(read_numbers(&gateway, &client, 1).await, [1]);
    gateway.stop().await;
}

#[tokio::test]
async fn qos_auto_commits_periodically_while_connected() {
    let topic = numbered_topic("sse-auto", 10).await;
    let gateway = TestGateway::start(&ApiSpec::new(&topic)).await;
    let client = unique("c");
    let mut events = connect(&gateway, &client, None).await.bytes_stream().eventsource();
    for expected in 1..=10u32 {
        assert_eq!(events.next().await.unwrap().unwrap().data.parse::<u32>().unwrap(), expected);
    }
    // Still connected: the periodic commit (every 5 s) records what was delivered.
    assert!(
        eventually(|| committed_offset(&gateway.group_of(&client), &topic, 0).is_some_and(|o| o >= 9)).await,
        "committed while connected"
    );
    assert_eq!(group_members(&gateway.group_of(&client)), 1, "the stream is still open");
    drop(events);
    gateway.stop().await;
}

#[tokio::test]
async fn at_most_once_never_repeats_a_message_across_reconnects() {
    let topic = numbered_topic("sse-amo", 5).await;
    let mut spec = ApiSpec::new(&topic);
    spec.sse_qos = "at-most-once";
    let gateway = TestGateway::start(&spec).await;
    let client = unique("c");
    let mut seen: Vec<u32> = Vec::new();
    for session in 1..=3u32 {
        seen.extend(read_numbers(&gateway, &client, 2).await);
        assert!(eventually(|| group_members(&gateway.group_of(&client)) == 0).await, "the connection is gone");
        // What was written to the dropped connection counts as delivered (0 or 1 times): new
        // records give the next session something to read.
        let next: Vec<String> = (0..3).map(|i| (100 * session + i).to_string()).collect();
        produce(&topic, &next.iter().map(|r| (None, r.as_str())).collect::<Vec<_>>()).await;
    }
    let mut unique_seen = seen.clone();
    unique_seen.sort();
    unique_seen.dedup();
    assert_eq!(unique_seen.len(), seen.len(), "no message twice: {seen:?}");
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "in order, never going back: {seen:?}");
    gateway.stop().await;
}
