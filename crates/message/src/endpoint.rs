//! The endpoint trait: publish messages, or subscribe to a stream of them.

use crate::context::ExecutionContext;
use crate::failure::EndpointFailure;
use crate::message::{Message, RecordPosition};
use kafka_edge_definition::Qos;
use std::future::Future;
use std::pin::Pin;
use tokio::sync::mpsc;

/// A backend that messages are published to and consumed from.
#[async_trait::async_trait]
pub trait Endpoint: Send + Sync {
    /// Publishes one message; returns once the backend acknowledged it, with where its records
    /// landed (one per topic it went to).
    async fn publish(
        &self,
        context: &ExecutionContext,
        message: Message,
    ) -> Result<Vec<RecordPosition>, EndpointFailure>;

    /// Starts a subscription for one client connection.
    async fn subscribe(
        &self,
        context: &ExecutionContext,
        options: SubscribeOptions,
    ) -> Result<Subscription, EndpointFailure>;

    /// Prepares what every request will need (a producer and its connection) before the first
    /// request comes, where that does not depend on the request. Failing is not an error here:
    /// the first request that needs it tries again and reports.
    async fn warm(&self) -> Result<(), EndpointFailure> {
        Ok(())
    }

    /// Lets go of whatever is kept warm for returning clients (a credential was revoked, the
    /// definition is replaced).
    fn close_idle(&self) {}
}

/// How a subscription should start and deliver.
#[derive(Debug, Clone, Default)]
pub struct SubscribeOptions {
    pub qos: Qos,
    /// Where to resume, as the client sent it (`?cursor=` or `Last-Event-ID`).
    pub cursor: Option<String>,
}

/// Resolves once the subscription is closed as asked; with the resume position when asked for it.
type CloseFuture = Pin<Box<dyn Future<Output = Option<String>> + Send>>;

/// What a subscribe-phase transformation decided for one message.
pub enum Transformed {
    Keep(Message),
    /// Filtered out: acknowledged as handled, never shown to the client.
    Drop(Message),
    /// Ends the subscription with this failure.
    Fail(EndpointFailure),
}

type Transform = Box<dyn FnMut(Message) -> Transformed + Send>;

/// What closing a subscription waits for besides the commit the QoS requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// Also wait until the endpoint released its resources (the consumer left its group).
    Wait,
    /// Let the endpoint release them after returning.
    InBackground,
    /// As `InBackground`, but the endpoint may instead keep them, ready for the same client's
    /// next subscription (an http-get client that comes back).
    KeepWarm,
}

/// How a subscription is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Close {
    pub release: Release,
    /// Also answer, once committed, the position after everything delivered, for every partition
    /// the subscription read, as the endpoint's cursor (what a client sends to continue exactly
    /// there).
    pub resume_position: bool,
}

/// A live subscription: a stream of messages (or one final failure), and a way to end it cleanly.
/// Dropping it also ends it, without waiting for the end.
pub struct Subscription {
    messages: mpsc::Receiver<Result<Message, EndpointFailure>>,
    close: Option<Box<dyn FnOnce(Close) -> CloseFuture + Send>>,
    transform: Option<Transform>,
    failed: bool,
}

impl Subscription {
    pub fn new(
        messages: mpsc::Receiver<Result<Message, EndpointFailure>>,
        close: impl FnOnce(Close) -> CloseFuture + Send + 'static,
    ) -> Self {
        Self { messages, close: Some(Box::new(close)), transform: None, failed: false }
    }

    /// Applies `transform` to every message before it is handed out (the subscribe phase of
    /// flows), after the transform already set, if any, kept the message.
    pub fn with_transform(mut self, mut transform: impl FnMut(Message) -> Transformed + Send + 'static) -> Self {
        self.transform = Some(match self.transform.take() {
            None => Box::new(transform),
            Some(mut first) => Box::new(move |message| match first(message) {
                Transformed::Keep(message) => transform(message),
                decided => decided,
            }),
        });
        self
    }

    /// The next message; `None` once the subscription ended. A failure is always the last item.
    pub async fn next(&mut self) -> Option<Result<Message, EndpointFailure>> {
        if self.failed {
            return None;
        }
        loop {
            let message = match self.messages.recv().await? {
                Ok(message) => message,
                failure => return Some(failure),
            };
            let Some(transform) = self.transform.as_mut() else { return Some(Ok(message)) };
            match transform(message) {
                Transformed::Keep(message) => return Some(Ok(message)),
                Transformed::Drop(mut message) => {
                    if let Some(ack) = message.ack.take() {
                        ack.ack();
                    }
                }
                Transformed::Fail(failure) => {
                    self.failed = true;
                    return Some(Err(failure));
                }
            }
        }
    }

    /// Ends the subscription and waits until the endpoint committed what the QoS requires and
    /// released its resources (the consumer left its group).
    pub async fn close(self) {
        self.close_with(Close { release: Release::Wait, resume_position: false }).await;
    }

    /// Ends one request of a client that is likely to come back (http-get): waits until the
    /// endpoint committed what the QoS requires, and lets it keep its consumer warm for the
    /// client's next request; with the resume position when `with_position`.
    pub async fn close_keeping_warm(self, with_position: bool) -> Option<String> {
        self.close_with(Close { release: Release::KeepWarm, resume_position: with_position }).await
    }

    async fn close_with(mut self, close: Close) -> Option<String> {
        // The endpoint hears how to close before it sees the channel closed.
        let closing = self.close.take().map(|close_subscription| close_subscription(close));
        self.messages.close();
        match closing {
            Some(closing) => closing.await,
            None => None,
        }
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription").finish_non_exhaustive()
    }
}
