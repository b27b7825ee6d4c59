//! http-post (DESIGN 5.3): the whole body is one message; 202 once the endpoint acknowledged it.
//! A body in the bridge's batch format (`batch`) is one message per element instead.

mod batch;

pub use batch::RESPONSE_CONTENT_TYPE as BATCH_RESPONSE_CONTENT_TYPE;

use crate::error::failure_response;
use crate::{trace, EntrypointContext};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{header, HeaderMap, StatusCode};
use kafka_edge_definition::HttpPostConfiguration;
use kafka_edge_message::{FailureKind, Message};

/// Serves one http-post request whose body was read already.
pub async fn handle(
    configuration: &HttpPostConfiguration,
    context: EntrypointContext,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(format) = batch::Format::of(headers) {
        return batch::handle(format, configuration.request_headers_to_message, context, body).await;
    }
    let mut message = Message::new(body);
    if configuration.request_headers_to_message {
        // The request's headers as the request phase of the flows left them.
        message.headers = context.execution.request.headers.clone();
    }
    trace::carry(&context.execution.request.headers, &mut message);
    match context.endpoint.publish(&context.execution, message).await {
        Ok(_) => StatusCode::ACCEPTED.into_response(),
        // A flow that interrupts publishing answers with exactly its status and message.
        Err(failure) if matches!(failure.kind, FailureKind::Interrupted { .. }) => {
            let status = StatusCode::from_u16(failure.kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (status, [(header::CONTENT_TYPE, "text/plain")], failure.message).into_response()
        }
        Err(failure) => failure_response(&failure),
    }
}
