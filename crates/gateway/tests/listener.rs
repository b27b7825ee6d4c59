//! The client listener: HTTPS with the test bed's certificates (HTTP/1.1 and HTTP/2 by ALPN, WSS),
//! mutual TLS required and refused, certificate files re-read on change, and the limits that keep
//! hostile clients from holding connections: the header timeout and the connection cap.

mod common;

use common::*;
use futures::{SinkExt, StreamExt};
use kafka_edge_gateway::listener::{ClientAuth, ListenerOptions, Tls, TlsFiles};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

fn certs() -> PathBuf {
    PathBuf::from(
        std::env::var("KAFKA_EDGE_TESTKIT_CERTS")
            .expect("KAFKA_EDGE_TESTKIT_CERTS is not set: run the tests with scripts/test"),
    )
}

fn tls(certificate: &Path, key: &Path, client_ca: Option<ClientAuth>) -> ListenerOptions {
    let files = TlsFiles {
        certificate: certificate.to_path_buf(),
        key: key.to_path_buf(),
        client_ca: client_ca.map(|_| certs().join("ca.pem")),
        client_auth: client_ca.unwrap_or_default(),
    };
    ListenerOptions { tls: Some(Tls::load(files).expect("TLS files load")), ..Default::default() }
}

/// The API with a websocket entrypoint too, served with `listener`.
async fn start(spec: &ApiSpec, listener: ListenerOptions) -> TestGateway {
    let mut definition = spec.to_json();
    let entrypoints = definition["listeners"][0]["entrypoints"].as_array_mut().expect("entrypoints");
    entrypoints.push(json!({"type": "websocket"}));
    let options = kafka_edge_gateway::Options { listener, ..Default::default() };
    TestGateway::start_with(definition, &spec.path, options).await
}

/// `https://localhost:<port><path>` for the gateway (its certificate names localhost).
fn https(gateway: &TestGateway) -> String {
    gateway.url().replacen("http://127.0.0.1", "https://localhost", 1)
}

fn client(identity: Option<&str>) -> reqwest::Client {
    let ca = std::fs::read(certs().join("ca.pem")).expect("CA");
    let mut builder =
        reqwest::Client::builder().add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("CA certificate"));
    if let Some(name) = identity {
        let chain = std::fs::read(certs().join(format!("{name}.chain.pem"))).expect("chain");
        let key = std::fs::read(certs().join(format!("{name}.key.pem"))).expect("key");
        builder = builder.identity(reqwest::Identity::from_pkcs8_pem(&chain, &key).expect("identity"));
    }
    builder.build().expect("HTTPS client")
}

/// `curl --http2` against the gateway: the HTTP version it used and the body.
async fn curl_http2(url: &str) -> (String, String) {
    let output = tokio::process::Command::new("curl")
        .args(["-s", "--http2", "--cacert"])
        .arg(certs().join("ca.pem"))
        .args(["-H", "Accept: application/json", "-w", "\n%{http_version}", url])
        .output()
        .await
        .expect("curl");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, version) = text.rsplit_once('\n').expect("version line");
    (version.to_string(), body.to_string())
}

#[tokio::test]
async fn https_serves_http1_http2_and_wss_with_the_test_bed_certificate() {
    let topic = unique("https");
    create_topic(&topic, 1).await;
    let spec = ApiSpec::new(&topic);
    let gateway = start(&spec, tls(&certs().join("broker.cert.pem"), &certs().join("broker.key.pem"), None)).await;
    let posted = client(None).post(https(&gateway)).body("over TLS").send().await.expect("HTTPS POST");
    assert_eq!((posted.status().as_u16(), posted.version()), (202, reqwest::Version::HTTP_11));

    let (version, body) = curl_http2(&https(&gateway)).await;
    assert_eq!(version, "2", "ALPN chose HTTP/2");
    let body: Value = serde_json::from_str(&body).expect("JSON page");
    assert_eq!(contents(&body), ["over TLS"]);

    let connector = tokio_native_tls::native_tls::TlsConnector::builder()
        .add_root_certificate(
            tokio_native_tls::native_tls::Certificate::from_pem(&std::fs::read(certs().join("ca.pem")).expect("CA"))
                .expect("CA certificate"),
        )
        .build()
        .expect("connector");
    // Its own consumer group: the GET above committed the record for the loopback's.
    let mut request = https(&gateway).replacen("https://", "wss://", 1).into_client_request().expect("request");
    request.headers_mut().insert("X-Gravitee-Client-Identifier", "wss-client".parse().expect("header"));
    let (mut socket, response) = tokio_tungstenite::connect_async_tls_with_config(
        request,
        None,
        false,
        Some(tokio_tungstenite::Connector::NativeTls(connector)),
    )
    .await
    .expect("WSS upgrade");
    assert_eq!(response.status(), 101);
    let frame = tokio::time::timeout(Duration::from_secs(10), socket.next()).await.expect("a frame in time");
    match frame {
        Some(Ok(Message::Binary(data))) => assert_eq!(&data[..], b"over TLS"),
        other => panic!("expected the record as a binary frame, got {other:?}"),
    }
    socket.send(Message::Text("from WSS".into())).await.expect("send");
    // Read beside the runtime: the gateway runs in it and must publish the frame meanwhile.
    let topic_read = topic.clone();
    let records = tokio::task::spawn_blocking(move || read_records(&topic_read, 2)).await.expect("read");
    assert_eq!(records.iter().map(payload).collect::<Vec<_>>(), ["over TLS", "from WSS"]);
    gateway.stop().await;
}

#[tokio::test]
async fn mutual_tls_admits_only_certificates_of_the_client_ca() {
    let topic = unique("mtls-listener");
    create_topic(&topic, 1).await;
    let spec = ApiSpec::new(&topic);
    let (certificate, key) = (certs().join("broker.cert.pem"), certs().join("broker.key.pem"));
    let gateway = start(&spec, tls(&certificate, &key, Some(ClientAuth::Required))).await;
    let url = https(&gateway);
    let with = |identity| {
        let url = url.clone();
        async move { client(identity).post(url).body("m").send().await }
    };
    assert_eq!(with(Some("client")).await.expect("with a certificate").status(), 202);
    assert!(with(None).await.is_err(), "a client without a certificate is refused in the handshake");
    assert!(with(Some("untrusted-client")).await.is_err(), "a certificate of another CA is refused");
    gateway.stop().await;

    let optional = start(&spec, tls(&certificate, &key, Some(ClientAuth::Optional))).await;
    let anonymous = client(None).post(https(&optional)).body("m").send().await.expect("optional certificate");
    assert_eq!(anonymous.status(), 202);
    assert!(client(Some("untrusted-client")).post(https(&optional)).body("m").send().await.is_err());
    optional.stop().await;
    assert_eq!(record_count(&topic), 2);
}

#[tokio::test]
async fn certificate_files_are_read_again_when_they_change() {
    let dir = tempfile::tempdir().expect("dir");
    let (certificate, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    // First a certificate the client cannot accept (another CA, not for a server).
    std::fs::copy(certs().join("untrusted-client.cert.pem"), &certificate).expect("copy");
    std::fs::copy(certs().join("untrusted-client.key.pem"), &key).expect("copy");
    let topic = unique("tls-reload");
    create_topic(&topic, 1).await;
    let spec = ApiSpec::new(&topic);
    let gateway = start(&spec, tls(&certificate, &key, None)).await;
    let http = client(None);
    assert!(http.post(https(&gateway)).body("m").send().await.is_err(), "the first certificate is not trusted");
    // The renewal: written beside, then renamed over, as certificate managers do.
    std::fs::copy(certs().join("broker.key.pem"), dir.path().join("new.key")).expect("copy");
    std::fs::copy(certs().join("broker.cert.pem"), dir.path().join("new.crt")).expect("copy");
    std::fs::rename(dir.path().join("new.key"), &key).expect("rename");
    std::fs::rename(dir.path().join("new.crt"), &certificate).expect("rename");
    let mut renewed = false;
    for _ in 0..150 {
        if http.post(https(&gateway)).body("m").send().await.is_ok_and(|r| r.status() == 202) {
            renewed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(renewed, "the renewed certificate is served without a restart");
    gateway.stop().await;
}

/// Reads until the server closes the connection; what it sent before, if anything.
async fn closed_by_server(stream: &mut TcpStream, within: Duration) -> Option<String> {
    let mut received = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buffer = [0u8; 1024];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    read.ok().map(|_| String::from_utf8_lossy(&received).into_owned())
}

#[tokio::test]
async fn slow_request_heads_time_out() {
    let spec = ApiSpec::new(&unique("slow"));
    let listener = ListenerOptions { header_timeout: Duration::from_secs(1), ..Default::default() };
    let gateway = start(&spec, listener).await;
    let address = gateway.base.trim_start_matches("http://").to_string();
    let mut idle = TcpStream::connect(&address).await.expect("connect");
    let mut partial = TcpStream::connect(&address).await.expect("connect");
    partial.write_all(format!("POST {} HTTP/1.1\r\nHost: x\r\nX-Slow: ", spec.path).as_bytes()).await.expect("write");
    // A prefix of the HTTP/2 preface, then nothing.
    let mut preface = TcpStream::connect(&address).await.expect("connect");
    preface.write_all(b"PRI * HTTP").await.expect("write");
    assert!(closed_by_server(&mut idle, Duration::from_secs(10)).await.is_some(), "an idle connection is closed");
    assert!(closed_by_server(&mut partial, Duration::from_secs(10)).await.is_some(), "a partial head is cut");
    assert!(closed_by_server(&mut preface, Duration::from_secs(10)).await.is_some(), "a partial preface is cut");
    // A client that keeps its connection after a response gets the same bound before its next request.
    let mut kept = TcpStream::connect(&address).await.expect("connect");
    kept.write_all(b"GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("write");
    let answered = closed_by_server(&mut kept, Duration::from_secs(10)).await.expect("closed after the response");
    assert!(answered.starts_with("HTTP/1.1 404"), "{answered}");
    gateway.stop().await;
}

#[tokio::test]
async fn a_tls_connection_that_sends_no_request_is_closed() {
    let spec = ApiSpec::new(&unique("slow-tls"));
    let mut listener = tls(&certs().join("broker.cert.pem"), &certs().join("broker.key.pem"), None);
    listener.header_timeout = Duration::from_secs(1);
    let gateway = start(&spec, listener).await;
    let port = gateway.base.rsplit(':').next().expect("port").to_string();
    let connector = tokio_native_tls::TlsConnector::from(
        tokio_native_tls::native_tls::TlsConnector::builder()
            .add_root_certificate(
                tokio_native_tls::native_tls::Certificate::from_pem(
                    &std::fs::read(certs().join("ca.pem")).expect("CA"),
                )
                .expect("CA certificate"),
            )
            .build()
            .expect("connector"),
    );
    for first_bytes in [&b""[..], b"P", b"GET / HTTP/1.1\r\nHost: x\r\n"] {
        let tcp = TcpStream::connect(format!("127.0.0.1:{port}")).await.expect("connect");
        let mut stream = connector.connect("localhost", tcp).await.expect("handshake");
        stream.write_all(first_bytes).await.expect("write");
        let closed = tokio::time::timeout(Duration::from_secs(10), async {
            let mut buffer = [0u8; 256];
            loop {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => continue,
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "closed after {:?} and then nothing", String::from_utf8_lossy(first_bytes));
    }
    gateway.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_cap_are_closed_at_once() {
    let spec = ApiSpec::new(&unique("capped"));
    let listener =
        ListenerOptions { max_connections: 3, header_timeout: Duration::from_secs(60), ..Default::default() };
    let gateway = start(&spec, listener).await;
    let address = gateway.base.trim_start_matches("http://").to_string();
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut stream = TcpStream::connect(&address).await.expect("connect");
        stream.write_all(b"GET /nothing HTTP/1.1\r\nHost: x\r\n").await.expect("write");
        held.push(stream);
    }
    let mut over = TcpStream::connect(&address).await.expect("the kernel still accepts");
    let closed = closed_by_server(&mut over, Duration::from_secs(10)).await;
    assert_eq!(closed.as_deref(), Some(""), "closed without an answer, long before the 60 s header timeout");
    drop(held.pop());
    let mut served = false;
    for _ in 0..100 {
        if reqwest::get(format!("{}/nothing", gateway.base)).await.is_ok_and(|r| r.status() == 404) {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(served, "a freed slot takes a new connection");
    drop(held);
    gateway.stop().await;
}

#[tokio::test]
async fn a_request_head_over_64_kib_is_refused_with_431() {
    let spec = ApiSpec::new(&unique("big-head"));
    let gateway = start(&spec, ListenerOptions::default()).await;
    let address = gateway.base.trim_start_matches("http://").to_string();
    let mut stream = TcpStream::connect(&address).await.expect("connect");
    let big = "x".repeat(kafka_edge_gateway::listener::MAX_HEADER_BYTES);
    let head = format!("GET {} HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n", spec.path);
    // The server may stop reading before the whole head is written.
    let _ = stream.write_all(head.as_bytes()).await;
    let answer = closed_by_server(&mut stream, Duration::from_secs(10)).await.expect("answered and closed");
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    // A head well under the cap is served.
    let fine = gateway.http.get(gateway.url()).header("X-Big", "x".repeat(16 * 1024)).send().await.expect("GET");
    assert_ne!(fine.status(), 431);
    gateway.stop().await;
}

#[tokio::test]
async fn two_thousand_half_open_connections_are_closed_while_clients_are_served() {
    let topic = unique("half-open");
    create_topic(&topic, 1).await;
    let spec = ApiSpec::new(&topic);
    let listener = ListenerOptions { header_timeout: Duration::from_secs(2), ..Default::default() };
    let gateway = start(&spec, listener).await;
    let address = gateway.base.trim_start_matches("http://").to_string();
    let mut half_open = Vec::with_capacity(2000);
    for _ in 0..2000 {
        let mut stream = TcpStream::connect(&address).await.expect("connect");
        stream
            .write_all(format!("POST {} HTTP/1.1\r\nHost: x\r\nX-Never: ", spec.path).as_bytes())
            .await
            .expect("write");
        half_open.push(stream);
    }
    // Meanwhile, a client is served as usual.
    let posted = gateway.http.post(gateway.url()).body("served").send().await.expect("POST");
    assert_eq!(posted.status(), 202);
    let closed =
        futures::future::join_all(half_open.iter_mut().map(|stream| closed_by_server(stream, Duration::from_secs(20))))
            .await;
    let still_open = closed.iter().filter(|closed| closed.is_none()).count();
    assert_eq!(still_open, 0, "{still_open} of 2000 half-open connections outlived the 2 s header timeout by 18 s");
    gateway.stop().await;
}
