//! `--group-protocol` on brokers other than the test bed's (which speaks both protocols): `auto`
//! learns that a broker speaks only the classic protocol and serves every request with it, on a
//! private broker of this test binary's own.

mod common;

use common::*;
use kafka_edge_endpoint_kafka::{ConsumerOptions, GroupProtocol};
use serde_json::json;

#[tokio::test]
async fn auto_falls_back_to_the_classic_protocol_on_a_broker_without_the_consumer_protocol() {
    let broker = tokio::task::spawn_blocking(|| PrivateBroker::start("group.coordinator.rebalance.protocols=classic"))
        .await
        .expect("private broker");
    let topic = unique("classic-only");
    let mut spec = ApiSpec::new(&topic);
    spec.bootstrap = broker.bootstrap().to_string();
    spec.http_get_qos = "at-least-once";
    // A window long enough for a loaded machine: learning the protocol, then a classic join.
    spec.http_get = json!({"messagesLimitCount": 10, "messagesLimitDurationMs": 15000});
    let consumers = ConsumerOptions { group_protocol: GroupProtocol::Auto, ..Default::default() };
    let gateway = TestGateway::start_with_consumers(&spec, consumers).await;
    // The broker creates the topic on the first produce.
    for value in ["one", "two"] {
        assert_eq!(gateway.post(value).await.status(), 202);
    }
    let client = unique("client");
    let first = gateway.get_json(&client, "?limit=1").await;
    assert_eq!(contents(&first), ["one"], "the first GET, which learns the protocol, is served: {first}");
    let second = gateway.get_json(&client, "?limit=1").await;
    assert_eq!(contents(&second), ["two"], "then the classic protocol serves, warm: {second}");
    gateway.stop().await;
    drop(broker);
}

#[tokio::test]
async fn the_consumer_protocol_on_a_broker_without_it_is_a_clear_error() {
    let broker = tokio::task::spawn_blocking(|| PrivateBroker::start("group.coordinator.rebalance.protocols=classic"))
        .await
        .expect("private broker");
    let topic = unique("classic-only");
    let mut spec = ApiSpec::new(&topic);
    spec.bootstrap = broker.bootstrap().to_string();
    spec.http_get = json!({"messagesLimitCount": 10, "messagesLimitDurationMs": 5000});
    let consumers = ConsumerOptions { group_protocol: GroupProtocol::Consumer, ..Default::default() };
    let gateway = TestGateway::start_with_consumers(&spec, consumers).await;
    assert_eq!(gateway.post("one").await.status(), 202);
    let page = gateway.get_json(&unique("client"), "").await;
    assert_eq!(page["items"], json!([]), "{page}");
    assert_eq!(page["error"]["metadata"]["key"], "FAILURE_ENDPOINT_CONFIGURATION_INVALID", "{page}");
    let reason = page["error"]["content"].as_str().unwrap_or_default();
    assert!(
        reason.contains("does not support the consumer group protocol")
            && reason.contains("--group-protocol auto or classic"),
        "{page}"
    );
    gateway.stop().await;
    drop(broker);
}
