//! The Kafka endpoint through its trait, against the real broker: partitioning like the Java
//! client, attribute overrides, and consumer options.

use kafka_edge_definition::{load_str, Endpoint as EndpointDefinition, Format};
use kafka_edge_endpoint_kafka::{
    KafkaClients, KafkaEndpoint, ProducerPool, ATTR_GROUP_ID, ATTR_OVERRIDE_PREFIX, ATTR_PRODUCER_TOPICS,
    ATTR_RECORD_KEY,
};
use kafka_edge_message::{Endpoint, ExecutionContext, Message, Qos, SubscribeOptions};
use kafka_edge_testkit::*;
use rdkafka::Message as _;
use serde_json::json;
use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

fn endpoint_definition(producer_topic: &str, consumer: serde_json::Value) -> EndpointDefinition {
    let definition = json!({
        "id": "endpoint-test", "name": "endpoint-test", "type": "message",
        "listeners": [{"type": "http", "paths": [{"path": "/t"}], "entrypoints": [{"type": "http-post"}]}],
        "endpointGroups": [{"name": "g", "type": "kafka",
            "sharedConfiguration": {"producer": {"enabled": true, "topics": [producer_topic]}, "consumer": consumer},
            "endpoints": [{"name": "e", "type": "kafka", "configuration": {"bootstrapServers": bootstrap()}}]}]
    });
    let loaded = load_str(&definition.to_string(), Format::Json, "test").expect("valid definition");
    loaded.api.primary_endpoint().expect("endpoint").1.clone()
}

fn endpoint(producer_topic: &str) -> KafkaEndpoint {
    KafkaEndpoint::new("endpoint-test", &endpoint_definition(producer_topic, json!({})), clients(ProducerPool::new()))
        .expect("endpoint")
}

fn keyed(key: &str, content: &str) -> Message {
    let mut message = Message::new(content.to_string());
    message.attributes.insert(ATTR_RECORD_KEY.into(), key.into());
    message
}

/// Produces `key|value` lines with Kafka's own Java console producer (default partitioner).
fn produce_with_java(topic: &str, keys: &[String]) {
    let mut child = Command::new(testkit_script())
        .args(["produce", topic, "--property", "parse.key=true", "--property", "key.separator=|"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("java console producer");
    {
        let stdin = child.stdin.as_mut().expect("stdin");
        for key in keys {
            writeln!(stdin, "{key}|java").expect("write");
        }
    }
    drop(child.stdin.take());
    assert!(child.wait().expect("java producer exit").success(), "java console producer failed");
}

fn partitions_by_key(topic: &str, count: usize) -> HashMap<String, i32> {
    read_records(topic, count)
        .iter()
        .map(|r| (String::from_utf8_lossy(r.key().expect("key")).into_owned(), r.partition()))
        .collect()
}

#[tokio::test]
async fn keys_land_on_the_same_partition_as_with_the_java_client() {
    let (ours, java) = (unique("murmur-ours"), unique("murmur-java"));
    create_topic(&ours, 6).await;
    create_topic(&java, 6).await;
    let keys: Vec<String> = (0..40)
        .map(|i| format!("customer-{i}"))
        .chain(["21", "foobar", "a-little-bit-long-string"].map(String::from))
        .collect();

    let endpoint = endpoint(&ours);
    let context = ExecutionContext::default();
    for key in &keys {
        endpoint.publish(&context, keyed(key, "ours")).await.expect("publish");
    }
    produce_with_java(&java, &keys);

    let ours = partitions_by_key(&ours, keys.len());
    let java = partitions_by_key(&java, keys.len());
    assert_eq!(ours.len(), keys.len());
    assert_eq!(ours, java);
    assert!(ours.values().collect::<std::collections::HashSet<_>>().len() > 1, "keys spread over partitions");
}

#[tokio::test]
async fn the_message_key_attribute_wins_over_the_context_attribute() {
    let topic = unique("key-precedence");
    create_topic(&topic, 1).await;
    let endpoint = endpoint(&topic);
    let mut context = ExecutionContext::default();
    context.attributes.insert(ATTR_RECORD_KEY.into(), "from-context".into());
    endpoint.publish(&context, Message::new("a")).await.unwrap();
    endpoint.publish(&context, keyed("from-message", "b")).await.unwrap();
    let keys: Vec<String> =
        read_records(&topic, 2).iter().map(|r| String::from_utf8_lossy(r.key().unwrap()).into_owned()).collect();
    assert_eq!(keys, ["from-context", "from-message"]);
}

#[tokio::test]
async fn the_producer_topics_attribute_overrides_the_configured_topics() {
    let (configured, first, second) = (unique("configured"), unique("override-a"), unique("override-b"));
    for topic in [&configured, &first, &second] {
        create_topic(topic, 1).await;
    }
    let endpoint = endpoint(&configured);
    let mut context = ExecutionContext::default();
    context.attributes.insert(ATTR_PRODUCER_TOPICS.into(), format!("{first}, {second}"));
    endpoint.publish(&context, Message::new("routed")).await.unwrap();
    assert_eq!(read_records(&first, 1).len(), 1);
    assert_eq!(read_records(&second, 1).len(), 1);
    assert_eq!(record_count(&configured), 0, "nothing in the configured topic");
}

#[tokio::test]
async fn equal_configurations_share_one_producer() {
    let topic = unique("shared");
    create_topic(&topic, 1).await;
    let shared = clients(ProducerPool::new());
    let pool = shared.producers.clone();
    let first = KafkaEndpoint::new("a", &endpoint_definition(&topic, json!({})), shared.clone()).expect("endpoint");
    let second = KafkaEndpoint::new("b", &endpoint_definition(&topic, json!({})), shared.clone()).expect("endpoint");
    first.publish(&ExecutionContext::default(), Message::new("1")).await.unwrap();
    second.publish(&ExecutionContext::default(), Message::new("2")).await.unwrap();
    assert_eq!(pool.len(), 1);
}

#[tokio::test]
async fn an_idle_producer_is_closed_and_the_one_in_use_kept() {
    // Long enough that the first producer is not idle yet when the second publish looks up its own.
    const IDLE_TIMEOUT: Duration = Duration::from_millis(500);
    let topic = unique("idle");
    create_topic(&topic, 1).await;
    let shared = clients(ProducerPool::with_idle_timeout(IDLE_TIMEOUT));
    let pool = shared.producers.clone();
    let endpoint = KafkaEndpoint::new("idle", &endpoint_definition(&topic, json!({})), shared).expect("endpoint");
    // The same broker written differently, chosen per request like a client-supplied value would be.
    let port = bootstrap().rsplit_once(':').map(|(_, port)| port.to_string()).expect("host:port");
    let mut written_differently = ExecutionContext::default();
    written_differently
        .attributes
        .insert(format!("{ATTR_OVERRIDE_PREFIX}bootstrapServers"), format!("localhost:{port}"));
    let configured = ExecutionContext::default();

    endpoint.publish(&configured, Message::new("a")).await.expect("publish with the configured servers");
    endpoint.publish(&written_differently, Message::new("b1")).await.expect("publish with the override");
    assert_eq!(pool.len(), 2);

    // Time without use is the condition under test: nothing to await but the clock.
    tokio::time::sleep(IDLE_TIMEOUT).await;
    endpoint.publish(&written_differently, Message::new("b2")).await.expect("publish after the idle timeout");
    assert_eq!(pool.len(), 1, "the producer of the configured servers was closed, the one asked for kept");

    endpoint.publish(&configured, Message::new("a2")).await.expect("a closed configuration publishes again");
    assert_eq!(pool.len(), 2, "a new producer replaced the closed one");
    let mut payloads: Vec<String> = read_records(&topic, 4).iter().map(payload).collect();
    payloads.sort();
    assert_eq!(payloads, ["a", "a2", "b1", "b2"]);
}

#[tokio::test]
async fn the_group_id_attribute_names_the_consumer_group() {
    let topic = unique("group-override");
    create_topic(&topic, 1).await;
    produce(&topic, &[(None, "one")]).await;
    let endpoint = KafkaEndpoint::new(
        "g",
        &endpoint_definition(&topic, json!({"enabled": true, "topics": [topic], "autoOffsetReset": "earliest"})),
        clients(ProducerPool::new()),
    )
    .expect("endpoint");
    let group = unique("chosen-group");
    let mut context = ExecutionContext { client_identifier: unique("client"), ..Default::default() };
    context.attributes.insert(ATTR_GROUP_ID.into(), group.clone());
    let mut subscription =
        endpoint.subscribe(&context, SubscribeOptions { qos: Qos::AtLeastOnce, cursor: None }).await.unwrap();
    let message = subscription.next().await.expect("a message").expect("no failure");
    assert_eq!(&message.content[..], b"one");
    assert_eq!(group_members(&group), 1, "the consumer is a member of {group}");
    assert_eq!(group_members(&context.client_identifier), 0);
    subscription.close().await;
    assert_eq!(group_members(&group), 0);
}

#[tokio::test]
async fn the_confluent_header_is_removed_when_configured() {
    let topic = unique("confluent");
    create_topic(&topic, 1).await;
    // Magic byte 0, schema id 42, then the payload; then a record too short to carry the prefix.
    produce_with_headers(&topic, &[0, 0, 0, 0, 42, b'{', b'}'], &[]).await;
    produce_with_headers(&topic, &[0, 1], &[]).await;
    let endpoint = KafkaEndpoint::new(
        "c",
        &endpoint_definition(
            &topic,
            json!({"enabled": true, "topics": [topic], "autoOffsetReset": "earliest", "removeConfluentHeader": true}),
        ),
        clients(ProducerPool::new()),
    )
    .expect("endpoint");
    let context = ExecutionContext { client_identifier: unique("client"), ..Default::default() };
    let mut subscription = endpoint.subscribe(&context, SubscribeOptions::default()).await.unwrap();
    let first = subscription.next().await.unwrap().unwrap();
    let second = subscription.next().await.unwrap().unwrap();
    assert_eq!(&first.content[..], b"{}");
    assert_eq!(&second.content[..], &[0, 1]);
    subscription.close().await;
}

fn clients(producers: ProducerPool) -> Arc<KafkaClients> {
    Arc::new(KafkaClients::new(Arc::new(producers), Default::default()))
}
