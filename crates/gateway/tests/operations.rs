//! The admin listener's `/health`, `/ready` and `/metrics`, as an operator's probes and
//! Prometheus see them: no token needed, counters that follow known traffic, and `/ready` turning
//! 503 at the first moment of SIGTERM while an in-flight request still finishes.

mod common;

use common::*;
use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::Duration;

const BINARY: &str = env!("CARGO_BIN_EXE_kafka-edge");

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
    let labels = format!("{{api=\"{}\",topic=\"{topic}\"}}", spec.id);
    let produced = format!("kafka_edge_produced_messages_total{labels}");
    assert_eq!(sample(&after, &produced) - sample(&before, &produced), 10.0, "{after}");
    let bytes = format!("kafka_edge_produced_bytes_total{labels}");
    assert_eq!(sample(&after, &bytes) - sample(&before, &bytes), 20.0, "ten 2-byte bodies: {after}");
    let acknowledged = format!("kafka_edge_produce_ack_seconds_count{{api=\"{}\"}}", spec.id);
    assert!(sample(&after, &acknowledged) >= 10.0, "{after}");

    // A GET's consumer stays warm for the client's next GET, and /metrics counts it.
    let answered = http.get(format!("{base}?limit=1")).header("X-Gravitee-Client-Identifier", "warm").send().await;
    assert_eq!(answered.expect("GET").status(), 200);
    let parked = http.get(format!("{admin}/metrics")).send().await.expect("/metrics").text().await.expect("text");
    assert_eq!(sample(&parked, "kafka_edge_warm_consumers"), 1.0, "{parked}");
    assert_eq!(sample(&parked, &format!("kafka_edge_consumed_messages_total{labels}")), 1.0, "{parked}");
    let aged = format!("kafka_edge_record_age_seconds_count{{api=\"{}\"}}", spec.id);
    assert_eq!(sample(&parked, &aged), 1.0, "{parked}");
    // Ten records, one delivered and committed: the parked consumer is 9 behind (statistics
    // come every 5 s).
    let lag = format!("kafka_edge_consumer_lag_records{{api=\"{}\"}}", spec.id);
    let mut behind = 0.0;
    for _ in 0..100 {
        let page = http.get(format!("{admin}/metrics")).send().await.expect("/metrics").text().await.expect("text");
        behind = sample(&page, &lag);
        if behind == 9.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(behind, 9.0, "the warm consumer's lag");
    // The producer's statistics (every 5 s, like the consumers') give the broker's round trip.
    let rtt = format!("kafka_edge_broker_rtt_average_seconds{{broker=\"{}/", bootstrap());
    let mut measured = None;
    for _ in 0..100 {
        let page = http.get(format!("{admin}/metrics")).send().await.expect("/metrics").text().await.expect("text");
        measured = page.lines().find(|line| line.starts_with(&rtt)).map(str::to_owned);
        if measured.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let measured = measured.expect("a round-trip time for the test bed's broker");
    let seconds: f64 = measured.rsplit(' ').next().and_then(|v| v.parse().ok()).expect("a number");
    assert!(seconds > 0.0 && seconds < 1.0, "a loopback broker answers within a second: {measured}");

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

#[tokio::test]
async fn the_access_log_has_a_line_per_request_and_per_stream_in_json_values() {
    let topic = unique("access-log");
    create_topic(&topic, 1).await;
    let mut spec = ApiSpec::new(&topic);
    spec.http_get = json!({"messagesLimitCount": 1, "messagesLimitDurationMs": 3000});
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("api.json");
    std::fs::write(&file, spec.to_json().to_string()).expect("write definition");
    let args = ["--admin-listen".as_ref(), "off".as_ref(), "--api".as_ref(), file.as_os_str()];
    let gateway = GatewayProcess::start(dir.path(), &["--log-format", "json"], &args);
    let base = format!("{}{}", gateway.base, spec.path);
    // A key in the query string must never reach the log.
    let secret = "never-logged-5ecret";
    let mut posted = None;
    for _ in 0..300 {
        if let Ok(response) = gateway.http.post(format!("{base}?api-key={secret}")).body("first").send().await {
            posted = Some(response.status());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(posted, Some(reqwest::StatusCode::ACCEPTED));
    let got = gateway.http.get(format!("{base}?limit=1")).header("X-Gravitee-Client-Identifier", "pager").send().await;
    assert_eq!(got.expect("GET").status(), 200);

    let stream = gateway
        .http
        .get(&base)
        .header("Accept", "text/event-stream")
        .header("X-Gravitee-Client-Identifier", "streamer")
        .send()
        .await
        .expect("SSE");
    let mut events = stream.bytes_stream().eventsource();
    for body in ["second", "third"] {
        assert_eq!(gateway.http.post(&base).body(body).send().await.expect("POST").status(), 202);
    }
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let event = tokio::time::timeout(Duration::from_secs(30), events.next()).await.expect("in time");
        let event = event.expect("open").expect("valid");
        if event.event == "message" && !event.data.is_empty() {
            seen.push(event.data);
        }
    }
    assert_eq!(seen, ["first", "second", "third"]);
    drop(events);
    assert!(eventually(|| gateway.log().contains("Stream ended.")).await, "{}", gateway.log());
    let (code, log) = gateway.stop().await;
    assert_eq!(code, Some(0), "{log}");

    assert!(!log.contains(secret), "the query string is not logged: {log}");
    let lines: Vec<Value> =
        log.lines().map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("a JSON line: {line}"))).collect();
    let serving = lines.iter().find(|line| line["fields"]["message"] == "Serving API.").expect("Serving API.");
    assert_eq!(serving["fields"]["paths"], json!([spec.path]), "{serving}");
    assert!(serving["fields"]["entrypoints"].is_array(), "{serving}");
    let access: Vec<&Value> =
        lines.iter().filter(|line| line["target"] == "kafka_edge::access").map(|l| &l["fields"]).collect();
    let post = access.iter().find(|line| line["method"] == "POST").expect("a POST line");
    assert_eq!(post["path"], spec.path.as_str(), "{post}");
    assert_eq!((post["api"].as_str(), post["entrypoint"].as_str()), (Some(spec.id.as_str()), Some("http-post")));
    assert_eq!((post["status"].as_u64(), post["bytes_in"].as_u64()), (Some(202), Some(5)), "{post}");
    assert_eq!(post["client"], "127.0.0.1");
    assert!(post["duration_ms"].is_number(), "{post}");
    let page = access.iter().find(|line| line["entrypoint"] == "http-get").expect("a GET line");
    assert_eq!(page["status"], 200);
    assert!(page["bytes_out"].as_u64().is_some_and(|bytes| bytes > 0), "{page}");
    let opened = access.iter().find(|line| line["message"] == "Stream opened.").expect("opened");
    assert_eq!(opened["entrypoint"], "sse");
    let ended = access.iter().find(|line| line["message"] == "Stream ended.").expect("ended");
    assert_eq!(ended["messages_out"], 3, "{ended}");
    assert_eq!(ended["reason"], "the client disconnected", "{ended}");
    assert_eq!(access.iter().filter(|line| line["message"] == "Request.").count(), 4, "three POSTs and a GET: {log}");

    // --access-log off: the same traffic, no access line.
    let quiet_dir = tempfile::tempdir().expect("dir");
    let quiet_args = [args.as_slice(), &["--access-log".as_ref(), "off".as_ref()]].concat();
    let quiet = GatewayProcess::start(quiet_dir.path(), &[], &quiet_args);
    let quiet_base = format!("{}{}", quiet.base, spec.path);
    let mut answered = false;
    for _ in 0..300 {
        if quiet.http.post(&quiet_base).body("quiet").send().await.is_ok_and(|r| r.status() == 202) {
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(answered);
    let (code, log) = quiet.stop().await;
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("Serving API.") && !log.contains("kafka_edge::access"), "{log}");
}

/// `/ready`'s status code and body, once the admin listener answers.
async fn ready(http: &reqwest::Client, admin: &str) -> Option<(u16, Value)> {
    let response = http.get(format!("{admin}/ready")).send().await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.json().await.ok()?))
}

#[tokio::test]
async fn ready_reports_each_apis_cluster_and_counts_it_only_when_asked() {
    let topic = unique("ready-clusters");
    create_topic(&topic, 1).await;
    let dir = tempfile::tempdir().expect("dir");
    let apis = dir.path().join("apis");
    std::fs::create_dir(&apis).expect("apis dir");
    let healthy = ApiSpec::new(&topic);
    let mut unreachable = ApiSpec::new(&topic);
    unreachable.bootstrap = "127.0.0.1:1".into();
    std::fs::write(apis.join("healthy.json"), healthy.to_json().to_string()).expect("write");
    std::fs::write(apis.join("unreachable.json"), unreachable.to_json().to_string()).expect("write");

    for requires_clusters in [false, true] {
        let admin_port = free_port();
        let admin_address = format!("127.0.0.1:{admin_port}");
        let mut args = vec!["--admin-listen".as_ref(), admin_address.as_ref(), "--api".as_ref(), apis.as_os_str()];
        if requires_clusters {
            args.push("--ready-requires-clusters".as_ref());
        }
        let run_dir = tempfile::tempdir().expect("dir");
        let gateway = GatewayProcess::start(run_dir.path(), &[], &args);
        let admin = format!("http://{admin_address}");
        // Both producers are tried at start: the healthy one answers, the other fails its probe.
        let mut seen = None;
        for _ in 0..600 {
            if let Some((status, body)) = ready(&gateway.http, &admin).await {
                let clusters = &body["clusters"];
                if clusters[&healthy.id]["reachable"] == true && clusters[&unreachable.id]["reachable"] == false {
                    seen = Some((status, body));
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (status, body) = seen.unwrap_or_else(|| panic!("/ready never showed both clusters: {}", gateway.log()));
        let failure = &body["clusters"][&unreachable.id]["lastFailure"];
        assert_eq!(failure["key"], "FAILURE_ENDPOINT_CONFIGURATION_INVALID", "{body}");
        assert!(body["clusters"][&healthy.id]["lastSuccess"].is_string(), "{body}");
        if requires_clusters {
            assert_eq!((status, body["status"].as_str()), (503, Some("CLUSTER_UNREACHABLE")), "{body}");
        } else {
            assert_eq!(
                (status, body["status"].as_str()),
                (200, Some("READY")),
                "one bad cluster takes no replica out: {body}"
            );
        }
        let (code, log) = gateway.stop().await;
        assert_eq!(code, Some(0), "{log}");
    }
}
