//! The entrypoints' QoS behaviour (DESIGN 4.5) on the in-memory endpoint: what each acknowledges,
//! commits or leaves out, and when, as a client sees it. Fast unit tests beside the broker tests
//! in crates/gateway, which prove the same rules against Kafka.

use axum::body::Body;
use futures::StreamExt;
use http::HeaderMap;
use kafka_edge_definition::{HttpGetConfiguration, Qos, SseConfiguration};
use kafka_edge_entrypoints::{http_get, sse, EntrypointContext};
use kafka_edge_message::memory::MemoryEndpoint;
use kafka_edge_message::ExecutionContext;
use serde_json::json;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

const GROUP: &str = "client-1";

fn context(endpoint: &MemoryEndpoint) -> EntrypointContext {
    context_until(endpoint, CancellationToken::new())
}

fn context_until(endpoint: &MemoryEndpoint, shutdown: CancellationToken) -> EntrypointContext {
    EntrypointContext {
        endpoint: Arc::new(endpoint.clone()),
        execution: ExecutionContext { client_identifier: GROUP.into(), ..Default::default() },
        shutdown,
        revoked: CancellationToken::new(),
        max_message_bytes: kafka_edge_message::DEFAULT_MAX_MESSAGE_BYTES,
        activity: kafka_edge_entrypoints::Unrecorded::shared(),
    }
}

fn sse_configuration() -> SseConfiguration {
    serde_json::from_value(json!({"heartbeatIntervalInMs": 60000})).expect("sse configuration")
}

/// The SSE body, chunk by chunk, as hyper pulls it for a client; it ends when `shutdown` is
/// cancelled (after a goaway event).
async fn sse_stream(
    endpoint: &MemoryEndpoint,
    qos: Qos,
    shutdown: CancellationToken,
) -> impl futures::Stream<Item = String> + Unpin {
    let context = context_until(endpoint, shutdown);
    let response = sse::handle(&sse_configuration(), qos, context, &HeaderMap::new()).await;
    let chunks = Body::into_data_stream(response.into_body());
    Box::pin(chunks.map(|chunk| String::from_utf8_lossy(&chunk.expect("chunk")).into_owned()))
}

#[tokio::test]
async fn sse_acknowledges_a_message_once_the_client_took_its_event() {
    let endpoint = MemoryEndpoint::with_partitions(1);
    endpoint.append(0, "first");
    endpoint.append(0, "second");
    let mut events = sse_stream(&endpoint, Qos::AtLeastOnce, CancellationToken::new()).await;
    assert!(events.next().await.expect("retry").starts_with("retry: "));
    assert!(events.next().await.expect("event").contains("data: first"));
    assert_eq!(endpoint.committed(GROUP, 0), None, "written but not yet taken by the client");
    assert!(events.next().await.expect("event").contains("data: second"));
    assert_eq!(endpoint.committed(GROUP, 0), Some(1), "the first event was taken");
}

#[tokio::test]
async fn sse_at_most_once_commits_before_the_event_and_skips_what_another_consumer_owns() {
    let endpoint = MemoryEndpoint::with_partitions(2);
    // The stream gets partition 0's message first: the one another consumer owns now.
    endpoint.append(0, "moved");
    endpoint.append(1, "mine");
    endpoint.revoke(0);
    let shutdown = CancellationToken::new();
    let mut events = sse_stream(&endpoint, Qos::AtMostOnce, shutdown.clone()).await;
    events.next().await.expect("retry");
    let event = events.next().await.expect("event");
    assert!(event.contains("data: mine"), "the revoked partition's message was skipped: {event}");
    assert_eq!(endpoint.committed(GROUP, 1), Some(1), "committed before the client could read it");
    assert_eq!(endpoint.committed(GROUP, 0), None);
    // Ending the stream shows it wrote nothing else.
    shutdown.cancel();
    let rest: Vec<String> = events.collect().await;
    assert_eq!(rest.len(), 1, "only the goaway: {rest:?}");
    assert!(rest[0].starts_with("event: goaway"), "the revoked partition's message is never written: {rest:?}");
}

async fn get_page(endpoint: &MemoryEndpoint, qos: Qos) -> serde_json::Value {
    let configuration: HttpGetConfiguration =
        serde_json::from_value(json!({"messagesLimitCount": 10, "messagesLimitDurationMs": 100}))
            .expect("http-get configuration");
    let request = http::Request::get("/").header("accept", "application/json").body(()).expect("request");
    let response = http_get::handle(&configuration, qos, context(endpoint), &request.into_parts().0).await;
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
    serde_json::from_slice(&body).expect("JSON page")
}

fn contents(page: &serde_json::Value) -> Vec<&str> {
    page["items"].as_array().expect("items").iter().map(|item| item["content"].as_str().expect("content")).collect()
}

#[tokio::test]
async fn http_get_commits_the_latest_of_each_partition_before_answering() {
    let endpoint = MemoryEndpoint::with_partitions(2);
    for (partition, content) in [(0, "a"), (1, "b"), (0, "c")] {
        endpoint.append(partition, content);
    }
    let page = get_page(&endpoint, Qos::Auto).await;
    assert_eq!(contents(&page), ["a", "c", "b"]);
    let mut acknowledgements = endpoint.acknowledgements(GROUP);
    acknowledgements.sort();
    assert_eq!(acknowledgements, vec![(0, 1), (1, 0)], "one acknowledgement per partition, the latest");
    assert!(contents(&get_page(&endpoint, Qos::Auto).await).is_empty(), "the next GET continues after it");
}

#[tokio::test]
async fn http_get_at_most_once_leaves_out_a_partition_whose_commit_failed() {
    let endpoint = MemoryEndpoint::with_partitions(2);
    endpoint.append(0, "kept");
    endpoint.append(1, "moved");
    endpoint.revoke(1);
    let page = get_page(&endpoint, Qos::AtMostOnce).await;
    assert_eq!(contents(&page), ["kept"]);
    assert_eq!(endpoint.committed(GROUP, 1), None);
}
