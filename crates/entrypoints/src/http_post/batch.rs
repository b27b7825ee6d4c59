//! http-post's batch format, a kafka-edge extension: a body in the v2 produce format of the Strimzi
//! Kafka HTTP Bridge and Confluent REST Proxy (`application/vnd.kafka.json.v2+json` or
//! `application/vnd.kafka.binary.v2+json`, `{"records":[{"key"?, "value", "partition"?,
//! "headers"?}]}`), so that their clients can move over unchanged. Each element becomes its own
//! message, through the publish flow, and the answer lists where each record landed, in order.

use crate::EntrypointContext;
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use futures::stream::{self, StreamExt};
use http::{header, HeaderMap, StatusCode};
use kafka_edge_message::{EndpointFailure, FailureKind, Message, RecordChoice, RecordPosition};
use serde::Deserialize;
use serde_json::{json, Value};

/// Records of one batch handed to the producer at a time: far below librdkafka's queue (100,000
/// messages), so queueing keeps the body's order, and a huge body does not start a future per
/// record at once.
const IN_FLIGHT: usize = 1024;

/// The content type of the answer, as the bridge and the REST Proxy send it.
pub const RESPONSE_CONTENT_TYPE: &str = "application/vnd.kafka.v2+json";

/// How keys and values are written in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    /// Any JSON value; the record holds its compact JSON text (`"v2"` becomes the 4 bytes `"v2"`).
    Json,
    /// Base64 strings; the record holds the decoded bytes.
    Binary,
}

impl Format {
    /// The batch format a request's `Content-Type` names, if any (parameters are ignored).
    pub(super) fn of(headers: &HeaderMap) -> Option<Format> {
        let content_type = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
        let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        match essence.as_str() {
            "application/vnd.kafka.json.v2+json" => Some(Format::Json),
            "application/vnd.kafka.binary.v2+json" => Some(Format::Binary),
            _ => None,
        }
    }
}

/// The REST Proxy's schema fields serve its Avro, JSON Schema and Protobuf formats: accepted
/// and not used here; any other unknown field is a problem.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    records: Vec<Value>,
    #[serde(default, rename = "key_schema")]
    _key_schema: Option<Value>,
    #[serde(default, rename = "key_schema_id")]
    _key_schema_id: Option<Value>,
    #[serde(default, rename = "value_schema")]
    _value_schema: Option<Value>,
    #[serde(default, rename = "value_schema_id")]
    _value_schema_id: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    #[serde(default)]
    key: Option<Value>,
    value: Value,
    #[serde(default, deserialize_with = "partition")]
    partition: Option<i32>,
    /// Milliseconds since the epoch; the producer's clock when absent.
    #[serde(default)]
    timestamp: Option<i64>,
    #[serde(default)]
    headers: Vec<Header>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    key: String,
    /// Base64 of the value's bytes (`format: byte` in the bridge's OpenAPI).
    #[serde(default)]
    value: Option<String>,
}

/// Publishes every element and answers 200 with their positions (or per-element errors), once
/// every record is acknowledged; a body that is not a list of records is a 400 naming what is
/// wrong, and nothing is published.
pub(super) async fn handle(
    format: Format,
    request_headers_to_message: bool,
    context: EntrypointContext,
    body: Bytes,
) -> Response {
    let messages = match parse(format, &body) {
        Ok(messages) => messages,
        Err(problem) => return invalid(&problem),
    };
    let publish = |mut message: Message| {
        if request_headers_to_message {
            let mut headers = context.execution.request.headers.clone();
            for (name, value) in message.headers.iter() {
                headers.append(name, value);
            }
            message.headers = headers;
        }
        crate::trace::carry(&context.execution.request.headers, &mut message);
        let context = &context;
        async move { context.endpoint.publish(&context.execution, message).await }
    };
    // The first one alone creates the producer if needed; the others are then queued in order (at
    // most IN_FLIGHT at a time), so records for one partition keep the body's order, and go out
    // in librdkafka's batches. A cluster the first could not reach fails the rest unsent.
    let mut messages = messages.into_iter();
    let mut results = Vec::with_capacity(messages.len());
    if let Some(first) = messages.next() {
        let first = publish(first).await;
        let unreachable = first.as_ref().err().filter(|failure| {
            matches!(failure.kind, FailureKind::ConfigurationInvalid | FailureKind::ConnectionClosed)
        });
        let rest: Vec<_> = match unreachable.cloned() {
            Some(failure) => messages.map(|_| Err(failure.clone())).collect(),
            None => stream::iter(messages).map(publish).buffered(IN_FLIGHT).collect().await,
        };
        results.push(first);
        results.extend(rest);
    }
    let offsets: Vec<Value> = results.iter().map(entry).collect();
    (StatusCode::OK, [(header::CONTENT_TYPE, RESPONSE_CONTENT_TYPE)], json!({ "offsets": offsets }).to_string())
        .into_response()
}

/// A body that is not a batch: nothing was published. The error carries both the gateway's
/// fields and the bridge's (`error_code`), so either kind of client reads it.
fn invalid(problem: &str) -> Response {
    let status = StatusCode::BAD_REQUEST;
    let message = format!("Invalid batch: {problem}");
    let body = json!({"error_code": status.as_u16(), "message": message, "http_status_code": status.as_u16()});
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// One element of the answer: where the record landed (its first topic's record when the API
/// produces to several), or why it was not published.
fn entry(result: &Result<Vec<RecordPosition>, EndpointFailure>) -> Value {
    match result {
        Ok(positions) => match positions.first() {
            Some(position) => json!({"partition": position.partition, "offset": position.offset}),
            None => json!({"error_code": 500, "message": "the record was not produced to any topic"}),
        },
        Err(failure) => json!({"error_code": failure.kind.http_status(), "message": failure.message}),
    }
}

/// The body's elements as messages, or the first problem, naming its element.
fn parse(format: Format, body: &[u8]) -> Result<Vec<Message>, String> {
    let body: Body = serde_json::from_slice(body).map_err(|error| match error.classify() {
        serde_json::error::Category::Data => format!("expected {{\"records\": [...]}}: {error}"),
        _ => format!("not JSON: {error}"),
    })?;
    body.records.into_iter().enumerate().map(|(index, element)| message(format, index, element)).collect()
}

fn message(format: Format, index: usize, element: Value) -> Result<Message, String> {
    let at = |field: &str| format!("records[{index}]{field}");
    let record: Record = serde_json::from_value(element).map_err(|error| format!("{}: {error}", at("")))?;
    let value = bytes_of(format, record.value, &at(".value"))?;
    let key = match record.key {
        None | Some(Value::Null) => None,
        Some(key) => Some(bytes_of(format, key, &at(".key"))?),
    };
    let mut message = Message::new(value);
    message.record = RecordChoice { key, partition: record.partition, timestamp: record.timestamp };
    for (h, header) in record.headers.into_iter().enumerate() {
        let path = at(&format!(".headers[{h}].value"));
        let bytes = match header.value {
            Some(encoded) => STANDARD.decode(encoded.trim()).map_err(|_| format!("{path}: not base64"))?,
            None => Vec::new(),
        };
        let text = String::from_utf8(bytes).map_err(|_| format!("{path}: not UTF-8 once decoded"))?;
        message.headers.append(header.key, text);
    }
    Ok(message)
}

/// A partition is a number from 0 (librdkafka reads -1 as "let the partitioner choose").
fn partition<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<i32>, D::Error> {
    match Option::<i32>::deserialize(deserializer)? {
        Some(partition) if partition < 0 => {
            Err(serde::de::Error::custom(format!("invalid partition {partition}, expected 0 or more")))
        }
        partition => Ok(partition),
    }
}

fn bytes_of(format: Format, value: Value, path: &str) -> Result<Bytes, String> {
    match (format, value) {
        (Format::Json, value) => Ok(Bytes::from(value.to_string())),
        (Format::Binary, Value::String(encoded)) => {
            STANDARD.decode(encoded.trim()).map(Bytes::from).map_err(|_| format!("{path}: not base64"))
        }
        (Format::Binary, _) => Err(format!("{path}: expected a base64 string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_keys_and_values_become_their_compact_json_text() {
        let body = br#"{"records":[{"key":"k1","value":{"a": [1, 2]}},{"value":"v2","partition":0}]}"#;
        let messages = parse(Format::Json, body).expect("valid");
        assert_eq!(messages[0].content.as_ref(), br#"{"a":[1,2]}"#);
        assert_eq!(messages[0].record.key.as_deref(), Some(br#""k1""#.as_slice()));
        assert_eq!(messages[1].content.as_ref(), br#""v2""#);
        assert_eq!(messages[1].record, RecordChoice { key: None, partition: Some(0), timestamp: None });
    }

    #[test]
    fn binary_keys_values_and_header_values_are_base64() {
        let body = br#"{"records":[{"key":"a2V5","value":"AAEC/w==","headers":[{"key":"h","value":"aGk="}]}]}"#;
        let messages = parse(Format::Binary, body).expect("valid");
        assert_eq!(messages[0].content.as_ref(), [0u8, 1, 2, 255]);
        assert_eq!(messages[0].record.key.as_deref(), Some(b"key".as_slice()));
        assert_eq!(messages[0].headers.iter().collect::<Vec<_>>(), [("h", "hi")]);
    }

    #[test]
    fn problems_name_the_element() {
        let problem = |body: &str, format| parse(format, body.as_bytes()).expect_err("a problem");
        assert!(
            problem(r#"{"records":[{"value":"eA=="},{"value":1}]}"#, Format::Binary).starts_with("records[1].value")
        );
        assert!(problem(r#"{"records":[{"value":"x","headers":[{"key":"h","value":"%%"}]}]}"#, Format::Json)
            .starts_with("records[0].headers[0].value: not base64"));
        assert!(problem(r#"{"records":[{"key":"k"}]}"#, Format::Json).contains("missing field `value`"));
        assert!(problem(r#"{"records":[{"value":1,"offset":3}]}"#, Format::Json).contains("unknown field `offset`"));
        assert!(problem(r#"{"records":[{"value":1,"partition":-1}]}"#, Format::Json).contains("invalid partition -1"));
        assert!(problem(r#"{"records":[],"extra":1}"#, Format::Json).contains("unknown field `extra`"));
        assert!(parse(Format::Json, br#"{"records":[],"value_schema":"{}"}"#).is_ok_and(|m| m.is_empty()));
        assert!(problem("[1]", Format::Json).starts_with("expected {\"records\": [...]}"));
        assert!(problem("{", Format::Json).starts_with("not JSON"));
    }
}
