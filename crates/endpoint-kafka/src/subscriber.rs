//! One consumer per client connection (DESIGN 4.4, 4.5).
//!
//! A task owns the consumer and pumps records into a bounded channel that the entrypoint reads;
//! when the channel is full the task stops polling, so a slow client holds at most the channel and
//! librdkafka's small prefetch queue. Offsets are stored only for messages the entrypoint
//! acknowledged (`enable.auto.offset.store=false`), so a message that was fetched but never
//! delivered is never committed. Lifecycle: created → subscribed → assigned (cursor positions
//! applied here) → consuming → closing (final synchronous commit) → closed (left the group).

use crate::cursor::{message_id, Cursor};
use crate::failure::{check_topic_exists, classify_connection_error, probe_cluster, unknown};
use crate::producer::short_uuid;
use crate::security::oauth::TokenProvider;
use crate::settings::{ConsumerSettings, TopicSelection};
use bytes::Bytes;
use kafka_edge_definition::AutoOffsetReset;
use kafka_edge_message::{
    AckHandle, AckPosition, Acknowledger, EndpointFailure, FailureKind, Headers, Message, Metadata, Qos, Release,
    Subscription,
};
use rdkafka::client::OAuthToken;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Headers as _, Message as _};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::ClientContext;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Messages buffered between the consumer task and the entrypoint.
const CHANNEL_CAPACITY: usize = 32;

/// Longest a request waits for its consumer's final commit and group leave; a cluster that went
/// away must not hold the client's response. The close goes on in the background.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Starts a subscription. Fails at once only on a configuration librdkafka refuses; reaching the
/// cluster is reported through the message stream.
pub(crate) async fn subscribe(
    settings: ConsumerSettings,
    qos: Qos,
    cursor: Option<Cursor>,
) -> Result<Subscription, EndpointFailure> {
    let client_id = format!("gio-apim-consumer-{}", short_uuid());
    let mut config = ClientConfig::new();
    settings.connection.apply(&mut config);
    let auto_offset_reset = match settings.auto_offset_reset {
        AutoOffsetReset::Earliest => "earliest",
        AutoOffsetReset::Latest => "latest",
        AutoOffsetReset::None => "error",
    };
    config
        .set("client.id", &client_id)
        .set("group.id", &settings.group_id)
        .set("auto.offset.reset", auto_offset_reset)
        .set("enable.auto.commit", if qos == Qos::None { "false" } else { "true" })
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("session.timeout.ms", "10000")
        // A partition with nothing new must not hold a request: the broker parks an empty fetch
        // this long, and offset lookups for the other partitions wait behind it on the same
        // connection (with the 500 ms default, short http-get windows came back empty).
        .set("fetch.wait.max.ms", "100")
        .set("queued.max.messages.kbytes", "4096")
        // With the queue bounded that low, a fast reader empties it before the next fetch: the
        // 1000 ms default stalled an SSE drain for a second every 4 MiB.
        .set("fetch.queue.backoff.ms", "50")
        .set("socket.connection.setup.timeout.ms", "10000")
        .set("reconnect.backoff.ms", "100");
    if matches!(settings.topics, TopicSelection::Pattern(_)) {
        // New topics that match are found on the next metadata refresh (librdkafka: 5 min).
        config.set("topic.metadata.refresh.interval.ms", "10000");
    }
    let token_provider = match settings.connection.token_source() {
        Some(source) => Some(TokenProvider::prepare(source.clone()).await.map_err(|reason| {
            tracing::warn!(%reason, "OAUTHBEARER credentials could not be prepared.");
            EndpointFailure::configuration_invalid("OAUTHBEARER credentials could not be resolved")
        })?),
        None => None,
    };
    let context = SubscriberContext {
        client_id: client_id.clone(),
        pending_cursor: Mutex::new(cursor),
        assigned: AtomicBool::new(false),
        commit_on_revoke: qos != Qos::None,
        token_provider,
    };
    let consumer: StreamConsumer<SubscriberContext> = config.create_with_context(context).map_err(|error| {
        tracing::warn!(error = %crate::failure::creation_error(&error), "Kafka consumer could not be created.");
        EndpointFailure::configuration_invalid("the Kafka client configuration was refused")
    })?;
    let (subscription, known_topics) = match &settings.topics {
        TopicSelection::Names(names) => (names.clone(), names.clone()),
        // librdkafka treats a subscription starting with `^` as a regular expression; anchoring
        // both ends gives the whole-name match of Java's Pattern.matches.
        TopicSelection::Pattern(pattern) => (vec![format!("^({pattern})$")], Vec::new()),
    };
    let required = if settings.check_topic_existence { known_topics.clone() } else { Vec::new() };
    // OAUTHBEARER tokens are handed out while the consumer is polled, which the probe would not
    // do: those consumers report an unreachable or refusing cluster through the stream instead.
    let consumer = if settings.connection.token_source().is_some() {
        consumer
    } else {
        probe(consumer, known_topics.first().cloned().unwrap_or_default(), required).await?
    };
    let topic_names: Vec<&str> = subscription.iter().map(String::as_str).collect();
    consumer.subscribe(&topic_names).map_err(|error| {
        tracing::warn!(%client_id, %error, "Kafka consumer could not subscribe.");
        unknown(&error)
    })?;
    tracing::debug!(%client_id, group_id = %settings.group_id, topics = ?subscription, %qos, "Kafka consumer subscribed.");

    let (messages_tx, messages_rx) = mpsc::channel(CHANNEL_CAPACITY);
    let (ack_tx, ack_rx) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = oneshot::channel();
    let release_in_background = Arc::new(AtomicBool::new(false));
    let pump = Pump {
        release_in_background: release_in_background.clone(),
        consumer: Arc::new(consumer),
        qos,
        topics: Mutex::new(known_topics),
        group_id: settings.group_id,
        encode_message_id: settings.encode_message_id,
        remove_confluent_header: settings.remove_confluent_header,
        acknowledger: Arc::new(AckChannel(ack_tx)),
        acks: ack_rx,
        messages: messages_tx,
        received_any: false,
        recorded: Mutex::new(HashMap::new()),
    };
    let task = tokio::spawn(pump.run(stop_rx));
    Ok(Subscription::new(messages_rx, move |release: Release| {
        Box::pin(async move {
            release_in_background.store(release == Release::InBackground, Ordering::Relaxed);
            let _ = stop_tx.send(());
            match tokio::time::timeout(CLOSE_TIMEOUT, task).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::error!(%error, "Kafka consumer task failed."),
                Err(_) => tracing::warn!("Kafka consumer still closing; the request does not wait for it."),
            }
        })
    }))
}

/// Proves the cluster answers before the consumer joins its group (see `probe_cluster`), and that
/// every `required` topic exists (`checkTopicExistence`).
async fn probe(
    consumer: StreamConsumer<SubscriberContext>,
    topic: String,
    required: Vec<String>,
) -> Result<StreamConsumer<SubscriberContext>, EndpointFailure> {
    tokio::task::spawn_blocking(move || {
        probe_cluster(consumer.client(), &topic)?;
        for topic in &required {
            check_topic_exists(consumer.client(), topic)?;
        }
        Ok(consumer)
    })
    .await
    .unwrap_or_else(|_| Err(EndpointFailure::new(FailureKind::Unknown, "Endpoint unknown error: cluster probe failed")))
}

type AckRequest = (AckPosition, Option<oneshot::Sender<bool>>);

#[derive(Debug)]
struct AckChannel(mpsc::UnboundedSender<AckRequest>);

impl Acknowledger for AckChannel {
    fn acknowledge(&self, position: AckPosition, done: Option<oneshot::Sender<bool>>) {
        // After the subscription ended there is nothing left to commit.
        let _ = self.0.send((position, done));
    }
}

struct Pump {
    /// Shared only with the blocking tasks that commit for at-most-once.
    consumer: Arc<StreamConsumer<SubscriberContext>>,
    qos: Qos,
    /// Index → topic name; an ack position names its topic by index (`topic_index`).
    topics: Mutex<Vec<String>>,
    group_id: String,
    encode_message_id: bool,
    remove_confluent_header: bool,
    acknowledger: Arc<AckChannel>,
    acks: mpsc::UnboundedReceiver<AckRequest>,
    messages: mpsc::Sender<Result<Message, EndpointFailure>>,
    received_any: bool,
    /// Highest offset recorded per (topic index, partition): acknowledgements can arrive out of
    /// order (a filtered message is acknowledged before an earlier delivered one), and an older
    /// one must not move the position back.
    recorded: Mutex<HashMap<u64, i64>>,
    /// Set by a close that waits only for the commit (`Release::InBackground`).
    release_in_background: Arc<AtomicBool>,
}

enum Step {
    Continue,
    Stop,
}

impl Pump {
    async fn run(mut self, mut stop: oneshot::Receiver<()>) {
        loop {
            let step = tokio::select! {
                biased;
                _ = &mut stop => Step::Stop,
                _ = self.messages.closed() => Step::Stop,
                Some((position, done)) = self.acks.recv() => {
                    self.acknowledge(position, done).await;
                    Step::Continue
                }
                received = self.consumer.recv() => match received {
                    Ok(record) => {
                        self.received_any = true;
                        let message = self.to_message(&record);
                        drop(record);
                        self.deliver(Ok(message), &mut stop).await
                    }
                    Err(error) => match self.on_error(&error) {
                        Some(failure) => {
                            self.deliver(Err(failure), &mut stop).await;
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
        self.finish().await;
    }

    /// Hands one item to the entrypoint, serving acknowledgements while the channel is full (an
    /// entrypoint may be waiting for one before it reads again).
    async fn deliver(&mut self, item: Result<Message, EndpointFailure>, stop: &mut oneshot::Receiver<()>) -> Step {
        loop {
            tokio::select! {
                biased;
                _ = &mut *stop => return Step::Stop,
                Some((position, done)) = self.acks.recv() => self.acknowledge(position, done).await,
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

    /// The index of `topic` in `topics`, adding it when new (pattern subscriptions find topics).
    fn topic_index(&self, topic: &str) -> u64 {
        let Ok(mut topics) = self.topics.lock() else { return u64::from(u32::MAX) };
        let index = match topics.iter().position(|t| t == topic) {
            Some(index) => index,
            None => {
                topics.push(topic.to_string());
                topics.len() - 1
            }
        };
        index as u64
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
        let id = self.qos.emits_ids().then(|| message_id(topic, partition, offset, self.encode_message_id));
        let ack = (self.qos != Qos::None).then(|| {
            let topic_index = self.topic_index(topic);
            let position = AckPosition { stream: (topic_index << 32) | u64::from(partition as u32), offset };
            AckHandle::new(self.acknowledger.clone(), position)
        });
        Message {
            id,
            content: Bytes::copy_from_slice(payload),
            headers,
            metadata: Some(metadata),
            attributes: Default::default(),
            ack,
        }
    }

    /// Records a delivery: stores the offset for the next commit, or commits it at once for
    /// at-most-once, where it must be durable before the client sees the message.
    async fn acknowledge(&self, position: AckPosition, done: Option<oneshot::Sender<bool>>) {
        let topic_index = (position.stream >> 32) as usize;
        let partition = (position.stream & 0xffff_ffff) as u32 as i32;
        let topic = self.topics.lock().ok().and_then(|topics| topics.get(topic_index).cloned());
        let advances = self.recorded.lock().is_ok_and(|mut recorded| {
            let highest = recorded.entry(position.stream).or_insert(-1);
            let advances = position.offset > *highest;
            *highest = (*highest).max(position.offset);
            advances
        });
        let mut recorded = topic.is_some();
        if let (Some(topic), true) = (topic.as_deref(), advances) {
            let result = if self.qos == Qos::AtMostOnce {
                let mut offsets = TopicPartitionList::new();
                match offsets.add_partition_offset(topic, partition, Offset::Offset(position.offset + 1)) {
                    Ok(()) => {
                        // A synchronous commit waits a broker round trip: not on an async worker.
                        let consumer = self.consumer.clone();
                        tokio::task::spawn_blocking(move || consumer.commit(&offsets, CommitMode::Sync))
                            .await
                            .unwrap_or(Err(KafkaError::Canceled))
                    }
                    Err(error) => Err(error),
                }
            } else {
                self.consumer.store_offset(topic, partition, position.offset)
            };
            if let Err(error) = result {
                // A partition revoked meanwhile belongs to another member now; its offset is theirs.
                tracing::debug!(%error, topic, partition, offset = position.offset, "Offset not recorded.");
                recorded = false;
            }
        }
        if let Some(done) = done {
            let _ = done.send(recorded);
        }
    }

    /// Decides what a consumer error means: `Some` ends the subscription with that failure.
    fn on_error(&self, error: &KafkaError) -> Option<EndpointFailure> {
        let ever_connected = self.received_any || self.consumer.context().assigned.load(Ordering::Relaxed);
        if let Some(failure) = classify_connection_error(error, ever_connected) {
            tracing::warn!(client_id = %self.consumer.context().client_id, %error, "Kafka consumer cannot reach its cluster.");
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
                None
            }
            _ if matches!(error, KafkaError::MessageConsumptionFatal(_)) => {
                tracing::warn!(%error, "Kafka consumer failed.");
                Some(unknown(error))
            }
            _ => {
                tracing::debug!(%error, "Kafka consumer error, retrying.");
                None
            }
        }
    }

    /// Commits what was acknowledged, then closes the consumer, which leaves its group. With
    /// `release_in_background` it returns once the commit is done: rust-rdkafka's close loop
    /// notices the consumer closed only at the end of a 100 ms poll, which an http-get answer
    /// need not wait for (the runtime still waits for it at exit). Blocking librdkafka calls run
    /// off the async threads.
    async fn finish(mut self) {
        while let Ok((position, done)) = self.acks.try_recv() {
            self.acknowledge(position, done).await;
        }
        let Pump { consumer, qos, release_in_background, .. } = self;
        let (commit_attempt, commit_done) = oneshot::channel::<()>();
        let closing = tokio::task::spawn_blocking(move || {
            if qos != Qos::None {
                match consumer.commit_consumer_state(CommitMode::Sync) {
                    Ok(()) => {}
                    Err(error) if error.rdkafka_error_code() == Some(RDKafkaErrorCode::NoOffset) => {}
                    Err(error) => tracing::warn!(%error, "Final offset commit failed."),
                }
            }
            let _ = commit_attempt.send(());
            let client_id = consumer.context().client_id.clone();
            drop(consumer);
            tracing::debug!(%client_id, "Kafka consumer closed.");
        });
        let commit_attempted = commit_done.await.is_ok();
        if !commit_attempted || !release_in_background.load(Ordering::Relaxed) {
            if let Err(error) = closing.await {
                tracing::error!(%error, "Closing the Kafka consumer failed.");
            }
        }
    }
}

/// Callbacks of one consumer. They run on the thread that polls the consumer and must be quick.
struct SubscriberContext {
    client_id: String,
    /// Cursor positions not applied yet: applied on the first assignment of each partition.
    pending_cursor: Mutex<Option<Cursor>>,
    assigned: AtomicBool,
    commit_on_revoke: bool,
    token_provider: Option<TokenProvider>,
}

impl ClientContext for SubscriberContext {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(&self, _config: Option<&str>) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        match &self.token_provider {
            Some(provider) => Ok(provider.token(std::time::SystemTime::now())?),
            None => Err("no OAUTHBEARER token source configured".into()),
        }
    }

    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        crate::failure::log_librdkafka(level, facility, message);
    }
}

impl ConsumerContext for SubscriberContext {
    fn rebalance(&self, consumer: &BaseConsumer<Self>, event: RDKafkaRespErr, partitions: &mut TopicPartitionList) {
        let cooperative = matches!(consumer.rebalance_protocol(), RebalanceProtocol::Cooperative);
        let result = match event {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.apply_cursor(partitions);
                self.assigned.store(true, Ordering::Relaxed);
                tracing::debug!(client_id = %self.client_id, assigned = partitions.count(), "Partitions assigned.");
                if cooperative {
                    consumer.incremental_assign(partitions)
                } else {
                    consumer.assign(partitions)
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                if self.commit_on_revoke {
                    // What was acknowledged is committed before another member takes over.
                    let _ = consumer.commit_consumer_state(CommitMode::Sync);
                }
                if cooperative {
                    consumer.incremental_unassign(partitions)
                } else {
                    consumer.unassign()
                }
            }
            other => {
                tracing::warn!(client_id = %self.client_id, error = ?other, "Rebalance failed.");
                consumer.unassign()
            }
        };
        if let Err(error) = result {
            tracing::warn!(client_id = %self.client_id, %error, "Applying a rebalance failed.");
        }
    }
}

impl SubscriberContext {
    fn apply_cursor(&self, partitions: &mut TopicPartitionList) {
        let Ok(mut pending) = self.pending_cursor.lock() else { return };
        let Some(cursor) = pending.as_mut() else { return };
        let assigned: Vec<(String, i32)> =
            partitions.elements().iter().map(|element| (element.topic().to_string(), element.partition())).collect();
        for (topic, partition) in assigned {
            if let Some(offset) = cursor.resume_offset(&topic, partition) {
                if partitions.set_partition_offset(&topic, partition, Offset::Offset(offset)).is_ok() {
                    if let Some(positions) = cursor.positions.get_mut(&topic) {
                        positions.remove(&partition);
                    }
                }
            }
        }
    }
}
