//! Acknowledgements → offsets. An entrypoint acknowledges a message once it delivered it; only
//! then is its offset stored for the next commit (`enable.auto.offset.store=false`), or, at
//! at-most-once, committed at once, since it must be durable before the client sees the message.

use crate::client::Callbacks;
use kafka_edge_message::{AckPosition, Acknowledger, Qos};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

pub(super) type AckRequest = (AckPosition, Option<oneshot::Sender<bool>>);

/// What a message's `AckHandle` sends its acknowledgement through: to the task that owns the
/// consumer.
#[derive(Debug)]
pub(super) struct AckChannel(pub(super) mpsc::UnboundedSender<AckRequest>);

impl Acknowledger for AckChannel {
    fn acknowledge(&self, position: AckPosition, done: Option<oneshot::Sender<bool>>) {
        // After the subscription ended there is nothing left to commit.
        let _ = self.0.send((position, done));
    }
}

/// An ack position names its partition as `(topic index << 32) | partition`: the index of the
/// topic in this list, which grows as a pattern subscription finds topics.
#[derive(Default)]
pub(super) struct TopicIndex(Mutex<Vec<String>>);

impl TopicIndex {
    pub(super) fn new(topics: Vec<String>) -> Self {
        Self(Mutex::new(topics))
    }

    /// The stream id of a partition, adding its topic when new.
    pub(super) fn stream(&self, topic: &str, partition: i32) -> u64 {
        let index = match self.0.lock() {
            Ok(mut topics) => match topics.iter().position(|t| t == topic) {
                Some(index) => index,
                None => {
                    topics.push(topic.to_string());
                    topics.len() - 1
                }
            },
            Err(_) => u32::MAX as usize,
        };
        ((index as u64) << 32) | u64::from(partition as u32)
    }

    fn partition(&self, stream: u64) -> Option<(String, i32)> {
        let topic_index = (stream >> 32) as usize;
        let partition = (stream & 0xffff_ffff) as u32 as i32;
        let topic = self.0.lock().ok()?.get(topic_index).cloned()?;
        Some((topic, partition))
    }
}

pub(super) struct Offsets {
    /// Shared with the blocking tasks that commit for at-most-once.
    pub(super) consumer: Arc<StreamConsumer<Callbacks>>,
    pub(super) qos: Qos,
    pub(super) topics: TopicIndex,
    /// Highest offset recorded per stream: acknowledgements can arrive out of order (a filtered
    /// message is acknowledged before an earlier delivered one), and an older one must not move
    /// the position back.
    recorded: Mutex<HashMap<u64, i64>>,
}

impl Offsets {
    pub(super) fn new(consumer: Arc<StreamConsumer<Callbacks>>, qos: Qos, topics: TopicIndex) -> Self {
        Self { consumer, qos, topics, recorded: Mutex::new(HashMap::new()) }
    }

    /// Records a delivery; `done` learns whether the offset was recorded (false when the
    /// partition was revoked meanwhile: it belongs to another member now).
    pub(super) async fn acknowledge(&self, position: AckPosition, done: Option<oneshot::Sender<bool>>) {
        let partition = self.topics.partition(position.stream);
        let advances = self.recorded.lock().is_ok_and(|mut recorded| {
            let highest = recorded.entry(position.stream).or_insert(-1);
            let advances = position.offset > *highest;
            *highest = (*highest).max(position.offset);
            advances
        });
        let mut recorded = partition.is_some();
        if let (Some((topic, partition)), true) = (partition, advances) {
            let result = if self.qos == Qos::AtMostOnce {
                self.commit_now(&topic, partition, position.offset).await
            } else {
                self.consumer.store_offset(&topic, partition, position.offset)
            };
            if let Err(error) = result {
                tracing::debug!(%error, topic, partition, offset = position.offset, "Offset not recorded.");
                recorded = false;
            }
        }
        if let Some(done) = done {
            let _ = done.send(recorded);
        }
    }

    /// Where each partition handed out since the consumer last parked continues: just after its
    /// latest acknowledged record, or at the first record handed out when none after it was.
    pub(super) fn rewind_targets(&self, fetched_from: impl Iterator<Item = (u64, i64)>) -> Vec<(String, i32, i64)> {
        let recorded = self.recorded.lock().map(|recorded| recorded.clone()).unwrap_or_default();
        fetched_from
            .filter_map(|(stream, first)| {
                let (topic, partition) = self.topics.partition(stream)?;
                let next = recorded.get(&stream).map_or(first, |&acknowledged| first.max(acknowledged + 1));
                Some((topic, partition, next))
            })
            .collect()
    }

    async fn commit_now(&self, topic: &str, partition: i32, offset: i64) -> Result<(), KafkaError> {
        let mut offsets = TopicPartitionList::new();
        offsets.add_partition_offset(topic, partition, Offset::Offset(offset + 1))?;
        // A synchronous commit waits a broker round trip: not on an async worker.
        let consumer = self.consumer.clone();
        tokio::task::spawn_blocking(move || consumer.commit(&offsets, CommitMode::Sync))
            .await
            .unwrap_or(Err(KafkaError::Canceled))
    }
}
