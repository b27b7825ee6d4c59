//! The API definition model: what a user writes to describe an API, as Gravitee's v4 message API
//! definitions spell it, so that an exported Gravitee definition loads unchanged.
//!
//! This crate is pure: it parses, applies defaults and validates, and knows nothing of HTTP or
//! Kafka clients. Loading reports two kinds of findings:
//! - [`Problem`]s: the definition cannot be served (wrong type, unknown enum value, missing field);
//! - [`Ignored`] fields: present in the file but not implemented by kafka-edge, reported once so
//!   that nothing is dropped silently.

mod api;
mod entrypoint;
mod kafka;
mod load;
mod plan;
mod problem;
pub mod subscription;
mod validate;
mod value;
mod webhook;

pub use api::*;
pub use entrypoint::*;
pub use kafka::*;
pub use load::{
    check_unique, definition_files, load_definition, load_paths, load_security, load_str, normalize_context_path,
    read_definition, Format, Ignored, Loaded,
};
pub use plan::*;
pub use problem::Problem;
pub use value::Dynamic;
pub use webhook::{ProxyType, WebhookConfiguration, WebhookHttpOptions, WebhookProxy};
