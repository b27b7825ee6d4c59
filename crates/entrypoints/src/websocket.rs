//! WebSocket (DESIGN 5.4): one connection publishes and subscribes at once. Each text or binary
//! frame the client sends is one published message; each consumed message is one binary frame.
//!
//! Threading: axum answers the upgrade and runs the session on a task of its own. Inside it the two
//! directions run concurrently (`join!`, no further task), each owning one half of the socket:
//!
//! - the reader takes one frame and awaits its publish (the broker's acknowledgement) before it
//!   reads the next, so a fast publisher is paced by the broker through TCP flow control: nothing
//!   is read ahead;
//! - the writer sends what the subscription hands out, coalescing what is ready into one write,
//!   and acknowledges messages once written (QoS `auto`); a slow client stops the writer, which
//!   stops the subscription (bounded buffers end to end). It also pings the client every
//!   [`PING_INTERVAL`]: a client that sent nothing, not even a pong, since the last ping is gone.
//!
//! When either direction ends it stops the other; the reader first finishes the publish it is
//! awaiting, so a received frame is never dropped silently. Then one close frame says why: 1011
//! with the failure as reason, 1013 when the gateway shuts down, 1000 otherwise (a client's own
//! close is answered by the WebSocket library). Meanwhile the subscription is closed: offsets
//! are committed and the consumer leaves its group.

use crate::error::{failure_response, json_error, rejects_request};
use crate::{EntrypointContext, StreamActivity};
use axum::extract::ws::{close_code, CloseFrame, Message as Frame, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::FromRequestParts;
use axum::response::Response;
use bytes::Bytes;
use futures::stream::{SplitSink, SplitStream};
use futures::{FutureExt, SinkExt, StreamExt};
use http::request::Parts;
use kafka_edge_definition::{Qos, WebsocketConfiguration};
use kafka_edge_message::{delivery, EndpointFailure, FailureKind, Message, SubscribeOptions, Subscription};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::time::{interval_at, Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How often an otherwise quiet connection is checked with a ping.
pub const PING_INTERVAL: Duration = Duration::from_secs(30);
/// Most messages written before one flush.
const WRITE_BATCH: usize = 64;
/// Longest wait for the client's side of the closing handshake (some clients answer only once
/// their own input ended).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// A close reason must fit a control frame (125 bytes) after the 2-byte code.
const MAX_REASON_BYTES: usize = 123;

/// The sessions of one API: once upgraded, a connection is no longer the HTTP server's, whose
/// graceful shutdown would not wait for it.
#[derive(Clone, Default)]
pub struct Sessions(TaskTracker);

impl Sessions {
    /// Waits until every session ended (they end on the shutdown token); accepts no new one.
    pub async fn ended(&self) {
        self.0.close();
        self.0.wait().await;
    }
}

/// Serves one WebSocket upgrade request.
pub async fn handle(
    configuration: &WebsocketConfiguration,
    qos: Qos,
    context: EntrypointContext,
    parts: &mut Parts,
    sessions: &Sessions,
) -> Response {
    let upgrade = match WebSocketUpgrade::from_request_parts(parts, &()).await {
        Ok(upgrade) => upgrade.max_message_size(context.max_message_bytes).max_frame_size(context.max_message_bytes),
        Err(rejection) => return json_error(rejection.status(), &rejection.body_text(), None),
    };
    // Subscribing before the upgrade lets a request the endpoint refuses get a status.
    let subscription = if configuration.subscriber.enabled {
        match context.endpoint.subscribe(&context.execution, SubscribeOptions { qos, cursor: None }).await {
            Ok(subscription) => Ok(Some(subscription)),
            Err(failure) if rejects_request(&failure) => return failure_response(&failure),
            Err(failure) => Err(failure),
        }
    } else {
        Ok(None)
    };
    let publisher = configuration.publisher.enabled;
    let session = sessions.0.token();
    upgrade.on_upgrade(move |socket| async move {
        run(socket, qos, publisher, subscription, context).await;
        drop(session);
    })
}

/// Why one direction ended.
enum End {
    /// Nothing more to do here (or the other direction said stop).
    Done,
    /// The client sent its close frame; the library answers it.
    ClientClosed,
    /// The connection is unusable: nothing can be said to the client any more.
    ClientGone,
    /// Close with this code and reason.
    Close(u16, String),
}

async fn run(
    socket: WebSocket,
    qos: Qos,
    publisher: bool,
    subscription: Result<Option<Subscription>, EndpointFailure>,
    context: EntrypointContext,
) {
    let (mut sink, mut stream) = socket.split();
    let (ends, mut subscription) = match subscription {
        // Over the consumer limits: 1013, try again later.
        Err(failure) if failure.kind == FailureKind::Overloaded => {
            ((End::Close(close_code::AGAIN, failure.message), End::Done), None)
        }
        Err(failure) => ((End::Close(close_code::ERROR, failure.message), End::Done), None),
        Ok(mut subscription) => {
            let stop = context.shutdown.child_token();
            let liveness = Liveness { heard: AtomicBool::new(true), publishing: AtomicBool::new(false) };
            let ends = tokio::join!(
                async {
                    let end = read(&mut stream, publisher, &context, &stop, &liveness).await;
                    stop.cancel();
                    end
                },
                async {
                    let end = tokio::select! {
                        _ = stop.cancelled() => End::Done,
                        _ = context.revoked.cancelled() => {
                            End::Close(close_code::POLICY, "Unauthorized: the credential of this session was revoked".into())
                        }
                        end = write(&mut sink, subscription.as_mut(), qos, publisher, &liveness, &*context.activity) => end,
                    };
                    stop.cancel();
                    end
                },
            );
            (ends, subscription)
        }
    };
    let close = match ends {
        (End::Close(code, reason), _) | (_, End::Close(code, reason)) => Some((code, reason)),
        (End::ClientClosed, _) => {
            context.activity.ended("the client closed");
            None
        }
        (End::ClientGone, _) | (_, End::ClientGone) => {
            context.activity.ended("the client is gone");
            None
        }
        _ if context.shutdown.is_cancelled() => Some((close_code::AGAIN, "Try Again Later".to_string())),
        _ => Some((close_code::NORMAL, String::new())),
    };
    if let Some((code, reason)) = &close {
        context.activity.ended(&format!("closed with {code} {reason}"));
    }
    let handshake = tokio::time::timeout(CLOSE_TIMEOUT, async {
        match close {
            Some((code, reason)) => {
                let frame = CloseFrame { code, reason: close_reason(&reason) };
                if sink.send(Frame::Close(Some(frame))).await.is_ok() {
                    // The client's answer ends the stream; what it sent before that is not read.
                    while let Some(Ok(_)) = stream.next().await {}
                }
            }
            // Flushes the library's answer to the client's close frame.
            None => {
                let _ = sink.close().await;
            }
        }
    });
    let release = async {
        if let Some(subscription) = subscription.take() {
            subscription.close().await;
        }
    };
    let _ = tokio::join!(handshake, release);
}

/// What the writer needs to know from the reader to tell a live client from a dead one.
struct Liveness {
    /// A frame arrived since the last ping.
    heard: AtomicBool,
    /// The reader is awaiting a publish, so it reads nothing (pongs included) meanwhile.
    publishing: AtomicBool,
}

async fn read(
    stream: &mut SplitStream<WebSocket>,
    publisher: bool,
    context: &EntrypointContext,
    stop: &CancellationToken,
    liveness: &Liveness,
) -> End {
    loop {
        let frame = tokio::select! {
            _ = stop.cancelled() => return End::Done,
            frame = stream.next() => frame,
        };
        liveness.heard.store(true, Ordering::Relaxed);
        let content = match frame {
            Some(Ok(frame @ (Frame::Text(_) | Frame::Binary(_)))) => frame.into_data(),
            // Pings are answered by the library.
            Some(Ok(Frame::Ping(_) | Frame::Pong(_))) => continue,
            Some(Ok(Frame::Close(_))) => return End::ClientClosed,
            Some(Err(error)) => return read_error(error),
            None => return End::ClientGone,
        };
        context.activity.received(content.len());
        if !publisher {
            continue;
        }
        liveness.publishing.store(true, Ordering::Relaxed);
        let mut message = Message::new(content);
        // Every message of the session carries the trace context of its upgrade request.
        crate::trace::carry(&context.execution.request.headers, &mut message);
        let published = context.endpoint.publish(&context.execution, message).await;
        liveness.publishing.store(false, Ordering::Relaxed);
        if let Err(failure) = published {
            tracing::debug!(key = failure.kind.key(), message = %failure.message, "WebSocket publish failed; closing.");
            return End::Close(close_code::ERROR, failure.message);
        }
    }
}

/// A frame the client should not have sent gets the close code that says so.
fn read_error(error: axum::Error) -> End {
    match error.into_inner().downcast::<tungstenite::Error>().map(|error| *error) {
        Ok(tungstenite::Error::Capacity(error)) => End::Close(close_code::SIZE, error.to_string()),
        Ok(tungstenite::Error::Protocol(error)) => End::Close(close_code::PROTOCOL, error.to_string()),
        Ok(tungstenite::Error::Utf8(_)) => End::Close(close_code::INVALID, "Text frame is not valid UTF-8".into()),
        _ => End::ClientGone,
    }
}

async fn write(
    sink: &mut SplitSink<WebSocket, Frame>,
    mut subscription: Option<&mut Subscription>,
    qos: Qos,
    publisher: bool,
    liveness: &Liveness,
    activity: &dyn StreamActivity,
) -> End {
    let mut ping = interval_at(Instant::now() + PING_INTERVAL, PING_INTERVAL);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // An item taken while coalescing that belongs to the next round.
    let mut stashed = None;
    loop {
        if subscription.is_none() && !publisher {
            return End::Done;
        }
        let next = match stashed.take() {
            Some(next) => next,
            None => tokio::select! {
                _ = ping.tick() => {
                    let busy = liveness.publishing.load(Ordering::Relaxed);
                    if !liveness.heard.swap(false, Ordering::Relaxed) && !busy {
                        tracing::debug!("WebSocket client did not answer a ping; closing.");
                        return End::ClientGone;
                    }
                    if sink.send(Frame::Ping(Bytes::new())).await.is_err() {
                        return End::ClientGone;
                    }
                    continue;
                }
                next = next_message(subscription.as_deref_mut()) => next,
            },
        };
        let mut message = match next {
            Some(Ok(message)) => message,
            Some(Err(failure)) if failure.kind == FailureKind::TooSlow => {
                return End::Close(close_code::AGAIN, failure.message)
            }
            Some(Err(failure)) => return End::Close(close_code::ERROR, failure.message),
            None => {
                subscription = None;
                continue;
            }
        };
        let Some(source) = subscription.as_deref_mut() else { continue };
        let mut written = Vec::new();
        for count in 1.. {
            // Acknowledged once the batch is flushed to the client (delivery::before_write).
            if let Ok(receipt) = delivery::before_write(qos, &mut message).await {
                written.push(receipt);
                activity.sent(message.content.len());
                if sink.feed(Frame::Binary(message.content)).await.is_err() {
                    return End::ClientGone;
                }
            }
            match source.next().now_or_never() {
                Some(Some(Ok(more))) if count < WRITE_BATCH => message = more,
                ready => {
                    stashed = ready;
                    break;
                }
            }
        }
        if sink.flush().await.is_err() {
            return End::ClientGone;
        }
        written.into_iter().for_each(delivery::Receipt::written);
    }
}

async fn next_message(subscription: Option<&mut Subscription>) -> Option<Result<Message, EndpointFailure>> {
    match subscription {
        Some(subscription) => subscription.next().await,
        None => std::future::pending().await,
    }
}

/// `text`, cut on a character boundary to fit a close frame.
fn close_reason(text: &str) -> Utf8Bytes {
    let mut end = text.len().min(MAX_REASON_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Utf8Bytes::from(&text[..end])
}

#[cfg(test)]
mod tests {
    use super::close_reason;

    #[test]
    fn close_reasons_fit_a_control_frame_without_splitting_a_character() {
        assert_eq!(close_reason("Endpoint configuration invalid").as_str(), "Endpoint configuration invalid");
        let long = "é".repeat(100);
        let reason = close_reason(&long);
        assert_eq!(reason.len(), 122);
        assert!(long.starts_with(reason.as_str()));
    }
}
