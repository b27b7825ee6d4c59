//! The HTTP side: keep-alive HTTP/1.1 clients on raw hyper connections (one connection per client,
//! no pool), so the client costs as little CPU as possible on a machine it shares with the gateway.

use crate::run::{latency_histogram, merge_tallies, record, CpuSampler, Load, Progress, RunStats, WorkerTally};
use anyhow::Context;
use bytes::Bytes;
use http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Body;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// Longest wait for one HTTP response.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Consecutive empty http-get pages after which the drain is reported as stalled.
const MAX_EMPTY_PAGES: u32 = 10;

pub(crate) async fn connect<B>(address: SocketAddr) -> anyhow::Result<SendRequest<B>>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = TcpStream::connect(address).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// Sends one request and reads the whole response.
pub(crate) async fn exchange<B>(sender: &mut SendRequest<B>, request: Request<B>) -> anyhow::Result<(StatusCode, Bytes)>
where
    B: Body + Send + 'static,
{
    let exchange = async {
        sender.ready().await?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok::<_, hyper::Error>((status, body))
    };
    Ok(tokio::time::timeout(REQUEST_TIMEOUT, exchange).await.context("no response in time")??)
}

/// `count` keep-alive connections to the gateway, one per client.
async fn connect_clients(address: SocketAddr, count: usize) -> anyhow::Result<Vec<SendRequest<Full<Bytes>>>> {
    let mut senders = Vec::with_capacity(count);
    for _ in 0..count {
        senders.push(connect::<Full<Bytes>>(address).await.context("connecting to the gateway")?);
    }
    Ok(senders)
}

/// Waits for every client task and adds up what they measured.
async fn join_clients(
    workers: impl IntoIterator<Item = tokio::task::JoinHandle<anyhow::Result<WorkerTally>>>,
) -> anyhow::Result<WorkerTally> {
    let results = futures::future::join_all(workers).await;
    merge_tallies(results.into_iter().map(|r| r.context("client task failed")?).collect::<anyhow::Result<Vec<_>>>()?)
}

/// True once the gateway answers any HTTP request.
pub async fn probe(address: SocketAddr) -> bool {
    let Ok(mut sender) = connect::<Empty<Bytes>>(address).await else { return false };
    let Ok(request) =
        Request::get("/kafka-edge-bench-ready").header(header::HOST, address.to_string()).body(Empty::new())
    else {
        return false;
    };
    exchange(&mut sender, request).await.is_ok()
}

/// `load.concurrency` clients each POST the payload to the API at `context_path` on their own
/// keep-alive connection, one request at a time, until the budget is spent; the latency is request
/// sent → response read. Each request carries an `X-Key` header, a different number every time.
pub async fn post(
    name: &'static str,
    address: SocketAddr,
    context_path: &str,
    load: &Load,
    progress: &Progress,
    cpu: CpuSampler,
) -> anyhow::Result<RunStats> {
    let uri = format!("{context_path}/produce");
    let host = address.to_string();
    let senders = connect_clients(address, load.concurrency).await?;
    let started = Instant::now();
    let clients = load.concurrency as u64;
    let workers = senders.into_iter().zip(0..).map(|(mut sender, client)| {
        let (uri, host, budget, payload, done) =
            (uri.clone(), host.clone(), load.budget.clone(), load.payload.clone(), progress.counter());
        let credential = load.credential.clone();
        tokio::spawn(async move {
            let mut latency = latency_histogram();
            let (mut ok, mut errors) = (0u64, 0u64);
            let mut key = client;
            while budget.take() {
                let mut request = Request::builder()
                    .method(Method::POST)
                    .uri(&uri)
                    .header(header::HOST, &host)
                    .header(header::CONTENT_TYPE, "application/octet-stream")
                    .header("X-Key", key);
                if let Some((name, value)) = &credential {
                    request = request.header(*name, value);
                }
                let request = request.body(Full::new(payload.clone()))?;
                key += clients;
                let sent = Instant::now();
                match exchange(&mut sender, request).await {
                    Ok((StatusCode::ACCEPTED, _)) => {
                        record(&mut latency, sent.elapsed());
                        ok += 1;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok((status, body)) => {
                        errors += 1;
                        if errors == 1 {
                            eprintln!("bench: POST answered {status}: {}", String::from_utf8_lossy(&body));
                        }
                    }
                    Err(error) => {
                        errors += 1;
                        eprintln!("bench: POST failed ({error:#}); reconnecting");
                        sender = connect(address).await?;
                    }
                }
            }
            Ok::<_, anyhow::Error>((latency, ok, errors))
        })
    });
    let (latency, messages, errors) = join_clients(workers).await?;
    let elapsed = started.elapsed();
    Ok(RunStats {
        name,
        messages,
        bytes: messages * load.payload.len() as u64,
        elapsed,
        errors,
        requests: Some(messages + errors),
        latency: Some(latency),
        latency_of: "request → 202",
        cpu: cpu.finish(),
        stalled: None,
    })
}

/// As `post`, with `batch` records per request in the bridge's JSON produce format (http-post's
/// batch extension): each record's value is the payload as a JSON string. Latency is per request
/// (request sent → 200 read); a record counts once its offset came back.
pub async fn post_batch(
    name: &'static str,
    address: SocketAddr,
    context_path: &str,
    load: &Load,
    batch: usize,
    progress: &Progress,
    cpu: CpuSampler,
) -> anyhow::Result<RunStats> {
    let value = serde_json::Value::String(String::from_utf8_lossy(&load.payload).into_owned());
    let body_of = move |records: usize| {
        let records: Vec<serde_json::Value> =
            (0..records).map(|_| serde_json::json!({ "value": value.clone() })).collect();
        Bytes::from(serde_json::json!({ "records": records }).to_string())
    };
    let full = body_of(batch);
    let host = address.to_string();
    let senders = connect_clients(address, load.concurrency).await?;
    let started = Instant::now();
    let workers = senders.into_iter().map(|mut sender| {
        let (uri, host, budget, done) =
            (context_path.to_string(), host.clone(), load.budget.clone(), progress.counter());
        let (full, body_of) = (full.clone(), body_of.clone());
        tokio::spawn(async move {
            let mut latency = latency_histogram();
            let (mut ok, mut errors) = (0u64, 0u64);
            loop {
                let records = (0..batch).take_while(|_| budget.take()).count();
                if records == 0 {
                    break;
                }
                let body = if records == batch { full.clone() } else { body_of(records) };
                let request = Request::builder()
                    .method(Method::POST)
                    .uri(&uri)
                    .header(header::HOST, &host)
                    .header(header::CONTENT_TYPE, "application/vnd.kafka.json.v2+json")
                    .body(Full::new(body))?;
                let sent = Instant::now();
                match exchange(&mut sender, request).await {
                    Ok((StatusCode::OK, answer)) => {
                        record(&mut latency, sent.elapsed());
                        let answer: BatchAnswer = serde_json::from_slice(&answer).context("batch answer")?;
                        let delivered = answer.offsets.iter().filter(|o| o.offset.is_some()).count() as u64;
                        ok += delivered;
                        errors += records as u64 - delivered;
                        done.fetch_add(delivered, Ordering::Relaxed);
                    }
                    Ok((status, body)) => {
                        errors += records as u64;
                        eprintln!("bench: batch POST answered {status}: {}", String::from_utf8_lossy(&body));
                    }
                    Err(error) => {
                        errors += records as u64;
                        eprintln!("bench: batch POST failed ({error:#}); reconnecting");
                        sender = connect(address).await?;
                    }
                }
            }
            Ok::<_, anyhow::Error>((latency, ok, errors))
        })
    });
    let (latency, messages, errors) = join_clients(workers).await?;
    let elapsed = started.elapsed();
    let requests = latency.len();
    Ok(RunStats {
        name,
        messages,
        bytes: messages * (load.payload.len() as u64 + 2),
        elapsed,
        errors,
        requests: Some(requests),
        latency: Some(latency),
        latency_of: "request → 200 (a batch)",
        cpu: cpu.finish(),
        stalled: None,
    })
}

#[derive(Deserialize)]
struct BatchAnswer {
    offsets: Vec<BatchOffset>,
}

#[derive(Deserialize)]
struct BatchOffset {
    offset: Option<i64>,
}

/// The parts of an http-get JSON page the drain needs.
#[derive(Deserialize)]
struct Page {
    items: Vec<Item>,
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Item {
    content: String,
}

/// One client (one identifier, hence one consumer group) GETs pages of up to `limit` messages,
/// one after the other, until `count` messages arrived; the latency is per request. Should the
/// gateway stop delivering, the run ends after `MAX_EMPTY_PAGES` empty pages in a row and reports
/// the rates up to the last page that had messages.
pub async fn drain(
    name: &'static str,
    address: SocketAddr,
    client_identifier: &str,
    limit: u64,
    count: u64,
    progress: &Progress,
    cpu: CpuSampler,
) -> anyhow::Result<RunStats> {
    let uri = format!("{}/drain?limit={limit}", crate::gateway::CONTEXT_PATH);
    let mut sender = connect::<Empty<Bytes>>(address).await.context("connecting to the gateway")?;
    let done = progress.counter();
    let mut latency = latency_histogram();
    let (mut messages, mut bytes, mut requests, mut errors, mut empty_in_a_row) = (0u64, 0u64, 0u64, 0u64, 0u32);
    let started = Instant::now();
    let mut last_delivery = started;
    let mut stalled = None;
    while messages < count {
        let request = Request::get(&uri)
            .header(header::HOST, address.to_string())
            .header(header::ACCEPT, "application/json")
            .header("X-Gravitee-Client-Identifier", client_identifier)
            .body(Empty::new())?;
        let sent = Instant::now();
        let (status, body) = exchange(&mut sender, request).await.context("GET from the gateway")?;
        record(&mut latency, sent.elapsed());
        requests += 1;
        anyhow::ensure!(status == StatusCode::OK, "GET answered {status}: {}", String::from_utf8_lossy(&body));
        let page: Page = serde_json::from_slice(&body).context("reading an http-get page")?;
        if let Some(error) = page.error {
            errors += 1;
            eprintln!("bench: GET page carried an error: {error}");
        }
        if page.items.is_empty() {
            empty_in_a_row += 1;
            if empty_in_a_row == MAX_EMPTY_PAGES {
                let reason = format!("{MAX_EMPTY_PAGES} empty pages in a row after {messages} of {count} messages");
                eprintln!("bench: gateway drain stalled: {reason}");
                stalled = Some(reason);
                break;
            }
        } else {
            empty_in_a_row = 0;
            last_delivery = Instant::now();
        }
        messages += page.items.len() as u64;
        bytes += page.items.iter().map(|item| item.content.len() as u64).sum::<u64>();
        done.fetch_add(page.items.len() as u64, Ordering::Relaxed);
    }
    let elapsed = if stalled.is_some() { last_delivery - started } else { started.elapsed() };
    Ok(RunStats {
        name,
        messages,
        bytes,
        elapsed,
        errors,
        requests: Some(requests),
        latency: Some(latency),
        latency_of: "per GET",
        cpu: cpu.finish(),
        stalled,
    })
}
