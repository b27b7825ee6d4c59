//! One consumer for many streams (DESIGN 4.4, changed): SSE and WebSocket clients that read with
//! QoS `none`, `autoOffsetReset: latest` and no cursor have nothing to commit and all start at the
//! end of the topics, so a consumer per client adds nothing but threads and memory. They share one
//! consumer per API and resolved consumer configuration, which assigns itself every partition of
//! its topics at their end (no group: nothing is committed) and hands each record to every client.
//!
//! Each client has its own queue of `LAG_LIMIT` messages. While a client's queue is full the shared
//! consumer waits for it, so a burst does not cut off clients that are merely slower than a fetch;
//! a client whose queue stays full for `SLOW_CLIENT_GRACE` is ended with a reason (SSE `goaway`,
//! WebSocket 1013), so it holds the others up at most that long, once. The shared consumer closes
//! when its last client leaves. Partitions added to a topic while it runs are not read until it
//! starts again; a topic missing when the first client comes sends that client to a consumer of
//! its own, as before.

use crate::client::{self, Callbacks, Role};
use crate::failure::{classify_connection_error, unknown};
use crate::producer::short_uuid;
use crate::report::Origin;
use crate::settings::{ConsumerSettings, TopicSelection};
use kafka_edge_message::{EndpointFailure, FailureKind, Message, Subscription};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Messages a client's queue holds: how far it may fall behind the shared consumer.
pub(crate) const LAG_LIMIT: usize = 1024;

/// How long a client's queue may stay full before the client is ended.
pub(crate) const SLOW_CLIENT_GRACE: Duration = Duration::from_secs(2);

/// How often the shared consumer looks again at clients whose queue is full.
const FULL_RETRY: Duration = Duration::from_millis(5);

/// Longest wait for the topics' partitions when the shared consumer starts.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// How often a shared consumer without clients checks whether to close.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// Which consumer a stream may share: the same API and consumer configuration, the group aside.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct FanOutKey {
    api: String,
    settings: ConsumerSettings,
}

/// The shared consumers of the gateway.
#[derive(Default)]
pub(crate) struct FanOuts {
    running: Mutex<HashMap<FanOutKey, Arc<Clients>>>,
    next_client: AtomicU64,
}

impl FanOuts {
    /// Streams open on shared consumers now, and the shared consumers (for metrics and tests).
    pub(crate) fn counts(&self) -> (usize, usize) {
        let running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        (running.values().map(|clients| clients.len()).sum(), running.len())
    }

    /// A new client of `clients`: its queue, with one slot kept for the reason it may be ended.
    fn join(&self, clients: &Clients) -> Subscription {
        let (messages, receiver) = mpsc::channel(LAG_LIMIT + 1);
        let id = self.next_client.fetch_add(1, Ordering::Relaxed);
        clients.lock().push(Client { id, messages, full_since: None });
        // Closing needs nothing: the shared consumer sees the queue closed and forgets it.
        Subscription::new(receiver, |_| Box::pin(async { None }))
    }
}

/// The clients of one shared consumer.
#[derive(Default)]
struct Clients(Mutex<Vec<Client>>);

impl Clients {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Client>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn len(&self) -> usize {
        self.lock().iter().filter(|client| !client.messages.is_closed()).count()
    }
}

struct Client {
    id: u64,
    messages: mpsc::Sender<Result<Message, EndpointFailure>>,
    /// Since when its queue has been full.
    full_since: Option<Instant>,
}

/// Whether a subscription may share a consumer (see the module documentation).
pub(crate) fn eligible(
    settings: &ConsumerSettings,
    qos: kafka_edge_message::Qos,
    cursor: bool,
    entrypoint: &str,
) -> bool {
    qos == kafka_edge_message::Qos::None
        && !cursor
        && settings.auto_offset_reset == kafka_edge_definition::AutoOffsetReset::Latest
        && matches!(settings.topics, TopicSelection::Names(_))
        && matches!(entrypoint, "sse" | "websocket")
}

/// Joins the shared consumer of `settings`, starting it for the first client. `None` when it
/// cannot be shared after all (a topic is missing): the caller gives the client its own.
pub(crate) async fn subscribe(
    fan_outs: &Arc<FanOuts>,
    settings: ConsumerSettings,
    origin: Origin,
) -> Result<Option<Subscription>, EndpointFailure> {
    let key = FanOutKey { api: origin.api.clone(), settings: ConsumerSettings { group_id: String::new(), ..settings } };
    // Joined under the registry's lock, which a consumer closing for want of clients holds too.
    let joined = {
        let running = fan_outs.running.lock().unwrap_or_else(PoisonError::into_inner);
        running.get(&key).map(|clients| fan_outs.join(clients))
    };
    match joined {
        Some(subscription) => Ok(Some(subscription)),
        None => start(fan_outs.clone(), key, origin).await,
    }
}

/// Starts the shared consumer of `key` (or joins the one another first client started meanwhile).
async fn start(
    fan_outs: Arc<FanOuts>,
    key: FanOutKey,
    origin: Origin,
) -> Result<Option<Subscription>, EndpointFailure> {
    let settings = &key.settings;
    let TopicSelection::Names(topics) = &settings.topics else { return Ok(None) };
    let client_id = format!("gio-apim-consumer-{}", short_uuid());
    let config = client::config(&settings.connection, &client_id, &Role::FanOut);
    let reporter = origin.clone();
    let callbacks = Callbacks::for_connection(&settings.connection, client_id.clone())
        .await?
        .with_errors(Box::new(move |error, reason| reporter.client_error(error, reason)));
    let consumer: StreamConsumer<Callbacks> = client::create(&config, callbacks)?;
    let topics = topics.clone();
    let assigned = tokio::task::spawn_blocking(move || {
        let mut assignment = TopicPartitionList::new();
        for topic in &topics {
            let metadata = consumer
                .fetch_metadata(Some(topic), METADATA_TIMEOUT)
                .map_err(|error| classify_connection_error(&error, false).unwrap_or_else(|| unknown(&error)))?;
            let partitions = metadata.topics().first().filter(|t| t.error().is_none()).map(|t| t.partitions().len());
            match partitions {
                Some(count) if count > 0 => {
                    for partition in 0..count as i32 {
                        let _ = assignment.add_partition_offset(topic, partition, Offset::End);
                    }
                }
                _ => return Ok(None),
            }
        }
        consumer.assign(&assignment).map_err(|error| unknown(&error))?;
        Ok(Some(consumer))
    })
    .await
    .unwrap_or_else(|_| {
        Err(EndpointFailure::new(FailureKind::Unknown, "Endpoint unknown error: shared consumer start failed"))
    });
    let Some(consumer) = assigned? else { return Ok(None) };
    let mut running = fan_outs.running.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(clients) = running.get(&key) {
        // Another first client was quicker: share its consumer, drop this one.
        return Ok(Some(fan_outs.join(clients)));
    }
    let clients = Arc::new(Clients::default());
    let subscription = fan_outs.join(&clients);
    running.insert(key.clone(), clients.clone());
    drop(running);
    tracing::debug!(%client_id, api = %key.api, "Shared Kafka consumer started.");
    tokio::spawn(pump(fan_outs.clone(), key, consumer, clients, origin));
    Ok(Some(subscription))
}

/// Hands every record to every client until the last client leaves or the consumer fails.
async fn pump(
    fan_outs: Arc<FanOuts>,
    key: FanOutKey,
    consumer: StreamConsumer<Callbacks>,
    clients: Arc<Clients>,
    origin: Origin,
) {
    let mut check = tokio::time::interval(IDLE_CHECK);
    let mut reached_cluster = false;
    loop {
        tokio::select! {
            received = consumer.recv() => match received {
                Ok(record) => {
                    reached_cluster = true;
                    let message = crate::subscriber::message_of(&record, key.settings.remove_confluent_header);
                    drop(record);
                    deliver(&clients, &message).await;
                }
                Err(error) => {
                    if let Some(failure) = classify_connection_error(&error, reached_cluster) {
                        origin.failure(&failure);
                        for client in clients.lock().iter() {
                            let _ = client.messages.try_send(Err(failure.clone()));
                        }
                        break;
                    }
                    tracing::debug!(%error, "Shared Kafka consumer error, retrying.");
                }
            },
            _ = check.tick() => {
                let mut running = fan_outs.running.lock().unwrap_or_else(PoisonError::into_inner);
                if clients.len() == 0 {
                    running.remove(&key);
                    break;
                }
            }
        }
    }
    // A failed consumer is forgotten too: the next client starts a new one.
    {
        let mut running = fan_outs.running.lock().unwrap_or_else(PoisonError::into_inner);
        if running.get(&key).is_some_and(|current| Arc::ptr_eq(current, &clients)) {
            running.remove(&key);
        }
    }
    clients.lock().clear();
    let client_id = consumer.context().client_id.clone();
    let _ = tokio::task::spawn_blocking(move || drop(consumer)).await;
    tracing::debug!(%client_id, "Shared Kafka consumer closed.");
}

/// Puts `message` into every client's queue: waits for a full queue, up to the client's grace,
/// then ends that client with the reason (in the slot kept for it).
async fn deliver(clients: &Clients, message: &Message) {
    let mut waiting_for: Option<Vec<u64>> = None;
    loop {
        let mut still_full = Vec::new();
        {
            let mut clients = clients.lock();
            clients.retain(|client| !client.messages.is_closed());
            let mut ended = Vec::new();
            for client in clients.iter_mut() {
                if waiting_for.as_ref().is_some_and(|ids| !ids.contains(&client.id)) {
                    continue;
                }
                if client.messages.capacity() > 1 {
                    let _ = client.messages.try_send(Ok(copy(message)));
                    client.full_since = None;
                    continue;
                }
                let full_since = *client.full_since.get_or_insert_with(Instant::now);
                if full_since.elapsed() < SLOW_CLIENT_GRACE {
                    still_full.push(client.id);
                    continue;
                }
                let reason = format!(
                    "the client fell more than {LAG_LIMIT} messages behind for {} s; reconnect",
                    SLOW_CLIENT_GRACE.as_secs()
                );
                let _ = client.messages.try_send(Err(EndpointFailure::new(FailureKind::TooSlow, reason)));
                ended.push(client.id);
            }
            clients.retain(|client| !ended.contains(&client.id));
        }
        if still_full.is_empty() {
            return;
        }
        waiting_for = Some(still_full);
        tokio::time::sleep(FULL_RETRY).await;
    }
}
/// A client's copy of a shared message (QoS none: no id, nothing to acknowledge).
fn copy(message: &Message) -> Message {
    Message {
        content: message.content.clone(),
        headers: message.headers.clone(),
        metadata: message.metadata.clone(),
        ..Message::default()
    }
}
