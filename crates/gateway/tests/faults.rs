//! Broker faults under a running gateway, on a private broker of each test (own state directory
//! and ports), so that stopping it disturbs no other test: a broker that hangs (SIGSTOP) and one
//! that is down for http-post, an SSE stream across a broker restart, an http-get during an
//! outage. What a client observes is asserted, and the records are counted on the broker.

mod common;

use common::*;
use futures::StreamExt as _;
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::Message;

/// The `--produce-timeout` of these tests.
const PRODUCE_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest an answer may take past the produce timeout on a loaded machine.
const MARGIN: Duration = Duration::from_secs(5);

/// A private broker with a one-partition topic, and a gateway (`--produce-timeout 2`) serving
/// the test API on it, shaped by `adjust`.
struct Fault {
    broker: PrivateBroker,
    topic: String,
    spec: ApiSpec,
    gateway: GatewayProcess,
    _dir: tempfile::TempDir,
}

async fn fault(prefix: &str, adjust: impl FnOnce(&mut ApiSpec)) -> Fault {
    let (broker, topic, mut spec) = private_api(prefix).await;
    adjust(&mut spec);
    let dir = tempfile::tempdir().expect("dir");
    let gateway = gateway_for(dir.path(), &spec).await;
    Fault { broker, topic, spec, gateway, _dir: dir }
}

/// A private broker with a one-partition topic, and the test API on it.
async fn private_api(prefix: &str) -> (PrivateBroker, String, ApiSpec) {
    let broker = tokio::task::spawn_blocking(|| PrivateBroker::start("")).await.expect("private broker");
    let topic = unique(prefix);
    create_topic_on(broker.bootstrap(), &topic, 1).await;
    let mut spec = ApiSpec::new(&topic);
    spec.bootstrap = broker.bootstrap().to_string();
    (broker, topic, spec)
}

/// A gateway process with `--produce-timeout 2` serving `spec`, once it answers.
async fn gateway_for(dir: &Path, spec: &ApiSpec) -> GatewayProcess {
    gateway_serving(dir, spec.to_json(), &[]).await
}

/// A gateway process with `--produce-timeout 2` and `extra` arguments serving `definition`, once
/// it answers.
async fn gateway_serving(dir: &Path, definition: Value, extra: &[&std::ffi::OsStr]) -> GatewayProcess {
    let file = dir.join("api.json");
    std::fs::write(&file, definition.to_string()).expect("write definition");
    let timeout = PRODUCE_TIMEOUT.as_secs().to_string();
    let args = ["--admin-listen".as_ref(), "off".as_ref(), "--produce-timeout".as_ref(), timeout.as_ref()];
    let args = [args.as_slice(), &["--api".as_ref(), file.as_os_str()], extra].concat();
    let gateway = GatewayProcess::start(dir, &[], &args);
    for _ in 0..300 {
        if gateway.http.get(&gateway.base).send().await.is_ok() {
            return gateway;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the gateway did not start: {}", gateway.log());
}

/// A POST's status and JSON body (`null` when it has none), and how long it took.
async fn post(gateway: &GatewayProcess, path: &str, body: &str) -> (u16, Value, Duration) {
    let started = Instant::now();
    let response = gateway.http.post(format!("{}{path}", gateway.base)).body(body.to_string()).send().await;
    let response = response.expect("an answer");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body, started.elapsed())
}

#[tokio::test]
async fn a_hung_broker_gets_a_504_within_the_produce_timeout_and_posts_recover_without_a_restart() {
    let Fault { broker, topic, spec, gateway, _dir } = fault("hung", |_| {}).await;
    let (status, body, _) = post(&gateway, &spec.path, "before").await;
    assert_eq!(status, 202, "{body}");

    broker.hang();
    let (status, body, took) = post(&gateway, &spec.path, "during").await;
    broker.resume();
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["key"], "FAILURE_ENDPOINT_TIMEOUT", "{body}");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("--produce-timeout")), "{body}");
    assert!(took >= PRODUCE_TIMEOUT && took < PRODUCE_TIMEOUT + MARGIN, "answered after {took:?}");

    // Back to normal without a restart.
    let mut recovered = false;
    for attempt in 0..20 {
        if post(&gateway, &spec.path, &format!("after-{attempt}")).await.0 == 202 {
            recovered = true;
            break;
        }
    }
    assert!(recovered, "POSTs succeed again once the broker answers: {}", gateway.log());
    let values = values_on(broker.bootstrap(), &topic);
    assert_eq!(values.first().map(String::as_str), Some("before"), "{values:?}");
    assert!(values.iter().any(|value| value.starts_with("after-")), "{values:?}");
    // "during" was on the wire when the broker froze: Kafka may still write it (the 504 says so).
    let (code, log) = gateway.stop().await;
    assert_eq!(code, Some(0), "{log}");
}

#[tokio::test]
async fn posts_while_the_broker_is_down_fail_in_time_and_nothing_acknowledged_is_lost() {
    let Fault { broker, topic, spec, gateway, _dir } = fault("down", |_| {}).await;
    let mut acknowledged = Vec::new();
    for index in 0..3 {
        let value = format!("up-{index}");
        let (status, body, _) = post(&gateway, &spec.path, &value).await;
        assert_eq!(status, 202, "{body}");
        acknowledged.push(value);
    }

    let broker = tokio::task::spawn_blocking(move || {
        broker.stop();
        broker
    })
    .await
    .expect("stop");
    let refused: Vec<String> = (0..4).map(|index| format!("down-{index}")).collect();
    let outage: Vec<_> = refused.iter().map(|value| post(&gateway, &spec.path, value)).collect();
    let answers = futures::future::join_all(outage).await;
    for (status, body, took) in &answers {
        assert!((500..600).contains(status), "a 5xx while the broker is down: {status} {body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "the error names its cause: {body}");
        assert!(*took < PRODUCE_TIMEOUT + MARGIN, "answered after {took:?}");
    }

    let broker = tokio::task::spawn_blocking(move || {
        broker.start_again();
        broker
    })
    .await
    .expect("start");
    let mut recovered = false;
    for attempt in 0..40 {
        let value = format!("back-{attempt}");
        if post(&gateway, &spec.path, &value).await.0 == 202 {
            acknowledged.push(value);
            recovered = true;
            break;
        }
    }
    assert!(recovered, "POSTs succeed again after the broker is back: {}", gateway.log());
    let values = values_on(broker.bootstrap(), &topic);
    assert_eq!(values, acknowledged, "every acknowledged record, and none that was refused");
    let (code, log) = gateway.stop().await;
    assert_eq!(code, Some(0), "{log}");
}

/// POSTs `value` until the gateway acknowledges it (the broker may still be coming back). A
/// pooled connection the gateway closed while idle is retried like a refusal.
async fn post_until_accepted(gateway: &GatewayProcess, path: &str, value: &str) {
    for _ in 0..60 {
        let sent = gateway.http.post(format!("{}{path}", gateway.base)).body(value.to_string()).send().await;
        if sent.is_ok_and(|response| response.status() == 202) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("{value} was never accepted: {}", gateway.log());
}

#[tokio::test]
async fn an_at_least_once_sse_client_resuming_with_last_event_id_misses_nothing_across_a_broker_restart() {
    let Fault { broker, spec, gateway, _dir, .. } = fault("sse-restart", |spec| spec.sse_qos = "at-least-once").await;
    let before: Vec<String> = (0..5).map(|index| format!("before-{index}")).collect();
    for value in &before {
        post_until_accepted(&gateway, &spec.path, value).await;
    }

    let mut received: Vec<String> = Vec::new();
    let mut last_event_id: Option<String> = None;
    let mut restarted = None;
    let after: Vec<String> = (0..5).map(|index| format!("after-{index}")).collect();
    let expected: Vec<String> = before.iter().chain(&after).cloned().collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    // A client as a browser's EventSource behaves: read; when the stream ends, reconnect with the
    // last id it saw.
    'connections: while Instant::now() < deadline {
        let mut request = gateway
            .http
            .get(format!("{}{}", gateway.base, spec.path))
            .header("Accept", "text/event-stream")
            .header("X-Gravitee-Client-Identifier", "resumer");
        if let Some(id) = &last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let Ok(response) = request.send().await else {
            tokio::time::sleep(Duration::from_millis(250)).await;
            continue;
        };
        let mut events = eventsource_stream::Eventsource::eventsource(response.bytes_stream());
        loop {
            let next = tokio::time::timeout(Duration::from_secs(5), futures::StreamExt::next(&mut events)).await;
            let event = match next {
                Ok(Some(Ok(event))) => event,
                // The stream ended or broke: reconnect.
                Ok(_) => continue 'connections,
                // Quiet: time for the fault, or for the messages that follow it.
                Err(_) => {
                    if restarted.is_none() && received.len() >= before.len() {
                        broker.stop();
                        broker.start_again();
                        for value in &after {
                            post_until_accepted(&gateway, &spec.path, value).await;
                        }
                        restarted = Some(());
                    }
                    continue;
                }
            };
            if event.event == "message" && !event.data.is_empty() {
                if !event.id.is_empty() {
                    last_event_id = Some(event.id.clone());
                }
                received.push(event.data);
                if expected.iter().all(|value| received.contains(value)) {
                    break 'connections;
                }
            }
        }
    }
    assert!(restarted.is_some(), "the broker was restarted while the stream was open");
    for value in &expected {
        assert!(received.contains(value), "{value} missing: {received:?}");
    }
    // Partition order: the first delivery of each value comes in the order it was produced.
    let mut first_seen: Vec<&String> = Vec::new();
    for value in &received {
        if !first_seen.contains(&value) {
            first_seen.push(value);
        }
    }
    assert_eq!(first_seen, expected.iter().collect::<Vec<_>>(), "{received:?}");
    let (code, log) = gateway.stop().await;
    assert_eq!(code, Some(0), "{log}");
}

#[tokio::test]
async fn an_http_get_during_an_outage_answers_the_error_object_and_commits_nothing() {
    let Fault { broker, spec, gateway, _dir, .. } = fault("get-outage", |spec| {
        spec.http_get_qos = "at-least-once";
        spec.http_get = serde_json::json!({"messagesLimitCount": 10, "messagesLimitDurationMs": 3000});
    })
    .await;
    for value in ["kept-0", "kept-1"] {
        post_until_accepted(&gateway, &spec.path, value).await;
    }
    let broker = tokio::task::spawn_blocking(move || {
        broker.stop();
        broker
    })
    .await
    .expect("stop");
    let url = format!("{}{}", gateway.base, spec.path);
    let get = || gateway.http.get(&url).header("X-Gravitee-Client-Identifier", "patient").send();
    let during = get().await.expect("an answer during the outage");
    assert_eq!(during.status(), 200, "http-get keeps Gravitee's answer");
    let page: Value = during.json().await.expect("JSON");
    assert_eq!(page["items"], serde_json::json!([]), "{page}");
    assert!(
        page["error"]["metadata"]["key"].as_str().is_some_and(|key| key.starts_with("FAILURE_ENDPOINT_")),
        "{page}"
    );

    let broker = tokio::task::spawn_blocking(move || {
        broker.start_again();
        broker
    })
    .await
    .expect("start");
    let mut delivered = Vec::new();
    for _ in 0..20 {
        let page: Value = get().await.expect("GET").json().await.expect("JSON");
        delivered = page["items"]
            .as_array()
            .map(|items| items.iter().map(|i| i["content"].clone()).collect())
            .unwrap_or_default();
        if !delivered.is_empty() {
            break;
        }
    }
    assert_eq!(delivered, ["kept-0", "kept-1"], "what the outage did not deliver comes next");
    drop(broker);
    let (code, log) = gateway.stop().await;
    assert_eq!(code, Some(0), "{log}");
}

#[tokio::test]
async fn a_websocket_across_a_broker_restart_ends_with_a_close_frame_and_the_client_misses_nothing() {
    let (broker, _, spec) = private_api("ws-restart").await;
    let mut definition = spec.to_json();
    let entrypoints = definition["listeners"][0]["entrypoints"].as_array_mut().expect("entrypoints");
    entrypoints.push(json!({"type": "websocket", "qos": "auto",
        "configuration": {"publisher": {"enabled": true}, "subscriber": {"enabled": true}}}));
    let dir = tempfile::tempdir().expect("dir");
    let gateway = gateway_serving(dir.path(), definition, &[]).await;
    let before: Vec<String> = (0..5).map(|index| format!("before-{index}")).collect();
    for value in &before {
        post_until_accepted(&gateway, &spec.path, value).await;
    }

    let url = format!("{}{}", gateway.base.replacen("http://", "ws://", 1), spec.path);
    let after: Vec<String> = (0..5).map(|index| format!("after-{index}")).collect();
    let expected: Vec<String> = before.iter().chain(&after).cloned().collect();
    let (mut received, mut closes, mut ended_without_close) = (Vec::<String>::new(), Vec::new(), 0);
    let mut restarted = false;
    let deadline = Instant::now() + Duration::from_secs(120);
    // A client that reconnects, as the same client, whenever its session ends.
    'sessions: while Instant::now() < deadline {
        let mut request = url.as_str().into_client_request().expect("request");
        request.headers_mut().insert("X-Gravitee-Client-Identifier", "ws-resumer".parse().expect("header"));
        let Ok((mut socket, _)) = tokio_tungstenite::connect_async(request).await else {
            tokio::time::sleep(Duration::from_millis(250)).await;
            continue;
        };
        loop {
            match tokio::time::timeout(Duration::from_secs(5), socket.next()).await {
                Ok(Some(Ok(Message::Binary(data)))) => {
                    received.push(String::from_utf8_lossy(&data).into_owned());
                    if expected.iter().all(|value| received.contains(value)) {
                        break 'sessions;
                    }
                }
                Ok(Some(Ok(Message::Close(frame)))) => {
                    closes.push(frame.map(|frame| (u16::from(frame.code), frame.reason.to_string())));
                    continue 'sessions;
                }
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(_)) | None) => {
                    ended_without_close += 1;
                    continue 'sessions;
                }
                // Quiet: time for the fault, or for the messages that follow it.
                Err(_) => {
                    if !restarted && before.iter().all(|value| received.contains(value)) {
                        broker.stop();
                        broker.start_again();
                        for value in &after {
                            post_until_accepted(&gateway, &spec.path, value).await;
                        }
                        restarted = true;
                    }
                }
            }
        }
    }
    assert!(restarted, "the broker was restarted while the session was open");
    for value in &expected {
        assert!(received.contains(value), "{value} missing: {received:?}; closes {closes:?}");
    }
    assert_eq!(ended_without_close, 0, "every session the gateway ended had a close frame: {closes:?}");
    for close in &closes {
        let (code, reason) = close.clone().expect("a close code");
        assert!(code >= 1000 && !reason.is_empty(), "a close code and a reason: {code} {reason:?}");
    }
    let (code, log) = gateway.stop().await;
    assert_eq!(code, Some(0), "{log}");
}

#[tokio::test]
async fn an_at_least_once_webhook_delivers_every_message_in_order_across_a_broker_restart() {
    let (broker, _, spec) = private_api("webhook-restart").await;
    let mut definition = spec.to_json();
    definition["listeners"]
        .as_array_mut()
        .expect("listeners")
        .push(json!({"type": "subscription", "entrypoints": [{"type": "webhook", "qos": "at-least-once"}]}));
    // A PUSH plan for the subscription, and a key-less one for the POSTs.
    definition["plans"] = json!([{"id": "push", "name": "push", "mode": "PUSH"},
        {"id": "open", "name": "open", "security": {"type": "key-less"}}]);
    // The callback records every body it is called with.
    let called: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    let recorded = called.clone();
    let app = axum::Router::new().fallback(move |body: String| {
        let recorded = recorded.clone();
        async move {
            recorded.lock().expect("callback").push(body);
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let callback = format!("http://{}/hook", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("callback") });
    let dir = tempfile::tempdir().expect("dir");
    let subscriptions = dir.path().join("subscriptions.json");
    let subscription =
        json!([{"api": spec.id, "id": "restart", "plan": "push", "configuration": {"callbackUrl": callback}}]);
    std::fs::write(&subscriptions, subscription.to_string()).expect("write subscriptions");
    let gateway =
        gateway_serving(dir.path(), definition, &["--subscriptions".as_ref(), subscriptions.as_os_str()]).await;
    let seen = |values: &[String]| {
        let called = called.lock().expect("callback").clone();
        values.iter().all(|value| called.contains(value))
    };

    let before: Vec<String> = (0..5).map(|index| format!("before-{index}")).collect();
    for value in &before {
        post_until_accepted(&gateway, &spec.path, value).await;
    }
    assert!(
        eventually_within(Duration::from_secs(60), || seen(&before)).await,
        "{:?}",
        called.lock().expect("callback")
    );
    broker.stop();
    broker.start_again();
    let after: Vec<String> = (0..5).map(|index| format!("after-{index}")).collect();
    for value in &after {
        post_until_accepted(&gateway, &spec.path, value).await;
    }
    let delivered = eventually_within(Duration::from_secs(90), || seen(&after)).await;
    let called = called.lock().expect("callback").clone();
    assert!(delivered, "after the restart: {called:?}; log: {}", gateway.log());
    // Partition order: the first call with each value comes in the order it was produced.
    let mut first_seen: Vec<&String> = Vec::new();
    for value in &called {
        if !first_seen.contains(&value) {
            first_seen.push(value);
        }
    }
    let expected: Vec<&String> = before.iter().chain(&after).collect();
    assert_eq!(first_seen, expected, "{called:?}");
    let (code, log) = gateway.stop().await;
    assert_eq!(code, Some(0), "{log}");
}
