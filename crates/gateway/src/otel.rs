//! OpenTelemetry spans over OTLP/HTTP (docs/operations.md#tracing): one SERVER span per request an
//! API serves (a stream's covers the whole stream), child of the request's `traceparent`, whose
//! context the request then carries into the records it publishes. Configured by the standard
//! `OTEL_*` variables and off unless an OTLP endpoint is named. Spans are queued without waiting
//! and sent in batches by one task; a full queue drops spans, it never slows a request.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot};

/// A variable that cannot be used: the gateway does not start.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {reason}")]
pub struct OtelError {
    variable: &'static str,
    reason: String,
}

fn refuse(variable: &'static str, reason: impl Into<String>) -> OtelError {
    OtelError { variable, reason: reason.into() }
}

/// How spans are encoded on the wire (`OTEL_EXPORTER_OTLP_PROTOCOL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `http/protobuf`, the default.
    Protobuf,
    /// `http/json`.
    Json,
}

/// Which requests get a span (`OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampler {
    AlwaysOn,
    AlwaysOff,
    TraceIdRatio(f64),
    /// The parent's sampled flag decides; a request without a parent follows the inner sampler.
    ParentBased(RootSampler),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RootSampler {
    AlwaysOn,
    AlwaysOff,
    TraceIdRatio(f64),
}

/// What the `OTEL_*` variables ask for.
#[derive(Debug, Clone)]
pub struct OtlpSettings {
    /// The traces URL: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as given, or
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`.
    pub endpoint: String,
    pub protocol: Protocol,
    /// Sent with every export (often a credential: never logged).
    pub headers: HeaderMap,
    pub timeout: Duration,
    /// A PEM file of CAs to trust for an `https` endpoint (`OTEL_EXPORTER_OTLP_CERTIFICATE`).
    pub certificate: Option<std::path::PathBuf>,
    /// `service.name` and the other resource attributes.
    pub resource: BTreeMap<String, String>,
    pub sampler: Sampler,
    pub schedule_delay: Duration,
    pub max_queue_size: usize,
    pub max_export_batch_size: usize,
}

impl OtlpSettings {
    /// Reads the variables through `var` (the process environment in production). `None` when
    /// tracing is off: no OTLP endpoint, `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, OtelError> {
        let var = |name: &str| var(name).map(|value| value.trim().to_owned()).filter(|value| !value.is_empty());
        if var("OTEL_SDK_DISABLED").is_some_and(|value| value.eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        match var("OTEL_TRACES_EXPORTER").as_deref() {
            None | Some("otlp") => {}
            Some("none") => return Ok(None),
            Some(other) => {
                return Err(refuse("OTEL_TRACES_EXPORTER", format!("`{other}` is not supported; use `otlp` or `none`")))
            }
        }
        // A signal-specific variable wins over the general one (OpenTelemetry's exporter spec).
        let either = |specific: &'static str, general: &'static str| {
            var(specific).map(|value| (specific, value)).or_else(|| var(general).map(|value| (general, value)))
        };
        let endpoint = match (var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), var("OTEL_EXPORTER_OTLP_ENDPOINT")) {
            (Some(traces), _) => traces,
            (None, Some(base)) => format!("{}/v1/traces", base.trim_end_matches('/')),
            (None, None) => return Ok(None),
        };
        let endpoint_variable = if var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some() {
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
        } else {
            "OTEL_EXPORTER_OTLP_ENDPOINT"
        };
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
            || reqwest::Url::parse(&endpoint).is_err()
        {
            return Err(refuse(endpoint_variable, "expected an http:// or https:// URL"));
        }
        let protocol = match either("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL") {
            None => Protocol::Protobuf,
            Some((_, value)) if value == "http/protobuf" => Protocol::Protobuf,
            Some((_, value)) if value == "http/json" => Protocol::Json,
            Some((variable, value)) => {
                return Err(refuse(
                    variable,
                    format!(
                        "`{value}` is not supported; use `http/protobuf` or `http/json` (OTLP over HTTP, port 4318)"
                    ),
                ))
            }
        };
        let headers = match either("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS") {
            Some((variable, value)) => parse_headers(variable, &value)?,
            None => HeaderMap::new(),
        };
        if let Some((variable, value)) =
            either("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION")
        {
            if value != "none" {
                return Err(refuse(variable, format!("`{value}` is not supported; use `none`")));
            }
        }
        let millis = |variable: &'static str, value: &str| {
            value.parse::<u64>().map(Duration::from_millis).map_err(|_| refuse(variable, "expected milliseconds"))
        };
        let timeout = match either("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT") {
            Some((variable, value)) => millis(variable, &value)?,
            None => Duration::from_secs(10),
        };
        let certificate = either("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "OTEL_EXPORTER_OTLP_CERTIFICATE")
            .map(|(_, path)| std::path::PathBuf::from(path));
        let mut resource = BTreeMap::new();
        if let Some(attributes) = var("OTEL_RESOURCE_ATTRIBUTES") {
            for (key, value) in parse_pairs("OTEL_RESOURCE_ATTRIBUTES", &attributes)? {
                resource.insert(key, value);
            }
        }
        if let Some(name) = var("OTEL_SERVICE_NAME") {
            resource.insert("service.name".into(), name);
        }
        resource.entry("service.name".into()).or_insert_with(|| "kafka-edge".into());
        resource.insert("service.version".into(), env!("CARGO_PKG_VERSION").into());
        resource.insert("telemetry.sdk.name".into(), "kafka-edge".into());
        resource.insert("telemetry.sdk.language".into(), "rust".into());
        let sampler = sampler(var("OTEL_TRACES_SAMPLER").as_deref(), var("OTEL_TRACES_SAMPLER_ARG").as_deref())?;
        let count = |variable: &'static str, default: usize| match var(variable) {
            Some(value) => value
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| refuse(variable, "expected a positive number")),
            None => Ok(default),
        };
        let schedule_delay = match var("OTEL_BSP_SCHEDULE_DELAY") {
            Some(value) => millis("OTEL_BSP_SCHEDULE_DELAY", &value)?,
            None => Duration::from_secs(5),
        };
        Ok(Some(Self {
            endpoint,
            protocol,
            headers,
            timeout,
            certificate,
            resource,
            sampler,
            schedule_delay,
            max_queue_size: count("OTEL_BSP_MAX_QUEUE_SIZE", 2048)?,
            max_export_batch_size: count("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512)?,
        }))
    }
}

/// `key=value,key2=value2`, values percent-decoded (the W3C baggage format the spec names).
fn parse_pairs(variable: &'static str, list: &str) -> Result<Vec<(String, String)>, OtelError> {
    let mut pairs = Vec::new();
    for entry in list.split(',').map(str::trim).filter(|entry| !entry.is_empty()) {
        let Some((key, value)) = entry.split_once('=') else {
            // The value may be a secret: name the position, not the entry.
            return Err(refuse(variable, format!("entry {} is not key=value", pairs.len() + 1)));
        };
        let value = percent_decode(value.trim())
            .ok_or_else(|| refuse(variable, format!("the value of `{}` is not valid percent-encoding", key.trim())))?;
        pairs.push((key.trim().to_owned(), value));
    }
    Ok(pairs)
}

fn parse_headers(variable: &'static str, list: &str) -> Result<HeaderMap, OtelError> {
    let mut headers = HeaderMap::new();
    for (name, value) in parse_pairs(variable, list)? {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| refuse(variable, format!("`{name}` is not a header name")))?;
        let mut value = HeaderValue::from_str(&value)
            .map_err(|_| refuse(variable, format!("the value of `{name}` is not a header value")))?;
        value.set_sensitive(true);
        headers.append(name, value);
    }
    Ok(headers)
}

fn percent_decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = std::str::from_utf8(bytes.get(index + 1..index + 3)?).ok()?;
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

fn sampler(name: Option<&str>, argument: Option<&str>) -> Result<Sampler, OtelError> {
    let ratio = || -> Result<f64, OtelError> {
        match argument {
            None => Ok(1.0),
            Some(value) => value
                .parse::<f64>()
                .ok()
                .filter(|ratio| (0.0..=1.0).contains(ratio))
                .ok_or_else(|| refuse("OTEL_TRACES_SAMPLER_ARG", "expected a ratio from 0 to 1")),
        }
    };
    Ok(match name.unwrap_or("parentbased_always_on") {
        "always_on" => Sampler::AlwaysOn,
        "always_off" => Sampler::AlwaysOff,
        "traceidratio" => Sampler::TraceIdRatio(ratio()?),
        "parentbased_always_on" => Sampler::ParentBased(RootSampler::AlwaysOn),
        "parentbased_always_off" => Sampler::ParentBased(RootSampler::AlwaysOff),
        "parentbased_traceidratio" => Sampler::ParentBased(RootSampler::TraceIdRatio(ratio()?)),
        other => {
            return Err(refuse(
                "OTEL_TRACES_SAMPLER",
                format!(
                    "`{other}` is not supported; use always_on, always_off, traceidratio, parentbased_always_on, \
                     parentbased_always_off or parentbased_traceidratio"
                ),
            ))
        }
    })
}

/// Whether a trace id falls under `ratio`: its last 8 bytes as a number, as OpenTelemetry's
/// TraceIdRatioBased sampler does, so every service of a trace decides alike.
fn under_ratio(trace_id: &[u8; 16], ratio: f64) -> bool {
    let mut low = [0u8; 8];
    low.copy_from_slice(&trace_id[8..]);
    let value = u64::from_be_bytes(low) >> 1;
    (value as f64) < ratio * (u64::MAX >> 1) as f64
}

/// The W3C trace context a request came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parent {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub sampled: bool,
}

/// A span that started and is not finished yet.
#[derive(Debug, Clone)]
pub struct OpenSpan {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub parent_span_id: Option<[u8; 8]>,
    pub trace_state: Option<String>,
    pub started: SystemTime,
}

impl OpenSpan {
    /// The `traceparent` that makes this span the parent of what the request causes.
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-01", hex(&self.trace_id), hex(&self.span_id))
    }
}

/// A value of a span attribute.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Text(String),
    Int(i64),
}

/// A finished SERVER span.
#[derive(Debug, Clone)]
pub struct FinishedSpan {
    pub span: OpenSpan,
    pub name: String,
    pub ended: SystemTime,
    pub attributes: Vec<(&'static str, Value)>,
    /// An error status with this description (a 5xx answer), or unset.
    pub error: Option<String>,
}

enum Command {
    Span(Box<FinishedSpan>),
    Flush(oneshot::Sender<()>),
}

/// Starts spans and queues finished ones for the export task.
pub struct Tracer {
    sampler: Sampler,
    queue: mpsc::Sender<Command>,
    dropped: AtomicU64,
}

impl Tracer {
    /// Starts the export task (on the current runtime).
    pub fn start(settings: OtlpSettings) -> Result<Arc<Self>, OtelError> {
        let (queue, commands) = mpsc::channel(settings.max_queue_size);
        let exporter = Exporter::new(&settings)?;
        let tracer = Arc::new(Self { sampler: settings.sampler, queue, dropped: AtomicU64::new(0) });
        tokio::spawn(exporter.run(commands, settings.schedule_delay, settings.max_export_batch_size));
        Ok(tracer)
    }

    /// Decides whether the request is traced and, if so, opens its span and points the request's
    /// `traceparent` at it (the `tracestate` is kept), so that records it publishes carry the
    /// span's context. An unsampled request keeps its headers as they came.
    pub fn begin(&self, headers: &mut HeaderMap) -> Option<OpenSpan> {
        let parent = single_traceparent(headers);
        let trace_id = parent.as_ref().map_or_else(random_trace_id, |parent| parent.trace_id);
        let sampled = match (self.sampler, &parent) {
            (Sampler::AlwaysOn, _) => true,
            (Sampler::AlwaysOff, _) => false,
            (Sampler::TraceIdRatio(ratio), _) => under_ratio(&trace_id, ratio),
            (Sampler::ParentBased(_), Some(parent)) => parent.sampled,
            (Sampler::ParentBased(RootSampler::AlwaysOn), None) => true,
            (Sampler::ParentBased(RootSampler::AlwaysOff), None) => false,
            (Sampler::ParentBased(RootSampler::TraceIdRatio(ratio)), None) => under_ratio(&trace_id, ratio),
        };
        if !sampled {
            return None;
        }
        let trace_state = parent.as_ref().and_then(|_| {
            let states: Vec<&str> = headers.get_all("tracestate").iter().filter_map(|v| v.to_str().ok()).collect();
            (!states.is_empty()).then(|| states.join(","))
        });
        let span = OpenSpan {
            trace_id,
            span_id: random_span_id(),
            parent_span_id: parent.map(|parent| parent.span_id),
            trace_state,
            started: SystemTime::now(),
        };
        if let Ok(value) = HeaderValue::from_str(&span.traceparent()) {
            headers.insert("traceparent", value);
        }
        Some(span)
    }

    /// Queues a finished span; drops it when the queue is full.
    pub fn end(&self, span: FinishedSpan) {
        if self.queue.try_send(Command::Span(Box::new(span))).is_err()
            && self.dropped.fetch_add(1, Ordering::Relaxed) == 0
        {
            tracing::warn!(
                "The span queue is full (OTEL_BSP_MAX_QUEUE_SIZE): spans are dropped until the exporter catches up."
            );
        }
    }

    /// Sends what is queued; returns when it was sent, or failed, or after `limit`.
    pub async fn flush(&self, limit: Duration) {
        let (done, sent) = oneshot::channel();
        if self.queue.send(Command::Flush(done)).await.is_ok() {
            let _ = tokio::time::timeout(limit, sent).await;
        }
    }
}

/// The request's parent context, when it has exactly one valid `traceparent`.
fn single_traceparent(headers: &HeaderMap) -> Option<Parent> {
    let mut values = headers.get_all("traceparent").iter();
    let (Some(value), None) = (values.next(), values.next()) else { return None };
    let parsed = kafka_edge_entrypoints::trace::TraceParent::parse(value.to_str().ok()?)?;
    Some(Parent { trace_id: parsed.trace_id, span_id: parsed.parent_id, sampled: parsed.flags & 1 == 1 })
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    while bytes.iter().all(|b| *b == 0) {
        // The operating system's random source; all zero is not a valid id.
        if getrandom::fill(&mut bytes).is_err() {
            bytes.copy_from_slice(&uuid::Uuid::new_v4().as_bytes()[..N]);
        }
    }
    bytes
}

fn random_trace_id() -> [u8; 16] {
    random_bytes()
}

fn random_span_id() -> [u8; 8] {
    random_bytes()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Sends batches of spans to the OTLP endpoint.
struct Exporter {
    client: reqwest::Client,
    endpoint: String,
    protocol: Protocol,
    headers: HeaderMap,
    resource: BTreeMap<String, String>,
    /// When an export failure was last logged (failures are logged at most once a minute).
    last_failure_logged: Option<std::time::Instant>,
    failed_spans: u64,
}

impl Exporter {
    fn new(settings: &OtlpSettings) -> Result<Self, OtelError> {
        let mut client = reqwest::Client::builder().timeout(settings.timeout);
        if let Some(path) = &settings.certificate {
            let variable = "OTEL_EXPORTER_OTLP_CERTIFICATE";
            let pem = std::fs::read(path)
                .map_err(|error| refuse(variable, format!("cannot read `{}`: {error}", path.display())))?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|_| refuse(variable, format!("`{}` holds no PEM certificate", path.display())))?;
            for certificate in certificates {
                client = client.add_root_certificate(certificate);
            }
        }
        let client = client.build().map_err(|error| refuse("OTEL_EXPORTER_OTLP_ENDPOINT", error.to_string()))?;
        Ok(Self {
            client,
            endpoint: settings.endpoint.clone(),
            protocol: settings.protocol,
            headers: settings.headers.clone(),
            resource: settings.resource.clone(),
            last_failure_logged: None,
            failed_spans: 0,
        })
    }

    async fn run(mut self, mut commands: mpsc::Receiver<Command>, delay: Duration, batch_size: usize) {
        let mut batch: Vec<FinishedSpan> = Vec::new();
        let mut tick = tokio::time::interval(delay);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Span(span)) => {
                        batch.push(*span);
                        if batch.len() >= batch_size {
                            self.export(std::mem::take(&mut batch)).await;
                        }
                    }
                    Some(Command::Flush(done)) => {
                        self.export(std::mem::take(&mut batch)).await;
                        let _ = done.send(());
                    }
                    None => {
                        self.export(std::mem::take(&mut batch)).await;
                        return;
                    }
                },
                _ = tick.tick() => self.export(std::mem::take(&mut batch)).await,
            }
        }
    }

    async fn export(&mut self, spans: Vec<FinishedSpan>) {
        if spans.is_empty() {
            return;
        }
        let (content_type, body) = match self.protocol {
            Protocol::Protobuf => ("application/x-protobuf", Bytes::from(protobuf::request(&self.resource, &spans))),
            Protocol::Json => ("application/json", Bytes::from(json::request(&self.resource, &spans).to_string())),
        };
        let sent = self
            .client
            .post(&self.endpoint)
            .headers(self.headers.clone())
            .header(http::header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await;
        let failure = match sent {
            Ok(response) if response.status().is_success() => return,
            Ok(response) => format!("the collector answered {}", response.status()),
            // The error names the URL and the cause, never the headers.
            Err(error) => error.without_url().to_string(),
        };
        self.failed_spans += spans.len() as u64;
        let quiet = self.last_failure_logged.is_some_and(|at| at.elapsed() < Duration::from_secs(60));
        if !quiet {
            self.last_failure_logged = Some(std::time::Instant::now());
            tracing::warn!(
                endpoint = %self.endpoint,
                reason = %failure,
                spans_lost = self.failed_spans,
                "OTLP span export failed; those spans are lost (logged at most once a minute)."
            );
        }
    }
}

fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_nanos() as u64)
}

/// Span kind SERVER, status codes ERROR and UNSET (opentelemetry-proto trace.proto).
const KIND_SERVER: u64 = 2;
const STATUS_ERROR: u64 = 2;
const SCOPE: &str = "kafka-edge";

/// OTLP's protobuf encoding, written directly: the few messages a span export needs.
mod protobuf {
    use super::{unix_nanos, FinishedSpan, Value, KIND_SERVER, SCOPE, STATUS_ERROR};
    use std::collections::BTreeMap;

    const VARINT: u8 = 0;
    const FIXED64: u8 = 1;
    const LENGTH_DELIMITED: u8 = 2;

    fn varint(out: &mut Vec<u8>, mut value: u64) {
        while value >= 0x80 {
            out.push((value as u8) | 0x80);
            value >>= 7;
        }
        out.push(value as u8);
    }

    fn key(out: &mut Vec<u8>, field: u32, wire: u8) {
        varint(out, (u64::from(field) << 3) | u64::from(wire));
    }

    fn bytes(out: &mut Vec<u8>, field: u32, value: &[u8]) {
        key(out, field, LENGTH_DELIMITED);
        varint(out, value.len() as u64);
        out.extend_from_slice(value);
    }

    fn message(out: &mut Vec<u8>, field: u32, write: impl FnOnce(&mut Vec<u8>)) {
        let mut inner = Vec::new();
        write(&mut inner);
        bytes(out, field, &inner);
    }

    fn fixed64(out: &mut Vec<u8>, field: u32, value: u64) {
        key(out, field, FIXED64);
        out.extend_from_slice(&value.to_le_bytes());
    }

    fn number(out: &mut Vec<u8>, field: u32, value: u64) {
        key(out, field, VARINT);
        varint(out, value);
    }

    /// KeyValue { key = 1; AnyValue value = 2 }, AnyValue { string_value = 1; int_value = 3 }.
    fn attribute(out: &mut Vec<u8>, field: u32, name: &str, value: &Value) {
        message(out, field, |kv| {
            bytes(kv, 1, name.as_bytes());
            message(kv, 2, |any| match value {
                Value::Text(text) => bytes(any, 1, text.as_bytes()),
                Value::Int(int) => number(any, 3, *int as u64),
            });
        });
    }

    /// ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1 }.
    pub fn request(resource: &BTreeMap<String, String>, spans: &[FinishedSpan]) -> Vec<u8> {
        let mut out = Vec::new();
        // ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2 }
        message(&mut out, 1, |resource_spans| {
            message(resource_spans, 1, |resource_message| {
                for (name, value) in resource {
                    attribute(resource_message, 1, name, &Value::Text(value.clone()));
                }
            });
            // ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2 }
            message(resource_spans, 2, |scope_spans| {
                message(scope_spans, 1, |scope| {
                    bytes(scope, 1, SCOPE.as_bytes());
                    bytes(scope, 2, env!("CARGO_PKG_VERSION").as_bytes());
                });
                for finished in spans {
                    message(scope_spans, 2, |span| write_span(span, finished));
                }
            });
        });
        out
    }

    /// Span { trace_id = 1; span_id = 2; trace_state = 3; parent_span_id = 4; name = 5;
    /// kind = 6; start_time_unix_nano = 7; end_time_unix_nano = 8; attributes = 9; status = 15;
    /// flags = 16 }, Status { message = 2; code = 3 }.
    fn write_span(out: &mut Vec<u8>, finished: &FinishedSpan) {
        let span = &finished.span;
        bytes(out, 1, &span.trace_id);
        bytes(out, 2, &span.span_id);
        if let Some(state) = &span.trace_state {
            bytes(out, 3, state.as_bytes());
        }
        if let Some(parent) = &span.parent_span_id {
            bytes(out, 4, parent);
        }
        bytes(out, 5, finished.name.as_bytes());
        number(out, 6, KIND_SERVER);
        fixed64(out, 7, unix_nanos(span.started));
        fixed64(out, 8, unix_nanos(finished.ended));
        for (name, value) in &finished.attributes {
            attribute(out, 9, name, value);
        }
        if let Some(description) = &finished.error {
            message(out, 15, |status| {
                bytes(status, 2, description.as_bytes());
                number(status, 3, STATUS_ERROR);
            });
        }
    }
}

/// OTLP's JSON encoding: protobuf's JSON mapping, except that ids are hex strings.
mod json {
    use super::{hex, unix_nanos, FinishedSpan, Value, KIND_SERVER, SCOPE, STATUS_ERROR};
    use serde_json::{json, Value as Json};
    use std::collections::BTreeMap;

    fn attribute(name: &str, value: &Value) -> Json {
        let value = match value {
            Value::Text(text) => json!({ "stringValue": text }),
            // 64-bit integers are strings in protobuf's JSON mapping.
            Value::Int(int) => json!({ "intValue": int.to_string() }),
        };
        json!({ "key": name, "value": value })
    }

    pub fn request(resource: &BTreeMap<String, String>, spans: &[FinishedSpan]) -> Json {
        let resource: Vec<Json> =
            resource.iter().map(|(name, value)| attribute(name, &Value::Text(value.clone()))).collect();
        let spans: Vec<Json> = spans.iter().map(span).collect();
        json!({
            "resourceSpans": [{
                "resource": { "attributes": resource },
                "scopeSpans": [{ "scope": { "name": SCOPE, "version": env!("CARGO_PKG_VERSION") }, "spans": spans }]
            }]
        })
    }

    fn span(finished: &FinishedSpan) -> Json {
        let span = &finished.span;
        let mut encoded = json!({
            "traceId": hex(&span.trace_id),
            "spanId": hex(&span.span_id),
            "name": finished.name,
            "kind": KIND_SERVER,
            "startTimeUnixNano": unix_nanos(span.started).to_string(),
            "endTimeUnixNano": unix_nanos(finished.ended).to_string(),
            "attributes": finished.attributes.iter().map(|(name, value)| attribute(name, value)).collect::<Vec<_>>(),
        });
        if let Some(parent) = &span.parent_span_id {
            encoded["parentSpanId"] = json!(hex(parent));
        }
        if let Some(state) = &span.trace_state {
            encoded["traceState"] = json!(state);
        }
        if let Some(description) = &finished.error {
            encoded["status"] = json!({ "code": STATUS_ERROR, "message": description });
        }
        encoded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Option<OtlpSettings>, OtelError> {
        let vars: BTreeMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        OtlpSettings::from_env(|name| vars.get(name).cloned())
    }

    #[test]
    fn off_unless_an_endpoint_is_named() {
        assert!(settings(&[]).expect("valid").is_none());
        assert!(settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), ("OTEL_SDK_DISABLED", "true")])
            .expect("valid")
            .is_none());
        assert!(settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), ("OTEL_TRACES_EXPORTER", "none")])
            .expect("valid")
            .is_none());
    }

    #[test]
    fn the_traces_url_and_the_defaults() {
        let on = settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")]).expect("valid").expect("on");
        assert_eq!(on.endpoint, "http://collector:4318/v1/traces");
        assert_eq!(on.protocol, Protocol::Protobuf);
        assert_eq!(on.sampler, Sampler::ParentBased(RootSampler::AlwaysOn));
        assert_eq!(on.resource.get("service.name").map(String::as_str), Some("kafka-edge"));
        let traces = settings(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://ignored:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://collector/custom"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_SERVICE_NAME", "edge-eu"),
            ("OTEL_RESOURCE_ATTRIBUTES", "service.name=other,deployment.environment=prod%20eu"),
        ])
        .expect("valid")
        .expect("on");
        assert_eq!(traces.endpoint, "https://collector/custom", "the signal's URL is used as given");
        assert_eq!(traces.protocol, Protocol::Json);
        assert_eq!(traces.resource.get("service.name").map(String::as_str), Some("edge-eu"));
        assert_eq!(traces.resource.get("deployment.environment").map(String::as_str), Some("prod eu"));
    }

    #[test]
    fn unusable_values_name_their_variable_and_hide_header_values() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318");
        for (vars, expected) in [
            (vec![("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")], "OTEL_EXPORTER_OTLP_ENDPOINT: expected an http"),
            (
                vec![endpoint, ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")],
                "OTEL_EXPORTER_OTLP_PROTOCOL: `grpc` is not supported",
            ),
            (vec![endpoint, ("OTEL_TRACES_SAMPLER", "sometimes")], "OTEL_TRACES_SAMPLER: `sometimes` is not supported"),
            (
                vec![endpoint, ("OTEL_TRACES_SAMPLER", "traceidratio"), ("OTEL_TRACES_SAMPLER_ARG", "2")],
                "OTEL_TRACES_SAMPLER_ARG",
            ),
            (vec![endpoint, ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")], "OTEL_EXPORTER_OTLP_COMPRESSION: `gzip`"),
            (vec![endpoint, ("OTEL_BSP_MAX_QUEUE_SIZE", "0")], "OTEL_BSP_MAX_QUEUE_SIZE: expected a positive number"),
        ] {
            let error = settings(&vars).expect_err("refused").to_string();
            assert!(error.starts_with(expected), "{error}");
        }
        let error = settings(&[endpoint, ("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20s3cret,broken")])
            .expect_err("refused")
            .to_string();
        assert_eq!(error, "OTEL_EXPORTER_OTLP_HEADERS: entry 2 is not key=value");
        let on = settings(&[endpoint, ("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20s3cret")])
            .expect("valid")
            .expect("on");
        assert_eq!(on.headers.get("authorization").map(|v| v.as_bytes()), Some(&b"Bearer s3cret"[..]));
        assert!(!format!("{:?}", on.headers).contains("s3cret"), "header values are sensitive");
    }

    #[test]
    fn sampling_follows_the_parent_or_the_ratio() {
        let (queue, _commands) = mpsc::channel(1);
        let tracer = |sampler| Tracer { sampler, queue: queue.clone(), dropped: AtomicU64::new(0) };
        let sampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let unsampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
        let with = |traceparent: &str| {
            let mut headers = HeaderMap::new();
            headers.insert("traceparent", HeaderValue::from_str(traceparent).expect("valid"));
            headers.insert("tracestate", HeaderValue::from_static("vendor=1"));
            headers
        };
        let parent_based = tracer(Sampler::ParentBased(RootSampler::AlwaysOn));
        let mut headers = with(sampled);
        let span = parent_based.begin(&mut headers).expect("the parent was sampled");
        assert_eq!(hex(&span.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(span.parent_span_id.map(|id| hex(&id)).as_deref(), Some("00f067aa0ba902b7"));
        assert_eq!(span.trace_state.as_deref(), Some("vendor=1"));
        assert_eq!(headers.get("traceparent").map(|v| v.to_str().expect("ascii")), Some(span.traceparent().as_str()));
        let mut headers = with(unsampled);
        assert!(parent_based.begin(&mut headers).is_none());
        assert_eq!(headers.get("traceparent").map(|v| v.as_bytes()), Some(unsampled.as_bytes()), "left as it came");
        let mut headers = HeaderMap::new();
        let root = parent_based.begin(&mut headers).expect("a root is sampled");
        assert!(root.parent_span_id.is_none() && root.trace_state.is_none());
        assert!(tracer(Sampler::TraceIdRatio(0.0)).begin(&mut HeaderMap::new()).is_none());
        assert!(tracer(Sampler::TraceIdRatio(1.0)).begin(&mut HeaderMap::new()).is_some());
        assert!(tracer(Sampler::AlwaysOff).begin(&mut with(sampled)).is_none());
    }
}
