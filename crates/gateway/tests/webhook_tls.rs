//! Webhook TLS against an HTTPS callback (the test bed's `localhost` certificate, signed by its
//! CA): a PEM trust store is applied, the system roots alone refuse the callback, `trustAll`
//! accepts it; a PEM client identity is built (a broken one stops the subscription); unsupported
//! store types are refused when the subscription is created.

mod common;

use common::*;
use kafka_edge_definition::{load_str, ApiDefinition, Format};
use kafka_edge_gateway::state::{self, StateStore};
use kafka_edge_gateway::webhook::Webhooks;
use serde_json::json;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

fn certs() -> PathBuf {
    PathBuf::from(std::env::var("KAFKA_EDGE_TESTKIT_CERTS").expect("KAFKA_EDGE_TESTKIT_CERTS is not set: run the tests with scripts/test"))
}

/// An HTTPS server answering 200 to every request and recording the bodies.
async fn https_callback() -> (Arc<Mutex<Vec<String>>>, String) {
    let certificate = std::fs::read(certs().join("broker.cert.pem")).expect("certificate");
    let key = std::fs::read(certs().join("broker.key.pem")).expect("key");
    let identity = tokio_native_tls::native_tls::Identity::from_pkcs8(&certificate, &key).expect("identity");
    let acceptor = tokio_native_tls::TlsAcceptor::from(tokio_native_tls::native_tls::TlsAcceptor::new(identity).expect("acceptor"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("https://127.0.0.1:{}/hook", listener.local_addr().expect("address").port());
    let bodies: Arc<Mutex<Vec<String>>> = Default::default();
    let recorded = bodies.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, recorded) = (acceptor.clone(), recorded.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else { return };
                while let Some(body) = read_request(&mut tls).await {
                    recorded.lock().unwrap().push(body);
                    if tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (bodies, url)
}

/// One HTTP/1.1 request with a content-length body; `None` at the end of the connection.
async fn read_request(stream: &mut (impl AsyncReadExt + Unpin)) -> Option<String> {
    let mut buffer = Vec::new();
    let mut byte = [0u8; 1];
    while !buffer.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        buffer.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buffer).to_ascii_lowercase();
    let length: usize = head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.ok()?;
    Some(String::from_utf8_lossy(&body).into_owned())
}

fn definition(topic: &str) -> ApiDefinition {
    let json = json!({
        "id": unique("api"), "name": "webhook tls", "definitionVersion": "4.0.0", "type": "message",
        "listeners": [{"type": "subscription", "entrypoints": [{"type": "webhook", "qos": "at-least-once"}]}],
        "endpointGroups": [{"name": "default", "type": "kafka",
            "sharedConfiguration": {"consumer": {"enabled": true, "topics": [topic], "autoOffsetReset": "earliest"}},
            "endpoints": [{"name": "default", "type": "kafka", "configuration": {"bootstrapServers": bootstrap()}}]}],
        "plans": [{"id": "push", "name": "push", "mode": "PUSH"}]
    });
    load_str(&json.to_string(), Format::Json, "test").expect("valid definition").api
}

async fn deliver_with(ssl: serde_json::Value) -> (Vec<String>, kafka_edge_gateway::state::Subscription) {
    let topic = unique("webhook-tls");
    create_topic(&topic, 1).await;
    produce(&topic, &[(None, "secure")]).await;
    let api = definition(&topic);
    let (bodies, url) = https_callback().await;
    let dir = tempfile::tempdir().expect("dir");
    let store: Arc<dyn StateStore> = state::open(&format!("file:{}", dir.path().join("state").display())).await.expect("state");
    let shutdown = CancellationToken::new();
    let webhooks = Webhooks::new(std::slice::from_ref(&api), store.clone(), shutdown.clone()).expect("webhooks");
    let entry = json!([{"api": api.id, "id": "s", "plan": "push", "configuration": {"callbackUrl": url, "ssl": ssl}}]);
    webhooks.load_static(entry.to_string().as_bytes()).await.expect("valid subscription");
    let delivery = tokio::spawn(webhooks.run());
    let settled = eventually(|| !bodies.lock().unwrap().is_empty() || store.list().iter().any(|s| s.state != state::SubscriptionState::Active)).await;
    assert!(settled, "neither delivered nor stopped");
    shutdown.cancel();
    delivery.await.expect("delivery stopped");
    let delivered = bodies.lock().unwrap().clone();
    (delivered, store.list().remove(0))
}

#[tokio::test]
async fn a_pem_trust_store_is_applied() {
    let ca = std::fs::read_to_string(certs().join("ca.pem")).expect("ca");
    let (delivered, _) = deliver_with(json!({"trustStore": {"type": "PEM", "content": ca}})).await;
    assert_eq!(delivered, vec!["secure"]);
    let (delivered, _) = deliver_with(json!({"trustStore": {"type": "PEM", "path": certs().join("ca.pem")}})).await;
    assert_eq!(delivered, vec!["secure"]);
}

#[tokio::test]
async fn an_unknown_ca_is_refused_unless_trust_all() {
    let (delivered, subscription) = deliver_with(json!({})).await;
    assert!(delivered.is_empty());
    assert!(matches!(&subscription.state, state::SubscriptionState::Stopped { reason, .. } if reason == "WEBHOOK_UNREACHABLE"), "{:?}", subscription.state);
    let (delivered, _) = deliver_with(json!({"trustAll": true})).await;
    assert_eq!(delivered, vec!["secure"]);
}

#[tokio::test]
async fn unsupported_or_incomplete_stores_are_refused() {
    let api = definition(&unique("unused"));
    let dir = tempfile::tempdir().expect("dir");
    let store: Arc<dyn StateStore> = state::open(&format!("file:{}", dir.path().join("state").display())).await.expect("state");
    let webhooks = Webhooks::new(std::slice::from_ref(&api), store, CancellationToken::new()).expect("webhooks");
    let entry = |ssl: serde_json::Value| json!([{"api": api.id, "id": "s", "plan": "push", "configuration": {"callbackUrl": "https://127.0.0.1:1/", "ssl": ssl}}]).to_string();
    let jks = webhooks.load_static(entry(json!({"trustStore": {"type": "JKS", "path": "/x.jks"}})).as_bytes()).await.expect_err("JKS refused");
    assert!(jks.contains("ssl.trustStore.type"), "{jks}");
    let incomplete = webhooks.load_static(entry(json!({"keyStore": {"type": "PEM", "certPath": "/x"}})).as_bytes()).await.expect_err("no key");
    assert!(incomplete.contains("ssl.keyStore"), "{incomplete}");
    let pem = json!({"keyStore": {"type": "PEM", "certPath": certs().join("client.cert.pem"), "keyPath": certs().join("client.key.pem")}});
    assert_eq!(webhooks.load_static(entry(pem).as_bytes()).await, Ok(1));
}

#[tokio::test]
async fn a_pem_client_identity_is_built_and_a_broken_one_stops_the_subscription() {
    let ca = std::fs::read_to_string(certs().join("ca.pem")).expect("ca");
    let identity = json!({"type": "PEM", "certPath": certs().join("client.cert.pem"), "keyPath": certs().join("client.key.pem")});
    let (delivered, _) = deliver_with(json!({"trustStore": {"type": "PEM", "content": ca}, "keyStore": identity})).await;
    assert_eq!(delivered, vec!["secure"]);
    let broken = json!({"type": "PEM", "certPath": certs().join("ca.key.pem"), "keyPath": certs().join("client.key.pem")});
    let (delivered, subscription) = deliver_with(json!({"keyStore": broken})).await;
    assert!(delivered.is_empty());
    assert!(matches!(&subscription.state, state::SubscriptionState::Stopped { reason, .. } if reason == "WEBHOOK_CONFIGURATION_INVALID"), "{:?}", subscription.state);
}
