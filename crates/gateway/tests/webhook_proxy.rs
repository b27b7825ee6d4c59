//! Webhook calls through the entrypoint's `proxy`: an HTTP proxy with basic credentials and a
//! SOCKS5 proxy with a username and password, both real servers on loopback. The callback host
//! (`callback.invalid`) does not resolve, so a delivery can only have gone through the proxy; a
//! disabled proxy is not used, and `kafka-edge run` takes the system's proxy (`HTTP_PROXY`) only
//! where `useSystemProxy` asks for it.

mod common;

use axum::http::{HeaderMap, StatusCode, Uri};
use base64::Engine;
use common::*;
use kafka_edge_definition::{load_str, ApiDefinition, Format};
use kafka_edge_gateway::state::{self, StateStore, SubscriptionState};
use kafka_edge_gateway::webhook::Webhooks;
use kafka_edge_gateway::ApiTable;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

const CALLBACK: &str = "http://callback.invalid/hook";

type Seen = Arc<Mutex<Vec<String>>>;

/// An HTTP forward proxy that wants `Proxy-Authorization: Basic edge:proxy-secret`; it answers
/// every proxied request itself, recording `<absolute URI> <body>`.
async fn http_proxy() -> (Seen, u16) {
    let (seen, _, port) = http_proxy_refusing_first(0).await;
    (seen, port)
}

/// Like `http_proxy`, but answers 407 to its first `refusals` requests whatever they carry; also
/// returns how many requests it got.
async fn http_proxy_refusing_first(refusals: usize) -> (Seen, Arc<std::sync::atomic::AtomicUsize>, u16) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let seen: Seen = Default::default();
    let attempts = Arc::new(AtomicUsize::new(0));
    let (recorded, counted) = (seen.clone(), attempts.clone());
    let expected = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("edge:proxy-secret"));
    let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: String| {
        let (recorded, counted, expected) = (recorded.clone(), counted.clone(), expected.clone());
        async move {
            let attempt = counted.fetch_add(1, Ordering::SeqCst);
            if attempt < refusals
                || headers.get("proxy-authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str())
            {
                return StatusCode::PROXY_AUTHENTICATION_REQUIRED;
            }
            recorded.lock().expect("test setup").push(format!("{uri} {body}"));
            StatusCode::OK
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(async move { axum::serve(listener, app).await.expect("proxy") });
    (seen, attempts, port)
}

/// A SOCKS5 proxy (RFC 1928) that wants username/password authentication (RFC 1929) with
/// `edge` / `proxy-secret`; it serves the tunnelled HTTP itself, recording
/// `<requested host>:<port> <body>`.
async fn socks5_proxy() -> (Seen, u16) {
    let seen: Seen = Default::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let recorded = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let recorded = recorded.clone();
            tokio::spawn(async move {
                let _ = socks5_session(stream, recorded).await;
            });
        }
    });
    (seen, port)
}

async fn socks5_session(mut stream: tokio::net::TcpStream, recorded: Seen) -> std::io::Result<()> {
    let mut greeting = [0u8; 2];
    stream.read_exact(&mut greeting).await?;
    let mut methods = vec![0u8; greeting[1] as usize];
    stream.read_exact(&mut methods).await?;
    if greeting[0] != 5 || !methods.contains(&2) {
        return stream.write_all(&[5, 0xff]).await;
    }
    stream.write_all(&[5, 2]).await?;
    let username = read_counted(&mut stream, 1).await?;
    let password = read_counted(&mut stream, 0).await?;
    if (username.as_slice(), password.as_slice()) != (b"edge".as_slice(), b"proxy-secret".as_slice()) {
        return stream.write_all(&[1, 1]).await;
    }
    stream.write_all(&[1, 0]).await?;
    let mut request = [0u8; 4];
    stream.read_exact(&mut request).await?;
    // CONNECT to a domain name: the proxy resolves it (socks5h).
    if request[1] != 1 || request[3] != 3 {
        return stream.write_all(&[5, 8, 0, 1, 0, 0, 0, 0, 0, 0]).await;
    }
    let host = read_counted(&mut stream, 0).await?;
    let port = stream.read_u16().await?;
    stream.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 0]).await?;
    while let Some(body) = read_http_request(&mut stream).await {
        recorded.lock().expect("test setup").push(format!("{}:{port} {body}", String::from_utf8_lossy(&host)));
        stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await?;
    }
    Ok(())
}

/// Reads a one-byte length and that many bytes (after skipping `skip` version bytes).
async fn read_counted(stream: &mut tokio::net::TcpStream, skip: usize) -> std::io::Result<Vec<u8>> {
    let mut version = vec![0u8; skip];
    stream.read_exact(&mut version).await?;
    let length = stream.read_u8().await?;
    let mut bytes = vec![0u8; length as usize];
    stream.read_exact(&mut bytes).await?;
    Ok(bytes)
}

async fn read_http_request(stream: &mut tokio::net::TcpStream) -> Option<String> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(stream.read_u8().await.ok()?);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let length: usize =
        head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.ok()?;
    Some(String::from_utf8_lossy(&body).into_owned())
}

fn definition(topic: &str, qos: &str, proxy: Value) -> ApiDefinition {
    let json = json!({
        "id": unique("api"), "name": "webhook proxy", "definitionVersion": "4.0.0", "type": "message",
        "listeners": [{"type": "subscription", "entrypoints": [{"type": "webhook", "qos": qos, "configuration": {"proxy": proxy}}]}],
        "endpointGroups": [{"name": "default", "type": "kafka",
            "sharedConfiguration": {"consumer": {"enabled": true, "topics": [topic], "autoOffsetReset": "earliest"}},
            "endpoints": [{"name": "default", "type": "kafka", "configuration": {"bootstrapServers": bootstrap()}}]}],
        "plans": [{"id": "push", "name": "push", "mode": "PUSH"}]
    });
    let loaded = load_str(&json.to_string(), Format::Json, "test").expect("valid definition");
    assert!(loaded.ignored.is_empty(), "{:?}", loaded.ignored);
    loaded.api
}

/// Delivers two records of a new topic to `callback` with `proxy`; waits until `seen` holds two
/// entries or the subscription stopped, and returns the subscription.
async fn deliver(proxy: Value, callback: &str, seen: &Seen) -> state::Subscription {
    deliver_with("at-least-once", proxy, json!({"callbackUrl": callback}), seen).await
}

/// `deliver` with a QoS and a whole subscription configuration.
async fn deliver_with(qos: &str, proxy: Value, configuration: Value, seen: &Seen) -> state::Subscription {
    let topic = unique("webhook-proxy");
    create_topic(&topic, 1).await;
    produce(&topic, &[(None, "one"), (None, "two")]).await;
    let api = definition(&topic, qos, proxy);
    let dir = tempfile::tempdir().expect("dir");
    let store: Arc<dyn StateStore> =
        state::open(&format!("file:{}", dir.path().join("state").display())).await.expect("state");
    let shutdown = CancellationToken::new();
    let webhooks = Webhooks::new(ApiTable::new(vec![built(&api)]), store.clone(), shutdown.clone());
    let entry = json!([{"api": api.id, "id": "s", "plan": "push", "configuration": configuration}]);
    webhooks.load_static(entry.to_string().as_bytes()).await.expect("valid subscription");
    let delivery = tokio::spawn(webhooks.run());
    let settled = eventually(|| {
        seen.lock().expect("test setup").len() >= 2 || store.list().iter().any(|s| s.state != SubscriptionState::Active)
    })
    .await;
    assert!(settled, "neither delivered nor stopped");
    shutdown.cancel();
    delivery.await.expect("delivery stopped");
    store.list().remove(0)
}

#[tokio::test]
async fn calls_go_through_an_http_proxy_with_its_credentials() {
    let (seen, port) = http_proxy().await;
    let proxy = json!({"enabled": true, "type": "HTTP", "host": "127.0.0.1", "port": port, "username": "edge", "password": "proxy-secret"});
    deliver(proxy, CALLBACK, &seen).await;
    assert_eq!(*seen.lock().unwrap(), vec![format!("{CALLBACK} one"), format!("{CALLBACK} two")]);
}

#[tokio::test]
async fn a_proxy_refusing_the_credentials_stops_the_subscription_without_showing_them() {
    let (seen, port) = http_proxy().await;
    let proxy = json!({"enabled": true, "host": "127.0.0.1", "port": port.to_string(), "username": "edge", "password": "wrong-secret"});
    let subscription = deliver(proxy, CALLBACK, &seen).await;
    assert!(seen.lock().unwrap().is_empty());
    match &subscription.state {
        // Unreachable, not a rejection of the message (which would go to a dead-letter queue).
        SubscriptionState::Stopped { reason, message } => {
            assert_eq!(reason, "WEBHOOK_UNREACHABLE", "{message}");
            assert!(
                message.contains("407") && message.contains("proxy.password") && !message.contains("wrong-secret"),
                "{message}"
            );
        }
        other => panic!("still {other:?}"),
    }
}

#[tokio::test]
async fn at_most_once_retries_a_call_that_never_reached_the_callback() {
    let (seen, attempts, port) = http_proxy_refusing_first(1).await;
    let proxy =
        json!({"enabled": true, "host": "127.0.0.1", "port": port, "username": "edge", "password": "proxy-secret"});
    let retry =
        json!({"retryOption": "Retry On Fail", "maxAttempts": 2, "initialDelaySeconds": 0, "maxDelaySeconds": 0});
    let subscription =
        deliver_with("at-most-once", proxy, json!({"callbackUrl": CALLBACK, "retry": retry}), &seen).await;
    assert_eq!(subscription.state, SubscriptionState::Active, "the refused call was retried");
    assert_eq!(*seen.lock().unwrap(), vec![format!("{CALLBACK} one"), format!("{CALLBACK} two")]);
    assert_eq!(attempts.load(std::sync::atomic::Ordering::SeqCst), 3, "one refused call, then one call per message");
}

#[tokio::test]
async fn calls_go_through_a_socks5_proxy_that_resolves_the_callback_host() {
    let (seen, port) = socks5_proxy().await;
    let proxy = json!({"enabled": true, "type": "SOCKS5", "host": "127.0.0.1", "port": port, "username": "edge", "password": "proxy-secret"});
    deliver(proxy, CALLBACK, &seen).await;
    assert_eq!(*seen.lock().unwrap(), vec!["callback.invalid:80 one", "callback.invalid:80 two"]);
}

/// A callback reached without a proxy: records the bodies; returns them and its URL.
async fn direct_callback() -> (Seen, String) {
    let direct: Seen = Default::default();
    let recorded = direct.clone();
    let app = axum::Router::new().fallback(move |body: String| {
        let recorded = recorded.clone();
        async move {
            recorded.lock().expect("test setup").push(body);
            StatusCode::OK
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("callback") });
    (direct, url)
}

#[tokio::test]
async fn a_disabled_proxy_is_not_used() {
    let (proxied, port) = http_proxy().await;
    let (direct, callback) = direct_callback().await;
    let proxy =
        json!({"enabled": false, "host": "127.0.0.1", "port": port, "username": "edge", "password": "proxy-secret"});
    deliver(proxy, &callback, &direct).await;
    assert_eq!(*direct.lock().unwrap(), vec!["one", "two"]);
    assert!(proxied.lock().unwrap().is_empty());
}

/// An API for `kafka-edge run`: a webhook entrypoint with `proxy`, consuming `topic`.
fn definition_file(dir: &std::path::Path, topic: &str, proxy: Value) -> (String, std::path::PathBuf) {
    let api = unique("api");
    let json = json!({
        "id": api, "name": "webhook proxy", "definitionVersion": "4.0.0", "type": "message",
        "listeners": [{"type": "subscription", "entrypoints": [{"type": "webhook", "qos": "at-least-once", "configuration": {"proxy": proxy}}]}],
        "endpointGroups": [{"name": "default", "type": "kafka",
            "sharedConfiguration": {"consumer": {"enabled": true, "topics": [topic], "autoOffsetReset": "earliest"}},
            "endpoints": [{"name": "default", "type": "kafka", "configuration": {"bootstrapServers": bootstrap()}}]}],
        "plans": [{"id": "push", "name": "push", "mode": "PUSH"}]
    });
    let file = dir.join(format!("{api}.json"));
    std::fs::write(&file, json.to_string()).expect("write definition");
    (api, file)
}

#[tokio::test]
async fn run_takes_the_system_proxy_only_where_use_system_proxy_asks_for_it() {
    let (proxied, proxy_port) = http_proxy().await;
    let (direct, direct_url) = direct_callback().await;

    let (system_topic, plain_topic) = (unique("webhook-system-proxy"), unique("webhook-no-proxy"));
    for (topic, value) in [(&system_topic, "via the system proxy"), (&plain_topic, "direct")] {
        create_topic(topic, 1).await;
        produce(topic, &[(None, value)]).await;
    }
    let dir = tempfile::tempdir().expect("dir");
    let (system_api, system_file) =
        definition_file(dir.path(), &system_topic, json!({"enabled": true, "useSystemProxy": true}));
    let (plain_api, plain_file) = definition_file(dir.path(), &plain_topic, json!({}));
    let statics = json!([
        {"api": system_api, "id": "via-proxy", "plan": "push", "configuration": {"callbackUrl": CALLBACK}},
        {"api": plain_api, "id": "direct", "plan": "push", "configuration": {"callbackUrl": direct_url}}
    ]);
    let statics_file = dir.path().join("subscriptions.json");
    std::fs::write(&statics_file, statics.to_string()).expect("write subscriptions");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("address").port();
    let mut gateway = std::process::Command::new(env!("CARGO_BIN_EXE_kafka-edge"))
        .args(["run", "--listen", &format!("127.0.0.1:{port}"), "--admin-listen", "127.0.0.1:0"])
        .arg("--api")
        .arg(&system_file)
        .arg("--api")
        .arg(&plain_file)
        .arg("--state")
        .arg(format!("file:{}", dir.path().join("state").display()))
        .arg("--subscriptions")
        .arg(&statics_file)
        .env("HTTP_PROXY", format!("http://edge:proxy-secret@127.0.0.1:{proxy_port}"))
        .env_remove("http_proxy")
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start gateway");

    let delivered = eventually(|| !proxied.lock().unwrap().is_empty() && !direct.lock().unwrap().is_empty()).await;
    let _ = gateway.kill();
    let _ = gateway.wait();
    assert!(delivered, "proxied: {:?}, direct: {:?}", proxied.lock().unwrap(), direct.lock().unwrap());
    assert_eq!(*proxied.lock().unwrap(), vec![format!("{CALLBACK} via the system proxy")]);
    assert_eq!(*direct.lock().unwrap(), vec!["direct"]);
}
