//! `kafka-edge-bench`: the gateway against a direct librdkafka client on the same broker, in the
//! same run (DESIGN 7). Run it through `scripts/bench`, which builds it and starts the test bed.
//!
//! Scenarios, in order: produce through the gateway (HTTP POST), the same through a second API
//! whose publish phase runs a three-step flow, produce directly (the ceiling), pre-fill a topic,
//! drain it through the gateway (HTTP GET), drain it directly, drain it through one SSE stream,
//! the latency from a POST to its SSE event, and the cost of many idle SSE streams. Results replace
//! the results section of BENCHMARKS.md.

mod delay;
mod fan_out;
mod gateway;
mod http;
mod kafka;
mod report;
mod run;
mod soak;
mod sse;

use anyhow::Context;
use bytes::Bytes;
use clap::Parser;
use gateway::GatewayProcess;
use run::{Budget, CpuSampler, Load, Progress, RunStats};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "kafka-edge-bench",
    about = "Benchmark kafka-edge against a direct librdkafka client on the Kafka test bed."
)]
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
    /// Records per request of the batch produce scenario (the bridge's JSON produce format).
    #[arg(long, default_value_t = 100)]
    batch_size: usize,
    /// Messages POSTed one at a time for the POST → SSE event latency.
    #[arg(long, default_value_t = 2_000)]
    sse_latency_messages: u64,
    /// Idle SSE streams held open, cumulatively (each is its own consumer group and consumer).
    #[arg(long, value_delimiter = ',', default_value = "50,200")]
    sse_idle_clients: Vec<usize>,
    /// Partitions of each fresh topic.
    #[arg(long, default_value_t = 3)]
    partitions: i32,
    /// Partitions of the drain topic [default: --partitions].
    #[arg(long)]
    drain_partitions: Option<i32>,
    /// A second broker that keeps Kafka's default `group.initial.rebalance.delay.ms` (3 s), for
    /// the join scenario; scripts/bench starts one. Without it the scenario is skipped.
    #[arg(long, env = "KAFKA_EDGE_BENCH_DELAYED_BOOTSTRAP", value_name = "HOST:PORT")]
    delayed_bootstrap: Option<String>,
    /// New clients timed per way of joining in the join scenario.
    #[arg(long, default_value_t = 5)]
    delay_clients: usize,
    /// Shared SSE streams held open, cumulatively (QoS none, autoOffsetReset latest: one consumer).
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    shared_streams: Vec<usize>,
    /// Records sent to the shared streams at each level, a tenth of a second apart.
    #[arg(long, default_value_t = 20)]
    shared_stream_records: usize,
    /// Seconds of the soak (a mixed load of clients that connect and disconnect, RSS and threads
    /// sampled every 10 s); 0 skips it.
    #[arg(long, default_value_t = 600, value_name = "SECONDS")]
    soak: u64,
    /// Run only the soak and print its lines (BENCHMARKS.md is left alone), e.g. for a soak of
    /// hours, or one under a profiler (`--gateway` may name a wrapper script).
    #[arg(long)]
    soak_only: bool,
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
    anyhow::ensure!(
        args.concurrency > 0 && args.message_size > 0 && args.get_limit > 0 && args.batch_size > 0,
        "sizes and counts must be positive"
    );
    let id = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let topics = [
        format!("bench-post-{id}"),
        format!("bench-flow-{id}"),
        format!("bench-direct-{id}"),
        format!("bench-sse-{id}"),
        format!("bench-idle-{id}"),
        format!("bench-batch-{id}"),
        format!("bench-batch-direct-{id}"),
        format!("bench-api-key-{id}"),
        format!("bench-jwt-{id}"),
        format!("bench-drain-{id}"),
    ];
    let topic_names: Vec<&str> = topics.iter().map(String::as_str).collect();
    let temp = std::env::temp_dir().join(format!("kafka-edge-bench-{id}"));
    std::fs::create_dir_all(&temp).with_context(|| format!("creating {}", temp.display()))?;
    if args.soak_only {
        anyhow::ensure!(args.soak > 0, "--soak-only needs --soak SECONDS above 0");
        let soaked =
            soak::run(&gateway_binary(&args)?, &args.bootstrap, &temp, &id, Duration::from_secs(args.soak)).await;
        eprintln!("bench: soak gateway log kept in {}", temp.display());
        for line in soak_notes(&soaked?) {
            println!("- {line}");
        }
        return Ok(());
    }

    let drain_partitions = args.drain_partitions.unwrap_or(args.partitions);
    eprintln!(
        "bench: run {id}: creating topics {topic_names:?} ({} partitions, drain {drain_partitions})",
        args.partitions
    );
    kafka::create_topics(&args.bootstrap, &topic_names[..9], args.partitions).await?;
    kafka::create_topics(&args.bootstrap, &topic_names[9..], drain_partitions).await?;
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

async fn scenarios(args: &Args, id: &str, topics: &[String; 10], temp: &std::path::Path) -> anyhow::Result<String> {
    let [post_topic, flow_topic, direct_topic, sse_topic, idle_topic, batch_topic, batch_direct_topic, api_key_topic, jwt_topic, drain_topic] =
        topics;
    let definitions = [
        temp.join("api.json"),
        temp.join("api-flow.json"),
        temp.join("api-sse.json"),
        temp.join("api-idle.json"),
        temp.join("api-batch.json"),
        temp.join("api-api-key.json"),
        temp.join("api-jwt.json"),
    ];
    let apis = [
        gateway::api_definition(&args.bootstrap, post_topic, drain_topic, args.get_limit),
        gateway::flow_api_definition(&args.bootstrap, flow_topic, args.get_limit),
        gateway::topic_api_definition(
            &args.bootstrap,
            "kafka-edge-bench-sse",
            gateway::SSE_LATENCY_CONTEXT_PATH,
            sse_topic,
            args.get_limit,
        ),
        gateway::topic_api_definition(
            &args.bootstrap,
            "kafka-edge-bench-idle",
            gateway::SSE_IDLE_CONTEXT_PATH,
            idle_topic,
            args.get_limit,
        ),
        gateway::topic_api_definition(
            &args.bootstrap,
            "kafka-edge-bench-batch",
            gateway::BATCH_CONTEXT_PATH,
            batch_topic,
            args.get_limit,
        ),
        gateway::plan_api_definition(
            &args.bootstrap,
            "kafka-edge-bench-api-key",
            gateway::API_KEY_CONTEXT_PATH,
            api_key_topic,
            args.get_limit,
            serde_json::json!({"id": "keyed", "name": "API key", "security": {"type": "api-key"}}),
        ),
        gateway::plan_api_definition(
            &args.bootstrap,
            "kafka-edge-bench-jwt",
            gateway::JWT_CONTEXT_PATH,
            jwt_topic,
            args.get_limit,
            serde_json::json!({"id": "tokens", "name": "JWT", "security": {"type": "jwt",
                "configuration": {"signature": "HMAC_HS256", "resolverParameter": gateway::JWT_SECRET}}}),
        ),
    ];
    for (definition, api) in definitions.iter().zip(&apis) {
        std::fs::write(definition, serde_json::to_vec_pretty(api)?)?;
    }
    let binary = gateway_binary(args)?;
    let gateway = GatewayProcess::start(&binary, &definitions, temp, temp.join("gateway.log")).await?;
    let idle = gateway.memory();
    let cpu = || CpuSampler::start(Some(gateway.pid()), args.broker_pid);
    let payload = payload(args.message_size);
    let load = |count: u64, duration: Option<u64>| Load {
        budget: Arc::new(Budget::new(count, duration.map(Duration::from_secs))),
        concurrency: args.concurrency,
        payload: payload.clone(),
        credential: None,
    };
    let total = args.duration.is_none().then_some(args.messages);
    let mut runs: Vec<RunStats> = Vec::new();

    for (step, path, name, label) in [
        (
            "[1/12] produce through the gateway",
            gateway::CONTEXT_PATH,
            "produce via gateway (HTTP POST)",
            "gateway POST",
        ),
        (
            "[2/12] produce through the gateway, 3-step publish flow",
            gateway::FLOW_CONTEXT_PATH,
            "produce via gateway, 3-step publish flow (HTTP POST)",
            "flow POST",
        ),
    ] {
        eprintln!("bench: {step}: HTTP POST to {path}, {} clients", args.concurrency);
        let quiet = Progress::start("warm-up", Some(args.warmup));
        http::post("warm-up", gateway.address, path, &load(args.warmup, None), &quiet, cpu()).await?;
        drop(quiet);
        let progress = Progress::start(label, total);
        runs.push(
            http::post(name, gateway.address, path, &load(args.messages, args.duration), &progress, cpu()).await?,
        );
        drop(progress);
    }

    // Plans: the same load with a credential to check on every request. Listed after the others
    // in the results.
    let mut plan_runs: Vec<RunStats> = Vec::new();
    let token = gateway::jwt();
    for (step, path, name, label, credential) in [
        (
            "[3/12] produce through an api-key plan",
            gateway::API_KEY_CONTEXT_PATH,
            "produce via gateway, api-key plan (HTTP POST)",
            "api-key POST",
            ("X-Gravitee-Api-Key", gateway::API_KEY.to_string()),
        ),
        (
            "[4/12] produce through a jwt plan (HS256)",
            gateway::JWT_CONTEXT_PATH,
            "produce via gateway, jwt plan HS256 (HTTP POST)",
            "jwt POST",
            ("Authorization", format!("Bearer {token}")),
        ),
    ] {
        eprintln!("bench: {step}: HTTP POST to {path}, {} clients", args.concurrency);
        let with_credential = |count, duration| Load { credential: Some(credential.clone()), ..load(count, duration) };
        let quiet = Progress::start("warm-up", Some(args.warmup));
        http::post("warm-up", gateway.address, path, &with_credential(args.warmup, None), &quiet, cpu()).await?;
        drop(quiet);
        let progress = Progress::start(label, total);
        let measured = with_credential(args.messages, args.duration);
        plan_runs.push(http::post(name, gateway.address, path, &measured, &progress, cpu()).await?);
        drop(progress);
    }
    let after_produce = gateway.memory();

    eprintln!("bench: [5/12] produce directly: rdkafka FutureProducer, {} sends in flight", args.concurrency);
    let producer = kafka::gateway_like_producer(&args.bootstrap)?;
    let quiet = Progress::start("warm-up", Some(args.warmup));
    kafka::produce("warm-up", &producer, direct_topic, &load(args.warmup, None), &quiet, cpu()).await?;
    drop(quiet);
    let progress = Progress::start("direct produce", total);
    runs.push(
        kafka::produce(
            "produce direct (rdkafka)",
            &producer,
            direct_topic,
            &load(args.messages, args.duration),
            &progress,
            cpu(),
        )
        .await?,
    );
    drop(progress);

    let batch = args.batch_size;
    eprintln!(
        "bench: [6/12] batch produce through the gateway: {batch} records per POST, {} clients",
        args.concurrency
    );
    let quiet = Progress::start("warm-up", Some(args.warmup));
    http::post_batch(
        "warm-up",
        gateway.address,
        gateway::BATCH_CONTEXT_PATH,
        &load(args.warmup, None),
        batch,
        &quiet,
        cpu(),
    )
    .await?;
    drop(quiet);
    let progress = Progress::start("gateway batch POST", total);
    runs.push(
        http::post_batch(
            "produce via gateway, batches (HTTP POST)",
            gateway.address,
            gateway::BATCH_CONTEXT_PATH,
            &load(args.messages, args.duration),
            batch,
            &progress,
            cpu(),
        )
        .await?,
    );
    drop(progress);

    // The same records (the payload as its JSON text, as the gateway writes it), as many in flight
    // as the HTTP clients have.
    eprintln!("bench: [7/12] produce the batches' records directly: {} sends in flight", args.concurrency * batch);
    let quoted = Bytes::from(serde_json::Value::String(String::from_utf8_lossy(&payload).into_owned()).to_string());
    let batch_load = |count: u64, duration: Option<u64>| Load {
        concurrency: args.concurrency * batch,
        payload: quoted.clone(),
        ..load(count, duration)
    };
    let progress = Progress::start("direct batch records", total);
    runs.push(
        kafka::produce(
            "produce direct, batches' records (rdkafka)",
            &producer,
            batch_direct_topic,
            &batch_load(args.messages, args.duration),
            &progress,
            cpu(),
        )
        .await?,
    );
    drop(progress);

    eprintln!("bench: pre-filling {drain_topic} with {} messages", args.drain_messages);
    let progress = Progress::start("pre-fill", Some(args.drain_messages));
    let fill = Load { concurrency: 1024, ..load(args.drain_messages, None) };
    let filled = kafka::produce("pre-fill", &producer, drain_topic, &fill, &progress, cpu()).await?;
    drop(progress);
    anyhow::ensure!(filled.errors == 0, "pre-filling failed for {} messages", filled.errors);

    eprintln!("bench: [8/12] drain through the gateway: HTTP GET ?limit={}, one client identifier", args.get_limit);
    let progress = Progress::start("gateway GET", Some(args.drain_messages));
    let client = format!("bench-{id}");
    runs.push(
        http::drain(
            "drain via gateway (HTTP GET)",
            gateway.address,
            &client,
            args.get_limit,
            args.drain_messages,
            &progress,
            cpu(),
        )
        .await?,
    );
    drop(progress);
    let after_drain = gateway.memory();

    eprintln!("bench: [9/12] drain directly: rdkafka StreamConsumer in a fresh group");
    let progress = Progress::start("direct consume", Some(args.drain_messages));
    let group = format!("bench-direct-{id}");
    runs.push(
        kafka::consume(
            "drain direct (rdkafka)",
            &args.bootstrap,
            drain_topic,
            &group,
            args.drain_messages,
            &progress,
            cpu(),
        )
        .await?,
    );
    drop(progress);

    eprintln!("bench: [10/12] drain through the gateway: one SSE stream, a fresh client identifier");
    let progress = Progress::start("gateway SSE", Some(args.drain_messages));
    let client = format!("bench-sse-{id}");
    runs.push(
        sse::drain(
            "drain via gateway (one SSE stream)",
            gateway.address,
            gateway::CONTEXT_PATH,
            &client,
            args.drain_messages,
            &progress,
            cpu(),
        )
        .await?,
    );
    drop(progress);
    let after_sse_drain = gateway.memory();

    eprintln!(
        "bench: [11/12] POST → SSE event latency: {} POSTs one at a time, one stream open",
        args.sse_latency_messages
    );
    let progress = Progress::start("POST → SSE", Some(args.sse_latency_messages));
    let client = format!("bench-sse-latency-{id}");
    runs.push(
        sse::post_to_event_latency(
            "POST → SSE event (1 client, 1 POST at a time)",
            gateway.address,
            gateway::SSE_LATENCY_CONTEXT_PATH,
            &client,
            args.sse_latency_messages,
            args.message_size,
            &progress,
            cpu(),
        )
        .await?,
    );
    drop(progress);

    eprintln!("bench: [12/12] idle SSE streams held: {:?} (each its own consumer group)", args.sse_idle_clients);
    let one = Load { concurrency: 1, ..load(1, None) };
    let quiet = Progress::start("idle topic", Some(1));
    kafka::produce("idle topic", &producer, idle_topic, &one, &quiet, cpu()).await?;
    drop(quiet);
    let (idle_rss, idle_threads) = sse::process_status(gateway.pid());
    let mut held_streams = Vec::new();
    let mut held = Vec::new();
    for &target in &args.sse_idle_clients {
        let level = sse::hold(&gateway, gateway::SSE_IDLE_CONTEXT_PATH, id, &mut held_streams, target).await?;
        eprintln!(
            "bench:   {} streams held: RSS {} KiB, {} threads, opened in {:?}",
            level.clients, level.rss_kib, level.threads, level.open_time
        );
        held.push(level);
    }
    drop(held_streams);
    let mut notes = vec![format!(
        "Idle SSE streams (each its own client identifier, so its own consumer group and librdkafka consumer; a stream counts as held once its first event arrived; levels are cumulative): before: RSS {}, {idle_threads} threads",
        report::mebibytes(idle_rss)
    )];
    for level in &held {
        let clients = level.clients.max(1) as f64;
        notes.push(format!(
            "{} streams held: RSS {} (+{:.0} KiB per stream), {} threads (+{:.1} per stream), all opened in {:.1} s",
            level.clients,
            report::mebibytes(level.rss_kib),
            level.rss_kib.saturating_sub(idle_rss) as f64 / clients,
            level.threads,
            level.threads.saturating_sub(idle_threads) as f64 / clients,
            level.open_time.as_secs_f64()
        ));
    }

    if !args.shared_streams.is_empty() {
        eprintln!("bench: [+] shared SSE streams held: {:?} (QoS none, latest: one consumer)", args.shared_streams);
        let topic = format!("bench-fan-out-{id}");
        kafka::create_topics(&args.bootstrap, &[topic.as_str()], args.partitions).await?;
        let levels = fan_out::measure(
            &binary,
            &args.bootstrap,
            &producer,
            &topic,
            temp,
            &args.shared_streams,
            args.shared_stream_records,
        )
        .await?;
        for level in &levels {
            notes.push(format!(
                "{} shared SSE streams (QoS none, latest; one consumer for all): RSS {}, {} threads, opened in {:.1} s; {} records 0.1 s apart reached every stream in p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (producer send → event read, all streams); {} streams missed a record",
                level.streams,
                report::mebibytes(level.rss_kib),
                level.threads,
                level.open_time.as_secs_f64(),
                args.shared_stream_records,
                level.latency_p50.as_secs_f64() * 1000.0,
                level.latency_p99.as_secs_f64() * 1000.0,
                level.latency_max.as_secs_f64() * 1000.0,
                level.missed
            ));
        }
        kafka::delete_topics(&args.bootstrap, &[topic.as_str()]).await;
    }

    if let Some(delayed) = &args.delayed_bootstrap {
        eprintln!("bench: [+] GET on a broker with the default 3 s initial rebalance delay ({delayed})");
        let topic = format!("bench-delay-{id}");
        kafka::create_topics(delayed, &[topic.as_str()], args.partitions).await?;
        let delayed_producer = kafka::gateway_like_producer(delayed)?;
        let fill = Load { concurrency: 16, ..load(200, None) };
        let quiet = Progress::start("delay topic", Some(200));
        kafka::produce("delay topic", &delayed_producer, &topic, &fill, &quiet, cpu()).await?;
        drop(quiet);
        let measured = delay::measure(&binary, delayed, &topic, temp, args.delay_clients).await?;
        let median_ms = |times: &[Duration]| delay::median(times).as_secs_f64() * 1000.0;
        notes.push(format!(
            "GET on a broker with Kafka's default `group.initial.rebalance.delay.ms` (3 s), {} new clients per row, each GETs `?limit=1` twice with messages waiting (median ms):",
            args.delay_clients
        ));
        for times in &measured {
            notes.push(format!(
                "{}: first GET {:.0} ms, the returning client's GET {:.0} ms",
                times.label,
                median_ms(&times.first),
                median_ms(&times.returning)
            ));
        }
        kafka::delete_topics(delayed, &[topic.as_str()]).await;
    }

    if args.soak > 0 {
        eprintln!("bench: [+] soak: {} s of clients that connect and disconnect, on a gateway of its own", args.soak);
        let soaked = soak::run(&binary, &args.bootstrap, temp, id, Duration::from_secs(args.soak)).await?;
        notes.extend(soak_notes(&soaked));
    }

    let (_, version) = rdkafka::util::get_rdkafka_version();
    let produce_amount = match args.duration {
        Some(seconds) => format!("{seconds} s per scenario"),
        None => format!("{} messages per scenario", args.messages),
    };
    let plans = runs.len();
    runs.extend(plan_runs);
    let report = report::Report {
        settings: vec![
            ("Command", format!("`{}`", args.command)),
            ("Concurrency", format!("{} (HTTP: one keep-alive HTTP/1.1 connection per client, one request at a time; direct: sends in flight)", args.concurrency)),
            ("Message size", format!("{} B", args.message_size)),
            ("Produce", format!("{produce_amount}, after {} unmeasured warm-up messages; producer acks=all, enable.idempotence=true, linger.ms=5, compression none (gateway and direct)", args.warmup)),
            ("Batches", format!("{batch} records per POST in the bridge's JSON produce format (`application/vnd.kafka.json.v2+json`), {} clients; each record's value is the payload as a JSON string ({} B once written); direct: the same records with {} sends in flight", args.concurrency, args.message_size + 2, args.concurrency * batch)),
            ("Plans", "the api-key and jwt scenarios POST like the first one to APIs behind an `api-key` plan (the key in `X-Gravitee-Api-Key`, looked up by its SHA-256 in the gateway state) and a `jwt` plan (`HMAC_HS256`, GIVEN_KEY, one token in `Authorization: Bearer`, verified on every request); the first gateway scenario's API is key-less".into()),
            ("Publish flow", "the second gateway scenario's API runs three publish steps per message: assign-attributes `gravitee.attribute.kafka.recordKey` = `{#request.headers['X-Key'][0]}`, transform-headers adding `X-Content-Length` = `{#message.content.length()}`, assign-attributes of a plain value; both gateway scenarios send the same requests, with an `X-Key` header that differs on every request".into()),
            ("Drain", format!("{} messages pre-filled; http-get qos auto, messagesLimitCount {limit}, messagesLimitDurationMs 1000, `?limit={limit}`, Accept: application/json, one client identifier; direct: subscribe in a fresh group, earliest", args.drain_messages, limit = args.get_limit)),
            ("SSE", format!("sse qos auto, default heartbeat; the SSE drain reads the drain topic through one stream in a fresh group (time includes the request and the group join); the latency scenario POSTs {} messages of {} B one after the other to a topic with one stream open, each payload carrying its send time", args.sse_latency_messages, args.message_size)),
            ("Topics", format!("fresh per run, {} partitions (drain topic: {})", args.partitions, args.drain_partitions.unwrap_or(args.partitions))),
            ("Kafka", format!("Apache Kafka {} (testkit/kafka, single KRaft node), librdkafka {version}", args.kafka_version)),
            ("Build", format!("release profile; gateway source at revision {}", args.revision)),
        ],
        ratios: vec![
            ("Produce: gateway / direct", &runs[0], &runs[2]),
            ("Produce: 3-step publish flow / no flow", &runs[1], &runs[0]),
            ("Batch produce: gateway / direct", &runs[3], &runs[4]),
            ("Drain: gateway / direct", &runs[5], &runs[6]),
            ("Drain: one SSE stream / direct", &runs[7], &runs[6]),
            ("Produce: api-key plan / key-less", &runs[plans], &runs[0]),
            ("Produce: jwt plan (HS256) / key-less", &runs[plans + 1], &runs[0]),
        ],
        runs: &runs,
        memory: vec![("idle", idle), ("after produce", after_produce), ("after drain", after_drain), ("after SSE drain", after_sse_drain)],
        notes,
    };
    Ok(report.markdown())
}

/// `--gateway`, or the kafka-edge binary beside this one.
fn gateway_binary(args: &Args) -> anyhow::Result<PathBuf> {
    match &args.gateway {
        Some(path) => Ok(path.clone()),
        None => Ok(std::env::current_exe()?.parent().context("locating the gateway binary")?.join("kafka-edge")),
    }
}

/// The soak's lines of the report: what ran, whether every acknowledged record is on the broker,
/// and the RSS and thread curve.
fn soak_notes(soaked: &soak::SoakReport) -> Vec<String> {
    use std::sync::atomic::Ordering::Relaxed;
    let counts = &soaked.counts;
    let mib = |kib: u64| kib as f64 / 1024.0;
    let mut notes = vec![format!(
        "Soak, {} s on a gateway of its own: 8 POST clients (a new connection every 50 POSTs, 10 ms apart), 2 GET clients (a new connection per GET, 4 returning identities each), 4 SSE clients (8 s sessions, coming back as the same client), 2 WebSocket clients (5 s sessions, 20 messages published each): {} POSTs acknowledged, **{} of them missing on the broker**, {} POST failures; {} GETs ({} items, {} failures); {} SSE sessions ({} events, {} failures); {} WebSocket sessions ({} sent, {} of them missing on the broker, {} received, {} failures)",
        soaked.duration.as_secs(),
        counts.acknowledged.load(Relaxed),
        soaked.missing,
        counts.post_failures.load(Relaxed),
        counts.gets.load(Relaxed),
        counts.get_items.load(Relaxed),
        counts.get_failures.load(Relaxed),
        counts.sse_sessions.load(Relaxed),
        counts.sse_events.load(Relaxed),
        counts.sse_failures.load(Relaxed),
        counts.websocket_sessions.load(Relaxed),
        counts.websocket_sent.load(Relaxed),
        soaked.websocket_missing,
        counts.websocket_received.load(Relaxed),
        counts.websocket_failures.load(Relaxed),
    )];
    let curve: Vec<String> = soaked
        .samples
        .iter()
        .map(|sample| format!("{:.0} s {:.1} MiB/{}", sample.at.as_secs_f64(), mib(sample.rss_kib), sample.threads))
        .collect();
    notes.push(format!("Soak curve (time, RSS/threads, every 10 s): {}", curve.join("; ")));
    // Flat: the second half of the run against the first minute.
    let after_first_minute: Vec<&soak::Sample> =
        soaked.samples.iter().filter(|s| s.at >= Duration::from_secs(60)).collect();
    if let (Some(first), Some(last)) = (after_first_minute.first(), after_first_minute.last()) {
        let peak = after_first_minute.iter().map(|s| s.rss_kib).max().unwrap_or(0);
        notes.push(format!(
            "Soak RSS from the first minute to the end: {:.1} → {:.1} MiB ({:+.1} %), peak {:.1} MiB; threads {} → {}; 20 s after the load stopped: {:.1} MiB, {} threads",
            mib(first.rss_kib),
            mib(last.rss_kib),
            (last.rss_kib as f64 - first.rss_kib as f64) * 100.0 / (first.rss_kib.max(1) as f64),
            mib(peak),
            first.threads,
            last.threads,
            mib(soaked.settled.rss_kib),
            soaked.settled.threads
        ));
    }
    notes
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
scripts/bench --sse-idle-clients 100,500        # idle SSE streams held (cumulative levels)
scripts/bench --batch-size 500                  # records per batch POST
target/release/kafka-edge-bench --help          # every flag
```

Scenarios, in order, on fresh topics:

1. **produce via gateway**: C clients, each on its own keep-alive HTTP/1.1 connection, POST a
   fixed-size body as fast as they get 202s; latency is request sent → 202 read.
2. **produce via gateway, 3-step publish flow**: the same load against a second API of the same
   gateway whose publish phase runs three steps per message (record key from the request's
   `X-Key` header, a record header from the message, a plain attribute).
3. **produce via gateway, api-key plan** and 4. **jwt plan**: the same load against APIs behind
   an `api-key` plan and a `jwt` plan (HS256), each request carrying its credential; compare with
   1 for the cost of the check (their results are listed after the others).
5. **produce direct**: the same messages through an rdkafka `FutureProducer` configured like the
   gateway's, with C sends in flight; latency is `send()` → delivery acknowledgement.
6. **batch produce via gateway**: C clients POST B records per request (`--batch-size`, 100) in
   the Strimzi bridge's JSON produce format, each value the payload as a JSON string; a record
   counts once its offset came back; latency is per request.
7. **batch records direct**: the same records through the direct producer with C × B sends in
   flight.
8. **drain via gateway**: a topic pre-filled with N messages is read back with successive
   `GET ?limit=…` requests of one client (one consumer group) until all N arrived.
9. **drain direct**: the same N messages read by an rdkafka consumer that subscribes in a fresh
   group (the time includes joining the group, as each GET does).
10. **drain via one SSE stream**: the same N messages read through one `text/event-stream` GET in
   a fresh group (the time includes the request and the group join); compare with 9.
11. **POST → SSE event**: one stream open on a fresh topic; one client POSTs M messages one after
   the other, each carrying its send time; latency is POST sent → its event read from the stream.
12. **idle SSE streams**: streams opened (each its own client identifier, hence its own consumer
   group and librdkafka consumer) until 50, then 200 are held, each once its first event arrived;
   the gateway's RSS and thread count at each level, per stream.
13. **shared SSE streams**: a second gateway serves an API whose SSE entrypoint has QoS none and
   `autoOffsetReset: latest`, so all its streams share one consumer; 1,000 then 10,000 streams
   are opened (`--shared-streams`), and at each level 20 records, 0.1 s apart, are timed from the
   producer's send to each stream's read; RSS, threads, time to open, streams that missed one.
14. **GET join**: scripts/bench starts a second broker that keeps Kafka's default
   `group.initial.rebalance.delay.ms` (3 s) and passes it as `--delayed-bootstrap`; five new
   clients each GET `?limit=1` twice, through a gateway with the classic protocol and no warm
   consumers (kafka-edge before), with warm consumers, and with `auto` (the consumer protocol).
15. **soak**: for `--soak` seconds (600), a gateway of its own serves clients that connect and
   disconnect: POSTs, GETs of returning clients, SSE sessions and WebSocket sessions that publish;
   its RSS and thread count are sampled every 10 s (they must end flat), and afterwards every
   record it acknowledged with a 202 (and every WebSocket message sent) is looked for on the broker.
";
