//! `topicPattern`, matched by kafka-edge rather than by librdkafka or the broker: against the
//! cluster's topic list, with the `regex` crate, whose syntax is close to Java's `Pattern` that
//! Gravitee users write (`\d`, `\w`, `(?i)`, classes, alternations; no look-around and no
//! back-references, which it refuses at load). librdkafka would hand the pattern to POSIX `regcomp`
//! (no `\d`: such a pattern matched nothing) and KIP-848's broker to RE2/J. The consumer subscribes
//! to the matching names, and the list is looked up again every `REFRESH` so that topics created
//! later are consumed.

use crate::client::Callbacks;
use kafka_edge_message::EndpointFailure;
use rdkafka::consumer::{Consumer, StreamConsumer};
use regex::Regex;
use std::sync::Arc;
use std::time::Duration;

/// How often the topic list is looked up again.
pub(crate) const REFRESH: Duration = Duration::from_secs(5);

/// Longest wait for the topic list.
const LIST_TIMEOUT: Duration = Duration::from_secs(10);

/// A compiled `topicPattern`: it must match a topic's whole name, as Java's `Pattern.matches`.
#[derive(Debug, Clone)]
pub(crate) struct TopicPattern(Regex);

impl TopicPattern {
    /// A pattern computed at request time is checked here (one from the definition was at load).
    pub(crate) fn new(pattern: &str) -> Result<Self, EndpointFailure> {
        Regex::new(&format!("^(?:{pattern})$"))
            .map(TopicPattern)
            .map_err(|_| EndpointFailure::configuration_invalid(format!("invalid topicPattern `{pattern}`")))
    }

    /// The names of the cluster's topics that match, sorted; internal topics (`__…`) never do.
    /// Blocking: a metadata request.
    pub(crate) fn matching(&self, consumer: &StreamConsumer<Callbacks>) -> Result<Vec<String>, EndpointFailure> {
        let metadata = consumer.fetch_metadata(None, LIST_TIMEOUT).map_err(|error| {
            crate::failure::classify_connection_error(&error, false).unwrap_or_else(|| crate::failure::unknown(&error))
        })?;
        let mut names: Vec<String> = metadata
            .topics()
            .iter()
            .map(|topic| topic.name())
            .filter(|name| !name.starts_with("__") && self.0.is_match(name))
            .map(str::to_string)
            .collect();
        names.sort();
        Ok(names)
    }

    /// Looks the list up off the async threads.
    pub(crate) async fn matching_off_thread(
        &self,
        consumer: &Arc<StreamConsumer<Callbacks>>,
    ) -> Result<Vec<String>, EndpointFailure> {
        let (pattern, consumer) = (self.clone(), consumer.clone());
        tokio::task::spawn_blocking(move || pattern.matching(&consumer))
            .await
            .unwrap_or_else(|_| Err(EndpointFailure::configuration_invalid("the topic list could not be read")))
    }
}

/// Subscribes `consumer` to `topics`, or to nothing while none matches.
pub(crate) fn subscribe_to(
    consumer: &StreamConsumer<Callbacks>,
    topics: &[String],
) -> Result<(), rdkafka::error::KafkaError> {
    if topics.is_empty() {
        consumer.unsubscribe();
        return Ok(());
    }
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_style_patterns_match_whole_names() {
        let pattern = TopicPattern::new(r"orders-\d+").expect("compiles");
        assert!(pattern.0.is_match("orders-42"));
        assert!(!pattern.0.is_match("old-orders-42"), "the whole name must match");
        assert!(!pattern.0.is_match("orders-42-eu"));
        let insensitive = TopicPattern::new(r"(?i)Events\.\w+").expect("compiles");
        assert!(insensitive.0.is_match("events.signup"));
        let alternation = TopicPattern::new("a|b").expect("compiles");
        assert!(alternation.0.is_match("b") && !alternation.0.is_match("ab"), "alternatives are anchored together");
    }

    #[test]
    fn a_pattern_the_regex_crate_refuses_is_a_configuration_error() {
        let error = TopicPattern::new(r"orders-(?=eu)").expect_err("look-around is refused");
        assert!(error.message.contains("invalid topicPattern"), "{error:?}");
    }
}
