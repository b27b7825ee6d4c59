//! Acknowledgement: how an entrypoint tells the endpoint that a message reached the client, so the
//! endpoint can apply the QoS commit behaviour (DESIGN 4.5) without knowing the client protocol.

use std::sync::Arc;
use tokio::sync::oneshot;

/// Implemented by an endpoint's subscriber: records that `position` was delivered.
pub trait Acknowledger: Send + Sync + std::fmt::Debug {
    /// Records the delivery. `done` is answered once the position is durable where the QoS requires
    /// it (a synchronous commit for at-most-once), or at once otherwise: `true` when it was
    /// recorded, `false` when it could not be (the partition went to another consumer).
    fn acknowledge(&self, position: AckPosition, done: Option<oneshot::Sender<bool>>);
}

/// Which message an acknowledgement is for, in the endpoint's own terms (for Kafka: a topic and
/// partition packed into `stream`, and the record offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckPosition {
    pub stream: u64,
    pub offset: i64,
}

/// Carried by a consumed message; consumed by acknowledging.
#[derive(Debug)]
pub struct AckHandle {
    acknowledger: Arc<dyn Acknowledger>,
    position: AckPosition,
}

impl AckHandle {
    pub fn new(acknowledger: Arc<dyn Acknowledger>, position: AckPosition) -> Self {
        Self { acknowledger, position }
    }

    /// Acknowledges without waiting.
    pub fn ack(self) {
        self.acknowledger.acknowledge(self.position, None);
    }

    /// Acknowledges and waits until the endpoint made it durable as its QoS requires; false when
    /// it could not (a subscriber that stopped, a partition another consumer owns now). At most
    /// once, such a message must not reach the client: another consumer will deliver it.
    #[must_use = "at-most-once must not deliver a message whose acknowledgement failed"]
    pub async fn ack_and_wait(self) -> bool {
        let (done, wait) = oneshot::channel();
        self.acknowledger.acknowledge(self.position, Some(done));
        wait.await.unwrap_or(false)
    }
}
