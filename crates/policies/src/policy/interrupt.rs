//! `interrupt`: ends the request (or fails the message) with an HTTP error status and a message.

use super::{parse, template, Outcome, Phase, Policy};
use kafka_edge_definition::Problem;
use kafka_edge_el::Template;
use kafka_edge_message::{EndpointFailure, ExecutionContext, FailureKind, Headers, Message, Scope};
use serde::Deserialize;
use serde_json::Value as Json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Configuration {
    #[serde(deserialize_with = "error_status")]
    status: u16,
    #[serde(default)]
    message: String,
}

struct Interrupt {
    status: u16,
    message: Template,
}

pub(super) fn compile(configuration: Json, _phase: Phase) -> Result<Box<dyn Policy>, Problem> {
    let parsed: Configuration = parse(configuration)?;
    Ok(Box::new(Interrupt { status: parsed.status, message: template(&parsed.message, "configuration.message")? }))
}

impl Interrupt {
    fn failure(&self, scope: &Scope<'_>) -> Outcome {
        let message = self.message.evaluate_string(scope).unwrap_or_default();
        Outcome::Interrupt(EndpointFailure::new(FailureKind::Interrupted { status: self.status }, message))
    }
}

impl Policy for Interrupt {
    fn on_request(&self, context: &mut ExecutionContext) -> Outcome {
        self.failure(&Scope::request(context))
    }

    fn on_response(&self, context: &mut ExecutionContext, _headers: &mut Headers) -> Outcome {
        self.failure(&Scope::request(context))
    }

    fn on_message(&self, context: &ExecutionContext, message: &mut Message) -> Outcome {
        self.failure(&Scope::message(context, message))
    }
}

/// A status as a number or a numeric string, within 400–599.
fn error_status<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u16, D::Error> {
    let raw = Json::deserialize(deserializer)?;
    let status = match &raw {
        Json::Number(n) => n.as_u64(),
        Json::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    status.and_then(|s| u16::try_from(s).ok()).filter(|s| (400..=599).contains(s)).ok_or_else(|| {
        serde::de::Error::custom(format!("invalid value `{raw}`, expected an HTTP error status 400–599"))
    })
}
