//! Message ids and cursors (DESIGN 4.4): `topic@partition#offset` for one message, and
//! `t1@p#o,p#o;t2@p#o` for a position across partitions; base64 (standard, padded) unless the
//! consumer's `encodeMessageId` is false. An offset names the last delivered record; -1 names the
//! position before a partition's first record.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use std::collections::BTreeMap;

/// The last delivered offset of each listed partition, by topic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursor {
    pub positions: BTreeMap<String, BTreeMap<i32, i64>>,
}

/// Why a cursor was refused; the text goes to the client as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    #[error("Invalid cursor: not valid base64")]
    NotBase64,
    #[error("Invalid cursor: not valid UTF-8")]
    NotUtf8,
    #[error("Invalid cursor `{0}`: expected <topic>@<partition>#<offset>[,<partition>#<offset>…][;<topic>@…]")]
    Malformed(String),
}

/// The id of one consumed record.
pub fn message_id(topic: &str, partition: i32, offset: i64, encode: bool) -> String {
    let plain = format!("{topic}@{partition}#{offset}");
    if encode {
        STANDARD.encode(plain)
    } else {
        plain
    }
}

/// What Kafka accepts as a topic name: 1 to 249 of `a-z A-Z 0-9 . _ -`. A cursor naming anything
/// else could not name a topic (found by the cursor fuzz target: a name with control characters
/// did not survive a render and parse).
fn is_topic_name(name: &str) -> bool {
    (1..=249).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl Cursor {
    /// Parses a cursor as a client sent it.
    pub fn parse(text: &str, encoded: bool) -> Result<Cursor, CursorError> {
        let decoded;
        let plain = if encoded {
            let bytes = STANDARD.decode(text.trim()).map_err(|_| CursorError::NotBase64)?;
            decoded = String::from_utf8(bytes).map_err(|_| CursorError::NotUtf8)?;
            decoded.as_str()
        } else {
            text.trim()
        };
        let malformed = || CursorError::Malformed(plain.chars().take(200).collect());
        let mut cursor = Cursor::default();
        for topic_part in plain.split(';').filter(|part| !part.is_empty()) {
            // Topic names cannot hold '@', so the last one separates topic and positions.
            let (topic, partitions) = topic_part.rsplit_once('@').ok_or_else(malformed)?;
            if !is_topic_name(topic) || partitions.is_empty() {
                return Err(malformed());
            }
            let positions = cursor.positions.entry(topic.to_string()).or_default();
            for position in partitions.split(',') {
                let (partition, offset) = position.split_once('#').ok_or_else(malformed)?;
                let partition: i32 = partition.parse().map_err(|_| malformed())?;
                let offset: i64 = offset.parse().map_err(|_| malformed())?;
                // -1: before the partition's first record (a position kafka-edge hands out for a
                // partition nothing was read from yet). The largest offset has no next one to
                // resume at.
                if partition < 0 || offset < -1 || offset == i64::MAX {
                    return Err(malformed());
                }
                positions.insert(partition, offset);
            }
        }
        if cursor.positions.is_empty() {
            return Err(malformed());
        }
        Ok(cursor)
    }

    /// Renders the cursor, encoded or not.
    pub fn render(&self, encode: bool) -> String {
        let plain = self
            .positions
            .iter()
            .map(|(topic, partitions)| {
                let positions: Vec<String> = partitions.iter().map(|(p, o)| format!("{p}#{o}")).collect();
                format!("{topic}@{}", positions.join(","))
            })
            .collect::<Vec<_>>()
            .join(";");
        if encode {
            STANDARD.encode(plain)
        } else {
            plain
        }
    }

    /// The offset to resume `topic`/`partition` at, if the cursor names it.
    pub fn resume_offset(&self, topic: &str, partition: i32) -> Option<i64> {
        self.positions.get(topic)?.get(&partition).map(|offset| offset + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_topic_kafka_would_not_accept_is_refused() {
        for text in [";\r\r'\u{1a} \r#fit@2#0", "a b@0#1", "caf\u{e9}@0#1", &format!("{}@0#1", "t".repeat(250))] {
            assert!(matches!(Cursor::parse(text, false), Err(CursorError::Malformed(_))), "{text:?}");
        }
        assert!(Cursor::parse(&format!("{}@0#1", "t".repeat(249)), false).is_ok());
        assert!(Cursor::parse("orders.v2_eu-1@0#1", false).is_ok());
    }

    #[test]
    fn a_position_without_a_next_offset_is_refused() {
        // Found with the cursor fuzz target: resuming after it overflowed.
        assert!(matches!(Cursor::parse("orders@0#9223372036854775807", false), Err(CursorError::Malformed(_))));
        let last = Cursor::parse("orders@0#9223372036854775806", false).expect("valid");
        assert_eq!(last.resume_offset("orders", 0), Some(i64::MAX));
    }

    #[test]
    fn message_ids_match_gravitee() {
        assert_eq!(message_id("test-topic", 0, 0, true), "dGVzdC10b3BpY0AwIzA=");
        assert_eq!(message_id("test-topic", 0, 1, true), "dGVzdC10b3BpY0AwIzE=");
        assert_eq!(message_id("test-topic", 0, 1, false), "test-topic@0#1");
    }

    #[test]
    fn a_message_id_is_a_cursor() {
        let cursor = Cursor::parse("dGVzdC10b3BpY0AwIzI=", true).unwrap();
        assert_eq!(cursor.resume_offset("test-topic", 0), Some(3));
        assert_eq!(cursor.resume_offset("test-topic", 1), None);
    }

    #[test]
    fn multi_topic_cursor_from_the_seed() {
        let cursor = Cursor::parse("topic1@0#1;anotherTopic@1#10", false).unwrap();
        assert_eq!(cursor.resume_offset("topic1", 0), Some(2));
        assert_eq!(cursor.resume_offset("anotherTopic", 1), Some(11));
        let cursor = Cursor::parse("my-topic@1#0,2#0", false).unwrap();
        assert_eq!(cursor.render(false), "my-topic@1#0,2#0");
    }

    #[test]
    fn minus_one_is_the_position_before_the_first_record() {
        let cursor = Cursor::parse("topic@0#-1", false).expect("valid");
        assert_eq!(cursor.resume_offset("topic", 0), Some(0));
        assert_eq!(cursor.render(false), "topic@0#-1");
    }

    #[test]
    fn malformed_cursors_are_refused_with_the_reason() {
        assert_eq!(Cursor::parse("%%%", true), Err(CursorError::NotBase64));
        assert!(matches!(Cursor::parse("topic", false), Err(CursorError::Malformed(_))));
        assert!(matches!(Cursor::parse("topic@x#1", false), Err(CursorError::Malformed(_))));
        assert!(matches!(Cursor::parse("topic@0#-2", false), Err(CursorError::Malformed(_))));
        assert!(matches!(Cursor::parse("", false), Err(CursorError::Malformed(_))));
        assert!(matches!(Cursor::parse("@0#1", false), Err(CursorError::Malformed(_))));
    }

    proptest! {
        #[test]
        fn render_then_parse_is_identity(
            positions in proptest::collection::btree_map(
                "[a-zA-Z0-9._-]{1,20}",
                proptest::collection::btree_map(0i32..1000, 0i64..i64::MAX, 1..5),
                1..4),
            encode in any::<bool>())
        {
            let cursor = Cursor { positions };
            prop_assert_eq!(Cursor::parse(&cursor.render(encode), encode).unwrap(), cursor);
        }

        #[test]
        fn parsing_never_panics(text in ".*", encode in any::<bool>()) {
            let _ = Cursor::parse(&text, encode);
        }
    }
}
