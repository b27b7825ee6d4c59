//! CORS as a browser enforces it: headless Chromium, with its web security on, loads a page from
//! one origin and calls the gateway on another with a preflighted `fetch` POST (JSON, a custom
//! header, credentials) and an `EventSource` with credentials. From an allowed origin both work
//! and the script reads an exposed response header; from another origin the browser refuses the
//! call after the preflight, and nothing reaches Kafka.

mod common;

use common::browser::{next, page_server, Browser};
use common::*;
use serde_json::json;

const PAGE: &str = r#"<!doctype html>
<html><body><script>
let reports = Promise.resolve();
const report = (body) => { reports = reports.then(() => fetch('/report', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)})); };
const gateway = new URLSearchParams(location.search).get('gateway');
(async () => {
  try {
    const response = await fetch(gateway, {method: 'POST', credentials: 'include',
      headers: {'Content-Type': 'application/json', 'X-Order-Source': 'browser'}, body: JSON.stringify({from: location.origin})});
    report({kind: 'post', status: response.status, requestId: response.headers.get('X-Request-Id')});
  } catch (error) {
    report({kind: 'post', error: String(error)});
  }
  const source = new EventSource(gateway, {withCredentials: true});
  source.onmessage = (event) => { report({kind: 'message', data: event.data}); source.close(); };
  source.onerror = () => { report({kind: 'error'}); source.close(); };
})();
</script></body></html>"#;

/// The API, allowing `origin` only.
async fn gateway_allowing(topic: &str, origin: &str) -> TestGateway {
    let spec = ApiSpec::new(topic);
    let mut definition = spec.to_json();
    let entrypoints = definition["listeners"][0]["entrypoints"].as_array_mut().expect("entrypoints");
    entrypoints.push(json!({"type": "websocket"}));
    definition["listeners"][0]["cors"] = json!({
        "enabled": true, "allowOrigin": [origin], "allowMethods": ["GET", "POST"],
        "allowHeaders": ["Content-Type", "X-Order-Source"], "exposeHeaders": ["X-Request-Id"],
        "allowCredentials": true, "maxAge": 60
    });
    definition["flows"] = json!([{"name": "request id", "response": [{"name": "id", "policy": "transform-headers",
        "configuration": {"addHeaders": [{"name": "X-Request-Id", "value": "{#request.id}"}]}}]}]);
    TestGateway::start_json(definition, &spec.path).await
}

#[tokio::test]
async fn a_browser_on_an_allowed_origin_posts_and_streams_and_another_origin_is_refused() {
    let topic = unique("cors");
    create_topic(&topic, 1).await;
    let (allowed_page, mut allowed_reports) = page_server(PAGE).await;
    let gateway = gateway_allowing(&topic, &format!("http://{allowed_page}")).await;

    let mut browser = Browser::open(&format!("http://{allowed_page}/?gateway={}", gateway.url()), &[]);
    let mut seen = Vec::new();
    let posted = next(&mut allowed_reports, &mut seen, "post", &mut browser).await;
    assert_eq!(posted["status"], 202, "{seen:?}");
    assert!(posted["requestId"].as_str().is_some_and(|id| !id.is_empty()), "the exposed header is readable: {posted}");
    let message = next(&mut allowed_reports, &mut seen, "message", &mut browser).await;
    assert_eq!(message["data"], json!({"from": format!("http://{allowed_page}")}).to_string());
    drop(browser);

    let (other_page, mut other_reports) = page_server(PAGE).await;
    let mut browser = Browser::open(&format!("http://{other_page}/?gateway={}", gateway.url()), &[]);
    let mut seen = Vec::new();
    let refused = next(&mut other_reports, &mut seen, "post", &mut browser).await;
    assert!(refused["error"].as_str().is_some_and(|e| e.contains("Failed to fetch")), "{refused}");
    next(&mut other_reports, &mut seen, "error", &mut browser).await;
    drop(browser);
    assert_eq!(record_count(&topic), 1, "the refused origin's preflight stopped its POST");
    gateway.stop().await;
}

#[tokio::test]
async fn preflights_and_errors_carry_the_cors_answer() {
    let topic = unique("cors-headers");
    let origin = "https://app.example.com";
    let gateway = gateway_allowing(&topic, origin).await;
    let preflight = |origin: &str, method: &str| {
        gateway
            .http
            .request(reqwest::Method::OPTIONS, gateway.url())
            .header("Origin", origin)
            .header("Access-Control-Request-Method", method)
            .header("Access-Control-Request-Headers", "content-type")
            .send()
    };
    let ok = preflight(origin, "POST").await.expect("preflight");
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["access-control-allow-origin"], origin);
    assert_eq!(ok.headers()["access-control-allow-methods"], "GET, POST");
    assert_eq!(ok.headers()["access-control-max-age"], "60");
    let refused = preflight("https://evil.example.com", "POST").await.expect("preflight");
    assert_eq!(refused.status(), 400);
    assert!(refused.headers().get("access-control-allow-origin").is_none());
    let body: serde_json::Value = refused.json().await.expect("JSON");
    assert_eq!(body["key"], "CORS_PREFLIGHT_FAILED");
    assert!(body["message"].as_str().unwrap().contains("evil.example.com"), "{body}");
    // An error answer to an allowed origin is readable by its script too.
    let error = gateway.http.get(gateway.url()).header("Origin", origin).header("Accept", "image/png").send().await;
    let error = error.expect("GET");
    assert_eq!(error.status(), 400);
    assert_eq!(error.headers()["access-control-allow-origin"], origin);
    assert_eq!(error.headers()["access-control-allow-credentials"], "true");
    gateway.stop().await;
}

#[tokio::test]
async fn a_websocket_from_another_origin_is_refused() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let topic = unique("cors-ws");
    create_topic(&topic, 1).await;
    let origin = "https://app.example.com";
    let gateway = gateway_allowing(&topic, origin).await;
    let open = |from: &'static str| {
        let mut request = gateway.url().replacen("http://", "ws://", 1).into_client_request().expect("request");
        request.headers_mut().insert("Origin", from.parse().expect("header"));
        tokio_tungstenite::connect_async(request)
    };
    let refused = open("https://evil.example.com").await;
    assert!(
        matches!(&refused, Err(tokio_tungstenite::tungstenite::Error::Http(response)) if response.status() == 403),
        "{refused:?}"
    );
    let (_socket, response) = open("https://app.example.com").await.expect("an allowed origin upgrades");
    assert_eq!(response.status(), 101);
    gateway.stop().await;
}
