//! The policies, with Gravitee's configuration shapes so existing definitions load unchanged.
//! Each policy is one file below `policy/` that implements [`Policy`] for the phases it acts in,
//! plus one line in [`REGISTRY`]. A policy acts by phase, not by its `scope` field (which
//! Gravitee's v4 engine ignores too).

mod assign_attributes;
mod interrupt;
mod message_filtering;
mod transform_headers;

use kafka_edge_definition::Problem;
use kafka_edge_el::Template;
use kafka_edge_message::{EndpointFailure, ExecutionContext, Headers, Message, Scope};
use serde::Deserialize;
use serde_json::Value as Json;

/// Where a step runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Request,
    Response,
    Publish,
    Subscribe,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Request => "request",
            Phase::Response => "response",
            Phase::Publish => "publish",
            Phase::Subscribe => "subscribe",
        }
    }
}

/// What a step decided for the message or request it saw.
pub(crate) enum Outcome {
    Continue,
    /// The message is filtered out (subscribe only).
    Drop,
    Interrupt(EndpointFailure),
}

/// A compiled policy. Each method is one phase (the publish and subscribe phases share
/// `on_message`); a policy implements the phases it acts in, the others let everything through.
pub(crate) trait Policy: Send + Sync {
    /// Once per connection, before the entrypoint: may set context attributes and change the
    /// request's headers.
    fn on_request(&self, _context: &mut ExecutionContext) -> Outcome {
        Outcome::Continue
    }

    /// Once per connection, on the response's headers before any body byte is sent.
    fn on_response(&self, _context: &mut ExecutionContext, _headers: &mut Headers) -> Outcome {
        Outcome::Continue
    }

    /// Once per message: a message a client publishes, or one on its way to the client.
    fn on_message(&self, _context: &ExecutionContext, _message: &mut Message) -> Outcome {
        Outcome::Continue
    }
}

/// Compiles a step's configuration for the phase it is in; paths in problems are below the step.
type Compile = fn(Json, Phase) -> Result<Box<dyn Policy>, Problem>;

/// The policies this version implements, by the name a step's `policy` field gives.
const REGISTRY: &[(&str, Compile)] = &[
    ("assign-attributes", assign_attributes::compile),
    ("transform-headers", transform_headers::compile),
    ("message-filtering", message_filtering::compile),
    ("interrupt", interrupt::compile),
];

/// The policy `name` with its configuration, or the problem (path below the step).
pub(crate) fn compile(name: &str, configuration: &Json, phase: Phase) -> Result<Box<dyn Policy>, Problem> {
    let Some((_, compile)) = REGISTRY.iter().find(|(known, _)| *known == name) else {
        let known: Vec<String> = REGISTRY.iter().map(|(known, _)| format!("`{known}`")).collect();
        return Err(Problem::new("policy", format!("unknown policy `{name}`, expected one of {}", known.join(", "))));
    };
    let configuration = if configuration.is_null() { Json::Object(Default::default()) } else { configuration.clone() };
    compile(configuration, phase)
}

/// Gravitee's `{name, value}` pair, where the value is an expression.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NameValue {
    name: String,
    #[serde(default)]
    value: String,
}

/// Compiles each pair's value; `path` names the list (`configuration.attributes`).
fn templates(pairs: Vec<NameValue>, path: &str) -> Result<Vec<(String, Template)>, Problem> {
    pairs
        .into_iter()
        .enumerate()
        .map(|(i, pair)| Ok((pair.name, template(&pair.value, &format!("{path}[{i}].value"))?)))
        .collect()
}

/// Evaluates every (name, template) pair; pairs whose value is null are left out, as Gravitee
/// does not set an attribute or header whose expression failed.
fn evaluate_all(scope: &Scope<'_>, pairs: &[(String, Template)]) -> Vec<(String, String)> {
    pairs.iter().filter_map(|(name, value)| Some((name.clone(), value.evaluate_string(scope)?))).collect()
}

/// A policy's configuration as `T`; problems are placed below `configuration`.
fn parse<T: serde::de::DeserializeOwned>(configuration: Json) -> Result<T, Problem> {
    serde_path_to_error::deserialize(configuration).map_err(|error| {
        let path = error.path().to_string();
        let path = if path == "." { String::new() } else { path };
        Problem::new(path, error.inner().to_string()).under("configuration")
    })
}

pub(crate) fn template(source: &str, path: &str) -> Result<Template, Problem> {
    Template::parse(source).map_err(|error| Problem::new(path, format!("invalid expression `{source}`: {error}")))
}
