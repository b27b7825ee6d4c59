//! W3C trace context (`traceparent`, `tracestate`): carried from the HTTP request into the Kafka
//! records it publishes, and from a consumed record to its client (webhook call headers, http-get
//! item headers) (docs/operations.md#tracing).

use kafka_edge_message::{Headers, Message};

pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";

/// Whether `name` is a trace context header.
pub fn is_trace_header(name: &str) -> bool {
    name.eq_ignore_ascii_case(TRACEPARENT) || name.eq_ignore_ascii_case(TRACESTATE)
}

/// Gives `message` the request's trace context, unless it has a `traceparent` of its own (a
/// flow's, or the request's headers copied by `requestHeadersToMessage`). A `traceparent` that
/// is not valid is not carried, nor its `tracestate`, as the W3C specification asks.
pub fn carry(request: &Headers, message: &mut Message) {
    if message.headers.get_all(TRACEPARENT).next().is_some() {
        return;
    }
    let mut parents = request.get_all(TRACEPARENT);
    let (Some(parent), None) = (parents.next(), parents.next()) else { return };
    if !is_valid_traceparent(parent) {
        return;
    }
    message.headers.append(TRACEPARENT, parent);
    let state: Vec<&str> = request.get_all(TRACESTATE).collect();
    if !state.is_empty() {
        // Several tracestate fields are one list (W3C trace context, section 3.3.1.1).
        message.headers.append(TRACESTATE, state.join(","));
    }
}

/// A valid `traceparent`: `version-traceid-parentid-flags`, 2, 32, 16 and 2 lower-case hex
/// digits; version `ff` and all-zero ids are invalid, and a version above 00 may append fields
/// after a dash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: [u8; 16],
    pub parent_id: [u8; 8],
    pub flags: u8,
}

impl TraceParent {
    pub fn parse(value: &str) -> Option<Self> {
        let mut parts = value.trim().split('-');
        let (version, trace_id, parent_id, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let [version] = lower_hex::<1>(version)?;
        if version == 0xff || (version == 0 && parts.next().is_some()) {
            return None;
        }
        let trace_id = lower_hex::<16>(trace_id).filter(|id| id.iter().any(|b| *b != 0))?;
        let parent_id = lower_hex::<8>(parent_id).filter(|id| id.iter().any(|b| *b != 0))?;
        let [flags] = lower_hex::<1>(flags)?;
        Some(Self { trace_id, parent_id, flags })
    }
}

/// Exactly `2 * N` lower-case hex digits as bytes.
fn lower_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let digits = text.as_bytes();
    if digits.len() != 2 * N {
        return None;
    }
    let value = |digit: u8| match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    };
    let mut bytes = [0u8; N];
    for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = value(pair[0])? << 4 | value(pair[1])?;
    }
    Some(bytes)
}

fn is_valid_traceparent(value: &str) -> bool {
    TraceParent::parse(value).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn request(headers: &[(&str, &str)]) -> Headers {
        let mut request = Headers::new();
        for (name, value) in headers {
            request.append(*name, *value);
        }
        request
    }

    #[test]
    fn a_valid_traceparent_and_its_tracestate_are_carried() {
        let mut message = Message::new("m");
        carry(&request(&[("TraceParent", PARENT), ("tracestate", "a=1"), ("tracestate", "b=2")]), &mut message);
        assert_eq!(message.headers.get_all(TRACEPARENT).collect::<Vec<_>>(), [PARENT]);
        assert_eq!(message.headers.get_all(TRACESTATE).collect::<Vec<_>>(), ["a=1,b=2"]);
    }

    #[test]
    fn invalid_or_repeated_traceparents_are_not_carried() {
        for bad in [
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            let mut message = Message::new("m");
            carry(&request(&[(TRACEPARENT, bad), (TRACESTATE, "a=1")]), &mut message);
            assert!(message.headers.is_empty(), "{bad} was carried");
        }
        let mut message = Message::new("m");
        carry(&request(&[(TRACEPARENT, PARENT), (TRACEPARENT, PARENT)]), &mut message);
        assert!(message.headers.is_empty(), "two traceparents are ambiguous");
        let future = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more";
        let mut message = Message::new("m");
        carry(&request(&[(TRACEPARENT, future)]), &mut message);
        assert_eq!(message.headers.len(), 1, "a later version may add fields");
    }

    #[test]
    fn a_message_with_its_own_traceparent_keeps_it() {
        let mut message = Message::new("m");
        message.headers.append(TRACEPARENT, "00-11111111111111111111111111111111-2222222222222222-00");
        carry(&request(&[(TRACEPARENT, PARENT)]), &mut message);
        assert_eq!(message.headers.len(), 1);
        assert_ne!(message.headers.get_all(TRACEPARENT).next(), Some(PARENT));
    }
}
