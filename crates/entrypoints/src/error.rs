//! The one place that turns failures into client-facing error responses (DESIGN 6):
//! `{"message": "...", "http_status_code": N}` plus `"key"` where one applies.

use axum::response::{IntoResponse, Response};
use http::{header, StatusCode};
use kafka_edge_message::{EndpointFailure, FailureKind};

/// A JSON error body with the given status.
pub fn json_error(status: StatusCode, message: &str, key: Option<&str>) -> Response {
    json_error_with(status, message, key.map(|key| ("key", key)))
}

/// As [`json_error`], with the path of the request field at fault (`field`), where there is one.
pub fn json_error_at(status: StatusCode, message: &str, field: Option<&str>) -> Response {
    json_error_with(status, message, field.map(|field| ("field", field)))
}

fn json_error_with(status: StatusCode, message: &str, extra: Option<(&str, &str)>) -> Response {
    let mut body = serde_json::json!({ "message": message, "http_status_code": status.as_u16() });
    if let Some((name, value)) = extra {
        body[name] = value.into();
    }
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// The answer to an endpoint failure that ends a request before any message was exchanged.
pub fn failure_response(failure: &EndpointFailure) -> Response {
    let status = StatusCode::from_u16(failure.kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_error(status, &failure.message, failure.kind.shows_key().then(|| failure.kind.key()))
}

/// Whether a failure at the start of a subscription is the request's fault (a malformed cursor, a
/// configuration the request made invalid): answered with a status instead of a stream.
pub fn rejects_request(failure: &EndpointFailure) -> bool {
    matches!(failure.kind, FailureKind::BadRequest | FailureKind::InvalidDynamicConfiguration)
}

/// DESIGN 5: no API or no matching entrypoint.
pub fn no_context_path() -> Response {
    (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain")], "No context-path matches the request URI.")
        .into_response()
}
