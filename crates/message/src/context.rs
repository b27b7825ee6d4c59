use crate::message::Headers;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Context attributes of one request (`context.attributes` in the expression language), e.g.
/// `gravitee.attribute.kafka.groupId`.
pub type RequestAttributes = HashMap<String, String>;

/// The request as expressions see it (`#request…`): plain data, no HTTP types, so the endpoint
/// can evaluate its dynamic configuration without knowing HTTP.
#[derive(Debug, Clone, Default)]
pub struct RequestInfo {
    /// A unique id of this request.
    pub id: String,
    pub method: String,
    /// The full request path.
    pub path: String,
    /// The path below the API's context path (`/` when equal).
    pub path_info: String,
    pub remote_address: String,
    pub headers: Headers,
    /// Query parameters in order, repeated names kept.
    pub params: Vec<(String, String)>,
}

/// What the API itself offers to expressions (`#api…`, `#properties…`).
#[derive(Debug, Clone, Default)]
pub struct ApiInfo {
    pub id: String,
    pub name: String,
    pub properties: BTreeMap<String, String>,
}

/// What an endpoint may know of the request it serves: identity, attributes and the request data
/// expressions read — never the HTTP exchange itself.
#[derive(Debug, Clone, Default)]
pub struct ExecutionContext {
    pub api: Arc<ApiInfo>,
    /// The entrypoint serving the request (`http-get`, `sse`, `webhook`…), for logs; empty when
    /// no entrypoint is involved.
    pub entrypoint: &'static str,
    /// Who is calling (DESIGN 5.1); the default consumer group.
    pub client_identifier: String,
    pub attributes: RequestAttributes,
    /// Context attributes that are not text (a JWT's claims as `jwt.claims`), for expressions.
    pub structured_attributes: Arc<BTreeMap<String, kafka_edge_el::Value>>,
    pub request: Arc<RequestInfo>,
}

impl ExecutionContext {
    pub fn api_id(&self) -> &str {
        &self.api.id
    }
}
