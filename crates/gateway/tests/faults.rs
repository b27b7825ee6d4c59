//! Broker faults under a running gateway, on a private broker of each test (own state directory
//! and ports), so that stopping it disturbs no other test: a broker that hangs (SIGSTOP) and one
//! that is down for http-post, an SSE stream across a broker restart, an http-get during an
//! outage. What a client observes is asserted, and the records are counted on the broker.

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

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
    let broker = tokio::task::spawn_blocking(|| PrivateBroker::start("")).await.expect("private broker");
    let topic = unique(prefix);
    create_topic_on(broker.bootstrap(), &topic, 1).await;
    let mut spec = ApiSpec::new(&topic);
    spec.bootstrap = broker.bootstrap().to_string();
    adjust(&mut spec);
    let dir = tempfile::tempdir().expect("dir");
    let gateway = gateway_for(dir.path(), &spec).await;
    Fault { broker, topic, spec, gateway, _dir: dir }
}

/// A gateway process with `--produce-timeout 2` serving `spec`, once it answers.
async fn gateway_for(dir: &Path, spec: &ApiSpec) -> GatewayProcess {
    let file = dir.join("api.json");
    std::fs::write(&file, spec.to_json().to_string()).expect("write definition");
    let timeout = PRODUCE_TIMEOUT.as_secs().to_string();
    let args = ["--admin-listen".as_ref(), "off".as_ref(), "--produce-timeout".as_ref(), timeout.as_ref()];
    let gateway = GatewayProcess::start(dir, &[], &[args.as_slice(), &["--api".as_ref(), file.as_os_str()]].concat());
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

/// POSTs `value` until the gateway acknowledges it (the broker may still be coming back).
async fn post_until_accepted(gateway: &GatewayProcess, path: &str, value: &str) {
    for _ in 0..60 {
        if post(gateway, path, value).await.0 == 202 {
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
