//! The README's tour, as a user pastes it: the demo API (examples/demo-api.json, on a fresh
//! one-partition topic like the one `scripts/demo` creates) answers exactly what the README shows
//! after each command.

mod common;

use common::*;

const README: &str = include_str!("../../../README.md");
const DEMO_API: &str = include_str!("../../../examples/demo-api.json");

/// The README's rendering of an answer: each line as a `# ` comment, an empty line as `#`.
fn as_shown(body: &str) -> String {
    body.lines()
        .map(|line| if line.is_empty() { "#".to_string() } else { format!("# {line}") })
        .collect::<Vec<_>>()
        .join("\n")
}

fn assert_shown(body: &str) {
    let shown = as_shown(body);
    assert!(README.contains(&shown), "the README does not show this answer:\n{shown}");
}

#[tokio::test]
async fn the_tour_answers_what_the_readme_shows() {
    let topic = unique("demo");
    create_topic(&topic, 1).await;
    let mut definition: serde_json::Value = serde_json::from_str(DEMO_API).expect("the demo API");
    let shared = &mut definition["endpointGroups"][0]["sharedConfiguration"];
    shared["producer"]["topics"] = serde_json::json!([topic]);
    shared["consumer"]["topics"] = serde_json::json!([topic]);
    definition["endpointGroups"][0]["endpoints"][0]["configuration"]["bootstrapServers"] = bootstrap().into();
    // Shorter than the demo's 5 s: the window only decides when an unfilled page answers.
    definition["listeners"][0]["entrypoints"][0]["configuration"]["messagesLimitDurationMs"] = 1000.into();
    let gateway = TestGateway::start_json(definition, "/demo").await;

    let accepted = gateway.post("hello").await;
    assert_eq!(accepted.status(), 202);
    assert_eq!(accepted.headers()["content-length"], "0");
    assert!(README.contains("# HTTP/1.1 202 Accepted\n# content-length: 0"));
    for body in [r#"{"order": 42}"#, "world"] {
        assert_eq!(gateway.post(body).await.status(), 202);
    }

    let get = |accept: &'static str, client: Option<&'static str>, query: &'static str| {
        let mut request = gateway.http.get(format!("{}{query}", gateway.url())).header("Accept", accept);
        if let Some(client) = client {
            request = request.header("X-Gravitee-Client-Identifier", client);
        }
        async move { request.send().await.expect("GET").text().await.expect("body") }
    };
    assert_shown(&get("application/json", None, "").await);
    assert_shown(&get("application/xml", Some("bob"), "").await);
    let text = get("text/plain", Some("carol"), "").await;
    assert_shown(&text);
    assert!(text.ends_with("content: world\n"), "no blank line after the last item: {text:?}");

    let alice = get("application/json", Some("alice"), "").await;
    let alice_again = get("application/json", Some("alice"), "").await;
    let dave = get("application/json", Some("dave"), "?limit=1").await;
    let continued = [alice, alice_again, dave].map(|body| as_shown(&body)).join("\n");
    let readme_lines: Vec<&str> = README.lines().filter(|line| line.starts_with("# {\"items\"")).collect();
    assert!(readme_lines.join("\n").contains(&continued), "continuation per client as the README shows:\n{continued}");

    let refused = gateway.http.delete(gateway.url()).send().await.expect("DELETE");
    assert_eq!(refused.status(), 405);
    assert_eq!(refused.headers()["allow"], "GET, POST");
    assert!(README.contains("# allow: GET, POST"));
    assert_shown(&refused.text().await.expect("body"));
    gateway.stop().await;
}
