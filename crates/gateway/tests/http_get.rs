//! http-get against the real broker: continuation per client, ids and cursors, body formats,
//! errors, and consumers that are group members while serving (kept warm after: http_get_warm.rs).

mod common;

use base64::Engine as _;
use common::*;
use serde_json::{json, Value};

fn encoded_id(topic: &str, partition: i32, offset: i64) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{topic}@{partition}#{offset}"))
}

async fn topic_with(records: &[&str]) -> String {
    let topic = unique("get");
    create_topic(&topic, 1).await;
    let records: Vec<(Option<&str>, &str)> = records.iter().map(|r| (None, *r)).collect();
    produce(&topic, &records).await;
    topic
}

#[tokio::test]
async fn the_same_client_continues_where_it_stopped_and_another_client_starts_over() {
    let topic = topic_with(&["m1", "m2", "m3"]).await;
    let mut spec = ApiSpec::new(&topic);
    spec.http_get = json!({"messagesLimitCount": 10, "messagesLimitDurationMs": 1500});
    let gateway = TestGateway::start(&spec).await;
    let (alice, bob) = (unique("alice"), unique("bob"));

    assert_eq!(contents(&gateway.get_json(&alice, "?limit=2").await), ["m1", "m2"]);
    assert_eq!(contents(&gateway.get_json(&alice, "?limit=1").await), ["m3"]);
    assert_eq!(contents(&gateway.get_json(&alice, "").await), Vec::<String>::new());
    assert_eq!(contents(&gateway.get_json(&bob, "?limit=3").await), ["m1", "m2", "m3"]);
    gateway.stop().await;
}

#[tokio::test]
async fn auto_qos_gives_no_ids_and_no_pagination() {
    let topic = topic_with(&["plain"]).await;
    let gateway = TestGateway::start(&ApiSpec::new(&topic)).await;
    let body = gateway.get_json(&unique("c"), "?limit=1").await;
    assert_eq!(body, json!({"items": [{"content": "plain"}]}));
    gateway.stop().await;
}

#[tokio::test]
async fn at_least_once_gives_ids_and_a_cursor_that_resumes() {
    let topic = topic_with(&["a", "b", "c"]).await;
    let mut spec = ApiSpec::new(&topic);
    spec.http_get_qos = "at-least-once";
    spec.http_get = json!({"messagesLimitCount": 10, "messagesLimitDurationMs": 1500});
    let gateway = TestGateway::start(&spec).await;

    let body = gateway.get_json(&unique("c"), "?limit=3").await;
    let ids: Vec<&str> = body["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    let expected: Vec<String> = (0..3).map(|offset| encoded_id(&topic, 0, offset)).collect();
    assert_eq!(ids, expected);
    assert_eq!(body["pagination"], json!({"nextCursor": expected[2], "limit": "3"}));

    // A new client resuming after the first message gets the rest.
    let resumed = gateway.get_json(&unique("c"), &format!("?limit=2&cursor={}", expected[0])).await;
    assert_eq!(contents(&resumed), ["b", "c"]);
    assert_eq!(resumed["pagination"]["nextCursor"], expected[2]);

    // Resuming after the last message: nothing new, and the cursor stays where it was.
    let nothing = gateway.get_json(&unique("c"), &format!("?cursor={}", expected[2])).await;
    assert_eq!(contents(&nothing), Vec::<String>::new());
    assert_eq!(nothing["pagination"]["nextCursor"], expected[2]);
    gateway.stop().await;
}

#[tokio::test]
async fn plain_ids_when_encoding_is_off() {
    let topic = topic_with(&["x"]).await;
    let mut spec = ApiSpec::new(&topic);
    spec.http_get_qos = "at-most-once";
    spec.consumer_extra = json!({"autoOffsetReset": "earliest", "encodeMessageId": false});
    let gateway = TestGateway::start(&spec).await;
    let client = unique("c");
    let body = gateway.get_json(&client, "?limit=1").await;
    assert_eq!(body["items"][0]["id"], format!("{topic}@0#0"));
    gateway.stop().await;
}

#[tokio::test]
async fn json_carries_headers_and_metadata_when_configured() {
    let topic = unique("get-meta");
    create_topic(&topic, 1).await;
    produce_with_headers(&topic, b"hello", &[("greeting", "mate"), ("greeting", "again")]).await;
    let mut spec = ApiSpec::new(&topic);
    spec.http_get = json!({"messagesLimitCount": 1, "headersInPayload": true, "metadataInPayload": "true"});
    let gateway = TestGateway::start(&spec).await;
    let body = gateway.get_json(&unique("c"), "").await;
    let item = &body["items"][0];
    assert_eq!(item["content"], "hello");
    assert_eq!(item["headers"], json!({"greeting": ["mate", "again"]}));
    assert_eq!(item["metadata"]["topic"], topic.as_str());
    assert_eq!(item["metadata"]["partition"], 0);
    assert_eq!(item["metadata"]["offset"], 0);
    assert!(item["metadata"]["sourceTimestamp"].as_i64().unwrap() > 0);
    gateway.stop().await;
}

#[tokio::test]
async fn xml_and_text_bodies() {
    let topic = topic_with(&["<b>one</b>", "two"]).await;
    let mut spec = ApiSpec::new(&topic);
    spec.http_get_qos = "at-least-once";
    spec.consumer_extra = json!({"autoOffsetReset": "earliest", "encodeMessageId": false});
    let gateway = TestGateway::start(&spec).await;

    let xml = gateway
        .http
        .get(format!("{}?limit=2", gateway.url()))
        .header("Accept", "application/xml")
        .header("X-Gravitee-Client-Identifier", unique("c"))
        .send()
        .await
        .unwrap();
    assert_eq!(xml.headers()["content-type"], "application/xml");
    assert_eq!(
        xml.text().await.unwrap(),
        format!(
            "<response><items><item><id>{t}@0#0</id><content><![CDATA[<b>one</b>]]></content></item><item><id>{t}@0#1</id><content><![CDATA[two]]></content></item></items><pagination><nextCursor>{t}@0#1</nextCursor><limit>2</limit></pagination></response>",
            t = topic
        )
    );

    let text = gateway
        .http
        .get(format!("{}?limit=2", gateway.url()))
        .header("Accept", "text/plain")
        .header("X-Gravitee-Client-Identifier", unique("c"))
        .send()
        .await
        .unwrap();
    assert_eq!(text.headers()["content-type"], "text/plain");
    assert_eq!(
        text.text().await.unwrap(),
        format!("items\nitem\nid: {t}@0#0\ncontent: <b>one</b>\n\nitem\nid: {t}@0#1\ncontent: two\n\npagination\nnextCursor: {t}@0#1\nlimit: 2", t = topic)
    );
    gateway.stop().await;
}

#[tokio::test]
async fn bad_requests_get_400_with_a_json_reason() {
    let topic = unique("get-bad");
    let mut spec = ApiSpec::new(&topic);
    spec.http_get_qos = "at-least-once";
    let gateway = TestGateway::start(&spec).await;

    let response = gateway.http.get(gateway.url()).header("Accept", "image/png").send().await.unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"message": "Unsupported accept header: [image/png]", "http_status_code": 400}));

    let response = gateway
        .http
        .get(format!("{}?cursor=%25%25%25", gateway.url()))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["message"], "Invalid cursor: not valid base64");
    assert_eq!(body["http_status_code"], 400);

    let response = gateway
        .http
        .get(format!("{}?limit=abc", gateway.url()))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    gateway.stop().await;
}

#[tokio::test]
async fn an_unreachable_broker_is_reported_in_the_error_object() {
    let mut spec = ApiSpec::new(&unique("get-down"));
    spec.bootstrap = "127.0.0.1:1".into();
    let gateway = TestGateway::start(&spec).await;
    let body = gateway.get_json(&unique("c"), "").await;
    assert_eq!(body["items"], json!([]));
    assert_eq!(body["error"]["metadata"]["key"], "FAILURE_ENDPOINT_CONFIGURATION_INVALID");
    assert!(body["error"]["id"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(body["error"]["content"].as_str().unwrap().starts_with("Endpoint configuration invalid"));
    gateway.stop().await;
}

#[tokio::test]
async fn auto_offset_reset_none_without_committed_offsets_is_an_error() {
    let topic = topic_with(&["never delivered"]).await;
    let mut spec = ApiSpec::new(&topic);
    spec.consumer_extra = json!({"autoOffsetReset": "none"});
    let gateway = TestGateway::start(&spec).await;
    let body = gateway.get_json(&unique("c"), "").await;
    assert_eq!(body["items"], json!([]));
    assert_eq!(body["error"]["metadata"]["key"], "FAILURE_ENDPOINT_UNKNOWN_ERROR");
    assert!(body["error"]["content"].as_str().unwrap().contains("autoOffsetReset is `none`"), "{body}");
    gateway.stop().await;
}

#[tokio::test]
async fn the_consumer_is_a_group_member_during_the_request_and_is_kept_warm_after_it() {
    let topic = topic_with(&[]).await;
    let mut spec = ApiSpec::new(&topic);
    spec.http_get = json!({"messagesLimitCount": 10, "messagesLimitDurationMs": 4000});
    let gateway = TestGateway::start(&spec).await;
    let client = unique("member");
    let group = gateway.group_of(&client);

    let request = gateway.get_json(&client, "");
    let watcher = async {
        assert!(eventually(|| group_members(&group) == 1).await, "the consumer joined group {group}");
    };
    let (body, ()) = tokio::join!(request, watcher);
    assert_eq!(body["items"], json!([]));
    // Committed before the response; then parked for the client's next GET (http_get_warm.rs).
    assert_eq!(group_members(&group), 1, "the consumer stays in {group} for the client's next GET");
    gateway.stop().await;
    assert!(eventually(|| group_members(&group) == 0).await, "a stopping gateway's warm consumer leaves {group}");
}

#[tokio::test]
async fn repeated_gets_drain_every_partition() {
    let topic = unique("get-partitions");
    create_topic(&topic, 3).await;
    let values: Vec<String> = (0..30).map(|n| format!("v{n}")).collect();
    let keys: Vec<String> = (0..30).map(|n| format!("key-{n}")).collect();
    let records: Vec<(Option<&str>, &str)> =
        keys.iter().zip(&values).map(|(k, v)| (Some(k.as_str()), v.as_str())).collect();
    produce(&topic, &records).await;
    let mut spec = ApiSpec::new(&topic);
    spec.http_get = json!({"messagesLimitCount": 5, "messagesLimitDurationMs": 1000});
    let gateway = TestGateway::start(&spec).await;
    let client = unique("drain");

    let mut received: Vec<String> = Vec::new();
    for _ in 0..20 {
        received.extend(contents(&gateway.get_json(&client, "").await));
        if received.len() >= values.len() {
            break;
        }
    }
    received.sort();
    let mut expected = values.clone();
    expected.sort();
    assert_eq!(received, expected, "every record exactly once, in at most 20 calls of 5");
    gateway.stop().await;
}

/// A cursor as a query parameter (base64 holds `+`, `/` and `=`).
fn cursor_query(cursor: &str) -> String {
    let encoded: String = cursor
        .chars()
        .map(|c| match c {
            '+' => "%2B".to_string(),
            '/' => "%2F".to_string(),
            '=' => "%3D".to_string(),
            other => other.to_string(),
        })
        .collect();
    format!("?cursor={encoded}")
}

/// A gateway whose http-get gives ids (at-least-once) and answers after `window_ms`.
async fn gateway_with_ids(topic: &str, window_ms: u64) -> TestGateway {
    let mut spec = ApiSpec::new(topic);
    spec.http_get_qos = "at-least-once";
    spec.http_get = json!({"messagesLimitCount": 10, "messagesLimitDurationMs": window_ms});
    TestGateway::start(&spec).await
}

/// The `nextCursor` of a page that must be empty.
fn empty_page_cursor(page: &Value) -> String {
    assert_eq!(page["items"], json!([]));
    page["pagination"]["nextCursor"].as_str().expect("an empty page keeps a cursor").to_string()
}

fn decoded(cursor: &str) -> String {
    let bytes = base64::engine::general_purpose::STANDARD.decode(cursor).expect("a base64 cursor");
    String::from_utf8(bytes).expect("UTF-8")
}

#[tokio::test]
async fn an_empty_page_on_an_empty_topic_keeps_a_cursor_that_misses_nothing() {
    let topic = unique("empty-page");
    create_topic(&topic, 2).await;
    let gateway = gateway_with_ids(&topic, 3000).await;

    let cursor = empty_page_cursor(&gateway.get_json(&unique("reader"), "").await);
    assert_eq!(decoded(&cursor), format!("{topic}@0#-1,1#-1"), "before the first record of each partition");

    produce(&topic, &[(None, "first record")]).await;
    let resumed = gateway.get_json(&unique("another-reader"), &cursor_query(&cursor)).await;
    assert_eq!(contents(&resumed), ["first record"], "following the cursor skips nothing");
    gateway.stop().await;
}

#[tokio::test]
async fn an_empty_page_after_the_last_record_keeps_a_cursor_that_repeats_nothing() {
    let topic = unique("drained-page");
    create_topic(&topic, 1).await;
    produce(&topic, &[(None, "one"), (None, "two")]).await;
    let gateway = gateway_with_ids(&topic, 2000).await;
    let client = unique("reader");

    assert_eq!(contents(&gateway.get_json(&client, "").await), ["one", "two"]);
    let cursor = empty_page_cursor(&gateway.get_json(&client, "").await);
    assert_eq!(decoded(&cursor), format!("{topic}@0#1"), "the last delivered record");

    produce(&topic, &[(None, "three")]).await;
    let resumed = gateway.get_json(&unique("another-reader"), &cursor_query(&cursor)).await;
    assert_eq!(contents(&resumed), ["three"], "following the cursor repeats nothing");
    gateway.stop().await;
}

#[tokio::test]
async fn one_client_on_two_apis_of_one_topic_has_a_group_per_api() {
    let topic = unique("two-apis");
    create_topic(&topic, 1).await;
    produce(&topic, &[(None, "shared")]).await;
    let orders = TestGateway::start(&ApiSpec::new(&topic)).await;
    let audit = TestGateway::start(&ApiSpec::new(&topic)).await;
    let client = unique("client");
    assert_ne!(orders.group_of(&client), audit.group_of(&client));

    assert_eq!(contents(&orders.get_json(&client, "").await), ["shared"]);
    assert_eq!(contents(&audit.get_json(&client, "").await), ["shared"], "the other API kept its own offsets");
    assert!(contents(&orders.get_json(&client, "").await).is_empty(), "each API continues where it stopped");
    orders.stop().await;
    audit.stop().await;
}
