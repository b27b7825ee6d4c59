//! The access log (docs/operations.md#access-log): one line per request, written when its response
//! body is done, and for SSE and WebSocket one line when the stream opens and one when it ends.
//! Lines go to the `kafka_edge::access` target at INFO. The path is logged without its query
//! string, which may carry an API key or an access token. The same record ends the request's
//! OpenTelemetry span (crate::otel), when it has one.

use axum::body::Body;
use bytes::Bytes;
use http::{header, Method, Response, StatusCode};
use http_body::{Body as HttpBody, Frame, SizeHint};
use kafka_edge_entrypoints::StreamActivity;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime};

use crate::otel::{FinishedSpan, OpenSpan, Tracer, Value};

/// The log target of access lines (`RUST_LOG=kafka_edge::access=off` also silences them).
pub const TARGET: &str = "kafka_edge::access";

/// One request as the access log sees it. Shared by the response body and the entrypoint's
/// stream; the closing line is written when the last of them lets go.
pub struct Access {
    /// Whether lines are written (`--access-log`); off, the record only ends a span.
    log: bool,
    span: Mutex<Option<Traced>>,
    method: Method,
    path: String,
    client: IpAddr,
    started: Instant,
    api: Mutex<Option<(String, &'static str)>>,
    status: AtomicU16,
    bytes_in: AtomicU64,
    body_bytes_out: AtomicU64,
    frame_bytes_out: AtomicU64,
    messages_out: AtomicU64,
    messages_in: AtomicU64,
    stream: AtomicBool,
    body_done: AtomicBool,
    reason: Mutex<Option<String>>,
}

/// The span of a traced request, and the context path (`http.route`) that named it.
struct Traced {
    tracer: Arc<Tracer>,
    span: OpenSpan,
    route: String,
}

impl Access {
    pub fn new(log: bool, method: &Method, path: &str, client: IpAddr) -> Arc<Self> {
        Arc::new(Self {
            log,
            span: Mutex::new(None),
            method: method.clone(),
            path: path.to_owned(),
            client,
            started: Instant::now(),
            api: Mutex::new(None),
            status: AtomicU16::new(0),
            bytes_in: AtomicU64::new(0),
            body_bytes_out: AtomicU64::new(0),
            frame_bytes_out: AtomicU64::new(0),
            messages_out: AtomicU64::new(0),
            messages_in: AtomicU64::new(0),
            stream: AtomicBool::new(false),
            body_done: AtomicBool::new(false),
            reason: Mutex::new(None),
        })
    }

    /// The API and entrypoint that took the request.
    pub fn served_by(&self, api: &str, entrypoint: &'static str) {
        *self.api.lock().unwrap_or_else(PoisonError::into_inner) = Some((api.to_owned(), entrypoint));
    }

    /// The request is traced: `span` ends when this record does.
    pub fn trace(&self, tracer: Arc<Tracer>, span: OpenSpan, route: &str) {
        let traced = Traced { tracer, span, route: route.to_owned() };
        *self.span.lock().unwrap_or_else(PoisonError::into_inner) = Some(traced);
    }

    /// The size of the request body that was read.
    pub fn read(&self, bytes: usize) {
        self.bytes_in.store(bytes as u64, Ordering::Relaxed);
    }

    /// Records the response head; a stream (SSE, WebSocket upgrade) logs its opening now. The
    /// body is counted from here on.
    pub fn respond(self: &Arc<Self>, response: Response<Body>) -> Response<Body> {
        let status = response.status();
        self.status.store(status.as_u16(), Ordering::Relaxed);
        let is_event_stream = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("text/event-stream"));
        if status == StatusCode::SWITCHING_PROTOCOLS || (status.is_success() && is_event_stream) {
            self.stream.store(true, Ordering::Relaxed);
        }
        if self.log && self.stream.load(Ordering::Relaxed) {
            let (api, entrypoint) = self.api_and_entrypoint();
            tracing::info!(
                target: TARGET,
                method = %self.method,
                path = %self.path,
                api,
                entrypoint,
                status = status.as_u16(),
                client = %self.client,
                "Stream opened."
            );
        }
        response.map(|body| Body::new(Counted { inner: body, access: self.clone() }))
    }

    fn api_and_entrypoint(&self) -> (String, &'static str) {
        match &*self.api.lock().unwrap_or_else(PoisonError::into_inner) {
            Some((api, entrypoint)) => (api.clone(), entrypoint),
            None => ("-".to_owned(), "-"),
        }
    }
}

impl StreamActivity for Access {
    fn sent(&self, frame_bytes: usize) {
        self.messages_out.fetch_add(1, Ordering::Relaxed);
        self.frame_bytes_out.fetch_add(frame_bytes as u64, Ordering::Relaxed);
    }

    fn received(&self, bytes: usize) {
        self.messages_in.fetch_add(1, Ordering::Relaxed);
        self.bytes_in.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    fn ended(&self, reason: &str) {
        self.reason.lock().unwrap_or_else(PoisonError::into_inner).get_or_insert_with(|| reason.to_owned());
    }
}

impl Drop for Access {
    fn drop(&mut self) {
        if let Some(traced) = self.span.get_mut().unwrap_or_else(PoisonError::into_inner).take() {
            self.end_span(traced);
        }
        if self.log {
            self.write_line();
        }
    }
}

impl Access {
    fn end_span(&self, traced: Traced) {
        let Traced { tracer, span, route } = traced;
        let (api, entrypoint) = self.api_and_entrypoint();
        let status = self.status.load(Ordering::Relaxed);
        let mut attributes = vec![
            ("http.request.method", Value::Text(self.method.to_string())),
            ("http.route", Value::Text(route.clone())),
            ("url.path", Value::Text(self.path.clone())),
            ("client.address", Value::Text(self.client.to_string())),
            ("http.response.status_code", Value::Int(i64::from(status))),
            ("kafka_edge.api", Value::Text(api)),
            ("kafka_edge.entrypoint", Value::Text(entrypoint.to_owned())),
        ];
        if self.stream.load(Ordering::Relaxed) {
            attributes.push(("kafka_edge.messages_out", Value::Int(self.messages_out.load(Ordering::Relaxed) as i64)));
            attributes.push(("kafka_edge.messages_in", Value::Int(self.messages_in.load(Ordering::Relaxed) as i64)));
        }
        tracer.end(FinishedSpan {
            span,
            name: format!("{} {route}", self.method),
            ended: SystemTime::now(),
            attributes,
            // OpenTelemetry's HTTP conventions: a server span is an error for 5xx answers only.
            error: (status >= 500).then(|| format!("answered {status}")),
        });
    }

    fn write_line(&self) {
        let (api, entrypoint) = self.api_and_entrypoint();
        let duration_ms = (self.started.elapsed().as_secs_f64() * 1_000_000.0).round() / 1000.0;
        let status = self.status.load(Ordering::Relaxed);
        let bytes_in = self.bytes_in.load(Ordering::Relaxed);
        let bytes_out = self.body_bytes_out.load(Ordering::Relaxed) + self.frame_bytes_out.load(Ordering::Relaxed);
        let method = &self.method;
        let (path, client) = (&self.path, &self.client);
        if !self.stream.load(Ordering::Relaxed) {
            tracing::info!(target: TARGET, %method, %path, api, entrypoint, status, duration_ms, bytes_in, bytes_out, %client, "Request.");
            return;
        }
        let reason = self.reason.lock().unwrap_or_else(PoisonError::into_inner).take();
        let reason = match reason {
            Some(reason) => reason,
            None if self.body_done.load(Ordering::Relaxed) => "ended".to_owned(),
            None => "the client disconnected".to_owned(),
        };
        let messages_out = self.messages_out.load(Ordering::Relaxed);
        let messages_in = self.messages_in.load(Ordering::Relaxed);
        tracing::info!(
            target: TARGET,
            %method, %path, api, entrypoint, status, duration_ms, bytes_in, bytes_out,
            messages_out, messages_in, reason, %client,
            "Stream ended."
        );
    }
}

/// A response body that counts what it hands to the connection.
struct Counted {
    inner: Body,
    access: Arc<Access>,
}

impl HttpBody for Counted {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.access.body_bytes_out.fetch_add(data.len() as u64, Ordering::Relaxed);
                }
            }
            Poll::Ready(None) => self.access.body_done.store(true, Ordering::Relaxed),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
