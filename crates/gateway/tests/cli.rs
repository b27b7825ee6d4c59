//! The `kafka-edge` binary as a user runs it: `validate`, and `run` with a graceful SIGTERM.

mod common;

use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

const BINARY: &str = env!("CARGO_BIN_EXE_kafka-edge");

fn write_definition(dir: &std::path::Path, name: &str, definition: &serde_json::Value) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(definition).expect("test setup")).expect("test setup");
    path
}

#[test]
fn validate_accepts_the_shipped_example() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");
    let output = Command::new(BINARY).args(["validate", example]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));
    assert!(String::from_utf8_lossy(&output.stdout).contains("demo-api.json (API `demo`)"));
}

#[test]
fn validate_prints_one_line_per_problem_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let mut definition = ApiSpec::new("t").to_json();
    definition["listeners"][0]["entrypoints"][1]["qos"] = "at-least-once".into();
    definition["endpointGroups"][0]["endpoints"][0]["configuration"]["bootstrapServers"] = "nohost".into();
    let file = write_definition(dir.path(), "broken.json", &definition);
    let output = Command::new(BINARY).arg("validate").arg(&file).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    let file = file.display();
    assert_eq!(
        lines,
        [
            format!("{file}: listeners[0].entrypoints[1].qos: invalid value `at-least-once` for entrypoint `http-post`, expected one of `none`, `auto`"),
            format!("{file}: endpointGroups[0].endpoints[0].configuration.bootstrapServers: invalid value `nohost`, expected host:port (a comma-separated list of them)"),
        ]
    );
}

#[test]
fn run_refuses_an_invalid_definition_at_load_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut definition = ApiSpec::new("t").to_json();
    definition["endpointGroups"][0]["sharedConfiguration"]["consumer"]["autoOffsetReset"] = "first".into();
    let file = write_definition(dir.path(), "broken.json", &definition);
    let output = Command::new(BINARY).args(["run", "--listen", "127.0.0.1:0", "--api"]).arg(&file).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr
            .contains("consumer.autoOffsetReset: invalid value `first`, expected one of `latest`, `earliest`, `none`"),
        "{stderr}"
    );
}

#[tokio::test]
async fn sigterm_finishes_in_flight_requests_then_exits_cleanly() {
    let topic = unique("cli");
    create_topic(&topic, 1).await;
    let mut spec = ApiSpec::new(&topic);
    spec.http_get = serde_json::json!({"messagesLimitCount": 10, "messagesLimitDurationMs": 2000});
    let dir = tempfile::tempdir().unwrap();
    let file = write_definition(dir.path(), "api.json", &spec.to_json());
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let gateway = Command::new(BINARY)
        .args(["run", "--admin-listen", "127.0.0.1:0", "--api"])
        .arg(&file)
        .env("KAFKA_EDGE_LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}{}", spec.path);
    let http = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..300 {
        if http.post(&url).body("before shutdown").send().await.is_ok_and(|r| r.status() == 202) {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "the gateway answered");

    let client = unique("c");
    let in_flight =
        http.get(&url).header("Accept", "application/json").header("X-Gravitee-Client-Identifier", &client).send();
    let terminate = async {
        // The GET is being served once its consumer joined the client's group.
        let group = group_of(&spec.id, &client);
        assert!(eventually(|| group_members(&group) == 1).await, "the GET is in flight");
        let status = Command::new("kill").args(["-TERM", &gateway.id().to_string()]).status().unwrap();
        assert!(status.success());
    };
    let (response, ()) = tokio::join!(in_flight, terminate);
    let response = response.expect("the in-flight GET completes");
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(contents(&body), ["before shutdown"]);

    let status = tokio::task::spawn_blocking(move || gateway.wait_with_output()).await.unwrap().unwrap();
    assert_eq!(status.status.code(), Some(0), "{}", String::from_utf8_lossy(&status.stderr));
    let log = String::from_utf8_lossy(&status.stderr);
    assert!(log.contains("SIGTERM received"), "{log}");
    assert!(read_records(&topic, 1).len() == 1);
}

#[test]
fn validate_fails_when_a_path_holds_no_definition() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(BINARY).arg("validate").arg(dir.path()).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("no API definition (.json, .yaml, .yml) found in"));
}

#[test]
fn validate_reports_policy_problems_with_their_path() {
    let dir = tempfile::tempdir().unwrap();
    let mut definition = ApiSpec::new("t").to_json();
    definition["flows"] = serde_json::json!([{"publish": [{"policy": "rate-limit"}]}]);
    let file = write_definition(dir.path(), "flows.json", &definition);
    let output = Command::new(BINARY).arg("validate").arg(&file).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.starts_with(&format!(
            "{}: flows[0].publish[0].policy: unknown policy `rate-limit`, expected one of `assign-attributes`",
            file.display()
        )),
        "{stdout}"
    );
}
