//! `--max-message-bytes` as a client meets it: one limit for an http-post body and what the
//! producers take, and a 413 that names whichever limit applied, the gateway's or the cluster's.

mod common;

use common::*;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use std::time::Duration;

const LIMIT: usize = 2 * 1024 * 1024;

/// A topic whose own limit (4 MiB) is above the broker's default (about 1 MB).
async fn create_topic_taking_4_mib(name: &str) {
    let admin: AdminClient<DefaultClientContext> = client_config().create().expect("admin client");
    let topic = NewTopic::new(name, 1, TopicReplication::Fixed(1)).set("max.message.bytes", "4194304");
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(15)));
    for result in admin.create_topics(&[topic], &options).await.expect("create topic request") {
        result.expect("topic created");
    }
}

async fn post(gateway: &TestGateway, bytes: usize) -> (u16, String) {
    let response = gateway.http.post(gateway.url()).body(vec![b'x'; bytes]).send().await.expect("POST");
    (response.status().as_u16(), response.text().await.unwrap_or_default())
}

#[tokio::test]
async fn records_up_to_the_limit_reach_a_topic_that_takes_them() {
    let topic = unique("big-records");
    create_topic_taking_4_mib(&topic).await;
    let spec = ApiSpec::new(&topic);
    let gateway = TestGateway::start_limited(spec.to_json(), &spec.path, LIMIT).await;
    // 1.5 MB: over librdkafka's default message.max.bytes (1 000 000), within the gateway's limit.
    let (status, body) = post(&gateway, 1_500_000).await;
    assert_eq!(status, 202, "{body}");
    let records = read_records(&topic, 1);
    assert_eq!(records.first().map(|r| rdkafka::Message::payload(r).map_or(0, <[u8]>::len)), Some(1_500_000));

    let (status, body) = post(&gateway, LIMIT + 1).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains(&LIMIT.to_string()) && body.contains("--max-message-bytes"), "{body}");
    assert_eq!(record_count(&topic), 1, "nothing over the limit was produced");
    gateway.stop().await;
}

#[tokio::test]
async fn a_record_the_cluster_refuses_gets_a_413_naming_the_cluster_limit() {
    let topic = unique("broker-limit");
    create_topic(&topic, 1).await;
    let spec = ApiSpec::new(&topic);
    let gateway = TestGateway::start_limited(spec.to_json(), &spec.path, LIMIT).await;
    // Within the gateway's limit, over the broker's default message.max.bytes (1 048 588).
    let (status, body) = post(&gateway, 1_500_000).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("message.max.bytes") && body.contains("FAILURE_ENDPOINT_MESSAGE_TOO_LARGE"), "{body}");
    assert_eq!(record_count(&topic), 0);
    gateway.stop().await;
}
