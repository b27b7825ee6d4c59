//! A context shaped like the gateway's, for the unit tests: what Gravitee expressions see during a
//! request and while a Kafka message passes.

use crate::{MapContext, Template, Value};
use std::collections::BTreeMap;

pub(crate) fn s(text: &str) -> Value {
    Value::String(text.into())
}

pub(crate) fn map(entries: &[(&str, Value)]) -> Value {
    Value::Map(entries.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
}

pub(crate) fn list(items: &[&str]) -> Value {
    Value::List(items.iter().map(|item| s(item)).collect())
}

pub(crate) fn gateway() -> MapContext {
    let request = map(&[
        ("id", s("req-1")),
        ("path", s("/orders/topics/orders")),
        ("pathInfo", s("/topics/orders")),
        ("method", s("POST")),
        ("remoteAddress", s("10.0.0.7")),
        (
            "headers",
            map(&[
                ("X-Topic", list(&["orders"])),
                ("autoOffsetReset", list(&["earliest"])),
                ("Accept", list(&["text/plain", "application/json"])),
                ("X-Empty", list(&[""])),
            ]),
        ),
        ("params", map(&[("p", list(&["v1"])), ("limit", list(&["20"]))])),
    ]);
    let context =
        map(&[("attributes", map(&[("gravitee.attribute.kafka.groupId", s("group-a")), ("user", s("alice"))]))]);
    let message = map(&[
        ("content", s(r#"{"order": {"id": "o-17", "total": 12.5, "lines": [{"sku": "a"}, {"sku": "b"}]}}"#)),
        ("headers", map(&[("X-Trace", list(&["t-1"]))])),
        ("attributes", map(&[("gravitee.attribute.kafka.recordKey", s("k-9"))])),
        (
            "metadata",
            map(&[("key", s("a")), ("topic", s("orders")), ("partition", Value::Int(2)), ("offset", Value::Int(1042))]),
        ),
    ]);
    let api = map(&[("id", s("api-7")), ("name", s("Orders"))]);
    let properties = map(&[("env", s("prod")), ("prefix", s("acme"))]);
    let roots: BTreeMap<String, Value> = [
        ("request", request),
        ("context", context),
        ("message", message),
        ("api", api),
        ("properties", properties),
        ("nothing", Value::Null),
        ("number", Value::Int(41)),
        ("text", s("  Hello, World  ")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    MapContext(roots)
}

/// Parses `source` (which must parse) and evaluates it against [`gateway`].
pub(crate) fn eval(source: &str) -> Value {
    match Template::parse(source) {
        Ok(template) => template.evaluate(&gateway()),
        Err(error) => panic!("{source:?} does not parse: {error}"),
    }
}

/// Evaluates a bare expression (no template braces) against [`gateway`]; errors give Null, as in
/// a template.
pub(crate) fn value(expression: &str) -> Value {
    match crate::parser::parse_expression(expression) {
        Ok(expr) => crate::eval::evaluate(&expr, &gateway()).unwrap_or(Value::Null),
        Err(error) => panic!("{expression:?} does not parse: {error:?}"),
    }
}
