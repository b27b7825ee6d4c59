//! The task that owns a subscription's consumer: it pumps records into a bounded channel that the
//! entrypoint reads (when the channel is full it stops polling, so a slow client holds at most the
//! channel and librdkafka's small prefetch queue), serves acknowledgements, and on stop commits
//! what was acknowledged and closes the consumer, which leaves its group; or, for an http-get
//! that may come back, parks it warm (see `warm`) until the client's next request.

use super::lifecycle::{Lifecycle, Phase};
use super::offsets::{AckChannel, AckRequest, Offsets};
use super::pattern::{self, TopicPattern};
use super::warm::{Resume, WarmConsumers, WarmKey};
use super::Stop;
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
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
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
    /// Where the consumer may park after a request that keeps it warm.
    pub(super) warm: Option<WarmSpot>,
    /// The first offset handed to the entrypoint per partition (by stream id) since the consumer
    /// last parked: what it rewinds to when nothing after it was acknowledged.
    pub(super) fetched_from: HashMap<u64, i64>,
    /// Where each partition continues, as far as the pump knows: where it last sought it, or
    /// just after what it delivered. Valid while the group revokes nothing (a consumer that
    /// lost partitions is not parked).
    pub(super) positions: HashMap<(String, i32), i64>,
    /// The subscription ended with a failure: the consumer is not worth keeping.
    pub(super) failed: bool,
    /// Told when the cluster refuses the consumer group protocol (`auto` learning it).
    pub(super) protocol_refused: Option<oneshot::Sender<()>>,
    /// The consumer joins with KIP-848's consumer protocol.
    pub(super) consumer_protocol: bool,
    /// The `topicPattern` whose matching topics are subscribed, looked up again at `refresh_at`.
    pub(super) pattern: Option<TopicPattern>,
    pub(super) refresh_at: tokio::time::Instant,
    /// Given back when the pump ends, with its consumer.
    pub(super) _slot: super::slots::Slot,
}

/// Where a consumer parks between an http-get client's requests, and for how long.
#[derive(Clone)]
pub(super) struct WarmSpot {
    pub(super) consumers: Arc<WarmConsumers>,
    pub(super) key: WarmKey,
    pub(super) idle_for: Duration,
}

enum Step {
    Continue,
    Stop,
}

impl Pump {
    /// Serves requests until the consumer closes: the first subscription, then, each time it
    /// parks warm, the request that resumes it.
    pub(super) async fn run(mut self, mut stop: oneshot::Receiver<Stop>) {
        loop {
            let (close, answer) = self.serve(&mut stop).await;
            let revoked = self.lifecycle.revocations() > 0;
            let parking = match (&self.warm, close.release, self.failed || revoked) {
                (Some(spot), Release::KeepWarm, false) => spot.consumers.offer(spot.key.clone()),
                _ => None,
            };
            let Some(parked) = parking else {
                self.finish(close, answer).await;
                return;
            };
            let position = self.park(close.resume_position).await;
            if let Some(answer) = answer {
                let _ = answer.send(position);
            }
            match self.idle(parked).await {
                Some(resume) => stop = self.resume(resume).await,
                None => {
                    self.finish(WAIT, None).await;
                    return;
                }
            }
        }
    }

    /// Pumps one subscription's records until it is closed (`stop` says how), the entrypoint
    /// stops reading, or the consumer fails.
    async fn serve(&mut self, stop: &mut oneshot::Receiver<Stop>) -> (Close, Option<oneshot::Sender<Option<String>>>) {
        let mut close = (WAIT, None);
        let consumer = self.offsets.consumer.clone();
        loop {
            let step = tokio::select! {
                biased;
                requested = &mut *stop => {
                    close = requested.map_or((WAIT, None), |(close, answer)| (close, Some(answer)));
                    Step::Stop
                }
                _ = self.messages.closed() => Step::Stop,
                Some((position, done)) = self.acks.recv() => {
                    self.offsets.acknowledge(position, done).await;
                    Step::Continue
                }
                _ = tokio::time::sleep_until(self.refresh_at), if self.pattern.is_some() => {
                    self.follow_pattern().await;
                    Step::Continue
                }
                received = consumer.recv() => match received {
                    Ok(record) => {
                        self.lifecycle.advance(Phase::Consuming);
                        let message = self.hand_out(&record);
                        drop(record);
                        self.deliver(Ok(message), stop, &mut close).await
                    }
                    Err(error) if self.refuses_protocol(&error) => {
                        self.failed = true;
                        Step::Stop
                    }
                    Err(error) => match self.on_error(&error) {
                        Some(failure) => {
                            self.failed = true;
                            self.deliver(Err(failure), stop, &mut close).await;
                            Step::Stop
                        }
                        None => Step::Continue,
                    },
                },
            };
            if let Step::Stop = step {
                return close;
            }
        }
    }

    /// Subscribes to the topics that match the pattern now, when they changed (a topic was
    /// created or deleted); the group then assigns the new set.
    async fn follow_pattern(&mut self) {
        self.refresh_at = tokio::time::Instant::now() + pattern::REFRESH;
        let Some(pattern) = &self.pattern else { return };
        match pattern.matching_off_thread(&self.offsets.consumer).await {
            Ok(matching) if matching != self.subscribed => {
                let client_id = &self.offsets.consumer.context().client_id;
                tracing::debug!(%client_id, topics = ?matching, "Topics matching the pattern changed.");
                match pattern::subscribe_to(&self.offsets.consumer, &matching) {
                    Ok(()) => self.subscribed = matching,
                    Err(error) => tracing::debug!(%client_id, %error, "Subscribing to the matching topics failed."),
                }
            }
            Ok(_) => {}
            Err(failure) => tracing::debug!(%failure, "The topic list could not be read; trying again later."),
        }
    }

    /// Hands one item to the entrypoint, serving acknowledgements while the channel is full (an
    /// entrypoint may be waiting for one before it reads again).
    async fn deliver(
        &mut self,
        item: Result<Message, EndpointFailure>,
        stop: &mut oneshot::Receiver<Stop>,
        close: &mut (Close, Option<oneshot::Sender<Option<String>>>),
    ) -> Step {
        loop {
            tokio::select! {
                biased;
                requested = &mut *stop => {
                    *close = requested.map_or((WAIT, None), |(close, answer)| (close, Some(answer)));
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

    fn hand_out(&mut self, record: &BorrowedMessage<'_>) -> Message {
        let (topic, partition, offset) = (record.topic(), record.partition(), record.offset());
        let stream = self.offsets.topics.stream(topic, partition);
        self.fetched_from.entry(stream).or_insert(offset);
        let qos = self.offsets.qos;
        let mut message = message_of(record, self.remove_confluent_header);
        message.id = qos.emits_ids().then(|| message_id(topic, partition, offset, self.encode_message_id));
        message.ack = (qos != Qos::None).then(|| {
            let position = AckPosition { stream, offset };
            AckHandle::new(self.acknowledger.clone(), position)
        });
        message
    }

    /// Whether `error` is the cluster refusing the consumer group protocol while `auto` learns it:
    /// the subscription then ends quietly, and is started again with the classic protocol.
    fn refuses_protocol(&mut self, error: &KafkaError) -> bool {
        let refused = !self.lifecycle.reached_cluster()
            && matches!(
                error.rdkafka_error_code(),
                Some(RDKafkaErrorCode::UnsupportedVersion | RDKafkaErrorCode::UnsupportedFeature)
            );
        match self.protocol_refused.take() {
            Some(learner) if refused => {
                let _ = learner.send(());
                true
            }
            learner => {
                self.protocol_refused = learner;
                false
            }
        }
    }

    /// Decides what a consumer error means: `Some` ends the subscription with that failure.
    fn on_error(&self, error: &KafkaError) -> Option<EndpointFailure> {
        let unsupported = matches!(
            error.rdkafka_error_code(),
            Some(RDKafkaErrorCode::UnsupportedVersion | RDKafkaErrorCode::UnsupportedFeature)
        );
        if self.consumer_protocol && unsupported && !self.lifecycle.reached_cluster() {
            let failure = EndpointFailure::configuration_invalid(
                "the Kafka cluster does not support the consumer group protocol (KIP-848, Kafka 4.0+): \
                 run kafka-edge with --group-protocol auto or classic",
            );
            self.origin.failure(&failure);
            return Some(failure);
        }
        let authentication = matches!(error.rdkafka_error_code(), Some(RDKafkaErrorCode::Authentication));
        if authentication && self.offsets.consumer.context().reauthentication_failed_lately() {
            return None;
        }
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

    /// Commits what was acknowledged, then closes the consumer, which leaves its group. The
    /// answer (with the resume position, when asked for) goes out once the commit is done, or
    /// with `Release::Wait` once the consumer left: rust-rdkafka's close loop notices the consumer
    /// closed only at the end of a 100 ms poll, which an http-get answer need not wait for.
    /// Blocking librdkafka calls run off the async threads.
    async fn finish(mut self, close: Close, answer: Option<oneshot::Sender<Option<String>>>) {
        self.take_pending_acks().await;
        self.lifecycle.advance(Phase::Closing);
        let Pump { offsets, lifecycle, encode_message_id, auto_offset_reset, .. } = self;
        let (consumer, qos) = (offsets.consumer, offsets.qos);
        let closing = tokio::task::spawn_blocking(move || {
            commit_delivered(&consumer, qos);
            let position = close
                .resume_position
                .then(|| resume_position(&consumer, auto_offset_reset))
                .flatten()
                .map(|cursor| cursor.render(encode_message_id));
            let answer = match (answer, close.release) {
                (Some(answer), Release::Wait) => Some((answer, position)),
                (Some(answer), _) => {
                    let _ = answer.send(position);
                    None
                }
                (None, _) => None,
            };
            let client_id = consumer.context().client_id.clone();
            drop(consumer);
            lifecycle.advance(Phase::Closed);
            tracing::debug!(%client_id, "Kafka consumer closed.");
            if let Some((answer, position)) = answer {
                let _ = answer.send(position);
            }
        });
        if let Err(error) = closing.await {
            tracing::error!(%error, "Closing the Kafka consumer failed.");
        }
    }

    async fn take_pending_acks(&mut self) {
        while let Ok((position, done)) = self.acks.try_recv() {
            self.offsets.acknowledge(position, done).await;
        }
    }

    /// Parks the consumer between requests: commits what was delivered, stops fetching, and
    /// notes where each partition it handed out continues: just after its last acknowledged
    /// record (what sat in the channel or librdkafka's queue was never delivered). Returns the
    /// resume position when asked for, as `finish` would.
    async fn park(&mut self, with_position: bool) -> Option<String> {
        self.take_pending_acks().await;
        let rewind = self.offsets.rewind_targets(self.fetched_from.drain());
        self.positions.extend(rewind.into_iter().map(|(topic, partition, offset)| ((topic, partition), offset)));
        let consumer = self.offsets.consumer.clone();
        let (qos, auto_offset_reset, encode_message_id) =
            (self.offsets.qos, self.auto_offset_reset, self.encode_message_id);
        let position = tokio::task::spawn_blocking(move || {
            commit_delivered(&consumer, qos);
            if let Ok(assignment) = consumer.assignment() {
                if let Err(error) = consumer.pause(&assignment) {
                    tracing::debug!(%error, "Pausing a parked consumer failed.");
                }
            }
            with_position
                .then(|| resume_position(&consumer, auto_offset_reset))
                .flatten()
                .map(|c| c.render(encode_message_id))
        })
        .await
        .ok()
        .flatten();
        self.lifecycle.advance(Phase::Idle);
        tracing::debug!(client_id = %self.offsets.consumer.context().client_id, "Kafka consumer parked warm.");
        position
    }

    /// Waits, still a member of its group, for the same client's next request. Leaves (`None`)
    /// when the idle window ends, the gateway lets it go, the group rebalances (another member
    /// joined: another gateway of a fleet serves this client now, and must get every partition),
    /// or the cluster is lost.
    async fn idle(&mut self, mut parked: oneshot::Receiver<Resume>) -> Option<Resume> {
        let idle_for = self.warm.as_ref().map_or(Duration::ZERO, |spot| spot.idle_for);
        let window = tokio::time::sleep(idle_for);
        tokio::pin!(window);
        let mut rebalances = self.lifecycle.rebalances();
        rebalances.borrow_and_update();
        let consumer = self.offsets.consumer.clone();
        loop {
            tokio::select! {
                biased;
                resume = &mut parked => return resume.ok(),
                _ = &mut window => return None,
                _ = rebalances.changed() => return None,
                Some((position, done)) = self.acks.recv() => self.offsets.acknowledge(position, done).await,
                received = consumer.recv() => match received {
                    // A partition assigned while parked fetches: leave rather than hold it (its
                    // offset is not stored, so the next member reads it).
                    Ok(_) => return None,
                    Err(error) if self.on_error(&error).is_some() => return None,
                    Err(_) => {}
                },
            }
        }
    }

    /// Takes up a new request: its channel, its stop, its origin; fetches again, each partition
    /// from where the last request left it or where the request's cursor says (partitions the
    /// cursor names that are not assigned now take it at their next assignment).
    ///
    /// The partitions are sought after they resume, every one whose position is known: librdkafka
    /// does not wake a broker's fetcher on resume, which then starts up to a second later, and a
    /// seek does wake it. A seek also drops what was fetched before it.
    async fn resume(&mut self, resume: Resume) -> oneshot::Receiver<Stop> {
        let Resume { messages, stop, cursor, origin, resumed } = resume;
        self.messages = messages;
        self.origin = origin;
        let consumer = self.offsets.consumer.clone();
        let mut targets = std::mem::take(&mut self.positions);
        let resumed_fetching = tokio::task::spawn_blocking(move || {
            let Ok(assignment) = consumer.assignment() else { return targets };
            if let Some(mut cursor) = cursor {
                for element in assignment.elements() {
                    let (topic, partition) = (element.topic(), element.partition());
                    if let Some(offset) = cursor.resume_offset(topic, partition) {
                        targets.insert((topic.to_string(), partition), offset);
                        if let Some(positions) = cursor.positions.get_mut(topic) {
                            positions.remove(&partition);
                        }
                    }
                }
                if let Some(rebalance) = consumer.context().rebalance() {
                    rebalance.set_pending_cursor(Some(cursor));
                }
            }
            if let Err(error) = consumer.resume(&assignment) {
                tracing::debug!(%error, "Resuming a warm consumer failed.");
            }
            targets.retain(|(topic, partition), _| assignment.find_partition(topic, *partition).is_some());
            let sought = targets.iter().map(|((topic, partition), offset)| (topic.clone(), *partition, *offset));
            seek(&consumer, sought.collect());
            targets
        });
        self.positions = resumed_fetching.await.unwrap_or_default();
        self.failed = false;
        self.lifecycle.advance(Phase::Consuming);
        tracing::debug!(client_id = %self.offsets.consumer.context().client_id, "Warm Kafka consumer resumed.");
        let _ = resumed.send(());
        stop
    }
}

/// Commits what was acknowledged (nothing at QoS none, which stores nothing). Blocking.
fn commit_delivered(consumer: &StreamConsumer<Callbacks>, qos: Qos) {
    if qos == Qos::None {
        return;
    }
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) => {}
        Err(error) if error.rdkafka_error_code() == Some(RDKafkaErrorCode::NoOffset) => {}
        Err(error) => tracing::warn!(%error, "Offset commit failed."),
    }
}

/// Moves the fetch position of each `(topic, partition)` to its offset. Blocking.
fn seek(consumer: &StreamConsumer<Callbacks>, positions: Vec<(String, i32, i64)>) {
    if positions.is_empty() {
        return;
    }
    let mut list = TopicPartitionList::new();
    for (topic, partition, offset) in &positions {
        let _ = list.add_partition_offset(topic, *partition, Offset::Offset(*offset));
    }
    match consumer.seek_partitions(list, POSITION_TIMEOUT) {
        Ok(sought) => {
            for element in sought.elements().iter().filter(|e| e.error().is_err()) {
                tracing::debug!(topic = element.topic(), partition = element.partition(), "Seek failed.");
            }
        }
        Err(error) => tracing::debug!(%error, "Seek failed."),
    }
}

/// A consumed record as a message (no id, nothing to acknowledge: the caller adds what its QoS
/// gives).
pub(crate) fn message_of(record: &BorrowedMessage<'_>, remove_confluent_header: bool) -> Message {
    let mut payload = record.payload().unwrap_or_default();
    if remove_confluent_header && payload.len() >= 5 && payload[0] == 0 {
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
        topic: record.topic().to_string(),
        partition: record.partition(),
        offset: record.offset(),
        source_timestamp: record.timestamp().to_millis(),
    };
    Message { content: Bytes::copy_from_slice(payload), headers, metadata: Some(metadata), ..Message::default() }
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
