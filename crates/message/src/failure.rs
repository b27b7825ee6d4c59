//! Failures an endpoint reports, classified once so that every entrypoint renders the same key,
//! message and status (DESIGN 4.6).

/// The class of an endpoint failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureKind {
    /// Broker unreachable, bad bootstrap list, SASL or TLS failure.
    ConfigurationInvalid,
    /// The connection to the broker was lost after it had worked.
    ConnectionClosed,
    /// A configuration value resolved at request time is not allowed (DESIGN 4.1).
    InvalidDynamicConfiguration,
    /// The client sent something the endpoint cannot use (a malformed cursor).
    BadRequest,
    /// The message is larger than the cluster accepts.
    PayloadTooLarge,
    /// A flow step interrupted the request or message with this status (and the message text).
    Interrupted { status: u16 },
    /// A stream's client read so slowly that it fell too far behind a consumer shared with other
    /// clients; it is ended so that it slows no one (SSE `goaway`, WebSocket 1013).
    TooSlow,
    /// The cluster did not acknowledge a record within the produce timeout.
    TimedOut,
    /// The gateway holds as many consumers as it may (over the process, or for the client's
    /// address): nothing was created; the client should retry later.
    Overloaded,
    /// Anything else.
    Unknown,
}

impl FailureKind {
    /// Gravitee's failure key.
    pub fn key(self) -> &'static str {
        match self {
            FailureKind::ConfigurationInvalid => "FAILURE_ENDPOINT_CONFIGURATION_INVALID",
            FailureKind::ConnectionClosed => "FAILURE_ENDPOINT_CONNECTION_CLOSED",
            FailureKind::InvalidDynamicConfiguration => "FAILURE_ENDPOINT_CONFIGURATION_INVALID",
            FailureKind::BadRequest => "FAILURE_ENDPOINT_BAD_REQUEST",
            FailureKind::PayloadTooLarge => "FAILURE_ENDPOINT_MESSAGE_TOO_LARGE",
            FailureKind::Interrupted { .. } => "FLOW_INTERRUPTED",
            FailureKind::TooSlow => "FAILURE_ENDPOINT_CLIENT_TOO_SLOW",
            FailureKind::TimedOut => "FAILURE_ENDPOINT_TIMEOUT",
            FailureKind::Overloaded => "FAILURE_ENDPOINT_TOO_MANY_CONSUMERS",
            FailureKind::Unknown => "FAILURE_ENDPOINT_UNKNOWN_ERROR",
        }
    }

    /// Whether a client-facing error body names the key: Gravitee's "Invalid configuration"
    /// answer (DESIGN 4.1) has none.
    pub fn shows_key(self) -> bool {
        !matches!(self, FailureKind::InvalidDynamicConfiguration | FailureKind::Interrupted { .. })
    }

    /// The HTTP status an entrypoint answers with when it answers with a status.
    pub fn http_status(self) -> u16 {
        match self {
            FailureKind::BadRequest => 400,
            FailureKind::PayloadTooLarge => 413,
            FailureKind::Interrupted { status } => status,
            FailureKind::InvalidDynamicConfiguration => 500,
            FailureKind::TimedOut => 504,
            FailureKind::ConfigurationInvalid
            | FailureKind::ConnectionClosed
            | FailureKind::TooSlow
            | FailureKind::Overloaded
            | FailureKind::Unknown => 503,
        }
    }
}

/// A failure with a message fit for the client: it never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct EndpointFailure {
    pub kind: FailureKind,
    pub message: String,
}

impl EndpointFailure {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }

    pub fn configuration_invalid(detail: impl Into<String>) -> Self {
        Self::new(FailureKind::ConfigurationInvalid, format!("Endpoint configuration invalid: {}", detail.into()))
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(FailureKind::BadRequest, message)
    }
}
