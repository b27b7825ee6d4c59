//! `message-filtering`: drops consumed messages whose filter condition is false.

use super::{parse, template, Outcome, Phase, Policy};
use kafka_edge_definition::Problem;
use kafka_edge_el::Template;
use kafka_edge_message::{ExecutionContext, Message, Scope};
use serde::Deserialize;
use serde_json::Value as Json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Configuration {
    filter: String,
}

struct MessageFiltering(Template);

pub(super) fn compile(configuration: Json, phase: Phase) -> Result<Box<dyn Policy>, Problem> {
    if phase != Phase::Subscribe {
        return Err(Problem::new(
            "policy",
            format!(
                "`message-filtering` filters consumed messages: put it in the subscribe phase, not {}",
                phase.name()
            ),
        ));
    }
    let parsed: Configuration = parse(configuration)?;
    Ok(Box::new(MessageFiltering(template(&parsed.filter, "configuration.filter")?)))
}

impl Policy for MessageFiltering {
    fn on_message(&self, context: &ExecutionContext, message: &mut Message) -> Outcome {
        if self.0.evaluate_condition(&Scope::message(context, message)) {
            Outcome::Continue
        } else {
            Outcome::Drop
        }
    }
}
