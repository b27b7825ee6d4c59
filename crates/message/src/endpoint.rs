//! The endpoint trait: publish messages, or subscribe to a stream of them.

use crate::context::ExecutionContext;
use crate::failure::EndpointFailure;
use crate::message::Message;
use kafka_edge_definition::Qos;
use std::future::Future;
use std::pin::Pin;
use tokio::sync::mpsc;

/// A backend that messages are published to and consumed from.
#[async_trait::async_trait]
pub trait Endpoint: Send + Sync {
    /// Publishes one message; returns once the backend acknowledged it.
    async fn publish(&self, context: &ExecutionContext, message: Message) -> Result<(), EndpointFailure>;

    /// Starts a subscription for one client connection.
    async fn subscribe(&self, context: &ExecutionContext, options: SubscribeOptions) -> Result<Subscription, EndpointFailure>;
}

/// How a subscription should start and deliver.
#[derive(Debug, Clone, Default)]
pub struct SubscribeOptions {
    pub qos: Qos,
    /// Where to resume, as the client sent it (`?cursor=` or `Last-Event-ID`).
    pub cursor: Option<String>,
}

type CloseFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A live subscription: a stream of messages (or one final failure), and a way to end it cleanly.
/// Dropping it also ends it, without waiting for the end.
pub struct Subscription {
    messages: mpsc::Receiver<Result<Message, EndpointFailure>>,
    close: Option<Box<dyn FnOnce() -> CloseFuture + Send>>,
}

impl Subscription {
    pub fn new(
        messages: mpsc::Receiver<Result<Message, EndpointFailure>>,
        close: impl FnOnce() -> CloseFuture + Send + 'static,
    ) -> Self {
        Self { messages, close: Some(Box::new(close)) }
    }

    /// The next message; `None` once the subscription ended. A failure is always the last item.
    pub async fn next(&mut self) -> Option<Result<Message, EndpointFailure>> {
        self.messages.recv().await
    }

    /// Ends the subscription and waits until the endpoint committed what the QoS requires and
    /// released its resources (the consumer left its group).
    pub async fn close(mut self) {
        self.messages.close();
        if let Some(close) = self.close.take() {
            close().await;
        }
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription").finish_non_exhaustive()
    }
}
