//! GET on a broker that keeps Kafka's default `group.initial.rebalance.delay.ms` (3 s; the test bed
//! sets 0): the first GET of a new client, and the same client's next GET, for each way kafka-edge
//! can join its group. The broker is a second one, started by scripts/bench.

use crate::gateway::{self, GatewayProcess};
use crate::http::{connect, exchange};
use anyhow::Context;
use bytes::Bytes;
use http::{header, Request, StatusCode};
use http_body_util::Empty;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

/// The context path of the API on the delayed broker.
const CONTEXT_PATH: &str = "/bench-delay";

/// One way of joining, measured.
pub struct JoinTimes {
    pub label: &'static str,
    pub first: Vec<Duration>,
    pub returning: Vec<Duration>,
}

/// The gateway options of each way of joining.
const MODES: [(&str, &[&str]); 3] = [
    (
        "classic protocol, no warm consumer (kafka-edge before)",
        &["--group-protocol", "classic", "--http-get-keep-warm", "0"],
    ),
    ("classic protocol, warm consumers", &["--group-protocol", "classic"]),
    ("auto (consumer protocol), warm consumers", &[]),
];

/// Starts a gateway per mode against `bootstrap` and times `clients` new clients' first and
/// second GET (`?limit=1` on a topic with messages waiting, so a GET answers as soon as its
/// consumer has a partition).
pub async fn measure(
    binary: &Path,
    bootstrap: &str,
    topic: &str,
    temp: &Path,
    clients: usize,
) -> anyhow::Result<Vec<JoinTimes>> {
    let mut api = gateway::topic_api_definition(bootstrap, "kafka-edge-bench-delay", CONTEXT_PATH, topic, 1);
    api["listeners"][0]["entrypoints"][0]["configuration"]["messagesLimitDurationMs"] = serde_json::json!(10_000);
    // A state of its own: the main gateway's names APIs these gateways do not serve.
    let temp = &temp.join("delay");
    std::fs::create_dir_all(temp)?;
    let definition = temp.join("api-delay.json");
    std::fs::write(&definition, serde_json::to_vec_pretty(&api)?)?;
    let mut measured = Vec::new();
    for (index, (label, options)) in MODES.iter().enumerate() {
        let log = temp.join(format!("gateway-delay-{index}.log"));
        let gateway = GatewayProcess::start_with(binary, std::slice::from_ref(&definition), temp, log, options).await?;
        let mut times = JoinTimes { label, first: Vec::new(), returning: Vec::new() };
        for client in 0..clients {
            let identifier = format!("bench-delay-{index}-{client}-{}", std::process::id());
            times.first.push(timed_get(gateway.address, &identifier).await?);
            times.returning.push(timed_get(gateway.address, &identifier).await?);
        }
        eprintln!(
            "bench:   {label}: first GET median {:?}, returning GET median {:?}",
            median(&times.first),
            median(&times.returning)
        );
        measured.push(times);
    }
    Ok(measured)
}

async fn timed_get(address: SocketAddr, client_identifier: &str) -> anyhow::Result<Duration> {
    let mut sender = connect::<Empty<Bytes>>(address).await.context("connecting to the gateway")?;
    let request = Request::get(format!("{CONTEXT_PATH}?limit=1"))
        .header(header::HOST, address.to_string())
        .header(header::ACCEPT, "application/json")
        .header("X-Gravitee-Client-Identifier", client_identifier)
        .body(Empty::new())?;
    let sent = Instant::now();
    let (status, body) = exchange(&mut sender, request).await.context("GET from the gateway")?;
    let elapsed = sent.elapsed();
    anyhow::ensure!(status == StatusCode::OK, "GET answered {status}: {}", String::from_utf8_lossy(&body));
    let page: serde_json::Value = serde_json::from_slice(&body).context("reading an http-get page")?;
    let items = page["items"].as_array().map_or(0, Vec::len);
    anyhow::ensure!(items == 1, "a GET with messages waiting answered {items} items: {page}");
    Ok(elapsed)
}

pub fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}
