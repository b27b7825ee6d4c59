//! What flows between an entrypoint (HTTP side) and an endpoint (Kafka side): messages, their
//! acknowledgement, the execution context of a request, and the failures an endpoint reports.
//! Neither side's protocol appears here, so each can be replaced without touching the other.

mod ack;
mod context;
pub mod delivery;
mod endpoint;
mod failure;
#[cfg(any(test, feature = "memory"))]
pub mod memory;
mod message;
mod scope;

pub use ack::{AckHandle, AckPosition, Acknowledger};
pub use context::{ApiInfo, ExecutionContext, RequestAttributes, RequestInfo};
pub use endpoint::{Close, Endpoint, Release, SubscribeOptions, Subscription, Transformed};
pub use failure::{EndpointFailure, FailureKind};
pub use kafka_edge_definition::Qos;
pub use message::{
    Headers, Message, Metadata, RecordChoice, RecordPosition, ATTR_RECORD_KEY, DEFAULT_MAX_MESSAGE_BYTES,
};
pub use scope::Scope;
