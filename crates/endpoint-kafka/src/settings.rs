//! The configuration one request actually uses: the definition's values, with the request's
//! `gravitee.attribute.kafka.*` attributes applied (DESIGN 4.2), checked, and turned into
//! librdkafka properties.

use kafka_edge_definition::{
    AutoOffsetReset, CompressionType, Dynamic, Endpoint as EndpointDefinition, SecurityProtocol,
};
use kafka_edge_message::{EndpointFailure, ExecutionContext, FailureKind};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

pub const ATTR_GROUP_ID: &str = "gravitee.attribute.kafka.groupId";
pub const ATTR_RECORD_KEY: &str = "gravitee.attribute.kafka.recordKey";
pub const ATTR_PRODUCER_TOPICS: &str = "gravitee.attribute.kafka.producer.topics";
pub const ATTR_CONSUMER_TOPICS: &str = "gravitee.attribute.kafka.consumer.topics";
pub const ATTR_TOPICS_DEPRECATED: &str = "gravitee.attribute.kafka.topics";

/// The librdkafka properties that identify a connection: clients with equal ones can be shared.
pub type ConnectionProperties = BTreeMap<&'static str, String>;

/// Resolves the definition's values for one request.
#[derive(Debug)]
pub(crate) struct Resolver {
    definition: EndpointDefinition,
    api_id: String,
    deprecation_logged: AtomicBool,
}

/// What a publish needs.
#[derive(Debug)]
pub(crate) struct ProducerSettings {
    pub connection: ConnectionProperties,
    pub topics: Vec<String>,
    pub compression: CompressionType,
}

/// What a subscription needs.
#[derive(Debug)]
pub(crate) struct ConsumerSettings {
    pub connection: ConnectionProperties,
    pub topics: Vec<String>,
    pub group_id: String,
    pub auto_offset_reset: AutoOffsetReset,
    pub encode_message_id: bool,
    pub remove_confluent_header: bool,
}

impl Resolver {
    pub fn new(api_id: &str, definition: EndpointDefinition) -> Self {
        Self { definition, api_id: api_id.to_string(), deprecation_logged: AtomicBool::new(false) }
    }

    pub fn encode_message_id(&self) -> bool {
        self.definition.shared_configuration.consumer.encode_message_id
    }

    fn connection(&self) -> Result<ConnectionProperties, EndpointFailure> {
        let shared = &self.definition.shared_configuration;
        let protocol = static_value(&shared.security.protocol, "security.protocol", &self.api_id)?;
        if protocol != SecurityProtocol::Plaintext {
            return Err(invalid_configuration("security.protocol", &self.api_id));
        }
        let mut properties = ConnectionProperties::new();
        properties.insert("bootstrap.servers", self.definition.configuration.bootstrap_servers.clone());
        properties.insert("security.protocol", "plaintext".into());
        Ok(properties)
    }

    pub fn producer(&self, context: &ExecutionContext) -> Result<ProducerSettings, EndpointFailure> {
        let producer = &self.definition.shared_configuration.producer;
        let topics = context
            .attributes
            .get(ATTR_PRODUCER_TOPICS)
            .or_else(|| self.deprecated_topics(context))
            .map(|value| split_list(value))
            .unwrap_or_else(|| producer.topics.clone());
        Ok(ProducerSettings {
            connection: self.connection()?,
            topics,
            compression: static_value(&producer.compression_type, "producer.compressionType", &self.api_id)?,
        })
    }

    pub fn consumer(&self, context: &ExecutionContext) -> Result<ConsumerSettings, EndpointFailure> {
        let consumer = &self.definition.shared_configuration.consumer;
        let topics = context
            .attributes
            .get(ATTR_CONSUMER_TOPICS)
            .or_else(|| self.deprecated_topics(context))
            .map(|value| split_list(value))
            .unwrap_or_else(|| consumer.topics.clone());
        if topics.is_empty() {
            return Err(invalid_configuration("consumer.topics", &self.api_id));
        }
        let group_id = context
            .attributes
            .get(ATTR_GROUP_ID)
            .filter(|group| !group.trim().is_empty())
            .cloned()
            .unwrap_or_else(|| context.client_identifier.clone());
        Ok(ConsumerSettings {
            connection: self.connection()?,
            topics,
            group_id,
            auto_offset_reset: static_value(&consumer.auto_offset_reset, "consumer.autoOffsetReset", &self.api_id)?,
            encode_message_id: consumer.encode_message_id,
            remove_confluent_header: consumer.remove_confluent_header,
        })
    }

    fn deprecated_topics<'a>(&self, context: &'a ExecutionContext) -> Option<&'a String> {
        let value = context.attributes.get(ATTR_TOPICS_DEPRECATED)?;
        if !self.deprecation_logged.swap(true, Ordering::Relaxed) {
            tracing::warn!(api = %self.api_id, attribute = ATTR_TOPICS_DEPRECATED,
                "Deprecated attribute used; set gravitee.attribute.kafka.producer.topics or gravitee.attribute.kafka.consumer.topics instead.");
        }
        Some(value)
    }
}

/// A comma-separated attribute value as a list, trimmed, without empty entries.
pub(crate) fn split_list(value: &str) -> Vec<String> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
}

fn static_value<T: Copy>(value: &Dynamic<T>, path: &str, api_id: &str) -> Result<T, EndpointFailure> {
    value.as_static().copied().ok_or_else(|| invalid_configuration(path, api_id))
}

/// DESIGN 4.1: a value that cannot be used at request time ends the request with a 500.
fn invalid_configuration(path: &str, api_id: &str) -> EndpointFailure {
    tracing::warn!(api = %api_id, path, "Invalid configuration at request time.");
    EndpointFailure::new(FailureKind::InvalidDynamicConfiguration, "Invalid configuration")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_split_on_commas_and_trimmed() {
        assert_eq!(split_list("test-topic-message-attribute, another-topic-override"), vec!["test-topic-message-attribute", "another-topic-override"]);
        assert_eq!(split_list(" , a,,b "), vec!["a", "b"]);
    }
}
