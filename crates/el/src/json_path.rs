//! `#jsonPath(json, path)`: the practical subset of JSONPath that message flows use to pick one
//! value out of a payload (`$.order.id`, `$['order']['lines'][0]`, `$.items[-1]`). Wildcards,
//! filters, slices and deep scans select several values; they are rejected at load rather than
//! half-supported.

use crate::error::{EvalError, EvalResult};
use crate::value::Value;

/// A compiled path: `$` followed by member and element selections.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct JsonPath {
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Member(String),
    /// Negative counts from the end, as in Jayway JsonPath.
    Element(i64),
}

impl JsonPath {
    /// Compiles `path`; the error carries a byte offset into `path`. As in Jayway JsonPath (which
    /// Gravitee uses), a path without `$` is taken as relative to the root.
    pub(crate) fn parse(path: &str) -> Result<JsonPath, (usize, String)> {
        let (mut at, relative) = match path.strip_prefix('$') {
            Some(_) => (1, false),
            None => (0, true),
        };
        let bytes = path.as_bytes();
        let mut segments = Vec::new();
        if relative && !path.is_empty() {
            let (name, len) = member_name(path, 0)?;
            segments.push(Segment::Member(name));
            at = len;
        }
        while at < bytes.len() {
            match bytes[at] {
                b'.' if bytes.get(at + 1) == Some(&b'.') => {
                    return Err((at, "deep scan ('..') is not supported".into()))
                }
                b'.' => {
                    let (name, len) = member_name(path, at + 1)?;
                    segments.push(Segment::Member(name));
                    at += 1 + len;
                }
                b'[' => {
                    let (segment, len) = bracket(path, at)?;
                    segments.push(segment);
                    at += len;
                }
                _ => return Err((at, "expected '.' or '[' in JSONPath".into())),
            }
        }
        Ok(JsonPath { segments })
    }

    /// The value at this path in `json`: a JSON text (message content) or an already structured
    /// value. A path that leads nowhere gives null; text that is not JSON is an error.
    pub(crate) fn evaluate(&self, json: &Value) -> EvalResult<Value> {
        match json {
            Value::String(text) => {
                let document: serde_json::Value = serde_json::from_str(text)
                    .map_err(|error| EvalError::new(format!("#jsonPath: not JSON: {error}")))?;
                Ok(self.select(&document).map_or(Value::Null, Value::from_json))
            }
            Value::Map(_) | Value::List(_) => Ok(self.select_value(json)),
            other => Err(EvalError::new(format!("#jsonPath: cannot read JSON from {}", other.type_name()))),
        }
    }

    fn select<'a>(&self, mut current: &'a serde_json::Value) -> Option<&'a serde_json::Value> {
        for segment in &self.segments {
            current = match (segment, current) {
                (Segment::Member(name), serde_json::Value::Object(members)) => members.get(name)?,
                (Segment::Element(index), serde_json::Value::Array(items)) => {
                    items.get(element(*index, items.len())?)?
                }
                _ => return None,
            };
        }
        Some(current)
    }

    fn select_value(&self, mut current: &Value) -> Value {
        for segment in &self.segments {
            current = match (segment, current) {
                (Segment::Member(name), Value::Map(entries)) => match entries.get(name) {
                    Some(next) => next,
                    None => return Value::Null,
                },
                (Segment::Element(index), Value::List(items)) => {
                    match element(*index, items.len()).and_then(|at| items.get(at)) {
                        Some(next) => next,
                        None => return Value::Null,
                    }
                }
                _ => return Value::Null,
            };
        }
        current.clone()
    }
}

/// A dotted member name starting at `from`: up to the next `.` or `[`.
fn member_name(path: &str, from: usize) -> Result<(String, usize), (usize, String)> {
    let rest = &path[from..];
    let len = rest.find(['.', '[']).unwrap_or(rest.len());
    match &rest[..len] {
        "" => Err((from, "expected a member name in JSONPath".into())),
        "*" => Err((from, "wildcards are not supported in JSONPath".into())),
        name => Ok((name.to_string(), len)),
    }
}

/// `['name']`, `["name"]` or `[n]` starting at the `[` at `from`.
fn bracket(path: &str, from: usize) -> Result<(Segment, usize), (usize, String)> {
    let inner_start = from + 1;
    let rest = &path[inner_start..];
    if let Some(quote) = rest.chars().next().filter(|c| *c == '\'' || *c == '"') {
        let name_end = rest[1..].find(quote).ok_or((from, "unterminated name in JSONPath".to_string()))? + 1;
        if rest[name_end + 1..].starts_with(']') {
            return Ok((Segment::Member(rest[1..name_end].to_string()), name_end + 3));
        }
        return Err((inner_start + name_end + 1, "expected ']' in JSONPath (one name per bracket)".into()));
    }
    let close = rest.find(']').ok_or((from, "unterminated '[' in JSONPath".to_string()))?;
    let inner = rest[..close].trim();
    inner
        .parse()
        .map(|index| (Segment::Element(index), close + 2))
        .map_err(|_| (inner_start, format!("unsupported JSONPath selector '[{inner}]': use ['name'] or [index]")))
}

fn element(index: i64, len: usize) -> Option<usize> {
    if index >= 0 {
        usize::try_from(index).ok()
    } else {
        len.checked_sub(usize::try_from(index.unsigned_abs()).ok()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json: &str, path: &str) -> Value {
        match JsonPath::parse(path) {
            Ok(compiled) => compiled.evaluate(&Value::String(json.into())).unwrap_or(Value::String("error".into())),
            Err(error) => Value::String(format!("bad path: {error:?}")),
        }
    }

    const ORDER: &str =
        r#"{"order": {"id": "o-17", "total": 12.5, "lines": [{"sku": "a"}, {"sku": "b"}], "paid": true, "my key": 3}}"#;

    #[test]
    fn selects_members_and_elements() {
        assert_eq!(read(ORDER, "$.order.id"), Value::String("o-17".into()));
        assert_eq!(read(ORDER, "$['order']['total']"), Value::Float(12.5));
        assert_eq!(read(ORDER, r#"$["order"].lines[1].sku"#), Value::String("b".into()));
        assert_eq!(read(ORDER, "$.order.lines[-1].sku"), Value::String("b".into()));
        assert_eq!(read(ORDER, "$.order['my key']"), Value::Int(3));
        assert_eq!(read(ORDER, "order.paid"), Value::Bool(true));
        assert_eq!(read("[1, 2]", "$[0]"), Value::Int(1));
    }

    #[test]
    fn returns_structures_and_the_whole_document() {
        assert_eq!(read(ORDER, "$.order.lines[0]").render(), "{sku=a}");
        assert_eq!(read("[1, 2]", "$").render(), "[1, 2]");
    }

    #[test]
    fn absent_is_null_and_bad_json_an_error() {
        assert_eq!(read(ORDER, "$.order.customer"), Value::Null);
        assert_eq!(read(ORDER, "$.order.lines[5]"), Value::Null);
        assert_eq!(read(ORDER, "$.order.lines[-9]"), Value::Null);
        assert_eq!(read(ORDER, "$.order.id.deeper"), Value::Null);
        assert_eq!(read("not json", "$.a"), Value::String("error".into()));
        assert!(JsonPath::parse("$").is_ok_and(|path| path.evaluate(&Value::Null).is_err()));
    }

    #[test]
    fn navigates_structured_values_too() {
        let value = Value::Map([("a".to_string(), Value::List(vec![Value::Int(7)]))].into());
        assert!(JsonPath::parse("$.a[0]").is_ok_and(|path| path.evaluate(&value) == Ok(Value::Int(7))));
    }

    #[test]
    fn rejects_what_selects_many() {
        assert_eq!(JsonPath::parse("$..id").unwrap_err().0, 1);
        assert_eq!(JsonPath::parse("$.items[*]").unwrap_err().0, 8);
        assert_eq!(JsonPath::parse("$.*").unwrap_err().0, 2);
        assert!(JsonPath::parse("$.items[?(@.a)]").is_err());
        assert!(JsonPath::parse("$.items[0:2]").is_err());
        assert!(JsonPath::parse("$.a[").is_err());
        assert!(JsonPath::parse("$['a'").is_err());
        assert!(JsonPath::parse("$x").is_err());
    }
}
