//! Webhook TLS against HTTPS callbacks (the test bed's `localhost` certificate, signed by its CA):
//! PEM, JKS and PKCS12 trust stores are applied, the system roots alone refuse the callback,
//! `trustAll` accepts it; PEM, JKS and PKCS12 client identities are presented to a callback that
//! requires a client certificate; unreadable stores and wrong passwords are refused when the
//! subscription is created, naming the field.

mod common;

use common::*;
use kafka_edge_definition::{load_str, ApiDefinition, Format};
use kafka_edge_gateway::state::{self, StateStore};
use kafka_edge_gateway::webhook::Webhooks;
use kafka_edge_gateway::ApiTable;
use serde_json::json;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

fn certs() -> PathBuf {
    PathBuf::from(
        std::env::var("KAFKA_EDGE_TESTKIT_CERTS")
            .expect("KAFKA_EDGE_TESTKIT_CERTS is not set: run the tests with scripts/test"),
    )
}

/// An HTTPS server answering 200 to every request and recording the bodies.
async fn https_callback() -> (Arc<Mutex<Vec<String>>>, String) {
    let certificate = std::fs::read(certs().join("broker.cert.pem")).expect("certificate");
    let key = std::fs::read(certs().join("broker.key.pem")).expect("key");
    let identity = tokio_native_tls::native_tls::Identity::from_pkcs8(&certificate, &key).expect("identity");
    let acceptor = tokio_native_tls::TlsAcceptor::from(
        tokio_native_tls::native_tls::TlsAcceptor::new(identity).expect("acceptor"),
    );
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
                    recorded.lock().expect("test setup").push(body);
                    if tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (bodies, url)
}

/// An HTTPS server that requires a client certificate signed by the test bed's CA; records
/// `<client certificate CN>: <body>` for every request.
fn mutual_tls_callback() -> (Arc<Mutex<Vec<String>>>, String) {
    use openssl::ssl::{SslAcceptor, SslFiletype, SslMethod, SslVerifyMode};
    let mut builder = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).expect("acceptor");
    builder.set_certificate_chain_file(certs().join("broker.cert.pem")).expect("certificate");
    builder.set_private_key_file(certs().join("broker.key.pem"), SslFiletype::PEM).expect("key");
    builder.set_ca_file(certs().join("ca.pem")).expect("ca");
    builder.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
    let acceptor = Arc::new(builder.build());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("https://127.0.0.1:{}/hook", listener.local_addr().expect("address").port());
    let bodies: Arc<Mutex<Vec<String>>> = Default::default();
    let recorded = bodies.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (acceptor, recorded) = (acceptor.clone(), recorded.clone());
            std::thread::spawn(move || {
                let Ok(mut tls) = acceptor.accept(stream) else { return };
                let client =
                    tls.ssl().peer_certificate().map(|certificate| common_name(&certificate)).unwrap_or_default();
                while let Some(body) = read_request_blocking(&mut tls) {
                    recorded.lock().expect("test setup").push(format!("{client}: {body}"));
                    if std::io::Write::write_all(&mut tls, b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_err() {
                        return;
                    }
                }
            });
        }
    });
    (bodies, url)
}

fn common_name(certificate: &openssl::x509::X509Ref) -> String {
    let entry = certificate.subject_name().entries_by_nid(openssl::nid::Nid::COMMONNAME).next();
    entry.and_then(|e| e.data().to_string().ok()).unwrap_or_default()
}

fn client_common_name() -> String {
    let pem = std::fs::read(certs().join("client.cert.pem")).expect("client certificate");
    common_name(&openssl::x509::X509::from_pem(&pem).expect("PEM certificate"))
}

fn read_request_blocking(stream: &mut impl std::io::Read) -> Option<String> {
    let mut buffer = Vec::new();
    let mut byte = [0u8; 1];
    while !buffer.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).ok()? == 0 {
            return None;
        }
        buffer.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buffer).to_ascii_lowercase();
    let length: usize =
        head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).ok()?;
    Some(String::from_utf8_lossy(&body).into_owned())
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
    let length: usize =
        head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
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
    deliver_to(https_callback().await, ssl).await
}

async fn deliver_to(
    (bodies, url): (Arc<Mutex<Vec<String>>>, String),
    ssl: serde_json::Value,
) -> (Vec<String>, kafka_edge_gateway::state::Subscription) {
    let topic = unique("webhook-tls");
    create_topic(&topic, 1).await;
    produce(&topic, &[(None, "secure")]).await;
    let api = definition(&topic);
    let dir = tempfile::tempdir().expect("dir");
    let store: Arc<dyn StateStore> =
        state::open(&format!("file:{}", dir.path().join("state").display())).await.expect("state");
    let shutdown = CancellationToken::new();
    let webhooks = Webhooks::new(ApiTable::new(vec![built(&api)]), store.clone(), shutdown.clone());
    let entry = json!([{"api": api.id, "id": "s", "plan": "push", "configuration": {"callbackUrl": url, "ssl": ssl}}]);
    webhooks.load_static(entry.to_string().as_bytes()).await.expect("valid subscription");
    let delivery = tokio::spawn(webhooks.run());
    let settled = eventually(|| {
        !bodies.lock().expect("test setup").is_empty()
            || store.list().iter().any(|s| s.state != state::SubscriptionState::Active)
    })
    .await;
    assert!(settled, "neither delivered nor stopped");
    shutdown.cancel();
    delivery.await.expect("delivery stopped");
    let delivered = bodies.lock().expect("test setup").clone();
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
    assert!(
        matches!(&subscription.state, state::SubscriptionState::Stopped { reason, .. } if reason == "WEBHOOK_UNREACHABLE"),
        "{:?}",
        subscription.state
    );
    let (delivered, _) = deliver_with(json!({"trustAll": true})).await;
    assert_eq!(delivered, vec!["secure"]);
}

#[tokio::test]
async fn jks_and_pkcs12_trust_stores_are_applied() {
    for (kind, file) in [("JKS", "truststore.jks"), ("PKCS12", "truststore.p12")] {
        let path = json!({"trustStore": {"type": kind, "path": certs().join(file), "password": "truststore-secret"}});
        assert_eq!(deliver_with(path).await.0, vec!["secure"], "{kind} by path");
        let content = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            std::fs::read(certs().join(file)).expect("store"),
        );
        let inline = json!({"trustStore": {"type": kind, "content": content, "password": "truststore-secret"}});
        assert_eq!(deliver_with(inline).await.0, vec!["secure"], "{kind} inline");
    }
}

#[tokio::test]
async fn unsupported_incomplete_or_unreadable_stores_are_refused_naming_the_field() {
    let api = definition(&unique("unused"));
    let dir = tempfile::tempdir().expect("dir");
    let store: Arc<dyn StateStore> =
        state::open(&format!("file:{}", dir.path().join("state").display())).await.expect("state");
    let webhooks = Webhooks::new(ApiTable::new(vec![built(&api)]), store, CancellationToken::new());
    let entry = |ssl: serde_json::Value| {
        json!([{"api": api.id, "id": "s", "plan": "push", "configuration": {"callbackUrl": "https://127.0.0.1:1/", "ssl": ssl}}]).to_string()
    };
    let refusal = |ssl: serde_json::Value| {
        let webhooks = webhooks.clone();
        let body = entry(ssl);
        async move { webhooks.load_static(body.as_bytes()).await.expect_err("refused") }
    };
    let kind = refusal(json!({"trustStore": {"type": "P7B", "path": "/x.p7b"}})).await;
    assert!(kind.contains("ssl.trustStore.type") && kind.contains("`JKS`"), "{kind}");
    let missing = refusal(json!({"trustStore": {"type": "JKS", "path": "/nonexistent/x.jks"}})).await;
    assert!(missing.contains("ssl.trustStore.path"), "{missing}");
    let incomplete = refusal(json!({"keyStore": {"type": "PEM", "certPath": "/x"}})).await;
    assert!(incomplete.contains("ssl.keyStore"), "{incomplete}");
    let wrong_store_password = refusal(json!({"keyStore": {"type": "JKS", "path": certs().join("client.keystore.jks"), "password": "nope", "keyPassword": "key-secret"}})).await;
    assert!(
        wrong_store_password.contains("ssl.keyStore.password") && !wrong_store_password.contains("nope"),
        "{wrong_store_password}"
    );
    let wrong_key_password = refusal(json!({"keyStore": {"type": "JKS", "path": certs().join("client.keystore.jks"), "password": "keystore-secret", "keyPassword": "nope"}})).await;
    assert!(wrong_key_password.contains("ssl.keyStore.keyPassword"), "{wrong_key_password}");
    let wrong_pkcs12_password =
        refusal(json!({"trustStore": {"type": "PKCS12", "path": certs().join("truststore.p12"), "password": "nope"}}))
            .await;
    assert!(wrong_pkcs12_password.contains("ssl.trustStore.password"), "{wrong_pkcs12_password}");
    let pem = json!({"keyStore": {"type": "PEM", "certPath": certs().join("client.cert.pem"), "keyPath": certs().join("client.key.pem")}});
    assert_eq!(webhooks.load_static(entry(pem).as_bytes()).await, Ok(1));
}

#[tokio::test]
async fn pem_jks_and_pkcs12_client_identities_are_presented_to_a_callback_that_requires_one() {
    let trust = json!({"type": "PEM", "path": certs().join("ca.pem")});
    let identities = [
        json!({"type": "PEM", "certPath": certs().join("client.cert.pem"), "keyPath": certs().join("client.key.pem")}),
        json!({"type": "PEM", "certPath": certs().join("client.cert.pem"), "keyPath": certs().join("client.key.enc.pem"), "keyPassword": "key-secret"}),
        json!({"type": "JKS", "path": certs().join("client.keystore.jks"), "password": "keystore-secret", "keyPassword": "key-secret"}),
        json!({"type": "PKCS12", "path": certs().join("client.keystore.p12"), "password": "keystore-secret"}),
    ];
    let expected = vec![format!("{}: secure", client_common_name())];
    for identity in identities {
        let (delivered, _) =
            deliver_to(mutual_tls_callback(), json!({"trustStore": trust, "keyStore": identity})).await;
        assert_eq!(delivered, expected, "{identity}");
    }
    let (delivered, subscription) = deliver_to(mutual_tls_callback(), json!({"trustStore": trust})).await;
    assert!(delivered.is_empty(), "delivered without a client certificate");
    assert!(
        matches!(&subscription.state, state::SubscriptionState::Stopped { reason, .. } if reason == "WEBHOOK_UNREACHABLE"),
        "{:?}",
        subscription.state
    );
}

#[tokio::test]
async fn a_store_that_vanished_before_delivery_starts_stops_the_subscription() {
    let dir = tempfile::tempdir().expect("dir");
    let (certificate, key) = (dir.path().join("client.cert.pem"), dir.path().join("client.key.pem"));
    std::fs::copy(certs().join("client.cert.pem"), &certificate).expect("copy");
    std::fs::copy(certs().join("client.key.pem"), &key).expect("copy");
    let identity = json!({"type": "PEM", "certPath": certificate, "keyPath": key});
    let topic = unique("webhook-tls");
    create_topic(&topic, 1).await;
    produce(&topic, &[(None, "secure")]).await;
    let api = definition(&topic);
    let store: Arc<dyn StateStore> =
        state::open(&format!("file:{}", dir.path().join("state").display())).await.expect("state");
    let shutdown = CancellationToken::new();
    let webhooks = Webhooks::new(ApiTable::new(vec![built(&api)]), store.clone(), shutdown.clone());
    let entry = json!([{"api": api.id, "id": "s", "plan": "push", "configuration": {"callbackUrl": "https://127.0.0.1:1/", "ssl": {"keyStore": identity}}}]);
    webhooks.load_static(entry.to_string().as_bytes()).await.expect("readable when created");
    std::fs::remove_file(&key).expect("remove");
    let delivery = tokio::spawn(webhooks.run());
    assert!(
        eventually(|| store.list().iter().any(|s| s.state != state::SubscriptionState::Active)).await,
        "still active"
    );
    shutdown.cancel();
    delivery.await.expect("delivery stopped");
    let subscription = store.list().remove(0);
    assert!(
        matches!(&subscription.state, state::SubscriptionState::Stopped { reason, .. } if reason == "WEBHOOK_CONFIGURATION_INVALID"),
        "{:?}",
        subscription.state
    );
}
