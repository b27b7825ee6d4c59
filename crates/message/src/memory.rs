//! An in-memory [`Endpoint`]: a test double beside the Kafka endpoint, never instead of the tests
//! on a real broker. It lets entrypoints' QoS behaviour (what is acknowledged, committed, skipped
//! and when) be unit-tested in milliseconds. Built only with the `memory` feature.
//!
//! One topic (`memory`) with a fixed number of partitions; a group is the context's client
//! identifier. A subscription is a snapshot: the messages appended before it started, each
//! partition from its group's committed offset, partitions in order. An acknowledgement commits
//! at once (the Kafka endpoint stores it for the next commit; what matters to these tests is
//! whether and when it was recorded); [`MemoryEndpoint::revoke`] makes a partition's
//! acknowledgements fail, as after a rebalance that gave it to another consumer.

use crate::ack::{AckHandle, AckPosition, Acknowledger};
use crate::context::ExecutionContext;
use crate::endpoint::{Endpoint, SubscribeOptions, Subscription};
use crate::failure::EndpointFailure;
use crate::message::{Message, Metadata, RecordPosition};
use bytes::Bytes;
use kafka_edge_definition::Qos;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::{mpsc, oneshot};

pub const TOPIC: &str = "memory";

#[derive(Default)]
struct State {
    partitions: Vec<Vec<Bytes>>,
    /// Next offset to read, per (group, partition).
    committed: HashMap<(String, i32), i64>,
    revoked: HashSet<i32>,
    published: Vec<Message>,
    /// Every acknowledgement received, in order: (group, partition, offset).
    acknowledgements: Vec<(String, i32, i64)>,
}

#[derive(Clone, Default)]
pub struct MemoryEndpoint {
    state: Arc<Mutex<State>>,
}

impl MemoryEndpoint {
    pub fn with_partitions(count: usize) -> Self {
        let state = State { partitions: vec![Vec::new(); count.max(1)], ..State::default() };
        Self { state: Arc::new(Mutex::new(state)) }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends a record to `partition`; returns its offset.
    pub fn append(&self, partition: i32, content: impl Into<Bytes>) -> i64 {
        let mut state = self.state();
        let log = &mut state.partitions[partition as usize];
        log.push(content.into());
        log.len() as i64 - 1
    }

    /// The next offset `group` reads from `partition`: the last committed offset + 1.
    pub fn committed(&self, group: &str, partition: i32) -> Option<i64> {
        self.state().committed.get(&(group.to_string(), partition)).copied()
    }

    /// Every acknowledgement `group` sent, in order, as (partition, offset), recorded or not.
    pub fn acknowledgements(&self, group: &str) -> Vec<(i32, i64)> {
        let state = self.state();
        state.acknowledgements.iter().filter(|(g, _, _)| g == group).map(|(_, p, o)| (*p, *o)).collect()
    }

    /// From now on, acknowledgements for `partition` fail (it moved to another consumer).
    pub fn revoke(&self, partition: i32) {
        self.state().revoked.insert(partition);
    }

    /// The messages published through the endpoint, in order.
    pub fn published(&self) -> Vec<Bytes> {
        self.state().published.iter().map(|m| m.content.clone()).collect()
    }
}

#[derive(Debug)]
struct MemoryAcknowledger {
    state: Arc<Mutex<State>>,
    group: String,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State").field("partitions", &self.partitions.len()).finish_non_exhaustive()
    }
}

impl Acknowledger for MemoryAcknowledger {
    fn acknowledge(&self, position: AckPosition, done: Option<oneshot::Sender<bool>>) {
        let partition = position.stream as i32;
        let recorded = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.acknowledgements.push((self.group.clone(), partition, position.offset));
            if state.revoked.contains(&partition) {
                false
            } else {
                let next = state.committed.entry((self.group.clone(), partition)).or_insert(0);
                *next = (*next).max(position.offset + 1);
                true
            }
        };
        if let Some(done) = done {
            let _ = done.send(recorded);
        }
    }
}

#[async_trait::async_trait]
impl Endpoint for MemoryEndpoint {
    async fn publish(
        &self,
        _context: &ExecutionContext,
        message: Message,
    ) -> Result<Vec<RecordPosition>, EndpointFailure> {
        let mut state = self.state();
        let offset = state.published.len() as i64;
        state.published.push(message);
        Ok(vec![RecordPosition { topic: "published".into(), partition: 0, offset }])
    }

    async fn subscribe(
        &self,
        context: &ExecutionContext,
        options: SubscribeOptions,
    ) -> Result<Subscription, EndpointFailure> {
        let group = context.client_identifier.clone();
        let acknowledger = Arc::new(MemoryAcknowledger { state: self.state.clone(), group: group.clone() });
        let mut messages = Vec::new();
        {
            let state = self.state();
            for (partition, log) in state.partitions.iter().enumerate() {
                let partition = partition as i32;
                let start = state.committed.get(&(group.clone(), partition)).copied().unwrap_or(0);
                for (offset, content) in log.iter().enumerate().skip(start as usize) {
                    let offset = offset as i64;
                    let mut message = Message::new(content.clone());
                    message.id = options.qos.emits_ids().then(|| format!("{TOPIC}@{partition}#{offset}"));
                    message.metadata =
                        Some(Metadata { key: None, topic: TOPIC.into(), partition, offset, source_timestamp: None });
                    message.ack = (options.qos != Qos::None).then(|| {
                        let position = AckPosition { stream: partition as u64, offset };
                        AckHandle::new(acknowledger.clone(), position)
                    });
                    messages.push(message);
                }
            }
        }
        let (sender, receiver) = mpsc::channel(messages.len().max(1));
        for message in messages {
            // The channel holds them all: this cannot fail.
            let _ = sender.try_send(Ok(message));
        }
        // The sender lives until the subscription closes, so the stream waits rather than ends.
        Ok(Subscription::new(receiver, move |_close| {
            Box::pin(async move {
                drop(sender);
                None
            })
        }))
    }
}
