//! The task that owns a subscription's consumer: it pumps records into a bounded channel that the
//! entrypoint reads (when the channel is full it stops polling, so a slow client holds at most the
//! channel and librdkafka's small prefetch queue), serves acknowledgements, and on stop commits
//! what was acknowledged and closes the consumer, which leaves its group.

use super::lifecycle::{Lifecycle, Phase};
use super::offsets::{AckChannel, AckRequest, Offsets};
use crate::client::Callbacks;
use crate::cursor::{message_id, Cursor};
use crate::failure::{classify_connection_error, unknown};
use crate::report::Origin;
use bytes::Bytes;
use kafka_edge_definition::AutoOffsetReset;
use kafka_edge_message::{
    AckHandle, AckPosition, Close, EndpointFailure, FailureKind, Headers, Message, Metadata, Qos, Release,
};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Headers as _, Message as _};
use rdkafka::topic_partition_list::Offset;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Longest wait for the committed offsets or watermarks of a resume position.
const POSITION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

pub(super) struct Pump {
    /// Where the subscription meets its cluster, for the logs.
    pub(super) origin: Origin,
    /// The topics (or the pattern) subscribed to.
    pub(super) subscribed: Vec<String>,
    pub(super) offsets: Offsets,
    pub(super) lifecycle: Arc<Lifecycle>,
    pub(super) group_id: String,
    pub(super) encode_message_id: bool,
    pub(super) auto_offset_reset: AutoOffsetReset,
    pub(super) remove_confluent_header: bool,
    pub(super) acknowledger: Arc<AckChannel>,
    pub(super) acks: mpsc::UnboundedReceiver<AckRequest>,
    pub(super) messages: mpsc::Sender<Result<Message, EndpointFailure>>,
}

enum Step {
    Continue,
    Stop,
}

impl Pump {
    /// Runs until the subscription is closed (`stop` says how the close waits), the entrypoint
    /// stops reading, or the consumer fails.
    /// Returns the resume position when the close asked for it.
    pub(super) async fn run(mut self, mut stop: oneshot::Receiver<Close>) -> Option<String> {
        let mut close = WAIT;
        loop {
            let step = tokio::select! {
                biased;
                requested = &mut stop => {
                    close = requested.unwrap_or(WAIT);
                    Step::Stop
                }
                _ = self.messages.closed() => Step::Stop,
                Some((position, done)) = self.acks.recv() => {
                    self.offsets.acknowledge(position, done).await;
                    Step::Continue
                }
                received = self.offsets.consumer.recv() => match received {
                    Ok(record) => {
                        self.lifecycle.advance(Phase::Consuming);
                        let message = self.to_message(&record);
                        drop(record);
                        self.deliver(Ok(message), &mut stop, &mut close).await
                    }
                    Err(error) => match self.on_error(&error) {
                        Some(failure) => {
                            self.deliver(Err(failure), &mut stop, &mut close).await;
                            Step::Stop
                        }
                        None => Step::Continue,
                    },
                },
            };
            if let Step::Stop = step {
                break;
            }
        }
        self.finish(close).await
    }

    /// Hands one item to the entrypoint, serving acknowledgements while the channel is full (an
    /// entrypoint may be waiting for one before it reads again).
    async fn deliver(
        &mut self,
        item: Result<Message, EndpointFailure>,
        stop: &mut oneshot::Receiver<Close>,
        close: &mut Close,
    ) -> Step {
        loop {
            tokio::select! {
                biased;
                requested = &mut *stop => {
                    *close = requested.unwrap_or(WAIT);
                    return Step::Stop;
                }
                Some((position, done)) = self.acks.recv() => self.offsets.acknowledge(position, done).await,
                permit = self.messages.reserve() => {
                    return match permit {
                        Ok(permit) => {
                            permit.send(item);
                            Step::Continue
                        }
                        Err(_) => Step::Stop,
                    };
                }
            }
        }
    }

    fn to_message(&self, record: &BorrowedMessage<'_>) -> Message {
        let topic = record.topic();
        let partition = record.partition();
        let offset = record.offset();
        let mut payload = record.payload().unwrap_or_default();
        if self.remove_confluent_header && payload.len() >= 5 && payload[0] == 0 {
            payload = &payload[5..];
        }
        let mut headers = Headers::new();
        if let Some(record_headers) = record.headers() {
            for header in record_headers.iter() {
                let value = header.value.map(String::from_utf8_lossy).unwrap_or_default();
                headers.append(header.key, value);
            }
        }
        let metadata = Metadata {
            key: record.key().map(|key| String::from_utf8_lossy(key).into_owned()),
            topic: topic.to_string(),
            partition,
            offset,
            source_timestamp: record.timestamp().to_millis(),
        };
        let qos = self.offsets.qos;
        let id = qos.emits_ids().then(|| message_id(topic, partition, offset, self.encode_message_id));
        let ack = (qos != Qos::None).then(|| {
            let position = AckPosition { stream: self.offsets.topics.stream(topic, partition), offset };
            AckHandle::new(self.acknowledger.clone(), position)
        });
        Message {
            id,
            content: Bytes::copy_from_slice(payload),
            headers,
            metadata: Some(metadata),
            attributes: Default::default(),
            ack,
            record: Default::default(),
        }
    }

    /// Decides what a consumer error means: `Some` ends the subscription with that failure.
    fn on_error(&self, error: &KafkaError) -> Option<EndpointFailure> {
        if let Some(failure) = classify_connection_error(error, self.lifecycle.reached_cluster()) {
            let client_id = &self.offsets.consumer.context().client_id;
            tracing::debug!(%client_id, %error, "Kafka consumer cannot reach its cluster.");
            self.origin.failure(&failure);
            return Some(failure);
        }
        match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::AutoOffsetReset) => {
                tracing::info!(group_id = %self.group_id, "No committed offset and autoOffsetReset is none.");
                Some(EndpointFailure::new(
                    FailureKind::Unknown,
                    format!("No committed offset for consumer group `{}` and autoOffsetReset is `none`", self.group_id),
                ))
            }
            // Topics that do not exist (yet) are waited for: they may be created while connected.
            Some(RDKafkaErrorCode::UnknownTopicOrPartition) | Some(RDKafkaErrorCode::UnknownTopic) => {
                tracing::debug!(%error, "Subscribed topic not available yet.");
                self.origin.missing_topics(&self.subscribed);
                None
            }
            _ if matches!(error, KafkaError::MessageConsumptionFatal(_)) => {
                let failure = unknown(error);
                self.origin.failure(&failure);
                Some(failure)
            }
            _ => {
                tracing::debug!(%error, "Kafka consumer error, retrying.");
                None
            }
        }
    }

    /// Commits what was acknowledged, then closes the consumer, which leaves its group. With
    /// `Release::InBackground` it returns once the commit is done: rust-rdkafka's close loop
    /// notices the consumer closed only at the end of a 100 ms poll, which an http-get answer
    /// need not wait for (the runtime still waits for it at exit). Blocking librdkafka calls run
    /// off the async threads. The resume position, when asked for, is read after the commit.
    async fn finish(mut self, close: Close) -> Option<String> {
        while let Ok((position, done)) = self.acks.try_recv() {
            self.offsets.acknowledge(position, done).await;
        }
        self.lifecycle.advance(Phase::Closing);
        let Pump { offsets, lifecycle, encode_message_id, auto_offset_reset, .. } = self;
        let (consumer, qos) = (offsets.consumer, offsets.qos);
        let (commit_attempt, commit_done) = oneshot::channel::<Option<String>>();
        let closing = tokio::task::spawn_blocking(move || {
            if qos != Qos::None {
                match consumer.commit_consumer_state(CommitMode::Sync) {
                    Ok(()) => {}
                    Err(error) if error.rdkafka_error_code() == Some(RDKafkaErrorCode::NoOffset) => {}
                    Err(error) => tracing::warn!(%error, "Final offset commit failed."),
                }
            }
            let position = close
                .resume_position
                .then(|| resume_position(&consumer, auto_offset_reset))
                .flatten()
                .map(|cursor| cursor.render(encode_message_id));
            let _ = commit_attempt.send(position);
            let client_id = consumer.context().client_id.clone();
            drop(consumer);
            lifecycle.advance(Phase::Closed);
            tracing::debug!(%client_id, "Kafka consumer closed.");
        });
        let position = commit_done.await;
        if position.is_err() || close.release != Release::InBackground {
            if let Err(error) = closing.await {
                tracing::error!(%error, "Closing the Kafka consumer failed.");
            }
        }
        position.ok().flatten()
    }
}

/// How a pump closes unless told otherwise: waiting for the group leave, no position.
const WAIT: Close = Close { release: Release::Wait, resume_position: false };

/// Where a client continues exactly after what this consumer delivered, for every partition it
/// was assigned: the last committed record, or for a partition without a committed offset the
/// record before where `autoOffsetReset` starts (-1 on an empty partition read from the earliest).
/// Blocking: broker round trips.
fn resume_position(consumer: &StreamConsumer<Callbacks>, auto_offset_reset: AutoOffsetReset) -> Option<Cursor> {
    let assignment = consumer.assignment().ok()?;
    if assignment.count() == 0 {
        return None;
    }
    let committed = consumer.committed_offsets(assignment, POSITION_TIMEOUT).ok()?;
    let mut cursor = Cursor::default();
    for element in committed.elements() {
        let (topic, partition) = (element.topic(), element.partition());
        let last_delivered = match element.offset() {
            Offset::Offset(next) => next - 1,
            _ => {
                let (low, high) = consumer.fetch_watermarks(topic, partition, POSITION_TIMEOUT).ok()?;
                match auto_offset_reset {
                    AutoOffsetReset::Earliest => low - 1,
                    AutoOffsetReset::Latest => high - 1,
                    AutoOffsetReset::None => continue,
                }
            }
        };
        cursor.positions.entry(topic.to_string()).or_default().insert(partition, last_delivered);
    }
    (!cursor.positions.is_empty()).then_some(cursor)
}
