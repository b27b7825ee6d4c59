//! Flows, policies and dynamic configuration against the real broker (issue 5's list).

mod common;

use common::*;
use rdkafka::Message as _;
use serde_json::{json, Value};
use std::collections::HashMap;

fn flow(phase: &str, steps: Value) -> Value {
    let mut flow = json!({"name": "f", "enabled": true, "selectors": [{"type": "http", "path": "/", "pathOperator": "STARTS_WITH"}],
        "request": [], "response": [], "publish": [], "subscribe": []});
    flow[phase] = steps;
    flow
}

fn assign(name: &str, value: &str) -> Value {
    json!({"name": "Assign", "enabled": true, "policy": "assign-attributes",
        "configuration": {"scope": "REQUEST", "attributes": [{"name": name, "value": value}]}})
}

fn record_headers(record: &rdkafka::message::OwnedMessage) -> HashMap<String, String> {
    headers(record).into_iter().collect()
}

#[tokio::test]
async fn transform_headers_writes_message_content_and_headers_into_record_headers() {
    let topic = unique("flow-headers");
    create_topic(&topic, 1).await;
    let mut spec = ApiSpec::new(&topic);
    spec.http_post = json!({"requestHeadersToMessage": true});
    spec.flows = json!([flow(
        "publish",
        json!([{"name": "T", "enabled": true, "policy": "transform-headers", "configuration": {
        "scope": "REQUEST",
        "addHeaders": [{"name": "X-Content", "value": "{#message.content}"}, {"name": "X-Copy", "value": "{#message.headers['x'][0]}"}],
        "removeHeaders": ["x-drop"]}}])
    )]);
    let gateway = TestGateway::start(&spec).await;
    let response = gateway
        .http
        .post(gateway.url())
        .header("X", "from-header")
        .header("X-Drop", "secret")
        .body("the body")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let headers = record_headers(&read_records(&topic, 1)[0]);
    assert_eq!(headers["X-Content"], "the body");
    assert_eq!(headers["X-Copy"], "from-header");
    assert!(!headers.contains_key("x-drop"));
    gateway.stop().await;
}

#[tokio::test]
async fn topics_follow_request_headers_and_the_message_level_wins() {
    let (configured, by_request, by_message) = (unique("configured"), unique("by-request"), unique("by-message"));
    for topic in [&configured, &by_request, &by_message] {
        create_topic(topic, 1).await;
    }
    let mut spec = ApiSpec::new(&configured);
    let mut request_step = assign("gravitee.attribute.kafka.producer.topics", "{#request.headers['X-Topic'][0]}");
    request_step["condition"] = json!("{#request.headers['X-Topic'] != null}");
    let mut message_step =
        assign("gravitee.attribute.kafka.producer.topics", "{#request.headers['X-Message-Topic'][0]}");
    message_step["condition"] = json!("{#request.headers['X-Message-Topic'] != null}");
    let mut consume_step = assign("gravitee.attribute.kafka.consumer.topics", "{#request.headers['X-Topic'][0]}");
    consume_step["condition"] = json!("{#request.method == 'GET' && #request.headers['X-Topic'] != null}");
    let mut both = flow("request", json!([request_step, consume_step]));
    both["publish"] = json!([message_step]);
    spec.flows = json!([both]);
    let gateway = TestGateway::start(&spec).await;

    let send = |headers: Vec<(&'static str, String)>, body: &'static str| {
        let mut request = gateway.http.post(gateway.url()).body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.send()
    };
    assert_eq!(send(vec![("X-Topic", by_request.clone())], "request-level").await.unwrap().status(), 202);
    assert_eq!(
        send(vec![("X-Topic", by_request.clone()), ("X-Message-Topic", by_message.clone())], "message-level")
            .await
            .unwrap()
            .status(),
        202
    );
    assert_eq!(payload(&read_records(&by_request, 1)[0]), "request-level");
    assert_eq!(payload(&read_records(&by_message, 1)[0]), "message-level");
    assert_eq!(record_count(&by_request), 1, "the message level won for the second POST");
    assert_eq!(record_count(&configured), 0);

    // Consuming: the request header picks the topic too.
    let body: Value = gateway
        .http
        .get(format!("{}?limit=2", gateway.url()))
        .header("Accept", "application/json")
        .header("X-Gravitee-Client-Identifier", unique("c"))
        .header("X-Topic", &by_message)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(contents(&body), ["message-level"]);
    gateway.stop().await;
}

#[tokio::test]
async fn auto_offset_reset_from_a_request_header_and_a_bad_value_is_a_500() {
    let topic = unique("flow-reset");
    create_topic(&topic, 1).await;
    produce(&topic, &[(None, "old")]).await;
    let mut spec = ApiSpec::new(&topic);
    spec.consumer_extra = json!({"autoOffsetReset": "{#request.headers['autoOffsetReset'][0]}"});
    spec.http_get = json!({"messagesLimitCount": 1, "messagesLimitDurationMs": 3000});
    let gateway = TestGateway::start(&spec).await;
    let get = |value: &'static str| {
        gateway
            .http
            .get(gateway.url())
            .header("Accept", "application/json")
            .header("X-Gravitee-Client-Identifier", unique("c"))
            .header("autoOffsetReset", value)
            .send()
    };
    let earliest: Value = get("earliest").await.unwrap().json().await.unwrap();
    assert_eq!(contents(&earliest), ["old"]);
    let invalid = get("constraint_violation").await.unwrap();
    assert_eq!(invalid.status(), 500);
    let body: Value = invalid.json().await.unwrap();
    assert_eq!(body, json!({"message": "Invalid configuration", "http_status_code": 500}));
    gateway.stop().await;
}

#[tokio::test]
async fn the_group_id_can_come_from_a_request_header() {
    let topic = unique("flow-group");
    create_topic(&topic, 1).await;
    let mut spec = ApiSpec::new(&topic);
    spec.http_get = json!({"messagesLimitCount": 10, "messagesLimitDurationMs": 3000});
    spec.flows = json!([flow(
        "request",
        json!([assign("gravitee.attribute.kafka.groupId", "{#request.headers['X-Group'][0]}")])
    )]);
    let gateway = TestGateway::start(&spec).await;
    let group = unique("header-group");
    let request = gateway.http.get(gateway.url()).header("Accept", "application/json").header("X-Group", &group).send();
    let watcher = async { assert!(eventually(|| group_members(&group) == 1).await, "a member of {group}") };
    let (response, ()) = tokio::join!(request, watcher);
    assert_eq!(response.unwrap().status(), 200);
    gateway.stop().await;
}

#[tokio::test]
async fn a_record_key_from_a_header_decides_the_partition() {
    let topic = unique("flow-key");
    create_topic(&topic, 4).await;
    let mut spec = ApiSpec::new(&topic);
    spec.flows = json!([flow(
        "publish",
        json!([assign("gravitee.attribute.kafka.recordKey", "{#request.headers['X-Key'][0]}")])
    )]);
    let gateway = TestGateway::start(&spec).await;
    for (key, body) in [("alpha", "1"), ("beta", "2"), ("alpha", "3"), ("beta", "4")] {
        let response = gateway.http.post(gateway.url()).header("X-Key", key).body(body).send().await.unwrap();
        assert_eq!(response.status(), 202);
    }
    let records = read_records(&topic, 4);
    let mut partition_of: HashMap<String, i32> = HashMap::new();
    for record in &records {
        let key = String::from_utf8_lossy(record.key().expect("keyed record")).into_owned();
        let partition = *partition_of.entry(key.clone()).or_insert(record.partition());
        assert_eq!(partition, record.partition(), "every record of key {key} on one partition");
    }
    assert_eq!(partition_of.len(), 2);
    gateway.stop().await;
}

#[tokio::test]
async fn message_filtering_by_record_key() {
    let topic = unique("flow-filter");
    create_topic(&topic, 1).await;
    produce(&topic, &[(Some("keep"), "a"), (Some("drop"), "b"), (Some("keep"), "c")]).await;
    let mut spec = ApiSpec::new(&topic);
    spec.http_get = json!({"messagesLimitCount": 2, "messagesLimitDurationMs": 3000});
    spec.flows = json!([flow(
        "subscribe",
        json!([{"name": "Filter", "enabled": true, "policy": "message-filtering",
        "configuration": {"filter": "{#message.metadata.key == 'keep'}"}}])
    )]);
    let gateway = TestGateway::start(&spec).await;
    assert_eq!(contents(&gateway.get_json(&unique("c"), "").await), ["a", "c"]);
    gateway.stop().await;
}

#[tokio::test]
async fn an_interrupt_in_the_publish_phase_answers_its_status_and_message() {
    let topic = unique("flow-interrupt");
    create_topic(&topic, 1).await;
    let mut spec = ApiSpec::new(&topic);
    spec.flows = json!([flow(
        "publish",
        json!([
        {"name": "off", "enabled": false, "policy": "interrupt", "configuration": {"status": 500, "message": "disabled steps never run"}},
        {"name": "Stop", "enabled": true, "policy": "interrupt", "condition": "{#message.content == 'stop'}",
         "configuration": {"status": 412, "message": "An error occurred"}}])
    )]);
    let gateway = TestGateway::start(&spec).await;
    let response = gateway.post("stop").await;
    assert_eq!(response.status(), 412);
    assert_eq!(response.text().await.unwrap(), "An error occurred");
    assert_eq!(gateway.post("go").await.status(), 202);
    assert_eq!(payload(&read_records(&topic, 1)[0]), "go");
    assert_eq!(record_count(&topic), 1);
    gateway.stop().await;
}

#[tokio::test]
async fn a_pattern_subscription_picks_up_a_topic_created_while_connected() {
    let prefix = unique("pattern");
    let existing = format!("{prefix}-a");
    create_topic(&existing, 1).await;
    let mut spec = ApiSpec::new(&existing);
    spec.consumer_topics = vec![];
    spec.consumer_extra = json!({"autoOffsetReset": "earliest", "topicPattern": format!("{prefix}-.*")});
    let gateway = TestGateway::start(&spec).await;
    let client = unique("c");
    let mut response = gateway
        .http
        .get(gateway.url())
        .header("Accept", "text/event-stream")
        .header("X-Gravitee-Client-Identifier", &client)
        .send()
        .await
        .unwrap();
    assert!(eventually(|| group_members(&gateway.group_of(&client)) == 1).await, "subscribed");
    let later = format!("{prefix}-b");
    create_topic(&later, 1).await;
    produce(&later, &[(None, "from the new topic")]).await;
    let mut text = String::new();
    let arrived = tokio::time::timeout(TIMEOUT, async {
        while !text.contains("data: from the new topic") {
            match response.chunk().await.unwrap() {
                Some(chunk) => text.push_str(&String::from_utf8_lossy(&chunk)),
                None => break,
            }
        }
    })
    .await;
    assert!(arrived.is_ok() && text.contains("data: from the new topic"), "{text:?}");
    gateway.stop().await;
}

#[tokio::test]
async fn check_topic_existence_fails_a_missing_topic() {
    let missing = unique("missing");
    let mut spec = ApiSpec::new(&missing);
    spec.consumer_extra = json!({"autoOffsetReset": "earliest", "checkTopicExistence": true});
    let gateway = TestGateway::start(&spec).await;
    let body = gateway.get_json(&unique("c"), "").await;
    assert_eq!(body["error"]["metadata"]["key"], "FAILURE_ENDPOINT_CONFIGURATION_INVALID");
    assert_eq!(body["error"]["content"], format!("Endpoint configuration invalid: topic `{missing}` does not exist"));
    gateway.stop().await;
}

#[tokio::test]
async fn the_response_phase_sets_headers_and_a_request_interrupt_answers_json() {
    let topic = unique("flow-response");
    create_topic(&topic, 1).await;
    let mut spec = ApiSpec::new(&topic);
    let mut both = flow(
        "response",
        json!([{"name": "H", "enabled": true, "policy": "transform-headers",
        "configuration": {"addHeaders": [{"name": "X-Api", "value": "{#api.name}-{#request.method}"}]}}]),
    );
    both["request"] = json!([{"name": "Closed", "enabled": true, "policy": "interrupt", "condition": "{#request.params['closed'] != null}",
        "configuration": {"status": 403, "message": "closed for {#request.params['closed'][0]}"}}]);
    spec.flows = json!([both]);
    let gateway = TestGateway::start(&spec).await;
    let response = gateway.post("x").await;
    assert_eq!(response.status(), 202);
    assert_eq!(response.headers()["x-api"], "test-POST");

    let refused = gateway.http.post(format!("{}?closed=maintenance", gateway.url())).body("x").send().await.unwrap();
    assert_eq!(refused.status(), 403);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body, json!({"message": "closed for maintenance", "http_status_code": 403}));
    gateway.stop().await;
}

#[tokio::test]
async fn a_java_style_pattern_matches_topics_by_their_whole_name() {
    let prefix = unique("java-pattern");
    let (matching, other, longer) = (format!("{prefix}-7"), format!("{prefix}-x"), format!("old-{prefix}-8"));
    for (topic, value) in [(&matching, "digit"), (&other, "letter"), (&longer, "prefixed")] {
        create_topic(topic, 1).await;
        produce(topic, &[(None, value)]).await;
    }
    let mut spec = ApiSpec::new(&matching);
    spec.consumer_topics = vec![];
    // `\d` is Java's (and the regex crate's) digit class; POSIX regcomp, which librdkafka used,
    // has none, so this pattern used to match no topic at all.
    spec.consumer_extra =
        json!({"autoOffsetReset": "earliest", "topicPattern": format!(r"(?i){}-\d", prefix.to_uppercase())});
    let gateway = TestGateway::start(&spec).await;
    let body = gateway.get_json(&unique("c"), "").await;
    assert_eq!(contents(&body), ["digit"], "only the topic whose whole name matches: {body}");
    gateway.stop().await;
}
