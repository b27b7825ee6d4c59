//! The admin API (docs/admin-api.md): webhook subscriptions of PUSH plans and API keys of
//! `api-key` plans, on a listener of its own.
//! Every admin API call needs `Authorization: Bearer <KAFKA_EDGE_ADMIN_TOKEN>`; without a token the
//! admin API is off and the listener serves only `/health`, `/ready` and `/metrics`, which never
//! need one. Answers never contain a secret (they are `***`).

use crate::credentials::{CreateKey, CredentialError, Credentials, RegisterCertificate};
use crate::listener::ListenerOptions;
use crate::observe::{ClientCounts, Metrics, Readiness};
use crate::state::validate::{self, CreateSubscription};
use crate::state::{StateError, Subscription, SubscriptionState};
use crate::webhook::{NotSubscribable, Webhooks};
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use http::StatusCode;
use kafka_edge_definition::Problem;
use kafka_edge_endpoint_kafka::KafkaClients;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The environment variable holding the admin token.
pub const TOKEN_ENV: &str = "KAFKA_EDGE_ADMIN_TOKEN";
/// The default `--admin-listen`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8083";
/// Largest accepted request body.
const MAX_BODY: usize = 1024 * 1024;

#[derive(Clone)]
struct Admin {
    webhooks: Arc<Webhooks>,
    credentials: Arc<Credentials>,
    apis: Arc<crate::ApiTable>,
    token: Arc<str>,
}

/// What `/health`, `/ready` and `/metrics` report.
pub struct Observed {
    pub readiness: Arc<Readiness>,
    pub metrics: Arc<Metrics>,
    pub clients: Arc<KafkaClients>,
    /// The APIs served.
    pub apis: Arc<crate::ApiTable>,
    /// `/ready` answers 503 while an API's cluster is known unreachable
    /// (`--ready-requires-clusters`).
    pub ready_requires_clusters: bool,
}

impl Observed {
    /// What `/ready` and `kafka_edge_ready` say, with the per-API cluster report.
    fn readiness(&self) -> (&'static str, serde_json::Value) {
        let apis = self.apis.current();
        let (clusters, unreachable) = self.metrics.clusters.report(apis.iter().map(|api| api.id.as_str()));
        let state = match self.readiness.state() {
            "READY" if unreachable && self.ready_requires_clusters => "CLUSTER_UNREACHABLE",
            state => state,
        };
        let ids: Vec<&str> = apis.iter().map(|api| api.id.as_str()).collect();
        (state, serde_json::json!({"status": state, "apis": ids, "clusters": clusters}))
    }
}

/// The admin listener's routes: `/health`, `/ready` and `/metrics` without a token; the admin API
/// (every route checks the bearer token first) when `admin` is given, else a 404 that says how to
/// turn it on.
pub fn router(observed: Arc<Observed>, admin: Option<(Arc<Webhooks>, Arc<Credentials>, &str)>) -> Router {
    let open = Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(observed.clone());
    let rest = match admin {
        Some((webhooks, credentials, token)) => protected(webhooks, credentials, observed.apis.clone(), token),
        None => Router::new().fallback(|| async {
            let message = format!("The admin API is off: set {TOKEN_ENV} to serve it");
            error(StatusCode::NOT_FOUND, &message, None)
        }),
    };
    open.merge(rest)
}

async fn health() -> Response {
    Json(serde_json::json!({"status": "UP"})).into_response()
}

/// 200 when the gateway takes traffic; 503 while it starts and from the first moment of a SIGTERM.
async fn ready(State(observed): State<Arc<Observed>>) -> Response {
    let (state, body) = observed.readiness();
    let status = if state == "READY" { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body)).into_response()
}

async fn metrics(State(observed): State<Arc<Observed>>) -> Response {
    let ready = observed.readiness().0 == "READY";
    let text = observed.metrics.render(ready, &ClientCounts::of(&observed.clients));
    ([(http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

fn protected(
    webhooks: Arc<Webhooks>,
    credentials: Arc<Credentials>,
    apis: Arc<crate::ApiTable>,
    token: &str,
) -> Router {
    let admin = Admin { webhooks, credentials, apis, token: token.into() };
    Router::new()
        .route("/apis/{api}/asyncapi", get(asyncapi))
        .route("/apis/{api}/subscriptions", get(list).post(create))
        .route("/apis/{api}/subscriptions/{id}", get(read).delete(remove))
        .route("/apis/{api}/keys", get(list_keys).post(create_key))
        .route("/apis/{api}/keys/{key}", get(read_key).delete(revoke_key))
        .route("/apis/{api}/certificates", get(list_certificates).post(register_certificate))
        .route("/apis/{api}/certificates/{fingerprint}", get(read_certificate).delete(unregister_certificate))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "No such admin resource", None) })
        .layer(middleware::from_fn_with_state(admin.clone(), authorize))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(admin)
}

/// Serves the admin listener's `routes` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    options: ListenerOptions,
    routes: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let address = listener.local_addr()?;
    match &options.tls {
        Some(tls) => {
            tokio::spawn(tls.clone().follow(shutdown.clone()));
            tracing::info!(%address, "Admin API listening (HTTPS).");
        }
        None => tracing::info!(%address, "Admin API listening."),
    }
    crate::listener::serve(listener, routes, options, shutdown).await
}

/// The configured token: `None` (admin API off) when the variable is unset or empty.
pub fn token_from_env() -> Option<String> {
    std::env::var(TOKEN_ENV).ok().filter(|t| !t.is_empty())
}

async fn authorize(State(admin): State<Admin>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        Some(token) if same(token.as_bytes(), admin.token.as_bytes()) => next.run(request).await,
        _ => error(StatusCode::UNAUTHORIZED, "Unauthorized: send Authorization: Bearer <admin token>", None),
    }
}

/// Compares without stopping at the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Admin answers are the gateway's JSON errors, with the field at fault where there is one.
fn error(status: StatusCode, message: &str, field: Option<&str>) -> Response {
    kafka_edge_entrypoints::error::json_error_at(status, message, field)
}

fn invalid(problem: Problem) -> Response {
    let path = (!problem.path.is_empty()).then_some(problem.path.as_str());
    error(StatusCode::BAD_REQUEST, &format!("Invalid subscription: {problem}"), path)
}

fn unknown(unknown: NotSubscribable) -> Response {
    error(StatusCode::NOT_FOUND, &unknown.to_string(), None)
}

fn state_failure(failure: StateError) -> Response {
    tracing::error!(error = %failure, "Gateway state not written.");
    error(StatusCode::SERVICE_UNAVAILABLE, "The gateway state cannot be written", None)
}

fn answer(status: StatusCode, subscription: &Subscription) -> Response {
    (status, Json(subscription.redacted())).into_response()
}

async fn create(State(admin): State<Admin>, Path(api): Path<String>, body: Bytes) -> Response {
    if let Err(missing) = admin.webhooks.check_api(&api) {
        return unknown(missing);
    }
    let request: CreateSubscription = match validate::parse(&body) {
        Ok(request) => request,
        Err(field) => return invalid(field),
    };
    let id = request.id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    if let Err(field) = validate::check_id("id", &id)
        .and_then(|_| validate::check_configuration("configuration", &request.configuration))
    {
        return invalid(field);
    }
    if let Err(missing) = admin.webhooks.check(&api, &request.plan) {
        return unknown(missing);
    }
    let store = admin.webhooks.store();
    if store.get(&api, &id).is_some() {
        return error(StatusCode::CONFLICT, &format!("subscription `{id}` already exists"), Some("id"));
    }
    let subscription = Subscription {
        id,
        api_id: api,
        plan_id: request.plan,
        configuration: request.configuration,
        state: SubscriptionState::Active,
    };
    if let Err(failure) = store.put(subscription.clone()).await {
        return state_failure(failure);
    }
    admin.webhooks.reconcile().await;
    answer(StatusCode::CREATED, &subscription)
}

/// The AsyncAPI document of a served API (its current version).
async fn asyncapi(State(admin): State<Admin>, Path(api): Path<String>) -> Response {
    match admin.apis.get(&api) {
        Some(loaded) => Json(crate::asyncapi::document(&loaded.definition)).into_response(),
        None => error(StatusCode::NOT_FOUND, &format!("API `{api}` not found"), None),
    }
}

async fn list(State(admin): State<Admin>, Path(api): Path<String>) -> Response {
    if let Err(missing) = admin.webhooks.check_api(&api) {
        return unknown(missing);
    }
    let found: Vec<Subscription> =
        admin.webhooks.store().list().into_iter().filter(|s| s.api_id == api).map(|s| s.redacted()).collect();
    Json(found).into_response()
}

async fn read(State(admin): State<Admin>, Path((api, id)): Path<(String, String)>) -> Response {
    match admin.webhooks.store().get(&api, &id) {
        Some(subscription) => answer(StatusCode::OK, &subscription),
        None => error(StatusCode::NOT_FOUND, &format!("subscription `{id}` of API `{api}` not found"), None),
    }
}

/// Deletes the subscription and returns once its delivery stopped and its consumer left the group.
async fn remove(State(admin): State<Admin>, Path((api, id)): Path<(String, String)>) -> Response {
    match admin.webhooks.store().delete(&api, &id).await {
        Ok(true) => {
            admin.webhooks.reconcile().await;
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(false) => error(StatusCode::NOT_FOUND, &format!("subscription `{id}` of API `{api}` not found"), None),
        Err(failure) => state_failure(failure),
    }
}

fn credential_failure(failure: CredentialError) -> Response {
    match failure {
        CredentialError::UnknownApi(_) => error(StatusCode::NOT_FOUND, &failure.to_string(), None),
        CredentialError::Invalid(problem) => {
            let path = (!problem.path.is_empty()).then_some(problem.path.as_str());
            error(StatusCode::BAD_REQUEST, &format!("Invalid request: {problem}"), path)
        }
        CredentialError::Conflict(problem) => {
            error(StatusCode::CONFLICT, &problem.to_string(), Some(problem.path.as_str()))
        }
        CredentialError::State(failure) => state_failure(failure),
    }
}

async fn create_key(State(admin): State<Admin>, Path(api): Path<String>, body: Bytes) -> Response {
    let request: CreateKey = match validate::parse(&body) {
        Ok(request) => request,
        Err(problem) => return credential_failure(CredentialError::Invalid(problem)),
    };
    match admin.credentials.create(&api, request).await {
        Ok(created) => (StatusCode::CREATED, Json(created)).into_response(),
        Err(failure) => credential_failure(failure),
    }
}

async fn list_keys(State(admin): State<Admin>, Path(api): Path<String>) -> Response {
    match admin.credentials.list(&api) {
        Ok(keys) => Json(keys).into_response(),
        Err(failure) => credential_failure(failure),
    }
}

async fn read_key(State(admin): State<Admin>, Path((api, key)): Path<(String, String)>) -> Response {
    match admin.credentials.find(&api, &key) {
        Ok(Some(found)) => Json(found).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, &format!("no such API key for API `{api}`"), None),
        Err(failure) => credential_failure(failure),
    }
}

/// Revokes the key: every gateway following the state refuses it within its fetch latency.
async fn revoke_key(State(admin): State<Admin>, Path((api, key)): Path<(String, String)>) -> Response {
    match admin.credentials.revoke(&api, &key).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => error(StatusCode::NOT_FOUND, &format!("no such API key for API `{api}`"), None),
        Err(failure) => credential_failure(failure),
    }
}

async fn register_certificate(State(admin): State<Admin>, Path(api): Path<String>, body: Bytes) -> Response {
    let request: RegisterCertificate = match validate::parse(&body) {
        Ok(request) => request,
        Err(problem) => return credential_failure(CredentialError::Invalid(problem)),
    };
    match admin.credentials.register_certificate(&api, request).await {
        Ok(registered) => (StatusCode::CREATED, Json(registered)).into_response(),
        Err(failure) => credential_failure(failure),
    }
}

async fn list_certificates(State(admin): State<Admin>, Path(api): Path<String>) -> Response {
    match admin.credentials.certificates(&api) {
        Ok(certificates) => Json(certificates).into_response(),
        Err(failure) => credential_failure(failure),
    }
}

async fn read_certificate(State(admin): State<Admin>, Path((api, fingerprint)): Path<(String, String)>) -> Response {
    match admin.credentials.certificate(&api, &fingerprint) {
        Ok(Some(found)) => Json(found).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, &format!("no such client certificate for API `{api}`"), None),
        Err(failure) => credential_failure(failure),
    }
}

async fn unregister_certificate(
    State(admin): State<Admin>,
    Path((api, fingerprint)): Path<(String, String)>,
) -> Response {
    match admin.credentials.unregister_certificate(&api, &fingerprint).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => error(StatusCode::NOT_FOUND, &format!("no such client certificate for API `{api}`"), None),
        Err(failure) => credential_failure(failure),
    }
}
