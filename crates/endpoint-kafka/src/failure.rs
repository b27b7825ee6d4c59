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
/// accept our credentials before a request waits on them. Returns whether `topic` exists (true
/// for an empty name). Blocking: call off the async threads.
pub(crate) fn probe_cluster<C: ClientContext>(client: &Client<C>, topic: &str) -> Result<bool, EndpointFailure> {
    let named = (!topic.is_empty()).then_some(topic);
    let metadata = client.fetch_metadata(named, PROBE_TIMEOUT).map_err(|error| {
        tracing::debug!(%error, "Kafka cluster probe failed.");
        classify_connection_error(&error, false).unwrap_or_else(|| {
            EndpointFailure::configuration_invalid("no Kafka broker answered at the bootstrap servers")
        })
    })?;
    Ok(named.is_none_or(|topic| {
        metadata.topics().iter().any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
    }))
}

/// Whether the cluster knows `topic`, for a client that already reached it. Blocking.
pub(crate) fn topic_exists<C: ClientContext>(client: &Client<C>, topic: &str) -> Result<bool, EndpointFailure> {
    probe_cluster(client, topic).map_err(|failure| match failure.kind {
        // It answered before: a failure now is a lost connection, not a bad configuration.
        FailureKind::ConfigurationInvalid => EndpointFailure::new(FailureKind::ConnectionClosed, failure.message),
        _ => failure,
    })
}

/// `checkTopicExistence`: a request on a topic the cluster does not know fails at once.
pub(crate) fn missing_topic(topic: &str) -> EndpointFailure {
    EndpointFailure::configuration_invalid(format!("topic `{topic}` does not exist"))
}

/// librdkafka's own log lines, at debug level: it repeats connection errors on every retry, and
/// the endpoint reports each classified failure once itself. Cyrus SASL's lines (a Kerberos
/// login that failed) come at a high level on every retry too, and are in that report's reason.
pub(crate) fn log_librdkafka(level: RDKafkaLogLevel, facility: &str, message: &str) {
    match level {
        _ if facility == "LIBSASL" => tracing::debug!(target: "librdkafka", facility, "{message}"),
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
