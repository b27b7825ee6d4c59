//! Evaluates a compiled expression against an [`EvalContext`]. Recursion follows the tree, whose
//! depth the parser capped; chains of steps run in a loop. Every failure is an [`EvalError`]
//! (the template turns it into null), never a panic, and results that could grow without bound
//! (`replace`, `+`, `split`) are checked against [`MAX_STRING_LEN`] and [`MAX_LIST_LEN`].

use crate::ast::{BinaryOp, Expr, Method, MethodCall, PathStep, Root, Step};
use crate::context::EvalContext;
use crate::error::{EvalError, EvalResult};
use crate::json_path::JsonPath;
use crate::value::{Key, Value};
use regex::{Regex, RegexBuilder};
use std::borrow::Cow;
use std::cmp::Ordering;

/// Longest string an expression may build (bytes).
pub const MAX_STRING_LEN: usize = 64 * 1024 * 1024;
/// Most items `split` may return.
pub const MAX_LIST_LEN: usize = 100_000;
/// Compiled size limit of a regex; generous for real patterns, bounded against hostile ones.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// `text matches pattern` is a whole-text match in Java, so the pattern is anchored.
pub(crate) fn full_match_regex(pattern: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(&format!(r"\A(?:{pattern})\z"))
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
}

pub(crate) fn split_regex(pattern: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(pattern).size_limit(REGEX_SIZE_LIMIT).dfa_size_limit(REGEX_SIZE_LIMIT).build()
}

pub(crate) fn evaluate(expr: &Expr, context: &dyn EvalContext) -> EvalResult<Value> {
    match expr {
        Expr::Literal(value) => Ok(value.clone()),
        Expr::List(items) => {
            items.iter().map(|item| evaluate(item, context)).collect::<EvalResult<_>>().map(Value::List)
        }
        Expr::Root(root) => resolve(root, context),
        Expr::JsonPath { json, path, compiled } => {
            let json = evaluate(json, context)?;
            let path = match compiled {
                Some(path) => Cow::Borrowed(path),
                None => Cow::Owned(dynamic_json_path(evaluate(path, context)?)?),
            };
            path.evaluate(&json)
        }
        Expr::Chain { base, steps } => {
            let mut current = evaluate(base, context)?;
            for step in steps {
                current = apply(current, step, context)?;
            }
            Ok(current)
        }
        Expr::Not(operand) => Ok(Value::Bool(!evaluate(operand, context)?.truth()?)),
        Expr::Negate(operand) => match evaluate(operand, context)? {
            Value::Int(i) => i.checked_neg().map(Value::Int).ok_or_else(overflow),
            Value::Float(f) => Ok(Value::Float(-f)),
            other => Err(EvalError::new(format!("cannot negate {}", other.type_name()))),
        },
        Expr::Binary { op, left, right } => binary(*op, left, right, context),
        Expr::Matches { subject, pattern, compiled } => {
            let subject = match evaluate(subject, context)? {
                Value::String(text) => text,
                other => {
                    return Err(EvalError::new(format!(
                        "'matches' needs a string on its left, not {}",
                        other.type_name()
                    )))
                }
            };
            let regex = match compiled {
                Some(regex) => Cow::Borrowed(regex),
                None => match evaluate(pattern, context)? {
                    Value::String(pattern) => Cow::Owned(full_match_regex(&pattern).map_err(invalid_regex)?),
                    other => {
                        return Err(EvalError::new(format!(
                            "'matches' needs a regex string, not {}",
                            other.type_name()
                        )))
                    }
                },
            };
            Ok(Value::Bool(regex.is_match(&subject)))
        }
        Expr::Ternary { condition, then, otherwise } => {
            if evaluate(condition, context)?.truth()? {
                evaluate(then, context)
            } else {
                evaluate(otherwise, context)
            }
        }
        Expr::Elvis { value, fallback } => match evaluate(value, context)? {
            Value::Null => evaluate(fallback, context),
            Value::String(text) if text.is_empty() => evaluate(fallback, context),
            value => Ok(value),
        },
    }
}

/// Asks the context once for the root and its whole path, evaluating index expressions first.
fn resolve(root: &Root, context: &dyn EvalContext) -> EvalResult<Value> {
    if let Some(keys) = &root.fixed {
        return Ok(context.resolve(&root.name, keys));
    }
    let keys = root
        .path
        .iter()
        .map(|step| match step {
            PathStep::Name(name) => Ok(Key::Name(name.clone())),
            PathStep::Index(index) => evaluate(index, context).map(Key::Index),
        })
        .collect::<EvalResult<Vec<_>>>()?;
    Ok(context.resolve(&root.name, &keys))
}

fn dynamic_json_path(path: Value) -> EvalResult<JsonPath> {
    match path {
        Value::String(text) => {
            JsonPath::parse(&text).map_err(|(_, message)| EvalError::new(format!("#jsonPath: {message}")))
        }
        other => Err(EvalError::new(format!("#jsonPath: the path must be a string, not {}", other.type_name()))),
    }
}

fn apply(current: Value, step: &Step, context: &dyn EvalContext) -> EvalResult<Value> {
    match step {
        Step::Property { safe: true, .. } | Step::Method(MethodCall { safe: true, .. }) if current == Value::Null => {
            Ok(Value::Null)
        }
        Step::Property { name, .. } => current.property(name).map(Cow::into_owned),
        Step::Index(index) => {
            let index = evaluate(index, context)?;
            current.index(&index).map(Cow::into_owned)
        }
        Step::Method(call) => {
            let args = call.args.iter().map(|arg| evaluate(arg, context)).collect::<EvalResult<Vec<_>>>()?;
            method(&current, call, &args)
        }
    }
}

fn method(receiver: &Value, call: &MethodCall, args: &[Value]) -> EvalResult<Value> {
    let name = call.method.name();
    match (call.method, receiver) {
        (_, Value::Null) => Err(EvalError::new(format!("'{name}()' called on null"))),
        (Method::Equals, _) => Ok(Value::Bool(receiver.equals(arg(args, 0)?))),
        (Method::ToString, _) => Ok(Value::String(receiver.render())),
        (_, Value::String(text)) => string_method(call, text, args),
        (Method::Size, Value::List(items)) => Ok(Value::Int(len(items.len()))),
        (Method::IsEmpty, Value::List(items)) => Ok(Value::Bool(items.is_empty())),
        (Method::Contains, Value::List(items)) => {
            let wanted = arg(args, 0)?;
            Ok(Value::Bool(items.iter().any(|item| item.equals(wanted))))
        }
        (Method::Size, Value::Map(entries)) => Ok(Value::Int(len(entries.len()))),
        (Method::IsEmpty, Value::Map(entries)) => Ok(Value::Bool(entries.is_empty())),
        (Method::ContainsKey, Value::Map(entries)) => Ok(Value::Bool(match arg(args, 0)? {
            Value::String(key) => entries.contains_key(key),
            Value::Null => false,
            other => entries.contains_key(&other.render()),
        })),
        (_, other) => Err(EvalError::new(format!("no method '{name}()' on {}", other.type_name()))),
    }
}

fn string_method(call: &MethodCall, text: &str, args: &[Value]) -> EvalResult<Value> {
    let name = call.method.name();
    let value = match call.method {
        Method::Contains => Value::Bool(text.contains(string_arg(args, 0, name)?)),
        Method::StartsWith => Value::Bool(text.starts_with(string_arg(args, 0, name)?)),
        Method::EndsWith => Value::Bool(text.ends_with(string_arg(args, 0, name)?)),
        Method::ToUpperCase => Value::String(text.to_uppercase()),
        Method::ToLowerCase => Value::String(text.to_lowercase()),
        Method::Length => Value::Int(len(text.chars().count())),
        Method::Substring => Value::String(substring(text, args)?),
        Method::Split => Value::List(split(text, args, call.compiled.as_ref())?),
        // Java's trim drops every character up to U+0020, not Unicode whitespace.
        Method::Trim => Value::String(text.trim_matches(|c: char| c <= ' ').to_string()),
        Method::Replace => Value::String(replace(text, string_arg(args, 0, name)?, string_arg(args, 1, name)?)?),
        Method::IsEmpty => Value::Bool(text.is_empty()),
        Method::EqualsIgnoreCase => Value::Bool(match arg(args, 0)? {
            Value::String(other) => text.to_lowercase() == other.to_lowercase(),
            _ => false,
        }),
        Method::Equals | Method::ToString | Method::Size | Method::ContainsKey => {
            return Err(EvalError::new(format!("no method '{name}()' on a string")))
        }
    };
    Ok(value)
}

/// Java's `substring(begin[, end])`, counted in characters.
fn substring(text: &str, args: &[Value]) -> EvalResult<String> {
    let count = text.chars().count();
    let begin = int_arg(args, 0, "substring")?;
    let end = match args.get(1) {
        Some(_) => int_arg(args, 1, "substring")?,
        None => count as i64,
    };
    let (Ok(begin), Ok(end)) = (usize::try_from(begin), usize::try_from(end)) else {
        return Err(EvalError::new(format!("substring({begin}, {end}) out of range")));
    };
    if begin > end || end > count {
        return Err(EvalError::new(format!("substring({begin}, {end}) out of range for length {count}")));
    }
    Ok(text.chars().skip(begin).take(end - begin).collect())
}

/// Java's `split(regex)`: trailing empty parts are dropped, and a zero-width match at the very
/// start yields no leading empty part.
fn split(text: &str, args: &[Value], compiled: Option<&Regex>) -> EvalResult<Vec<Value>> {
    let dynamic;
    let regex = match compiled {
        Some(regex) => regex,
        None => {
            dynamic = split_regex(string_arg(args, 0, "split")?).map_err(invalid_regex)?;
            &dynamic
        }
    };
    if !regex.is_match(text) {
        return Ok(vec![Value::String(text.to_string())]);
    }
    let mut parts: Vec<&str> = Vec::new();
    for (n, part) in regex.split(text).enumerate() {
        if n == 0 && part.is_empty() && regex.find(text).is_some_and(|m| m.is_empty()) {
            continue;
        }
        if parts.len() == MAX_LIST_LEN {
            return Err(EvalError::new(format!("split gives more than {MAX_LIST_LEN} parts")));
        }
        parts.push(part);
    }
    while parts.last().is_some_and(|part| part.is_empty()) {
        parts.pop();
    }
    Ok(parts.into_iter().map(|part| Value::String(part.to_string())).collect())
}

/// Java's literal `replace`; the result size is checked before it is built.
fn replace(text: &str, from: &str, to: &str) -> EvalResult<String> {
    let occurrences = if from.is_empty() { text.chars().count() + 1 } else { text.matches(from).count() };
    let grown = occurrences.saturating_mul(to.len());
    if text.len().saturating_add(grown) > MAX_STRING_LEN {
        return Err(too_long());
    }
    Ok(text.replace(from, to))
}

fn binary(op: BinaryOp, left: &Expr, right: &Expr, context: &dyn EvalContext) -> EvalResult<Value> {
    // `and`/`or` look at their right side only when needed, like Java's && and ||.
    match op {
        BinaryOp::And => {
            let result = evaluate(left, context)?.truth()? && evaluate(right, context)?.truth()?;
            return Ok(Value::Bool(result));
        }
        BinaryOp::Or => {
            let result = evaluate(left, context)?.truth()? || evaluate(right, context)?.truth()?;
            return Ok(Value::Bool(result));
        }
        _ => {}
    }
    let left = evaluate(left, context)?;
    let right = evaluate(right, context)?;
    let value = match op {
        BinaryOp::Eq => Value::Bool(left.equals(&right)),
        BinaryOp::Ne => Value::Bool(!left.equals(&right)),
        BinaryOp::Lt => Value::Bool(left.compare(&right)? == Ordering::Less),
        BinaryOp::Gt => Value::Bool(left.compare(&right)? == Ordering::Greater),
        BinaryOp::Le => Value::Bool(left.compare(&right)? != Ordering::Greater),
        BinaryOp::Ge => Value::Bool(left.compare(&right)? != Ordering::Less),
        BinaryOp::Add => add(left, right)?,
        _ => arithmetic(op, &left, &right)?,
    };
    Ok(value)
}

/// `+` concatenates when either side is a string (null shows as "null", as in Java), else adds.
fn add(left: Value, right: Value) -> EvalResult<Value> {
    match (left, right) {
        (Value::String(mut text), other) => {
            let other = other.render();
            if text.len().saturating_add(other.len()) > MAX_STRING_LEN {
                return Err(too_long());
            }
            text.push_str(&other);
            Ok(Value::String(text))
        }
        (other, Value::String(text)) => {
            let mut rendered = other.render();
            if rendered.len().saturating_add(text.len()) > MAX_STRING_LEN {
                return Err(too_long());
            }
            rendered.push_str(&text);
            Ok(Value::String(rendered))
        }
        (left, right) => arithmetic(BinaryOp::Add, &left, &right),
    }
}

/// Numeric operators: integers stay integers (overflow and division by zero are errors, as Java's
/// checked cases are), any decimal makes the result decimal.
fn arithmetic(op: BinaryOp, left: &Value, right: &Value) -> EvalResult<Value> {
    match (left, right) {
        (Value::Int(a), Value::Int(b)) => {
            if matches!(op, BinaryOp::Div | BinaryOp::Rem) && *b == 0 {
                return Err(EvalError::new("division by zero"));
            }
            let result = match op {
                BinaryOp::Add => a.checked_add(*b),
                BinaryOp::Sub => a.checked_sub(*b),
                BinaryOp::Mul => a.checked_mul(*b),
                BinaryOp::Div => a.checked_div(*b),
                _ => a.checked_rem(*b),
            };
            result.map(Value::Int).ok_or_else(overflow)
        }
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
            let (a, b) = (as_f64(left), as_f64(right));
            Ok(Value::Float(match op {
                BinaryOp::Add => a + b,
                BinaryOp::Sub => a - b,
                BinaryOp::Mul => a * b,
                BinaryOp::Div => a / b,
                _ => a % b,
            }))
        }
        _ => Err(EvalError::new(format!(
            "cannot apply '{}' to {} and {}",
            op.symbol(),
            left.type_name(),
            right.type_name()
        ))),
    }
}

fn as_f64(value: &Value) -> f64 {
    match value {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        _ => f64::NAN,
    }
}

fn arg(args: &[Value], n: usize) -> EvalResult<&Value> {
    args.get(n).ok_or_else(|| EvalError::new(format!("missing argument {}", n + 1)))
}

fn string_arg<'a>(args: &'a [Value], n: usize, method: &str) -> EvalResult<&'a str> {
    match arg(args, n)? {
        Value::String(text) => Ok(text),
        other => Err(EvalError::new(format!("'{method}' needs a string argument, not {}", other.type_name()))),
    }
}

fn int_arg(args: &[Value], n: usize, method: &str) -> EvalResult<i64> {
    match arg(args, n)? {
        Value::Int(i) => Ok(*i),
        other => Err(EvalError::new(format!("'{method}' needs an integer argument, not {}", other.type_name()))),
    }
}

fn len(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn overflow() -> EvalError {
    EvalError::new("integer overflow")
}

fn too_long() -> EvalError {
    EvalError::new(format!("string longer than {MAX_STRING_LEN} bytes"))
}

fn invalid_regex(error: regex::Error) -> EvalError {
    EvalError::new(format!("invalid regex: {error}"))
}

#[cfg(test)]
#[path = "eval_tests.rs"]
mod tests;
