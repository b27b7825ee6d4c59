//! Properties of the expression language over generated input: definitions are user input, so the
//! parser must reject garbage without panicking, and evaluation must never panic whatever values
//! the request or message carries.

use kafka_edge_el::{MapContext, Template, Value};
use proptest::prelude::*;
use std::collections::BTreeMap;

fn s(text: &str) -> Value {
    Value::String(text.into())
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

/// A context with the roots the generated expressions use, filled with generated text.
fn context(header: String, content: String, number: i64) -> MapContext {
    let request = map(vec![
        ("headers", map(vec![("X-Topic", Value::List(vec![s(&header)])), ("Empty", Value::List(vec![]))])),
        ("path", s(&header)),
    ]);
    let message = map(vec![
        ("content", s(&content)),
        ("metadata", map(vec![("key", s(&header)), ("partition", Value::Int(number))])),
    ]);
    let roots: BTreeMap<String, Value> = [
        ("request".to_string(), request),
        ("message".to_string(), message),
        ("number".to_string(), Value::Int(number)),
        ("decimal".to_string(), Value::Float(number as f64 / 7.0)),
        ("nothing".to_string(), Value::Null),
    ]
    .into();
    MapContext(roots)
}

/// SpEL string literal for `text`.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn leaf() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("#request.headers['X-Topic'][0]".to_string()),
        Just("#request.headers['X-Topic']".to_string()),
        Just("#request.headers['Empty'][0]".to_string()),
        Just("#request.path".to_string()),
        Just("#message.content".to_string()),
        Just("#message.metadata.key".to_string()),
        Just("#message.metadata['partition']".to_string()),
        Just("#number".to_string()),
        Just("#decimal".to_string()),
        Just("#nothing".to_string()),
        Just("#unknown.path[3]".to_string()),
        Just("null".to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        any::<i32>().prop_map(|i| i.to_string()),
        (0.0f64..1e6).prop_map(|f| format!("{f:.3}")),
        "[a-z{}#',.$\\[\\] ]{0,8}".prop_map(|text| quoted(&text)),
        Just("'^[a-z]+$'".to_string()),
        Just("'$.a.b'".to_string()),
    ]
}

const BINARY: [&str; 16] = ["==", "!=", "<", ">", "<=", ">=", "&&", "||", "and", "or", "+", "-", "*", "/", "%", "?:"];
const METHODS: [&str; 13] = [
    "trim()",
    "length()",
    "toUpperCase()",
    "toLowerCase()",
    "isEmpty()",
    "size()",
    "toString()",
    "substring(1)",
    "substring(0, 2)",
    "split(',')",
    "replace('a', 'bb')",
    "startsWith('a')",
    "containsKey('a')",
];

/// Syntactically valid expressions of every shape, nested a few levels.
fn expression() -> impl Strategy<Value = String> {
    leaf().prop_recursive(5, 48, 3, |inner| {
        prop_oneof![
            (inner.clone(), prop::sample::select(BINARY.to_vec()), inner.clone())
                .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
            (inner.clone(), inner.clone(), inner.clone()).prop_map(|(a, b, c)| format!("({a}) ? ({b}) : ({c})")),
            inner.clone().prop_map(|a| format!("!({a})")),
            inner.clone().prop_map(|a| format!("-({a})")),
            inner.clone().prop_map(|a| format!("({a})")),
            (inner.clone(), prop::sample::select(METHODS.to_vec()), any::<bool>())
                .prop_map(|(a, m, safe)| format!("({a}){}{m}", if safe { "?." } else { "." })),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a})[{b}]")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}).contains({b})")),
            // A literal regex or JSONPath is checked at load; `+ ''` defers them to run time.
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} matches ({b} + '')")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("#jsonPath({a}, {b} + '')")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}).split({b} + '')")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{{{a}, {b}}}")),
            (inner.clone(), inner).prop_map(|(a, b)| format!("#request.headers[{a}][{b}]")),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parsing_arbitrary_text_never_panics(source in any::<String>()) {
        let _ = Template::parse(&source);
    }

    #[test]
    fn parsing_expression_like_text_never_panics(source in "[{}#'\"a-z0-9.\\[\\]()?:!=<>&|+*/% -]{0,64}") {
        if let Ok(template) = Template::parse(&source) {
            let _ = template.evaluate(&context("x".into(), "{}".into(), 1));
        }
        let _ = Template::parse(&format!("{{#{source}}}"));
    }

    #[test]
    fn evaluating_valid_expressions_never_panics(
        expression in expression(),
        header in ".{0,12}",
        content in prop_oneof![Just(r#"{"a": {"b": [1, "x"]}}"#.to_string()), ".{0,16}"],
        number in any::<i64>(),
    ) {
        // A template part starts with `#`; the elvis on null hands over to the expression.
        let source = format!("pre {{#nothing ?: ({expression})}} post");
        let template = Template::parse(&source);
        prop_assert!(template.is_ok(), "{source:?}: {template:?}");
        if let Ok(template) = template {
            let context = context(header, content, number);
            let _ = template.evaluate(&context);
            let _ = template.evaluate_condition(&context);
            let single = Template::parse(&format!("{{#nothing ?: ({expression})}}"));
            prop_assert!(single.is_ok());
            if let Ok(single) = single {
                let _ = single.evaluate_string(&context);
            }
        }
    }

    #[test]
    fn a_literal_template_evaluates_to_itself(text in any::<String>().prop_filter("no expression", |t| !t.contains("{#"))) {
        let template = Template::parse(&text);
        prop_assert!(template.is_ok());
        if let Ok(template) = template {
            prop_assert!(template.is_literal());
            prop_assert_eq!(template.source(), text.as_str());
            prop_assert_eq!(template.evaluate(&MapContext::default()), Value::String(text.clone()));
        }
    }

    #[test]
    fn string_literals_round_trip(text in ".{1,40}") {
        let template = Template::parse(&format!("<{{#nothing ?: {}}}>", quoted(&text)));
        prop_assert!(template.is_ok());
        if let Ok(template) = template {
            prop_assert_eq!(template.evaluate(&MapContext::default()), Value::String(format!("<{text}>")));
        }
    }

    #[test]
    fn integers_round_trip(n in (i64::MIN + 1)..=i64::MAX) {
        let template = Template::parse(&format!("{{#nothing ?: {n}}}"));
        prop_assert_eq!(template.map(|t| t.evaluate(&MapContext::default())), Ok(Value::Int(n)));
    }
}
