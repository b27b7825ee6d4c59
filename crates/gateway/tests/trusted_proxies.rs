//! `--trusted-proxies`: behind a trusted reverse proxy the client's address comes from
//! `X-Forwarded-For` (the right-most hop that is not a proxy), and feeds `request.remoteAddress`
//! and the key-less consumer group; from anyone else the header is ignored.

mod common;

use common::*;
use rdkafka::message::{Headers as _, Message as _};
use serde_json::json;

const CLIENT: &str = "203.0.113.7";

/// An API that writes `request.remoteAddress` into each record's `X-Client` header.
fn spec(topic: &str) -> ApiSpec {
    let mut spec = ApiSpec::new(topic);
    spec.flows = json!([{"name": "address", "publish": [{"name": "address", "policy": "transform-headers",
        "configuration": {"addHeaders": [{"name": "X-Client", "value": "{#request.remoteAddress}"}]}}]}]);
    spec
}

fn x_client(record: &rdkafka::message::OwnedMessage) -> String {
    let header = record.headers().and_then(|headers| headers.iter().find(|h| h.key == "X-Client"));
    String::from_utf8_lossy(header.and_then(|h| h.value).unwrap_or_default()).into_owned()
}

/// POSTs and GETs as a client behind a proxy that appended `CLIENT`, after a spoofed hop;
/// answers the address the record names and whether the GET committed under `CLIENT`'s group.
async fn through_proxy(trusted: &str) -> (String, bool, bool) {
    let topic = unique("forwarded");
    create_topic(&topic, 1).await;
    let spec = spec(&topic);
    let options = kafka_edge_gateway::Options { trusted_proxies: trusted.parse().expect("list"), ..Default::default() };
    let gateway = TestGateway::start_with(spec.to_json(), &spec.path, options).await;
    let forwarded = format!("6.6.6.6, {CLIENT}");
    let posted = gateway.http.post(gateway.url()).header("X-Forwarded-For", &forwarded).body("m").send().await;
    assert_eq!(posted.expect("POST").status(), 202);
    let record = read_records(&topic, 1).remove(0);
    let got = gateway
        .http
        .get(gateway.url())
        .header("Accept", "application/json")
        .header("X-Forwarded-For", &forwarded)
        .send()
        .await
        .expect("GET");
    assert_eq!(got.status(), 200);
    let group = |address: &str| {
        kafka_edge_gateway::client_identifier::key_less(
            &gateway.api_id,
            address.parse().expect("ip"),
            &http::HeaderMap::new(),
        )
    };
    let (as_client, as_loopback) = (group(CLIENT), group("127.0.0.1"));
    gateway.stop().await;
    (
        x_client(&record),
        committed_offset(&as_client, &topic, 0).is_some(),
        committed_offset(&as_loopback, &topic, 0).is_some(),
    )
}

#[tokio::test]
async fn a_trusted_proxy_names_the_client() {
    assert_eq!(through_proxy("127.0.0.0/8").await, (CLIENT.to_string(), true, false));
}

#[tokio::test]
async fn forwarding_headers_from_anyone_else_are_ignored() {
    assert_eq!(through_proxy("10.0.0.0/8").await, ("127.0.0.1".to_string(), false, true));
}
