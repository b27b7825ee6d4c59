use crate::ack::AckHandle;
use bytes::Bytes;
use std::collections::HashMap;

/// Gravitee's attribute that names a message's record key (DESIGN 4.3): set on a published
/// message to choose its key; set on a dead-lettered copy to keep the consumed record's key.
pub const ATTR_RECORD_KEY: &str = "gravitee.attribute.kafka.recordKey";

/// Largest message a client may send by default (an http-post body, a WebSocket frame); the
/// gateway's `--max-message-bytes` changes it.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 8 * 1024 * 1024;

/// One message, produced by a client or consumed for one (DESIGN 1).
#[derive(Debug, Default)]
pub struct Message {
    /// Resumable id (`topic@partition#offset`, maybe base64); `None` when the QoS gives none.
    pub id: Option<String>,
    pub content: Bytes,
    pub headers: Headers,
    /// Set on consumed messages only.
    pub metadata: Option<Metadata>,
    /// Per-message attributes, e.g. `gravitee.attribute.kafka.recordKey`.
    pub attributes: HashMap<String, String>,
    /// Tells the endpoint the client received the message (QoS commit behaviour).
    pub ack: Option<AckHandle>,
    /// Published messages only: the key and partition a client chose for the record.
    pub record: RecordChoice,
}

/// What a client may choose for the record a published message becomes (http-post's batch format
/// takes these from each element). The `gravitee.attribute.kafka.recordKey` attribute, which flows
/// set, wins over `key`; without a partition the partitioner decides (DESIGN 4.3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordChoice {
    pub key: Option<Bytes>,
    pub partition: Option<i32>,
    /// Milliseconds since the epoch; the producer's clock when `None`.
    pub timestamp: Option<i64>,
}

/// Where one record of a published message landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordPosition {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

impl Message {
    pub fn new(content: impl Into<Bytes>) -> Self {
        Self { content: content.into(), ..Self::default() }
    }
}

/// Where a consumed message came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    pub key: Option<String>,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// Record timestamp, ms since the epoch, when the record has one.
    pub source_timestamp: Option<i64>,
}

impl Metadata {
    /// Name/value pairs in a stable order: key (if any), topic, partition, offset, sourceTimestamp.
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        let mut entries = Vec::with_capacity(5);
        if let Some(key) = &self.key {
            entries.push(("key", key.clone()));
        }
        entries.push(("topic", self.topic.clone()));
        entries.push(("partition", self.partition.to_string()));
        entries.push(("offset", self.offset.to_string()));
        if let Some(timestamp) = self.source_timestamp {
            entries.push(("sourceTimestamp", timestamp.to_string()));
        }
        entries
    }
}

/// Ordered, multi-valued headers. Names keep their case; lookups ignore it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    entries: Vec<(String, String)>,
}

impl Headers {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn append(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.entries.push((name.into(), value.into()));
    }

    /// Replaces every value of `name` with `value`.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        self.remove(&name);
        self.entries.push((name, value.into()));
    }

    pub fn remove(&mut self, name: &str) {
        self.entries.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    /// Keeps only the headers whose name is in `names` (compared without case).
    pub fn retain_named(&mut self, names: &[String]) {
        self.entries.retain(|(n, _)| names.iter().any(|keep| keep.eq_ignore_ascii_case(n)));
    }

    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.entries.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Names with all their values, in order of first appearance.
    pub fn grouped(&self) -> Vec<(&str, Vec<&str>)> {
        let mut grouped: Vec<(&str, Vec<&str>)> = Vec::new();
        for (name, value) in &self.entries {
            match grouped.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
                Some((_, values)) => values.push(value),
                None => grouped.push((name, vec![value])),
            }
        }
        grouped
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouped_headers_keep_first_appearance_order_and_all_values() {
        let mut headers = Headers::new();
        headers.append("B", "1");
        headers.append("a", "2");
        headers.append("b", "3");
        assert_eq!(headers.grouped(), vec![("B", vec!["1", "3"]), ("a", vec!["2"])]);
        assert_eq!(headers.get_all("A").collect::<Vec<_>>(), vec!["2"]);
    }
}
