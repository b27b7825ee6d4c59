//! `kafka-edge-bench`: the gateway against a direct librdkafka client on the same broker, in the
//! same run (DESIGN 7). Run it through `scripts/bench`, which builds it and starts the test bed.
//!
//! Scenarios, in order: produce through the gateway (HTTP POST), the same through a second API
//! whose publish phase runs a three-step flow, produce directly (the ceiling), pre-fill a topic,
//! drain it through the gateway (HTTP GET), drain it directly. Results replace
//! the results section of BENCHMARKS.md.

mod gateway;
mod http;
mod kafka;
mod report;
mod run;

use anyhow::Context;
use bytes::Bytes;
use clap::Parser;
use gateway::GatewayProcess;
use run::{Budget, CpuSampler, Load, Progress, RunStats};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "kafka-edge-bench", about = "Benchmark kafka-edge against a direct librdkafka client on the Kafka test bed.")]
struct Args {
    /// Kafka bootstrap servers (the test bed's by default).
    #[arg(long, env = "KAFKA_EDGE_BOOTSTRAP", default_value = "127.0.0.1:39092")]
    bootstrap: String,
    /// The gateway binary [default: kafka-edge beside this binary].
    #[arg(long)]
    gateway: Option<PathBuf>,
    /// Concurrent HTTP clients, and sends in flight for the direct producer.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Message (request body) size in bytes.
    #[arg(long, default_value_t = 1024)]
    message_size: usize,
    /// Messages per produce scenario.
    #[arg(long, default_value_t = 100_000)]
    messages: u64,
    /// Run each produce scenario for this many seconds instead of a message count.
    #[arg(long, value_name = "SECONDS")]
    duration: Option<u64>,
    /// Unmeasured messages before each produce scenario (connections, producer creation).
    #[arg(long, default_value_t = 2_000)]
    warmup: u64,
    /// Messages pre-filled into the drain topic and read back by each drain scenario.
    #[arg(long, default_value_t = 50_000)]
    drain_messages: u64,
    /// `limit` of each http-get request, also the API's messagesLimitCount.
    #[arg(long, default_value_t = 500)]
    get_limit: u64,
    /// Partitions of each fresh topic.
    #[arg(long, default_value_t = 3)]
    partitions: i32,
    /// Partitions of the drain topic [default: --partitions].
    #[arg(long)]
    drain_partitions: Option<i32>,
    /// Where the results section is written.
    #[arg(long, default_value = "BENCHMARKS.md")]
    output: PathBuf,
    /// Print the results without writing the output file.
    #[arg(long)]
    no_write: bool,
    /// Keep the temp dir (API definition, gateway log).
    #[arg(long)]
    keep_temp: bool,
    /// For the report: the broker's pid (its CPU use is measured) and Kafka version.
    #[arg(long)]
    broker_pid: Option<u32>,
    #[arg(long, default_value = "unknown")]
    kafka_version: String,
    /// For the report: the source revision and the command that ran the bench.
    #[arg(long, default_value = "unknown")]
    revision: String,
    #[arg(long, env = "KAFKA_EDGE_BENCH_COMMAND", default_value = "kafka-edge-bench")]
    command: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.concurrency > 0 && args.message_size > 0 && args.get_limit > 0, "sizes and counts must be positive");
    let id = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let topics = [format!("bench-post-{id}"), format!("bench-flow-{id}"), format!("bench-direct-{id}"), format!("bench-drain-{id}")];
    let topic_names: Vec<&str> = topics.iter().map(String::as_str).collect();
    let temp = std::env::temp_dir().join(format!("kafka-edge-bench-{id}"));
    std::fs::create_dir_all(&temp).with_context(|| format!("creating {}", temp.display()))?;

    let drain_partitions = args.drain_partitions.unwrap_or(args.partitions);
    eprintln!("bench: run {id}: creating topics {topic_names:?} ({} partitions, drain {drain_partitions})", args.partitions);
    kafka::create_topics(&args.bootstrap, &topic_names[..3], args.partitions).await?;
    kafka::create_topics(&args.bootstrap, &topic_names[3..], drain_partitions).await?;
    let result = scenarios(&args, &id, &topics, &temp).await;
    kafka::delete_topics(&args.bootstrap, &topic_names).await;
    if args.keep_temp || result.is_err() {
        eprintln!("bench: API definition and gateway log kept in {}", temp.display());
    } else {
        let _ = std::fs::remove_dir_all(&temp);
    }
    let section = result?;
    println!("{section}");
    if !args.no_write {
        report::write(&args.output, PREAMBLE, &section)?;
        eprintln!("bench: results written to {}", args.output.display());
    }
    Ok(())
}

async fn scenarios(args: &Args, id: &str, topics: &[String; 4], temp: &std::path::Path) -> anyhow::Result<String> {
    let [post_topic, flow_topic, direct_topic, drain_topic] = topics;
    let definitions = [temp.join("api.json"), temp.join("api-flow.json")];
    let apis = [
        gateway::api_definition(&args.bootstrap, post_topic, drain_topic, args.get_limit),
        gateway::flow_api_definition(&args.bootstrap, flow_topic, args.get_limit),
    ];
    for (definition, api) in definitions.iter().zip(&apis) {
        std::fs::write(definition, serde_json::to_vec_pretty(api)?)?;
    }
    let binary = match &args.gateway {
        Some(path) => path.clone(),
        None => std::env::current_exe()?.parent().context("locating the gateway binary")?.join("kafka-edge"),
    };
    let gateway = GatewayProcess::start(&binary, &definitions, temp.join("gateway.log")).await?;
    let idle = gateway.memory();
    let cpu = || CpuSampler::start(Some(gateway.pid()), args.broker_pid);
    let payload = payload(args.message_size);
    let load = |count: u64, duration: Option<u64>| Load {
        budget: Arc::new(Budget::new(count, duration.map(Duration::from_secs))),
        concurrency: args.concurrency,
        payload: payload.clone(),
    };
    let total = args.duration.is_none().then_some(args.messages);
    let mut runs: Vec<RunStats> = Vec::new();

    for (step, path, name, label) in [
        ("[1/5] produce through the gateway", gateway::CONTEXT_PATH, "produce via gateway (HTTP POST)", "gateway POST"),
        ("[2/5] produce through the gateway, 3-step publish flow", gateway::FLOW_CONTEXT_PATH, "produce via gateway, 3-step publish flow (HTTP POST)", "flow POST"),
    ] {
        eprintln!("bench: {step}: HTTP POST to {path}, {} clients", args.concurrency);
        let quiet = Progress::start("warm-up", Some(args.warmup));
        http::post("warm-up", gateway.address, path, &load(args.warmup, None), &quiet, cpu()).await?;
        drop(quiet);
        let progress = Progress::start(label, total);
        runs.push(http::post(name, gateway.address, path, &load(args.messages, args.duration), &progress, cpu()).await?);
        drop(progress);
    }
    let after_produce = gateway.memory();

    eprintln!("bench: [3/5] produce directly: rdkafka FutureProducer, {} sends in flight", args.concurrency);
    let producer = kafka::gateway_like_producer(&args.bootstrap)?;
    let quiet = Progress::start("warm-up", Some(args.warmup));
    kafka::produce("warm-up", &producer, direct_topic, &load(args.warmup, None), &quiet, cpu()).await?;
    drop(quiet);
    let progress = Progress::start("direct produce", total);
    runs.push(kafka::produce("produce direct (rdkafka)", &producer, direct_topic, &load(args.messages, args.duration), &progress, cpu()).await?);
    drop(progress);

    eprintln!("bench: pre-filling {drain_topic} with {} messages", args.drain_messages);
    let progress = Progress::start("pre-fill", Some(args.drain_messages));
    let fill = Load { concurrency: 1024, ..load(args.drain_messages, None) };
    let filled = kafka::produce("pre-fill", &producer, drain_topic, &fill, &progress, cpu()).await?;
    drop(progress);
    anyhow::ensure!(filled.errors == 0, "pre-filling failed for {} messages", filled.errors);

    eprintln!("bench: [4/5] drain through the gateway: HTTP GET ?limit={}, one client identifier", args.get_limit);
    let progress = Progress::start("gateway GET", Some(args.drain_messages));
    let client = format!("bench-{id}");
    runs.push(http::drain("drain via gateway (HTTP GET)", gateway.address, &client, args.get_limit, args.drain_messages, &progress, cpu()).await?);
    drop(progress);
    let after_drain = gateway.memory();

    eprintln!("bench: [5/5] drain directly: rdkafka StreamConsumer in a fresh group");
    let progress = Progress::start("direct consume", Some(args.drain_messages));
    let group = format!("bench-direct-{id}");
    runs.push(kafka::consume("drain direct (rdkafka)", &args.bootstrap, drain_topic, &group, args.drain_messages, &progress, cpu()).await?);
    drop(progress);

    let (_, version) = rdkafka::util::get_rdkafka_version();
    let produce_amount = match args.duration {
        Some(seconds) => format!("{seconds} s per scenario"),
        None => format!("{} messages per scenario", args.messages),
    };
    let report = report::Report {
        settings: vec![
            ("Command", format!("`{}`", args.command)),
            ("Concurrency", format!("{} (HTTP: one keep-alive HTTP/1.1 connection per client, one request at a time; direct: sends in flight)", args.concurrency)),
            ("Message size", format!("{} B", args.message_size)),
            ("Produce", format!("{produce_amount}, after {} unmeasured warm-up messages; producer acks=all, enable.idempotence=true, linger.ms=5, compression none (gateway and direct)", args.warmup)),
            ("Publish flow", "the second gateway scenario's API runs three publish steps per message: assign-attributes `gravitee.attribute.kafka.recordKey` = `{#request.headers['X-Key'][0]}`, transform-headers adding `X-Content-Length` = `{#message.content.length()}`, assign-attributes of a plain value; both gateway scenarios send the same requests, with an `X-Key` header that differs on every request".into()),
            ("Drain", format!("{} messages pre-filled; http-get qos auto, messagesLimitCount {limit}, messagesLimitDurationMs 1000, `?limit={limit}`, Accept: application/json, one client identifier; direct: subscribe in a fresh group, earliest", args.drain_messages, limit = args.get_limit)),
            ("Topics", format!("fresh per run, {} partitions (drain topic: {})", args.partitions, args.drain_partitions.unwrap_or(args.partitions))),
            ("Kafka", format!("Apache Kafka {} (testkit/kafka, single KRaft node), librdkafka {version}", args.kafka_version)),
            ("Build", format!("release profile; gateway source at revision {}", args.revision)),
        ],
        ratios: vec![
            ("Produce: gateway / direct", &runs[0], &runs[2]),
            ("Produce: 3-step publish flow / no flow", &runs[1], &runs[0]),
            ("Drain: gateway / direct", &runs[3], &runs[4]),
        ],
        runs: &runs,
        memory: vec![("idle", idle), ("after produce", after_produce), ("after drain", after_drain)],
    };
    Ok(report.markdown())
}

/// Printable bytes, so http-get renders every message as the same number of characters.
fn payload(size: usize) -> Bytes {
    (0..size).map(|i| b'a' + (i % 26) as u8).collect::<Vec<u8>>().into()
}

const PREAMBLE: &str = "# Benchmarks

`scripts/bench` measures kafka-edge against the ceiling DESIGN §7 names: a direct librdkafka client
on the same broker, in the same run. It builds the gateway and the bench in release mode, starts
the Kafka test bed (unless it is already running), starts the gateway as a child process with a
generated API definition, and replaces the results section below.

## How to reproduce

```
scripts/bench                                   # the defaults: a few minutes on 2 cores
scripts/bench --messages 1000000 --drain-messages 500000      # more messages
scripts/bench --concurrency 128 --message-size 4096           # more clients, bigger messages
scripts/bench --duration 60                     # time-boxed produce scenarios
scripts/bench --drain-partitions 1              # drain a 1-partition topic
target/release/kafka-edge-bench --help          # every flag
```

Scenarios, in order, on fresh topics:

1. **produce via gateway**: C clients, each on its own keep-alive HTTP/1.1 connection, POST a
   fixed-size body as fast as they get 202s; latency is request sent → 202 read.
2. **produce via gateway, 3-step publish flow**: the same load against a second API of the same
   gateway whose publish phase runs three steps per message (record key from the request's
   `X-Key` header, a record header from the message, a plain attribute).
3. **produce direct**: the same messages through an rdkafka `FutureProducer` configured like the
   gateway's, with C sends in flight; latency is `send()` → delivery acknowledgement.
4. **drain via gateway**: a topic pre-filled with N messages is read back with successive
   `GET ?limit=…` requests of one client (one consumer group) until all N arrived.
5. **drain direct**: the same N messages read by an rdkafka consumer that subscribes in a fresh
   group (the time includes joining the group, as each GET does).
";
