//! From a request to an entrypoint: the API by longest matching context path, then the entrypoint
//! by request shape (DESIGN 5): WebSocket upgrade → websocket, GET accepting
//! `text/event-stream` → sse, GET → http-get, POST → http-post; otherwise the exact 404.

use crate::access::Access;
use crate::api::LoadedApi;
use crate::metered::Metered;
use crate::plan::{self, Presented};
use crate::Gateway;
use axum::extract::Request;
use axum::response::Response;
use http::{header, Method, StatusCode};
use http::{HeaderMap, HeaderName, HeaderValue};
use kafka_edge_definition::{Entrypoint, EntrypointConfiguration, EntrypointType, PlanSecurityType};
use kafka_edge_entrypoints::error::{failure_response, json_error, no_context_path};
use kafka_edge_entrypoints::{http_get, http_post, sse, websocket, EntrypointContext, Unrecorded};
use kafka_edge_message::{ExecutionContext, Headers, RequestInfo};
use kafka_edge_policies::{FlowEndpoint, RequestShape, SelectedFlows};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The entrypoint of `api` that serves this request shape.
fn select<'a>(api: &'a LoadedApi, request: &Request) -> Option<&'a Entrypoint> {
    let find = |kind| api.entrypoints.iter().find(|e| e.kind == kind);
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

/// An API exists at the path but none of its entrypoints takes this request: 405 with `Allow`
/// when none takes its method, else (a GET no GET entrypoint accepts) Gravitee's 404.
fn not_served(api: &LoadedApi, method: &Method) -> Response {
    let mut allowed: Vec<Method> = Vec::new();
    for entrypoint in &api.entrypoints {
        let method = match entrypoint.kind {
            EntrypointType::HttpPost => Method::POST,
            _ => Method::GET,
        };
        if !allowed.contains(&method) {
            allowed.push(method);
        }
    }
    allowed.sort_by_key(|method| method.to_string());
    if allowed.is_empty() || allowed.contains(method) {
        return no_context_path();
    }
    let allow = allowed.iter().map(Method::as_str).collect::<Vec<_>>().join(", ");
    let message = format!("Method {method} is not served by this API; it serves {allow}");
    let mut response = json_error(StatusCode::METHOD_NOT_ALLOWED, &message, None);
    if let Ok(value) = HeaderValue::from_str(&allow) {
        response.headers_mut().insert(header::ALLOW, value);
    }
    response
}

/// The API whose context path is the longest prefix (on a segment boundary) of `path`.
/// With that context path, and the path below it (`/` when the path is the context path).
fn find_api<'a>(apis: &'a [Arc<LoadedApi>], path: &str) -> Option<(&'a LoadedApi, &'a str, String)> {
    let contexts =
        apis.iter().enumerate().flat_map(|(index, api)| api.context_paths.iter().map(move |c| (index, c.as_str())));
    let (index, context) = longest_match(contexts, path)?;
    let below = if context == "/" { path } else { &path[context.len()..] };
    let path_info = if below.is_empty() { "/".to_string() } else { below.to_string() };
    Some((&apis[index], context, path_info))
}

fn longest_match<'a>(contexts: impl Iterator<Item = (usize, &'a str)>, path: &str) -> Option<(usize, &'a str)> {
    contexts
        .filter(|(_, context)| {
            *context == "/" || path == *context || path.strip_prefix(*context).is_some_and(|rest| rest.starts_with('/'))
        })
        .max_by_key(|(_, context)| context.len())
}

/// The size of a request's head as a client sent it (request line and header lines).
fn head_size(request: &Request) -> usize {
    let line = request.method().as_str().len() + request.uri().to_string().len() + 12;
    line + request.headers().iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum::<usize>()
}

pub(crate) async fn dispatch(gateway: &Gateway, remote: SocketAddr, mut request: Request) -> Response {
    let started = std::time::Instant::now();
    // Hyper's buffer limit stops a head that arrives slowly; one that arrives whole is measured here.
    if head_size(&request) > crate::listener::MAX_HEADER_BYTES {
        gateway.options.metrics.unrouted();
        let message = format!(
            "Request head too large: at most {} bytes of request line and headers",
            crate::listener::MAX_HEADER_BYTES
        );
        let mut refused = json_error(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, &message, None);
        // As hyper does for a head too large to buffer: the connection is not reused.
        refused.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        return refused;
    }
    let client = gateway.options.trusted_proxies.client_address(remote.ip(), request.headers());
    let tracer = gateway.options.tracer.as_ref();
    let access = (gateway.options.access_log || tracer.is_some())
        .then(|| Access::new(gateway.options.access_log, request.method(), request.uri().path(), client));
    let respond = |response: Response| match &access {
        Some(access) => access.respond(response),
        None => response,
    };
    let apis = gateway.apis.current();
    let Some((api, context_path, path_info)) = find_api(&apis, request.uri().path()) else {
        gateway.options.metrics.unrouted();
        return respond(no_context_path());
    };
    let entrypoint = select(api, &request);
    if let (Some(access), Some(entrypoint)) = (&access, entrypoint) {
        access.served_by(&api.id, entrypoint.kind.as_str());
        if let Some(tracer) = tracer {
            if let Some(span) = tracer.begin(request.headers_mut()) {
                access.trace(tracer.clone(), span, context_path);
            }
        }
    }
    let served = Served { api, entrypoint, path_info, client, access: access.as_ref() };
    let response = with_cors(gateway, served, request).await;
    match entrypoint {
        Some(entrypoint) => gateway.options.metrics.request(
            &api.id,
            entrypoint.kind.as_str(),
            response.status().as_u16(),
            started.elapsed(),
        ),
        None => gateway.options.metrics.unrouted(),
    }
    respond(response)
}

/// Who serves a request, and what is known of it before its entrypoint runs.
struct Served<'a> {
    api: &'a LoadedApi,
    entrypoint: Option<&'a Entrypoint>,
    path_info: String,
    /// The client's address (`--trusted-proxies` applied).
    client: IpAddr,
    access: Option<&'a Arc<Access>>,
}

async fn with_cors(gateway: &Gateway, served: Served<'_>, request: Request) -> Response {
    let api = served.api;
    let Some(cors) = &api.cors else { return serve(gateway, served, request).await };
    // The preflight is answered before plans: a browser sends no credentials with it.
    if let Some(answer) = cors.preflight(request.method(), request.headers()) {
        return answer;
    }
    let origin = request.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()).map(str::to_owned);
    // Browsers send a WebSocket upgrade from any page without asking (no preflight), with the
    // visitor's client certificate: a page of another origin must not open a session as the visitor.
    let is_upgrade = request.headers().get(header::UPGRADE).is_some();
    if let Some(origin) = origin.as_deref().filter(|origin| is_upgrade && !cors.allows(origin)) {
        let message = format!("Forbidden: origin '{origin}' may not open a WebSocket on this API (cors.allowOrigin)");
        return json_error(StatusCode::FORBIDDEN, &message, Some("CORS_ORIGIN_NOT_ALLOWED"));
    }
    let mut response = serve(gateway, served, request).await;
    if let Some(origin) = origin {
        cors.decorate(&origin, &mut response);
    }
    response
}

async fn serve(gateway: &Gateway, served: Served<'_>, request: Request) -> Response {
    let Served { api, entrypoint, path_info, client, access } = served;
    let Some(entrypoint) = entrypoint else { return not_served(api, request.method()) };
    let (mut parts, body) = request.into_parts();
    let mut execution = ExecutionContext {
        api: api.info.clone(),
        entrypoint: entrypoint.kind.as_str(),
        client_identifier: String::new(),
        attributes: Default::default(),
        structured_attributes: Default::default(),
        request: Arc::new(request_info(&parts, client, path_info)),
    };
    let state = gateway.options.state.as_deref();
    // An API without plans reads no credential: nothing to parse on its requests.
    let presented = if api.plans.is_open() { Presented::default() } else { Presented::read(&parts) };
    let admission = match api.plans.admit(&presented, &execution, &parts.headers, client, state).await {
        Ok(admission) => admission,
        Err(refusal) => return refusal.into_response(),
    };
    execution.client_identifier = admission.client_identifier;
    execution.attributes.extend(admission.attributes);
    if let Some(claims) = admission.claims {
        execution.structured_attributes = Arc::new([("jwt.claims".to_string(), claims)].into());
    }
    if let Some(plan) = admission.plan.filter(|plan| !plan.propagates_credential()) {
        remove_credential(plan.kind(), &mut parts, Arc::make_mut(&mut execution.request));
    }
    let revoked = match (admission.revocable, state) {
        (Some(key), Some(state)) => {
            if matches!(entrypoint.configuration, EntrypointConfiguration::HttpGet(_)) {
                gateway.revocations.release_on_revoke(&key, &api.endpoint);
            }
            gateway.revocations.token(&key, state)
        }
        _ => CancellationToken::new(),
    };
    let shape = RequestShape {
        path_info: &execution.request.path_info,
        method: parts.method.as_str(),
        entrypoint: entrypoint.kind,
    };
    let api_flows = api.flows.select(&shape, &execution);
    let flows = match admission.plan {
        Some(plan) => plan.flows.select(&shape, &execution).then(api_flows),
        None => api_flows,
    };
    if let Err(failure) = flows.on_request(&mut execution) {
        return failure_response(&failure);
    }
    // The response phase needs the context after the entrypoint consumed its copy.
    let response_context = (!flows.is_empty()).then(|| execution.clone());
    let max_message_bytes = gateway.options.max_message_bytes;
    let context = EntrypointContext {
        endpoint: FlowEndpoint::wrap(metered(gateway, api), flows.clone()),
        execution,
        shutdown: api.closing.clone(),
        revoked,
        max_message_bytes,
        activity: match access {
            Some(access) => access.clone(),
            None => Unrecorded::shared(),
        },
    };
    let response = match &entrypoint.configuration {
        EntrypointConfiguration::HttpGet(configuration) => {
            http_get::handle(configuration, entrypoint.qos, context, &parts).await
        }
        EntrypointConfiguration::HttpPost(configuration) => {
            let body = match read_body(body, max_message_bytes).await {
                Ok(body) => body,
                Err(response) => return *response,
            };
            if let Some(access) = access {
                access.read(body.len());
            }
            http_post::handle(configuration, context, &parts.headers, body).await
        }
        EntrypointConfiguration::Sse(configuration) => {
            sse::handle(configuration, entrypoint.qos, context, &parts.headers).await
        }
        EntrypointConfiguration::Websocket(configuration) => {
            websocket::handle(configuration, entrypoint.qos, context, &mut parts, &api.websockets).await
        }
        // Webhooks are driven by subscriptions (crate::webhook), never by a request.
        EntrypointConfiguration::Webhook(_) | EntrypointConfiguration::NotImplemented => no_context_path(),
    };
    match response_context {
        Some(mut context) => apply_response_phase(&flows, &mut context, response),
        None => response,
    }
}

/// The API's endpoint, counted for `/metrics`.
fn metered(gateway: &Gateway, api: &LoadedApi) -> Arc<dyn kafka_edge_message::Endpoint> {
    let metrics = gateway.options.metrics.clone();
    Metered::wrap(api.endpoint.clone(), api.metric_id.clone(), api.named_topics.clone(), metrics)
}

/// Takes a credential the plan does not propagate off the request, so that flows, expressions,
/// record headers and logs never see it.
fn remove_credential(kind: PlanSecurityType, parts: &mut http::request::Parts, info: &mut RequestInfo) {
    let (header, parameter) = match kind {
        PlanSecurityType::ApiKey => (plan::API_KEY_HEADER, plan::API_KEY_QUERY),
        PlanSecurityType::Jwt | PlanSecurityType::OAuth2 => (header::AUTHORIZATION.as_str(), plan::ACCESS_TOKEN_QUERY),
        PlanSecurityType::KeyLess | PlanSecurityType::Mtls => return,
    };
    parts.headers.remove(header);
    info.headers.remove(header);
    info.params.retain(|(name, _)| name != parameter);
    let Some(query) = parts.uri.query() else { return };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let name = pair.split('=').next().unwrap_or_default();
            kafka_edge_entrypoints::query::parse(Some(name)).first().is_none_or(|(name, _)| name != parameter)
        })
        .collect();
    let path_and_query =
        if kept.is_empty() { parts.uri.path().to_owned() } else { format!("{}?{}", parts.uri.path(), kept.join("&")) };
    let mut uri = std::mem::take(&mut parts.uri).into_parts();
    uri.path_and_query = path_and_query.parse().ok();
    parts.uri = http::Uri::from_parts(uri).unwrap_or_default();
}

/// The whole body of one message: over the limit is a 413 that names it; a body that cannot be
/// read (a malformed chunk) is a 400.
async fn read_body(body: axum::body::Body, max_message_bytes: usize) -> Result<bytes::Bytes, Box<Response>> {
    axum::body::to_bytes(body, max_message_bytes).await.map_err(|error| {
        let too_large = error.into_inner().downcast_ref::<http_body_util::LengthLimitError>().is_some();
        Box::new(if too_large {
            let message = format!(
                "Request body too large: at most {max_message_bytes} bytes (the gateway's --max-message-bytes)"
            );
            json_error(StatusCode::PAYLOAD_TOO_LARGE, &message, None)
        } else {
            json_error(StatusCode::BAD_REQUEST, "Malformed request body: it could not be read", None)
        })
    })
}

/// The request as flows and expressions see it.
fn request_info(parts: &http::request::Parts, client: IpAddr, path_info: String) -> RequestInfo {
    let mut headers = Headers::new();
    for (name, value) in &parts.headers {
        headers.append(name.as_str(), String::from_utf8_lossy(value.as_bytes()));
    }
    RequestInfo {
        id: uuid::Uuid::new_v4().to_string(),
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        path_info,
        remote_address: client.to_string(),
        headers,
        params: kafka_edge_entrypoints::query::parse(parts.uri.query()),
    }
}

/// Runs the response phase on the response's headers (before any body byte is sent).
fn apply_response_phase(flows: &SelectedFlows, context: &mut ExecutionContext, mut response: Response) -> Response {
    let mut headers = Headers::new();
    for (name, value) in response.headers() {
        headers.append(name.as_str(), String::from_utf8_lossy(value.as_bytes()));
    }
    if let Err(failure) = flows.on_response(context, &mut headers) {
        return failure_response(&failure);
    }
    let mut map = HeaderMap::new();
    for (name, value) in headers.iter() {
        match (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
            (Ok(name), Ok(value)) => {
                map.append(name, value);
            }
            _ => tracing::debug!(header = name, "Response header not representable in HTTP; dropped."),
        }
    }
    *response.headers_mut() = map;
    response
}

#[cfg(test)]
mod tests {
    use super::longest_match;

    #[test]
    fn longest_context_path_on_a_segment_boundary_wins() {
        let contexts = [(0, "/demo"), (1, "/demo/orders"), (2, "/")];
        let find = |path| longest_match(contexts.iter().copied(), path).map(|(index, _)| index);
        assert_eq!(find("/demo"), Some(0));
        assert_eq!(find("/demo/x"), Some(0));
        assert_eq!(find("/demo/orders/1"), Some(1));
        assert_eq!(find("/demonstration"), Some(2));
        let without_root = [(0, "/demo")];
        assert!(longest_match(without_root.iter().copied(), "/demonstration").is_none());
    }
}
