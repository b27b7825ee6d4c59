//! `transform-headers`: removes, keeps only (whitelist) and adds headers: the request's in the
//! request phase, the response's in the response phase, the message's in the message phases.

use super::{evaluate_all, parse, templates, NameValue, Outcome, Phase, Policy};
use kafka_edge_definition::Problem;
use kafka_edge_el::Template;
use kafka_edge_message::{ExecutionContext, Headers, Message, Scope};
use serde::Deserialize;
use serde_json::Value as Json;
use std::sync::Arc;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Configuration {
    /// Gravitee's v4 engine decides by phase, not by this field: accepted and not used.
    #[serde(default, rename = "scope")]
    _scope: Option<String>,
    #[serde(default)]
    add_headers: Vec<NameValue>,
    #[serde(default)]
    remove_headers: Vec<String>,
    #[serde(default)]
    whitelist_headers: Vec<String>,
}

struct TransformHeaders {
    add: Vec<(String, Template)>,
    remove: Vec<String>,
    whitelist: Vec<String>,
}

pub(super) fn compile(configuration: Json, _phase: Phase) -> Result<Box<dyn Policy>, Problem> {
    let parsed: Configuration = parse(configuration)?;
    Ok(Box::new(TransformHeaders {
        add: templates(parsed.add_headers, "configuration.addHeaders")?,
        remove: parsed.remove_headers,
        whitelist: parsed.whitelist_headers,
    }))
}

impl TransformHeaders {
    /// Values are computed before any change, so every expression sees the headers as they came.
    fn apply(&self, headers: &mut Headers, added: Vec<(String, String)>) {
        for name in &self.remove {
            headers.remove(name);
        }
        if !self.whitelist.is_empty() {
            let mut keep = self.whitelist.clone();
            keep.extend(added.iter().map(|(name, _)| name.clone()));
            headers.retain_named(&keep);
        }
        for (name, value) in added {
            headers.set(name, value);
        }
    }
}

impl Policy for TransformHeaders {
    fn on_request(&self, context: &mut ExecutionContext) -> Outcome {
        let added = evaluate_all(&Scope::request(context), &self.add);
        self.apply(&mut Arc::make_mut(&mut context.request).headers, added);
        Outcome::Continue
    }

    fn on_response(&self, context: &mut ExecutionContext, headers: &mut Headers) -> Outcome {
        let added = evaluate_all(&Scope::request(context), &self.add);
        self.apply(headers, added);
        Outcome::Continue
    }

    fn on_message(&self, context: &ExecutionContext, message: &mut Message) -> Outcome {
        let added = evaluate_all(&Scope::message(context, message), &self.add);
        self.apply(&mut message.headers, added);
        Outcome::Continue
    }
}
