use std::collections::HashMap;

/// Context attributes of one request (`context.attributes` in the expression language), e.g.
/// `gravitee.attribute.kafka.groupId`.
pub type RequestAttributes = HashMap<String, String>;

/// What an endpoint may know of the request it serves: no HTTP, only identity and attributes.
#[derive(Debug, Clone, Default)]
pub struct ExecutionContext {
    pub api_id: String,
    /// Who is calling (DESIGN 5.1); the default consumer group.
    pub client_identifier: String,
    pub attributes: RequestAttributes,
}
