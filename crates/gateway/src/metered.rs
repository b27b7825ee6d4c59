//! An API's endpoint as `/metrics` sees it: records and bytes produced and consumed by topic,
//! how long the cluster took to acknowledge, and how old a record is when a client gets it.
//! Topics the definition does not name (from a header or an expression, matched by a pattern)
//! are counted under `other`, so that no client can make the label set grow.

use crate::observe::Metrics;
use kafka_edge_message::{
    Endpoint, EndpointFailure, ExecutionContext, Message, RecordPosition, SubscribeOptions, Subscription, Transformed,
};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The label of topics a definition does not name.
pub const OTHER_TOPIC: &str = "other";

pub struct Metered {
    inner: Arc<dyn Endpoint>,
    api: Arc<str>,
    /// The topics the definition names (producer and consumer), the only topic labels.
    named_topics: Arc<[String]>,
    metrics: Arc<Metrics>,
}

impl Metered {
    pub fn wrap(
        inner: Arc<dyn Endpoint>,
        api: Arc<str>,
        named_topics: Arc<[String]>,
        metrics: Arc<Metrics>,
    ) -> Arc<dyn Endpoint> {
        Arc::new(Self { inner, api, named_topics, metrics })
    }
}

fn topic_label(named: &[String], topic: &str) -> Arc<str> {
    match named.iter().find(|name| *name == topic) {
        Some(name) => Arc::from(name.as_str()),
        None => Arc::from(OTHER_TOPIC),
    }
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
                self.metrics.acknowledged(&self.api, started.elapsed());
                for position in positions {
                    self.metrics.produced(&self.api, &topic_label(&self.named_topics, &position.topic), bytes);
                }
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
                let topic = topic_label(&named, &metadata.topic);
                metrics.consumed(&api, &topic, message.content.len());
                if let Some(timestamp) = metadata.source_timestamp {
                    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
                    metrics.record_age(&api, now.saturating_sub(timestamp).max(0) as f64 / 1000.0);
                }
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
        let named = ["orders".to_string(), "payments".to_string()];
        assert_eq!(&*topic_label(&named, "orders"), "orders");
        assert_eq!(&*topic_label(&named, "orders-from-a-header"), OTHER_TOPIC);
    }
}
