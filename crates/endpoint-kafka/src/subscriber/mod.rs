//! One consumer per client connection (DESIGN 4.4, 4.5), split by concern: subscribing (here),
//! the task that pumps records to the entrypoint (`pump`), acknowledgements turned into offsets
//! (`offsets`), group rebalances (`rebalance`), and the consumer's explicit lifecycle
//! (`lifecycle`: created → subscribed → assigned → consuming → closing → closed), and the
//! http-get consumers kept warm between a client's requests (`warm`).
//!
//! Offsets are stored only for messages the entrypoint acknowledged, so a message that was
//! fetched but never delivered is never committed.

mod fan_out;
mod lifecycle;
mod offsets;
mod pattern;
mod pump;
mod rebalance;
mod slots;
mod warm;

pub(crate) use fan_out::FanOuts;
pub(crate) use pump::message_of;
pub(crate) use rebalance::Rebalance;
pub(crate) use slots::ConsumerSlots;
pub(crate) use warm::WarmConsumers;

use crate::client::{self, Callbacks, FetchWait, Role};
use crate::cursor::Cursor;
use crate::failure::{classify_connection_error, missing_topic, probe_cluster, topic_exists, unknown};
use crate::producer::short_uuid;
use crate::report::Origin;
use crate::settings::{ConsumerSettings, TopicSelection};
use crate::shared::{Joining, KafkaClients};
use kafka_edge_message::{Close, EndpointFailure, FailureKind, Qos, Subscription};
use lifecycle::{Lifecycle, Phase};
use offsets::{AckChannel, Offsets, TopicIndex};
use pattern::TopicPattern;
use pump::{Pump, WarmSpot};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{BaseProducer, Producer as _};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use warm::{Resume, WarmKey};

/// Messages buffered between the consumer task and the entrypoint.
const CHANNEL_CAPACITY: usize = 32;

/// Longest a request waits for its consumer's final commit and group leave; a cluster that went
/// away must not hold the client's response. The close goes on in the background.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest `auto` waits to learn whether a cluster speaks the consumer protocol. A broker that
/// does not refuses the first heartbeat (after the coordinator lookup: well under a second, more
/// on a loaded machine); one that does answers it with an assignment, unless the topics do not
/// exist yet, which this bounds.
const LEARN_PROTOCOL_TIMEOUT: Duration = Duration::from_secs(5);

/// How a subscription is closed, with where to send the answer (the resume position, if asked).
pub(crate) type Stop = (Close, oneshot::Sender<Option<String>>);

/// Starts a subscription, resuming the warm consumer of the same client when one is parked.
/// Fails at once on a configuration librdkafka refuses or a cluster that does not answer; losing
/// the cluster later is reported through the message stream. Either is logged for `origin`
/// (once a minute per cause).
pub(crate) async fn subscribe(
    clients: &KafkaClients,
    settings: ConsumerSettings,
    qos: Qos,
    cursor: Option<Cursor>,
    origin: Origin,
) -> Result<Subscription, EndpointFailure> {
    if fan_out::eligible(&settings, qos, cursor.is_some(), origin.entrypoint) {
        match fan_out::subscribe(&clients.fan_outs, settings.clone(), origin.clone()).await {
            Ok(Some(subscription)) => return Ok(subscription),
            // A topic is missing: the client gets a consumer of its own, which waits for it.
            Ok(None) => {}
            Err(failure) => {
                origin.failure(&failure);
                return Err(failure);
            }
        }
    }
    let warm_key = (qos != Qos::None && !clients.consumers.keep_warm_for.is_zero()).then(|| WarmKey {
        api: origin.api.clone(),
        settings: settings.clone(),
        qos,
    });
    if let Some(key) = &warm_key {
        if let Some(parked) = clients.warm.take(key) {
            if let Some(subscription) = resume(parked, cursor.clone(), origin.clone()).await {
                return Ok(subscription);
            }
        }
    }
    let warm = warm_key.map(|key| WarmSpot {
        consumers: clients.warm.clone(),
        key,
        idle_for: clients.consumers.keep_warm_for,
    });
    let take_slot = || clients.slots.take(&origin.client_address).inspect_err(|failure| origin.failure(failure));
    let slot = take_slot()?;
    let bootstrap_servers = settings.connection.bootstrap_servers().to_string();
    let joining = clients.protocols.joining(clients.consumers.group_protocol, &bootstrap_servers);
    let (started, learnt) =
        start(settings.clone(), qos, cursor.clone(), origin.clone(), joining, warm.clone(), slot).await;
    if let Some(supports_consumer) = learnt {
        clients.protocols.learn(&bootstrap_servers, supports_consumer);
    }
    let started = match (started, learnt) {
        (Err(_), Some(false)) => {
            start(settings, qos, cursor, origin.clone(), Joining::Classic, warm, take_slot()?).await.0
        }
        (started, _) => started,
    };
    started.inspect_err(|failure| origin.failure(failure))
}

/// Hands a parked consumer the new request; `None` when it left meanwhile.
async fn resume(parked: oneshot::Sender<Resume>, cursor: Option<Cursor>, origin: Origin) -> Option<Subscription> {
    let (messages_tx, messages_rx) = mpsc::channel(CHANNEL_CAPACITY);
    let (stop_tx, stop_rx) = oneshot::channel();
    let (resumed_tx, resumed_rx) = oneshot::channel();
    let resume = Resume { messages: messages_tx, stop: stop_rx, cursor, origin, resumed: resumed_tx };
    parked.send(resume).ok()?;
    tokio::time::timeout(CLOSE_TIMEOUT, resumed_rx).await.ok()?.ok()?;
    Some(subscription(messages_rx, stop_tx))
}

/// The subscription the entrypoint holds: its messages, and a close that tells the consumer's
/// task how to close and waits (bounded) for its answer.
fn subscription(
    messages: mpsc::Receiver<Result<kafka_edge_message::Message, EndpointFailure>>,
    stop: oneshot::Sender<Stop>,
) -> Subscription {
    Subscription::new(messages, move |close: Close| {
        // Sent now, before the subscription closes its end of the channel: the pump must learn
        // how to close from this, not from seeing the channel closed (which means "wait").
        let (answer_tx, answer_rx) = oneshot::channel();
        let _ = stop.send((close, answer_tx));
        Box::pin(async move {
            match tokio::time::timeout(CLOSE_TIMEOUT, answer_rx).await {
                Ok(answer) => answer.ok().flatten(),
                Err(_) => {
                    tracing::warn!("Kafka consumer still closing; the request does not wait for it.");
                    None
                }
            }
        })
    })
}

/// Creates, probes and subscribes a consumer and starts its task. When `learning` (auto, on a
/// cluster not tried yet, joining with the consumer protocol) it also waits for the cluster's
/// verdict: `Some(false)` when it refused the consumer protocol (the subscription then failed),
/// `Some(true)` when it assigned partitions or did not refuse in time.
async fn start(
    settings: ConsumerSettings,
    qos: Qos,
    cursor: Option<Cursor>,
    origin: Origin,
    joining: Joining,
    warm: Option<WarmSpot>,
    mut slot: slots::Slot,
) -> (Result<Subscription, EndpointFailure>, Option<bool>) {
    let consumer_protocol = joining != Joining::Classic;
    let learning = joining == Joining::TryConsumer;
    let client_id = format!("gio-apim-consumer-{}", short_uuid());
    let role = Role::Consumer {
        group_id: &settings.group_id,
        auto_offset_reset: settings.auto_offset_reset,
        auto_commit: qos != Qos::None,
        consumer_protocol,
        fetch_wait: if origin.entrypoint == "http-get" { FetchWait::Page } else { FetchWait::Stream },
    };
    let config = client::config(&settings.connection, &client_id, &role);
    let lifecycle = Arc::new(Lifecycle::default());
    let reporter = origin.clone();
    let callbacks = match Callbacks::for_connection(&settings.connection, client_id.clone()).await {
        Ok(callbacks) => callbacks,
        Err(failure) => return (Err(failure), None),
    };
    // A metadata request that times out says only that no broker answered; the connection error
    // librdkafka reported meanwhile says why (a refused login, a failed TLS handshake).
    let connection_failure = Arc::new(std::sync::Mutex::new(None::<EndpointFailure>));
    let recording = connection_failure.clone();
    let callbacks = callbacks
        .with_errors(Box::new(move |error, reason| {
            if let Some(failure) = classify_connection_error(error, false) {
                *recording.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(failure);
            }
            reporter.client_error(error, reason)
        }))
        .with_rebalance(Rebalance::new(lifecycle.clone(), cursor, qos != Qos::None))
        .with_lag(slot.lag_sink(&client_id, &origin.api));
    let consumer: StreamConsumer<Callbacks> = match client::create(&config, callbacks) {
        Ok(consumer) => consumer,
        Err(failure) => return (Err(failure), None),
    };
    let token_source = settings.connection.token_source().is_some();
    // A pattern is matched here against the topic list (see `pattern`), except for a consumer
    // that authenticates with OAUTHBEARER: it cannot list topics before it is polled (below), so
    // librdkafka matches it, anchored at both ends as Java's Pattern.matches.
    let (pattern, known_topics) = match &settings.topics {
        TopicSelection::Names(names) => (None, names.clone()),
        TopicSelection::Pattern(pattern) if token_source => (None, vec![format!("^({pattern})$")]),
        TopicSelection::Pattern(pattern) => match TopicPattern::new(pattern) {
            Ok(compiled) => (Some(compiled), Vec::new()),
            Err(failure) => return (Err(failure), None),
        },
    };
    // OAUTHBEARER tokens are handed out while the consumer is polled, which the probe would not
    // do: those consumers report an unreachable or refusing cluster through the stream instead,
    // and checkTopicExistence asks a probe client of their own, which is polled.
    let probed_topics = if token_source { Vec::new() } else { known_topics.clone() };
    let consumer = if token_source {
        let named = matches!(settings.topics, TopicSelection::Names(_));
        if settings.check_topic_existence && named {
            if let Err(failure) = check_topics_with_token(&settings, &client_id, known_topics.clone()).await {
                return (Err(failure), None);
            }
        }
        consumer
    } else {
        match probe(consumer, probed_topics, settings.check_topic_existence, &origin).await {
            Ok(consumer) => consumer,
            Err(failure) => {
                let reported = connection_failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
                return (Err(reported.unwrap_or(failure)), None);
            }
        }
    };
    let consumer = Arc::new(consumer);
    let subscribed = match &pattern {
        Some(pattern) => match pattern.matching_off_thread(&consumer).await {
            Ok(matching) => matching,
            Err(failure) => return (Err(failure), None),
        },
        None => known_topics.clone(),
    };
    let known_topics = match (&pattern, &settings.topics) {
        (Some(_), _) => subscribed.clone(),
        // librdkafka's pattern is no topic name.
        (None, TopicSelection::Pattern(_)) => Vec::new(),
        (None, TopicSelection::Names(_)) => known_topics,
    };
    if let Err(error) = pattern::subscribe_to(&consumer, &subscribed) {
        tracing::warn!(%client_id, %error, "Kafka consumer could not subscribe.");
        return (Err(unknown(&error)), None);
    }
    lifecycle.advance(Phase::Subscribed);
    tracing::debug!(%client_id, group_id = %settings.group_id, topics = ?subscribed, %qos, consumer_protocol, "Kafka consumer subscribed.");

    let (messages_tx, messages_rx) = mpsc::channel(CHANNEL_CAPACITY);
    let (ack_tx, ack_rx) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = oneshot::channel();
    let (refused_tx, refused_rx) = oneshot::channel();
    let mut rebalances = lifecycle.rebalances();
    let pump = Pump {
        origin,
        subscribed,
        offsets: Offsets::new(consumer, qos, TopicIndex::new(known_topics)),
        lifecycle: lifecycle.clone(),
        group_id: settings.group_id,
        encode_message_id: settings.encode_message_id,
        auto_offset_reset: settings.auto_offset_reset,
        remove_confluent_header: settings.remove_confluent_header,
        acknowledger: Arc::new(AckChannel(ack_tx)),
        acks: ack_rx,
        messages: messages_tx,
        warm,
        fetched_from: Default::default(),
        positions: HashMap::new(),
        failed: false,
        protocol_refused: learning.then_some(refused_tx),
        consumer_protocol,
        pattern,
        refresh_at: tokio::time::Instant::now() + pattern::REFRESH,
        _slot: slot,
    };
    tokio::spawn(pump.run(stop_rx));
    let subscription = subscription(messages_rx, stop_tx);
    if !learning {
        return (Ok(subscription), None);
    }
    let reached = rebalances.wait_for(|_| lifecycle.reached_cluster());
    let supports_consumer = tokio::select! {
        // Dropped unsent: the subscription ended for another reason, which says nothing.
        refused = refused_rx => refused.ok().map(|()| false),
        _ = reached => Some(true),
        _ = tokio::time::sleep(LEARN_PROTOCOL_TIMEOUT) => Some(true),
    };
    match supports_consumer {
        Some(false) => {
            let refused = EndpointFailure::new(FailureKind::Unknown, "the cluster refused the consumer group protocol");
            (Err(refused), Some(false))
        }
        learnt => (Ok(subscription), learnt),
    }
}

/// checkTopicExistence for a consumer that authenticates with a token (OAUTHBEARER, AWS_MSK_IAM):
/// a short-lived probe client with the same connection and token source looks every topic up,
/// polled on a thread of its own meanwhile so that its token is handed out. It costs a client and
/// a connection per subscription, which only these consumers, with the check on, pay.
async fn check_topics_with_token(
    settings: &ConsumerSettings,
    client_id: &str,
    topics: Vec<String>,
) -> Result<(), EndpointFailure> {
    let probe_id = format!("{client_id}-topics");
    let callbacks = Callbacks::for_connection(&settings.connection, probe_id.clone()).await?;
    let config = client::config(&settings.connection, &probe_id, &Role::Probe);
    let probe: BaseProducer<Callbacks> = client::create(&config, callbacks)?;
    let looked_up = tokio::task::spawn_blocking(move || {
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    probe.poll(Duration::from_millis(50));
                }
            });
            let mut missing = None;
            for topic in &topics {
                match topic_exists(probe.client(), topic) {
                    Ok(true) => {}
                    Ok(false) => {
                        missing = Some(Ok(topic.clone()));
                        break;
                    }
                    Err(failure) => {
                        missing = Some(Err(failure));
                        break;
                    }
                }
            }
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            missing
        })
    })
    .await
    .unwrap_or_else(|_| {
        Some(Err(EndpointFailure::new(FailureKind::Unknown, "Endpoint unknown error: topic check failed")))
    });
    match looked_up {
        None => Ok(()),
        Some(Ok(topic)) => Err(missing_topic(&topic)),
        Some(Err(failure)) => Err(failure),
    }
}

/// Proves the cluster answers before the consumer joins its group (see `probe_cluster`, which
/// looks up the first topic), and finds which named topics it does not know. With
/// `checkTopicExistence` every topic is looked up and the request fails on the first missing one;
/// otherwise only the first topic's answer is used (no request more than the probe), a missing
/// one is logged for the operator, and the consumer waits for it (the others are reported when the
/// consumer learns they are missing).
async fn probe(
    consumer: StreamConsumer<Callbacks>,
    topics: Vec<String>,
    check_topic_existence: bool,
    origin: &Origin,
) -> Result<StreamConsumer<Callbacks>, EndpointFailure> {
    let probed = tokio::task::spawn_blocking(move || {
        let first = topics.first().map(String::as_str).unwrap_or_default();
        let mut missing = Vec::new();
        if !probe_cluster(consumer.client(), first)? {
            missing.push(first.to_string());
        }
        for topic in topics.iter().skip(1).filter(|_| check_topic_existence) {
            if !topic_exists(consumer.client(), topic)? {
                missing.push(topic.clone());
            }
        }
        Ok((consumer, missing))
    })
    .await
    .unwrap_or_else(|_| {
        Err(EndpointFailure::new(FailureKind::Unknown, "Endpoint unknown error: cluster probe failed"))
    });
    let (consumer, missing) = probed?;
    match missing.first() {
        Some(topic) if check_topic_existence => Err(missing_topic(topic)),
        Some(_) => {
            origin.missing_topics(&missing);
            Ok(consumer)
        }
        None => Ok(consumer),
    }
}
