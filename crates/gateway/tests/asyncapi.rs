//! AsyncAPI documents of API definitions, as `kafka-edge asyncapi FILE` prints them and the admin
//! listener serves them, validated against the AsyncAPI 3.0.0 JSON schema (from the
//! `@asyncapi/specs` package, which scripts/bootstrap caches).

mod common;

use common::*;
use serde_json::{json, Value};
use std::process::Command;

const BINARY: &str = env!("CARGO_BIN_EXE_kafka-edge");

fn schema() -> Value {
    let path = std::env::var("KAFKA_EDGE_ASYNCAPI_SCHEMA").unwrap_or_else(|_| {
        let cache = std::env::var("XDG_CACHE_HOME").unwrap_or_else(|_| format!("{}/.cache", env!("HOME")));
        format!("{cache}/kafka-edge/asyncapi-3.0.0.schema.json")
    });
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("the AsyncAPI schema at {path} ({error}): run scripts/bootstrap"));
    serde_json::from_str(&text).expect("the schema is JSON")
}

/// Every way `document` breaks the AsyncAPI 3.0.0 schema.
fn violations(document: &Value) -> Vec<String> {
    let schema = schema();
    let validator = jsonschema::draft7::new(&schema).expect("the AsyncAPI schema compiles");
    validator.iter_errors(document).map(|error| format!("{} at {}", error, error.instance_path())).collect()
}

/// The demo API with every entrypoint, an api-key and a jwt plan beside the key-less one removed.
fn secured_definition() -> Value {
    let mut definition: Value =
        serde_json::from_str(include_str!("../../../examples/demo-api.json")).expect("demo definition");
    definition["plans"] = json!([
        {"id": "keys", "name": "keys", "security": {"type": "api-key"}, "status": "PUBLISHED"},
        {"id": "tokens", "name": "tokens", "status": "PUBLISHED",
         "security": {"type": "jwt", "configuration": {"signature": "HMAC_HS256", "publicKeyResolver": "GIVEN_KEY", "resolverParameter": "a-secret-of-at-least-32-bytes-long!!"}}}
    ]);
    definition
}

#[test]
fn the_command_prints_a_valid_document_with_a_channel_per_entrypoint_and_the_plans_security() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("api.json");
    std::fs::write(&file, secured_definition().to_string()).expect("write");
    let output = Command::new(BINARY).arg("asyncapi").arg(&file).output().expect("kafka-edge asyncapi");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let document: Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    assert_eq!(violations(&document), Vec::<String>::new(), "{document:#}");
    let mut broken = document.clone();
    broken["operations"]["send-http-post"]["action"] = json!("publish");
    assert!(!violations(&broken).is_empty(), "the schema check can fail: AsyncAPI 2's `publish` is no 3.0 action");
    assert_eq!(document["asyncapi"], "3.0.0");
    for entrypoint in ["http-get", "http-post", "sse", "websocket"] {
        assert_eq!(document["channels"][entrypoint]["address"], "/demo", "{entrypoint}");
    }
    assert_eq!(document["operations"]["send-http-post"]["action"], "send");
    assert_eq!(document["operations"]["receive-sse"]["action"], "receive");
    assert_eq!(document["servers"]["kafka"]["host"], "127.0.0.1:39092");
    assert_eq!(document["channels"]["kafka-demo"]["address"], "demo");
    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(schemes["api-key"]["type"], "httpApiKey");
    assert_eq!(schemes["jwt"]["scheme"], "bearer");
    assert_eq!(document["operations"]["send-http-post"]["security"].as_array().map(Vec::len), Some(2));

    // The example as shipped (key-less): valid, and no operation asks for a credential.
    let output = Command::new(BINARY).args(["asyncapi", "examples/demo-api.json"]).current_dir("../..").output();
    let output = output.expect("kafka-edge asyncapi");
    let document: Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    assert_eq!(violations(&document), Vec::<String>::new(), "{document:#}");
    assert!(document["operations"]["send-http-post"].get("security").is_none(), "{document:#}");

    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{\"id\": 1}").expect("write");
    let output = Command::new(BINARY).arg("asyncapi").arg(&broken).output().expect("kafka-edge asyncapi");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stdout).contains("broken.json"), "problems name the file");
}

#[tokio::test]
async fn the_admin_api_serves_the_document_of_each_loaded_api() {
    let spec = ApiSpec::new(&unique("asyncapi"));
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("api.json");
    std::fs::write(&file, spec.to_json().to_string()).expect("write");
    let admin = format!("127.0.0.1:{}", free_port());
    let token = "asyncapi-admin-token";
    let mut gateway = Command::new(BINARY)
        .args(["run", "--listen", &format!("127.0.0.1:{}", free_port()), "--admin-listen", &admin, "--api"])
        .arg(&file)
        .arg("--state")
        .arg(format!("file:{}", dir.path().join("state.json").display()))
        .env("KAFKA_EDGE_ADMIN_TOKEN", token)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start gateway");
    let http = reqwest::Client::new();
    let url = format!("http://{admin}/apis/{}/asyncapi", spec.id);
    let mut document = None;
    for _ in 0..300 {
        if let Ok(response) = http.get(&url).bearer_auth(token).send().await {
            assert_eq!(response.status(), 200);
            document = Some(response.json::<Value>().await.expect("JSON"));
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let document = document.expect("the admin listener answers");
    assert_eq!(violations(&document), Vec::<String>::new(), "{document:#}");
    assert_eq!(document["channels"]["http-post"]["address"], spec.path.as_str());
    let unauthorized = http.get(&url).send().await.expect("GET");
    assert_eq!(unauthorized.status(), 401, "the document is part of the admin API");
    let missing = http.get(format!("http://{admin}/apis/no-such-api/asyncapi")).bearer_auth(token).send().await;
    assert_eq!(missing.expect("GET").status(), 404);
    let _ = gateway.kill();
    let _ = gateway.wait();
}
