//! http-get (DESIGN 5.2): one response collects up to `limit` messages or for up to
//! `messagesLimitDurationMs`, whichever ends first; what it delivers is committed before the
//! response is sent, so the client's next call continues exactly after it.

use crate::accept::negotiate;
use crate::error::{failure_response, json_error, rejects_request};
use crate::page::Page;
use crate::EntrypointContext;
use axum::response::{IntoResponse, Response};
use http::{header, request::Parts, StatusCode};
use kafka_edge_definition::{HttpGetConfiguration, Qos};
use kafka_edge_message::{delivery, EndpointFailure, FailureKind, Message, SubscribeOptions};
use std::time::Duration;
use tokio::time::Instant;

/// Serves one http-get request.
pub async fn handle(
    configuration: &HttpGetConfiguration,
    qos: Qos,
    context: EntrypointContext,
    request: &Parts,
) -> Response {
    let started = Instant::now();
    let format = match negotiate(&request.headers) {
        Ok(format) => format,
        Err(unsupported) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                &format!("Unsupported accept header: [{}]", unsupported.join(", ")),
                None,
            )
        }
    };
    let query = Query::parse(request.uri.query());
    let limit = match query.limit.as_deref().map(|raw| raw.parse::<u64>().map(|n| (raw, n))) {
        None => None,
        Some(Ok((raw, n))) if n > 0 => Some((raw, n)),
        Some(_) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                "Invalid limit query parameter: expected a positive integer",
                None,
            )
        }
    };
    let max_count =
        limit.map_or(configuration.messages_limit_count, |(_, n)| n.min(configuration.messages_limit_count)) as usize;
    // A cursor only means something where messages have ids.
    let cursor = query.cursor.filter(|_| qos.emits_ids());
    let options = SubscribeOptions { qos, cursor: cursor.clone() };

    let mut subscription = match context.endpoint.subscribe(&context.execution, options).await {
        Ok(subscription) => subscription,
        // Over the consumer limits nothing was consumed: a status, so that clients back off.
        Err(failure) if rejects_request(&failure) || failure.kind == FailureKind::Overloaded => {
            return failure_response(&failure)
        }
        Err(failure) => {
            return page_response(format, configuration, Vec::new(), Some(failure), cursor, limit.map(|l| l.0))
        }
    };

    let deadline = (configuration.messages_limit_duration_ms > 0)
        .then(|| started + Duration::from_millis(configuration.messages_limit_duration_ms));
    let mut items: Vec<Message> = Vec::with_capacity(max_count.min(64));
    let mut failure: Option<EndpointFailure> = None;
    while items.len() < max_count {
        let next = tokio::select! {
            next = subscription.next() => next,
            _ = sleep_until(deadline) => break,
            // A bounded response runs to its end during shutdown; an unbounded one ends now.
            _ = context.shutdown.cancelled(), if deadline.is_none() => break,
        };
        match next {
            Some(Ok(message)) => items.push(message),
            Some(Err(error)) => {
                failure = Some(error);
                break;
            }
            None => break,
        }
    }

    // Everything in `items` is delivered; at at-most-once a partition whose commit failed went to
    // another consumer, which delivers its messages, so they leave the page. Closing commits
    // synchronously before we answer; the consumer then stays in its group for the client's next
    // GET, or leaves while the answer is on its way.
    delivery::settle_page(qos, &mut items).await;
    // An empty page still gets a cursor where ids exist, so a client looping on nextCursor goes on:
    // the endpoint's position after everything delivered (following it neither skips nor repeats).
    let wants_position = items.is_empty() && failure.is_none() && cursor.is_none() && qos.emits_ids();
    let position = subscription.close_keeping_warm(wants_position).await;

    let next_cursor = items.iter().rev().find_map(|m| m.id.clone()).or(cursor).or(position);
    page_response(format, configuration, items, failure, next_cursor, limit.map(|l| l.0))
}

fn page_response(
    format: crate::accept::BodyFormat,
    configuration: &HttpGetConfiguration,
    items: Vec<Message>,
    error: Option<EndpointFailure>,
    next_cursor: Option<String>,
    limit: Option<&str>,
) -> Response {
    let page = Page {
        items: &items,
        error: error.as_ref(),
        next_cursor: next_cursor.as_deref(),
        limit,
        headers_in_payload: configuration.headers_in_payload,
        metadata_in_payload: configuration.metadata_in_payload,
    };
    (StatusCode::OK, [(header::CONTENT_TYPE, format.content_type())], page.render(format)).into_response()
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// The query parameters http-get reads.
struct Query {
    limit: Option<String>,
    cursor: Option<String>,
}

impl Query {
    fn parse(query: Option<&str>) -> Self {
        let mut parsed = Query { limit: None, cursor: None };
        for (name, value) in crate::query::parse(query) {
            match name.as_str() {
                "limit" => parsed.limit = Some(value),
                "cursor" => parsed.cursor = Some(value),
                _ => {}
            }
        }
        parsed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_reads_limit_and_decodes_cursor() {
        let query = Query::parse(Some("limit=2&cursor=dGVzdC10b3BpY0AwIzA%3D&other=x"));
        assert_eq!(query.limit.as_deref(), Some("2"));
        assert_eq!(query.cursor.as_deref(), Some("dGVzdC10b3BpY0AwIzA="));
        assert_eq!(Query::parse(Some("cursor=a+b%2")).cursor.as_deref(), Some("a+b%2"));
        assert_eq!(Query::parse(None).limit, None);
        assert_eq!(Query::parse(Some("cursor=%é%")).cursor.as_deref(), Some("%é%"));
    }
}
