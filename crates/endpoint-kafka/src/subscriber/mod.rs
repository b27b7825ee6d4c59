//! One consumer per client connection (DESIGN 4.4, 4.5), split by concern: subscribing (here),
//! the task that pumps records to the entrypoint (`pump`), acknowledgements turned into offsets
//! (`offsets`), group rebalances (`rebalance`), and the consumer's explicit lifecycle
//! (`lifecycle`: created → subscribed → assigned → consuming → closing → closed).
//!
//! Offsets are stored only for messages the entrypoint acknowledged, so a message that was
//! fetched but never delivered is never committed.

mod lifecycle;
mod offsets;
mod pump;
mod rebalance;

pub(crate) use rebalance::Rebalance;

use crate::client::{self, Callbacks, Role};
use crate::cursor::Cursor;
use crate::failure::{missing_topic, probe_cluster, topic_exists, unknown};
use crate::producer::short_uuid;
use crate::report::Origin;
use crate::settings::{ConsumerSettings, TopicSelection};
use kafka_edge_message::{Close, EndpointFailure, FailureKind, Qos, Subscription};
use lifecycle::{Lifecycle, Phase};
use offsets::{AckChannel, Offsets, TopicIndex};
use pump::Pump;
use rdkafka::consumer::{Consumer, StreamConsumer};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Messages buffered between the consumer task and the entrypoint.
const CHANNEL_CAPACITY: usize = 32;

/// Longest a request waits for its consumer's final commit and group leave; a cluster that went
/// away must not hold the client's response. The close goes on in the background.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Starts a subscription. Fails at once on a configuration librdkafka refuses or a cluster that
/// does not answer; losing the cluster later is reported through the message stream. Either is
/// logged for `origin` (once a minute per cause).
pub(crate) async fn subscribe(
    settings: ConsumerSettings,
    qos: Qos,
    cursor: Option<Cursor>,
    origin: Origin,
) -> Result<Subscription, EndpointFailure> {
    start(settings, qos, cursor, origin.clone()).await.inspect_err(|failure| origin.failure(failure))
}

async fn start(
    settings: ConsumerSettings,
    qos: Qos,
    cursor: Option<Cursor>,
    origin: Origin,
) -> Result<Subscription, EndpointFailure> {
    let client_id = format!("gio-apim-consumer-{}", short_uuid());
    let role = Role::Consumer {
        group_id: &settings.group_id,
        auto_offset_reset: settings.auto_offset_reset,
        auto_commit: qos != Qos::None,
        follows_pattern: matches!(settings.topics, TopicSelection::Pattern(_)),
    };
    let config = client::config(&settings.connection, &client_id, &role);
    let lifecycle = Arc::new(Lifecycle::default());
    let reporter = origin.clone();
    let callbacks = Callbacks::for_connection(&settings.connection, client_id.clone())
        .await?
        .with_errors(Box::new(move |error, reason| reporter.client_error(error, reason)))
        .with_rebalance(Rebalance::new(lifecycle.clone(), cursor, qos != Qos::None));
    let consumer: StreamConsumer<Callbacks> = client::create(&config, callbacks)?;
    let (subscription, known_topics) = match &settings.topics {
        TopicSelection::Names(names) => (names.clone(), names.clone()),
        // librdkafka treats a subscription starting with `^` as a regular expression; anchoring
        // both ends gives the whole-name match of Java's Pattern.matches.
        TopicSelection::Pattern(pattern) => (vec![format!("^({pattern})$")], Vec::new()),
    };
    // OAUTHBEARER tokens are handed out while the consumer is polled, which the probe would not
    // do: those consumers report an unreachable or refusing cluster through the stream instead.
    let consumer = if settings.connection.token_source().is_some() {
        consumer
    } else {
        probe(consumer, known_topics.clone(), settings.check_topic_existence, &origin).await?
    };
    let topic_names: Vec<&str> = subscription.iter().map(String::as_str).collect();
    consumer.subscribe(&topic_names).map_err(|error| {
        tracing::warn!(%client_id, %error, "Kafka consumer could not subscribe.");
        unknown(&error)
    })?;
    lifecycle.advance(Phase::Subscribed);
    tracing::debug!(%client_id, group_id = %settings.group_id, topics = ?subscription, %qos, "Kafka consumer subscribed.");

    let (messages_tx, messages_rx) = mpsc::channel(CHANNEL_CAPACITY);
    let (ack_tx, ack_rx) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = oneshot::channel();
    let pump = Pump {
        origin,
        subscribed: subscription,
        offsets: Offsets::new(Arc::new(consumer), qos, TopicIndex::new(known_topics)),
        lifecycle,
        group_id: settings.group_id,
        encode_message_id: settings.encode_message_id,
        auto_offset_reset: settings.auto_offset_reset,
        remove_confluent_header: settings.remove_confluent_header,
        acknowledger: Arc::new(AckChannel(ack_tx)),
        acks: ack_rx,
        messages: messages_tx,
    };
    let task = tokio::spawn(pump.run(stop_rx));
    Ok(Subscription::new(messages_rx, move |close: Close| {
        // Sent now, before the subscription closes its end of the channel: the pump must learn
        // how to close from this, not from seeing the channel closed (which means "wait").
        let _ = stop_tx.send(close);
        Box::pin(async move {
            match tokio::time::timeout(CLOSE_TIMEOUT, task).await {
                Ok(Ok(position)) => position,
                Ok(Err(error)) => {
                    tracing::error!(%error, "Kafka consumer task failed.");
                    None
                }
                Err(_) => {
                    tracing::warn!("Kafka consumer still closing; the request does not wait for it.");
                    None
                }
            }
        })
    }))
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
