//! http-post (DESIGN 5.3): the whole body is one message; 202 once the endpoint acknowledged it.

use crate::error::failure_response;
use crate::EntrypointContext;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{request::Parts, StatusCode};
use kafka_edge_definition::HttpPostConfiguration;
use kafka_edge_message::Message;

/// Serves one http-post request whose body was read already.
pub async fn handle(configuration: &HttpPostConfiguration, context: EntrypointContext, request: &Parts, body: Bytes) -> Response {
    let mut message = Message::new(body);
    if configuration.request_headers_to_message {
        for (name, value) in &request.headers {
            message.headers.append(name.as_str(), String::from_utf8_lossy(value.as_bytes()));
        }
    }
    match context.endpoint.publish(&context.execution, message).await {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(failure) => failure_response(&failure),
    }
}
