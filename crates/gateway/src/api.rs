//! From a definition to a served API, in one place: its flows compiled, its Kafka endpoints built
//! (TLS stores and static JAAS lines read), its entrypoints and its webhook and DLQ wiring, or
//! every problem found. `validate` and `run` both build through here, so they refuse the same
//! things. A [`LoadedApi`] is a value, shared by the router and webhook delivery and dropped with
//! them: a reload can build a new one beside it (its endpoints share the runtime's one producer
//! pool).

use crate::cors::CorsPolicy;
use crate::plan::Plans;
use kafka_edge_definition::{
    ApiDefinition, Endpoint as EndpointDefinition, Entrypoint, EntrypointConfiguration, PlanMode, Problem,
};
use kafka_edge_endpoint_kafka::{KafkaClients, KafkaEndpoint};
use kafka_edge_entrypoints::webhook::WebhookEntrypoint;
use kafka_edge_entrypoints::websocket;
use kafka_edge_message::{ApiInfo, Endpoint};
use kafka_edge_policies::ApiFlows;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// One API, ready to serve.
pub struct LoadedApi {
    pub id: String,
    pub info: Arc<ApiInfo>,
    /// Normalized: no trailing slash, except `/` itself.
    pub context_paths: Vec<String>,
    /// The HTTP entrypoints this version serves.
    pub entrypoints: Vec<Entrypoint>,
    /// The primary endpoint (first endpoint of the first group).
    pub endpoint: Arc<dyn Endpoint>,
    pub flows: ApiFlows,
    /// The plans that take requests.
    pub plans: Plans,
    /// CORS of the API's HTTP listener, when enabled.
    pub cors: Option<CorsPolicy>,
    /// Present when the API has a webhook entrypoint.
    pub webhook: Option<WebhookEntrypoint>,
    /// The ids of the API's PUSH plans (the plans webhook subscriptions name).
    pub push_plans: Vec<String>,
    /// Open WebSocket sessions, which outlive the HTTP server's view of their request.
    pub websockets: websocket::Sessions,
    /// The definition it was built from (for its AsyncAPI document).
    pub definition: Arc<ApiDefinition>,
    /// The API's id as a `/metrics` label, shared by every request's counters.
    pub metric_id: Arc<str>,
    /// The topics the definition names, the only topic labels of `/metrics` (crate::metered).
    pub named_topics: Arc<[Arc<str>]>,
    /// The Kerberos principal the API's endpoints authenticate as (GSSAPI), with the field that
    /// names it: one per gateway process (crate::reload).
    pub kerberos: Option<KerberosLogin>,
    /// Cancelled when this version's streams must end: at shutdown, or a grace period after a
    /// reload replaced or removed it (crate::apis).
    pub closing: CancellationToken,
}

impl LoadedApi {
    /// Builds the API; nothing connects to Kafka until a request needs it. Problems carry their
    /// path below the definition's root (no file: the caller knows it).
    pub fn build(definition: &ApiDefinition, clients: &Arc<KafkaClients>) -> Result<Self, Vec<Problem>> {
        let mut problems = Vec::new();
        let flows = ApiFlows::compile(&definition.flows).map_err(|found| problems.extend(found)).ok();
        let plans = Plans::build(definition).map_err(|found| problems.extend(found)).ok();
        let cors = cors(definition, &mut problems);
        let (endpoints, kerberos) = build_endpoints(definition, clients, &mut problems);
        let primary = endpoints.first().and_then(|endpoint| endpoint.built.clone());
        if endpoints.is_empty() {
            problems.push(Problem::new("endpointGroups", "no Kafka endpoint"));
        }
        let webhook = webhook_entrypoint(definition, &endpoints, &mut problems);
        match (flows, plans, primary) {
            (Some(flows), Some(plans), Some(endpoint)) if problems.is_empty() => Ok(Self {
                id: definition.id.clone(),
                info: Arc::new(ApiInfo {
                    id: definition.id.clone(),
                    name: definition.name.clone(),
                    properties: definition.properties.clone(),
                }),
                context_paths: definition.context_paths().map(kafka_edge_definition::normalize_context_path).collect(),
                entrypoints: definition
                    .http_entrypoints()
                    .filter(|entrypoint| !matches!(entrypoint.configuration, EntrypointConfiguration::NotImplemented))
                    .cloned()
                    .collect(),
                endpoint,
                flows,
                plans,
                cors,
                webhook,
                push_plans: definition
                    .plans
                    .iter()
                    .filter(|p| p.mode == PlanMode::Push)
                    .map(|p| p.id.clone())
                    .collect(),
                websockets: Default::default(),
                closing: CancellationToken::new(),
                metric_id: Arc::from(definition.id.as_str()),
                named_topics: named_topics(definition),
                kerberos,
                definition: Arc::new(definition.clone()),
            }),
            _ => Err(problems),
        }
    }

    pub fn entrypoint_names(&self) -> Vec<&'static str> {
        self.entrypoints.iter().map(|e| e.kind.as_str()).collect()
    }

    /// Whether `plan` is one of this API's PUSH plans.
    pub fn has_push_plan(&self, plan: &str) -> bool {
        self.push_plans.iter().any(|p| p == plan)
    }
}

/// Every topic a producer or consumer of the definition names literally (not an expression).
fn named_topics(definition: &ApiDefinition) -> Arc<[Arc<str>]> {
    let mut topics: Vec<Arc<str>> = Vec::new();
    let endpoints = definition.endpoint_groups.iter().flat_map(|group| &group.endpoints);
    for shared in endpoints.map(|endpoint| &endpoint.shared_configuration) {
        for topic in shared.producer.topics.iter().chain(&shared.consumer.topics) {
            if !topic.contains('{') && !topics.iter().any(|named| **named == **topic) {
                topics.push(Arc::from(topic.as_str()));
            }
        }
    }
    topics.into()
}

/// The CORS policy of the first HTTP listener that enables one.
fn cors(definition: &ApiDefinition, problems: &mut Vec<Problem>) -> Option<CorsPolicy> {
    let (index, cors) =
        definition.listeners.iter().enumerate().find_map(|(index, listener)| Some((index, listener.cors.as_ref()?)))?;
    CorsPolicy::compile(cors).map_err(|problem| problems.push(problem.under(&format!("listeners[{index}].cors")))).ok()
}

/// A static GSSAPI login: the principal, and the path of the JAAS line that names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KerberosLogin {
    pub principal: String,
    pub field: String,
}

impl KerberosLogin {
    /// The problem of `other`, a login that differs from this one (found in `here`).
    pub fn second_principal(&self, other: &KerberosLogin, here: &str) -> Option<Problem> {
        (self.principal != other.principal).then(|| {
            Problem::new(
                &other.field,
                format!(
                    "Kerberos principal `{}` differs from `{}` ({here}): librdkafka keeps one Kerberos ticket cache \
                     per process, so one gateway authenticates as one principal; serve APIs of other principals \
                     from another kafka-edge process",
                    other.principal, self.principal
                ),
            )
        })
    }
}

/// One endpoint of the definition and, when it builds, the endpoint.
struct BuiltEndpoint<'a> {
    group: usize,
    definition: &'a EndpointDefinition,
    built: Option<Arc<dyn Endpoint>>,
}

/// Every endpoint of every group, in definition order: stores and static JAAS lines are read here,
/// once, so a wrong password shows at load. Also the API's Kerberos login, if any: all its GSSAPI
/// endpoints must share it.
fn build_endpoints<'a>(
    definition: &'a ApiDefinition,
    clients: &Arc<KafkaClients>,
    problems: &mut Vec<Problem>,
) -> (Vec<BuiltEndpoint<'a>>, Option<KerberosLogin>) {
    let mut endpoints = Vec::new();
    let mut kerberos: Option<KerberosLogin> = None;
    for (g, group) in definition.endpoint_groups.iter().enumerate() {
        for (e, endpoint) in group.endpoints.iter().enumerate() {
            let endpoint_path = format!("endpointGroups[{g}].endpoints[{e}]");
            let built = KafkaEndpoint::new(&definition.id, endpoint, clients.clone()).map_err(|problem| {
                // The endpoint names its properties below the configuration block it reads.
                if problem.path.starts_with("bootstrapServers") {
                    problem.under(&format!("{endpoint_path}.configuration"))
                } else if endpoint.inherits_configuration {
                    problem.under(&format!("endpointGroups[{g}].sharedConfiguration"))
                } else {
                    problem.under(&format!("{endpoint_path}.sharedConfigurationOverride"))
                }
            });
            let built = built.map_err(|problem| problems.push(problem)).ok();
            if let Some(principal) = built.as_ref().and_then(KafkaEndpoint::kerberos_principal) {
                let block = if endpoint.inherits_configuration {
                    format!("endpointGroups[{g}].sharedConfiguration")
                } else {
                    format!("{endpoint_path}.sharedConfigurationOverride")
                };
                let login = KerberosLogin {
                    principal: principal.to_string(),
                    field: format!("{block}.security.sasl.saslJaasConfig"),
                };
                match &kerberos {
                    None => kerberos = Some(login),
                    Some(first) => problems.extend(first.second_principal(&login, &format!("at {}", first.field))),
                }
            }
            endpoints.push(BuiltEndpoint {
                group: g,
                definition: endpoint,
                built: built.map(|endpoint| Arc::new(endpoint) as Arc<dyn Endpoint>),
            });
        }
    }
    (endpoints, kerberos)
}

/// The endpoint `name` designates: a group (its first endpoint) or else an endpoint.
fn named<'e, 'a>(
    definition: &ApiDefinition,
    endpoints: &'e [BuiltEndpoint<'a>],
    name: &str,
) -> Option<&'e BuiltEndpoint<'a>> {
    let group = definition.endpoint_groups.iter().position(|group| group.name == name);
    match group {
        Some(group) => endpoints.iter().find(|endpoint| endpoint.group == group),
        None => endpoints.iter().find(|endpoint| endpoint.definition.name == name),
    }
}

/// The webhook entrypoint, with the endpoint its `dlq.endpoint` names (a group, standing for its
/// first endpoint, or an endpoint), which must be able to produce.
fn webhook_entrypoint(
    definition: &ApiDefinition,
    endpoints: &[BuiltEndpoint<'_>],
    problems: &mut Vec<Problem>,
) -> Option<WebhookEntrypoint> {
    let (path, entrypoint, configuration) = definition.listeners.iter().enumerate().find_map(|(l, listener)| {
        listener.entrypoints.iter().enumerate().find_map(|(e, entrypoint)| match &entrypoint.configuration {
            EntrypointConfiguration::Webhook(configuration) => {
                Some((format!("listeners[{l}].entrypoints[{e}]"), entrypoint, configuration))
            }
            _ => None,
        })
    })?;
    let dlq = entrypoint.dlq_endpoint.as_deref().and_then(|name| {
        let problem = |message: String| Problem::new("dlq.endpoint", message).under(&path);
        match named(definition, endpoints, name) {
            None => problems.push(problem(format!("`{name}` names no endpoint group or endpoint"))),
            Some(endpoint) if !endpoint.definition.shared_configuration.producer.enabled => {
                problems.push(problem(format!("`{name}`: its producer is not enabled")))
            }
            Some(endpoint) => return endpoint.built.clone(),
        }
        None
    });
    Some(WebhookEntrypoint { qos: entrypoint.qos, configuration: configuration.clone(), dlq })
}
