//! The websocket entrypoint against the real broker, driven by a real WebSocket client library
//! (tokio-tungstenite): frames in become records, records come out as binary frames, and every
//! way a session ends has its close code.

mod common;

use common::*;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The test API of `spec` with a websocket entrypoint added.
async fn start(spec: &ApiSpec, qos: &str, configuration: Value) -> TestGateway {
    let mut definition = spec.to_json();
    let entrypoints = definition["listeners"][0]["entrypoints"].as_array_mut().expect("entrypoints");
    entrypoints.push(json!({"type": "websocket", "qos": qos, "configuration": configuration}));
    TestGateway::start_json(definition, &spec.path).await
}

/// Opens a WebSocket as client `client` (X-Gravitee-Client-Identifier).
async fn connect(gateway: &TestGateway, client: &str) -> Client {
    let mut request = gateway.url().replacen("http://", "ws://", 1).into_client_request().expect("request");
    request.headers_mut().insert("X-Gravitee-Client-Identifier", client.parse().expect("header"));
    let (socket, response) = tokio_tungstenite::connect_async(request).await.expect("WebSocket upgrade");
    assert_eq!(response.status(), 101);
    socket
}

/// The next data or close frame; pings and pongs are the library's business.
async fn next_frame(socket: &mut Client) -> Message {
    let frame = tokio::time::timeout(TIMEOUT, async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(frame)) => return frame,
                other => panic!("the connection ended without a close frame: {other:?}"),
            }
        }
    })
    .await;
    frame.expect("a frame in time")
}

/// The next `count` frames, which must be binary, as text.
async fn binary_frames(socket: &mut Client, count: usize) -> Vec<String> {
    let mut contents = Vec::new();
    for _ in 0..count {
        match next_frame(socket).await {
            Message::Binary(data) => contents.push(String::from_utf8_lossy(&data).into_owned()),
            other => panic!("expected a binary frame, got {other:?}"),
        }
    }
    contents
}

/// Reads the server's close frame, lets the library answer it, and returns its code and reason.
async fn close_frame(socket: &mut Client) -> (u16, String) {
    let (code, reason) = match next_frame(socket).await {
        Message::Close(Some(frame)) => (u16::from(frame.code), frame.reason.to_string()),
        other => panic!("expected a close frame, got {other:?}"),
    };
    // Reading on sends our answer; the server then ends the connection.
    let ended = tokio::time::timeout(TIMEOUT, async { while let Some(Ok(_)) = socket.next().await {} }).await;
    assert!(ended.is_ok(), "the server ends the connection after the closing handshake");
    (code, reason)
}

#[tokio::test]
async fn text_and_binary_frames_become_records_and_come_back_as_binary_frames() {
    let topic = unique("ws-publish");
    create_topic(&topic, 1).await;
    let gateway = start(&ApiSpec::new(&topic), "auto", json!({})).await;
    let mut socket = connect(&gateway, &unique("c")).await;

    socket.send(Message::text("hello")).await.unwrap();
    socket.send(Message::binary(vec![0u8, 1, 2, 0xff])).await.unwrap();
    // The same connection subscribes to the topic (autoOffsetReset earliest): both come back, as
    // binary frames. (Awaited first: `read_records` blocks this runtime, the gateway's too.)
    assert_eq!(next_frame(&mut socket).await, Message::binary(b"hello".to_vec()));
    assert_eq!(next_frame(&mut socket).await, Message::binary(vec![0u8, 1, 2, 0xff]));

    let records = read_records(&topic, 2);
    let values: Vec<&[u8]> = records.iter().map(|r| rdkafka::Message::payload(r).unwrap_or_default()).collect();
    assert_eq!(values, [b"hello".as_slice(), &[0u8, 1, 2, 0xff]]);

    socket.close(None).await.unwrap();
    assert!(matches!(next_frame(&mut socket).await, Message::Close(_)), "the gateway answers the close");
    gateway.stop().await;
}

#[tokio::test]
async fn consumed_records_arrive_as_binary_frames_in_order() {
    let topic = unique("ws-subscribe");
    create_topic(&topic, 1).await;
    let before: Vec<String> = (1..=10).map(|n| n.to_string()).collect();
    produce(&topic, &before.iter().map(|v| (None, v.as_str())).collect::<Vec<_>>()).await;
    let gateway = start(&ApiSpec::new(&topic), "auto", json!({"publisher": {"enabled": false}})).await;
    let mut socket = connect(&gateway, &unique("c")).await;

    assert_eq!(binary_frames(&mut socket, 10).await, before);
    let after: Vec<String> = (11..=20).map(|n| n.to_string()).collect();
    produce(&topic, &after.iter().map(|v| (None, v.as_str())).collect::<Vec<_>>()).await;
    assert_eq!(binary_frames(&mut socket, 10).await, after);
    gateway.stop().await;
}

/// A client reads a, b, c with `qos`, closes politely and its consumer leaves; then d is produced.
/// Returns the gateway, the client identity and the topic.
async fn read_abc_and_close(prefix: &str, qos: &str) -> (TestGateway, String, String) {
    let topic = unique(prefix);
    create_topic(&topic, 1).await;
    produce(&topic, &[(None, "a"), (None, "b"), (None, "c")]).await;
    let gateway = start(&ApiSpec::new(&topic), qos, json!({})).await;
    let client = unique("c");
    let mut socket = connect(&gateway, &client).await;
    assert_eq!(binary_frames(&mut socket, 3).await, ["a", "b", "c"]);
    socket.close(None).await.expect("test setup");
    assert!(matches!(next_frame(&mut socket).await, Message::Close(_)));
    // Leaving the group is where auto makes its final commit.
    assert!(eventually(|| group_members(&gateway.group_of(&client)) == 0).await, "the consumer left");
    produce(&topic, &[(None, "d")]).await;
    (gateway, client, topic)
}

#[tokio::test]
async fn auto_commits_what_was_written_so_the_client_continues_after_it() {
    let (gateway, client, _) = read_abc_and_close("ws-continue", "auto").await;
    let mut socket = connect(&gateway, &client).await;
    assert_eq!(binary_frames(&mut socket, 1).await, ["d"]);
    gateway.stop().await;
}

#[tokio::test]
async fn qos_none_never_commits_so_the_client_starts_again_from_the_beginning() {
    let (gateway, client, topic) = read_abc_and_close("ws-none", "none").await;
    assert_eq!(committed_offset(&gateway.group_of(&client), &topic, 0), None, "nothing committed");
    // So the same client identity starts again from autoOffsetReset (earliest).
    let mut socket = connect(&gateway, &client).await;
    assert_eq!(binary_frames(&mut socket, 4).await, ["a", "b", "c", "d"]);
    gateway.stop().await;
}

#[tokio::test]
async fn a_publish_failure_closes_with_1011_and_the_failure_as_reason() {
    let mut spec = ApiSpec::new(&unique("ws-unreachable"));
    // Nothing listens on port 1 of loopback.
    spec.bootstrap = "127.0.0.1:1".into();
    let gateway = start(&spec, "auto", json!({"subscriber": {"enabled": false}})).await;
    let mut socket = connect(&gateway, &unique("c")).await;

    socket.send(Message::text("lost?")).await.unwrap();
    let (code, reason) = close_frame(&mut socket).await;
    assert_eq!(code, 1011);
    assert!(reason.starts_with("Endpoint configuration invalid"), "{reason}");
    assert!(reason.len() <= 123);
    gateway.stop().await;
}

#[tokio::test]
async fn a_failing_subscription_closes_with_1011() {
    let mut spec = ApiSpec::new(&unique("ws-unreachable-sub"));
    spec.bootstrap = "127.0.0.1:1".into();
    let gateway = start(&spec, "auto", json!({"publisher": {"enabled": "false"}})).await;
    let mut socket = connect(&gateway, &unique("c")).await;
    let (code, reason) = close_frame(&mut socket).await;
    assert_eq!(code, 1011);
    assert!(reason.starts_with("Endpoint configuration invalid"), "{reason}");
    gateway.stop().await;
}

#[tokio::test]
async fn gateway_shutdown_closes_with_1013() {
    let topic = unique("ws-shutdown");
    create_topic(&topic, 1).await;
    let gateway = start(&ApiSpec::new(&topic), "auto", json!({})).await;
    let client = unique("c");
    let mut socket = connect(&gateway, &client).await;
    let group = gateway.group_of(&client);
    assert!(eventually(|| group_members(&group) == 1).await, "subscribed");

    let (_, (code, reason)) = tokio::join!(gateway.stop(), close_frame(&mut socket));
    assert_eq!((code, reason.as_str()), (1013, "Try Again Later"));
    assert!(eventually(|| group_members(&group) == 0).await, "the consumer left");
}

#[tokio::test]
async fn a_client_that_closes_or_vanishes_leaves_its_group() {
    let topic = unique("ws-leave");
    create_topic(&topic, 1).await;
    let gateway = start(&ApiSpec::new(&topic), "none", json!({})).await;

    let polite = unique("c");
    let mut socket = connect(&gateway, &polite).await;
    assert!(eventually(|| group_members(&gateway.group_of(&polite)) == 1).await, "joined");
    socket.close(None).await.unwrap();
    assert!(matches!(next_frame(&mut socket).await, Message::Close(_)));
    assert!(
        eventually_within(Duration::from_secs(1), || group_members(&gateway.group_of(&polite)) == 0).await,
        "left within a second of the close frame"
    );

    let rude = unique("c");
    let socket = connect(&gateway, &rude).await;
    assert!(eventually(|| group_members(&gateway.group_of(&rude)) == 1).await, "joined");
    drop(socket);
    assert!(
        eventually_within(Duration::from_secs(1), || group_members(&gateway.group_of(&rude)) == 0).await,
        "left within a second of the TCP connection's end"
    );
    gateway.stop().await;
}

#[tokio::test]
async fn a_disabled_publisher_ignores_frames() {
    let topic = unique("ws-no-publisher");
    create_topic(&topic, 1).await;
    let gateway = start(&ApiSpec::new(&topic), "auto", json!({"publisher": {"enabled": false}})).await;
    let mut socket = connect(&gateway, &unique("c")).await;

    socket.send(Message::text("ignored")).await.unwrap();
    // Frames are handled in order, a publish before the next frame is read: once the ping is
    // answered, the text frame was handled.
    socket.send(Message::Ping(b"after".to_vec().into())).await.unwrap();
    let pong = tokio::time::timeout(TIMEOUT, async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Pong(data))) => return data,
                Some(Ok(_)) => continue,
                other => panic!("connection ended: {other:?}"),
            }
        }
    })
    .await
    .expect("pong");
    assert_eq!(&pong[..], b"after");
    assert_eq!(record_count(&topic), 0, "nothing was published");

    // The subscriber still works.
    produce(&topic, &[(None, "direct")]).await;
    assert_eq!(binary_frames(&mut socket, 1).await, ["direct"]);
    gateway.stop().await;
}

#[tokio::test]
async fn a_websocket_with_no_direction_enabled_closes_with_1000() {
    let gateway = start(
        &ApiSpec::new(&unique("ws-idle")),
        "auto",
        json!({"publisher": {"enabled": false}, "subscriber": {"enabled": false}}),
    )
    .await;
    let mut socket = connect(&gateway, &unique("c")).await;
    assert_eq!(close_frame(&mut socket).await, (1000, String::new()));
    gateway.stop().await;
}

#[tokio::test]
async fn a_message_larger_than_allowed_closes_with_1009() {
    let topic = unique("ws-too-big");
    create_topic(&topic, 1).await;
    let gateway = start(&ApiSpec::new(&topic), "auto", json!({"subscriber": {"enabled": false}})).await;
    let mut socket = connect(&gateway, &unique("c")).await;
    let too_big = vec![b'x'; kafka_edge_message::DEFAULT_MAX_MESSAGE_BYTES + 1];
    // The gateway may close before the whole frame was written.
    let _ = socket.send(Message::binary(too_big)).await;
    let (code, _) = close_frame(&mut socket).await;
    assert_eq!(code, 1009);
    assert_eq!(record_count(&topic), 0);
    gateway.stop().await;
}

#[tokio::test]
async fn an_invalid_upgrade_is_answered_with_a_json_error() {
    let gateway = start(&ApiSpec::new(&unique("ws-invalid")), "auto", json!({})).await;
    let response = gateway
        .http
        .get(gateway.url())
        .header("Connection", "Upgrade")
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Version", "13")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"message": "`Sec-WebSocket-Key` header missing", "http_status_code": 400}));
    gateway.stop().await;
}

#[tokio::test]
async fn connections_with_qos_none_reading_from_latest_share_a_consumer_and_each_get_every_message() {
    let topic = unique("ws-shared");
    create_topic(&topic, 2).await;
    let mut spec = ApiSpec::new(&topic);
    spec.consumer_extra = json!({"autoOffsetReset": "latest"});
    let gateway = start(&spec, "none", json!({"subscriber": {"enabled": true}, "publisher": {"enabled": false}})).await;
    let client = unique("same-client");
    let mut sockets = [connect(&gateway, &client).await, connect(&gateway, &client).await];
    // The shared consumer starts at the end of the topic: ping until each connection reads.
    for socket in sockets.iter_mut() {
        let reached = tokio::time::timeout(TIMEOUT, async {
            loop {
                produce(&topic, &[(None, "ping")]).await;
                let frame = tokio::time::timeout(Duration::from_millis(300), socket.next()).await;
                if let Ok(Some(Ok(Message::Binary(data)))) = frame {
                    if &data[..] == b"ping" {
                        return;
                    }
                }
            }
        })
        .await;
        assert!(reached.is_ok(), "a connection never read a ping");
    }
    let values: Vec<String> = (0..10).map(|n| format!("m{n}")).collect();
    let keys: Vec<String> = (0..10).map(|n| format!("k{n}")).collect();
    let records: Vec<(Option<&str>, &str)> =
        keys.iter().zip(&values).map(|(k, v)| (Some(k.as_str()), v.as_str())).collect();
    produce(&topic, &records).await;
    for socket in sockets.iter_mut() {
        let mut received = Vec::new();
        while received.len() < values.len() {
            let frame = binary_frames(socket, 1).await.remove(0);
            if frame != "ping" {
                received.push(frame);
            }
        }
        received.sort_by_key(|value| value[1..].parse::<u32>().unwrap_or(u32::MAX));
        assert_eq!(received, values, "two connections of one client each get every message");
    }
    assert_eq!(group_members(&gateway.group_of(&client)), 0, "a shared consumer joins no group");
    gateway.stop().await;
}
