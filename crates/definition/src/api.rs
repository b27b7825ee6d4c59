//! The top level of a v4 message API definition (DESIGN 3).

use crate::entrypoint::EntrypointConfiguration;
use crate::kafka::{KafkaEndpointConfiguration, SharedConfiguration};
use crate::plan::Plan;
use crate::value::string_enum;
use serde::Deserialize;
use serde_json::Value;

/// A loaded, validated API definition, ready to serve.
#[derive(Debug, Clone)]
pub struct ApiDefinition {
    pub id: String,
    pub name: String,
    pub api_version: Option<String>,
    pub listeners: Vec<Listener>,
    pub endpoint_groups: Vec<EndpointGroup>,
    pub flows: Vec<Flow>,
    pub plans: Vec<Plan>,
    pub resources: Vec<crate::plan::Resource>,
    /// `properties[]`: key/value pairs expressions read as `#properties['key']`.
    pub properties: std::collections::BTreeMap<String, String>,
}

impl ApiDefinition {
    /// The context paths of every HTTP listener.
    pub fn context_paths(&self) -> impl Iterator<Item = &str> {
        self.listeners
            .iter()
            .filter(|listener| listener.kind == ListenerType::Http)
            .flat_map(|listener| listener.paths.iter().map(|p| p.path.as_str()))
    }

    /// The entrypoints of every HTTP listener.
    pub fn http_entrypoints(&self) -> impl Iterator<Item = &Entrypoint> {
        self.listeners
            .iter()
            .filter(|listener| listener.kind == ListenerType::Http)
            .flat_map(|listener| listener.entrypoints.iter())
    }

    /// The endpoint that serves requests: the first endpoint of the first group.
    pub fn primary_endpoint(&self) -> Option<(&EndpointGroup, &Endpoint)> {
        let group = self.endpoint_groups.first()?;
        group.endpoints.first().map(|endpoint| (group, endpoint))
    }
}

string_enum!(
    /// `listeners[].type`.
    ListenerType { Http => "http", Subscription => "subscription", Tcp => "tcp" }
);

/// `listeners[]`: where clients reach the API.
#[derive(Debug, Clone)]
pub struct Listener {
    pub kind: ListenerType,
    pub paths: Vec<ListenerPath>,
    pub entrypoints: Vec<Entrypoint>,
    /// `cors` of an HTTP listener, when enabled.
    pub cors: Option<Cors>,
}

/// `listeners[].cors`, Gravitee's shape: who may call the API from a browser on another origin.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cors {
    #[serde(default, deserialize_with = "crate::value::lenient_bool")]
    pub enabled: bool,
    /// `*`, exact origins (case-insensitive), or patterns: an entry with `(`, `[` or `*` is a
    /// regular expression the whole origin must match.
    #[serde(default)]
    pub allow_origin: Vec<String>,
    /// Methods a preflight may ask for; `*` for any.
    #[serde(default)]
    pub allow_methods: Vec<String>,
    /// Request headers a preflight may ask for (case-insensitive); `*` for any.
    #[serde(default)]
    pub allow_headers: Vec<String>,
    /// Response headers a script may read.
    #[serde(default)]
    pub expose_headers: Vec<String>,
    #[serde(default, deserialize_with = "crate::value::lenient_bool")]
    pub allow_credentials: bool,
    /// Seconds a browser may cache a preflight answer; negative: not sent.
    #[serde(default = "no_max_age", deserialize_with = "crate::value::lenient_i64")]
    pub max_age: i64,
    /// Run the flows on preflight requests: read, reported as ignored when true.
    #[serde(default, deserialize_with = "crate::value::lenient_bool")]
    pub run_policies: bool,
    #[serde(default, deserialize_with = "crate::value::lenient_bool")]
    pub allow_private_network: bool,
}

fn no_max_age() -> i64 {
    -1
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenerPath {
    pub path: String,
}

string_enum!(
    /// Delivery guarantee of an entrypoint (DESIGN 4.5). `balanced` is accepted for `auto`.
    Qos default Auto {
        None => "none",
        Auto => "auto" | "balanced",
        AtBest => "at-best" | "at_best",
        AtMostOnce => "at-most-once" | "at_most_once",
        AtLeastOnce => "at-least-once" | "at_least_once",
    }
);

impl Qos {
    /// Whether messages carry a resumable id (and cursors are accepted).
    pub fn emits_ids(self) -> bool {
        matches!(self, Qos::AtBest | Qos::AtMostOnce | Qos::AtLeastOnce)
    }
}

string_enum!(
    /// `listeners[].entrypoints[].type`.
    EntrypointType {
        HttpGet => "http-get",
        HttpPost => "http-post",
        Sse => "sse",
        Websocket => "websocket",
        Webhook => "webhook",
    }
);

/// `listeners[].entrypoints[]`.
#[derive(Debug, Clone)]
pub struct Entrypoint {
    pub kind: EntrypointType,
    pub qos: Qos,
    /// `dlq.endpoint`: where messages go that a subscriber rejects.
    pub dlq_endpoint: Option<String>,
    pub configuration: EntrypointConfiguration,
}

/// `endpointGroups[]`.
#[derive(Debug, Clone)]
pub struct EndpointGroup {
    pub name: String,
    pub shared_configuration: SharedConfiguration,
    pub endpoints: Vec<Endpoint>,
}

/// `endpointGroups[].endpoints[]`, with the shared configuration it actually uses already chosen
/// (`inheritConfiguration` decides between the group's and its own override).
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub name: String,
    pub weight: u64,
    pub configuration: KafkaEndpointConfiguration,
    pub shared_configuration: SharedConfiguration,
    /// True when `shared_configuration` is the group's, false when it is the endpoint's override.
    pub inherits_configuration: bool,
}

/// `flows[]`: parsed and kept; applied by the policies crate.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Flow {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default = "enabled_by_default", deserialize_with = "crate::value::lenient_bool")]
    pub enabled: bool,
    #[serde(default)]
    pub selectors: Vec<Selector>,
    #[serde(default)]
    pub request: Vec<Step>,
    #[serde(default)]
    pub response: Vec<Step>,
    #[serde(default)]
    pub publish: Vec<Step>,
    #[serde(default)]
    pub subscribe: Vec<Step>,
}

impl Flow {
    pub fn steps(&self) -> impl Iterator<Item = &Step> {
        self.request.iter().chain(&self.response).chain(&self.publish).chain(&self.subscribe)
    }
}

string_enum!(
    /// How a selector's path or channel is compared.
    PathOperator default StartsWith { StartsWith => "STARTS_WITH", Equals => "EQUALS" }
);

/// `flows[].selectors[]`: when a flow applies. Every selector of a flow must match.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Selector {
    /// Path below the context path and HTTP method (no methods: any).
    Http {
        #[serde(default = "root_path")]
        path: String,
        #[serde(default, rename = "pathOperator")]
        path_operator: PathOperator,
        #[serde(default)]
        methods: Vec<String>,
    },
    /// Gravitee's message-API selector: the channel is matched like a path; `operations`
    /// (PUBLISH, SUBSCRIBE) and `entrypoints` narrow it further.
    Channel {
        #[serde(default = "root_path")]
        channel: String,
        #[serde(default, rename = "channelOperator")]
        channel_operator: PathOperator,
        #[serde(default)]
        operations: Vec<String>,
        #[serde(default)]
        entrypoints: Vec<String>,
    },
    /// An expression that must be true for the request.
    Condition { condition: String },
}

fn root_path() -> String {
    "/".to_string()
}

/// One policy invocation inside a flow phase.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default = "enabled_by_default", deserialize_with = "crate::value::lenient_bool")]
    pub enabled: bool,
    pub policy: String,
    #[serde(default)]
    pub condition: Option<String>,
    #[serde(default)]
    pub configuration: Value,
}

fn enabled_by_default() -> bool {
    true
}
