//! http-post's batch format on the real broker, with the exact bodies Strimzi bridge and
//! Confluent REST Proxy v2 clients send: one record per element, each through the publish flow,
//! and the bridge's `{"offsets":[...]}` answer in element order.

mod common;

use common::*;
use rdkafka::message::Message as _;
use serde_json::{json, Value};

const JSON: &str = "application/vnd.kafka.json.v2+json";
const BINARY: &str = "application/vnd.kafka.binary.v2+json";

async fn post_batch(gateway: &TestGateway, content_type: &str, body: &str) -> (u16, String, Value) {
    let response = gateway
        .http
        .post(gateway.url())
        .header("Content-Type", content_type)
        .body(body.to_string())
        .send()
        .await
        .expect("POST");
    let status = response.status().as_u16();
    let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap_or_default().to_string());
    let body = response.json().await.expect("JSON answer");
    (status, content_type.unwrap_or_default(), body)
}

async fn gateway_on(partitions: i32) -> (String, TestGateway) {
    let topic = unique("batch");
    create_topic(&topic, partitions).await;
    (topic.clone(), TestGateway::start(&ApiSpec::new(&topic)).await)
}

#[tokio::test]
async fn a_bridge_json_record_with_headers_is_written_as_the_bridge_writes_it() {
    let (topic, gateway) = gateway_on(2).await;
    let body = r#"{"records":[{"value":"message-value","headers":[{"key":"key1","value":"dmFsdWUx"},{"key":"key2","value":"dmFsdWUy"},{"key":"key2","value":"dmFsdWUy"}]}]}"#;
    let (status, content_type, answer) = post_batch(&gateway, JSON, body).await;
    assert_eq!((status, content_type.as_str()), (200, "application/vnd.kafka.v2+json"), "{answer}");
    let offsets = answer["offsets"].as_array().expect("offsets");
    assert_eq!(offsets.len(), 1);
    assert_eq!(offsets[0]["offset"], 0);
    let records = read_records(&topic, 1);
    let record = &records[0];
    assert_eq!(Some(record.partition()), offsets[0]["partition"].as_i64().map(|p| p as i32));
    // The JSON format writes the value's JSON text: the quotes are part of the record.
    assert_eq!(record.payload(), Some(br#""message-value""#.as_slice()));
    let headers = headers(record);
    let expected = [("key1", "value1"), ("key2", "value2"), ("key2", "value2")];
    assert_eq!(headers, expected.map(|(k, v)| (k.to_string(), v.to_string())));
    gateway.stop().await;
}

#[tokio::test]
async fn partitions_are_honoured_and_a_missing_one_fails_only_its_element() {
    let (topic, gateway) = gateway_on(3).await;
    let body = r#"{"records":[{"value":"Hi, This is kafka bridge","partition":1},{"value":"Hi, This is kafka bridgeinvalid","partition":500}]}"#;
    let (status, _, answer) = post_batch(&gateway, JSON, body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["offsets"][0], json!({"partition": 1, "offset": 0}));
    assert_eq!(answer["offsets"][1]["error_code"], 400, "{answer}");
    assert!(answer["offsets"][1]["message"].as_str().is_some_and(|m| m.contains("partition")), "{answer}");
    assert_eq!(record_count(&topic), 1);
    gateway.stop().await;
}

#[tokio::test]
async fn binary_keys_and_values_are_decoded_and_a_rest_proxy_json_value_is_its_json_text() {
    let (topic, gateway) = gateway_on(1).await;
    let (status, _, answer) =
        post_batch(&gateway, BINARY, r#"{"records":[{"value":"bWVzc2FnZS12YWx1ZQ==","key":"bXkta2V5LWJpbg=="}]}"#)
            .await;
    assert_eq!(status, 200, "{answer}");
    let (status, _, answer) = post_batch(&gateway, JSON, r#"{"records":[{"value":{"name":"testUser"}}]}"#).await;
    assert_eq!((status, &answer["offsets"][0]), (200, &json!({"partition": 0, "offset": 1})), "{answer}");
    let records = read_records(&topic, 2);
    assert_eq!(records[0].key(), Some(b"my-key-bin".as_slice()));
    assert_eq!(records[0].payload(), Some(b"message-value".as_slice()));
    assert_eq!(records[1].payload(), Some(br#"{"name":"testUser"}"#.as_slice()));
    gateway.stop().await;
}

#[tokio::test]
async fn a_hundred_records_land_in_body_order_with_their_timestamps() {
    let (topic, gateway) = gateway_on(1).await;
    let timestamp = 1_700_000_000_000_i64;
    let records: Vec<Value> =
        (0..100).map(|i| json!({"key": format!("k{}", i % 7), "value": i, "timestamp": timestamp + i})).collect();
    let (status, _, answer) = post_batch(&gateway, JSON, &json!({ "records": records }).to_string()).await;
    assert_eq!(status, 200, "{answer}");
    let offsets: Vec<i64> =
        answer["offsets"].as_array().expect("offsets").iter().map(|o| o["offset"].as_i64().expect("offset")).collect();
    assert_eq!(offsets, (0..100).collect::<Vec<i64>>(), "one entry per element, in order");
    let stored = read_records(&topic, 100);
    let values: Vec<String> = stored.iter().map(payload).collect();
    assert_eq!(values, (0..100).map(|i| i.to_string()).collect::<Vec<_>>());
    assert_eq!(stored[42].timestamp().to_millis(), Some(timestamp + 42));
    gateway.stop().await;
}

#[tokio::test]
async fn each_element_goes_through_the_publish_flow_and_an_interrupted_one_is_reported() {
    let topic = unique("batch-flow");
    create_topic(&topic, 1).await;
    let mut spec = ApiSpec::new(&topic);
    spec.flows = json!([{"name": "no secrets", "publish": [{
        "policy": "interrupt", "condition": "{#message.content.contains('secret')}",
        "configuration": {"status": 422, "message": "no secrets here"}}]}]);
    let gateway = TestGateway::start(&spec).await;
    let body = r#"{"records":[{"value":"public"},{"value":"a secret"},{"value":"public too"}]}"#;
    let (status, _, answer) = post_batch(&gateway, JSON, body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["offsets"][0], json!({"partition": 0, "offset": 0}));
    assert_eq!(answer["offsets"][1], json!({"error_code": 422, "message": "no secrets here"}));
    assert_eq!(answer["offsets"][2], json!({"partition": 0, "offset": 1}));
    assert_eq!(read_records(&topic, 2).iter().map(payload).collect::<Vec<_>>(), [r#""public""#, r#""public too""#]);
    gateway.stop().await;
}

#[tokio::test]
async fn a_body_that_is_not_a_batch_is_a_400_naming_the_element_and_publishes_nothing() {
    let (topic, gateway) = gateway_on(1).await;
    let body = r#"{"records":[{"value":"ok"},{"value":"also ok","partiton":0}]}"#;
    let (status, _, answer) = post_batch(&gateway, JSON, body).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error_code"], 400);
    let message = answer["message"].as_str().unwrap_or_default();
    assert!(message.contains("records[1]") && message.contains("partiton"), "{answer}");
    let (status, _, answer) = post_batch(&gateway, BINARY, r#"{"records":[{"value":"not base64!"}]}"#).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer["message"].as_str().is_some_and(|m| m.contains("records[0].value: not base64")), "{answer}");
    assert_eq!(record_count(&topic), 0);
    gateway.stop().await;
}
