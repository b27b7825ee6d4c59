//! OpenTelemetry export (docs/operations.md#tracing): the spans of served requests reach a real
//! OTLP/HTTP receiver (testkit/otlp-receiver, decoding with OpenTelemetry's own protobuf classes),
//! and a published record's `traceparent` names the exported span as its parent.

mod common;

use common::*;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const PARENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN: &str = "00f067aa0ba902b7";

/// testkit/otlp-receiver in the virtual environment scripts/bootstrap made.
struct Receiver {
    child: Child,
    url: String,
    http: reqwest::Client,
}

impl Receiver {
    fn start() -> Self {
        let python = std::env::var("KAFKA_EDGE_OTLP_PYTHON").unwrap_or_else(|_| {
            let cache = std::env::var("XDG_CACHE_HOME").unwrap_or_else(|_| format!("{}/.cache", env!("HOME")));
            format!("{cache}/kafka-edge/otlp-venv/bin/python")
        });
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testkit/otlp-receiver");
        let mut child = Command::new(&python)
            .arg(script)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("{python} ({error}): run scripts/bootstrap"));
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("the receiver's port");
        let port = line.trim().strip_prefix("listening ").unwrap_or_else(|| panic!("receiver said {line:?}"));
        Self { child, url: format!("http://127.0.0.1:{port}"), http: reqwest::Client::new() }
    }

    async fn exports(&self) -> Vec<Value> {
        let exports = self.http.get(format!("{}/exports", self.url)).send().await.expect("receiver answers");
        exports.json().await.expect("JSON")
    }

    /// The first export holding a span named `name`, with that span; waits up to 20 s.
    async fn span(&self, name: &str) -> (Value, Value) {
        for _ in 0..200 {
            for export in self.exports().await {
                let spans = export["spans"].as_array().cloned().unwrap_or_default();
                if let Some(span) = spans.into_iter().find(|span| span["name"] == name) {
                    return (export, span);
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no span named {name:?} in {:?}", self.exports().await);
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the gateway on `spec` with `env`, and waits until it answers.
async fn gateway(dir: &std::path::Path, spec: &ApiSpec, env: &[(&str, &str)], extra: &[&str]) -> GatewayProcess {
    let file = dir.join("api.json");
    std::fs::write(&file, spec.to_json().to_string()).expect("write definition");
    let mut args = vec!["--admin-listen".as_ref(), "off".as_ref(), "--api".as_ref(), file.as_os_str()];
    args.extend(extra.iter().map(|arg| std::ffi::OsStr::new(*arg)));
    let gateway = GatewayProcess::start_with_env(dir, &[], &args, env);
    let health = format!("{}/no-such-api", gateway.base);
    let listening =
        eventually(|| std::net::TcpStream::connect(gateway.base.trim_start_matches("http://")).is_ok()).await;
    assert!(listening, "the gateway does not listen: {}", gateway.log());
    let _ = gateway.http.get(health).send().await;
    gateway
}

fn attribute<'a>(span: &'a Value, name: &str) -> &'a Value {
    &span["attributes"][name]
}

#[tokio::test]
async fn a_record_carries_the_exported_server_span_of_its_post_as_parent() {
    let topic = unique("otlp");
    create_topic(&topic, 1).await;
    let spec = ApiSpec::new(&topic);
    let receiver = Receiver::start();
    let dir = tempfile::tempdir().expect("dir");
    let secret = "otlp-s3cret-token";
    let authorization = format!("authorization=Bearer%20{secret}");
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url.as_str()),
        ("OTEL_EXPORTER_OTLP_HEADERS", authorization.as_str()),
        ("OTEL_SERVICE_NAME", "edge-under-test"),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    let gateway = gateway(dir.path(), &spec, &env, &[]).await;
    let url = format!("{}{}", gateway.base, spec.path);
    let traceparent = format!("00-{PARENT_TRACE}-{PARENT_SPAN}-01");
    let posted = gateway
        .http
        .post(&url)
        .header("traceparent", &traceparent)
        .header("tracestate", "vendor=abc")
        .body("traced")
        .send()
        .await
        .expect("POST");
    assert_eq!(posted.status(), 202);

    let (export, span) = receiver.span(&format!("POST {}", spec.path)).await;
    assert_eq!(export["content_type"], "application/x-protobuf", "http/protobuf is the default");
    assert_eq!(export["headers"]["authorization"], format!("Bearer {secret}"));
    assert_eq!(export["resource"]["service.name"], "edge-under-test");
    assert_eq!(span["trace_id"], PARENT_TRACE, "{span}");
    assert_eq!(span["parent_span_id"], PARENT_SPAN);
    assert_eq!(span["trace_state"], "vendor=abc");
    assert_eq!(span["kind"], 2, "SERVER");
    assert_eq!(span["status_code"], 0, "unset for a 202");
    assert_eq!(attribute(&span, "http.request.method"), "POST");
    assert_eq!(attribute(&span, "http.response.status_code"), 202);
    assert_eq!(attribute(&span, "http.route"), spec.path.as_str());
    assert_eq!(attribute(&span, "kafka_edge.api"), spec.id.as_str());
    assert_eq!(attribute(&span, "kafka_edge.entrypoint"), "http-post");
    assert!(span["end"].as_u64() >= span["start"].as_u64() && span["start"].as_u64() > Some(0));
    let span_id = span["span_id"].as_str().expect("span id").to_owned();
    assert_ne!(span_id, PARENT_SPAN);

    // The record names the gateway's span as its parent, in the same trace.
    let records = read_records(&topic, 1);
    let headers = headers(&records[0]);
    let expected = [("traceparent", format!("00-{PARENT_TRACE}-{span_id}-01")), ("tracestate", "vendor=abc".into())];
    assert_eq!(headers, expected.map(|(name, value)| (name.to_string(), value)));

    // A request without trace context starts a trace of its own.
    let page = gateway
        .http
        .get(&url)
        .header("Accept", "application/json")
        .header("X-Gravitee-Client-Identifier", unique("reader"))
        .send()
        .await
        .expect("GET");
    assert_eq!(page.status(), 200);
    let (_, get_span) = receiver.span(&format!("GET {}", spec.path)).await;
    assert_eq!(get_span["parent_span_id"], "", "a root span");
    assert_ne!(get_span["trace_id"], PARENT_TRACE);
    assert_eq!(attribute(&get_span, "kafka_edge.entrypoint"), "http-get");
    assert_eq!(attribute(&get_span, "http.response.status_code"), 200);

    let (code, log) = gateway.stop().await;
    assert_eq!(code, Some(0), "{log}");
    assert!(!log.contains(secret), "the exporter's headers reached the log: {log}");
}

#[tokio::test]
async fn http_json_exports_and_a_failed_post_is_an_error_span() {
    // No broker at this address: the POST fails once the produce timeout passed.
    let mut spec = ApiSpec::new(&unique("otlp-unreachable"));
    spec.bootstrap = format!("127.0.0.1:{}", free_port());
    let receiver = Receiver::start();
    let dir = tempfile::tempdir().expect("dir");
    let env = [
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &*format!("{}/v1/traces", receiver.url)),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    let gateway = gateway(dir.path(), &spec, &env, &["--produce-timeout", "1"]).await;
    let posted = gateway.http.post(format!("{}{}", gateway.base, spec.path)).body("lost").send().await.expect("POST");
    let status = posted.status().as_u16();
    assert!((500..600).contains(&status), "{status}");

    let (export, span) = receiver.span(&format!("POST {}", spec.path)).await;
    assert_eq!(export["content_type"], "application/json");
    assert_eq!(export["resource"]["service.name"], "kafka-edge", "the default service name");
    assert_eq!(span["status_code"], 2, "ERROR for a 5xx: {span}");
    assert_eq!(attribute(&span, "http.response.status_code"), i64::from(status));
    gateway.stop().await;
}

#[tokio::test]
async fn a_variable_that_cannot_be_used_stops_the_start_with_its_name() {
    let spec = ApiSpec::new(&unique("otlp-refused"));
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("api.json");
    std::fs::write(&file, spec.to_json().to_string()).expect("write definition");
    let output = Command::new(env!("CARGO_BIN_EXE_kafka-edge"))
        .args(["run", "--admin-listen", "off", "--listen", "127.0.0.1:0", "--api"])
        .arg(&file)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("OTEL_EXPORTER_OTLP_PROTOCOL: `grpc` is not supported"), "{stderr}");
}
