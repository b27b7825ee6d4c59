//! `kafka-edge run` with webhooks, as a process: the admin API only with a token, static
//! subscriptions from `--subscriptions`, delivery, clean exit on SIGTERM, and no secret in the log
//! even at debug level.

mod common;

use axum::http::HeaderMap;
use common::*;
use serde_json::json;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const BINARY: &str = env!("CARGO_BIN_EXE_kafka-edge");
const ADMIN_TOKEN: &str = "adm1n-t0ken-value";
const SECRETS: [&str; 3] = [ADMIN_TOKEN, "st4tic-passw0rd", "t0ken-s3cret"];

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("address").port()
}

fn write_definition(dir: &std::path::Path, api: &str, topic: &str) -> std::path::PathBuf {
    write_definition_with(dir, api, topic, "at-least-once")
}

fn write_definition_with(dir: &std::path::Path, api: &str, topic: &str, qos: &str) -> std::path::PathBuf {
    let definition = json!({
        "id": api, "name": "webhook cli", "definitionVersion": "4.0.0", "type": "message",
        "listeners": [
            {"type": "http", "paths": [{"path": format!("/{api}")}], "entrypoints": [{"type": "http-post"}]},
            {"type": "subscription", "entrypoints": [{"type": "webhook", "qos": qos}]}
        ],
        "endpointGroups": [{"name": "default", "type": "kafka",
            "sharedConfiguration": {"consumer": {"enabled": true, "topics": [topic], "autoOffsetReset": "earliest"}, "producer": {"enabled": true, "topics": [topic]}},
            "endpoints": [{"name": "default", "type": "kafka", "configuration": {"bootstrapServers": bootstrap()}}]}],
        "plans": [{"id": "push", "name": "push", "mode": "PUSH"}, {"id": "open", "name": "open", "security": {"type": "key-less"}}]
    });
    let file = dir.join("api.json");
    std::fs::write(&file, definition.to_string()).expect("write definition");
    file
}

/// Records the bodies and Authorization headers the callback receives.
async fn callback() -> (Arc<Mutex<Vec<(String, String)>>>, String) {
    let seen: Arc<Mutex<Vec<(String, String)>>> = Default::default();
    let recorded = seen.clone();
    let app = axum::Router::new().fallback(move |headers: HeaderMap, body: String| {
        let recorded = recorded.clone();
        async move {
            let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
            recorded.lock().expect("test setup").push((body, auth));
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("callback") });
    (seen, url)
}

fn terminate(child: &std::process::Child) {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(status.success());
}

#[tokio::test]
async fn run_delivers_static_and_admin_subscriptions_without_logging_secrets() {
    let topic = unique("webhook-cli");
    create_topic(&topic, 1).await;
    produce(&topic, &[(None, "hello")]).await;
    let api = unique("api");
    let dir = tempfile::tempdir().expect("dir");
    let file = write_definition(dir.path(), &api, &topic);
    let (seen, url) = callback().await;
    let statics = json!([{"api": api, "id": "static-1", "plan": "push",
        "configuration": {"callbackUrl": url, "auth": {"type": "basic", "basic": {"username": "u", "password": SECRETS[1]}}}}]);
    let statics_file = dir.path().join("subscriptions.json");
    std::fs::write(&statics_file, statics.to_string()).expect("write subscriptions");
    let state_file = dir.path().join("state.json");
    let (port, admin_port) = (free_port(), free_port());
    let gateway = Command::new(BINARY)
        .args(["run", "--listen", &format!("127.0.0.1:{port}"), "--admin-listen", &format!("127.0.0.1:{admin_port}")])
        .arg("--api")
        .arg(&file)
        .arg("--state")
        .arg(format!("file:{}", state_file.display()))
        .arg("--subscriptions")
        .arg(&statics_file)
        .env("KAFKA_EDGE_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start gateway");

    assert!(eventually(|| !seen.lock().unwrap().is_empty()).await, "the static subscription delivered");
    assert_eq!(seen.lock().unwrap()[0], ("hello".to_string(), "Basic dTpzdDR0aWMtcGFzc3cwcmQ=".to_string()));

    let http = reqwest::Client::new();
    let admin = format!("http://127.0.0.1:{admin_port}/apis/{api}/subscriptions");
    let body = json!({"id": "dynamic-1", "plan": "push", "configuration": {"callbackUrl": url, "auth": {"type": "token", "token": {"value": SECRETS[2]}}}});
    let created = http.post(&admin).bearer_auth(ADMIN_TOKEN).json(&body).send().await.expect("create");
    assert_eq!(created.status(), 201);
    assert!(!created.text().await.expect("body").contains(SECRETS[2]));
    assert!(eventually(|| seen.lock().unwrap().len() >= 2).await, "the admin subscription delivered");
    assert_eq!(seen.lock().unwrap()[1].1, format!("Bearer {}", SECRETS[2]));

    terminate(&gateway);
    let output = tokio::task::spawn_blocking(move || gateway.wait_with_output()).await.expect("join").expect("wait");
    let log = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{log}");
    assert!(log.contains("Admin API listening"), "{log}");
    for secret in SECRETS {
        assert!(!log.contains(secret), "secret in the log:\n{log}");
    }
    let state = std::fs::read_to_string(&state_file).expect("state file");
    assert!(state.contains("static-1") && state.contains("dynamic-1"));
}

#[tokio::test]
async fn without_a_token_the_admin_api_is_off() {
    let topic = unique("webhook-cli-off");
    let api = unique("api");
    let dir = tempfile::tempdir().expect("dir");
    let file = write_definition(dir.path(), &api, &topic);
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
    let mut ready = false;
    for _ in 0..300 {
        if http.get(format!("http://127.0.0.1:{port}/nothing")).send().await.is_ok() {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "the gateway listens");
    let off = http.get(format!("http://127.0.0.1:{admin_port}/apis/{api}/subscriptions")).send().await;
    let off = off.expect("the admin listener serves /health and the like");
    assert_eq!(off.status(), 404);
    assert!(off.text().await.expect("body").contains("The admin API is off"));
    let health = http.get(format!("http://127.0.0.1:{admin_port}/health")).send().await.expect("/health");
    assert_eq!(health.status(), 200, "health needs no token");
    terminate(&gateway);
    let output = tokio::task::spawn_blocking(move || gateway.wait_with_output()).await.expect("join").expect("wait");
    let log = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{log}");
    assert!(log.contains("Admin API off: set KAFKA_EDGE_ADMIN_TOKEN"), "{log}");
}

/// `kafka-edge run` with the static subscriptions of `dir`, on the state in `dir`. The classic
/// group protocol: the crashed member's partitions move after its 10 s session timeout (the
/// consumer protocol's broker-side default is 45 s).
fn start_delivering(dir: &std::path::Path, definition: &std::path::Path) -> std::process::Child {
    Command::new(BINARY)
        .args(["run", "--listen", &format!("127.0.0.1:{}", free_port()), "--admin-listen", "off"])
        .args(["--group-protocol", "classic"])
        .arg("--api")
        .arg(definition)
        .arg("--state")
        .arg(format!("file:{}", dir.join("state.json").display()))
        .arg("--subscriptions")
        .arg(dir.join("subscriptions.json"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start gateway")
}

/// A callback that takes 20 ms per call, so that a crash lands mid-stream.
async fn slow_callback() -> (Arc<Mutex<Vec<String>>>, String) {
    let seen: Arc<Mutex<Vec<String>>> = Default::default();
    let recorded = seen.clone();
    let app = axum::Router::new().fallback(move |body: String| {
        let recorded = recorded.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            recorded.lock().expect("test setup").push(body);
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("callback") });
    (seen, url)
}

#[tokio::test]
async fn webhook_deliveries_survive_kill_9_of_the_gateway_as_their_qos_promises() {
    for qos in ["at-least-once", "at-most-once"] {
        let topic = unique("webhook-kill");
        create_topic(&topic, 1).await;
        let values: Vec<String> = (0..40).map(|index| format!("m{index:02}")).collect();
        produce(&topic, &values.iter().map(|value| (None, value.as_str())).collect::<Vec<_>>()).await;
        let api = unique("api");
        let dir = tempfile::tempdir().expect("dir");
        let definition = write_definition_with(dir.path(), &api, &topic, qos);
        let (seen, url) = slow_callback().await;
        let statics = json!([{"api": api, "id": "crash", "plan": "push", "configuration": {"callbackUrl": url}}]);
        std::fs::write(dir.path().join("subscriptions.json"), statics.to_string()).expect("write subscriptions");

        let mut first = start_delivering(dir.path(), &definition);
        assert!(eventually(|| seen.lock().unwrap().len() >= 10).await, "{qos}: delivery started");
        first.kill().expect("kill -9");
        first.wait().expect("reaped");
        let at_crash = seen.lock().unwrap().len();
        let mut second = start_delivering(dir.path(), &definition);
        let last = values.last().expect("values").clone();
        assert!(
            eventually_within(Duration::from_secs(60), || seen.lock().unwrap().contains(&last)).await,
            "{qos}: delivery resumed after the crash (had {at_crash}): {:?}",
            seen.lock().unwrap()
        );
        second.kill().expect("stop");
        second.wait().expect("reaped");
        let seen = seen.lock().unwrap().clone();
        let mut first_seen: Vec<&String> = Vec::new();
        for value in &seen {
            if !first_seen.contains(&value) {
                first_seen.push(value);
            }
        }
        if qos == "at-least-once" {
            assert_eq!(first_seen, values.iter().collect::<Vec<_>>(), "{qos}: every message, in order: {seen:?}");
        } else {
            assert_eq!(first_seen.len(), seen.len(), "{qos}: none twice: {seen:?}");
            assert!(first_seen.windows(2).all(|pair| pair[0] < pair[1]), "{qos}: in order: {seen:?}");
        }
    }
}
