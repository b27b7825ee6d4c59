use super::*;
use crate::test_support::{eval, gateway, list, s};
use crate::MapContext;

fn template(source: &str) -> Template {
    Template::parse(source).unwrap_or_else(|error| panic!("{source:?} does not parse: {error}"))
}

fn parse_failure(source: &str) -> ParseError {
    match Template::parse(source) {
        Ok(template) => panic!("{source:?} parsed: {template:?}"),
        Err(error) => error,
    }
}

#[test]
fn gravitee_request_expressions() {
    assert_eq!(eval("{#request.headers['X-Topic'][0]}"), s("orders"));
    assert_eq!(eval("{#request.headers['X-Topic']}"), list(&["orders"]));
    assert_eq!(eval("{#request.headers['autoOffsetReset'][0]}"), s("earliest"));
    assert_eq!(eval("{#request.params['p'][0]}"), s("v1"));
    assert_eq!(eval("{#request.path}"), s("/orders/topics/orders"));
    assert_eq!(eval("{#request.pathInfo}"), s("/topics/orders"));
    assert_eq!(eval("{#request.method}"), s("POST"));
    assert_eq!(eval("{#request.remoteAddress}"), s("10.0.0.7"));
    assert_eq!(eval("{#request.id}"), s("req-1"));
    assert_eq!(eval("{#request.headers.Accept[1]}"), s("application/json"));
}

#[test]
fn gravitee_conditions() {
    let context = gateway();
    assert!(template("{#request.headers['X-Topic'] != null}").evaluate_condition(&context));
    assert!(!template("{#request.headers['X-Missing'] != null}").evaluate_condition(&context));
    assert!(template("{#request.method == 'POST' && #request.params['limit'][0] == '20'}").evaluate_condition(&context));
    assert!(template("{#message.metadata.key == 'a'}").evaluate_condition(&context));
    assert!(template(r"{#message.metadata.partition >= 2 and #message.metadata.offset lt 2000}")
        .evaluate_condition(&context));
}

#[test]
fn gravitee_context_message_api_and_properties() {
    assert_eq!(eval("{#context.attributes['gravitee.attribute.kafka.groupId']}"), s("group-a"));
    assert_eq!(eval("{#message.metadata['topic']}"), s("orders"));
    assert_eq!(eval("{#message.metadata.partition}"), Value::Int(2));
    assert_eq!(eval("{#message.metadata['offset']}"), Value::Int(1042));
    assert_eq!(eval("{#message.headers['X-Trace'][0]}"), s("t-1"));
    assert_eq!(eval("{#message.attributes['gravitee.attribute.kafka.recordKey']}"), s("k-9"));
    assert_eq!(eval("{#jsonPath(#message.content, '$.order.id')}"), s("o-17"));
    assert_eq!(eval("{#jsonPath(#message.content, '$.order.total')}"), Value::Float(12.5));
    assert_eq!(eval("{#api.id}"), s("api-7"));
    assert_eq!(eval("{#api.name}"), s("Orders"));
    assert_eq!(eval("{#properties['env']}"), s("prod"));
    assert_eq!(eval(r"{#message.content matches '^\{.*\}$'}"), Value::Bool(true));
}

#[test]
fn gravitee_content_filter() {
    let numeric = |content: &str| {
        let message = crate::test_support::map(&[("content", s(content))]);
        MapContext([("message".to_string(), message)].into())
    };
    let filter = template(r"{#message.content matches '^\d+$'}");
    assert!(filter.evaluate_condition(&numeric("12345")));
    assert!(!filter.evaluate_condition(&numeric("12a45")));
    assert!(!filter.evaluate_condition(&numeric("")));
    assert!(!filter.evaluate_condition(&MapContext::default()), "no message: null content is an error, so false");
}

#[test]
fn mixed_templates_render_to_one_string() {
    assert_eq!(eval("prefix-{#api.id}-{#request.params['p'][0]}"), s("prefix-api-7-v1"));
    assert_eq!(eval("{#properties['prefix']}.{#message.metadata.topic}"), s("acme.orders"));
    assert_eq!(eval("p{#message.metadata.partition}@{#message.metadata.offset}"), s("p2@1042"));
    assert_eq!(eval("[{#request.headers['Accept']}]"), s("[[text/plain, application/json]]"));
    // Null parts render as nothing.
    assert_eq!(eval("a-{#request.headers['X-Missing']}-b"), s("a--b"));
}

#[test]
fn an_error_in_any_part_makes_the_template_null() {
    assert_eq!(eval("a-{#nothing.trim()}-b"), Value::Null);
    assert_eq!(template("a-{#nothing.trim()}-b").evaluate_string(&gateway()), None);
}

#[test]
fn literals_evaluate_to_themselves() {
    for source in ["", "plain", "{\"a\": 1}", "{ # not an expression }", "#request", "}{", "100%"] {
        let literal = template(source);
        assert!(literal.is_literal(), "{source}");
        assert_eq!(literal.evaluate(&MapContext::default()), s(source));
        assert_eq!(literal.source(), source);
    }
    assert!(!template("x{#a}").is_literal());
}

#[test]
fn expression_parts_end_at_the_matching_brace() {
    assert_eq!(eval("{#request.method + '}'}"), s("POST}"));
    assert_eq!(eval("{#request.method + '{#x}'}!"), s("POST{#x}!"));
    assert_eq!(eval("{#number + {1, 2}.size()}"), Value::Int(43));
    assert_eq!(eval(r#"{#request.method + "say ""}"" "}"#), s("POSTsay \"}\" "));
    assert_eq!(eval("{ {#api.id} }"), s("{ api-7 }"));
}

#[test]
fn parse_errors_carry_character_positions() {
    assert_eq!(
        parse_failure("abc {#request.id"),
        ParseError { position: 4, message: "unterminated '{#': no matching '}'".into() }
    );
    assert_eq!(parse_failure("{#'abc}").position, 0);
    assert_eq!(
        parse_failure("x{#request.headers['a'}").to_string(),
        "at position 22: expected ']', found the end of the expression"
    );
    assert_eq!(parse_failure("{#}").position, 2);
    // As in Gravitee, the `#` belongs to the expression: `{#'text'}` is not a string literal.
    assert_eq!(parse_failure("{#'text'}").position, 2);
    assert_eq!(parse_failure("{#a} {#b ==}").position, 11);
    // Positions count characters, not bytes.
    assert_eq!(parse_failure("héllo wörld {#a +}").position, 17);
    assert_eq!(
        parse_failure("ü{#a.getClass()}").to_string(),
        format!("at position 5: {}", parse_failure("ü{#a.getClass()}").message)
    );
}

#[test]
fn typed_values_and_strings() {
    let context = gateway();
    assert_eq!(template("{#message.metadata.partition}").evaluate_string(&context), Some("2".into()));
    assert_eq!(template("{#message.metadata.offset + 0.5}").evaluate_string(&context), Some("1042.5".into()));
    assert_eq!(
        template("{#request.headers['Accept']}").evaluate_string(&context),
        Some("[text/plain, application/json]".into())
    );
    assert_eq!(template("{#request.headers['missing']}").evaluate_string(&context), None);
    assert_eq!(template("{#unknownRoot}").evaluate(&context), Value::Null);
}

#[test]
fn conditions_are_true_only_for_true() {
    let context = gateway();
    let condition = |source: &str| template(source).evaluate_condition(&context);
    assert!(!condition("{true}"), "'{{true}}' is literal text, not an expression");
    assert!(condition("true"));
    assert!(condition("TRUE"));
    assert!(condition("{#request.method == 'POST'}"));
    assert!(!condition("{'True'}"));
    assert!(condition("{#request.method == 'POST' ? 'tRuE' : 'no'}"));
    assert!(!condition("{#request.method == 'GET'}"));
    assert!(!condition("{#request.headers['X-Topic']}"));
    assert!(!condition("{#nothing}"));
    assert!(!condition("{#nothing.length() > 0}"));
    assert!(!condition("{#number}"));
}

#[test]
fn templates_are_shared_across_threads() {
    fn assert_shareable<T: Clone + Send + Sync + std::fmt::Debug>() {}
    assert_shareable::<Template>();
    let compiled = template("{#request.headers['X-Topic'][0]}");
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let compiled = compiled.clone();
            std::thread::spawn(move || compiled.evaluate(&gateway()))
        })
        .collect();
    for handle in handles {
        assert_eq!(handle.join().ok(), Some(s("orders")));
    }
}
