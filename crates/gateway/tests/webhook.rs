//! Webhook subscriptions against the test bed's broker: the admin API, delivery to a real HTTP
//! server (order, headers, basic auth), retries without loss, the stop after exhausted retries,
//! subscriptions surviving a restart with the file store, and two gateways sharing the Kafka store.

mod common;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use common::webhook::*;
use common::*;
use kafka_edge_definition::{load_str, ApiDefinition, Format};
use kafka_edge_gateway::state::{self, StateStore};
use kafka_edge_gateway::webhook::Webhooks;
use kafka_edge_gateway::ApiTable;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A callback server: records every request, answers with scripted statuses (then 200).
#[derive(Clone, Default)]
struct Callback {
    requests: Arc<Mutex<Vec<(HeaderMap, String)>>>,
    script: Arc<Mutex<VecDeque<u16>>>,
    /// Answer this status to everything after the script (default 200).
    otherwise: Arc<Mutex<u16>>,
    /// Bodies of the OAuth 2 token requests (`/token`), answered with `tok-<n>`.
    token_requests: Arc<Mutex<Vec<String>>>,
}

impl Callback {
    async fn start() -> (Self, String) {
        let callback = Callback::default();
        *callback.otherwise.lock().expect("test setup") = 200;
        let app = axum::Router::new().fallback(record).with_state(callback.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, app).await.expect("callback server") });
        (callback, url)
    }

    fn bodies(&self) -> Vec<String> {
        self.requests.lock().expect("test setup").iter().map(|(_, body)| body.clone()).collect()
    }

    fn count(&self) -> usize {
        self.requests.lock().expect("test setup").len()
    }
}

async fn record(
    State(callback): State<Callback>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: String,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if uri.path() == "/token" {
        let mut requests = callback.token_requests.lock().expect("test setup");
        requests.push(body);
        return axum::Json(
            json!({"access_token": format!("tok-{}", requests.len()), "token_type": "Bearer", "expires_in": 3600}),
        )
        .into_response();
    }
    callback.requests.lock().expect("test setup").push((headers, body));
    let status = callback
        .script
        .lock()
        .expect("test setup")
        .pop_front()
        .unwrap_or(*callback.otherwise.lock().expect("test setup"));
    StatusCode::from_u16(status).expect("status").into_response()
}

fn definition(topic: &str) -> ApiDefinition {
    definition_with(topic, None)
}

/// With `dlq`: a second endpoint group `dlq` producing to that topic, named by `dlq.endpoint`.
fn definition_with(topic: &str, dlq: Option<&str>) -> ApiDefinition {
    let mut json = json!({
        "id": unique("api"), "name": "webhook test", "definitionVersion": "4.0.0", "type": "message",
        "listeners": [{"type": "subscription", "entrypoints": [{"type": "webhook", "qos": "at-least-once", "configuration": {"http": {"connectTimeout": 1000, "readTimeout": 5000}}}]}],
        "endpointGroups": [{"name": "default", "type": "kafka",
            "sharedConfiguration": {"consumer": {"enabled": true, "topics": [topic], "autoOffsetReset": "earliest"}},
            "endpoints": [{"name": "default", "type": "kafka", "configuration": {"bootstrapServers": bootstrap()}}]}],
        "plans": [{"id": "push", "name": "push", "mode": "PUSH", "status": "PUBLISHED"}, {"id": "open", "name": "open", "security": {"type": "key-less"}, "status": "PUBLISHED"}]
    });
    if let Some(dlq) = dlq {
        json["listeners"][0]["entrypoints"][0]["dlq"] = json!({"endpoint": "dlq"});
        json["endpointGroups"].as_array_mut().expect("groups").push(json!({"name": "dlq", "type": "kafka",
            "sharedConfiguration": {"producer": {"enabled": true, "topics": [dlq]}},
            "endpoints": [{"name": "dlq-endpoint", "type": "kafka", "configuration": {"bootstrapServers": bootstrap()}}]}));
    }
    let loaded = load_str(&json.to_string(), Format::Json, "test").expect("valid definition");
    assert!(loaded.ignored.is_empty(), "{:?}", loaded.ignored);
    loaded.api
}

#[tokio::test]
async fn admin_api_checks_token_body_api_and_plan() {
    let topic = unique("webhook-admin");
    create_topic(&topic, 1).await;
    let api = definition(&topic);
    let dir = tempfile::tempdir().expect("dir");
    let edge = Edge::start(&api, &dir.path().join("state")).await;
    let (_callback, url) = Callback::start().await;
    let path = format!("/apis/{}/subscriptions", api.id);

    let anonymous = edge.http.get(format!("{}{path}", edge.admin)).send().await.expect("call");
    assert_eq!(anonymous.status(), 401);
    let wrong = edge.http.get(format!("{}{path}", edge.admin)).bearer_auth("nope").send().await.expect("call");
    assert_eq!(wrong.status(), 401);
    assert_eq!(wrong.json::<Value>().await.expect("json")["http_status_code"], 401);

    let (status, body) = edge.call(reqwest::Method::POST, &path, Some(subscription("ftp://x", json!({})))).await;
    assert_eq!((status, body["field"].as_str()), (400, Some("configuration.callbackUrl")), "{body}");
    let (status, body) =
        edge.call(reqwest::Method::POST, &path, Some(subscription(&url, json!({"colour": "red"})))).await;
    assert_eq!((status, body["field"].as_str()), (400, Some("configuration.colour")), "{body}");
    let (status, _) =
        edge.call(reqwest::Method::POST, "/apis/no-such-api/subscriptions", Some(subscription(&url, json!({})))).await;
    assert_eq!(status, 404);
    let mut wrong_plan = subscription(&url, json!({}));
    wrong_plan["plan"] = json!("open");
    assert_eq!(edge.call(reqwest::Method::POST, &path, Some(wrong_plan)).await.0, 404);

    let auth = json!({"auth": {"type": "basic", "basic": {"username": "user", "password": "s3cret"}}});
    let (status, created) = edge.call(reqwest::Method::POST, &path, Some(subscription(&url, auth))).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("generated id").to_string();
    assert_eq!(created["configuration"]["auth"]["basic"]["password"], "***");
    assert_eq!(created["state"]["status"], "active");

    let (status, listed) = edge.call(reqwest::Method::GET, &path, None).await;
    assert_eq!(status, 200);
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    assert!(!listed.to_string().contains("s3cret"));
    let (status, one) = edge.call(reqwest::Method::GET, &format!("{path}/{id}"), None).await;
    assert_eq!((status, one["id"].as_str()), (200, Some(id.as_str())));

    let (status, _) = edge.call(reqwest::Method::DELETE, &format!("{path}/{id}"), None).await;
    assert_eq!(status, 204);
    // The delivery stops with the 204; its consumer leaves the group right after.
    assert!(eventually(|| group_members(&id) == 0).await, "the consumer left its group");
    assert_eq!(edge.call(reqwest::Method::GET, &format!("{path}/{id}"), None).await.0, 404);
    assert_eq!(edge.call(reqwest::Method::DELETE, &format!("{path}/{id}"), None).await.0, 404);
    edge.stop().await;
}

#[tokio::test]
async fn delivers_in_order_with_headers_and_basic_auth() {
    let topic = unique("webhook-order");
    create_topic(&topic, 1).await;
    let records: Vec<String> = (0..5).map(|i| format!("message-{i}")).collect();
    produce(&topic, &records.iter().map(|r| (None, r.as_str())).collect::<Vec<_>>()).await;
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let record_headers = [("x-record", "r1"), ("x-subscriber", "from-record"), ("traceparent", traceparent)];
    produce_with_headers(&topic, b"with-header", &record_headers).await;
    let api = definition(&topic);
    let dir = tempfile::tempdir().expect("dir");
    let edge = Edge::start(&api, &dir.path().join("state")).await;
    let (callback, url) = Callback::start().await;
    let extra = json!({
        "headers": [{"name": "X-Subscriber", "value": "edge-test"}],
        "auth": {"type": "basic", "basic": {"username": "user", "password": "s3cret"}}
    });
    let (status, body) = edge
        .call(reqwest::Method::POST, &format!("/apis/{}/subscriptions", api.id), Some(subscription(&url, extra)))
        .await;
    assert_eq!(status, 201, "{body}");

    assert!(eventually(|| callback.count() >= 6).await, "delivered: {:?}", callback.bodies());
    let mut expected = records.clone();
    expected.push("with-header".into());
    assert_eq!(callback.bodies(), expected);
    let requests = callback.requests.lock().unwrap().clone();
    for (headers, _) in &requests[..5] {
        assert_eq!(headers["x-subscriber"], "edge-test");
    }
    for (headers, _) in &requests {
        assert_eq!(headers["authorization"], "Basic dXNlcjpzM2NyZXQ=");
    }
    assert_eq!(requests[5].0["x-record"], "r1");
    // The record's trace context continues in the call.
    assert_eq!(requests[5].0["traceparent"], traceparent);
    // A record header wins over the subscription's header of the same name.
    assert_eq!(requests[5].0.get_all("x-subscriber").iter().collect::<Vec<_>>(), ["from-record"]);
    edge.stop().await;
}

#[tokio::test]
async fn server_errors_are_retried_without_loss() {
    let topic = unique("webhook-retry");
    create_topic(&topic, 1).await;
    produce(&topic, &[(None, "a"), (None, "b"), (None, "c")]).await;
    let api = definition(&topic);
    let dir = tempfile::tempdir().expect("dir");
    let edge = Edge::start(&api, &dir.path().join("state")).await;
    let (callback, url) = Callback::start().await;
    callback.script.lock().unwrap().extend([503, 500, 502]);
    let retry = json!({"retry": {"retryOption": "Retry On Fail", "retryStrategy": "LINEAR", "maxAttempts": 5, "initialDelaySeconds": 1, "maxDelaySeconds": 1}});
    let (status, body) = edge
        .call(reqwest::Method::POST, &format!("/apis/{}/subscriptions", api.id), Some(subscription(&url, retry)))
        .await;
    assert_eq!(status, 201, "{body}");
    assert!(eventually(|| callback.count() >= 6).await, "delivered: {:?}", callback.bodies());
    // Three failed calls of `a`, then a, b, c once each: nothing lost, order kept.
    assert_eq!(callback.bodies(), vec!["a", "a", "a", "a", "b", "c"]);
    let calls = |outcome: &str| format!("kafka_edge_webhook_calls_total{{api=\"{}\",outcome=\"{outcome}\"}}", api.id);
    assert_eq!(edge.metric(&calls("failed")).await, 3.0);
    assert_eq!(edge.metric(&calls("delivered")).await, 3.0);
    edge.stop().await;
}

#[tokio::test]
async fn exhausted_retries_stop_the_subscription() {
    let topic = unique("webhook-unreachable");
    create_topic(&topic, 1).await;
    produce(&topic, &[(None, "never")]).await;
    let api = definition(&topic);
    let dir = tempfile::tempdir().expect("dir");
    let edge = Edge::start(&api, &dir.path().join("state")).await;
    let (callback, url) = Callback::start().await;
    *callback.otherwise.lock().unwrap() = 503;
    let retry = json!({"retry": {"retryOption": "Retry On Fail", "retryStrategy": "EXPONENTIAL", "maxAttempts": 2, "initialDelaySeconds": 1, "maxDelaySeconds": 2}});
    let path = format!("/apis/{}/subscriptions", api.id);
    let (status, created) = edge.call(reqwest::Method::POST, &path, Some(subscription(&url, retry))).await;
    assert_eq!(status, 201, "{created}");
    let one = format!("{path}/{}", created["id"].as_str().expect("id"));
    let stopped = eventually_async(|| async {
        edge.call(reqwest::Method::GET, &one, None).await.1["state"]["status"] == "stopped"
    })
    .await;
    assert!(stopped, "subscription still active");
    let (_, body) = edge.call(reqwest::Method::GET, &one, None).await;
    assert_eq!(body["state"]["reason"], "WEBHOOK_UNREACHABLE", "{body}");
    assert_eq!(callback.count(), 3, "one call and two retries");
    edge.stop().await;
}

#[tokio::test]
async fn subscriptions_survive_a_restart_with_the_file_store() {
    let topic = unique("webhook-restart");
    create_topic(&topic, 1).await;
    produce(&topic, &[(None, "before-1"), (None, "before-2")]).await;
    let api = definition(&topic);
    let dir = tempfile::tempdir().expect("dir");
    let state_file = dir.path().join("state");
    let (callback, url) = Callback::start().await;

    let first = Edge::start(&api, &state_file).await;
    let mut body = subscription(&url, json!({"auth": {"type": "token", "token": {"value": "t0ken"}}}));
    body["id"] = json!(unique("sub"));
    let (status, created) =
        first.call(reqwest::Method::POST, &format!("/apis/{}/subscriptions", api.id), Some(body)).await;
    assert_eq!(status, 201, "{created}");
    assert!(eventually(|| callback.count() >= 2).await);
    first.stop().await;

    produce(&topic, &[(None, "after-1")]).await;
    let second = Edge::start(&api, &state_file).await;
    let (status, listed) = second.call(reqwest::Method::GET, &format!("/apis/{}/subscriptions", api.id), None).await;
    assert_eq!((status, listed[0]["id"].clone()), (200, created["id"].clone()));
    assert_eq!(listed[0]["configuration"]["auth"]["token"]["value"], "***");
    assert!(eventually(|| callback.count() >= 3).await, "delivered: {:?}", callback.bodies());
    assert_eq!(callback.bodies(), vec!["before-1", "before-2", "after-1"], "continues after the committed offset");
    assert_eq!(callback.requests.lock().unwrap()[2].0["authorization"], "Bearer t0ken");
    second.stop().await;
}

#[tokio::test]
async fn two_gateways_on_the_kafka_store_share_subscription_and_group() {
    let topic = unique("webhook-fleet");
    create_topic(&topic, 4).await;
    let api = definition(&topic);
    let state_uri = format!("kafka://{}/{}", bootstrap(), unique("kafka-edge-state"));
    let (callback, url) = Callback::start().await;
    let first = Edge::start_on(&api, &state_uri).await;
    let second = Edge::start_on(&api, &state_uri).await;

    let id = unique("sub");
    let mut body = subscription(&url, json!({}));
    body["id"] = json!(id);
    let path = format!("/apis/{}/subscriptions", api.id);
    let (status, created) = first.call(reqwest::Method::POST, &path, Some(body)).await;
    assert_eq!(status, 201, "{created}");
    let seen =
        eventually_async(|| async { second.call(reqwest::Method::GET, &format!("{path}/{id}"), None).await.0 == 200 })
            .await;
    assert!(seen, "the second gateway sees the subscription");
    assert!(eventually(|| group_members(&id) == 2).await, "both gateways consume in the subscription's group");

    let records: Vec<String> = (0..40).map(|i| format!("m{i}")).collect();
    let keyed: Vec<(Option<String>, &str)> = records.iter().map(|r| (Some(r.clone()), r.as_str())).collect();
    let keyed: Vec<(Option<&str>, &str)> = keyed.iter().map(|(k, v)| (k.as_deref(), *v)).collect();
    produce(&topic, &keyed).await;
    assert!(eventually(|| callback.count() >= records.len()).await, "delivered {}", callback.count());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut delivered = callback.bodies();
    delivered.sort();
    let mut expected = records.clone();
    expected.sort();
    assert_eq!(delivered, expected, "each message delivered once across both gateways");

    let (status, _) = second.call(reqwest::Method::DELETE, &format!("{path}/{id}"), None).await;
    assert_eq!(status, 204);
    let gone =
        eventually_async(|| async { first.call(reqwest::Method::GET, &format!("{path}/{id}"), None).await.0 == 404 })
            .await;
    assert!(gone, "the first gateway sees the deletion");
    assert!(eventually(|| group_members(&id) == 0).await, "both consumers left the group");
    first.stop().await;
    second.stop().await;
}

#[tokio::test]
async fn a_rejected_message_stops_the_subscription_without_a_dlq() {
    let topic = unique("webhook-rejected");
    create_topic(&topic, 1).await;
    produce(&topic, &[(None, "bad"), (None, "never")]).await;
    let api = definition(&topic);
    let dir = tempfile::tempdir().expect("dir");
    let edge = Edge::start(&api, &dir.path().join("state")).await;
    let (callback, url) = Callback::start().await;
    callback.script.lock().unwrap().push_back(422);
    let path = format!("/apis/{}/subscriptions", api.id);
    let (status, created) = edge.call(reqwest::Method::POST, &path, Some(subscription(&url, json!({})))).await;
    assert_eq!(status, 201, "{created}");
    let one = format!("{path}/{}", created["id"].as_str().expect("id"));
    let stopped = eventually_async(|| async {
        edge.call(reqwest::Method::GET, &one, None).await.1["state"]["status"] == "stopped"
    })
    .await;
    assert!(stopped);
    let (_, body) = edge.call(reqwest::Method::GET, &one, None).await;
    assert_eq!(body["state"]["reason"], "MESSAGE_PROCESSING_FAILED", "{body}");
    assert_eq!(callback.bodies(), vec!["bad"]);
    edge.stop().await;
}

#[tokio::test]
async fn a_rejected_message_goes_to_the_dlq_and_delivery_goes_on() {
    let topic = unique("webhook-dlq-source");
    let dlq = unique("webhook-dlq");
    create_topic(&topic, 1).await;
    create_topic(&dlq, 1).await;
    produce(&topic, &[(Some("k1"), "bad"), (None, "good")]).await;
    let api = definition_with(&topic, Some(&dlq));
    let dir = tempfile::tempdir().expect("dir");
    let edge = Edge::start(&api, &dir.path().join("state")).await;
    let (callback, url) = Callback::start().await;
    callback.script.lock().unwrap().push_back(400);
    let (status, created) = edge
        .call(reqwest::Method::POST, &format!("/apis/{}/subscriptions", api.id), Some(subscription(&url, json!({}))))
        .await;
    assert_eq!(status, 201, "{created}");
    assert!(eventually(|| callback.count() >= 2).await, "delivered: {:?}", callback.bodies());
    assert_eq!(callback.bodies(), vec!["bad", "good"]);
    let dead = tokio::task::spawn_blocking(move || read_records(&dlq, 1)).await.expect("read dlq");
    assert_eq!(payload(&dead[0]), "bad");
    assert_eq!(rdkafka::Message::key(&dead[0]), Some(&b"k1"[..]));
    let labels = format!("{{api=\"{}\"", api.id);
    assert_eq!(edge.metric(&format!("kafka_edge_webhook_dead_letters_total{labels}}}")).await, 1.0);
    assert_eq!(edge.metric(&format!("kafka_edge_webhook_calls_total{labels},outcome=\"rejected\"}}")).await, 1.0);
    assert_eq!(edge.metric(&format!("kafka_edge_webhook_calls_total{labels},outcome=\"delivered\"}}")).await, 1.0);
    edge.stop().await;
}

#[tokio::test]
async fn oauth2_tokens_are_cached_and_refreshed_on_401() {
    let topic = unique("webhook-oauth2");
    create_topic(&topic, 1).await;
    produce(&topic, &[(None, "one"), (None, "two"), (None, "three")]).await;
    let api = definition(&topic);
    let dir = tempfile::tempdir().expect("dir");
    let edge = Edge::start(&api, &dir.path().join("state")).await;
    let (callback, url) = Callback::start().await;
    // The second call is refused as if the token had been revoked.
    callback.script.lock().unwrap().extend([200, 401]);
    let token_endpoint = url.replace("/hook", "/token");
    let auth = json!({"auth": {"type": "oauth2", "oauth2": {"endpoint": token_endpoint, "clientId": "edge", "clientSecret": "cl1ent-s3cret", "scopes": ["a", "b"]}}});
    let (status, created) = edge
        .call(reqwest::Method::POST, &format!("/apis/{}/subscriptions", api.id), Some(subscription(&url, auth)))
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["configuration"]["auth"]["oauth2"]["clientSecret"], "***");
    assert!(eventually(|| callback.count() >= 4).await, "delivered: {:?}", callback.bodies());
    assert_eq!(callback.bodies(), vec!["one", "two", "two", "three"]);
    let tokens: Vec<String> = callback
        .requests
        .lock()
        .unwrap()
        .iter()
        .map(|(h, _)| h["authorization"].to_str().expect("ascii").to_string())
        .collect();
    assert_eq!(tokens, vec!["Bearer tok-1", "Bearer tok-1", "Bearer tok-2", "Bearer tok-2"]);
    let requests = callback.token_requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0], "grant_type=client_credentials&client_id=edge&client_secret=cl1ent-s3cret&scope=a+b");
    edge.stop().await;
}

#[tokio::test]
async fn static_subscriptions_are_loaded_and_checked() {
    let topic = unique("webhook-static");
    create_topic(&topic, 1).await;
    produce(&topic, &[(None, "from-file")]).await;
    let api = definition(&topic);
    let (callback, url) = Callback::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let store: Arc<dyn StateStore> =
        state::open(&format!("file:{}", dir.path().join("state").display())).await.expect("state");
    let shutdown = CancellationToken::new();
    let webhooks = Webhooks::new(ApiTable::new(vec![built(&api)]), store.clone(), shutdown.clone());
    let bad = json!([{"api": api.id, "id": "s1", "plan": "push", "configuration": {"callbackUrl": "mailto:x"}}]);
    let error = webhooks.load_static(bad.to_string().as_bytes()).await.expect_err("invalid entry");
    assert!(error.contains("[0].configuration.callbackUrl"), "{error}");
    let unknown_plan = json!([{"api": api.id, "id": "s1", "plan": "nope", "configuration": {"callbackUrl": url}}]);
    assert!(webhooks.load_static(unknown_plan.to_string().as_bytes()).await.is_err());
    let good = json!([{"api": api.id, "id": "s1", "plan": "push", "configuration": {"callbackUrl": url}}]);
    assert_eq!(webhooks.load_static(good.to_string().as_bytes()).await, Ok(1));
    assert_eq!(store.list().len(), 1);
    let delivery = tokio::spawn(webhooks.run());
    assert!(eventually(|| callback.count() >= 1).await);
    assert_eq!(callback.bodies(), vec!["from-file"]);
    shutdown.cancel();
    delivery.await.expect("delivery stopped");
}

#[tokio::test]
async fn a_reloaded_api_restarts_its_webhook_deliveries_on_the_new_version() {
    let (before, after) = (unique("webhook-before-reload"), unique("webhook-after-reload"));
    create_topic(&before, 1).await;
    create_topic(&after, 1).await;
    produce(&before, &[(None, "old version")]).await;
    let api = definition(&before);
    let (callback, url) = Callback::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let store: Arc<dyn StateStore> =
        state::open(&format!("file:{}", dir.path().join("state").display())).await.expect("state");
    let shutdown = CancellationToken::new();
    let apis = ApiTable::new(vec![built(&api)]);
    let webhooks = Webhooks::new(apis.clone(), store.clone(), shutdown.clone());
    let subscriptions = json!([{"api": api.id, "id": "s1", "plan": "push", "configuration": {"callbackUrl": url}}]);
    assert_eq!(webhooks.load_static(subscriptions.to_string().as_bytes()).await, Ok(1));
    let delivery = tokio::spawn(webhooks.run());
    assert!(eventually(|| callback.count() >= 1).await);

    // The same API, now reading another topic: the subscription's delivery follows it.
    let mut reloaded = definition(&after);
    reloaded.id = api.id.clone();
    apis.replace(vec![built(&reloaded)]);
    produce(&after, &[(None, "new version")]).await;
    assert!(eventually(|| callback.count() >= 2).await, "delivered: {:?}", callback.bodies());
    assert_eq!(callback.bodies(), vec!["old version", "new version"]);
    shutdown.cancel();
    delivery.await.expect("delivery stopped");
}

#[tokio::test]
async fn auto_qos_delivers_up_to_max_concurrent_connections_at_once() {
    let topic = unique("webhook-parallel");
    create_topic(&topic, 1).await;
    let records: Vec<String> = (0..8).map(|i| format!("p{i}")).collect();
    produce(&topic, &records.iter().map(|r| (None, r.as_str())).collect::<Vec<_>>()).await;
    let mut api = definition(&topic);
    let entrypoint = &mut api.listeners[0].entrypoints[0];
    entrypoint.qos = kafka_edge_definition::Qos::Auto;
    match &mut entrypoint.configuration {
        kafka_edge_definition::EntrypointConfiguration::Webhook(configuration) => {
            configuration.http.max_concurrent_connections = 4
        }
        other => panic!("not a webhook: {other:?}"),
    }
    // A slow callback that counts the calls in flight.
    let (in_flight, most, seen) =
        (Arc::new(Mutex::new(0usize)), Arc::new(Mutex::new(0usize)), Arc::new(Mutex::new(Vec::new())));
    let (f, m, s) = (in_flight.clone(), most.clone(), seen.clone());
    let app = axum::Router::new().fallback(move |body: String| {
        let (f, m, s) = (f.clone(), m.clone(), s.clone());
        async move {
            {
                let mut now = f.lock().unwrap();
                *now += 1;
                let mut top = m.lock().unwrap();
                *top = (*top).max(*now);
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            *f.lock().unwrap() -= 1;
            s.lock().unwrap().push(body);
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("callback") });

    let dir = tempfile::tempdir().expect("dir");
    let edge = Edge::start(&api, &dir.path().join("state")).await;
    let (status, body) = edge
        .call(reqwest::Method::POST, &format!("/apis/{}/subscriptions", api.id), Some(subscription(&url, json!({}))))
        .await;
    assert_eq!(status, 201, "{body}");
    assert!(eventually(|| seen.lock().unwrap().len() >= records.len()).await, "delivered: {:?}", seen.lock().unwrap());
    let mut delivered = seen.lock().unwrap().clone();
    delivered.sort();
    assert_eq!(delivered, records);
    let most = *most.lock().unwrap();
    assert!((2..=4).contains(&most), "at most 4 and more than 1 in flight, saw {most}");
    edge.stop().await;
}
