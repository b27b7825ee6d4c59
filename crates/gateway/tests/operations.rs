//! The admin listener's `/health`, `/ready` and `/metrics`, as an operator's probes and
//! Prometheus see them: no token needed, counters that follow known traffic, and `/ready` turning
//! 503 at the first moment of SIGTERM while an in-flight request still finishes.

mod common;

use common::*;
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::Duration;

const BINARY: &str = env!("CARGO_BIN_EXE_kafka-edge");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("address").port()
}

/// The value of the sample `name{labels}` in a Prometheus text page (0 when absent).
fn sample(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .map_or(0.0, |value| value.trim().parse().expect("a number"))
}

#[tokio::test]
async fn health_readiness_and_metrics_follow_the_gateway() {
    let topic = unique("operations");
    create_topic(&topic, 1).await;
    let mut spec = ApiSpec::new(&topic);
    spec.http_get = json!({"messagesLimitCount": 100, "messagesLimitDurationMs": 3000});
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("api.json");
    std::fs::write(&file, spec.to_json().to_string()).expect("write definition");
    let (port, admin_port) = (free_port(), free_port());
    let gateway = Command::new(BINARY)
        .args(["run", "--listen", &format!("127.0.0.1:{port}"), "--admin-listen", &format!("127.0.0.1:{admin_port}")])
        .arg("--api")
        .arg(&file)
        .arg("--state")
        .arg(format!("file:{}", dir.path().join("state.json").display()))
        .env_remove("KAFKA_EDGE_ADMIN_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start gateway");
    let http = reqwest::Client::new();
    let admin = format!("http://127.0.0.1:{admin_port}");
    let mut ready = None;
    for _ in 0..300 {
        if let Ok(response) = http.get(format!("{admin}/ready")).send().await {
            if response.status() == 200 {
                ready = Some(response.json::<Value>().await.expect("JSON"));
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ready = ready.expect("/ready answers 200 once the gateway listens");
    assert_eq!(ready["status"], "READY");
    assert_eq!(ready["apis"], json!([spec.id]));
    assert_eq!(http.get(format!("{admin}/health")).send().await.expect("/health").status(), 200);

    // The API's producer is created at start, before any POST needs it.
    let mut warmed = false;
    for _ in 0..500 {
        let page = http.get(format!("{admin}/metrics")).send().await.expect("/metrics").text().await.expect("text");
        if sample(&page, "kafka_edge_producers") >= 1.0 {
            warmed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(warmed, "a producer exists before the first POST");

    let base = format!("http://127.0.0.1:{port}{}", spec.path);
    let before = http.get(format!("{admin}/metrics")).send().await.expect("/metrics").text().await.expect("text");
    let series = format!("kafka_edge_requests_total{{api=\"{}\",entrypoint=\"http-post\",status=\"202\"}}", spec.id);
    for index in 0..10 {
        let posted = http.post(&base).body(format!("m{index}")).send().await.expect("POST");
        assert_eq!(posted.status(), 202);
    }
    let after = http.get(format!("{admin}/metrics")).send().await.expect("/metrics");
    assert!(after.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let after = after.text().await.expect("text");
    assert_eq!(sample(&after, &series) - sample(&before, &series), 10.0, "{after}");
    let count = format!("kafka_edge_request_duration_seconds_count{{api=\"{}\",entrypoint=\"http-post\"}}", spec.id);
    assert!(sample(&after, &count) >= 10.0, "{after}");
    assert!(sample(&after, "kafka_edge_producers") >= 1.0, "{after}");

    // A GET's consumer stays warm for the client's next GET, and /metrics counts it.
    let answered = http.get(format!("{base}?limit=1")).header("X-Gravitee-Client-Identifier", "warm").send().await;
    assert_eq!(answered.expect("GET").status(), 200);
    let parked = http.get(format!("{admin}/metrics")).send().await.expect("/metrics").text().await.expect("text");
    assert_eq!(sample(&parked, "kafka_edge_warm_consumers"), 1.0, "{parked}");

    // A GET that waits for messages until its 3 s window ends keeps the drain going.
    let waiting = tokio::spawn({
        let (http, url) = (http.clone(), format!("{base}?limit=100"));
        async move {
            let response = http.get(url).header("X-Gravitee-Client-Identifier", "drain").send().await;
            response.expect("the in-flight GET is answered").status()
        }
    });
    let group = group_of(&spec.id, "drain");
    assert!(eventually(|| group_members(&group) == 1).await, "the GET is being served");
    let status = Command::new("kill").args(["-TERM", &gateway.id().to_string()]).status().expect("kill");
    assert!(status.success());
    let mut draining = None;
    for _ in 0..100 {
        let answer = http.get(format!("{admin}/ready")).send().await.expect("/ready during the drain");
        if answer.status() == 503 {
            draining = Some(answer.json::<Value>().await.expect("JSON"));
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(draining.expect("503 after SIGTERM")["status"], "DRAINING");
    assert_eq!(waiting.await.expect("join"), 200);
    let output = tokio::task::spawn_blocking(move || gateway.wait_with_output()).await.expect("join").expect("wait");
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
}

#[tokio::test]
async fn the_drain_ends_at_the_drain_timeout_even_with_a_long_request_in_flight() {
    let topic = unique("drain-timeout");
    create_topic(&topic, 1).await;
    let mut spec = ApiSpec::new(&topic);
    // A GET that would wait 60 s for messages: bounded responses run to their end while draining.
    spec.http_get = json!({"messagesLimitCount": 100, "messagesLimitDurationMs": 60000});
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("api.json");
    std::fs::write(&file, spec.to_json().to_string()).expect("write definition");
    let port = free_port();
    let mut gateway = Command::new(BINARY)
        .args(["run", "--listen", &format!("127.0.0.1:{port}"), "--admin-listen", "off", "--drain-timeout", "1"])
        .arg("--api")
        .arg(&file)
        .arg("--state")
        .arg(format!("file:{}", dir.path().join("state.json").display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start gateway");
    let base = format!("http://127.0.0.1:{port}{}", spec.path);
    let waiting = tokio::spawn(async move {
        let http = reqwest::Client::new();
        for _ in 0..300 {
            if let Ok(response) = http.get(&base).header("X-Gravitee-Client-Identifier", "long").send().await {
                return Some(response.status());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    });
    let group = group_of(&spec.id, "long");
    assert!(eventually(|| group_members(&group) == 1).await, "the long GET is being served");
    let signalled = std::time::Instant::now();
    let status = Command::new("kill").args(["-TERM", &gateway.id().to_string()]).status().expect("kill");
    assert!(status.success());
    let exited = eventually_within(Duration::from_secs(10), || gateway.try_wait().ok().flatten().is_some()).await;
    assert!(exited, "the gateway still runs 10 s after SIGTERM with --drain-timeout 1");
    assert!(signalled.elapsed() < Duration::from_secs(10), "well before the GET's 60 s window");
    assert_eq!(gateway.wait().expect("wait").code(), Some(0));
    waiting.abort();
}
