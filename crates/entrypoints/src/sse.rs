//! Server-Sent Events (DESIGN 5.5): one long response, one event per message.
//!
//! The body is pulled by hyper chunk by chunk, so the stream below produces an event only when
//! the previous one was taken for writing: a slow client stops the pulling, which stops the
//! subscription (bounded buffers end to end). That pull is also the delivery signal for QoS:
//! a message is acknowledged when hyper asks for the next chunk after it, except with
//! at-most-once, where it is committed before it is written.

use crate::error::{failure_response, rejects_request};
use crate::EntrypointContext;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{header, HeaderMap, StatusCode};
use kafka_edge_definition::{Qos, SseConfiguration};
use kafka_edge_message::delivery::{self, Receipt};
use kafka_edge_message::{EndpointFailure, FailureKind, Message, SubscribeOptions, Subscription};
use std::convert::Infallible;
use std::fmt::Write;
use std::time::Duration;

pub const CONTENT_TYPE: &str = "text/event-stream;charset=UTF-8";

/// Serves one SSE request.
pub async fn handle(
    configuration: &SseConfiguration,
    qos: Qos,
    context: EntrypointContext,
    headers: &HeaderMap,
) -> Response {
    // Browsers resend the last `id:` they saw; only QoS levels with ids can resume from it.
    let cursor =
        headers.get("last-event-id").and_then(|v| v.to_str().ok()).map(str::to_string).filter(|_| qos.emits_ids());
    let subscription = match context.endpoint.subscribe(&context.execution, SubscribeOptions { qos, cursor }).await {
        Ok(subscription) => Some(subscription),
        Err(failure) if rejects_request(&failure) => return failure_response(&failure),
        Err(failure) => {
            let chunks: Vec<Result<Bytes, Infallible>> = vec![Ok(retry_chunk()), Ok(error_event(&failure))];
            return event_stream_response(Body::from_stream(futures::stream::iter(chunks)));
        }
    };
    let events = Events {
        subscription,
        qos,
        heartbeat: Duration::from_millis(configuration.heartbeat_interval_in_ms.max(1)),
        metadata_as_comment: configuration.metadata_as_comment,
        headers_as_comment: configuration.headers_as_comment,
        written: None,
        started: false,
        context,
    };
    event_stream_response(Body::from_stream(futures::stream::unfold(events, Events::next_chunk)))
}

fn event_stream_response(body: Body) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, CONTENT_TYPE),
            (header::CACHE_CONTROL, "no-cache"),
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        body,
    )
        .into_response()
}

/// The state of one event stream.
struct Events {
    /// `None` once the stream ended.
    subscription: Option<Subscription>,
    qos: Qos,
    heartbeat: Duration,
    metadata_as_comment: bool,
    headers_as_comment: bool,
    /// The receipt of the message in the chunk hyper took last.
    written: Option<Receipt>,
    started: bool,
    context: EntrypointContext,
}

impl Events {
    async fn next_chunk(mut self) -> Option<(Result<Bytes, Infallible>, Self)> {
        if let Some(receipt) = self.written.take() {
            receipt.written();
        }
        if !self.started {
            self.started = true;
            return Some((Ok(retry_chunk()), self));
        }
        loop {
            let subscription = self.subscription.as_mut()?;
            let chunk = tokio::select! {
                biased;
                _ = self.context.shutdown.cancelled() => {
                    self.end("goaway: the gateway stops or the API was reloaded").await;
                    Bytes::from_static(b"event: goaway\ndata: Stopping, please reconnect\n\n")
                }
                _ = self.context.revoked.cancelled() => {
                    self.end("credential revoked").await;
                    Bytes::from_static(b"event: error\ndata: Unauthorized: the credential of this stream was revoked\n:key: CREDENTIAL_REVOKED\n\n")
                }
                next = subscription.next() => match next {
                    Some(Ok(message)) => match self.message_event(message).await {
                        Some(event) => {
                            self.context.activity.sent(0);
                            event
                        }
                        None => continue,
                    },
                    Some(Err(failure)) if failure.kind == FailureKind::TooSlow => {
                        self.end("goaway: the client read too slowly").await;
                        Bytes::from(format!("event: goaway\ndata: Too slow: {}\n\n", failure.message))
                    }
                    Some(Err(failure)) => {
                        self.end(failure.kind.key()).await;
                        error_event(&failure)
                    }
                    None => {
                        self.end("the subscription ended").await;
                        return None;
                    }
                },
                _ = tokio::time::sleep(self.heartbeat) => Bytes::from_static(b":\n\n"),
            };
            return Some((Ok(chunk), self));
        }
    }

    /// The event for `message`; `None` for an at-most-once message whose commit failed (its
    /// partition moved to another consumer, which delivers it: writing it here could repeat it).
    async fn message_event(&mut self, mut message: Message) -> Option<Bytes> {
        self.written = Some(delivery::before_write(self.qos, &mut message).await.ok()?);
        Some(render_event(&message, self.metadata_as_comment, self.headers_as_comment))
    }

    /// Ends the subscription now, committing what was delivered.
    async fn end(&mut self, reason: &str) {
        self.context.activity.ended(reason);
        if let Some(subscription) = self.subscription.take() {
            subscription.close().await;
        }
    }
}

fn retry_chunk() -> Bytes {
    // Spread reconnections after a gateway restart over a few seconds.
    let jitter = (uuid::Uuid::new_v4().as_u128() % 4000) as u64;
    Bytes::from(format!("retry: {}\n\n", 1000 + jitter))
}

fn error_event(failure: &EndpointFailure) -> Bytes {
    // No `id:`: a browser would send it back as Last-Event-ID, and it is not a position.
    let mut event = String::from("event: error\n");
    push_data(&mut event, &failure.message);
    let _ = writeln!(event, ":key: {}", failure.kind.key());
    event.push('\n');
    Bytes::from(event)
}

/// One message as an event: `id:` when it has one, `event: message`, one `data:` line per
/// content line, then metadata and header comments when configured.
pub fn render_event(message: &Message, metadata_as_comment: bool, headers_as_comment: bool) -> Bytes {
    let content = String::from_utf8_lossy(&message.content);
    let mut event = String::with_capacity(content.len() + 64);
    if let Some(id) = &message.id {
        let _ = writeln!(event, "id: {id}");
    }
    event.push_str("event: message\n");
    push_data(&mut event, &content);
    if metadata_as_comment {
        if let Some(metadata) = &message.metadata {
            for (name, value) in metadata.entries() {
                let _ = writeln!(event, ":{name}: {value}");
            }
        }
    }
    if headers_as_comment {
        for (name, values) in message.headers.grouped() {
            let _ = writeln!(event, ":{}: {}", single_line(name), single_line(&values.join(",")));
        }
    }
    event.push('\n');
    Bytes::from(event)
}

/// `data:` lines: one per line of `text` (CR, LF and CRLF all end a line in SSE).
fn push_data(event: &mut String, text: &str) {
    let normalized = text.replace("\r\n", "\n").replace('\r', "\n");
    for line in normalized.split('\n') {
        let _ = writeln!(event, "data: {line}");
    }
}

/// A comment must stay on one line.
fn single_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_edge_message::{FailureKind, Headers, Metadata};

    #[test]
    fn events_follow_the_framing() {
        let mut headers = Headers::new();
        headers.append("HeaderName", "HeaderValue");
        let message = Message {
            id: Some("1".into()),
            content: Bytes::from_static(b"content 1"),
            headers,
            metadata: Some(Metadata { key: None, topic: "t".into(), partition: 0, offset: 3, source_timestamp: None }),
            ..Default::default()
        };
        assert_eq!(render_event(&message, false, false), "id: 1\nevent: message\ndata: content 1\n\n");
        assert_eq!(
            render_event(&message, true, true),
            "id: 1\nevent: message\ndata: content 1\n:topic: t\n:partition: 0\n:offset: 3\n:HeaderName: HeaderValue\n\n"
        );
    }

    #[test]
    fn multi_line_content_becomes_several_data_lines_and_no_id_without_one() {
        let message = Message::new("a\nb\r\nc");
        assert_eq!(render_event(&message, false, false), "event: message\ndata: a\ndata: b\ndata: c\n\n");
    }

    #[test]
    fn errors_carry_their_key_and_no_id() {
        let failure = EndpointFailure::new(FailureKind::ConnectionClosed, "Endpoint connection closed");
        assert_eq!(
            error_event(&failure),
            "event: error\ndata: Endpoint connection closed\n:key: FAILURE_ENDPOINT_CONNECTION_CLOSED\n\n"
        );
    }
}
