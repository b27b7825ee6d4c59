//! The SSE scenarios: drain a topic through one event stream, the latency from a POST to its event
//! on an open stream, and the cost of holding many idle streams (each one a Kafka consumer).

use crate::gateway::GatewayProcess;
use crate::run::{latency_histogram, record, CpuSampler, Progress, RunStats};
use anyhow::{bail, Context};
use bytes::Bytes;
use http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Longest wait for the next event of a stream that should be delivering.
const EVENT_TIMEOUT: Duration = Duration::from_secs(30);

/// One open event stream, split into events.
pub struct EventStream {
    body: Incoming,
    buffer: Vec<u8>,
    /// Where the search for the next "\n\n" resumes.
    scanned: usize,
}

impl EventStream {
    /// GET `path` with `Accept: text/event-stream` as client `client_identifier`.
    pub async fn open(address: SocketAddr, path: &str, client_identifier: &str) -> anyhow::Result<Self> {
        let mut sender = crate::http::connect::<Empty<Bytes>>(address).await.context("connecting to the gateway")?;
        let request = Request::get(path)
            .header(header::HOST, address.to_string())
            .header(header::ACCEPT, "text/event-stream")
            .header("X-Gravitee-Client-Identifier", client_identifier)
            .body(Empty::new())?;
        sender.ready().await?;
        let response = tokio::time::timeout(EVENT_TIMEOUT, sender.send_request(request))
            .await
            .context("no SSE response in time")??;
        if response.status() != StatusCode::OK {
            bail!("SSE GET answered {}", response.status());
        }
        // The connection task lives as long as the body is read; the sender is not needed again.
        Ok(Self { body: response.into_body(), buffer: Vec::with_capacity(64 * 1024), scanned: 0 })
    }

    /// The `data` of the next `event: message` (retry, heartbeats and comments skipped); an error
    /// event or the end of the stream is an error.
    pub async fn next_message(&mut self) -> anyhow::Result<Vec<u8>> {
        loop {
            while let Some(end) =
                self.buffer[self.scanned..].windows(2).position(|w| w == b"\n\n").map(|p| p + self.scanned)
            {
                let event: Vec<u8> = self.buffer.drain(..end + 2).collect();
                self.scanned = 0;
                let mut data: Option<Vec<u8>> = None;
                let mut is_message = false;
                for line in event.split(|&b| b == b'\n') {
                    if line == b"event: message" {
                        is_message = true;
                    } else if line.starts_with(b"event: ") {
                        bail!("the stream sent {}", String::from_utf8_lossy(&event));
                    } else if let Some(value) = line.strip_prefix(b"data: ") {
                        match &mut data {
                            Some(data) => {
                                data.push(b'\n');
                                data.extend_from_slice(value);
                            }
                            None => data = Some(value.to_vec()),
                        }
                    }
                }
                if is_message {
                    return Ok(data.unwrap_or_default());
                }
            }
            self.scanned = self.buffer.len().saturating_sub(1);
            let frame = tokio::time::timeout(EVENT_TIMEOUT, self.body.frame())
                .await
                .with_context(|| format!("no event for {EVENT_TIMEOUT:?}"))?;
            match frame {
                Some(frame) => {
                    if let Ok(data) = frame?.into_data() {
                        self.buffer.extend_from_slice(&data);
                    }
                }
                None => bail!("the event stream ended"),
            }
        }
    }
}

/// One client reads `count` messages of a pre-filled topic through one event stream (a fresh
/// consumer group); the time includes the request, the consumer's creation and its group join.
pub async fn drain(
    name: &'static str,
    address: SocketAddr,
    path: &str,
    client_identifier: &str,
    count: u64,
    progress: &Progress,
    cpu: CpuSampler,
) -> anyhow::Result<RunStats> {
    let started = Instant::now();
    let mut stream = EventStream::open(address, path, client_identifier).await?;
    let done = progress.counter();
    let (mut messages, mut bytes) = (0u64, 0u64);
    while messages < count {
        let data = stream.next_message().await.with_context(|| format!("after {messages} of {count} events"))?;
        messages += 1;
        bytes += data.len() as u64;
        done.fetch_add(1, Ordering::Relaxed);
    }
    Ok(RunStats {
        name,
        messages,
        bytes,
        elapsed: started.elapsed(),
        errors: 0,
        latency: None,
        latency_of: "",
        requests: Some(1),
        cpu: cpu.finish(),
        stalled: None,
    })
}

/// With one event stream open on `path`, one client POSTs `count` messages to the same API one
/// after the other; each payload carries the time it was sent (µs since the run started), and the
/// latency is that time → the event read from the stream. Warm-up messages (until the first one
/// comes back) are not measured.
#[allow(clippy::too_many_arguments)] // the scenario's knobs, as `drain`'s plus the message size
pub async fn post_to_event_latency(
    name: &'static str,
    address: SocketAddr,
    path: &str,
    client_identifier: &str,
    count: u64,
    message_size: usize,
    progress: &Progress,
    cpu: CpuSampler,
) -> anyhow::Result<RunStats> {
    let base = Instant::now();
    let mut stream = EventStream::open(address, path, client_identifier).await?;
    let mut poster = crate::http::connect::<Full<Bytes>>(address).await.context("connecting to the gateway")?;
    // Warm-up: the stream's consumer has joined its group once a POSTed message comes back.
    post(&mut poster, address, path, base, "warmup", message_size).await?;
    loop {
        let data = stream.next_message().await.context("waiting for the warm-up message")?;
        if data.starts_with(b"warmup") {
            break;
        }
    }
    let reader = tokio::spawn(async move {
        let mut latency = latency_histogram();
        let mut received = 0;
        while received < count {
            let data = stream.next_message().await?;
            let now = base.elapsed();
            let text = String::from_utf8_lossy(&data);
            let mut fields = text.split(' ');
            if fields.next() != Some("measure") {
                continue;
            }
            let sent: u64 =
                fields.next().and_then(|s| s.parse().ok()).context("a measured payload without its time")?;
            record(&mut latency, now.saturating_sub(Duration::from_micros(sent)));
            received += 1;
        }
        Ok::<_, anyhow::Error>(latency)
    });
    let started = Instant::now();
    let done = progress.counter();
    for _ in 0..count {
        post(&mut poster, address, path, base, "measure", message_size).await?;
        done.fetch_add(1, Ordering::Relaxed);
    }
    let latency = reader.await.context("reader task")??;
    Ok(RunStats {
        name,
        messages: count,
        bytes: count * message_size as u64,
        elapsed: started.elapsed(),
        errors: 0,
        latency: Some(latency),
        latency_of: "POST sent → event read",
        requests: Some(count),
        cpu: cpu.finish(),
        stalled: None,
    })
}

/// POSTs `<tag> <µs since base> xxx…` (padded to `message_size`) and expects a 202.
async fn post(
    sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    address: SocketAddr,
    path: &str,
    base: Instant,
    tag: &str,
    message_size: usize,
) -> anyhow::Result<()> {
    let mut body = format!("{tag} {} ", base.elapsed().as_micros()).into_bytes();
    body.resize(body.len().max(message_size), b'x');
    let request = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::HOST, address.to_string())
        .body(Full::new(Bytes::from(body)))?;
    let (status, body) = crate::http::exchange(sender, request).await?;
    anyhow::ensure!(status == StatusCode::ACCEPTED, "POST answered {status}: {}", String::from_utf8_lossy(&body));
    Ok(())
}

/// What holding idle streams cost the gateway.
pub struct Held {
    pub clients: usize,
    pub rss_kib: u64,
    pub threads: u64,
    pub open_time: Duration,
}

/// Opens streams on `path` (a topic holding one message) until `target` are open, each with its
/// own client identifier (own consumer group, own consumer); a stream counts once its first event
/// arrived (its consumer joined and fetched). Returns the gateway's RSS and thread count then.
pub async fn hold(
    gateway: &GatewayProcess,
    path: &str,
    run_id: &str,
    held: &mut Vec<EventStream>,
    target: usize,
) -> anyhow::Result<Held> {
    let started = Instant::now();
    let opening = (held.len()..target).map(|n| {
        let (address, path, client) = (gateway.address, path.to_string(), format!("bench-idle-{run_id}-{n}"));
        tokio::spawn(async move {
            let mut stream = EventStream::open(address, &path, &client).await?;
            stream.next_message().await.context("the first event of an idle stream")?;
            Ok::<_, anyhow::Error>(stream)
        })
    });
    for stream in futures::future::join_all(opening).await {
        held.push(stream.context("opening task")??);
    }
    let open_time = started.elapsed();
    let (rss_kib, threads) = process_status(gateway.pid());
    Ok(Held { clients: held.len(), rss_kib, threads, open_time })
}

/// VmRSS (KiB) and Threads of /proc/<pid>/status.
pub fn process_status(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
    };
    (field("VmRSS:").unwrap_or(0), field("Threads:").unwrap_or(0))
}
