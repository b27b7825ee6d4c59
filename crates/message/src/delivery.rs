//! The QoS rules of handing consumed messages to a client (DESIGN 4.5), in one place for every
//! entrypoint, whatever its protocol:
//!
//! - **at-most-once**: a message's offset is committed *before* the client can see it; when that
//!   commit fails the message is not the entrypoint's to deliver (its partition moved to another
//!   consumer, which delivers it), and writing it here could repeat it;
//! - **every other level**: a message is acknowledged *after* it was written to the client, so
//!   what a client never received is never committed;
//! - **a page** (http-get) acknowledges only the latest message of each partition, which covers
//!   the earlier ones; at at-most-once it waits for each commit and leaves out the messages of a
//!   partition whose commit failed.
//!
//! An entrypoint calls [`before_write`] on each message, writes it, then calls
//! [`Receipt::written`]; or [`settle_page`] on what one response delivers.

use crate::ack::AckHandle;
use crate::message::Message;
use kafka_edge_definition::Qos;
use std::collections::HashMap;

/// What to do once a message was written to the client.
#[derive(Debug, Default)]
#[must_use = "a written message must be acknowledged, or it is delivered again"]
pub struct Receipt(Option<AckHandle>);

impl Receipt {
    /// The message reached the client: acknowledge it (nothing to do at at-most-once and none).
    pub fn written(self) {
        if let Some(ack) = self.0 {
            ack.ack();
        }
    }

    /// As [`Receipt::written`], and waits until the endpoint recorded the position; false when it
    /// could not (the partition moved: only a repetition can follow, which the QoS levels that
    /// acknowledge after the write allow).
    pub async fn written_and_recorded(self) -> bool {
        match self.0 {
            Some(ack) => ack.ack_and_wait().await,
            None => true,
        }
    }
}

/// At at-most-once, the message's commit failed: it must not be written here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotOurs;

/// Prepares a consumed message for writing, as its QoS requires: at at-most-once its offset is
/// committed first (and the message refused when that fails); otherwise the acknowledgement is
/// kept in the receipt, for after the write.
pub async fn before_write(qos: Qos, message: &mut Message) -> Result<Receipt, NotOurs> {
    match (qos, message.ack.take()) {
        (Qos::AtMostOnce, Some(ack)) => match ack.ack_and_wait().await {
            true => Ok(Receipt(None)),
            false => Err(NotOurs),
        },
        (_, ack) => Ok(Receipt(ack)),
    }
}

/// Settles what one response delivers, before the response is sent: acknowledges the latest
/// message of each partition (the others are covered by it), and at at-most-once waits for each
/// commit and removes from `items` the messages of any partition whose commit failed.
pub async fn settle_page(qos: Qos, items: &mut Vec<Message>) {
    let latest = latest_per_partition(items);
    if qos != Qos::AtMostOnce {
        latest.into_values().for_each(AckHandle::ack);
        return;
    }
    let mut lost = Vec::new();
    for (partition, ack) in latest {
        if !ack.ack_and_wait().await {
            lost.push(partition);
        }
    }
    items.retain(|m| m.metadata.as_ref().is_none_or(|meta| !lost.contains(&(meta.topic.clone(), meta.partition))));
}

/// The acknowledgement of the last message of each partition in `items`; every message's own
/// acknowledgement is taken out (the earlier ones are dropped unacknowledged).
fn latest_per_partition(items: &mut [Message]) -> HashMap<(String, i32), AckHandle> {
    let mut latest = HashMap::new();
    for message in items.iter_mut() {
        if let (Some(ack), Some(metadata)) = (message.ack.take(), &message.metadata) {
            latest.insert((metadata.topic.clone(), metadata.partition), ack);
        }
    }
    latest
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryEndpoint;
    use crate::{Endpoint, ExecutionContext, SubscribeOptions};

    fn context(group: &str) -> ExecutionContext {
        ExecutionContext { client_identifier: group.into(), ..Default::default() }
    }

    async fn subscription(endpoint: &MemoryEndpoint, group: &str, qos: Qos) -> crate::Subscription {
        endpoint.subscribe(&context(group), SubscribeOptions { qos, cursor: None }).await.expect("subscribe")
    }

    #[tokio::test]
    async fn at_most_once_commits_before_the_write_and_refuses_what_it_could_not_commit() {
        let endpoint = MemoryEndpoint::with_partitions(2);
        endpoint.append(0, "a");
        endpoint.append(1, "b");
        let mut messages = subscription(&endpoint, "g", Qos::AtMostOnce).await;
        let mut first = messages.next().await.expect("a message").expect("no failure");
        let receipt = before_write(Qos::AtMostOnce, &mut first).await.expect("committed");
        let partition = first.metadata.as_ref().expect("metadata").partition;
        assert_eq!(endpoint.committed("g", partition), Some(1), "committed before the client saw it");
        receipt.written();

        endpoint.revoke(1 - partition);
        let mut second = messages.next().await.expect("a message").expect("no failure");
        assert_eq!(before_write(Qos::AtMostOnce, &mut second).await.err(), Some(NotOurs));
        assert_eq!(endpoint.committed("g", 1 - partition), None);
    }

    #[tokio::test]
    async fn other_levels_acknowledge_only_after_the_write() {
        for qos in [Qos::Auto, Qos::AtBest, Qos::AtLeastOnce] {
            let endpoint = MemoryEndpoint::with_partitions(1);
            endpoint.append(0, "a");
            let mut messages = subscription(&endpoint, "g", qos).await;
            let mut message = messages.next().await.expect("a message").expect("no failure");
            let receipt = before_write(qos, &mut message).await.expect("no commit needed");
            assert_eq!(endpoint.committed("g", 0), None, "{qos}: nothing recorded before the write");
            assert!(receipt.written_and_recorded().await);
            assert_eq!(endpoint.committed("g", 0), Some(1), "{qos}: recorded after the write");
        }
    }

    #[tokio::test]
    async fn qos_none_never_records_anything() {
        let endpoint = MemoryEndpoint::with_partitions(1);
        endpoint.append(0, "a");
        let mut messages = subscription(&endpoint, "g", Qos::None).await;
        let mut message = messages.next().await.expect("a message").expect("no failure");
        before_write(Qos::None, &mut message).await.expect("nothing to commit").written();
        assert_eq!(endpoint.committed("g", 0), None);
    }

    #[tokio::test]
    async fn a_page_acknowledges_the_latest_of_each_partition() {
        let endpoint = MemoryEndpoint::with_partitions(2);
        for (partition, content) in [(0, "a"), (0, "b"), (1, "c"), (0, "d")] {
            endpoint.append(partition, content);
        }
        let mut messages = subscription(&endpoint, "g", Qos::Auto).await;
        let mut page = Vec::new();
        for _ in 0..4 {
            page.push(messages.next().await.expect("a message").expect("no failure"));
        }
        settle_page(Qos::Auto, &mut page).await;
        assert_eq!(page.len(), 4);
        let mut acknowledgements = endpoint.acknowledgements("g");
        acknowledgements.sort();
        assert_eq!(acknowledgements, vec![(0, 2), (1, 0)], "one acknowledgement per partition, the latest");
    }

    #[tokio::test]
    async fn an_at_most_once_page_leaves_out_a_partition_whose_commit_failed() {
        let endpoint = MemoryEndpoint::with_partitions(2);
        for (partition, content) in [(0, "a"), (1, "b"), (1, "c")] {
            endpoint.append(partition, content);
        }
        let mut messages = subscription(&endpoint, "g", Qos::AtMostOnce).await;
        let mut page = Vec::new();
        for _ in 0..3 {
            page.push(messages.next().await.expect("a message").expect("no failure"));
        }
        endpoint.revoke(1);
        settle_page(Qos::AtMostOnce, &mut page).await;
        let contents: Vec<&[u8]> = page.iter().map(|m| m.content.as_ref()).collect();
        assert_eq!(contents, [b"a".as_slice()]);
        assert_eq!(endpoint.committed("g", 0), Some(1));
        assert_eq!(endpoint.committed("g", 1), None);
    }
}
