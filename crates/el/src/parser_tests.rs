use super::*;

/// The tree as an s-expression, so precedence tests read like the grouping they expect.
fn shape(expr: &Expr) -> String {
    match expr {
        Expr::Literal(Value::String(text)) => format!("'{text}'"),
        Expr::Literal(value) => value.render(),
        Expr::List(items) => format!("{{{}}}", items.iter().map(shape).collect::<Vec<_>>().join(" ")),
        Expr::Root(root) => {
            let mut out = format!("#{}", root.name);
            for step in &root.path {
                match step {
                    PathStep::Name(name) => out.push_str(&format!(".{name}")),
                    PathStep::Index(index) => out.push_str(&format!("[{}]", shape(index))),
                }
            }
            out
        }
        Expr::JsonPath { json, path, .. } => format!("(jsonPath {} {})", shape(json), shape(path)),
        Expr::Chain { base, steps } => {
            let mut out = shape(base);
            for step in steps {
                match step {
                    Step::Property { name, safe } => out.push_str(&format!("{}{name}", if *safe { "?." } else { "." })),
                    Step::Index(index) => out.push_str(&format!("[{}]", shape(index))),
                    Step::Method(call) => {
                        let args: Vec<String> = call.args.iter().map(shape).collect();
                        let dot = if call.safe { "?." } else { "." };
                        out.push_str(&format!("{dot}{}({})", call.method.name(), args.join(" ")));
                    }
                }
            }
            out
        }
        Expr::Not(operand) => format!("(! {})", shape(operand)),
        Expr::Negate(operand) => format!("(- {})", shape(operand)),
        Expr::Binary { op, left, right } => {
            format!("({} {} {})", op.symbol(), shape(left), shape(right))
        }
        Expr::Matches { subject, pattern, .. } => format!("(matches {} {})", shape(subject), shape(pattern)),
        Expr::Ternary { condition, then, otherwise } => {
            format!("(? {} {} {})", shape(condition), shape(then), shape(otherwise))
        }
        Expr::Elvis { value, fallback } => format!("(?: {} {})", shape(value), shape(fallback)),
    }
}

fn parsed(text: &str) -> String {
    match parse_expression(text) {
        Ok(expr) => shape(&expr),
        Err(error) => format!("error at {}: {}", error.at, error.message),
    }
}

fn error_at(text: &str) -> usize {
    parse_expression(text).map_or_else(|error| error.at, |expr| panic!("parsed: {}", shape(&expr)))
}

fn error_message(text: &str) -> String {
    parse_expression(text).map_or_else(|error| error.message, |expr| panic!("parsed: {}", shape(&expr)))
}

#[test]
fn root_paths_collect_properties_and_indexes() {
    assert_eq!(parsed("#request.headers['X-Topic'][0]"), "#request.headers['X-Topic'][0]");
    assert_eq!(
        parsed("#context.attributes['gravitee.attribute.kafka.groupId']"),
        "#context.attributes['gravitee.attribute.kafka.groupId']"
    );
    assert_eq!(parsed("#message.metadata.key"), "#message.metadata.key");
    assert_eq!(parsed("#message?.metadata['topic']"), "#message.metadata['topic']");
    assert_eq!(
        parsed("#request.headers[#context.attributes['h']][0]"),
        "#request.headers[#context.attributes['h']][0]"
    );
}

#[test]
fn literal_paths_are_prebuilt() {
    let fixed = |text: &str| match parse_expression(text) {
        Ok(Expr::Root(root)) => root.fixed,
        _ => None,
    };
    assert_eq!(
        fixed("#message.headers['x'][0]"),
        Some(vec![Key::Name("headers".into()), Key::Index(Value::String("x".into())), Key::Index(Value::Int(0))])
    );
    assert_eq!(fixed("#message.headers[#a]"), None);
}

#[test]
fn a_method_call_ends_the_root_path() {
    assert_eq!(parsed("#request.headers['x'][0].toUpperCase()"), "#request.headers['x'][0].toUpperCase()");
    let chain = parse_expression("#a.b.trim().c[1]");
    assert!(matches!(&chain, Ok(Expr::Chain { base, steps }) if matches!(**base, Expr::Root(_)) && steps.len() == 3));
    assert_eq!(parsed("#a?.b?.trim()?.length()"), "#a.b?.trim()?.length()");
}

#[test]
fn precedence_from_loosest_to_tightest() {
    assert_eq!(parsed("#a || #b && #c"), "(|| #a (&& #b #c))");
    assert_eq!(parsed("#a == 1 && #b != 2"), "(&& (== #a 1) (!= #b 2))");
    assert_eq!(parsed("#a < 1 == #b >= 2"), "(== (< #a 1) (>= #b 2))");
    assert_eq!(parsed("1 + 2 * 3 - 4 % 5 < 6"), "(< (- (+ 1 (* 2 3)) (% 4 5)) 6)");
    assert_eq!(parsed("!#a == #b"), "(== (! #a) #b)");
    assert_eq!(parsed("-#a.length() + 1"), "(+ (- #a.length()) 1)");
    assert_eq!(parsed("#a + 'x' matches 'p' && true"), "(&& (matches (+ #a 'x') 'p') true)");
    assert_eq!(parsed("(1 + 2) * 3"), "(* (+ 1 2) 3)");
}

#[test]
fn conditionals_group_to_the_right() {
    assert_eq!(parsed("#a ? 1 : #b ? 2 : 3"), "(? #a 1 (? #b 2 3))");
    assert_eq!(parsed("#a ?: #b ?: 'c'"), "(?: #a (?: #b 'c'))");
    assert_eq!(parsed("#a || #b ? 'y' : 'n'"), "(? (|| #a #b) 'y' 'n')");
    assert_eq!(parsed("#a ? #b ? 1 : 2 : 3"), "(? #a (? #b 1 2) 3)");
}

#[test]
fn word_operators_match_any_case() {
    assert_eq!(parsed("#a eq 1 AND #b Ne 2 or not #c"), "(|| (&& (== #a 1) (!= #b 2)) (! #c))");
    assert_eq!(
        parsed("#a lt 1 and #b gt 2 and #c le 3 and #d ge 4"),
        "(&& (&& (&& (< #a 1) (> #b 2)) (<= #c 3)) (>= #d 4))"
    );
    assert_eq!(parsed("10 div 3 mod 2"), "(% (/ 10 3) 2)");
    assert_eq!(parsed("TRUE and False or NULL"), "(|| (&& true false) null)");
}

#[test]
fn keywords_are_property_names_after_a_dot() {
    assert_eq!(parsed("#message.metadata.key"), "#message.metadata.key");
    assert_eq!(parsed("#a.and.or.matches"), "#a.and.or.matches");
}

#[test]
fn literals_lists_and_functions() {
    assert_eq!(parsed("-5"), "-5");
    assert_eq!(parsed("- 2.5"), "-2.5");
    assert_eq!(parsed("{1, 'a', {}}"), "{1 'a' {}}");
    assert_eq!(parsed("'it''s'"), "'it's'");
    assert_eq!(parsed("#jsonPath(#message.content, '$.order.id')"), "(jsonPath #message.content '$.order.id')");
    assert_eq!(parsed("'a,b'.split(',')[1]"), "'a,b'.split(',')[1]");
}

#[test]
fn errors_point_at_the_problem() {
    assert_eq!(error_at("#a =="), 5);
    assert_eq!(error_message("#a =="), "expression ends too early");
    assert_eq!(error_at("#a ? 1"), 6);
    assert_eq!(error_at("(#a"), 3);
    assert_eq!(error_at("#a #b"), 3);
    assert_eq!(error_at("#a.trim("), 8);
    assert_eq!(error_at("#a.b()"), 3);
    assert_eq!(error_at("#a.substring(1,)"), 15);
    assert_eq!(error_at("#"), 1);
    assert_eq!(error_at("#a."), 3);
    assert_eq!(error_at(""), 0);
    assert_eq!(error_at("   "), 0);
}

#[test]
fn only_allowed_methods_and_functions_exist() {
    assert_eq!(error_at("#request.getClass()"), 9);
    assert!(error_message("#request.getClass()").starts_with("method 'getClass' is not allowed"));
    assert!(error_message("'x'.class.forName('java.lang.Runtime')").contains("not allowed"));
    assert_eq!(error_message("T(java.lang.Runtime).getRuntime()"), "type references (T(...)) are not supported");
    assert_eq!(error_message("new java.io.File('/')"), "constructors ('new') are not supported");
    assert!(error_message("#secrets.get('/vault')").starts_with("method 'get' is not allowed"));
    assert!(error_message("#xpath(#message.content, '/a')").starts_with("unknown function '#xpath'"));
    assert!(error_message("request.headers").starts_with("unknown name 'request'"));
    assert_eq!(error_message("@bean"), "bean references are not supported");
    assert_eq!(error_message("{'a': 1}"), "inline maps are not supported");
    assert_eq!(error_message("#a.trim(1)"), "'trim' takes 0 argument(s), not 1");
    assert_eq!(error_message("#a.substring()"), "'substring' takes 1 or 2 argument(s), not 0");
    assert_eq!(error_message("#jsonPath(#a)"), "#jsonPath takes 2 arguments: the JSON and the path");
    assert!(error_message("#a.?[#this > 1]").starts_with("expected a property or method name"));
}

#[test]
fn literal_regexes_and_paths_are_checked_at_load() {
    assert!(error_message("#a matches '('").starts_with("invalid regex"));
    assert!(error_message("#a.split('[')").starts_with("invalid regex"));
    assert!(error_message("#jsonPath(#a, '$..id')").starts_with("#jsonPath: deep scan"));
    assert!(parse_expression("#a matches #b").is_ok());
}

#[test]
fn nesting_and_length_are_bounded() {
    let nested = |n: usize| format!("{}1{}", "(".repeat(n), ")".repeat(n));
    assert!(parse_expression(&nested(MAX_DEPTH - 2)).is_ok());
    assert!(error_message(&nested(4_000)).contains("nested more than 64 levels"));
    assert!(error_message(&"!".repeat(8_000)).contains("nested more than 64 levels"));
    assert!(error_message(&"-".repeat(5_000)).contains("nested more than 64 levels"));
    let long_sum = vec!["1"; 100].join(" + ");
    assert!(error_message(&long_sum).contains("nested more than 64 levels"));
    let long_chain = format!("'a'{}", ".trim()".repeat(1_000));
    assert!(parse_expression(&long_chain).is_ok(), "a chain is a loop, not nesting");
    let too_long = format!("'{}'", "a".repeat(MAX_EXPRESSION_LEN));
    assert!(error_message(&too_long).starts_with("expression longer than"));
}
