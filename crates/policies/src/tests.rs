use crate::{ApiFlows, RequestShape};
use kafka_edge_definition::{EntrypointType, Flow};
use kafka_edge_message::{ExecutionContext, Headers, Message, RequestInfo, Transformed};
use serde_json::{json, Value};
use std::sync::Arc;

fn flows(value: Value) -> Result<ApiFlows, Vec<kafka_edge_definition::Problem>> {
    let flows: Vec<Flow> = serde_json::from_value(value).expect("flow JSON");
    ApiFlows::compile(&flows)
}

fn context(path_info: &str, method: &str, headers: &[(&str, &str)]) -> ExecutionContext {
    let mut request_headers = Headers::new();
    for (name, value) in headers {
        request_headers.append(*name, *value);
    }
    let request = RequestInfo {
        method: method.into(),
        path_info: path_info.into(),
        headers: request_headers,
        ..Default::default()
    };
    ExecutionContext { request: Arc::new(request), ..Default::default() }
}

fn shape<'a>(path_info: &'a str, method: &'a str) -> RequestShape<'a> {
    RequestShape { path_info, method, entrypoint: EntrypointType::HttpPost }
}

#[test]
fn problems_name_the_step_and_field() {
    let problems = flows(json!([{"publish": [
        {"policy": "rate-limit"},
        {"policy": "interrupt", "configuration": {"status": 200}},
        {"policy": "assign-attributes", "configuration": {"attributes": [{"name": "a", "value": "{#request.headers['x'"}]}},
        {"policy": "transform-headers", "configuration": {"addHeader": []}}
    ], "request": [{"policy": "message-filtering", "configuration": {"filter": "{#true}"}}]}]))
    .err()
    .expect("refused");
    let rendered: Vec<String> = problems.iter().map(|p| format!("{}: {}", p.path, p.message)).collect();
    assert!(
        rendered[0].starts_with("flows[0].request[0].policy: `message-filtering` filters consumed messages"),
        "{rendered:#?}"
    );
    assert!(
        rendered[1].starts_with(
            "flows[0].publish[0].policy: unknown policy `rate-limit`, expected one of `assign-attributes`"
        ),
        "{rendered:#?}"
    );
    assert!(rendered[2].starts_with("flows[0].publish[1].configuration.status: invalid value `200`"), "{rendered:#?}");
    assert!(
        rendered[3].starts_with("flows[0].publish[2].configuration.attributes[0].value: invalid expression"),
        "{rendered:#?}"
    );
    assert!(
        rendered[4]
            .starts_with("flows[0].publish[3].configuration.addHeader: unknown field `addHeader`, expected one of"),
        "{rendered:#?}"
    );
}

#[test]
fn request_phase_assigns_context_attributes_and_changes_request_headers() {
    let compiled = flows(json!([{"request": [
        {"policy": "assign-attributes", "condition": "{#request.headers['X-Topic'] != null}",
         "configuration": {"attributes": [{"name": "topic", "value": "{#request.headers['X-Topic'][0]}"}]}},
        {"policy": "transform-headers", "configuration": {"addHeaders": [{"name": "X-Added", "value": "{#context.attributes['topic']}"}], "removeHeaders": ["X-Topic"]}}
    ]}]))
    .unwrap();
    let mut context = context("/", "POST", &[("X-Topic", "orders")]);
    let selected = compiled.select(&shape("/", "POST"), &context);
    selected.on_request(&mut context).unwrap();
    assert_eq!(context.attributes["topic"], "orders");
    assert_eq!(context.request.headers.get_all("x-added").collect::<Vec<_>>(), ["orders"]);
    assert_eq!(context.request.headers.get_all("x-topic").count(), 0);

    let mut without = self::context("/", "POST", &[]);
    compiled.select(&shape("/", "POST"), &without).on_request(&mut without).unwrap();
    assert!(!without.attributes.contains_key("topic"), "the condition was false");
}

#[test]
fn selectors_match_path_below_the_context_and_methods() {
    let compiled = flows(json!([
        {"selectors": [{"type": "http", "path": "/orders", "pathOperator": "STARTS_WITH", "methods": ["POST"]}],
         "request": [{"policy": "interrupt", "configuration": {"status": 403, "message": "orders are closed"}}]},
        {"enabled": false, "request": [{"policy": "interrupt", "configuration": {"status": 500}}]}
    ]))
    .unwrap();
    let run = |path: &str, method: &str| {
        let mut context = context(path, method, &[]);
        compiled
            .select(&shape(path, method), &context)
            .on_request(&mut context)
            .err()
            .map(|f| (f.kind.http_status(), f.message))
    };
    assert_eq!(run("/orders/1", "POST"), Some((403, "orders are closed".to_string())));
    assert_eq!(run("/orders", "POST"), Some((403, "orders are closed".to_string())));
    assert_eq!(run("/ordersx", "POST"), None);
    assert_eq!(run("/orders", "GET"), None);
}

#[test]
fn message_phases_change_attributes_headers_and_filter() {
    let compiled = flows(json!([{
        "publish": [{"policy": "assign-attributes", "configuration": {"attributes": [{"name": "gravitee.attribute.kafka.recordKey", "value": "{#message.headers['k'][0]}"}]}}],
        "subscribe": [
            {"policy": "transform-headers", "configuration": {"addHeaders": [{"name": "X-Len", "value": "{#message.content.length()}"}], "whitelistHeaders": ["keep"]}},
            {"policy": "message-filtering", "configuration": {"filter": "{#message.content != 'drop me'}"}}
        ]}]))
    .unwrap();
    let context = context("/", "POST", &[]);
    let selected = compiled.select(&shape("/", "POST"), &context);
    let mut message = Message::new("hello");
    message.headers.append("k", "key-1");
    selected.on_publish(&context, &mut message).unwrap();
    assert_eq!(message.attributes["gravitee.attribute.kafka.recordKey"], "key-1");

    let mut consumed = Message::new("hello");
    consumed.headers.append("keep", "1");
    consumed.headers.append("other", "2");
    match selected.on_subscribe(&context, consumed) {
        Transformed::Keep(message) => {
            let headers: Vec<(&str, &str)> = message.headers.iter().collect();
            assert_eq!(headers, [("keep", "1"), ("X-Len", "5")]);
        }
        _ => panic!("kept"),
    }
    assert!(matches!(selected.on_subscribe(&context, Message::new("drop me")), Transformed::Drop(_)));
}
