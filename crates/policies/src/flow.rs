//! Compiling flows at load, choosing the ones that apply to a request, and running their phases.

use crate::policy::{self, template, Outcome, Phase, Policy};
use kafka_edge_definition::{EntrypointType, Flow, PathOperator, Problem, Selector, Step};
use kafka_edge_el::Template;
use kafka_edge_message::{
    Endpoint, EndpointFailure, ExecutionContext, Headers, Message, RecordPosition, Scope, SubscribeOptions,
    Subscription, Transformed,
};
use std::sync::Arc;

struct CompiledStep {
    condition: Option<Template>,
    policy: Box<dyn Policy>,
}

enum CompiledSelector {
    Path { path: String, operator: PathOperator, methods: Vec<String> },
    Channel { channel: String, operator: PathOperator, operations: Vec<String>, entrypoints: Vec<String> },
    Condition(Template),
}

struct CompiledFlow {
    selectors: Vec<CompiledSelector>,
    request: Vec<CompiledStep>,
    response: Vec<CompiledStep>,
    publish: Vec<CompiledStep>,
    subscribe: Vec<CompiledStep>,
}

/// Every enabled flow of an API, compiled.
#[derive(Default)]
pub struct ApiFlows {
    flows: Vec<Arc<CompiledFlow>>,
}

/// What flow selection looks at.
pub struct RequestShape<'a> {
    /// The path below the API's context path.
    pub path_info: &'a str,
    pub method: &'a str,
    pub entrypoint: EntrypointType,
}

impl ApiFlows {
    /// Compiles the enabled flows and steps; every problem is reported with its path below the
    /// definition's root (`flows[0].request[1].configuration.status`).
    pub fn compile(flows: &[Flow]) -> Result<ApiFlows, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut compiled = Vec::new();
        for (index, flow) in flows.iter().enumerate() {
            let base = format!("flows[{index}]");
            let selectors = flow
                .selectors
                .iter()
                .enumerate()
                .filter_map(|(i, selector)| {
                    compile_selector(selector, &format!("{base}.selectors[{i}]"), &mut problems)
                })
                .collect();
            let mut phase = |steps: &[Step], phase: Phase| compile_steps(steps, phase, &base, &mut problems);
            let flow = CompiledFlow {
                selectors,
                request: phase(&flow.request, Phase::Request),
                response: phase(&flow.response, Phase::Response),
                publish: phase(&flow.publish, Phase::Publish),
                subscribe: phase(&flow.subscribe, Phase::Subscribe),
            };
            // A disabled flow is checked like the others, so a mistake shows before it is enabled.
            if flows[index].enabled {
                compiled.push(Arc::new(flow));
            }
        }
        if problems.is_empty() {
            Ok(ApiFlows { flows: compiled })
        } else {
            Err(problems)
        }
    }

    /// The flows whose selectors all match this request.
    pub fn select(&self, shape: &RequestShape<'_>, context: &ExecutionContext) -> SelectedFlows {
        let scope = Scope::request(context);
        let flows = self
            .flows
            .iter()
            .filter(|flow| flow.selectors.iter().all(|selector| selector.matches(shape, &scope)))
            .cloned()
            .collect();
        SelectedFlows { flows }
    }
}

fn compile_selector(selector: &Selector, path: &str, problems: &mut Vec<Problem>) -> Option<CompiledSelector> {
    let upper = |values: &[String]| values.iter().map(|v| v.to_ascii_uppercase()).collect::<Vec<_>>();
    Some(match selector {
        Selector::Http { path, path_operator, methods } => {
            CompiledSelector::Path { path: path.clone(), operator: *path_operator, methods: upper(methods) }
        }
        Selector::Channel { channel, channel_operator, operations, entrypoints } => CompiledSelector::Channel {
            channel: channel.clone(),
            operator: *channel_operator,
            operations: upper(operations),
            entrypoints: entrypoints.clone(),
        },
        Selector::Condition { condition } => match template(condition, "condition") {
            Ok(template) => CompiledSelector::Condition(template),
            Err(problem) => {
                problems.push(problem.under(path));
                return None;
            }
        },
    })
}

fn compile_steps(steps: &[Step], phase: Phase, base: &str, problems: &mut Vec<Problem>) -> Vec<CompiledStep> {
    let mut compiled = Vec::new();
    for (index, step) in steps.iter().enumerate() {
        let path = format!("{base}.{}[{index}]", phase.name());
        let condition =
            match step.condition.as_deref().filter(|c| !c.trim().is_empty()).map(|c| template(c, "condition")) {
                None => None,
                Some(Ok(condition)) => Some(condition),
                Some(Err(problem)) => {
                    problems.push(problem.under(&path));
                    continue;
                }
            };
        // Unknown policies and bad configurations fail the load even on disabled steps: a typo
        // should not wait until someone enables the step.
        match policy::compile(&step.policy, &step.configuration, phase) {
            Ok(policy) if step.enabled => compiled.push(CompiledStep { condition, policy }),
            Ok(_) => {}
            Err(problem) => problems.push(problem.under(&path)),
        }
    }
    compiled
}

impl CompiledSelector {
    fn matches(&self, shape: &RequestShape<'_>, scope: &Scope<'_>) -> bool {
        match self {
            CompiledSelector::Path { path, operator, methods } => {
                path_matches(path, *operator, shape.path_info)
                    && (methods.is_empty() || methods.iter().any(|m| m.eq_ignore_ascii_case(shape.method)))
            }
            CompiledSelector::Channel { channel, operator, operations, entrypoints } => {
                let operation = match shape.entrypoint {
                    EntrypointType::HttpPost => "PUBLISH",
                    _ => "SUBSCRIBE",
                };
                path_matches(channel, *operator, shape.path_info)
                    && (operations.is_empty()
                        || operations.iter().any(|o| o == operation || shape.entrypoint == EntrypointType::Websocket))
                    && (entrypoints.is_empty() || entrypoints.iter().any(|e| e == shape.entrypoint.as_str()))
            }
            CompiledSelector::Condition(condition) => condition.evaluate_condition(scope),
        }
    }
}

fn path_matches(pattern: &str, operator: PathOperator, path: &str) -> bool {
    let pattern = pattern.trim_end_matches('/');
    let path = path.trim_end_matches('/');
    match operator {
        PathOperator::Equals => pattern == path,
        PathOperator::StartsWith => {
            pattern.is_empty()
                || path == pattern
                || path.strip_prefix(pattern).is_some_and(|rest| rest.starts_with('/'))
        }
    }
}

/// The flows that apply to one request, in definition order.
#[derive(Clone, Default)]
pub struct SelectedFlows {
    flows: Vec<Arc<CompiledFlow>>,
}

impl SelectedFlows {
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// These flows, then `later`'s (a plan's flows run before the API's).
    pub fn then(mut self, later: SelectedFlows) -> SelectedFlows {
        self.flows.extend(later.flows);
        self
    }

    fn has_message_steps(&self) -> bool {
        self.flows.iter().any(|flow| !flow.publish.is_empty() || !flow.subscribe.is_empty())
    }

    /// The request phase: may set context attributes and change the request headers.
    pub fn on_request(&self, context: &mut ExecutionContext) -> Result<(), EndpointFailure> {
        self.on_connection(context, |flow| &flow.request, |policy, context| policy.on_request(context))
    }

    /// The response phase: may change the response headers.
    pub fn on_response(&self, context: &mut ExecutionContext, headers: &mut Headers) -> Result<(), EndpointFailure> {
        self.on_connection(context, |flow| &flow.response, |policy, context| policy.on_response(context, headers))
    }

    fn on_connection(
        &self,
        context: &mut ExecutionContext,
        steps: impl Fn(&CompiledFlow) -> &Vec<CompiledStep>,
        mut run: impl FnMut(&dyn Policy, &mut ExecutionContext) -> Outcome,
    ) -> Result<(), EndpointFailure> {
        for flow in &self.flows {
            for step in steps(flow) {
                let runs = step.condition.as_ref().is_none_or(|c| c.evaluate_condition(&Scope::request(context)));
                if runs {
                    if let Outcome::Interrupt(failure) = run(step.policy.as_ref(), context) {
                        return Err(failure);
                    }
                }
            }
        }
        Ok(())
    }

    /// The publish phase, on a message a client sent.
    pub fn on_publish(&self, context: &ExecutionContext, message: &mut Message) -> Result<(), EndpointFailure> {
        for flow in &self.flows {
            for step in &flow.publish {
                if let Outcome::Interrupt(failure) = run_on_message(step, context, message) {
                    return Err(failure);
                }
            }
        }
        Ok(())
    }

    /// The subscribe phase, on a message on its way to the client.
    pub fn on_subscribe(&self, context: &ExecutionContext, mut message: Message) -> Transformed {
        for flow in &self.flows {
            for step in &flow.subscribe {
                match run_on_message(step, context, &mut message) {
                    Outcome::Continue => {}
                    Outcome::Drop => return Transformed::Drop(message),
                    Outcome::Interrupt(failure) => return Transformed::Fail(failure),
                }
            }
        }
        Transformed::Keep(message)
    }
}

fn run_on_message(step: &CompiledStep, context: &ExecutionContext, message: &mut Message) -> Outcome {
    let runs = step.condition.as_ref().is_none_or(|c| c.evaluate_condition(&Scope::message(context, message)));
    if runs {
        step.policy.on_message(context, message)
    } else {
        Outcome::Continue
    }
}

/// An endpoint seen through the publish and subscribe phases of the selected flows.
pub struct FlowEndpoint {
    inner: Arc<dyn Endpoint>,
    flows: SelectedFlows,
}

impl FlowEndpoint {
    /// `inner` itself when no selected flow has message steps (nothing to wrap).
    pub fn wrap(inner: Arc<dyn Endpoint>, flows: SelectedFlows) -> Arc<dyn Endpoint> {
        if flows.has_message_steps() {
            Arc::new(FlowEndpoint { inner, flows })
        } else {
            inner
        }
    }
}

#[async_trait::async_trait]
impl Endpoint for FlowEndpoint {
    async fn publish(
        &self,
        context: &ExecutionContext,
        mut message: Message,
    ) -> Result<Vec<RecordPosition>, EndpointFailure> {
        self.flows.on_publish(context, &mut message)?;
        self.inner.publish(context, message).await
    }

    async fn subscribe(
        &self,
        context: &ExecutionContext,
        options: SubscribeOptions,
    ) -> Result<Subscription, EndpointFailure> {
        let subscription = self.inner.subscribe(context, options).await?;
        let flows = self.flows.clone();
        let context = context.clone();
        Ok(subscription.with_transform(move |message| flows.on_subscribe(&context, message)))
    }
}
