//! Helpers for the gateway's integration tests: a gateway started in-process on a random port and
//! the API definitions it serves; the broker helpers come from the test bed's support crate.
#![allow(dead_code)]

use kafka_edge_definition::{load_str, Format};
use kafka_edge_gateway::Gateway;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

pub use kafka_edge_testkit::*;

pub mod browser;
pub mod oauth;
pub mod webhook;

/// The consumer group the gateway uses for `client` (X-Gravitee-Client-Identifier) calling API
/// `api_id` from loopback.
pub fn group_of(api_id: &str, client: &str) -> String {
    let mut headers = http::HeaderMap::new();
    headers.insert("x-gravitee-client-identifier", client.parse().expect("header value"));
    kafka_edge_gateway::client_identifier::key_less(api_id, "127.0.0.1".parse().expect("address"), &headers)
}

/// A loopback port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("address").port()
}

/// `kafka-edge run` as a process, as an operator starts it, with its log in a file.
pub struct GatewayProcess {
    pub child: std::process::Child,
    /// `http://127.0.0.1:PORT` of the client listener.
    pub base: String,
    log: std::path::PathBuf,
    pub http: reqwest::Client,
}

impl GatewayProcess {
    /// Runs `kafka-edge [global] run --listen 127.0.0.1:PORT --state file:DIR/state.json ARGS`,
    /// logging to `DIR/gateway.log`.
    pub fn start(dir: &std::path::Path, global: &[&str], args: &[&std::ffi::OsStr]) -> Self {
        Self::start_with_env(dir, global, args, &[])
    }

    /// As `start`, with these environment variables set.
    pub fn start_with_env(
        dir: &std::path::Path,
        global: &[&str],
        args: &[&std::ffi::OsStr],
        env: &[(&str, &str)],
    ) -> Self {
        let port = free_port();
        let log = dir.join("gateway.log");
        let stderr = std::fs::File::create(&log).expect("log file");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_kafka-edge"))
            .args(global)
            .args(["run", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--state")
            .arg(format!("file:{}", dir.join("state.json").display()))
            .args(args)
            .env_remove("KAFKA_EDGE_ADMIN_TOKEN")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start gateway");
        Self { child, base: format!("http://127.0.0.1:{port}"), log, http: reqwest::Client::new() }
    }

    /// Waits until it accepts connections; panics with its log if it never does.
    pub async fn wait_until_listening(&self) {
        let address = self.base.trim_start_matches("http://").to_string();
        let listening = eventually(|| std::net::TcpStream::connect(&address).is_ok()).await;
        assert!(listening, "the gateway did not start: {}", self.log());
    }

    /// GET `path` (with its query) as client `client` (X-Gravitee-Client-Identifier), JSON
    /// accepted: the status and the body.
    pub async fn get_json(&self, path: &str, client: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header("Accept", "application/json")
            .header("X-Gravitee-Client-Identifier", client)
            .send()
            .await
            .expect("GET");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn signal(&self, signal: &str) {
        let status =
            std::process::Command::new("kill").args([signal, &self.child.id().to_string()]).status().expect("kill");
        assert!(status.success());
    }

    /// SIGTERM, then the exit code and everything it logged.
    pub async fn stop(self) -> (Option<i32>, String) {
        self.signal("-TERM");
        let Self { child, log, .. } = self;
        let output = tokio::task::spawn_blocking(move || child.wait_with_output()).await.expect("join").expect("wait");
        (output.status.code(), std::fs::read_to_string(&log).unwrap_or_default())
    }
}

/// What the test API looks like.
pub struct ApiSpec {
    pub id: String,
    pub path: String,
    pub producer_topics: Vec<String>,
    pub consumer_topics: Vec<String>,
    pub http_get: Value,
    pub http_get_qos: &'static str,
    pub http_post: Value,
    pub sse: Value,
    pub sse_qos: &'static str,
    pub consumer_extra: Value,
    pub producer_extra: Value,
    pub bootstrap: String,
    pub flows: Value,
    /// `sharedConfiguration.security`, when not PLAINTEXT.
    pub security: Option<Value>,
}

impl ApiSpec {
    pub fn new(topic: &str) -> Self {
        Self {
            id: unique("api"),
            path: format!("/{}", unique("api")),
            producer_topics: vec![topic.to_string()],
            consumer_topics: vec![topic.to_string()],
            http_get: json!({"messagesLimitCount": 10, "messagesLimitDurationMs": 3000}),
            http_get_qos: "auto",
            http_post: json!({}),
            sse: json!({}),
            sse_qos: "auto",
            consumer_extra: json!({"autoOffsetReset": "earliest"}),
            producer_extra: json!({}),
            bootstrap: bootstrap(),
            flows: json!([]),
            security: None,
        }
    }

    pub fn to_json(&self) -> Value {
        let mut consumer = json!({"enabled": true, "topics": self.consumer_topics});
        merge(&mut consumer, &self.consumer_extra);
        let mut producer = json!({"enabled": true, "topics": self.producer_topics});
        merge(&mut producer, &self.producer_extra);
        json!({
            "id": self.id,
            "name": "test",
            "definitionVersion": "4.0.0",
            "type": "message",
            "listeners": [{
                "type": "http",
                "paths": [{"path": self.path}],
                "entrypoints": [
                    {"type": "http-get", "qos": self.http_get_qos, "configuration": self.http_get},
                    {"type": "http-post", "configuration": self.http_post},
                    {"type": "sse", "qos": self.sse_qos, "configuration": self.sse}
                ]
            }],
            "flows": self.flows,
            "endpointGroups": [{
                "name": "default", "type": "kafka",
                "sharedConfiguration": match &self.security {
                    Some(security) => json!({"consumer": consumer, "producer": producer, "security": security}),
                    None => json!({"consumer": consumer, "producer": producer}),
                },
                "endpoints": [{"name": "default", "type": "kafka", "configuration": {"bootstrapServers": self.bootstrap}}]
            }]
        })
    }
}

fn merge(target: &mut Value, extra: &Value) {
    if let (Some(target), Some(extra)) = (target.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            target.insert(k.clone(), v.clone());
        }
    }
}

/// A gateway serving one API, in this process, on a random loopback port.
pub struct TestGateway {
    pub base: String,
    pub api_id: String,
    pub path: String,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    pub http: reqwest::Client,
}

/// The API a definition describes, built as `kafka-edge run` builds it (with a pool of its own).
pub fn built(definition: &kafka_edge_definition::ApiDefinition) -> std::sync::Arc<kafka_edge_gateway::LoadedApi> {
    let clients = std::sync::Arc::new(kafka_edge_endpoint_kafka::KafkaClients::default());
    std::sync::Arc::new(kafka_edge_gateway::LoadedApi::build(definition, &clients).expect("API builds"))
}

impl TestGateway {
    pub async fn start(spec: &ApiSpec) -> Self {
        Self::start_json(spec.to_json(), &spec.path).await
    }

    pub async fn start_json(definition: Value, path: &str) -> Self {
        Self::start_limited(definition, path, kafka_edge_message::DEFAULT_MAX_MESSAGE_BYTES).await
    }

    /// As `kafka-edge run --max-message-bytes <max_message_bytes>` serves the API.
    pub async fn start_limited(definition: Value, path: &str, max_message_bytes: usize) -> Self {
        let options = kafka_edge_gateway::Options { max_message_bytes, ..Default::default() };
        Self::start_with(definition, path, options).await
    }

    /// Served with these options.
    pub async fn start_with(definition: Value, path: &str, options: kafka_edge_gateway::Options) -> Self {
        Self::start_configured(definition, path, options, Default::default()).await
    }

    /// As `kafka-edge run` with these consumer options (`--group-protocol`,
    /// `--http-get-keep-warm`) serves the API.
    pub async fn start_with_consumers(spec: &ApiSpec, consumers: kafka_edge_endpoint_kafka::ConsumerOptions) -> Self {
        Self::start_configured(spec.to_json(), &spec.path, Default::default(), consumers).await
    }

    pub async fn start_configured(
        definition: Value,
        path: &str,
        options: kafka_edge_gateway::Options,
        consumers: kafka_edge_endpoint_kafka::ConsumerOptions,
    ) -> Self {
        let loaded = load_str(&definition.to_string(), Format::Json, "test").expect("valid test definition");
        let shutdown = CancellationToken::new();
        let producers =
            kafka_edge_endpoint_kafka::ProducerPool::new().with_max_message_bytes(options.max_message_bytes);
        let clients = std::sync::Arc::new(kafka_edge_endpoint_kafka::KafkaClients::new(
            std::sync::Arc::new(producers),
            consumers,
        ));
        let api = kafka_edge_gateway::LoadedApi::build(&loaded.api, &clients).expect("API builds");
        let api_id = api.id.clone();
        let gateway = Gateway::with_options(vec![std::sync::Arc::new(api)], shutdown.clone(), options);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let task = tokio::spawn(async move {
            gateway.serve(listener).await.expect("serve");
        });
        Self { base, api_id, path: path.to_string(), shutdown, task, http: reqwest::Client::new() }
    }

    /// The consumer group this gateway uses for `client` calling from loopback.
    pub fn group_of(&self, client: &str) -> String {
        group_of(&self.api_id, client)
    }

    pub fn url(&self) -> String {
        format!("{}{}", self.base, self.path)
    }

    pub async fn post(&self, body: &str) -> reqwest::Response {
        self.http.post(self.url()).body(body.to_string()).send().await.expect("POST")
    }

    /// GET as client `client` (X-Gravitee-Client-Identifier), JSON body.
    pub async fn get_json(&self, client: &str, query: &str) -> Value {
        let response = self
            .http
            .get(format!("{}{query}", self.url()))
            .header("Accept", "application/json")
            .header("X-Gravitee-Client-Identifier", client)
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status(), 200, "GET status");
        response.json().await.expect("JSON body")
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}

/// The `content` of every item of an http-get JSON body.
pub fn contents(body: &Value) -> Vec<String> {
    body["items"].as_array().map_or_else(Vec::new, |items| {
        items.iter().map(|item| item["content"].as_str().unwrap_or_default().to_string()).collect()
    })
}
