//! http-get consumers kept warm between a client's requests (DESIGN 4.4), against the real
//! broker: a returning client is served by the same group member, pages neither skip nor repeat
//! what the parked consumer had fetched ahead, the consumer leaves after its window, and a fleet
//! behind a round-robin balancer strands nothing in another gateway's parked consumer.

mod common;

use common::*;
use kafka_edge_endpoint_kafka::ConsumerOptions;
use serde_json::json;
use std::collections::HashSet;
use std::time::Duration;

fn keeping_warm_for(window: Duration) -> ConsumerOptions {
    ConsumerOptions { keep_warm_for: window, ..Default::default() }
}

async fn topic_of(partitions: i32, count: usize) -> (String, Vec<String>) {
    let topic = unique("warm");
    create_topic(&topic, partitions).await;
    let values: Vec<String> = (0..count).map(|n| format!("v{n}")).collect();
    let keys: Vec<String> = (0..count).map(|n| format!("key-{n}")).collect();
    let records: Vec<(Option<&str>, &str)> =
        keys.iter().zip(&values).map(|(k, v)| (Some(k.as_str()), v.as_str())).collect();
    produce(&topic, &records).await;
    (topic, values)
}

fn spec_for(topic: &str, qos: &'static str) -> ApiSpec {
    let mut spec = ApiSpec::new(topic);
    spec.http_get_qos = qos;
    spec.http_get = json!({"messagesLimitCount": 100, "messagesLimitDurationMs": 1500});
    spec
}

#[tokio::test]
async fn a_returning_client_is_served_by_the_same_member_which_leaves_after_the_window() {
    const WINDOW: Duration = Duration::from_secs(2);
    let (topic, _) = topic_of(1, 3).await;
    let gateway = TestGateway::start_with_consumers(&spec_for(&topic, "at-least-once"), keeping_warm_for(WINDOW)).await;
    let client = unique("returning");
    let group = gateway.group_of(&client);

    assert_eq!(contents(&gateway.get_json(&client, "?limit=1").await), ["v0"]);
    let member = group_member_clients(&group);
    assert_eq!(member.len(), 1, "the consumer stays in {group} after the response");
    assert_eq!(contents(&gateway.get_json(&client, "?limit=1").await), ["v1"]);
    assert_eq!(group_member_clients(&group), member, "the second GET was served by the same member");

    assert!(
        eventually_within(WINDOW + Duration::from_secs(3), || group_members(&group) == 0).await,
        "the parked consumer left {group} after its window"
    );
    assert_eq!(contents(&gateway.get_json(&client, "").await), ["v2"], "a new consumer continues from the commit");
    gateway.stop().await;
}

#[tokio::test]
async fn pages_neither_skip_nor_repeat_what_the_parked_consumer_had_fetched_ahead() {
    for qos in ["at-least-once", "at-most-once", "auto"] {
        let (topic, values) = topic_of(1, 60).await;
        let gateway =
            TestGateway::start_with_consumers(&spec_for(&topic, qos), keeping_warm_for(Duration::from_secs(30))).await;
        let client = unique("pages");
        let mut received = Vec::new();
        // Pages of 7 from a consumer that fetches far more than 7 at a time.
        for _ in 0..20 {
            let page = contents(&gateway.get_json(&client, "?limit=7").await);
            assert!(page.len() <= 7, "{qos}: a page holds at most its limit");
            received.extend(page);
            if received.len() >= values.len() {
                break;
            }
        }
        assert_eq!(received, values, "{qos}: every message once, in order");
        assert_eq!(group_members(&gateway.group_of(&client)), 1, "{qos}: one warm member served every page");
        gateway.stop().await;
    }
}

#[tokio::test]
async fn disabled_the_consumer_leaves_its_group_when_the_response_is_sent() {
    let (topic, _) = topic_of(1, 1).await;
    let gateway =
        TestGateway::start_with_consumers(&spec_for(&topic, "at-least-once"), keeping_warm_for(Duration::ZERO)).await;
    let client = unique("cold");
    let group = gateway.group_of(&client);
    assert_eq!(contents(&gateway.get_json(&client, "").await), ["v0"]);
    assert!(
        eventually_within(Duration::from_secs(1), || group_members(&group) == 0).await,
        "with --http-get-keep-warm 0 the consumer left {group} within a second"
    );
    gateway.stop().await;
}

#[tokio::test]
async fn an_empty_page_then_a_new_record_reaches_the_warm_consumer() {
    let topic = unique("warm-empty");
    create_topic(&topic, 2).await;
    let mut spec = spec_for(&topic, "at-least-once");
    spec.consumer_extra = json!({"autoOffsetReset": "latest"});
    spec.http_get = json!({"messagesLimitCount": 1, "messagesLimitDurationMs": 1000});
    let gateway = TestGateway::start_with_consumers(&spec, keeping_warm_for(Duration::from_secs(30))).await;
    let client = unique("empty");
    assert_eq!(contents(&gateway.get_json(&client, "").await), Vec::<String>::new(), "nothing yet");
    produce(&topic, &[(Some("k"), "after the empty page")]).await;
    let mut received = Vec::new();
    for _ in 0..5 {
        received.extend(contents(&gateway.get_json(&client, "").await));
        if !received.is_empty() {
            break;
        }
    }
    assert_eq!(received, ["after the empty page"], "produced while the consumer was parked, delivered once");
    gateway.stop().await;
}

#[tokio::test]
async fn a_fleet_behind_a_round_robin_balancer_delivers_every_message_once() {
    let (topic, first_batch) = topic_of(3, 30).await;
    let spec = spec_for(&topic, "at-most-once");
    // Long windows: a parked consumer that kept its partitions would hold them for the whole test.
    let window = keeping_warm_for(Duration::from_secs(60));
    let fleet = [
        TestGateway::start_with_consumers(&spec, window.clone()).await,
        TestGateway::start_with_consumers(&spec, window).await,
    ];
    let client = unique("fleet");
    let mut received = Vec::new();
    let mut last = 0;
    for round in 0..4 {
        last = round % 2;
        received.extend(contents(&fleet[last].get_json(&client, "?limit=10").await));
    }

    // From now on the balancer only sends the client to the gateway that did not answer last:
    // the other gateway's parked consumer must not keep any partition from it.
    let second_batch: Vec<String> = (30..60).map(|n| format!("v{n}")).collect();
    let keys: Vec<String> = (30..60).map(|n| format!("key-{n}")).collect();
    let records: Vec<(Option<&str>, &str)> =
        keys.iter().zip(&second_batch).map(|(k, v)| (Some(k.as_str()), v.as_str())).collect();
    produce(&topic, &records).await;
    let expected: HashSet<String> = first_batch.iter().chain(&second_batch).cloned().collect();
    let other = &fleet[1 - last];
    for _ in 0..6 {
        received.extend(contents(&other.get_json(&client, "").await));
        if received.len() >= expected.len() {
            break;
        }
    }
    let distinct: HashSet<String> = received.iter().cloned().collect();
    assert_eq!(distinct.len(), received.len(), "at-most-once never repeats a message");
    assert_eq!(distinct, expected, "every message reached the client through one gateway");
    for gateway in fleet {
        gateway.stop().await;
    }
}
