//! A real browser's `EventSource` (headless Chromium) against the gateway and the real broker:
//! events arrive with their ids, and after the gateway restarts the browser reconnects on its own,
//! sends `Last-Event-ID` and resumes right after the last event it saw.
//!
//! The page is served by a tiny server in this test; its script opens `EventSource` on the
//! gateway (another origin: Chromium runs with `--disable-web-security`) and reports every event,
//! open and error back to that server with `fetch`, so the test awaits what the browser saw instead
//! of a time budget. Chromium is required: without it the test fails, it never skips.

mod common;

use common::browser::{next, page_server, Browser};
use common::*;
use kafka_edge_definition::{load_str, Format};
use kafka_edge_gateway::Gateway;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use serde_json::{json, Value};
use std::net::SocketAddr;
use tokio_util::sync::CancellationToken;

const PAGE: &str = r#"<!doctype html>
<html><body><ol id="events"></ol><script>
// One report at a time, so they reach the test in the order they happened.
let reports = Promise.resolve();
const report = (body) => { reports = reports.then(() => fetch('/report', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)})); };
const source = new EventSource(new URLSearchParams(location.search).get('stream'));
source.onopen = () => report({kind: 'open'});
source.onerror = () => report({kind: 'error', readyState: source.readyState});
source.onmessage = (event) => {
  const item = document.createElement('li');
  item.textContent = event.lastEventId + ' ' + event.data;
  document.getElementById('events').appendChild(item);
  report({kind: 'message', data: event.data, lastEventId: event.lastEventId});
};
</script></body></html>"#;

/// A gateway serving `definition` on `address` (reusable right after the previous one stopped).
async fn serve_on(definition: &Value, address: SocketAddr) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let loaded = load_str(&definition.to_string(), Format::Json, "test").expect("valid test definition");
    let shutdown = CancellationToken::new();
    let gateway = Gateway::new(vec![built(&loaded.api)], shutdown.clone());
    let socket = tokio::net::TcpSocket::new_v4().expect("test setup");
    socket.set_reuseaddr(true).expect("test setup");
    socket.bind(address).expect("bind gateway");
    let listener = socket.listen(1024).expect("test setup");
    (shutdown, tokio::spawn(async move { gateway.serve(listener).await.expect("serve") }))
}

#[tokio::test]
async fn a_browser_event_source_receives_events_and_resumes_with_last_event_id_after_a_restart() {
    let topic = unique("sse-browser");
    create_topic(&topic, 1).await;
    produce(&topic, &[(None, "a"), (None, "b"), (None, "c")]).await;
    // EventSource cannot send X-Gravitee-Client-Identifier: a flow gives this test its own group.
    let group = unique("browser-group");
    let mut spec = ApiSpec::new(&topic);
    spec.sse_qos = "at-least-once";
    spec.flows = json!([{"name": "group", "enabled": true, "selectors": [{"type": "http", "path": "/", "pathOperator": "STARTS_WITH"}],
        "request": [{"name": "Assign", "enabled": true, "policy": "assign-attributes",
            "configuration": {"scope": "REQUEST", "attributes": [{"name": "gravitee.attribute.kafka.groupId", "value": group}]}}],
        "response": [], "publish": [], "subscribe": []}]);
    let definition = spec.to_json();
    let gateway_address: SocketAddr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let (shutdown, task) = serve_on(&definition, gateway_address).await;

    let (page, mut reports) = page_server(PAGE).await;
    let stream = format!("http://{gateway_address}{}", spec.path);
    // EventSource on another origin: this test is about events, not CORS.
    let mut browser = Browser::open(&format!("http://{page}/?stream={stream}"), &["--disable-web-security"]);
    let mut seen = Vec::new();
    next(&mut reports, &mut seen, "open", &mut browser).await;
    let mut first = Vec::new();
    for _ in 0..3 {
        first.push(next(&mut reports, &mut seen, "message", &mut browser).await);
    }
    assert_eq!(first.iter().map(|e| e["data"].as_str().unwrap()).collect::<Vec<_>>(), ["a", "b", "c"]);
    let ids: Vec<&str> = first.iter().map(|e| e["lastEventId"].as_str().unwrap()).collect();
    assert!(ids.iter().all(|id| !id.is_empty()), "at-least-once events carry ids: {ids:?}");
    assert!(ids[0] != ids[1] && ids[1] != ids[2], "{ids:?}");

    // The gateway restarts: the stream ends with goaway, the browser loses the connection.
    shutdown.cancel();
    task.await.unwrap();
    next(&mut reports, &mut seen, "error", &mut browser).await;
    assert!(eventually(|| group_members(&group) == 0).await, "the first stream left {group}");
    // Forget the group's committed offsets: only Last-Event-ID can now say where to resume
    // (without it, autoOffsetReset=earliest would replay `a`).
    let admin: AdminClient<DefaultClientContext> = client_config().create().unwrap();
    for result in admin
        .delete_groups(&[&group], &AdminOptions::new().operation_timeout(Some(TIMEOUT)))
        .await
        .expect("delete group")
    {
        result.expect("group deleted");
    }
    produce(&topic, &[(None, "d"), (None, "e")]).await;
    let (shutdown, task) = serve_on(&definition, gateway_address).await;

    // EventSource reconnects by itself after the `retry:` delay (1-5 s), with Last-Event-ID.
    next(&mut reports, &mut seen, "open", &mut browser).await;
    let mut second = Vec::new();
    for _ in 0..2 {
        second.push(next(&mut reports, &mut seen, "message", &mut browser).await);
    }
    assert_eq!(
        second.iter().map(|e| e["data"].as_str().unwrap()).collect::<Vec<_>>(),
        ["d", "e"],
        "resumed after `c` (its id: {}); all reports: {seen:?}",
        ids[2]
    );
    assert!(second.iter().all(|e| !e["lastEventId"].as_str().unwrap().is_empty()));
    drop(browser);
    shutdown.cancel();
    task.await.unwrap();
}
