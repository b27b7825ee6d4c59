//! The two failures of the language. A [`ParseError`] stops a definition from loading, so it says
//! where. An [`EvalError`] never leaves the crate: Gravitee logs a failed evaluation and carries on
//! with null, and so do we (see `Template::evaluate`).

/// A template or expression that cannot be compiled. `position` counts characters (not bytes)
/// from the start of the template source, starting at 0.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("at position {position}: {message}")]
pub struct ParseError {
    pub position: usize,
    pub message: String,
}

/// A syntax error inside one expression, with a byte offset into that expression's text; the
/// template turns it into a [`ParseError`] with a character position in the whole source.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SyntaxError {
    pub at: usize,
    pub message: String,
}

impl SyntaxError {
    pub(crate) fn new(at: usize, message: impl Into<String>) -> Self {
        Self { at, message: message.into() }
    }
}

/// Why an evaluation produced no value: a type mismatch, an index out of range, a method called on
/// null, bad JSON given to `#jsonPath`, a limit reached.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct EvalError(pub String);

impl EvalError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

pub(crate) type EvalResult<T> = Result<T, EvalError>;
