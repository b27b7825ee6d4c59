//! The delivery loop of one subscription: subscribe through the endpoint trait (consumer group =
//! the subscription id), POST each message in order, acknowledge after a 2xx, retry 5xx and
//! network errors per the subscription's policy, and stop the subscription when it cannot go on.
//! A rejected message (4xx) goes to the `dlq.endpoint` when there is one, else it stops the
//! subscription. Cancellation (delete, shutdown) closes the endpoint subscription, so the
//! consumer leaves its group.

use super::call::{CallOutcome, Caller};
use super::{DeliveryObserver, WebhookEntrypoint};
use futures::stream::{FuturesUnordered, StreamExt};
use kafka_edge_definition::subscription::{Retry, Subscription};
use kafka_edge_message::delivery::{self, Receipt};
use kafka_edge_message::{
    Endpoint, EndpointFailure, ExecutionContext, FailureKind, Message, Qos, SubscribeOptions, ATTR_RECORD_KEY,
};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Wait before subscribing again after the endpoint failed.
const RESUBSCRIBE_DELAY: Duration = Duration::from_secs(5);

/// Why delivery ended for good: the subscription's state becomes stopped with this reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stop {
    /// A key such as `WEBHOOK_UNREACHABLE`.
    pub reason: &'static str,
    pub message: String,
}

enum Pumped {
    Cancelled,
    EndpointFailed(EndpointFailure),
    Stop(Stop),
}

/// Delivers `subscription`'s messages until `cancel` (then `None`) or until it cannot go on
/// (then why, for the caller to record). `subscribe_through` gives, for each (re)subscription,
/// the execution context and the endpoint as the API's flows present it.
pub async fn run(
    webhook: &WebhookEntrypoint,
    subscription: &Subscription,
    subscribe_through: impl Fn() -> (ExecutionContext, Arc<dyn Endpoint>),
    observer: Arc<dyn DeliveryObserver>,
    cancel: CancellationToken,
) -> Option<Stop> {
    let (api_id, id) = (subscription.api_id.clone(), subscription.id.clone());
    let caller = match Caller::new(&webhook.configuration, &subscription.configuration) {
        Ok(caller) => caller.observed_by(observer),
        Err(error) => return Some(Stop { reason: "WEBHOOK_CONFIGURATION_INVALID", message: error.to_string() }),
    };
    tracing::info!(api = %api_id, subscription = %id, "Webhook delivery started.");
    loop {
        let (context, endpoint) = subscribe_through();
        let options = SubscribeOptions { qos: webhook.qos, cursor: None };
        let subscribed = tokio::select! {
            _ = cancel.cancelled() => break,
            subscribed = endpoint.subscribe(&context, options) => subscribed,
        };
        let failure = match subscribed {
            Err(failure) => failure,
            Ok(mut messages) => {
                let dead_letters = webhook.dlq.as_ref().map(|endpoint| (endpoint.as_ref(), &context));
                let concurrency = webhook.concurrency();
                let pumped = pump(
                    &caller,
                    &mut messages,
                    &subscription.configuration.retry,
                    dead_letters,
                    concurrency,
                    webhook.qos,
                    &cancel,
                )
                .await;
                messages.close().await;
                match pumped {
                    Pumped::Cancelled => break,
                    Pumped::Stop(reason) => return Some(reason),
                    Pumped::EndpointFailed(failure) => failure,
                }
            }
        };
        let key = failure.kind.key();
        tracing::warn!(api = %api_id, subscription = %id, key, error = %failure, "Webhook subscription lost its endpoint; subscribing again.");
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(RESUBSCRIBE_DELAY) => {}
        }
    }
    tracing::info!(api = %api_id, subscription = %id, "Webhook delivery ended.");
    None
}

/// Delivers until something ends the subscription. Up to `concurrency` messages are in flight;
/// with 1 (always for at-most-once and at-least-once) messages go strictly one after the other.
/// The QoS rules are `delivery`'s: at at-most-once each message's offset is committed before its
/// first call, so no later consumer of the group sends it again, whatever happens to that call;
/// otherwise a message is acknowledged once the callback took it.
async fn pump(
    caller: &Caller,
    messages: &mut kafka_edge_message::Subscription,
    retry: &Retry,
    dead_letters: Option<(&dyn Endpoint, &ExecutionContext)>,
    concurrency: usize,
    qos: Qos,
    cancel: &CancellationToken,
) -> Pumped {
    let at_most_once = qos == Qos::AtMostOnce;
    let mut in_flight = FuturesUnordered::new();
    loop {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return Pumped::Cancelled,
            Some((mut message, receipt, delivered)) = in_flight.next(), if !in_flight.is_empty() => {
                if let Err(pumped) = settle(&mut message, receipt, delivered, dead_letters, caller).await {
                    return pumped;
                }
            }
            next = messages.next(), if in_flight.len() < concurrency => {
                let mut message = match next {
                    None => return Pumped::EndpointFailed(EndpointFailure::new(FailureKind::Unknown, "subscription ended")),
                    Some(Err(failure)) => return Pumped::EndpointFailed(failure),
                    Some(Ok(message)) => message,
                };
                let receipt = tokio::select! {
                    _ = cancel.cancelled() => return Pumped::Cancelled,
                    receipt = delivery::before_write(qos, &mut message) => receipt,
                };
                let Ok(receipt) = receipt else {
                    // Its partition moved to another consumer, which will send it: sending it
                    // here too could repeat it. Subscribe again from the committed offsets.
                    return Pumped::EndpointFailed(EndpointFailure::new(
                        FailureKind::Unknown,
                        "an offset could not be committed before the call (partitions moved)",
                    ));
                };
                in_flight.push(async move {
                    let delivered = deliver(caller, &message, retry, at_most_once, cancel).await;
                    (message, receipt, delivered)
                });
            }
        }
    }
}

/// Acknowledges a delivered message (or one the dead-letter queue took); otherwise says why the
/// subscription ends.
async fn settle(
    message: &mut Message,
    receipt: Receipt,
    delivered: Delivered,
    dead_letters: Option<(&dyn Endpoint, &ExecutionContext)>,
    caller: &Caller,
) -> Result<(), Pumped> {
    match delivered {
        Delivered::Yes => {}
        Delivered::Cancelled => return Err(Pumped::Cancelled),
        Delivered::Rejected(status) => {
            let Some((dlq, context)) = dead_letters else {
                return Err(Pumped::Stop(Stop {
                    reason: "MESSAGE_PROCESSING_FAILED",
                    message: format!("Webhook callback rejected a message with status {status}"),
                }));
            };
            if let Err(failure) = dlq.publish(context, dead_letter(message)).await {
                let message = format!("Webhook callback rejected a message with status {status} and the dead-letter queue failed: {failure}");
                return Err(Pumped::Stop(Stop { reason: "MESSAGE_PROCESSING_FAILED", message }));
            }
            caller.observer().dead_lettered();
        }
        Delivered::Unreachable(detail) => {
            return Err(Pumped::Stop(Stop {
                reason: "WEBHOOK_UNREACHABLE",
                message: format!("Webhook callback url is unreachable: {detail}"),
            }));
        }
    }
    // Delivered: a position that could not be recorded can only make it come again, which the QoS
    // levels that acknowledge after the call allow.
    let _ = receipt.written_and_recorded().await;
    Ok(())
}

/// The copy of a rejected message that goes to the dead-letter queue: content, headers and key.
fn dead_letter(message: &Message) -> Message {
    let mut copy = Message::new(message.content.clone());
    copy.headers = message.headers.clone();
    if let Some(key) = message.metadata.as_ref().and_then(|m| m.key.clone()) {
        copy.attributes.insert(ATTR_RECORD_KEY.into(), key);
    }
    copy
}

enum Delivered {
    Yes,
    Cancelled,
    Rejected(u16),
    Unreachable(String),
}

/// Calls until 2xx, a rejection, the end of the retries, or cancellation. With `at_most_once` a
/// call the callback may have received (a 5xx, no answer in time) is not repeated; one that never
/// reached it (no connection) is.
async fn deliver(
    caller: &Caller,
    message: &Message,
    retry: &Retry,
    at_most_once: bool,
    cancel: &CancellationToken,
) -> Delivered {
    let mut attempt = 0;
    loop {
        let outcome = tokio::select! {
            _ = cancel.cancelled() => return Delivered::Cancelled,
            outcome = caller.call(message) => outcome,
        };
        let observer = caller.observer();
        let detail = match outcome {
            CallOutcome::Delivered => {
                observer.call("delivered");
                return Delivered::Yes;
            }
            CallOutcome::Rejected(status) => {
                observer.call("rejected");
                return Delivered::Rejected(status);
            }
            CallOutcome::Failed { detail, sent } => {
                observer.call("failed");
                if sent && at_most_once {
                    return Delivered::Unreachable(format!("{detail} (not retried: at-most-once)"));
                }
                detail
            }
        };
        attempt += 1;
        let Some(delay) = retry.delay(attempt) else { return Delivered::Unreachable(detail) };
        tracing::debug!(attempt, delay_ms = delay.as_millis() as u64, %detail, "Webhook call failed; retrying.");
        tokio::select! {
            _ = cancel.cancelled() => return Delivered::Cancelled,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}
