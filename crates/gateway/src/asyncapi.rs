//! An AsyncAPI 3.0 document for one API definition (docs/operations.md#asyncapi): what a client
//! of the gateway may send and receive, where, and with which credentials. Served by the admin
//! listener (`GET /apis/{id}/asyncapi`) and printed by `kafka-edge asyncapi FILE`.
//!
//! The document takes the client's view: one channel per HTTP entrypoint (its context path) and
//! one for webhook callbacks (whose address each subscription chooses), an operation per
//! direction, and the Kafka topics as channels of a `kafka` server that only the gateway
//! connects to.

use kafka_edge_definition::{
    ApiDefinition, EntrypointConfiguration, EntrypointType, ListenerType, PlanMode, PlanSecurity, PlanSecurityType,
};
use serde_json::{json, Map, Value};

/// The AsyncAPI version the documents follow.
pub const ASYNCAPI_VERSION: &str = "3.0.0";

/// The document for `definition`.
pub fn document(definition: &ApiDefinition) -> Value {
    let mut channels = Map::new();
    let mut operations = Map::new();
    let security = security_schemes(definition);
    let requirements: Vec<Value> =
        security.keys().map(|name| json!({"$ref": format!("#/components/securitySchemes/{name}")})).collect();
    // A key-less plan lets anyone in: the operations then require nothing.
    let open = serving_plans(definition).any(|kind| kind == PlanSecurityType::KeyLess);
    let address = definition.context_paths().next().unwrap_or("/").to_string();
    for entrypoint in definition.listeners.iter().flat_map(|listener| &listener.entrypoints) {
        let kind = entrypoint.kind;
        let (server, directions): (&str, Vec<(&str, &str)>) = match &entrypoint.configuration {
            EntrypointConfiguration::HttpGet(_) => ("gateway", vec![("receive", "GET: a page of messages")]),
            EntrypointConfiguration::HttpPost(_) => ("gateway", vec![("send", "POST: the body becomes a record")]),
            EntrypointConfiguration::Sse(_) => ("gateway", vec![("receive", "Server-Sent Events, one per record")]),
            EntrypointConfiguration::Websocket(websocket) => {
                let mut directions = Vec::new();
                if websocket.publisher.enabled {
                    directions.push(("send", "each frame becomes a record"));
                }
                if websocket.subscriber.enabled {
                    directions.push(("receive", "each record arrives as a binary frame"));
                }
                ("gateway-ws", directions)
            }
            EntrypointConfiguration::Webhook(_) => {
                ("", vec![("receive", "the gateway POSTs each record to the callback")])
            }
            EntrypointConfiguration::NotImplemented => continue,
        };
        let name = kind.as_str().to_string();
        let mut channel = json!({
            "address": if kind == EntrypointType::Webhook { Value::Null } else { Value::String(address.clone()) },
            "messages": {"record": {"$ref": "#/components/messages/record"}},
            "description": format!("The {} entrypoint (QoS {}).", kind.as_str(), entrypoint.qos),
        });
        if !server.is_empty() {
            channel["servers"] = json!([{"$ref": format!("#/servers/{server}")}]);
        }
        channels.insert(name.clone(), channel);
        for (action, summary) in directions {
            let mut operation = json!({
                "action": action,
                "channel": {"$ref": format!("#/channels/{name}")},
                "summary": summary,
                "messages": [{"$ref": format!("#/channels/{name}/messages/record")}],
            });
            // Webhook calls are made by the gateway; the subscription, not the call, is secured.
            if !open && !requirements.is_empty() && kind != EntrypointType::Webhook {
                operation["security"] = Value::Array(requirements.clone());
            }
            operations.insert(format!("{action}-{name}"), operation);
        }
    }
    for (topic, roles) in topics(definition) {
        channels.insert(
            format!("kafka-{topic}"),
            json!({
                "address": topic,
                "servers": [{"$ref": "#/servers/kafka"}],
                "messages": {"record": {"$ref": "#/components/messages/record"}},
                "description": format!("Kafka topic the gateway {roles}."),
            }),
        );
    }
    let mut document = json!({
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": definition.name,
            "version": definition.api_version.clone().unwrap_or_else(|| "1.0.0".into()),
            "description": format!("API `{}` served by kafka-edge.", definition.id),
        },
        "servers": servers(definition),
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": {"record": {
                "name": "record",
                "summary": "A Kafka record's value, as the entrypoint carries it.",
                "contentType": "application/octet-stream",
                "payload": {},
            }},
        },
    });
    if !security.is_empty() {
        document["components"]["securitySchemes"] = Value::Object(security);
    }
    document
}

/// The security types of the STANDARD plans that take requests.
fn serving_plans(definition: &ApiDefinition) -> impl Iterator<Item = PlanSecurityType> + '_ {
    definition
        .plans
        .iter()
        .filter(|plan| plan.mode == PlanMode::Standard && plan.status.serves())
        .filter_map(|plan| plan.security.as_ref().map(PlanSecurity::kind))
}

/// One security scheme per kind of credential the API's plans take.
fn security_schemes(definition: &ApiDefinition) -> Map<String, Value> {
    let mut schemes = Map::new();
    for kind in serving_plans(definition) {
        let scheme = match kind {
            PlanSecurityType::KeyLess => continue,
            PlanSecurityType::ApiKey => json!({
                "type": "httpApiKey", "name": "X-Gravitee-Api-Key", "in": "header",
                "description": "An API key of an api-key plan (also accepted as the api-key query parameter).",
            }),
            PlanSecurityType::Jwt => json!({
                "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "A JWT signed as the jwt plan says.",
            }),
            PlanSecurityType::OAuth2 => json!({
                "type": "http", "scheme": "bearer",
                "description": "An OAuth 2 access token, checked by introspection (oauth2 plan).",
            }),
            PlanSecurityType::Mtls => json!({
                "type": "X509",
                "description": "A client certificate registered for the API (mtls plan).",
            }),
        };
        schemes.insert(kind.as_str().to_string(), scheme);
    }
    schemes
}

fn servers(definition: &ApiDefinition) -> Value {
    let host_variable = json!({"host": {
        "default": "localhost:8082",
        "description": "The gateway's address (kafka-edge run --listen).",
    }});
    let mut servers = Map::new();
    let has_http = definition.listeners.iter().any(|listener| listener.kind == ListenerType::Http);
    if has_http {
        servers.insert(
            "gateway".into(),
            json!({"host": "{host}", "protocol": "http", "variables": host_variable.clone(),
                   "description": "kafka-edge's client listener (https when it has --tls-cert)."}),
        );
        servers.insert(
            "gateway-ws".into(),
            json!({"host": "{host}", "protocol": "ws", "variables": host_variable,
                   "description": "kafka-edge's client listener, for WebSocket upgrades (wss with TLS)."}),
        );
    }
    if let Some((_, endpoint)) = definition.primary_endpoint() {
        servers.insert(
            "kafka".into(),
            json!({"host": endpoint.configuration.bootstrap_servers, "protocol": "kafka",
                   "description": "The Kafka cluster behind the gateway: clients do not connect to it."}),
        );
    }
    Value::Object(servers)
}

/// The topics the primary endpoint names literally (of its enabled producer and consumer), with
/// what the gateway does with each.
fn topics(definition: &ApiDefinition) -> Vec<(String, &'static str)> {
    let Some((_, endpoint)) = definition.primary_endpoint() else { return Vec::new() };
    let shared = &endpoint.shared_configuration;
    let literal = |topic: &&String| !topic.contains('{');
    let mut topics: Vec<(String, &'static str)> = Vec::new();
    let produced = shared.producer.topics.iter().filter(|_| shared.producer.enabled);
    for topic in produced.filter(literal) {
        topics.push((topic.clone(), "produces to"));
    }
    let consumed = shared.consumer.topics.iter().filter(|_| shared.consumer.enabled);
    for topic in consumed.filter(literal) {
        match topics.iter_mut().find(|(known, _)| known == topic) {
            Some(entry) => entry.1 = "produces to and consumes from",
            None => topics.push((topic.clone(), "consumes from")),
        }
    }
    topics
}
