//! An API's endpoint as `/metrics` sees it: records and bytes produced and consumed by topic,
//! how long the cluster took to acknowledge, and how old a record is when a client gets it.
//! Topics the definition does not name (from a header or an expression, matched by a pattern)
//! are counted under `other`, so that no client can make the label set grow.

use crate::observe::Metrics;
use kafka_edge_message::{
    Endpoint, EndpointFailure, ExecutionContext, Message, RecordPosition, SubscribeOptions, Subscription, Transformed,
};
use std::sync::{Arc, LazyLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The label of topics a definition does not name.
pub const OTHER_TOPIC: &str = "other";
static OTHER_LABEL: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from(OTHER_TOPIC));

pub struct Metered {
    inner: Arc<dyn Endpoint>,
    api: Arc<str>,
    /// The topics the definition names (producer and consumer), the only topic labels.
    named_topics: Arc<[Arc<str>]>,
    metrics: Arc<Metrics>,
}

impl Metered {
    pub fn wrap(
        inner: Arc<dyn Endpoint>,
        api: Arc<str>,
        named_topics: Arc<[Arc<str>]>,
        metrics: Arc<Metrics>,
    ) -> Arc<dyn Endpoint> {
        Arc::new(Self { inner, api, named_topics, metrics })
    }
}

/// Shares the label's `Arc`: metering a record allocates nothing.
fn topic_label<'a>(named: &'a [Arc<str>], topic: &str) -> &'a Arc<str> {
    named.iter().find(|name| ***name == *topic).unwrap_or(&OTHER_LABEL)
}

#[async_trait::async_trait]
impl Endpoint for Metered {
    async fn publish(
        &self,
        context: &ExecutionContext,
        message: Message,
    ) -> Result<Vec<RecordPosition>, EndpointFailure> {
        let bytes = message.content.len();
        let started = Instant::now();
        let published = self.inner.publish(context, message).await;
        match &published {
            Ok(positions) => {
                self.metrics.clusters.answered(&self.api);
                let topics = positions.iter().map(|position| topic_label(&self.named_topics, &position.topic));
                self.metrics.produced(&self.api, topics, bytes, started.elapsed());
            }
            Err(failure) => {
                self.metrics.clusters.failed(&self.api, failure);
                self.metrics.produce_failed(&self.api, failure.kind.key());
            }
        }
        published
    }

    async fn subscribe(
        &self,
        context: &ExecutionContext,
        options: SubscribeOptions,
    ) -> Result<Subscription, EndpointFailure> {
        let subscription = self.inner.subscribe(context, options).await;
        let subscription = subscription.inspect_err(|failure| self.metrics.clusters.failed(&self.api, failure))?;
        let (api, named, metrics) = (self.api.clone(), self.named_topics.clone(), self.metrics.clone());
        let mut heard = false;
        Ok(subscription.with_transform(move |message| {
            if !heard {
                // Once per subscription: the cluster delivers.
                heard = true;
                metrics.clusters.answered(&api);
            }
            if let Some(metadata) = &message.metadata {
                let age = metadata.source_timestamp.map(|timestamp| {
                    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
                    now.saturating_sub(timestamp).max(0) as f64 / 1000.0
                });
                metrics.consumed(&api, topic_label(&named, &metadata.topic), message.content.len(), age);
            }
            Transformed::Keep(message)
        }))
    }

    async fn warm(&self) -> Result<(), EndpointFailure> {
        self.inner.warm().await
    }

    fn close_idle(&self) {
        self.inner.close_idle();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_topics_the_definition_names_are_labels() {
        let named: [Arc<str>; 2] = [Arc::from("orders"), Arc::from("payments")];
        assert_eq!(&**topic_label(&named, "orders"), "orders");
        assert_eq!(&**topic_label(&named, "orders-from-a-header"), OTHER_TOPIC);
    }
}
