//! `--max-consumers` and `--max-consumers-per-address`: a client that opens consumer after
//! consumer (new client identifiers cost nothing) is refused before the gateway runs out of
//! threads; http-get answers 503, SSE an error event, WebSocket closes with 1013, and a slot
//! given back is taken again.

mod common;

use common::*;
use eventsource_stream::Eventsource;
use futures::StreamExt;
use kafka_edge_endpoint_kafka::ConsumerOptions;
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn consumers_past_the_per_address_limit_are_refused_until_one_closes() {
    let topic = unique("consumer-limits");
    create_topic(&topic, 1).await;
    let mut spec = ApiSpec::new(&topic);
    spec.http_get = json!({"messagesLimitCount": 1, "messagesLimitDurationMs": 500});
    let mut definition = spec.to_json();
    definition["listeners"][0]["entrypoints"].as_array_mut().expect("entrypoints").push(json!({"type": "websocket"}));
    // Every test client comes from 127.0.0.1: the per-address limit is the one reached.
    let consumers =
        ConsumerOptions { max_consumers_per_address: 2, keep_warm_for: Duration::ZERO, ..Default::default() };
    let gateway = TestGateway::start_configured(definition, &spec.path, Default::default(), consumers).await;
    let stream = |client: &str| {
        gateway
            .http
            .get(gateway.url())
            .header("Accept", "text/event-stream")
            .header("X-Gravitee-Client-Identifier", client)
            .send()
    };
    let first = stream("first").await.expect("SSE");
    let second = stream("second").await.expect("SSE");
    assert_eq!((first.status(), second.status()), (reqwest::StatusCode::OK, reqwest::StatusCode::OK));

    // http-get: 503 with the JSON error, nothing consumed.
    let refused =
        gateway.http.get(gateway.url()).header("X-Gravitee-Client-Identifier", "third").send().await.expect("GET");
    assert_eq!(refused.status(), 503);
    let body: Value = refused.json().await.expect("JSON");
    assert_eq!(body["key"], "FAILURE_ENDPOINT_TOO_MANY_CONSUMERS", "{body}");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("--max-consumers-per-address")), "{body}");

    // SSE: an error event that names the cause.
    let mut events = stream("fourth").await.expect("SSE").bytes_stream().eventsource();
    let event = loop {
        let event = tokio::time::timeout(Duration::from_secs(30), events.next()).await.expect("in time");
        let event = event.expect("an event").expect("valid");
        if event.event != "message" || !event.data.is_empty() {
            break event;
        }
    };
    assert_eq!(event.event, "error", "{event:?}");
    assert!(event.data.starts_with("Too many consumers"), "{event:?}");

    // WebSocket: closed with 1013 (try again later).
    let mut request = gateway.url().replacen("http://", "ws://", 1).into_client_request().expect("request");
    request.headers_mut().insert("X-Gravitee-Client-Identifier", "fifth".parse().expect("header"));
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.expect("upgrade");
    let frame = tokio::time::timeout(Duration::from_secs(30), socket.next()).await.expect("in time");
    match frame {
        Some(Ok(Message::Close(Some(close)))) => assert_eq!(u16::from(close.code), 1013, "{close:?}"),
        other => panic!("expected a close frame, got {other:?}"),
    }

    // A stream that ends gives its slot back.
    drop(first);
    let mut served = false;
    for _ in 0..100 {
        let answer = gateway.http.get(gateway.url()).header("X-Gravitee-Client-Identifier", "third").send().await;
        if answer.is_ok_and(|answer| answer.status() == 200) {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served, "a GET is served once a consumer closed");
    drop(second);
    gateway.stop().await;
}
