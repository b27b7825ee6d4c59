//! Entrypoints: how clients reach an API over HTTP (DESIGN 5). Each turns a request into
//! endpoint operations through the `Endpoint` trait and renders the outcome; none knows Kafka.

mod accept;
pub mod error;
pub mod http_get;
pub mod http_post;
mod page;
pub mod query;
pub mod sse;
pub mod trace;
pub mod webhook;
pub mod websocket;

use kafka_edge_message::{Endpoint, ExecutionContext};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// What every entrypoint receives with a request, besides the request itself.
#[derive(Clone)]
pub struct EntrypointContext {
    pub endpoint: Arc<dyn Endpoint>,
    pub execution: ExecutionContext,
    /// Cancelled when the gateway stops, or when a reload replaced the API and its grace period
    /// ended: long-lived responses end early.
    pub shutdown: CancellationToken,
    /// Cancelled when the credential that admitted the request is revoked: streams end with a
    /// reason. Never cancelled for requests no credential admitted.
    pub revoked: CancellationToken,
    /// The largest message a client may send: an http-post body, a WebSocket frame.
    pub max_message_bytes: usize,
    /// Where a stream reports its messages and why it ended (the gateway's access log).
    pub activity: Arc<dyn StreamActivity>,
}

/// What an SSE stream or a WebSocket session tells the access log beyond its response.
pub trait StreamActivity: Send + Sync {
    /// One message went to the client; `frame_bytes` counts what the response body did not
    /// carry (WebSocket frames; 0 for SSE, whose events are the body).
    fn sent(&self, frame_bytes: usize);
    /// One message came from the client.
    fn received(&self, bytes: usize);
    /// Why the stream ended; the first reason given is kept.
    fn ended(&self, reason: &str);
}

/// Activity nobody records.
pub struct Unrecorded;

impl StreamActivity for Unrecorded {
    fn sent(&self, _: usize) {}
    fn received(&self, _: usize) {}
    fn ended(&self, _: &str) {}
}

impl Unrecorded {
    pub fn shared() -> Arc<dyn StreamActivity> {
        Arc::new(Unrecorded)
    }
}
