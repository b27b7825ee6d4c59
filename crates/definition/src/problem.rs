//! One shape for everything found wrong while an API loads, from the definition's fields to a
//! policy's configuration to a TLS store the endpoint reads: where (a path below the definition's
//! root) and why. Each layer reports paths relative to what it was given and the caller places
//! them with [`Problem::under`], so no layer re-bases paths by hand.

use std::fmt;

/// A reason an API (or another document the gateway loads) cannot be served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file (or other origin) the problem was found in; empty until [`Problem::in_file`].
    pub file: String,
    /// Path of the offending field, e.g. `listeners[0].entrypoints[1].qos`; empty for the
    /// document (or the block the reporter was given) as a whole.
    pub path: String,
    /// What is wrong: the value and the allowed values where there are any. Never a secret.
    pub message: String,
}

impl Problem {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self { file: String::new(), path: path.into(), message: message.into() }
    }

    /// The same problem seen from one level up: `filter` under `flows[0].subscribe[1].configuration`
    /// is `flows[0].subscribe[1].configuration.filter`.
    #[must_use]
    pub fn under(mut self, prefix: &str) -> Self {
        self.path = join(prefix, &self.path);
        self
    }

    /// Names the file the problem was found in.
    #[must_use]
    pub fn in_file(mut self, file: &str) -> Self {
        self.file = file.to_string();
        self
    }

    fn shown_path(&self) -> &str {
        if self.path.is_empty() {
            "(root)"
        } else {
            &self.path
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.file.is_empty() {
            write!(f, "{}: ", self.file)?;
        }
        write!(f, "{}: {}", self.shown_path(), self.message)
    }
}

impl std::error::Error for Problem {}

/// `base.field`, or `base[0]` when the field is an index; either side may be empty.
pub fn join(base: &str, field: &str) -> String {
    match (base.is_empty(), field.is_empty(), field.starts_with('[')) {
        (true, _, _) => field.to_string(),
        (false, true, _) => base.to_string(),
        (false, false, true) => format!("{base}{field}"),
        (false, false, false) => format!("{base}.{field}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_joins_paths_with_dots_and_keeps_indexes_attached() {
        let problem =
            Problem::new("filter", "invalid expression").under("configuration").under("flows[0].subscribe[1]");
        assert_eq!(problem.path, "flows[0].subscribe[1].configuration.filter");
        assert_eq!(Problem::new("[2].id", "x").under("subscriptions").path, "subscriptions[2].id");
        assert_eq!(Problem::new("", "whole block").under("security").path, "security");
    }

    #[test]
    fn display_names_the_file_when_known_and_the_root_when_there_is_no_path() {
        assert_eq!(Problem::new("id", "missing").to_string(), "id: missing");
        assert_eq!(Problem::new("id", "missing").in_file("api.json").to_string(), "api.json: id: missing");
        assert_eq!(Problem::new("", "invalid JSON").in_file("a.json").to_string(), "a.json: (root): invalid JSON");
    }
}
