//! The policies, with Gravitee's configuration shapes so existing definitions load unchanged.
//! A policy acts by phase, not by its `scope` field (which Gravitee's v4 engine ignores too).

use kafka_edge_el::Template;
use kafka_edge_message::{EndpointFailure, ExecutionContext, FailureKind, Headers, Message, Scope};
use std::sync::Arc;
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

/// A compiled policy.
#[derive(Debug)]
pub(crate) enum Policy {
    AssignAttributes(Vec<(String, Template)>),
    TransformHeaders { add: Vec<(String, Template)>, remove: Vec<String>, whitelist: Vec<String> },
    MessageFiltering(Template),
    Interrupt { status: u16, message: Template },
}

/// What a step decided for the message or request it saw.
pub(crate) enum Outcome {
    Continue,
    /// The message is filtered out (subscribe only).
    Drop,
    Interrupt(EndpointFailure),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NameValue {
    name: String,
    #[serde(default)]
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AssignAttributesConfiguration {
    #[serde(default)]
    #[allow(dead_code)]
    scope: Option<String>,
    #[serde(default)]
    attributes: Vec<NameValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TransformHeadersConfiguration {
    #[serde(default)]
    #[allow(dead_code)]
    scope: Option<String>,
    #[serde(default)]
    add_headers: Vec<NameValue>,
    #[serde(default)]
    remove_headers: Vec<String>,
    #[serde(default)]
    whitelist_headers: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageFilteringConfiguration {
    filter: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InterruptConfiguration {
    #[serde(deserialize_with = "status_code")]
    status: u16,
    #[serde(default)]
    message: String,
}

fn status_code<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u16, D::Error> {
    let raw = Json::deserialize(deserializer)?;
    let status = match &raw {
        Json::Number(n) => n.as_u64(),
        Json::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    status
        .filter(|s| (400..=599).contains(s))
        .map(|s| s as u16)
        .ok_or_else(|| serde::de::Error::custom(format!("invalid value `{raw}`, expected an HTTP error status 400–599")))
}

/// The policy names this version implements.
pub(crate) const KNOWN: &[&str] = &["assign-attributes", "transform-headers", "message-filtering", "interrupt"];

/// A policy's configuration problem: the path below the step and what is wrong.
pub(crate) type PolicyError = (String, String);

impl Policy {
    pub(crate) fn compile(name: &str, configuration: &Json, phase: Phase) -> Result<Policy, PolicyError> {
        let configuration = if configuration.is_null() { Json::Object(Default::default()) } else { configuration.clone() };
        match name {
            "assign-attributes" => {
                let parsed: AssignAttributesConfiguration = parse(configuration)?;
                let attributes = parsed
                    .attributes
                    .into_iter()
                    .enumerate()
                    .map(|(i, a)| Ok((a.name, template(&a.value, &format!("configuration.attributes[{i}].value"))?)))
                    .collect::<Result<_, PolicyError>>()?;
                Ok(Policy::AssignAttributes(attributes))
            }
            "transform-headers" => {
                let parsed: TransformHeadersConfiguration = parse(configuration)?;
                let add = parsed
                    .add_headers
                    .into_iter()
                    .enumerate()
                    .map(|(i, h)| Ok((h.name, template(&h.value, &format!("configuration.addHeaders[{i}].value"))?)))
                    .collect::<Result<_, PolicyError>>()?;
                Ok(Policy::TransformHeaders { add, remove: parsed.remove_headers, whitelist: parsed.whitelist_headers })
            }
            "message-filtering" => {
                if phase != Phase::Subscribe {
                    return Err(("policy".into(), format!("`message-filtering` filters consumed messages: put it in the subscribe phase, not {}", phase.name())));
                }
                let parsed: MessageFilteringConfiguration = parse(configuration)?;
                Ok(Policy::MessageFiltering(template(&parsed.filter, "configuration.filter")?))
            }
            "interrupt" => {
                let parsed: InterruptConfiguration = parse(configuration)?;
                Ok(Policy::Interrupt { status: parsed.status, message: template(&parsed.message, "configuration.message")? })
            }
            other => Err((
                "policy".into(),
                format!("unknown policy `{other}`, expected one of {}", KNOWN.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")),
            )),
        }
    }

    /// Runs in the request phase (on the request's headers) or the response phase (on
    /// `response_headers`), with the context attributes.
    pub(crate) fn on_connection(&self, context: &mut ExecutionContext, response_headers: Option<&mut Headers>) -> Outcome {
        match self {
            Policy::AssignAttributes(assignments) => {
                let values = evaluate_all(&Scope::request(context), assignments);
                context.attributes.extend(values);
                Outcome::Continue
            }
            Policy::TransformHeaders { add, remove, whitelist } => {
                let added = evaluate_all(&Scope::request(context), add);
                match response_headers {
                    Some(headers) => transform_headers(headers, added, remove, whitelist),
                    None => transform_headers(&mut Arc::make_mut(&mut context.request).headers, added, remove, whitelist),
                }
                Outcome::Continue
            }
            Policy::Interrupt { status, message } => Outcome::Interrupt(interrupt(&Scope::request(context), *status, message)),
            Policy::MessageFiltering(_) => Outcome::Continue,
        }
    }

    /// Runs in the publish or subscribe phase, on one message.
    pub(crate) fn on_message(&self, context: &ExecutionContext, message: &mut Message) -> Outcome {
        match self {
            Policy::AssignAttributes(assignments) => {
                let values = evaluate_all(&Scope::message(context, message), assignments);
                message.attributes.extend(values);
                Outcome::Continue
            }
            Policy::TransformHeaders { add, remove, whitelist } => {
                let added = evaluate_all(&Scope::message(context, message), add);
                transform_headers(&mut message.headers, added, remove, whitelist);
                Outcome::Continue
            }
            Policy::MessageFiltering(filter) => {
                if filter.evaluate_condition(&Scope::message(context, message)) {
                    Outcome::Continue
                } else {
                    Outcome::Drop
                }
            }
            Policy::Interrupt { status, message: text } => Outcome::Interrupt(interrupt(&Scope::message(context, message), *status, text)),
        }
    }
}

/// Evaluates every (name, template) pair; pairs whose value is null are left out, as Gravitee
/// does not set an attribute or header whose expression failed.
fn evaluate_all(scope: &Scope<'_>, pairs: &[(String, Template)]) -> Vec<(String, String)> {
    pairs.iter().filter_map(|(name, value)| Some((name.clone(), value.evaluate_string(scope)?))).collect()
}

/// Values were computed before any change, so every expression saw the headers as they came.
fn transform_headers(headers: &mut Headers, added: Vec<(String, String)>, remove: &[String], whitelist: &[String]) {
    for name in remove {
        headers.remove(name);
    }
    if !whitelist.is_empty() {
        let mut keep = whitelist.to_vec();
        keep.extend(added.iter().map(|(name, _)| name.clone()));
        headers.retain_named(&keep);
    }
    for (name, value) in added {
        headers.set(name, value);
    }
}

fn interrupt(scope: &Scope<'_>, status: u16, message: &Template) -> EndpointFailure {
    EndpointFailure::new(FailureKind::Interrupted { status }, message.evaluate_string(scope).unwrap_or_default())
}

fn parse<T: serde::de::DeserializeOwned>(configuration: Json) -> Result<T, PolicyError> {
    serde_path_to_error::deserialize(configuration).map_err(|error| {
        let path = error.path().to_string();
        let path = if path == "." { "configuration".to_string() } else { format!("configuration.{path}") };
        (path, error.inner().to_string())
    })
}

pub(crate) fn template(source: &str, path: &str) -> Result<Template, PolicyError> {
    Template::parse(source).map_err(|error| (path.to_string(), format!("invalid expression `{source}`: {error}")))
}
