//! The Kafka endpoint: turns the message stream of an entrypoint into Kafka produce and consume
//! operations (DESIGN 4). It knows nothing of HTTP.

mod client;
mod compacted_topic;
mod cursor;
mod failure;
mod producer;
mod report;
mod security;
mod settings;
mod shared;
mod subscriber;

pub use client::{BrokerLatencies, BrokerLatency};
pub use compacted_topic::{TopicLog, TopicLogError, TopicRecord};
pub use cursor::{message_id, Cursor, CursorError};
pub use producer::{ProducerPool, DEFAULT_PRODUCE_TIMEOUT};
pub use settings::{
    static_connection, ConnectionProperties, ATTR_CONSUMER_TOPICS, ATTR_GROUP_ID, ATTR_OVERRIDE_PREFIX,
    ATTR_PRODUCER_TOPICS, ATTR_RECORD_KEY, ATTR_TOPICS_DEPRECATED,
};
pub use shared::{ConsumerOptions, GroupProtocol, KafkaClients};

use kafka_edge_definition::{Endpoint as EndpointDefinition, Problem};
use kafka_edge_message::{
    Endpoint, EndpointFailure, ExecutionContext, Message, RecordPosition, SubscribeOptions, Subscription,
};
use settings::Resolver;
use std::sync::Arc;

/// The Kafka endpoint of one API.
#[derive(Debug)]
pub struct KafkaEndpoint {
    api_id: String,
    resolver: Resolver,
    clients: Arc<KafkaClients>,
}

impl KafkaEndpoint {
    /// What `new` would refuse, without building anything else (for `validate`).
    pub fn check(api_id: &str, definition: &EndpointDefinition) -> Result<(), Problem> {
        Resolver::new(api_id, definition).map(|_| ())
    }

    /// Fails when a store cannot be read (wrong password, missing file) or an expression does
    /// not parse; the error names the property. `clients` are shared by every API of the
    /// gateway, so equal configurations share a producer.
    pub fn new(api_id: &str, definition: &EndpointDefinition, clients: Arc<KafkaClients>) -> Result<Self, Problem> {
        Ok(Self { api_id: api_id.to_string(), resolver: Resolver::new(api_id, definition)?, clients })
    }

    /// The Kerberos principal this endpoint authenticates as, when its mechanism is GSSAPI and
    /// its JAAS line holds no expression. librdkafka gets Kerberos tickets by running `kinit`
    /// into the process's one ticket cache, so a gateway can authenticate as one principal only
    /// (docs/security.md#gssapi-kerberos): the gateway refuses a second one at load.
    pub fn kerberos_principal(&self) -> Option<&str> {
        self.resolver.kerberos_principal()
    }
}

#[async_trait::async_trait]
impl Endpoint for KafkaEndpoint {
    async fn publish(
        &self,
        context: &ExecutionContext,
        message: Message,
    ) -> Result<Vec<RecordPosition>, EndpointFailure> {
        let settings = self.resolver.producer(context, &message.attributes)?;
        // The flows' attribute (message, then context: DESIGN 4.3) wins over the client's choice.
        let key = message
            .attributes
            .get(ATTR_RECORD_KEY)
            .or_else(|| context.attributes.get(ATTR_RECORD_KEY))
            .map(String::as_bytes)
            .or(message.record.key.as_deref());
        if message.record.partition.is_some() && settings.topics.len() != 1 {
            return Err(EndpointFailure::bad_request(format!(
                "a partition is honoured only when the API produces to exactly one topic (here {})",
                settings.topics.len()
            )));
        }
        let published =
            self.clients.producers.publish(&settings, key, &message.record, &message.content, &message.headers).await;
        if let Err(failure) = &published {
            report::Origin::new(context, settings.connection.bootstrap_servers()).failure(failure);
        }
        published
    }

    /// Creates the producer of a producing endpoint whose configuration does not depend on the
    /// request (no expression in its connection, topics or compression), so that the first POST
    /// does not pay for it.
    async fn warm(&self) -> Result<(), EndpointFailure> {
        if !self.resolver.produces_statically() {
            return Ok(());
        }
        let settings = self.resolver.producer(&ExecutionContext::default(), &Default::default())?;
        self.clients.producers.warm(&settings).await
    }

    async fn subscribe(
        &self,
        context: &ExecutionContext,
        options: SubscribeOptions,
    ) -> Result<Subscription, EndpointFailure> {
        let settings = self.resolver.consumer(context)?;
        let cursor = match options.cursor.as_deref().filter(|c| !c.trim().is_empty()) {
            Some(text) => Some(
                Cursor::parse(text, settings.encode_message_id)
                    .map_err(|error| EndpointFailure::bad_request(error.to_string()))?,
            ),
            None => None,
        };
        let origin = report::Origin::new(context, settings.connection.bootstrap_servers());
        subscriber::subscribe(&self.clients, settings, options.qos, cursor, origin).await
    }

    fn close_idle(&self) {
        self.clients.warm.close_api(&self.api_id);
    }
}

/// Entry points for the fuzz targets (fuzz/targets.rs) into parsers that are otherwise private.
#[doc(hidden)]
pub mod fuzzing {
    use crate::security::jaas::{JaasConfig, LoginModule};

    /// Parses a `sasl.jaas.config` line and matches it to its login module, as loading an API does.
    pub fn jaas(text: &str) {
        if let Ok(config) = JaasConfig::parse(text) {
            let _ = LoginModule::from_jaas(&config);
        }
    }
}
