//! What a new user meets in the first hour, as they meet it: the binary's `--version` and `--help`,
//! the README's list of `run` options, a method the API does not serve, and an address in use.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::process::{Command, Stdio};

const BINARY: &str = env!("CARGO_BIN_EXE_kafka-edge");
const README: &str = include_str!("../../../README.md");

/// The `--long` options a text names.
fn long_options(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (index, _) in text.match_indices("--") {
        let name: String = text[index + 2..].chars().take_while(|c| c.is_ascii_lowercase() || *c == '-').collect();
        if !name.is_empty() && !name.ends_with('-') {
            found.insert(format!("--{name}"));
        }
    }
    found
}

#[test]
fn the_readme_lists_every_run_option_and_no_other() {
    let help = Command::new(BINARY).args(["run", "--help"]).output().expect("run --help");
    assert!(help.status.success());
    let mut from_help = long_options(&String::from_utf8_lossy(&help.stdout));
    from_help.remove("--help");
    let section = README.split("## Your own Kafka").nth(1).expect("the README's Your own Kafka section");
    let section = section.split("\n## ").next().unwrap_or_default();
    // The option list: the bullets that start with an option.
    let bullets: String = section.lines().filter(|line| line.starts_with("- `--")).collect::<Vec<_>>().join("\n");
    let from_readme: BTreeSet<String> =
        bullets.lines().flat_map(|line| long_options(line.split('`').nth(1).unwrap_or_default())).collect();
    assert_eq!(from_readme, from_help, "README's list of run options vs `kafka-edge run --help`");
}

#[test]
fn help_tells_how_to_set_the_log_level_and_what_validate_takes() {
    let help = Command::new(BINARY).arg("--help").output().expect("--help");
    assert!(String::from_utf8_lossy(&help.stdout).contains("RUST_LOG"), "--help names RUST_LOG");
    let validate = Command::new(BINARY).args(["validate", "--help"]).output().expect("validate --help");
    let text = String::from_utf8_lossy(&validate.stdout);
    let argument = text.lines().skip_while(|line| !line.contains("Arguments:")).nth(1).unwrap_or_default();
    assert!(
        argument.contains("FILE|DIR") && argument.split("FILE|DIR").nth(1).is_some_and(|rest| rest.trim().len() > 10),
        "{text}"
    );
}

#[test]
fn version_names_the_source_revision() {
    let output = Command::new(BINARY).arg("--version").output().expect("--version");
    let text = String::from_utf8_lossy(&output.stdout);
    let expected_prefix = format!("kafka-edge {} (", env!("CARGO_PKG_VERSION"));
    assert!(text.starts_with(&expected_prefix), "{text}");
    let revision = text.trim_end().trim_start_matches(&expected_prefix).trim_end_matches(')');
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_string());
    match head {
        Some(head) => assert_eq!(revision, head, "built from this checkout"),
        None => assert_eq!(revision, "unknown"),
    }
}

#[tokio::test]
async fn a_method_no_entrypoint_serves_gets_405_with_allow_and_an_unknown_path_keeps_the_404() {
    let spec = ApiSpec::new(&unique("topic"));
    let gateway = TestGateway::start(&spec).await;
    let response = gateway.http.delete(gateway.url()).send().await.expect("DELETE");
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "GET, POST");
    let body: serde_json::Value = response.json().await.expect("JSON body");
    assert_eq!(body["http_status_code"], 405);
    assert!(body["message"].as_str().is_some_and(|m| m.contains("DELETE")), "{body}");

    let response = gateway.http.get(format!("{}/nothing-here", gateway.base)).send().await.expect("GET");
    assert_eq!(response.status(), 404);
    assert_eq!(response.text().await.expect("body"), "No context-path matches the request URI.");
    gateway.stop().await;
}

/// Runs `kafka-edge run` with `args` and `env` while `taken` holds its address; returns stderr.
/// `kafka-edge run` with `args`, expected to refuse to start: its stderr.
fn run_on_taken_address(args: &[&str], env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().expect("test setup");
    let api = dir.path().join("api.json");
    std::fs::write(&api, ApiSpec::new("t").to_json().to_string()).expect("test setup");
    let mut command = Command::new(BINARY);
    command.arg("run").arg("--api").arg(&api).args(args);
    if !args.contains(&"--admin-listen") {
        command.args(["--admin-listen", "127.0.0.1:0"]);
    }
    command.env("KAFKA_EDGE_STATE", format!("file:{}", dir.path().join("state").display()));
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.stdin(Stdio::null()).output().expect("kafka-edge run");
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn an_address_in_use_names_the_option_that_sets_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("test setup");
    let address = taken.local_addr().expect("test setup").to_string();
    let free =
        std::net::TcpListener::bind("127.0.0.1:0").expect("test setup").local_addr().expect("test setup").to_string();

    let stderr = run_on_taken_address(&["--listen", &address], &[]);
    assert!(
        stderr.contains(&address) && stderr.contains("--listen") && stderr.contains("KAFKA_EDGE_LISTEN"),
        "{stderr}"
    );

    let stderr = run_on_taken_address(
        &["--listen", &free, "--admin-listen", &address],
        &[("KAFKA_EDGE_ADMIN_TOKEN", "first-hour-token")],
    );
    assert!(
        stderr.contains(&address) && stderr.contains("--admin-listen") && stderr.contains("KAFKA_EDGE_ADMIN_LISTEN"),
        "{stderr}"
    );
    assert!(!stderr.contains("first-hour-token"), "the admin token stays out of the log");
}

#[test]
fn an_admin_api_off_loopback_needs_tls() {
    let stderr = run_on_taken_address(
        &["--listen", "127.0.0.1:0", "--admin-listen", "0.0.0.0:0"],
        &[("KAFKA_EDGE_ADMIN_TOKEN", "first-hour-token")],
    );
    assert!(stderr.contains("--admin-tls-cert") && stderr.contains("plain HTTP"), "{stderr}");
    assert!(!stderr.contains("first-hour-token"), "the admin token stays out of the log");
}

#[tokio::test]
async fn an_admin_api_with_tls_serves_off_loopback() {
    let certs = std::path::PathBuf::from(std::env::var("KAFKA_EDGE_TESTKIT_CERTS").expect("run with scripts/test"));
    let dir = tempfile::tempdir().expect("test setup");
    let api = dir.path().join("api.json");
    std::fs::write(&api, ApiSpec::new("t").to_json().to_string()).expect("test setup");
    let port = std::net::TcpListener::bind("0.0.0.0:0").expect("test setup").local_addr().expect("test setup").port();
    let mut child = Command::new(BINARY)
        .args(["run", "--listen", "127.0.0.1:0", "--admin-listen", &format!("0.0.0.0:{port}")])
        .arg("--api")
        .arg(&api)
        .arg("--admin-tls-cert")
        .arg(certs.join("broker.cert.pem"))
        .arg("--admin-tls-key")
        .arg(certs.join("broker.key.pem"))
        .env("KAFKA_EDGE_STATE", format!("file:{}", dir.path().join("state").display()))
        .env("KAFKA_EDGE_ADMIN_TOKEN", "first-hour-token")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("kafka-edge run");
    let ca = reqwest::Certificate::from_pem(&std::fs::read(certs.join("ca.pem")).expect("CA")).expect("CA");
    let client = reqwest::Client::builder().add_root_certificate(ca).build().expect("client");
    let mut answered = None;
    for _ in 0..300 {
        let call = client.get(format!("https://localhost:{port}/apis/nope/keys")).bearer_auth("first-hour-token");
        if let Ok(response) = call.send().await {
            answered = Some(response.status());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(answered, Some(reqwest::StatusCode::NOT_FOUND), "the admin API answered over HTTPS");
}

#[tokio::test]
async fn a_missing_topic_is_logged_once_with_its_api_entrypoint_and_cluster() {
    let dir = tempfile::tempdir().expect("test setup");
    let topic = unique("never-created");
    let mut spec = ApiSpec::new(&topic);
    spec.http_get = serde_json::json!({"messagesLimitCount": 10, "messagesLimitDurationMs": 300});
    let definition = spec.to_json();
    let api_id = definition["id"].as_str().expect("id").to_string();
    let api = dir.path().join("api.json");
    std::fs::write(&api, definition.to_string()).expect("test setup");
    let address = std::net::TcpListener::bind("127.0.0.1:0").expect("test setup").local_addr().expect("test setup");
    let log = std::fs::File::create(dir.path().join("stderr")).expect("test setup");
    let mut gateway = Command::new(BINARY)
        .arg("run")
        .arg("--api")
        .arg(&api)
        .args(["--listen", &address.to_string(), "--admin-listen", "127.0.0.1:0"])
        .env("KAFKA_EDGE_STATE", format!("file:{}", dir.path().join("state").display()))
        .stderr(log)
        .spawn()
        .expect("kafka-edge run");
    let url = format!("http://{address}{}", spec.path);
    let http = reqwest::Client::new();
    let listening = eventually(|| std::net::TcpStream::connect(address).is_ok()).await;
    assert!(listening, "the gateway listens");
    for _ in 0..2 {
        let response = http.get(&url).header("Accept", "application/json").send().await.expect("GET");
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.expect("body"), r#"{"items":[]}"#);
    }
    let stopped = Command::new("kill").args(["-TERM", &gateway.id().to_string()]).status().expect("kill");
    assert!(stopped.success());
    assert!(gateway.wait().expect("exit").success());

    let stderr = std::fs::read_to_string(dir.path().join("stderr")).expect("stderr");
    let reports: Vec<&str> = stderr.lines().filter(|line| line.contains("does not exist")).collect();
    assert_eq!(reports.len(), 1, "one report for two requests within a minute:\n{stderr}");
    let report = reports[0];
    assert!(report.contains("WARN"), "{report}");
    for expected in [api_id.as_str(), "http-get", topic.as_str(), bootstrap().as_str(), "checkTopicExistence"] {
        assert!(report.contains(expected), "`{expected}` missing from: {report}");
    }
    assert!(!stderr.contains("ERROR"), "no unattributed error line:\n{stderr}");
}
