//! The webhook entrypoint (DESIGN 5.6): no request drives it; each active subscription of a PUSH
//! plan runs [`run`], which consumes through the endpoint and POSTs each message to the
//! subscription's callback URL (`call`), with the subscription's TLS (`tls`), retries and
//! dead-letter queue. Which subscriptions run, and what a stop means for the gateway state, is
//! the gateway's business: this module receives what it needs and returns why it stopped.

mod call;
mod deliver;
pub mod tls;

pub use deliver::{run, Stop};

/// What `/metrics` learns of a subscription's deliveries.
pub trait DeliveryObserver: Send + Sync {
    /// One call to the callback ended: `delivered` (2xx), `rejected` (4xx), `failed` (5xx, no
    /// answer, no connection; retried or, past the retries, the subscription stops).
    fn call(&self, outcome: &'static str);
    /// A rejected message went to the dead-letter queue.
    fn dead_lettered(&self);
}

/// Deliveries nobody counts.
pub struct Unobserved;

impl DeliveryObserver for Unobserved {
    fn call(&self, _: &'static str) {}
    fn dead_lettered(&self) {}
}

use kafka_edge_definition::{Qos, WebhookConfiguration};
use kafka_edge_message::Endpoint;
use std::sync::Arc;

/// The webhook entrypoint of an API.
pub struct WebhookEntrypoint {
    pub qos: Qos,
    pub configuration: WebhookConfiguration,
    /// The endpoint `dlq.endpoint` names: where rejected messages are published.
    pub dlq: Option<Arc<dyn Endpoint>>,
}

impl WebhookEntrypoint {
    /// Messages in flight per subscription: 1 for at-most-once and at-least-once (order and
    /// acknowledgement), else `http.maxConcurrentConnections` (1 to 20).
    pub fn concurrency(&self) -> usize {
        match self.qos {
            Qos::AtMostOnce | Qos::AtLeastOnce => 1,
            _ => self.configuration.http.max_concurrent_connections.clamp(1, 20) as usize,
        }
    }
}
