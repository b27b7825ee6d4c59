//! What an expression can see. The evaluator does not know requests or messages: it asks an
//! [`EvalContext`] for a root and the path after it, so the gateway can answer from its own
//! structures and build only what is asked for.

use crate::value::{Key, Value};
use std::collections::BTreeMap;

/// The roots of an expression (`#request`, `#context`, `#message`, `#api`, `#properties`, …).
///
/// The evaluator collects the longest chain of property and index accesses that follows a root
/// (`#message.headers['x'][0]` → root "message", path `[Name("headers"), Index(String("x")),
/// Index(Int(0))]`; index expressions are evaluated first), stopping before the first method call,
/// and asks the context once for it. The result then goes through the rest of the expression
/// (methods, operators). A context answers Null for unknown roots and for anything missing.
pub trait EvalContext {
    fn resolve(&self, root: &str, path: &[Key]) -> Value;
}

/// A context over a plain map of root → Value (tests, simple callers): resolve = navigate.
#[derive(Debug, Clone, Default)]
pub struct MapContext(pub BTreeMap<String, Value>);

impl EvalContext for MapContext {
    fn resolve(&self, root: &str, path: &[Key]) -> Value {
        self.0.get(root).map_or(Value::Null, |value| value.navigate(path))
    }
}
