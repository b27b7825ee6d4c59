//! Gravitee's expression language, the subset API definitions use: Spring SpEL expressions inside
//! templates such as `prefix-{#request.headers['X-Topic'][0]}` or
//! `{#jsonPath(#message.content, '$.order.id') != null}`.
//!
//! A [`Template`] is compiled once, when a definition loads, so syntax errors, unknown methods and
//! bad regexes are reported then, with a position. It is then evaluated per request or message
//! against an [`EvalContext`], which answers the roots (`#request`, `#context`, `#message`, `#api`,
//! `#properties`). Evaluation is pure and never fails loudly: an error yields null and a debug log
//! line, as in Gravitee.
//!
//! SpEL can reach any Java class or method; this language reaches none: only the methods on an
//! allow-list (string, list and map basics) and the `#jsonPath` function exist, so an expression
//! from a definition cannot do anything but compute a value. Nesting depth and expression length
//! are bounded, so no input can exhaust the stack. The reference is `docs/el.md`.
#![forbid(unsafe_code)]

mod ast;
mod context;
mod error;
mod eval;
mod json_path;
mod lexer;
mod parser;
mod template;
mod value;

#[cfg(test)]
mod test_support;

pub use context::{EvalContext, MapContext};
pub use error::ParseError;
pub use eval::{MAX_LIST_LEN, MAX_STRING_LEN};
pub use parser::{MAX_DEPTH, MAX_EXPRESSION_LEN};
pub use template::Template;
pub use value::{Key, Value};
