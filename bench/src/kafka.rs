//! The ceiling: a direct librdkafka client on the same broker, configured like the gateway's.

use crate::run::{latency_histogram, merge_tallies, record, CpuSampler, Load, Progress, RunStats};
use anyhow::{bail, Context};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Message as _;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How long any single Kafka operation of the bench may take.
const TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) fn client_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    config
}

pub async fn create_topics(bootstrap: &str, names: &[&str], partitions: i32) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> =
        client_config(bootstrap).create().context("creating the admin client")?;
    let topics: Vec<NewTopic> =
        names.iter().map(|name| NewTopic::new(name, partitions, TopicReplication::Fixed(1))).collect();
    let options = AdminOptions::new().operation_timeout(Some(TIMEOUT));
    for result in admin.create_topics(&topics, &options).await.context("creating topics")? {
        if let Err((topic, error)) = result {
            bail!("cannot create topic {topic}: {error}");
        }
    }
    Ok(())
}

/// Best effort: the bench's topics are fresh per run, so leftovers only cost disk.
pub async fn delete_topics(bootstrap: &str, names: &[&str]) {
    let Ok(admin) = client_config(bootstrap).create::<AdminClient<DefaultClientContext>>() else { return };
    if let Err(error) = admin.delete_topics(names, &AdminOptions::new().operation_timeout(Some(TIMEOUT))).await {
        eprintln!("bench: warning: could not delete the bench topics: {error}");
    }
}

/// A producer with the gateway's settings (crates/endpoint-kafka/src/producer.rs).
pub fn gateway_like_producer(bootstrap: &str) -> anyhow::Result<FutureProducer> {
    client_config(bootstrap)
        .set("client.id", "kafka-edge-bench-producer")
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("partitioner", "murmur2_random")
        .set("compression.type", "none")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000")
        .create()
        .context("creating the direct producer")
}

/// Produces the load's payload with `concurrency` sends in flight until the budget is spent, timing each
/// send from the call to its acknowledgement.
pub async fn produce(
    name: &'static str,
    producer: &FutureProducer,
    topic: &str,
    load: &Load,
    progress: &Progress,
    cpu: CpuSampler,
) -> anyhow::Result<RunStats> {
    let started = Instant::now();
    let workers = (0..load.concurrency).map(|_| {
        let (producer, topic, budget, payload, done) =
            (producer.clone(), topic.to_string(), load.budget.clone(), load.payload.clone(), progress.counter());
        tokio::spawn(async move {
            let mut latency = latency_histogram();
            let (mut ok, mut errors) = (0u64, 0u64);
            while budget.take() {
                let sent = Instant::now();
                let message = FutureRecord::<(), [u8]>::to(&topic).payload(&payload[..]);
                match producer.send(message, TIMEOUT).await {
                    Ok(_) => {
                        record(&mut latency, sent.elapsed());
                        ok += 1;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Err((error, _)) => {
                        errors += 1;
                        if errors == 1 {
                            eprintln!("bench: direct produce failed: {error}");
                        }
                    }
                }
            }
            (latency, ok, errors)
        })
    });
    let results = futures::future::join_all(workers).await;
    let elapsed = started.elapsed();
    let tallies = results.into_iter().map(|r| r.context("producer task failed")).collect::<anyhow::Result<Vec<_>>>()?;
    let (latency, messages, errors) = merge_tallies(tallies)?;
    Ok(RunStats {
        name,
        messages,
        bytes: messages * load.payload.len() as u64,
        elapsed,
        errors,
        latency: Some(latency),
        latency_of: "send → ack",
        requests: None,
        cpu: cpu.finish(),
        stalled: None,
    })
}

/// Reads `count` messages of `topic` as a new member of a fresh group would: subscribe, join,
/// read from the earliest offset. The time includes creating the consumer and joining the group.
pub async fn consume(
    name: &'static str,
    bootstrap: &str,
    topic: &str,
    group: &str,
    count: u64,
    progress: &Progress,
    cpu: CpuSampler,
) -> anyhow::Result<RunStats> {
    let started = Instant::now();
    // The gateway's consumer settings (crates/endpoint-kafka/src/subscriber.rs) for qos auto.
    let consumer: StreamConsumer = client_config(bootstrap)
        .set("client.id", "kafka-edge-bench-consumer")
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "true")
        .set("enable.partition.eof", "false")
        .set("session.timeout.ms", "10000")
        .set("queued.max.messages.kbytes", "4096")
        .create()
        .context("creating the direct consumer")?;
    consumer.subscribe(&[topic]).context("subscribing")?;
    let done = progress.counter();
    let (mut messages, mut bytes) = (0u64, 0u64);
    while messages < count {
        let received = tokio::time::timeout(TIMEOUT, consumer.recv())
            .await
            .with_context(|| format!("no message for {TIMEOUT:?} after {messages} of {count}"))?;
        let message = received.context("direct consumer")?;
        messages += 1;
        bytes += message.payload().map_or(0, <[u8]>::len) as u64;
        done.fetch_add(1, Ordering::Relaxed);
    }
    let elapsed = started.elapsed();
    Ok(RunStats {
        name,
        messages,
        bytes,
        elapsed,
        errors: 0,
        latency: None,
        latency_of: "",
        requests: None,
        cpu: cpu.finish(),
        stalled: None,
    })
}
