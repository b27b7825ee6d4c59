//! Templates: literal text with `{#…}` expression parts, as Gravitee writes every dynamic value
//! (attribute values, conditions, header values, dynamic endpoint configuration). Compiled once
//! when a definition loads, then evaluated per request or message; cloning shares the compiled form.

use crate::ast::Expr;
use crate::context::EvalContext;
use crate::error::{EvalError, ParseError};
use crate::eval::evaluate;
use crate::parser::parse_expression;
use crate::value::Value;
use std::sync::Arc;

/// A compiled template. Cheap to clone; `Send + Sync`, so one copy serves every request.
#[derive(Debug, Clone)]
pub struct Template {
    compiled: Arc<Compiled>,
}

#[derive(Debug)]
struct Compiled {
    source: String,
    parts: Vec<Part>,
}

#[derive(Debug)]
enum Part {
    Text(String),
    Expression(Expr),
}

impl Template {
    /// Text with `{#…}` parts; text without `{#` is a literal (no parsing surprises for plain
    /// strings). An expression part runs from `{#` to the matching `}` outside string literals;
    /// the `#` belongs to the expression (`{#request.id}` is the expression `#request.id`).
    pub fn parse(source: &str) -> Result<Template, ParseError> {
        let mut parts = Vec::new();
        let mut text_start = 0;
        while let Some(found) = source[text_start..].find("{#") {
            let open = text_start + found;
            let expression_start = open + 1;
            let Some(close) = matching_brace(source, expression_start) else {
                return Err(parse_error(source, open, "unterminated '{#': no matching '}'"));
            };
            if open > text_start {
                parts.push(Part::Text(source[text_start..open].to_string()));
            }
            let expression = parse_expression(&source[expression_start..close])
                .map_err(|error| parse_error(source, expression_start + error.at, &error.message))?;
            parts.push(Part::Expression(expression));
            text_start = close + 1;
        }
        if text_start < source.len() {
            parts.push(Part::Text(source[text_start..].to_string()));
        }
        Ok(Template { compiled: Arc::new(Compiled { source: source.to_string(), parts }) })
    }

    pub fn source(&self) -> &str {
        &self.compiled.source
    }

    /// True when the template has no `{#` part.
    pub fn is_literal(&self) -> bool {
        !self.compiled.parts.iter().any(|part| matches!(part, Part::Expression(_)))
    }

    /// One `{#expr}` and nothing else → that expression's typed value; mixed text → Value::String
    /// of the concatenation (null parts render as the empty string); literal → Value::String.
    /// An evaluation error anywhere makes the whole value Null, logged at debug level: Gravitee
    /// does the same (the attribute is not set, the condition is false).
    pub fn evaluate(&self, context: &dyn EvalContext) -> Value {
        match self.compiled.parts.as_slice() {
            [] => Value::String(String::new()),
            [Part::Text(text)] => Value::String(text.clone()),
            [Part::Expression(expression)] => self.or_null(evaluate(expression, context)),
            parts => self.or_null(render(parts, context).map(Value::String)),
        }
    }

    /// `evaluate` rendered as a string; None when the value is Null.
    pub fn evaluate_string(&self, context: &dyn EvalContext) -> Option<String> {
        match self.evaluate(context) {
            Value::Null => None,
            Value::String(text) => Some(text),
            value => Some(value.render()),
        }
    }

    /// For step conditions: true only for Bool(true) or the string "true" (any case); everything
    /// else, errors included, is false.
    pub fn evaluate_condition(&self, context: &dyn EvalContext) -> bool {
        match self.evaluate(context) {
            Value::Bool(b) => b,
            Value::String(text) => text.eq_ignore_ascii_case("true"),
            _ => false,
        }
    }

    fn or_null(&self, result: Result<Value, EvalError>) -> Value {
        result.unwrap_or_else(|error| {
            tracing::debug!(template = %self.compiled.source, %error, "expression evaluation failed; its value is null");
            Value::Null
        })
    }
}

/// A mixed template as text: null parts add nothing, the first error stops the rendering.
fn render(parts: &[Part], context: &dyn EvalContext) -> Result<String, EvalError> {
    let mut rendered = String::new();
    for part in parts {
        match part {
            Part::Text(text) => rendered.push_str(text),
            Part::Expression(expression) => match evaluate(expression, context)? {
                Value::Null => {}
                Value::String(text) => rendered.push_str(&text),
                value => rendered.push_str(&value.render()),
            },
        }
    }
    Ok(rendered)
}

/// The `}` that closes an expression starting at `from`: the first one at brace depth 0 outside
/// string literals (inline lists `{a, b}` nest; a doubled quote inside a string reads as two
/// adjacent strings, which skips the same characters).
fn matching_brace(source: &str, from: usize) -> Option<usize> {
    let bytes = source.as_bytes();
    let mut depth = 0usize;
    let mut at = from;
    while at < bytes.len() {
        match bytes[at] {
            quote @ (b'\'' | b'"') => {
                at += 1 + bytes[at + 1..].iter().position(|b| *b == quote)?;
            }
            b'{' => depth += 1,
            b'}' if depth == 0 => return Some(at),
            b'}' => depth -= 1,
            _ => {}
        }
        at += 1;
    }
    None
}

/// A parse error at byte `at` of `source`, reported with a character position.
fn parse_error(source: &str, at: usize, message: &str) -> ParseError {
    let position = source.char_indices().take_while(|(offset, _)| *offset < at).count();
    ParseError { position, message: message.to_string() }
}

#[cfg(test)]
#[path = "template_tests.rs"]
mod tests;
