//! The gateway under test: its API definitions, the child process, readiness, and its memory.

use anyhow::{bail, Context};
use serde_json::{json, Value};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The context path of the bench API.
pub const CONTEXT_PATH: &str = "/bench";

/// The context path of the second bench API, whose publish phase runs a three-step flow.
pub const FLOW_CONTEXT_PATH: &str = "/bench-flow";

/// How long the gateway may take to answer its first request.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// One API: http-post produces to `produce_topic`, http-get consumes `consume_topic`.
pub fn api_definition(bootstrap: &str, produce_topic: &str, consume_topic: &str, get_limit: u64) -> Value {
    json!({
        "id": "kafka-edge-bench",
        "name": "kafka-edge benchmark",
        "apiVersion": "1.0",
        "definitionVersion": "4.0.0",
        "type": "message",
        "listeners": [{
            "type": "http",
            "paths": [{ "path": CONTEXT_PATH }],
            "entrypoints": [
                {
                    "type": "http-get",
                    "qos": "auto",
                    "configuration": {
                        "messagesLimitCount": get_limit,
                        "messagesLimitDurationMs": 1000,
                        "headersInPayload": false,
                        "metadataInPayload": false
                    }
                },
                { "type": "http-post", "configuration": { "requestHeadersToMessage": false } },
                { "type": "sse", "qos": "auto", "configuration": {} }
            ]
        }],
        "endpointGroups": [{
            "name": "default-group",
            "type": "kafka",
            "sharedConfiguration": {
                "security": { "protocol": "PLAINTEXT" },
                "producer": { "enabled": true, "topics": [produce_topic], "compressionType": "none" },
                "consumer": { "enabled": true, "topics": [consume_topic], "autoOffsetReset": "earliest", "encodeMessageId": true }
            },
            "endpoints": [{
                "name": "default",
                "type": "kafka",
                "weight": 1,
                "inheritConfiguration": true,
                "configuration": { "bootstrapServers": bootstrap }
            }]
        }],
        "plans": [{ "id": "keyless", "name": "Keyless", "security": { "type": "key-less" }, "mode": "STANDARD", "status": "PUBLISHED" }]
    })
}

/// The context paths of the APIs behind an api-key plan and a jwt plan (HMAC).
pub const API_KEY_CONTEXT_PATH: &str = "/bench-api-key";
pub const JWT_CONTEXT_PATH: &str = "/bench-jwt";
/// The key of the api-key API, given to the gateway with `--api-keys`.
pub const API_KEY: &str = "kafka-edge-bench-api-key-0123456789";
/// The HMAC secret of the jwt API.
pub const JWT_SECRET: &str = "kafka-edge-bench-hmac-secret-of-32-bytes";

/// The bench API on `path`, produced to `topic`, behind `plan`.
pub fn plan_api_definition(bootstrap: &str, id: &str, path: &str, topic: &str, get_limit: u64, plan: Value) -> Value {
    let mut api = topic_api_definition(bootstrap, id, path, topic, get_limit);
    api["plans"] = json!([plan]);
    api
}

/// A JWT for the jwt API: HS256 with `JWT_SECRET`, client `kafka-edge-bench`, valid for a day.
pub fn jwt() -> String {
    use base64::Engine as _;
    use hmac::Mac as _;
    let encode = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let expires =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs() + 86_400;
    let header = encode(json!({"alg": "HS256", "typ": "JWT"}).to_string().as_bytes());
    let claims = encode(json!({"client_id": "kafka-edge-bench", "exp": expires}).to_string().as_bytes());
    let signed = format!("{header}.{claims}");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(JWT_SECRET.as_bytes()).expect("HMAC takes any key length");
    mac.update(signed.as_bytes());
    format!("{signed}.{}", encode(&mac.finalize().into_bytes()))
}

/// The context paths of the SSE APIs: POST → event latency, and idle streams.
pub const SSE_LATENCY_CONTEXT_PATH: &str = "/bench-sse";
pub const SSE_IDLE_CONTEXT_PATH: &str = "/bench-idle";
/// The context path of the API that takes batches (the bridge's produce format).
pub const BATCH_CONTEXT_PATH: &str = "/bench-batch";

/// The bench API again on `path`: http-post produces to `topic`, http-get and sse consume it.
pub fn topic_api_definition(bootstrap: &str, id: &str, path: &str, topic: &str, get_limit: u64) -> Value {
    let mut api = api_definition(bootstrap, topic, topic, get_limit);
    api["id"] = json!(id);
    api["name"] = json!(format!("kafka-edge benchmark, {path}"));
    api["listeners"][0]["paths"][0]["path"] = json!(path);
    api
}

/// The bench API again, as a second API on `FLOW_CONTEXT_PATH` that produces to `produce_topic`
/// through a publish flow of three steps: the record key from the request's `X-Key` header, a
/// record header from the message, and a plain message attribute.
pub fn flow_api_definition(bootstrap: &str, produce_topic: &str, get_limit: u64) -> Value {
    let mut api = api_definition(bootstrap, produce_topic, produce_topic, get_limit);
    api["id"] = json!("kafka-edge-bench-flow");
    api["name"] = json!("kafka-edge benchmark, publish flow");
    api["listeners"][0]["paths"][0]["path"] = json!(FLOW_CONTEXT_PATH);
    api["flows"] = json!([{
        "name": "three-step publish",
        "publish": [
            {
                "name": "Record key from X-Key",
                "policy": "assign-attributes",
                "configuration": { "attributes": [{ "name": "gravitee.attribute.kafka.recordKey", "value": "{#request.headers['X-Key'][0]}" }] }
            },
            {
                "name": "Content length header",
                "policy": "transform-headers",
                "configuration": { "addHeaders": [{ "name": "X-Content-Length", "value": "{#message.content.length()}" }] }
            },
            {
                "name": "Plain attribute",
                "policy": "assign-attributes",
                "configuration": { "attributes": [{ "name": "bench.flow", "value": "three-step" }] }
            }
        ]
    }]);
    api
}

/// The running gateway; killed when dropped, so no error path leaves it behind.
pub struct GatewayProcess {
    child: Child,
    pub address: SocketAddr,
    log: PathBuf,
}

impl GatewayProcess {
    /// Starts the gateway as `start_with` does, with the bench's API key (`--api-keys`, a file
    /// written into `temp`, which also holds the state file).
    pub async fn start(binary: &Path, definitions: &[PathBuf], temp: &Path, log: PathBuf) -> anyhow::Result<Self> {
        let keys = temp.join("api-keys.json");
        let key =
            json!([{"api": "kafka-edge-bench-api-key", "key": API_KEY, "plan": "keyed", "subscription": "bench"}]);
        std::fs::write(&keys, key.to_string()).with_context(|| format!("writing {}", keys.display()))?;
        let keys = keys.display().to_string();
        Self::start_with(binary, definitions, temp, log, &["--api-keys", &keys]).await
    }

    /// `binary run --api <definition>… --listen … --state file:<temp>/state.json <options>`, and
    /// waits until it answers HTTP.
    pub async fn start_with(
        binary: &Path,
        definitions: &[PathBuf],
        temp: &Path,
        log: PathBuf,
        options: &[&str],
    ) -> anyhow::Result<Self> {
        let address = free_address()?;
        let log_file = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let child = Command::new(binary)
            .arg("run")
            .args(definitions.iter().flat_map(|definition| [Path::new("--api"), definition.as_path()]))
            .arg("--listen")
            .arg(address.to_string())
            .args(["--admin-listen", "off"])
            // Every bench client comes from 127.0.0.1, and the idle-stream scenario holds hundreds
            // of consumers: the per-address limit would refuse them.
            .args(["--max-consumers", "1000000", "--max-consumers-per-address", "1000000"])
            .arg("--state")
            .arg(format!("file:{}", temp.join("state.json").display()))
            .args(options)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("starting {} (build it with cargo build --release)", binary.display()))?;
        let mut gateway = Self { child, address, log };
        gateway.wait_ready().await?;
        Ok(gateway)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Polls with a request outside the API's context path (a 404 that touches no Kafka client)
    /// until one gets an HTTP answer.
    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("the gateway exited during start-up ({status}); its log:\n{}", self.log_tail());
            }
            if crate::http::probe(self.address).await {
                eprintln!("bench: gateway pid {} ready on {} in {:?}", self.pid(), self.address, started.elapsed());
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                bail!(
                    "the gateway did not answer on {} within {START_TIMEOUT:?}; its log:\n{}",
                    self.address,
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Resident and peak resident memory in KiB (VmRSS, VmHWM of /proc/<pid>/status).
    pub fn memory(&self) -> Memory {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        };
        Memory { rss_kib: field("VmRSS:"), peak_kib: field("VmHWM:") }
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Clone, Copy, Default)]
pub struct Memory {
    pub rss_kib: Option<u64>,
    pub peak_kib: Option<u64>,
}

/// A loopback port nobody listens on right now.
fn free_address() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?)
}
