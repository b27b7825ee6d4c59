//! Webhook QoS and timeouts against the test bed's broker, with real HTTP servers as callbacks:
//! `none` never commits, `auto` commits so a restarted gateway continues after it,
//! `at-most-once` never sends a message twice (not across a restart mid-call, not after a failed
//! call), and a callback that hangs is cut off by `http.readTimeout` (then retried) or, during the
//! TLS handshake, by `http.connectTimeout` (then the subscription stops).

mod common;

use axum::extract::State;
use axum::http::StatusCode;
use common::webhook::*;
use common::*;
use kafka_edge_definition::{load_str, ApiDefinition, Format};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A callback server: records every request body, answers with scripted statuses (then 200), and
/// never answers the first request whose body is `hang_on`.
#[derive(Clone, Default)]
struct Callback {
    bodies: Arc<Mutex<Vec<String>>>,
    script: Arc<Mutex<VecDeque<u16>>>,
    hang_on: Arc<Mutex<Option<String>>>,
}

impl Callback {
    async fn start() -> (Self, String) {
        let callback = Callback::default();
        let app = axum::Router::new().fallback(record).with_state(callback.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, app).await.expect("callback server") });
        (callback, url)
    }

    fn bodies(&self) -> Vec<String> {
        self.bodies.lock().expect("test setup").clone()
    }

    fn count(&self) -> usize {
        self.bodies.lock().expect("test setup").len()
    }

    fn numbers(&self) -> Vec<u32> {
        self.bodies().iter().map(|b| b.parse().expect("a number")).collect()
    }

    fn received(&self, body: &str) -> bool {
        self.bodies.lock().expect("test setup").iter().any(|b| b == body)
    }
}

async fn record(State(callback): State<Callback>, body: String) -> StatusCode {
    callback.bodies.lock().expect("test setup").push(body.clone());
    let hang = {
        let mut hang_on = callback.hang_on.lock().expect("test setup");
        let hang = hang_on.as_deref() == Some(body.as_str());
        if hang {
            *hang_on = None;
        }
        hang
    };
    if hang {
        std::future::pending::<()>().await;
    }
    let status = callback.script.lock().expect("test setup").pop_front().unwrap_or(200);
    StatusCode::from_u16(status).expect("status")
}

/// An API whose webhook entrypoint has this `qos` and `http` options, consuming `topic` from the
/// earliest offset.
fn definition(topic: &str, qos: &str, http: Value) -> ApiDefinition {
    let json = json!({
        "id": unique("api"), "name": "webhook qos test", "definitionVersion": "4.0.0", "type": "message",
        "listeners": [{"type": "subscription", "entrypoints": [{"type": "webhook", "qos": qos, "configuration": {"http": http}}]}],
        "endpointGroups": [{"name": "default", "type": "kafka",
            "sharedConfiguration": {"consumer": {"enabled": true, "topics": [topic], "autoOffsetReset": "earliest"}},
            "endpoints": [{"name": "default", "type": "kafka", "configuration": {"bootstrapServers": bootstrap()}}]}],
        "plans": [{"id": "push", "name": "push", "mode": "PUSH", "status": "PUBLISHED"}]
    });
    let loaded = load_str(&json.to_string(), Format::Json, "test").expect("valid definition");
    assert!(loaded.ignored.is_empty(), "{:?}", loaded.ignored);
    loaded.api
}

/// The committed offset of partition 0, read without blocking the runtime.
async fn committed(group: &str, topic: &str) -> Option<i64> {
    let (group, topic) = (group.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || committed_offset(&group, &topic, 0)).await.expect("committed offset")
}

async fn members(group: &str) -> usize {
    let group = group.to_string();
    tokio::task::spawn_blocking(move || group_members(&group)).await.expect("group members")
}

async fn produce_numbers(topic: &str, numbers: std::ops::RangeInclusive<u32>) {
    let values: Vec<String> = numbers.map(|n| n.to_string()).collect();
    produce(topic, &values.iter().map(|v| (None, v.as_str())).collect::<Vec<_>>()).await;
}

/// A fresh one-partition topic holding the records 1..=count.
async fn numbered_topic(prefix: &str, count: u32) -> String {
    let topic = unique(prefix);
    create_topic(&topic, 1).await;
    produce_numbers(&topic, 1..=count).await;
    topic
}

fn sorted(mut numbers: Vec<u32>) -> Vec<u32> {
    numbers.sort_unstable();
    numbers
}

fn assert_no_repeat(numbers: &[u32]) {
    let unique = sorted(numbers.to_vec()).windows(2).all(|w| w[0] != w[1]);
    assert!(unique, "a message was delivered twice: {numbers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos_none_delivers_but_never_commits() {
    let topic = numbered_topic("webhook-none", 5).await;
    let api = definition(&topic, "none", json!({}));
    let dir = tempfile::tempdir().expect("dir");
    let state_file = dir.path().join("state");
    let (callback, url) = Callback::start().await;
    let edge = Edge::start(&api, &state_file).await;
    let id = unique("sub");
    edge.subscribe(&api, &id, &url, json!({})).await;

    assert!(eventually(|| callback.count() >= 5).await, "delivered: {:?}", callback.bodies());
    produce_numbers(&topic, 6..=6).await;
    assert!(eventually(|| callback.count() >= 6).await, "delivered: {:?}", callback.bodies());
    assert_eq!(sorted(callback.numbers()), (1..=6).collect::<Vec<_>>());
    assert_eq!(members(&id).await, 1, "the subscription consumes in its own group");

    // Closing the consumer is where auto and at-least-once make their final commit: none does not.
    edge.stop().await;
    assert_eq!(members(&id).await, 0, "the consumer left");
    assert_eq!(committed(&id, &topic).await, None, "nothing committed when the consumer closed");

    // So a restarted gateway starts from autoOffsetReset (earliest) again: everything once more.
    let edge = Edge::start(&api, &state_file).await;
    assert!(eventually(|| callback.count() >= 12).await, "delivered: {:?}", callback.bodies());
    assert_eq!(sorted(callback.numbers()[6..].to_vec()), (1..=6).collect::<Vec<_>>());
    edge.stop().await;
    assert_eq!(committed(&id, &topic).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos_auto_commits_so_a_restarted_gateway_continues_after_it() {
    let topic = numbered_topic("webhook-auto", 5).await;
    let api = definition(&topic, "auto", json!({}));
    let dir = tempfile::tempdir().expect("dir");
    let state_file = dir.path().join("state");
    let (callback, url) = Callback::start().await;
    let edge = Edge::start(&api, &state_file).await;
    let id = unique("sub");
    edge.subscribe(&api, &id, &url, json!({})).await;

    assert!(eventually(|| callback.count() >= 5).await, "delivered: {:?}", callback.bodies());
    assert_eq!(sorted(callback.numbers()), [1, 2, 3, 4, 5]);
    // The periodic commit (every 5 s) records what the callback acknowledged, while running.
    assert!(
        eventually_async(|| async { committed(&id, &topic).await == Some(5) }).await,
        "committed: {:?}",
        committed(&id, &topic).await
    );
    edge.stop().await;

    produce_numbers(&topic, 6..=7).await;
    let edge = Edge::start(&api, &state_file).await;
    assert!(eventually(|| callback.count() >= 7).await, "delivered: {:?}", callback.bodies());
    edge.stop().await;
    assert_eq!(committed(&id, &topic).await, Some(7), "the new records are committed too");
    // Only the new records after the restart: nothing old delivered again.
    assert_eq!(callback.count(), 7, "delivered: {:?}", callback.bodies());
    assert_eq!(sorted(callback.numbers()[5..].to_vec()), [6, 7]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_once_never_repeats_a_message_across_a_restart_mid_call() {
    let topic = numbered_topic("webhook-amo-restart", 5).await;
    let api = definition(&topic, "at-most-once", json!({"readTimeout": 60000}));
    let dir = tempfile::tempdir().expect("dir");
    let state_file = dir.path().join("state");
    let (callback, url) = Callback::start().await;
    // The callback receives 3 and never answers: the gateway goes down during that call.
    *callback.hang_on.lock().unwrap() = Some("3".into());
    let edge = Edge::start(&api, &state_file).await;
    let id = unique("sub");
    edge.subscribe(&api, &id, &url, json!({})).await;
    assert!(eventually(|| callback.received("3")).await, "delivered: {:?}", callback.bodies());
    edge.stop().await;

    produce_numbers(&topic, 6..=7).await;
    let edge = Edge::start(&api, &state_file).await;
    assert!(eventually(|| callback.received("7")).await, "delivered: {:?}", callback.bodies());
    edge.stop().await;
    let numbers = callback.numbers();
    assert_no_repeat(&numbers);
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "in order: {numbers:?}");
    assert_eq!(numbers[..3], [1, 2, 3], "{numbers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_once_never_repeats_a_failed_message_when_the_subscription_is_recreated() {
    let topic = numbered_topic("webhook-amo-failed", 5).await;
    let api = definition(&topic, "at-most-once", json!({}));
    let dir = tempfile::tempdir().expect("dir");
    let (callback, url) = Callback::start().await;
    // 1 and 2 are taken, 3 fails with a 500 and, without retries, stops the subscription.
    callback.script.lock().unwrap().extend([200, 200, 500]);
    let edge = Edge::start(&api, &dir.path().join("state")).await;
    let id = unique("sub");
    let no_retry = json!({"retry": {"retryOption": "No Retry"}});
    edge.subscribe(&api, &id, &url, no_retry.clone()).await;
    let stopped =
        eventually_async(|| async { edge.subscription(&api, &id).await["state"]["status"] == "stopped" }).await;
    assert!(stopped, "still active; delivered: {:?}", callback.bodies());
    assert_eq!(edge.subscription(&api, &id).await["state"]["reason"], "WEBHOOK_UNREACHABLE");
    assert_eq!(callback.numbers(), [1, 2, 3]);

    // The same subscription (same id, so the same consumer group) created again goes on.
    let (status, _) = edge.call(reqwest::Method::DELETE, &format!("/apis/{}/subscriptions/{id}", api.id), None).await;
    assert_eq!(status, 204);
    edge.subscribe(&api, &id, &url, no_retry).await;
    assert!(eventually(|| callback.received("5")).await, "delivered: {:?}", callback.bodies());
    edge.stop().await;
    let numbers = callback.numbers();
    assert_no_repeat(&numbers);
    assert_eq!(numbers, [1, 2, 3, 4, 5]);
}

#[tokio::test]
async fn at_most_once_does_not_retry_a_call_the_callback_may_have_received() {
    let topic = numbered_topic("webhook-amo-retry", 3).await;
    let api = definition(&topic, "at-most-once", json!({}));
    let dir = tempfile::tempdir().expect("dir");
    let (callback, url) = Callback::start().await;
    callback.script.lock().unwrap().extend([200, 500]);
    let edge = Edge::start(&api, &dir.path().join("state")).await;
    let id = unique("sub");
    let retries = json!({"retry": {"retryOption": "Retry On Fail", "maxAttempts": 3, "initialDelaySeconds": 0, "maxDelaySeconds": 0}});
    edge.subscribe(&api, &id, &url, retries).await;
    let stopped =
        eventually_async(|| async { edge.subscription(&api, &id).await["state"]["status"] == "stopped" }).await;
    let state = edge.subscription(&api, &id).await["state"].clone();
    assert!(stopped, "still active: {state}; delivered: {:?}", callback.bodies());
    assert_eq!(state["reason"], "WEBHOOK_UNREACHABLE", "{state}");
    assert!(state["message"].as_str().unwrap_or_default().contains("not retried: at-most-once"), "{state}");
    edge.stop().await;
    assert_eq!(callback.numbers(), [1, 2], "2 answered 500 and was not sent again");
}

/// Reads one HTTP/1.1 request (head and `content-length` body) from `socket`; `None` at EOF.
async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<String> {
    let mut data = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let read = socket.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        data.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .map_or(0, |value| value.trim().parse().expect("content-length"));
    while data.len() < head_end + length {
        let read = socket.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        data.extend_from_slice(&chunk[..read]);
    }
    Some(String::from_utf8_lossy(&data[head_end..head_end + length]).into_owned())
}

/// Reads until the peer closes the connection (or it fails).
async fn until_closed(socket: &mut tokio::net::TcpStream) {
    let mut chunk = [0u8; 4096];
    while matches!(socket.read(&mut chunk).await, Ok(read) if read > 0) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_that_never_answers_is_cut_by_the_read_timeout_and_retried() {
    let topic = unique("webhook-read-timeout");
    create_topic(&topic, 1).await;
    produce(&topic, &[(None, "slow")]).await;
    // A callback on raw TCP: the first request is read and never answered, and its connection is
    // watched until the gateway closes it; later requests get 200.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("address"));
    let (bodies, abandoned) = (Arc::new(Mutex::new(Vec::<String>::new())), Arc::new(AtomicBool::new(false)));
    let (b, a) = (bodies.clone(), abandoned.clone());
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let (b, a) = (b.clone(), a.clone());
            tokio::spawn(async move {
                // One request per connection: the answer says `connection: close`.
                let Some(body) = read_request(&mut socket).await else { return };
                let first = {
                    let mut bodies = b.lock().unwrap();
                    bodies.push(body);
                    bodies.len() == 1
                };
                if first {
                    until_closed(&mut socket).await;
                    a.store(true, Ordering::SeqCst);
                } else {
                    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
                    let _ = socket.write_all(answer).await;
                }
            });
        }
    });

    let api = definition(&topic, "at-least-once", json!({"connectTimeout": 1000, "readTimeout": 500}));
    let dir = tempfile::tempdir().expect("dir");
    let edge = Edge::start(&api, &dir.path().join("state")).await;
    let id = unique("sub");
    let retry = json!({"retry": {"retryOption": "Retry On Fail", "retryStrategy": "LINEAR", "maxAttempts": 3, "initialDelaySeconds": 0, "maxDelaySeconds": 0}});
    edge.subscribe(&api, &id, &url, retry).await;

    assert!(eventually(|| bodies.lock().unwrap().len() >= 2).await, "calls: {:?}", bodies.lock().unwrap());
    assert!(
        eventually(|| abandoned.load(Ordering::SeqCst)).await,
        "the gateway gave up the unanswered call and closed its connection"
    );
    assert_eq!(*bodies.lock().unwrap(), ["slow", "slow"], "one cut call, one answered retry");
    // The retry was answered 200: the subscription goes on, and the message was acknowledged (the
    // consumer's final commit at shutdown records it).
    assert_eq!(edge.subscription(&api, &id).await["state"]["status"], "active");
    edge.stop().await;
    assert_eq!(committed(&id, &topic).await, Some(1), "the message is acknowledged after the retry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_handshake_that_never_completes_is_cut_by_the_connect_timeout() {
    let topic = unique("webhook-connect-timeout");
    create_topic(&topic, 1).await;
    produce(&topic, &[(None, "never")]).await;
    // Accepts TCP connections, reads what the client sends (its TLS ClientHello), never writes.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("https://{}/hook", listener.local_addr().expect("address"));
    let (accepted, hellos, closed) =
        (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (acc, hel, clo) = (accepted.clone(), hellos.clone(), closed.clone());
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.expect("accept");
            acc.fetch_add(1, Ordering::SeqCst);
            let (hel, clo) = (hel.clone(), clo.clone());
            tokio::spawn(async move {
                let mut first = [0u8; 1];
                // 0x16: a TLS handshake record.
                if matches!(socket.read(&mut first).await, Ok(1)) && first[0] == 0x16 {
                    hel.fetch_add(1, Ordering::SeqCst);
                }
                until_closed(&mut socket).await;
                clo.fetch_add(1, Ordering::SeqCst);
            });
        }
    });

    // A pass within TIMEOUT (30 s) proves the connect timeout cut the call: the read timeout
    // would take 60 s.
    let api = definition(&topic, "at-least-once", json!({"connectTimeout": 500, "readTimeout": 60000}));
    let dir = tempfile::tempdir().expect("dir");
    let edge = Edge::start(&api, &dir.path().join("state")).await;
    let id = unique("sub");
    edge.subscribe(&api, &id, &url, json!({"retry": {"retryOption": "No Retry"}})).await;

    let stopped =
        eventually_async(|| async { edge.subscription(&api, &id).await["state"]["status"] == "stopped" }).await;
    let state = edge.subscription(&api, &id).await["state"].clone();
    assert!(stopped, "still active: {state}");
    assert_eq!(state["reason"], "WEBHOOK_UNREACHABLE", "{state}");
    let message = state["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(
            "Webhook callback url is unreachable: callback call failed: connect timeout (http.connectTimeout)"
        ),
        "{state}"
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "one call, no retry");
    assert!(eventually(|| hellos.load(Ordering::SeqCst) == 1).await, "the call got as far as the TLS handshake");
    assert!(eventually(|| closed.load(Ordering::SeqCst) == 1).await, "the gateway closed the stuck connection");
    assert_eq!(committed(&id, &topic).await, None, "the message was not acknowledged");
    edge.stop().await;
}
