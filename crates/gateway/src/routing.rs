//! From a request to an entrypoint: the API by longest matching context path, then the entrypoint
//! by request shape (DESIGN 5): WebSocket upgrade → websocket, GET accepting
//! `text/event-stream` → sse, GET → http-get, POST → http-post; otherwise the exact 404.

use crate::client_identifier;
use crate::{GatewayError, MAX_BODY_BYTES};
use axum::extract::Request;
use axum::response::Response;
use http::{header, Method, StatusCode};
use kafka_edge_definition::{ApiDefinition, Entrypoint, EntrypointConfiguration, EntrypointType, PlanMode, PlanSecurityType};
use kafka_edge_endpoint_kafka::{KafkaEndpoint, ProducerPool};
use kafka_edge_entrypoints::error::{json_error, no_context_path};
use kafka_edge_entrypoints::{http_get, http_post, sse, EntrypointContext};
use kafka_edge_message::{Endpoint, ExecutionContext};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// One API as the router sees it.
pub struct ServedApi {
    pub id: String,
    /// Normalized: no trailing slash, except `/` itself.
    pub context_paths: Vec<String>,
    entrypoints: Vec<Entrypoint>,
    endpoint: Arc<dyn Endpoint>,
}

impl ServedApi {
    pub(crate) fn new(definition: ApiDefinition, producers: Arc<ProducerPool>) -> Result<Self, GatewayError> {
        let context_paths = definition.context_paths().map(kafka_edge_definition::normalize_context_path).collect();
        let entrypoints: Vec<Entrypoint> = definition
            .http_entrypoints()
            .filter(|entrypoint| !matches!(entrypoint.configuration, EntrypointConfiguration::NotImplemented))
            .cloned()
            .collect();
        let guarded = |plan: &&kafka_edge_definition::Plan| plan.mode == PlanMode::Standard && plan.security.is_some_and(|s| s != PlanSecurityType::KeyLess);
        if definition.plans.iter().any(|plan| guarded(&plan)) {
            return Err(GatewayError::Api { api: definition.id.clone(), reason: "only key-less plans are supported".into() });
        }
        let (_, endpoint) = definition
            .primary_endpoint()
            .ok_or_else(|| GatewayError::Api { api: definition.id.clone(), reason: "no Kafka endpoint".into() })?;
        let endpoint: Arc<dyn Endpoint> = Arc::new(KafkaEndpoint::new(&definition.id, endpoint.clone(), producers));
        Ok(Self { id: definition.id, context_paths, entrypoints, endpoint })
    }

    pub fn entrypoint_names(&self) -> Vec<&'static str> {
        self.entrypoints.iter().map(|e| e.kind.as_str()).collect()
    }

    fn select(&self, request: &Request) -> Option<&Entrypoint> {
        let find = |kind| self.entrypoints.iter().find(|e| e.kind == kind);
        let method = request.method();
        let is_upgrade = request
            .headers()
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
        let accepts_event_stream = request
            .headers()
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.contains("text/event-stream"));
        let candidates: &[(bool, EntrypointType)] = &[
            (is_upgrade, EntrypointType::Websocket),
            (method == Method::GET && accepts_event_stream, EntrypointType::Sse),
            (method == Method::GET, EntrypointType::HttpGet),
            (method == Method::POST, EntrypointType::HttpPost),
        ];
        candidates.iter().filter(|(matches, _)| *matches).find_map(|(_, kind)| find(*kind))
    }
}

/// The API whose context path is the longest prefix (on a segment boundary) of `path`.
fn find_api<'a>(apis: &'a [ServedApi], path: &str) -> Option<&'a ServedApi> {
    let contexts = apis.iter().enumerate().flat_map(|(index, api)| api.context_paths.iter().map(move |c| (index, c.as_str())));
    longest_match(contexts, path).map(|index| &apis[index])
}

fn longest_match<'a>(contexts: impl Iterator<Item = (usize, &'a str)>, path: &str) -> Option<usize> {
    contexts
        .filter(|(_, context)| {
            *context == "/" || path == *context || path.strip_prefix(*context).is_some_and(|rest| rest.starts_with('/'))
        })
        .max_by_key(|(_, context)| context.len())
        .map(|(index, _)| index)
}

pub(crate) async fn dispatch(apis: &[ServedApi], remote: SocketAddr, shutdown: CancellationToken, request: Request) -> Response {
    let Some(api) = find_api(apis, request.uri().path()) else { return no_context_path() };
    let Some(entrypoint) = api.select(&request) else { return no_context_path() };
    let execution = ExecutionContext {
        api_id: api.id.clone(),
        client_identifier: client_identifier::key_less(remote.ip(), request.headers()),
        attributes: Default::default(),
    };
    let context = EntrypointContext { endpoint: api.endpoint.clone(), execution, shutdown };
    let (parts, body) = request.into_parts();
    match &entrypoint.configuration {
        EntrypointConfiguration::HttpGet(configuration) => http_get::handle(configuration, entrypoint.qos, context, &parts).await,
        EntrypointConfiguration::HttpPost(configuration) => {
            let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
                Ok(body) => body,
                Err(_) => {
                    return json_error(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        &format!("Request body too large or unreadable: at most {MAX_BODY_BYTES} bytes"),
                        None,
                    )
                }
            };
            http_post::handle(configuration, context, &parts, body).await
        }
        EntrypointConfiguration::Sse(configuration) => sse::handle(configuration, entrypoint.qos, context, &parts.headers).await,
        EntrypointConfiguration::NotImplemented => no_context_path(),
    }
}

#[cfg(test)]
mod tests {
    use super::longest_match;

    #[test]
    fn longest_context_path_on_a_segment_boundary_wins() {
        let contexts = [(0, "/demo"), (1, "/demo/orders"), (2, "/")];
        let find = |path| longest_match(contexts.iter().copied(), path);
        assert_eq!(find("/demo"), Some(0));
        assert_eq!(find("/demo/x"), Some(0));
        assert_eq!(find("/demo/orders/1"), Some(1));
        assert_eq!(find("/demonstration"), Some(2));
        let without_root = [(0, "/demo")];
        assert_eq!(longest_match(without_root.iter().copied(), "/demonstration"), None);
    }
}
