//! What expressions see (`#request`, `#context`, `#message`, `#api`, `#properties`), built on
//! demand from the execution context and the current message: only the path an expression asks
//! for is materialized, so a per-message header lookup copies one header, not the message.

use crate::context::ExecutionContext;
use crate::message::{Headers, Message};
use kafka_edge_el::{EvalContext, Key, Value};
use std::collections::BTreeMap;

/// The expression scope of one request, and of one message in the message phases.
pub struct Scope<'a> {
    pub context: &'a ExecutionContext,
    pub message: Option<&'a Message>,
}

impl<'a> Scope<'a> {
    pub fn request(context: &'a ExecutionContext) -> Self {
        Self { context, message: None }
    }

    pub fn message(context: &'a ExecutionContext, message: &'a Message) -> Self {
        Self { context, message: Some(message) }
    }
}

impl EvalContext for Scope<'_> {
    fn resolve(&self, root: &str, path: &[Key]) -> Value {
        match root {
            "request" => self.request_value(path),
            "context" => match path.split_first() {
                Some((key, rest)) if name(key) == Some("attributes") => {
                    let structured = rest.split_first().and_then(|(attribute, below)| {
                        Some((self.context.structured_attributes.get(name(attribute)?)?, below))
                    });
                    match structured {
                        Some((value, below)) => value.navigate(below),
                        None => string_map_value(
                            self.context.attributes.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                            rest,
                        ),
                    }
                }
                _ => Value::Null,
            },
            "message" => self.message.map_or(Value::Null, |message| message_value(message, path)),
            "api" => match path.split_first().and_then(|(key, rest)| Some((name(key)?, rest))) {
                Some(("id", rest)) => Value::String(self.context.api.id.clone()).navigate(rest),
                Some(("name", rest)) => Value::String(self.context.api.name.clone()).navigate(rest),
                _ => Value::Null,
            },
            "properties" => {
                string_map_value(self.context.api.properties.iter().map(|(k, v)| (k.as_str(), v.as_str())), path)
            }
            _ => Value::Null,
        }
    }
}

impl Scope<'_> {
    fn request_value(&self, path: &[Key]) -> Value {
        let request = &self.context.request;
        let Some((key, rest)) = path.split_first() else { return Value::Null };
        match name(key) {
            Some("headers") => headers_value(&request.headers, rest),
            Some("params") => {
                let mut params: BTreeMap<String, Value> = BTreeMap::new();
                for (param, value) in &request.params {
                    if let Value::List(values) = params.entry(param.clone()).or_insert_with(|| Value::List(Vec::new()))
                    {
                        values.push(Value::String(value.clone()));
                    }
                }
                Value::Map(params).navigate(rest)
            }
            Some("path") => Value::String(request.path.clone()).navigate(rest),
            Some("pathInfo") => Value::String(request.path_info.clone()).navigate(rest),
            Some("method") => Value::String(request.method.clone()).navigate(rest),
            Some("remoteAddress") => Value::String(request.remote_address.clone()).navigate(rest),
            Some("id") => Value::String(request.id.clone()).navigate(rest),
            _ => Value::Null,
        }
    }
}

fn message_value(message: &Message, path: &[Key]) -> Value {
    let Some((key, rest)) = path.split_first() else { return Value::Null };
    match name(key) {
        Some("content") => Value::String(String::from_utf8_lossy(&message.content).into_owned()).navigate(rest),
        Some("headers") => headers_value(&message.headers, rest),
        Some("attributes") => string_map_value(message.attributes.iter().map(|(k, v)| (k.as_str(), v.as_str())), rest),
        Some("id") => message.id.clone().map_or(Value::Null, Value::String).navigate(rest),
        Some("metadata") => {
            let Some(metadata) = &message.metadata else { return Value::Null };
            let fields: BTreeMap<String, Value> = metadata
                .entries()
                .into_iter()
                .map(|(field, value)| {
                    let value = match field {
                        "partition" | "offset" | "sourceTimestamp" => {
                            value.parse().map_or(Value::String(value), Value::Int)
                        }
                        _ => Value::String(value),
                    };
                    (field.to_string(), value)
                })
                .collect();
            Value::Map(fields).navigate(rest)
        }
        _ => Value::Null,
    }
}

/// `headers['h']` is the list of values of `h` (names compared without case); `headers` alone is
/// the map of every name to its values.
fn headers_value(headers: &Headers, path: &[Key]) -> Value {
    match path.split_first() {
        Some((key, rest)) => match name(key) {
            Some(header) => {
                let values: Vec<Value> = headers.get_all(header).map(|v| Value::String(v.to_string())).collect();
                if values.is_empty() {
                    Value::Null
                } else {
                    Value::List(values).navigate(rest)
                }
            }
            None => Value::Null,
        },
        None => Value::Map(
            headers
                .grouped()
                .into_iter()
                .map(|(header, values)| {
                    (
                        header.to_string(),
                        Value::List(values.into_iter().map(|v| Value::String(v.to_string())).collect()),
                    )
                })
                .collect(),
        ),
    }
}

fn string_map_value<'m>(entries: impl Iterator<Item = (&'m str, &'m str)>, path: &[Key]) -> Value {
    match path.split_first() {
        Some((key, rest)) => {
            let Some(wanted) = name(key) else { return Value::Null };
            let mut entries = entries;
            entries
                .find(|(k, _)| *k == wanted)
                .map_or(Value::Null, |(_, v)| Value::String(v.to_string()).navigate(rest))
        }
        None => Value::Map(entries.map(|(k, v)| (k.to_string(), Value::String(v.to_string()))).collect()),
    }
}

/// A property name or a string index: `.headers` and `['headers']` are the same.
fn name(key: &Key) -> Option<&str> {
    match key {
        Key::Name(name) => Some(name),
        Key::Index(Value::String(name)) => Some(name),
        Key::Index(_) => None,
    }
}
