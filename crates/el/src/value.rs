//! The values expressions compute with, and what every caller needs from them: Java-like
//! rendering (a Gravitee user sees the same text Gravitee would print), navigation by property and
//! index (shared by contexts and the evaluator), and SpEL's equality and ordering rules.

use crate::error::{EvalError, EvalResult};
use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// A value seen or produced by an expression. Integers are Java `long`s, decimals Java `double`s;
/// contexts hand out text (headers, attributes, content) as `String`.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    List(Vec<Value>),
    Map(BTreeMap<String, Value>),
}

/// One step of a path: `.name` or `[index]`.
#[derive(Debug, Clone, PartialEq)]
pub enum Key {
    Name(String),
    Index(Value),
}

/// Missing map entries answer this, so navigation can hand out references.
static NULL: Value = Value::Null;

impl Value {
    /// Java-like rendering: Int without ".0", Float like Java's `Double.toString` for common
    /// values, List as "[a, b]", Map as "{k=v}", Null as "null".
    pub fn render(&self) -> String {
        match self {
            Value::String(text) => text.clone(),
            other => {
                let mut out = String::new();
                other.render_into(&mut out);
                out
            }
        }
    }

    /// Navigation for contexts: `Name(n)` and `Index(String)` on a Map give the entry, `Index(Int)`
    /// on a List the element. Anything that does not fit (or is missing) gives Null: a context
    /// answers, it does not fail.
    pub fn navigate(&self, path: &[Key]) -> Value {
        let mut current = self;
        for (done, key) in path.iter().enumerate() {
            match current.access(key) {
                Ok(Cow::Borrowed(next)) => current = next,
                // Only indexing a string creates a value; the rest of the path continues on it.
                Ok(Cow::Owned(next)) => return next.navigate(&path[done + 1..]),
                Err(_) => return Value::Null,
            }
        }
        current.clone()
    }

    /// One strict step, for the evaluator: a missing map entry is null, but a property of null, an
    /// index out of range or a step that does not fit the value is an error (as in SpEL).
    pub(crate) fn access(&self, key: &Key) -> EvalResult<Cow<'_, Value>> {
        match key {
            Key::Name(name) => self.property(name),
            Key::Index(index) => self.index(index),
        }
    }

    pub(crate) fn property(&self, name: &str) -> EvalResult<Cow<'_, Value>> {
        match self {
            Value::Map(entries) => Ok(Cow::Borrowed(entries.get(name).unwrap_or(&NULL))),
            Value::Null => Err(EvalError::new(format!("property '{name}' of null"))),
            other => Err(EvalError::new(format!("no property '{name}' on {}", other.type_name()))),
        }
    }

    pub(crate) fn index(&self, index: &Value) -> EvalResult<Cow<'_, Value>> {
        match (self, index) {
            (Value::Map(entries), Value::String(key)) => Ok(Cow::Borrowed(entries.get(key).unwrap_or(&NULL))),
            (Value::Map(_), Value::Null) => Ok(Cow::Borrowed(&NULL)),
            // SpEL converts an index to the map's key type; ours are strings.
            (Value::Map(entries), key @ (Value::Int(_) | Value::Float(_) | Value::Bool(_))) => {
                Ok(Cow::Borrowed(entries.get(&key.render()).unwrap_or(&NULL)))
            }
            (Value::List(items), index) => {
                let position = position(index, items.len())?;
                Ok(Cow::Borrowed(&items[position]))
            }
            (Value::String(text), index) => {
                let position = position(index, usize::MAX)?;
                let character = text
                    .chars()
                    .nth(position)
                    .ok_or_else(|| EvalError::new(format!("index {position} out of bounds for a string")))?;
                Ok(Cow::Owned(Value::String(character.to_string())))
            }
            (Value::Null, _) => Err(EvalError::new("cannot index into null")),
            (other, _) => Err(EvalError::new(format!("cannot index into {}", other.type_name()))),
        }
    }

    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a decimal",
            Value::String(_) => "a string",
            Value::List(_) => "a list",
            Value::Map(_) => "a map",
        }
    }

    /// SpEL's `==`: numbers compare by value whatever their kind, everything else structurally.
    pub(crate) fn equals(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Int(a), Value::Float(b)) | (Value::Float(b), Value::Int(a)) => (*a as f64) == *b,
            (Value::List(a), Value::List(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.equals(y)),
            (Value::Map(a), Value::Map(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|((ka, va), (kb, vb))| ka == kb && va.equals(vb))
            }
            _ => self == other,
        }
    }

    /// SpEL's ordering for `<`, `>`, `<=`, `>=`: numbers by value, strings and booleans naturally,
    /// and null below everything. Other pairs cannot be compared.
    pub(crate) fn compare(&self, other: &Value) -> EvalResult<Ordering> {
        match (self, other) {
            (Value::Int(a), Value::Int(b)) => Ok(a.cmp(b)),
            (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
                Ok(self.as_f64().total_cmp(&other.as_f64()))
            }
            (Value::String(a), Value::String(b)) => Ok(a.cmp(b)),
            (Value::Bool(a), Value::Bool(b)) => Ok(a.cmp(b)),
            (Value::Null, Value::Null) => Ok(Ordering::Equal),
            (Value::Null, _) => Ok(Ordering::Less),
            (_, Value::Null) => Ok(Ordering::Greater),
            _ => Err(EvalError::new(format!("cannot compare {} with {}", self.type_name(), other.type_name()))),
        }
    }

    /// A condition operand (`&&`, `||`, `!`, `? :`): a boolean, or the strings "true"/"false" that
    /// SpEL's conversion accepts. Null is an error, as in SpEL.
    pub(crate) fn truth(&self) -> EvalResult<bool> {
        match self {
            Value::Bool(b) => Ok(*b),
            Value::String(text) if text.eq_ignore_ascii_case("true") => Ok(true),
            Value::String(text) if text.eq_ignore_ascii_case("false") => Ok(false),
            other => Err(EvalError::new(format!("{} is not a boolean", other.type_name()))),
        }
    }

    fn as_f64(&self) -> f64 {
        match self {
            Value::Int(i) => *i as f64,
            Value::Float(f) => *f,
            _ => f64::NAN,
        }
    }

    fn render_into(&self, out: &mut String) {
        match self {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => out.push_str(&i.to_string()),
            Value::Float(f) => out.push_str(&render_double(*f)),
            Value::String(text) => out.push_str(text),
            Value::List(items) => {
                out.push('[');
                for (n, item) in items.iter().enumerate() {
                    if n > 0 {
                        out.push_str(", ");
                    }
                    item.render_into(out);
                }
                out.push(']');
            }
            Value::Map(entries) => {
                out.push('{');
                for (n, (key, value)) in entries.iter().enumerate() {
                    if n > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(key);
                    out.push('=');
                    value.render_into(out);
                }
                out.push('}');
            }
        }
    }

    /// A JSON document as a value: objects become maps, arrays lists. serde_json's own nesting
    /// limit (128) bounds the recursion.
    pub fn from_json(json: &serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => {
                n.as_i64().map_or_else(|| Value::Float(n.as_f64().unwrap_or(f64::NAN)), Value::Int)
            }
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(items) => Value::List(items.iter().map(Value::from_json).collect()),
            serde_json::Value::Object(entries) => {
                Value::Map(entries.iter().map(|(k, v)| (k.clone(), Value::from_json(v))).collect())
            }
        }
    }
}

/// A list or string index: a non-negative integer (or its decimal text, which SpEL converts)
/// below `len`.
fn position(index: &Value, len: usize) -> EvalResult<usize> {
    let wanted = match index {
        Value::Int(i) => *i,
        Value::String(text) => text.parse().map_err(|_| EvalError::new(format!("index '{text}' is not a number")))?,
        other => return Err(EvalError::new(format!("{} is not an index", other.type_name()))),
    };
    usize::try_from(wanted)
        .ok()
        .filter(|&at| at < len)
        .ok_or_else(|| EvalError::new(format!("index {wanted} out of bounds")))
}

/// Java's `Double.toString`: plain notation with at least one decimal between 10^-3 and 10^7,
/// scientific ("1.0E7") outside. Rust prints the same shortest round-trip digits.
fn render_double(value: f64) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    let magnitude = value.abs();
    if magnitude == 0.0 || (1e-3..1e7).contains(&magnitude) {
        let plain = value.to_string();
        return if plain.contains('.') { plain } else { format!("{plain}.0") };
    }
    let scientific = format!("{value:e}");
    match scientific.split_once('e') {
        Some((mantissa, exponent)) if mantissa.contains('.') => format!("{mantissa}E{exponent}"),
        Some((mantissa, exponent)) => format!("{mantissa}.0E{exponent}"),
        None => scientific,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, Value)]) -> Value {
        Value::Map(entries.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
    }

    fn s(text: &str) -> Value {
        Value::String(text.into())
    }

    #[test]
    fn renders_like_java() {
        assert_eq!(Value::Null.render(), "null");
        assert_eq!(Value::Int(-42).render(), "-42");
        assert_eq!(Value::Float(1.0).render(), "1.0");
        assert_eq!(Value::Float(1.5).render(), "1.5");
        assert_eq!(Value::Float(0.001).render(), "0.001");
        assert_eq!(Value::Float(1e7).render(), "1.0E7");
        assert_eq!(Value::Float(1.25e-5).render(), "1.25E-5");
        assert_eq!(Value::Float(-0.0).render(), "-0.0");
        assert_eq!(Value::Float(f64::NAN).render(), "NaN");
        assert_eq!(Value::Float(f64::NEG_INFINITY).render(), "-Infinity");
        assert_eq!(Value::List(vec![s("a"), Value::Int(1), Value::Null]).render(), "[a, 1, null]");
        assert_eq!(map(&[("k", s("v")), ("n", Value::Bool(true))]).render(), "{k=v, n=true}");
    }

    #[test]
    fn navigates_maps_lists_and_strings() {
        let headers = map(&[("x-topic", Value::List(vec![s("orders"), s("audit")]))]);
        let request = map(&[("headers", headers)]);
        let path = [Key::Name("headers".into()), Key::Index(s("x-topic")), Key::Index(Value::Int(1))];
        assert_eq!(request.navigate(&path), s("audit"));
        assert_eq!(
            request.navigate(&[Key::Index(s("headers")), Key::Name("x-topic".into())]).render(),
            "[orders, audit]"
        );
        assert_eq!(request.navigate(&[]), request);
        let first_letter = [
            Key::Name("headers".into()),
            Key::Index(s("x-topic")),
            Key::Index(Value::Int(0)),
            Key::Index(Value::Int(0)),
        ];
        assert_eq!(request.navigate(&first_letter), s("o"));
    }

    #[test]
    fn navigation_answers_null_for_anything_missing() {
        let list = Value::List(vec![s("a")]);
        assert_eq!(list.navigate(&[Key::Index(Value::Int(3))]), Value::Null);
        assert_eq!(list.navigate(&[Key::Index(Value::Int(-1))]), Value::Null);
        assert_eq!(list.navigate(&[Key::Name("size".into())]), Value::Null);
        assert_eq!(Value::Null.navigate(&[Key::Name("a".into()), Key::Name("b".into())]), Value::Null);
        assert_eq!(map(&[]).navigate(&[Key::Name("absent".into()), Key::Index(Value::Int(0))]), Value::Null);
    }

    #[test]
    fn strict_access_distinguishes_missing_from_impossible() {
        assert_eq!(map(&[]).property("absent").map(Cow::into_owned), Ok(Value::Null));
        assert!(Value::Null.property("a").is_err());
        assert!(Value::List(vec![]).index(&Value::Int(0)).is_err());
        assert!(s("ab").property("length").is_err());
        assert_eq!(map(&[("1", s("one"))]).index(&Value::Int(1)).map(Cow::into_owned), Ok(s("one")));
        assert_eq!(Value::List(vec![s("z")]).index(&s("0")).map(Cow::into_owned), Ok(s("z")));
    }

    #[test]
    fn equality_and_order_follow_spel() {
        assert!(Value::Int(1).equals(&Value::Float(1.0)));
        assert!(!s("1").equals(&Value::Int(1)));
        assert!(Value::Null.equals(&Value::Null));
        assert!(Value::List(vec![Value::Int(2)]).equals(&Value::List(vec![Value::Float(2.0)])));
        assert_eq!(Value::Int(2).compare(&Value::Float(2.5)), Ok(Ordering::Less));
        assert_eq!(s("b").compare(&s("a")), Ok(Ordering::Greater));
        assert_eq!(Value::Null.compare(&Value::Int(0)), Ok(Ordering::Less));
        assert!(s("1").compare(&Value::Int(1)).is_err());
    }

    #[test]
    fn truth_accepts_booleans_and_their_text() {
        assert_eq!(Value::Bool(true).truth(), Ok(true));
        assert_eq!(s("FALSE").truth(), Ok(false));
        assert!(Value::Null.truth().is_err());
        assert!(s("yes").truth().is_err());
    }
}
