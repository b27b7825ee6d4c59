//! http-post against the real broker: what the client sends is what lands in Kafka.

mod common;

use common::*;
use rdkafka::message::Headers as _;
use rdkafka::Message as _;
use serde_json::json;
use std::collections::HashMap;

#[tokio::test]
async fn a_post_becomes_one_record_with_the_body_as_value() {
    let topic = unique("post");
    create_topic(&topic, 1).await;
    let gateway = TestGateway::start(&ApiSpec::new(&topic)).await;

    let response = gateway.post("hello").await;
    assert_eq!(response.status(), 202);
    assert_eq!(response.text().await.unwrap(), "");

    let records = read_records(&topic, 1);
    assert_eq!(records.len(), 1);
    assert_eq!(payload(&records[0]), "hello");
    assert!(records[0].key().is_none());
    gateway.stop().await;
}

#[tokio::test]
async fn request_headers_become_record_headers_when_configured() {
    let topic = unique("post-headers");
    create_topic(&topic, 1).await;
    let mut spec = ApiSpec::new(&topic);
    spec.http_post = json!({"requestHeadersToMessage": true});
    let gateway = TestGateway::start(&spec).await;

    let response = gateway
        .http
        .post(gateway.url())
        .header("X-Test-Header", "header-value")
        .header("X-Multi", "one")
        .header("X-Multi", "two")
        .body("with headers")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);

    let records = read_records(&topic, 1);
    let headers = records[0].headers().expect("record headers");
    let mut found: HashMap<String, Vec<String>> = HashMap::new();
    for header in headers.iter() {
        found
            .entry(header.key.to_string())
            .or_default()
            .push(String::from_utf8_lossy(header.value.unwrap()).into_owned());
    }
    assert_eq!(found["x-test-header"], vec!["header-value"]);
    assert_eq!(found["x-multi"], vec!["one", "two"]);
    gateway.stop().await;
}

#[tokio::test]
async fn headers_stay_out_of_the_record_by_default() {
    let topic = unique("post-noheaders");
    create_topic(&topic, 1).await;
    let gateway = TestGateway::start(&ApiSpec::new(&topic)).await;
    let response = gateway.http.post(gateway.url()).header("X-Test-Header", "v").body("x").send().await.unwrap();
    assert_eq!(response.status(), 202);
    let records = read_records(&topic, 1);
    assert_eq!(records[0].headers().map_or(0, |h| h.count()), 0);
    gateway.stop().await;
}

#[tokio::test]
async fn the_trace_context_goes_into_the_record_and_comes_back_on_http_get_items() {
    let topic = unique("post-trace");
    create_topic(&topic, 1).await;
    let gateway = TestGateway::start(&ApiSpec::new(&topic)).await;
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let response = gateway
        .http
        .post(gateway.url())
        .header("traceparent", traceparent)
        .header("tracestate", "vendor=abc")
        .header("X-Other", "not carried")
        .body("traced")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let records = read_records(&topic, 1);
    let headers = headers(&records[0]);
    let expected = [("traceparent", traceparent), ("tracestate", "vendor=abc")];
    assert_eq!(headers, expected.map(|(k, v)| (k.to_string(), v.to_string())));

    // headersInPayload is off: an item shows its trace context, and only that.
    let page = gateway.get_json(&unique("reader"), "").await;
    assert_eq!(page["items"][0]["content"], "traced", "{page}");
    assert_eq!(page["items"][0]["headers"], json!({"traceparent": [traceparent], "tracestate": ["vendor=abc"]}));
    gateway.stop().await;
}

#[tokio::test]
async fn one_record_is_produced_to_each_configured_topic() {
    let first = unique("fanout-a");
    let second = unique("fanout-b");
    create_topic(&first, 1).await;
    create_topic(&second, 1).await;
    let mut spec = ApiSpec::new(&first);
    spec.producer_topics = vec![first.clone(), second.clone()];
    let gateway = TestGateway::start(&spec).await;

    assert_eq!(gateway.post("fan-out").await.status(), 202);
    for topic in [&first, &second] {
        let records = read_records(topic, 1);
        assert_eq!(records.len(), 1, "one record in {topic}");
        assert_eq!(payload(&records[0]), "fan-out");
    }
    gateway.stop().await;
}

#[tokio::test]
async fn every_compression_type_produces_readable_records() {
    for compression in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = unique(&format!("compressed-{compression}"));
        create_topic(&topic, 1).await;
        let mut spec = ApiSpec::new(&topic);
        spec.producer_extra = json!({"compressionType": compression});
        let gateway = TestGateway::start(&spec).await;
        let body = "compressible ".repeat(100);
        assert_eq!(gateway.post(&body).await.status(), 202, "{compression}");
        let records = read_records(&topic, 1);
        assert_eq!(payload(&records[0]), body, "{compression}");
        gateway.stop().await;
    }
}

#[tokio::test]
async fn an_unreachable_broker_answers_503_with_the_failure_key() {
    let topic = unique("unreachable");
    let mut spec = ApiSpec::new(&topic);
    // Nothing listens on port 1 of loopback.
    spec.bootstrap = "127.0.0.1:1".into();
    let gateway = TestGateway::start(&spec).await;
    let response = gateway.post("lost?").await;
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["key"], "FAILURE_ENDPOINT_CONFIGURATION_INVALID");
    assert_eq!(body["http_status_code"], 503);
    assert!(body["message"].as_str().unwrap().starts_with("Endpoint configuration invalid"));
    gateway.stop().await;
}

#[tokio::test]
async fn an_unresolvable_bootstrap_host_answers_503() {
    let mut spec = ApiSpec::new(&unique("unresolvable"));
    spec.bootstrap = "kafka-edge-no-such-host.invalid:9092".into();
    let gateway = TestGateway::start(&spec).await;
    let response = gateway.post("x").await;
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["key"], "FAILURE_ENDPOINT_CONFIGURATION_INVALID");
    gateway.stop().await;
}
