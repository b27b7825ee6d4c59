//! Many SSE streams on one topic with QoS `none` and `autoOffsetReset: latest`, which share one
//! consumer: the gateway's memory and threads with the streams open, the time to open them, and
//! how long a record takes from the producer to every stream.

use crate::gateway::{self, GatewayProcess};
use crate::sse::{process_status, EventStream};
use anyhow::Context;
use futures::StreamExt;
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const CONTEXT_PATH: &str = "/bench-fan-out";
/// Streams opened at once: more would overrun the listen backlog.
const OPENING_AT_ONCE: usize = 256;

/// One level of streams held open.
pub struct Level {
    pub streams: usize,
    pub rss_kib: u64,
    pub threads: u64,
    pub open_time: Duration,
    /// Producer → event, over every stream and every record sent at this level.
    pub latency_p50: Duration,
    pub latency_p99: Duration,
    pub latency_max: Duration,
    /// Streams that did not receive every record.
    pub missed: usize,
}

/// Opens streams up to each level (cumulatively), then sends `records` records one per
/// `interval` and reads them on every stream.
pub async fn measure(
    binary: &Path,
    bootstrap: &str,
    producer: &FutureProducer,
    topic: &str,
    temp: &Path,
    levels: &[usize],
    records: usize,
) -> anyhow::Result<Vec<Level>> {
    let temp = &temp.join("fan-out");
    std::fs::create_dir_all(temp)?;
    let mut api = gateway::topic_api_definition(bootstrap, "kafka-edge-bench-fan-out", CONTEXT_PATH, topic, 1);
    api["listeners"][0]["entrypoints"][2]["qos"] = serde_json::json!("none");
    api["endpointGroups"][0]["sharedConfiguration"]["consumer"]["autoOffsetReset"] = serde_json::json!("latest");
    let definition = temp.join("api-fan-out.json");
    std::fs::write(&definition, serde_json::to_vec_pretty(&api)?)?;
    let most = levels.iter().copied().max().unwrap_or(0);
    let connections = (most + 1024).to_string();
    let options = ["--max-connections", connections.as_str()];
    let gateway =
        GatewayProcess::start_with(binary, std::slice::from_ref(&definition), temp, temp.join("gateway.log"), &options)
            .await?;
    let mut streams: Vec<EventStream> = Vec::new();
    let mut measured = Vec::new();
    for &target in levels {
        let started = Instant::now();
        let address = gateway.address;
        let opened: Vec<anyhow::Result<EventStream>> = futures::stream::iter(streams.len()..target)
            .map(|n| async move { EventStream::open(address, CONTEXT_PATH, &format!("bench-fan-out-{n}")).await })
            .buffer_unordered(OPENING_AT_ONCE)
            .collect()
            .await;
        for stream in opened {
            streams.push(stream.context("opening a shared stream")?);
        }
        let open_time = started.elapsed();
        let (rss_kib, threads) = process_status(gateway.pid());
        if let Some(first) = streams.first_mut() {
            warm_up(producer, topic, first).await?;
        }
        let (mut latencies, missed) = deliver_to_all(producer, topic, &mut streams, records).await?;
        latencies.sort();
        let at = |q: f64| latencies.get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)));
        let level = Level {
            streams: streams.len(),
            rss_kib,
            threads,
            open_time,
            latency_p50: at(0.5).copied().unwrap_or_default(),
            latency_p99: at(0.99).copied().unwrap_or_default(),
            latency_max: latencies.last().copied().unwrap_or_default(),
            missed,
        };
        eprintln!(
            "bench:   {} shared streams: RSS {} KiB, {} threads, opened in {:?}; producer → event p50 {:?}, p99 {:?}; {} missed a record",
            level.streams, level.rss_kib, level.threads, level.open_time, level.latency_p50, level.latency_p99, level.missed
        );
        measured.push(level);
    }
    Ok(measured)
}

/// Sends warm-up records until `stream` reads one: the shared consumer has then found the end of
/// the topic, and every record sent from now on reaches every stream.
async fn warm_up(producer: &FutureProducer, topic: &str, stream: &mut EventStream) -> anyhow::Result<()> {
    for _ in 0..100 {
        let record: FutureRecord<'_, (), str> = FutureRecord::to(topic).payload("warm-up");
        producer.send(record, Duration::from_secs(10)).await.map_err(|(error, _)| error)?;
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(200), stream.next_message()).await {
            return Ok(());
        }
    }
    anyhow::bail!("no warm-up record reached the first shared stream")
}

/// Sends `records` records, a tenth of a second apart, each carrying its send time, and reads
/// them on every stream (streams read concurrently). The shared consumer starts at the end of the
/// topic when the first stream opens, so a record sent after every stream answered reaches all.
async fn deliver_to_all(
    producer: &FutureProducer,
    topic: &str,
    streams: &mut [EventStream],
    records: usize,
) -> anyhow::Result<(Vec<Duration>, usize)> {
    let readers = futures::future::join_all(streams.iter_mut().map(|stream| async move {
        let mut latencies = Vec::with_capacity(records);
        while latencies.len() < records {
            let Ok(Ok(data)) = tokio::time::timeout(Duration::from_secs(30), stream.next_message()).await else {
                return (latencies, false);
            };
            // The warm-up records carry no time.
            let Ok(sent) = String::from_utf8_lossy(&data).trim().parse::<u128>() else { continue };
            let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros()).unwrap_or(0);
            latencies.push(Duration::from_micros(now.saturating_sub(sent) as u64));
        }
        (latencies, true)
    }));
    let sending = async {
        for _ in 0..records {
            let sent = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros()).unwrap_or(0).to_string();
            let record: FutureRecord<'_, (), str> = FutureRecord::to(topic).payload(&sent);
            producer.send(record, Duration::from_secs(10)).await.map_err(|(error, _)| error)?;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok::<_, rdkafka::error::KafkaError>(())
    };
    let (read, sent) = tokio::join!(readers, sending);
    sent.context("producing the fan-out records")?;
    let missed = read.iter().filter(|(_, complete)| !complete).count();
    Ok((read.into_iter().flat_map(|(latencies, _)| latencies).collect(), missed))
}
