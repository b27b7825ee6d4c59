//! librdkafka errors → the endpoint failures clients see (DESIGN 4.6). Messages name the problem
//! but never echo configuration values, so no secret can leak through them.

use kafka_edge_message::{EndpointFailure, FailureKind};
use rdkafka::client::{Client, ClientContext};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use std::time::Duration;

/// How long a new client may take to get a first answer from its cluster.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Asks the cluster for the metadata of `topic`: proves that the bootstrap servers answer and
/// accept our credentials before a request waits on them. Blocking: call off the async threads.
pub(crate) fn probe_cluster<C: ClientContext>(client: &Client<C>, topic: &str) -> Result<(), EndpointFailure> {
    let topic = (!topic.is_empty()).then_some(topic);
    client.fetch_metadata(topic, PROBE_TIMEOUT).map(|_| ()).map_err(|error| {
        let failure = classify_connection_error(&error, false).unwrap_or_else(|| {
            EndpointFailure::configuration_invalid("no Kafka broker answered at the bootstrap servers")
        });
        tracing::warn!(%error, "Kafka cluster probe failed.");
        failure
    })
}

/// `checkTopicExistence`: the topic must be known to the cluster. Blocking.
pub(crate) fn check_topic_exists<C: ClientContext>(client: &Client<C>, topic: &str) -> Result<(), EndpointFailure> {
    let metadata = client
        .fetch_metadata(Some(topic), PROBE_TIMEOUT)
        .map_err(|error| classify_connection_error(&error, true).unwrap_or_else(|| unknown(&error)))?;
    let exists =
        metadata.topics().iter().any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty());
    if exists {
        Ok(())
    } else {
        tracing::info!(topic, "Subscribed topic does not exist (checkTopicExistence).");
        Err(EndpointFailure::configuration_invalid(format!("topic `{topic}` does not exist")))
    }
}

/// librdkafka's own log lines, at debug level: it repeats connection errors on every retry, and
/// the endpoint reports each classified failure once itself.
pub(crate) fn log_librdkafka(level: RDKafkaLogLevel, facility: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical => {
            tracing::error!(target: "librdkafka", facility, "{message}")
        }
        _ => tracing::debug!(target: "librdkafka", facility, "{message}"),
    }
}

/// Whether an error means the cluster cannot be reached or refuses us, and how to call it given
/// whether this client ever got an answer from the cluster.
pub(crate) fn classify_connection_error(error: &KafkaError, ever_connected: bool) -> Option<EndpointFailure> {
    let code = error.rdkafka_error_code()?;
    match code {
        RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed => {
            Some(EndpointFailure::configuration_invalid("authentication with the Kafka cluster failed"))
        }
        RDKafkaErrorCode::SSL => {
            Some(EndpointFailure::configuration_invalid("TLS handshake with the Kafka cluster failed"))
        }
        RDKafkaErrorCode::Resolve if !ever_connected => {
            Some(EndpointFailure::configuration_invalid("a bootstrap server name does not resolve"))
        }
        RDKafkaErrorCode::AllBrokersDown if ever_connected => Some(EndpointFailure::new(
            FailureKind::ConnectionClosed,
            "Endpoint connection closed: all Kafka brokers are down",
        )),
        RDKafkaErrorCode::AllBrokersDown => {
            Some(EndpointFailure::configuration_invalid("no Kafka broker is reachable at the bootstrap servers"))
        }
        _ => None,
    }
}

/// Any other error: unknown, with librdkafka's description of the code (no configuration values).
pub(crate) fn unknown(error: &KafkaError) -> EndpointFailure {
    let detail = match error.rdkafka_error_code() {
        Some(code) => code.to_string(),
        None => "Kafka client error".to_string(),
    };
    EndpointFailure::new(FailureKind::Unknown, format!("Endpoint unknown error: {detail}"))
}

/// A client-creation error, fit for a log line: librdkafka's description of a refused property
/// quotes its value, which may be a password or a private key, so only the property is named.
pub(crate) fn creation_error(error: &KafkaError) -> String {
    match error {
        KafkaError::ClientConfig(_, _, property, _) => format!("the property `{property}` was refused"),
        other => other.to_string(),
    }
}
