//! What the expression language costs on the data path: compiling a template (once per definition
//! load) and evaluating the three kinds of expression a message flow runs per message.
//!
//!     cargo bench -p kafka-edge-el -- --warm-up-time 1 --measurement-time 3

use criterion::{criterion_group, criterion_main, Criterion};
use kafka_edge_el::{MapContext, Template, Value};
use std::collections::BTreeMap;
use std::hint::black_box;

fn s(text: &str) -> Value {
    Value::String(text.into())
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

/// One consumed Kafka message as a flow sees it: a few headers, metadata and a small JSON order.
fn message_context() -> MapContext {
    let content = r#"{"order": {"id": "o-17", "customer": {"id": 42, "tier": "gold"}, "lines": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 3}], "total": 12.5, "currency": "EUR"}}"#;
    let message = map(vec![
        ("content", s(content)),
        (
            "headers",
            map(vec![
                ("X-Trace", Value::List(vec![s("5f2c9a")])),
                ("content-type", Value::List(vec![s("application/json")])),
                ("X-Tenant", Value::List(vec![s("acme")])),
            ]),
        ),
        (
            "metadata",
            map(vec![
                ("key", s("a")),
                ("topic", s("orders")),
                ("partition", Value::Int(2)),
                ("offset", Value::Int(1042)),
            ]),
        ),
    ]);
    MapContext(BTreeMap::from([("message".to_string(), message)]))
}

fn compiled(source: &str) -> Template {
    Template::parse(source).unwrap_or_else(|error| panic!("{source}: {error}"))
}

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    group.bench_function("condition", |b| {
        b.iter(|| Template::parse(black_box("{#request.headers['X-Topic'] != null && #request.method == 'POST'}")))
    });
    group.bench_function("mixed template", |b| {
        b.iter(|| Template::parse(black_box("prefix-{#api.id}-{#request.params['p'][0]}")))
    });
    group.bench_function("jsonPath", |b| {
        b.iter(|| Template::parse(black_box("{#jsonPath(#message.content, '$.order.id')}")))
    });
    group.bench_function("literal", |b| b.iter(|| Template::parse(black_box("orders-topic"))));
    group.finish();
}

fn evaluate(c: &mut Criterion) {
    let context = message_context();
    let header = compiled("{#message.headers['X-Trace'][0]}");
    let metadata = compiled("{#message.metadata.key == 'a'}");
    let json_path = compiled("{#jsonPath(#message.content, '$.order.id')}");
    assert_eq!(header.evaluate(&context), s("5f2c9a"));
    assert!(metadata.evaluate_condition(&context));
    assert_eq!(json_path.evaluate(&context), s("o-17"));

    let mut group = c.benchmark_group("evaluate per message");
    group.bench_function("header lookup", |b| b.iter(|| header.evaluate(black_box(&context))));
    group.bench_function("metadata comparison", |b| b.iter(|| metadata.evaluate_condition(black_box(&context))));
    group.bench_function("jsonPath", |b| b.iter(|| json_path.evaluate(black_box(&context))));
    group.finish();
}

criterion_group!(benches, parse, evaluate);
criterion_main!(benches);
