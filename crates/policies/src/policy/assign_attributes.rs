//! `assign-attributes`: sets context attributes (request and response phases) or message
//! attributes (publish and subscribe phases) from expressions.

use super::{evaluate_all, parse, templates, NameValue, Outcome, Phase, Policy};
use kafka_edge_definition::Problem;
use kafka_edge_el::Template;
use kafka_edge_message::{ExecutionContext, Headers, Message, Scope};
use serde::Deserialize;
use serde_json::Value as Json;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Configuration {
    /// Gravitee's v4 engine decides by phase, not by this field: accepted and not used.
    #[serde(default, rename = "scope")]
    _scope: Option<String>,
    #[serde(default)]
    attributes: Vec<NameValue>,
}

struct AssignAttributes(Vec<(String, Template)>);

pub(super) fn compile(configuration: Json, _phase: Phase) -> Result<Box<dyn Policy>, Problem> {
    let parsed: Configuration = parse(configuration)?;
    Ok(Box::new(AssignAttributes(templates(parsed.attributes, "configuration.attributes")?)))
}

impl Policy for AssignAttributes {
    fn on_request(&self, context: &mut ExecutionContext) -> Outcome {
        let values = evaluate_all(&Scope::request(context), &self.0);
        context.attributes.extend(values);
        Outcome::Continue
    }

    fn on_response(&self, context: &mut ExecutionContext, _headers: &mut Headers) -> Outcome {
        self.on_request(context)
    }

    fn on_message(&self, context: &ExecutionContext, message: &mut Message) -> Outcome {
        let values = evaluate_all(&Scope::message(context, message), &self.0);
        message.attributes.extend(values);
        Outcome::Continue
    }
}
