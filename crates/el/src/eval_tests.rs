use super::*;
use crate::test_support::{list, s, value};

fn t() -> Value {
    Value::Bool(true)
}

fn f() -> Value {
    Value::Bool(false)
}

#[test]
fn literals() {
    assert_eq!(value("'it''s'"), s("it's"));
    assert_eq!(value(r#""double ""quoted""""#), s("double \"quoted\""));
    assert_eq!(value("42"), Value::Int(42));
    assert_eq!(value("-7"), Value::Int(-7));
    assert_eq!(value("2.50"), Value::Float(2.5));
    assert_eq!(value("true"), t());
    assert_eq!(value("null"), Value::Null);
    assert_eq!(value("{'a', 1}"), Value::List(vec![s("a"), Value::Int(1)]));
}

#[test]
fn equality_and_comparison() {
    assert_eq!(value("#request.method == 'POST'"), t());
    assert_eq!(value("#request.method eq 'post'"), f());
    assert_eq!(value("#request.method != 'GET'"), t());
    assert_eq!(value("#request.headers['missing'] == null"), t());
    assert_eq!(value("#message.metadata.partition == 2.0"), t());
    assert_eq!(value("#message.metadata.offset > 1000"), t());
    assert_eq!(value("#message.metadata.offset <= 1042"), t());
    assert_eq!(value("#message.metadata.offset lt 1042"), f());
    assert_eq!(value("'b' gt 'a'"), t());
    assert_eq!(value("null < 0"), t());
    // A string is not a number: comparing them is an error, so null.
    assert_eq!(value("#request.params['limit'][0] > 10"), Value::Null);
    assert_eq!(value("#request.params['limit'][0] == 20"), f());
}

#[test]
fn boolean_logic_short_circuits() {
    assert_eq!(value("true && !false"), t());
    assert_eq!(value("true and not true"), f());
    assert_eq!(value("false || 'TRUE'"), t());
    assert_eq!(value("false or false"), f());
    // The right side would fail (method on null) but is never evaluated.
    assert_eq!(value("false && #nothing.length() > 0"), f());
    assert_eq!(value("true || #nothing.length() > 0"), t());
    // Null is not a boolean.
    assert_eq!(value("#nothing && true"), Value::Null);
    assert_eq!(value("!#nothing"), Value::Null);
    assert_eq!(value("'maybe' || true"), Value::Null);
}

#[test]
fn ternary_and_elvis() {
    assert_eq!(value("#request.headers['X-Topic'] != null ? #request.headers['X-Topic'][0] : 'default'"), s("orders"));
    assert_eq!(value("#request.headers['X-None'] != null ? #request.headers['X-None'][0] : 'default'"), s("default"));
    assert_eq!(value("#request.headers['X-None'] ?: 'fallback'"), s("fallback"));
    assert_eq!(value("#request.headers['X-Empty'][0] ?: 'fallback'"), s("fallback"));
    assert_eq!(value("#request.headers['X-Topic'][0] ?: 'fallback'"), s("orders"));
    assert_eq!(value("#message.metadata.partition ?: 9"), Value::Int(2));
    assert_eq!(value("#nothing ? 1 : 2"), Value::Null, "a null condition is an error");
}

#[test]
fn safe_navigation() {
    assert_eq!(value("#nothing?.name"), Value::Null);
    assert_eq!(value("#nothing?.trim()"), Value::Null);
    assert_eq!(value("#nothing?.trim() ?: 'none'"), s("none"));
    assert_eq!(value("(#nothing)?.name == null"), t());
    // Outside a root path, plain access on null is an error and the expression is null …
    assert_eq!(value("(#nothing).name == null"), Value::Null);
    assert_eq!(value("#nothing.trim() == null"), Value::Null);
    assert_eq!(value("'x'.split('y')[0].trim().length() > 0 ? (#nothing).name : 1"), Value::Null);
    // … and `?.` avoids it, one step at a time as in SpEL.
    assert_eq!(value("#nothing?.trim() == null"), t());
    assert_eq!(value("(#nothing)?.name.length()"), Value::Null);
    assert_eq!(value("(#nothing)?.name?.length() == null"), t());
}

#[test]
fn root_paths_are_answered_by_the_context() {
    // Inside a root path the context answers, and it answers null for anything missing, so
    // these behave as if every step were `?.`.
    assert_eq!(value("#nothing.name == null"), t());
    assert_eq!(value("#request.headers['X-None'][0] == null"), t());
    assert_eq!(value("#request.headers[#request.method == 'POST' ? 'X-Topic' : 'x'][0]"), s("orders"));
}

#[test]
fn plus_concatenates_or_adds() {
    assert_eq!(value("'topic-' + #message.metadata.partition"), s("topic-2"));
    assert_eq!(value("#message.metadata.partition + '-p'"), s("2-p"));
    assert_eq!(value("'a' + #nothing"), s("anull"));
    assert_eq!(value("'v' + 1.5"), s("v1.5"));
    assert_eq!(value("#message.metadata.partition + 1"), Value::Int(3));
    assert_eq!(value("1 + 0.5"), Value::Float(1.5));
    assert_eq!(value("7 - 2 * 3"), Value::Int(1));
    assert_eq!(value("7 / 2"), Value::Int(3));
    assert_eq!(value("-7 % 3"), Value::Int(-1));
    assert_eq!(value("7.0 / 2"), Value::Float(3.5));
    assert_eq!(value("1 / 0"), Value::Null);
    assert_eq!(value("9223372036854775807 + 1"), Value::Null);
    assert_eq!(value("-#number"), Value::Int(-41));
    assert_eq!(value("1 + #nothing"), Value::Null);
    assert_eq!(value("true + 1"), Value::Null);
}

#[test]
fn matches_is_a_full_match() {
    assert_eq!(value(r"#message.metadata.offset + '' matches '^\d+$'"), t());
    assert_eq!(value(r"'1042' matches '\d+'"), t());
    assert_eq!(value(r"'1042a' matches '\d+'"), f(), "Java's matches covers the whole text");
    assert_eq!(value("#request.method matches 'P..T'"), t());
    assert_eq!(value("#request.method matches 'P.S'"), f());
    assert_eq!(value("#request.method matches #request.headers['X-Topic'][0]"), f());
    assert_eq!(value("#request.method matches 'a|POST'"), t(), "the anchors wrap alternations too");
    assert_eq!(value("#nothing matches 'x'"), Value::Null);
    assert_eq!(value("'x' matches #nothing"), Value::Null);
    assert_eq!(value("'x' matches (#request.method + '(')"), Value::Null, "a bad runtime regex is an error");
}

#[test]
fn string_methods() {
    assert_eq!(value("#request.path.contains('topics')"), t());
    assert_eq!(value("#request.path.startsWith('/orders')"), t());
    assert_eq!(value("#request.path.endsWith('orders')"), t());
    assert_eq!(value("#request.method.toLowerCase()"), s("post"));
    assert_eq!(value("#api.name.toUpperCase()"), s("ORDERS"));
    assert_eq!(value("'héllo'.length()"), Value::Int(5));
    assert_eq!(value("#request.path.substring(1)"), s("orders/topics/orders"));
    assert_eq!(value("#request.path.substring(1, 7)"), s("orders"));
    assert_eq!(value("'héllo'.substring(1, 2)"), s("é"));
    assert_eq!(value("'abc'.substring(2, 1)"), Value::Null);
    assert_eq!(value("'abc'.substring(4)"), Value::Null);
    assert_eq!(value("'abc'.substring(-1)"), Value::Null);
    assert_eq!(value("#text.trim()"), s("Hello, World"));
    assert_eq!(value("'a-b-c'.replace('-', '.')"), s("a.b.c"));
    assert_eq!(value("'a.b'.replace('.', '[.]')"), s("a[.]b"), "replace is literal, not a regex");
    assert_eq!(value("''.isEmpty()"), t());
    assert_eq!(value("#request.method.equals('POST')"), t());
    assert_eq!(value("#request.method.equals(1)"), f());
    assert_eq!(value("#request.method.equalsIgnoreCase('post')"), t());
    assert_eq!(value("#request.method.equalsIgnoreCase(#nothing)"), f());
    assert_eq!(value("#message.metadata.partition.toString() + '!'"), s("2!"));
    assert_eq!(value("#request.method.contains(1)"), Value::Null);
    assert_eq!(value("'abc'[1]"), s("b"));
}

#[test]
fn split_follows_java() {
    assert_eq!(value("'a,b,,c'.split(',')"), list(&["a", "b", "", "c"]));
    assert_eq!(value("'a,b,,'.split(',')"), list(&["a", "b"]), "trailing empty parts are dropped");
    assert_eq!(value("',a'.split(',')"), list(&["", "a"]));
    assert_eq!(value("'abc'.split('')"), list(&["a", "b", "c"]));
    assert_eq!(value("''.split(',')"), list(&[""]));
    assert_eq!(value(r"'a1b22c'.split('\d+')[2]"), s("c"));
    assert_eq!(value("'a b'.split(#request.headers['missing'])"), Value::Null);
}

#[test]
fn list_and_map_methods_and_indexing() {
    assert_eq!(value("#request.headers['Accept'].size()"), Value::Int(2));
    assert_eq!(value("#request.headers['Accept'].contains('application/json')"), t());
    assert_eq!(value("#request.headers['Accept'].isEmpty()"), f());
    assert_eq!(value("#request.headers.containsKey('X-Topic')"), t());
    assert_eq!(value("#request.headers.containsKey('nope')"), f());
    assert_eq!(value("#context.attributes.size()"), Value::Int(2));
    assert_eq!(value("{1, 2}.contains(2.0)"), t());
    assert_eq!(value("#request.headers['Accept'][5]"), Value::Null);
    assert_eq!(value("#request.headers['Accept'].toString()"), s("[text/plain, application/json]"));
    assert_eq!(value("#request.headers['Accept'].trim()"), Value::Null, "no string methods on a list");
    assert_eq!(value("#context.attributes.toString().startsWith('{gravitee')"), t());
}

#[test]
fn access_after_a_method_is_strict() {
    assert_eq!(value("'a,b'.split(',')[1]"), s("b"));
    assert_eq!(value("'a,b'.split(',')[2]"), Value::Null);
    assert_eq!(value("'a'.trim().name"), Value::Null);
    assert_eq!(value("#jsonPath(#message.content, '$.order').id"), s("o-17"));
    assert_eq!(value("#jsonPath(#message.content, '$.order')['lines'][1].sku"), s("b"));
    assert_eq!(value("#jsonPath(#message.content, '$.order').missing"), Value::Null);
    assert_eq!(value("#jsonPath(#message.content, '$.order').missing.deeper"), Value::Null);
    assert_eq!(value("#jsonPath(#message.content, '$.order').missing?.deeper == null"), t());
}

#[test]
fn json_path_function() {
    assert_eq!(value("#jsonPath(#message.content, '$.order.lines[0].sku')"), s("a"));
    assert_eq!(value("#jsonPath(#message.content, '$.order.customer')"), Value::Null);
    assert_eq!(value("#jsonPath(#message.content, '$.order.customer') == null"), t());
    assert_eq!(value("#jsonPath(#message.content, '$.order.lines').size()"), Value::Int(2));
    assert_eq!(value("#jsonPath(#request.method, '$.a')"), Value::Null, "not JSON");
    assert_eq!(value("#jsonPath(#message.content, '$.' + 'order' + '.id')"), s("o-17"));
    assert_eq!(value("#jsonPath(#message.content, #nothing)"), Value::Null);
    assert_eq!(value("#jsonPath(#message.content, '$..id' + '')"), Value::Null);
}

#[test]
fn limits_turn_into_errors_not_exhaustion() {
    let huge = "x".repeat(1 << 20);
    let context = crate::MapContext([("big".to_string(), Value::String(huge))].into());
    let replace = crate::Template::parse(&format!("{{#big.replace('', '{}')}}", "y".repeat(100)));
    assert_eq!(replace.map(|t| t.evaluate(&context)), Ok(Value::Null));
    let split = crate::Template::parse("{#big.split('')}");
    assert_eq!(split.map(|t| t.evaluate(&context)), Ok(Value::Null));
    let within = crate::Template::parse("{#big.split('y').size()}");
    assert_eq!(within.map(|t| t.evaluate(&context)), Ok(Value::Int(1)));
}

#[test]
fn the_deepest_expression_fits_a_small_stack() {
    // Nested as deep as the parser allows, mixing the recursive node kinds.
    let mut deepest = None;
    let mut expression = "#number".to_string();
    for level in 0.. {
        expression = match level % 4 {
            0 => format!("({expression} + 1)"),
            1 => format!("(true ? {expression} : 0)"),
            2 => format!("{{{expression}}}[0]"),
            _ => format!("(#nothing ?: {expression})"),
        };
        match crate::parser::parse_expression(&expression) {
            Ok(expr) => deepest = Some(expr),
            Err(_) => break,
        }
    }
    let expr = deepest.ok_or("nothing parsed");
    // Tokio's worker threads have 2 MiB; a quarter of that is plenty even unoptimized.
    let evaluated = std::thread::Builder::new()
        .stack_size(512 * 1024)
        .spawn(move || expr.map(|expr| evaluate(&expr, &crate::test_support::gateway())))
        .map(|handle| handle.join());
    assert!(matches!(evaluated, Ok(Ok(Ok(Ok(Value::Int(_)))))), "{evaluated:?}");
}
