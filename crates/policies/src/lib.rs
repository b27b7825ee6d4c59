//! Flows (DESIGN 3): chains of policies that run in four phases — `request` and `response` once
//! per connection, `publish` and `subscribe` once per message — each step guarded by an optional
//! condition. Everything is compiled when the API loads (policy names, configurations,
//! expressions), so a request only evaluates.

mod flow;
mod policy;

pub use flow::{ApiFlows, FlowEndpoint, RequestShape, SelectedFlows};
pub use policy::Phase;

#[cfg(test)]
mod tests;
