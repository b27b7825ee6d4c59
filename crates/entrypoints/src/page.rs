//! http-get bodies in the three formats of DESIGN 5.2 (Gravitee's exact shapes).

use crate::accept::BodyFormat;
use crate::trace;
use kafka_edge_message::{EndpointFailure, Message};
use serde_json::{json, Map, Value};
use std::fmt::Write;

/// Everything one http-get response shows.
pub struct Page<'a> {
    pub items: &'a [Message],
    pub error: Option<&'a EndpointFailure>,
    pub next_cursor: Option<&'a str>,
    /// The `limit` query parameter as the client gave it.
    pub limit: Option<&'a str>,
    pub headers_in_payload: bool,
    pub metadata_in_payload: bool,
}

/// An error shown inside the body: a message-shaped object with the failure key as metadata.
struct ErrorItem<'a> {
    id: String,
    failure: &'a EndpointFailure,
}

impl Page<'_> {
    pub fn render(&self, format: BodyFormat) -> String {
        let error = self.error.map(|failure| ErrorItem { id: uuid::Uuid::new_v4().to_string(), failure });
        match format {
            BodyFormat::Json => self.json(error.as_ref()),
            BodyFormat::Xml => self.xml(error.as_ref()),
            BodyFormat::Text => self.text(error.as_ref()),
        }
    }

    fn json(&self, error: Option<&ErrorItem<'_>>) -> String {
        let mut body = Map::new();
        body.insert("items".into(), Value::Array(self.items.iter().map(|m| self.json_item(m)).collect()));
        if let Some(error) = error {
            body.insert(
                "error".into(),
                json!({"id": error.id, "content": error.failure.message, "metadata": {"key": error.failure.kind.key()}}),
            );
        }
        if let Some(cursor) = self.next_cursor {
            let mut pagination = Map::new();
            pagination.insert("nextCursor".into(), cursor.into());
            if let Some(limit) = self.limit {
                pagination.insert("limit".into(), limit.into());
            }
            body.insert("pagination".into(), Value::Object(pagination));
        }
        Value::Object(body).to_string()
    }

    /// The headers an item shows: every header with `headersInPayload`, else only the trace
    /// context, so that a client can continue the trace of what it reads.
    fn shown_headers<'m>(&self, message: &'m Message) -> Vec<(&'m str, Vec<&'m str>)> {
        let grouped = message.headers.grouped();
        if self.headers_in_payload {
            return grouped;
        }
        grouped.into_iter().filter(|(name, _)| trace::is_trace_header(name)).collect()
    }

    fn json_item(&self, message: &Message) -> Value {
        let mut item = Map::new();
        if let Some(id) = &message.id {
            item.insert("id".into(), id.clone().into());
        }
        item.insert("content".into(), String::from_utf8_lossy(&message.content).into());
        let shown = self.shown_headers(message);
        if self.headers_in_payload || !shown.is_empty() {
            let headers: Map<String, Value> = shown
                .into_iter()
                .map(|(name, values)| (name.to_string(), values.into_iter().map(Value::from).collect()))
                .collect();
            item.insert("headers".into(), Value::Object(headers));
        }
        if self.metadata_in_payload {
            if let Some(metadata) = &message.metadata {
                let mut fields = Map::new();
                if let Some(key) = &metadata.key {
                    fields.insert("key".into(), key.clone().into());
                }
                fields.insert("topic".into(), metadata.topic.clone().into());
                fields.insert("partition".into(), metadata.partition.into());
                fields.insert("offset".into(), metadata.offset.into());
                if let Some(timestamp) = metadata.source_timestamp {
                    fields.insert("sourceTimestamp".into(), timestamp.into());
                }
                item.insert("metadata".into(), Value::Object(fields));
            }
        }
        Value::Object(item)
    }

    fn xml(&self, error: Option<&ErrorItem<'_>>) -> String {
        let mut out = String::from("<response><items>");
        for message in self.items {
            out.push_str("<item>");
            if let Some(id) = &message.id {
                let _ = write!(out, "<id>{}</id>", escape_xml(id));
            }
            let _ = write!(out, "<content>{}</content>", cdata(&String::from_utf8_lossy(&message.content)));
            let shown = self.shown_headers(message);
            if self.headers_in_payload || !shown.is_empty() {
                out.push_str("<headers>");
                for (name, values) in shown {
                    let name = xml_name(name);
                    let _ = write!(out, "<{name}>{}</{name}>", escape_xml(&values.join(",")));
                }
                out.push_str("</headers>");
            }
            if self.metadata_in_payload {
                if let Some(metadata) = &message.metadata {
                    out.push_str("<metadata>");
                    for (name, value) in metadata.entries() {
                        let _ = write!(out, "<{name}>{}</{name}>", escape_xml(&value));
                    }
                    out.push_str("</metadata>");
                }
            }
            out.push_str("</item>");
        }
        out.push_str("</items>");
        if let Some(error) = error {
            let _ = write!(
                out,
                "<error><id>{}</id><content>{}</content><metadata><key>{}</key></metadata></error>",
                escape_xml(&error.id),
                cdata(&error.failure.message),
                error.failure.kind.key()
            );
        }
        if let Some(cursor) = self.next_cursor {
            let _ = write!(out, "<pagination><nextCursor>{}</nextCursor>", escape_xml(cursor));
            if let Some(limit) = self.limit {
                let _ = write!(out, "<limit>{}</limit>", escape_xml(limit));
            }
            out.push_str("</pagination>");
        }
        out.push_str("</response>");
        out
    }

    fn text(&self, error: Option<&ErrorItem<'_>>) -> String {
        let mut out = String::from("items\n");
        for (index, message) in self.items.iter().enumerate() {
            if index > 0 {
                out.push('\n');
            }
            out.push_str("item\n");
            if let Some(id) = &message.id {
                let _ = writeln!(out, "id: {id}");
            }
            let _ = writeln!(out, "content: {}", String::from_utf8_lossy(&message.content));
            let shown = self.shown_headers(message);
            if self.headers_in_payload || !shown.is_empty() {
                let headers: Vec<String> =
                    shown.into_iter().map(|(name, values)| format!("{name}=[{}]", values.join(", "))).collect();
                let _ = writeln!(out, "headers: {{{}}}", headers.join(", "));
            }
            if self.metadata_in_payload {
                if let Some(metadata) = &message.metadata {
                    let fields: Vec<String> =
                        metadata.entries().into_iter().map(|(name, value)| format!("{name}={value}")).collect();
                    let _ = writeln!(out, "metadata: {{{}}}", fields.join(", "));
                }
            }
        }
        if let Some(error) = error {
            let _ = write!(
                out,
                "\nerror\nid: {}\ncontent: {}\nmetadata: {{key={}}}\n",
                error.id,
                error.failure.message,
                error.failure.kind.key()
            );
        }
        if let Some(cursor) = self.next_cursor {
            let _ = write!(out, "\npagination\nnextCursor: {cursor}");
            if let Some(limit) = self.limit {
                let _ = write!(out, "\nlimit: {limit}");
            }
        }
        out
    }
}

fn escape_xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Content in a CDATA section; a `]]>` inside it is split across two sections.
fn cdata(text: &str) -> String {
    format!("<![CDATA[{}]]>", text.replace("]]>", "]]]]><![CDATA[>"))
}

/// A header name as an XML element name: characters XML does not allow become `_`.
fn xml_name(name: &str) -> String {
    let mut out: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' }).collect();
    if !out.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        out.insert(0, '_');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_edge_message::{FailureKind, Headers, Metadata};

    fn message(id: &str, content: &str) -> Message {
        let mut headers = Headers::new();
        headers.append("X-My-Header-1", "headerValue1");
        Message {
            id: Some(id.into()),
            content: content.to_string().into(),
            headers,
            metadata: Some(Metadata { key: None, topic: "t".into(), partition: 0, offset: 7, source_timestamp: None }),
            ..Default::default()
        }
    }

    fn page<'a>(items: &'a [Message], error: Option<&'a EndpointFailure>) -> Page<'a> {
        Page {
            items,
            error,
            next_cursor: Some("2"),
            limit: Some("2"),
            headers_in_payload: false,
            metadata_in_payload: false,
        }
    }

    #[test]
    fn json_matches_gravitee_shapes() {
        let items = [message("1", "{\"foo\": \"1\"}"), message("2", "2")];
        assert_eq!(
            page(&items, None).render(BodyFormat::Json),
            r#"{"items":[{"id":"1","content":"{\"foo\": \"1\"}"},{"id":"2","content":"2"}],"pagination":{"nextCursor":"2","limit":"2"}}"#
        );
        let empty = Page {
            items: &[],
            error: None,
            next_cursor: None,
            limit: None,
            headers_in_payload: false,
            metadata_in_payload: false,
        };
        assert_eq!(empty.render(BodyFormat::Json), r#"{"items":[]}"#);
    }

    #[test]
    fn json_error_carries_the_failure_key() {
        let failure = EndpointFailure::new(FailureKind::ConfigurationInvalid, "Endpoint configuration invalid");
        let body: Value = serde_json::from_str(&page(&[], Some(&failure)).render(BodyFormat::Json)).unwrap();
        assert_eq!(body["error"]["metadata"]["key"], "FAILURE_ENDPOINT_CONFIGURATION_INVALID");
        assert_eq!(body["items"], json!([]));
    }

    #[test]
    fn xml_uses_cdata_and_joins_header_values() {
        let items = [message("1", "a]]>b")];
        let mut page = page(&items, None);
        page.headers_in_payload = true;
        page.metadata_in_payload = true;
        assert_eq!(
            page.render(BodyFormat::Xml),
            "<response><items><item><id>1</id><content><![CDATA[a]]]]><![CDATA[>b]]></content><headers><X-My-Header-1>headerValue1</X-My-Header-1></headers><metadata><topic>t</topic><partition>0</partition><offset>7</offset></metadata></item></items><pagination><nextCursor>2</nextCursor><limit>2</limit></pagination></response>"
        );
    }

    #[test]
    fn text_matches_gravitee_layout() {
        let items = [message("1", "1"), message("2", "2")];
        let mut page = page(&items, None);
        page.headers_in_payload = true;
        assert_eq!(
            page.render(BodyFormat::Text),
            "items\nitem\nid: 1\ncontent: 1\nheaders: {X-My-Header-1=[headerValue1]}\n\nitem\nid: 2\ncontent: 2\nheaders: {X-My-Header-1=[headerValue1]}\n\npagination\nnextCursor: 2\nlimit: 2"
        );
    }
}
