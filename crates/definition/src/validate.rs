//! Rules that span fields: capabilities an entrypoint needs, QoS an entrypoint supports, required
//! topics, well-formed bootstrap lists, and what this version cannot serve yet.

use crate::api::*;
use crate::entrypoint::EntrypointConfiguration;
use crate::kafka::{SaslMechanism, SecurityProtocol, SharedConfiguration};
use crate::load::{problem, Ignored};
use crate::plan::{KeyResolver, PlanSecurity};
use crate::problem::{join, Problem};
use crate::value::{is_expression, Dynamic};

pub(crate) fn validate(api: &ApiDefinition, origin: &str, problems: &mut Vec<Problem>, ignored: &mut Vec<Ignored>) {
    // A group or endpoint that failed to parse was reported already; do not report it missing.
    let endpoints_reported = problems.iter().any(|p| p.path.starts_with("endpointGroups"));
    let mut report = |path: &str, message: String| problems.push(problem(origin, path, message));
    let mut ignore =
        |path: String, reason: &str| ignored.push(Ignored { file: origin.into(), path, reason: reason.into() });

    if api.id.trim().is_empty() {
        report("id", "must not be empty".into());
    }
    if api.listeners.is_empty() {
        report("listeners", "at least one listener is required".into());
    }
    let primary = api.primary_endpoint();
    if primary.is_none() && !endpoints_reported {
        if api.endpoint_groups.is_empty() {
            report("endpointGroups", "at least one endpoint group of type `kafka` is required".into());
        } else {
            report("endpointGroups[0].endpoints", "at least one endpoint is required".into());
        }
    }

    for (listener_index, listener) in api.listeners.iter().enumerate() {
        let base = format!("listeners[{listener_index}]");
        if listener.kind == ListenerType::Tcp {
            report(&join(&base, "type"), "invalid value `tcp`, expected one of `http`, `subscription`".into());
        }
        if listener.kind == ListenerType::Http {
            if listener.paths.is_empty() {
                report(&join(&base, "paths"), "at least one path is required".into());
            }
            for (index, path) in listener.paths.iter().enumerate() {
                if !path.path.starts_with('/') {
                    report(
                        &format!("{base}.paths[{index}].path"),
                        format!("invalid value `{}`, must start with `/`", path.path),
                    );
                }
            }
        }
        if listener.entrypoints.is_empty() {
            report(&join(&base, "entrypoints"), "at least one entrypoint is required".into());
        }
        for (index, entrypoint) in listener.entrypoints.iter().enumerate() {
            let path = format!("{base}.entrypoints[{index}]");
            if listener.entrypoints[..index].iter().any(|earlier| earlier.kind == entrypoint.kind) {
                report(
                    &join(&path, "type"),
                    format!("entrypoint `{}` appears twice in this listener", entrypoint.kind),
                );
            }
            let expected_listener = if entrypoint.kind == EntrypointType::Webhook {
                ListenerType::Subscription
            } else {
                ListenerType::Http
            };
            if listener.kind != expected_listener {
                report(
                    &join(&path, "type"),
                    format!("entrypoint `{}` belongs in a listener of type `{expected_listener}`", entrypoint.kind),
                );
            }
            let supported = supported_qos(entrypoint.kind);
            if !supported.contains(&entrypoint.qos) {
                let allowed: Vec<String> = supported.iter().map(|q| format!("`{q}`")).collect();
                report(
                    &join(&path, "qos"),
                    format!(
                        "invalid value `{}` for entrypoint `{}`, expected one of {}",
                        entrypoint.qos,
                        entrypoint.kind,
                        allowed.join(", ")
                    ),
                );
            }
            match &entrypoint.configuration {
                EntrypointConfiguration::HttpGet(configuration) if configuration.messages_limit_count == 0 => {
                    report(
                        &join(&path, "configuration.messagesLimitCount"),
                        "invalid value `0`, must be at least 1".into(),
                    );
                }
                EntrypointConfiguration::Sse(configuration) if configuration.heartbeat_interval_in_ms == 0 => {
                    report(
                        &join(&path, "configuration.heartbeatIntervalInMs"),
                        "invalid value `0`, must be at least 1".into(),
                    );
                }
                EntrypointConfiguration::Webhook(configuration) if configuration.proxy.is_explicit() => {
                    let proxy = &configuration.proxy;
                    match proxy.host.as_deref().map(str::trim) {
                        None | Some("") => report(
                            &join(&path, "configuration.proxy.host"),
                            "required when the proxy is enabled without useSystemProxy".into(),
                        ),
                        // Credentials go in username/password: a host is never echoed with them.
                        Some(host)
                            if host.contains(['/', '@', ' ', ':'])
                                && !(host.starts_with('[') && host.ends_with(']')) =>
                        {
                            report(
                                &join(&path, "configuration.proxy.host"),
                                "expected a host name or IP address alone (no scheme, port, path or credentials)"
                                    .into(),
                            )
                        }
                        Some(_) => {}
                    }
                    match proxy.port {
                        None => report(
                            &join(&path, "configuration.proxy.port"),
                            "required when the proxy is enabled without useSystemProxy".into(),
                        ),
                        Some(port) if port == 0 || port > 65535 => report(
                            &join(&path, "configuration.proxy.port"),
                            format!("invalid value `{port}`, expected 1 to 65535"),
                        ),
                        Some(_) => {}
                    }
                }
                _ => {}
            }
            // The webhook entrypoint applies its dead-letter queue (gateway crate).
            if entrypoint.dlq_endpoint.is_some() && entrypoint.kind != EntrypointType::Webhook {
                ignore(join(&path, "dlq"), "dead-letter queues are not implemented by this version");
            }
            if let Some((_, endpoint)) = primary {
                check_capability(entrypoint, &endpoint.shared_configuration, &path, &mut report);
            }
        }
    }

    // A webhook's dead-letter queue names a group (its first endpoint) or an endpoint.
    let dead_letters: Vec<&str> = api
        .listeners
        .iter()
        .flat_map(|l| &l.entrypoints)
        .filter(|e| e.kind == EntrypointType::Webhook)
        .filter_map(|e| e.dlq_endpoint.as_deref())
        .collect();
    for (group_index, group) in api.endpoint_groups.iter().enumerate() {
        for (index, endpoint) in group.endpoints.iter().enumerate() {
            let base = format!("endpointGroups[{group_index}].endpoints[{index}]");
            let dead_letter_queue =
                dead_letters.iter().any(|name| *name == endpoint.name || (index == 0 && *name == group.name));
            if (group_index > 0 || index > 0) && !dead_letter_queue {
                ignore(base.clone(), "requests are served by the first endpoint of the first group");
            }
            check_bootstrap_servers(
                &endpoint.configuration.bootstrap_servers,
                &join(&base, "configuration.bootstrapServers"),
                &mut report,
            );
            // Report where the user wrote it: the group's block, or the endpoint's override
            // (a group's block is checked once, with its first endpoint).
            let shared_base = if endpoint.inherits_configuration {
                format!("endpointGroups[{group_index}].sharedConfiguration")
            } else {
                join(&base, "sharedConfigurationOverride")
            };
            let already_checked =
                endpoint.inherits_configuration && group.endpoints[..index].iter().any(|e| e.inherits_configuration);
            if !already_checked {
                check_shared(&endpoint.shared_configuration, &shared_base, &mut report, &mut ignore);
            }
        }
    }

    for (index, plan) in api.plans.iter().enumerate() {
        let path = format!("plans[{index}]");
        if api.plans[..index].iter().any(|other| other.id == plan.id) {
            report(&join(&path, "id"), format!("plan id `{}` is used by another plan of the API", plan.id));
        }
        if let Some(security) = &plan.security {
            check_plan_security(security, &join(&path, "security.configuration"), &mut report);
        }
        if let Some(PlanSecurity::OAuth2(oauth2)) = &plan.security {
            let resource = api.resources.iter().find(|r| r.name == oauth2.oauth_resource);
            let at = join(&path, "security.configuration.oauthResource");
            match resource {
                None => report(&at, format!("no `resources[]` entry is named `{}`", oauth2.oauth_resource)),
                Some(resource) if !resource.enabled => {
                    report(&at, format!("the resource `{}` is disabled", oauth2.oauth_resource))
                }
                Some(resource) if resource.oauth2.is_none() => {
                    report(&at, format!("the resource `{}` is not of type `oauth2`", oauth2.oauth_resource))
                }
                Some(_) => {}
            }
        }
    }
}

fn check_plan_security(security: &PlanSecurity, path: &str, report: &mut impl FnMut(&str, String)) {
    match security {
        PlanSecurity::Jwt(jwt) => {
            if jwt.public_key_resolver == KeyResolver::GatewayKeys {
                report(
                    &join(path, "publicKeyResolver"),
                    "`GATEWAY_KEYS` (keys in the gateway's own configuration) is not supported; use `GIVEN_KEY` or `JWKS_URL`".into(),
                );
            }
            let parameter = jwt.resolver_parameter.as_deref().map(str::trim).unwrap_or_default();
            match jwt.public_key_resolver {
                _ if is_expression(parameter) => report(
                    &join(path, "resolverParameter"),
                    "expressions are not supported here: write the key or the JWKS URL itself".into(),
                ),
                KeyResolver::GivenKey if parameter.is_empty() => report(
                    &join(path, "resolverParameter"),
                    "required with GIVEN_KEY: the HMAC secret or the PEM public key".into(),
                ),
                KeyResolver::JwksUrl if !(parameter.starts_with("http://") || parameter.starts_with("https://")) => {
                    report(
                        &join(path, "resolverParameter"),
                        "required with JWKS_URL: an http:// or https:// URL".into(),
                    )
                }
                _ => {}
            }
            let certificate_bound = jwt
                .confirmation_method_validation
                .as_ref()
                .and_then(|v| v.pointer("/certificateBoundThumbprint/enabled"))
                .is_some_and(|enabled| enabled == true || enabled == "true");
            if certificate_bound {
                report(
                    &join(path, "confirmationMethodValidation.certificateBoundThumbprint.enabled"),
                    "certificate-bound tokens are not checked by kafka-edge; refusing to serve the plan without the check".into(),
                );
            }
            let revocation_list = jwt
                .revocation_check
                .as_ref()
                .and_then(|v| v.get("enabled"))
                .is_some_and(|enabled| enabled == true || enabled == "true");
            if revocation_list {
                report(
                    &join(path, "revocationCheck.enabled"),
                    "revocation lists are not checked by kafka-edge; refusing to serve the plan without the check"
                        .into(),
                );
            }
            if jwt.check_required_scopes {
                report(
                    &join(path, "checkRequiredScopes"),
                    "JWT scopes are not checked by kafka-edge; refusing to serve the plan without the check (an oauth2 plan checks scopes)".into(),
                );
            }
            if jwt.token_typ_validation.enabled && jwt.token_typ_validation.expected_values.is_empty() {
                report(&join(path, "tokenTypValidation.expectedValues"), "at least one value is required".into());
            }
        }
        PlanSecurity::OAuth2(_) | PlanSecurity::KeyLess | PlanSecurity::ApiKey(_) | PlanSecurity::Mtls => {}
    }
}

/// The QoS levels each entrypoint supports (DESIGN 4.5).
pub fn supported_qos(kind: EntrypointType) -> &'static [Qos] {
    use Qos::*;
    match kind {
        EntrypointType::HttpGet => &[Auto, AtBest, AtMostOnce, AtLeastOnce],
        EntrypointType::HttpPost | EntrypointType::Websocket => &[None, Auto],
        EntrypointType::Sse | EntrypointType::Webhook => &[None, Auto, AtBest, AtMostOnce, AtLeastOnce],
    }
}

fn check_capability(
    entrypoint: &Entrypoint,
    shared: &SharedConfiguration,
    path: &str,
    report: &mut impl FnMut(&str, String),
) {
    let kind = entrypoint.kind;
    let (needs_producer, needs_consumer) = match (kind, &entrypoint.configuration) {
        (EntrypointType::HttpPost, _) => (true, false),
        (EntrypointType::HttpGet | EntrypointType::Sse | EntrypointType::Webhook, _) => (false, true),
        (EntrypointType::Websocket, EntrypointConfiguration::Websocket(websocket)) => {
            (websocket.publisher.enabled, websocket.subscriber.enabled)
        }
        // A configuration that did not parse was reported already.
        (EntrypointType::Websocket, _) => (false, false),
    };
    // A websocket can drop the direction instead.
    let (or_publisher, or_subscriber) = match kind {
        EntrypointType::Websocket => {
            (", or the entrypoint's publisher.enabled to false", ", or the entrypoint's subscriber.enabled to false")
        }
        _ => ("", ""),
    };
    if needs_producer && !shared.producer.enabled {
        let message = format!(
            "entrypoint `{kind}` publishes, but the endpoint's producer is not enabled \
             (set producer.enabled to true{or_publisher})"
        );
        report(&join(path, "type"), message);
    }
    if needs_consumer && !shared.consumer.enabled {
        let message = format!(
            "entrypoint `{kind}` subscribes, but the endpoint's consumer is not enabled \
             (set consumer.enabled to true{or_subscriber})"
        );
        report(&join(path, "type"), message);
    }
}

fn check_bootstrap_servers(servers: &str, path: &str, report: &mut impl FnMut(&str, String)) {
    if is_expression(servers) {
        if let Err(error) = kafka_edge_el::Template::parse(servers) {
            report(path, format!("invalid expression `{servers}`: {error}"));
        }
        return;
    }
    if servers.trim().is_empty() {
        return report(path, "must not be empty: a comma-separated list of host:port".into());
    }
    for server in servers.split(',').map(str::trim) {
        let valid = server
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
        if !valid {
            report(path, format!("invalid value `{server}`, expected host:port (a comma-separated list of them)"));
        }
    }
}

fn check_shared(
    shared: &SharedConfiguration,
    base: &str,
    report: &mut impl FnMut(&str, String),
    ignore: &mut impl FnMut(String, &str),
) {
    let base = base.to_string();
    for (path, expression) in expressions(shared) {
        if let Err(error) = kafka_edge_el::Template::parse(&expression) {
            report(&join(&base, &path), format!("invalid expression `{expression}`: {error}"));
        }
    }
    if let Dynamic::Static(protocol) = shared.security.protocol {
        let sasl = shared.security.sasl.as_ref();
        if matches!(protocol, SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl) {
            if sasl.and_then(|s| s.sasl_mechanism.as_ref()).is_none() {
                report(
                    &join(&base, "security.sasl.saslMechanism"),
                    format!("required with protocol `{protocol}`, one of {}", allowed(SaslMechanism::ALLOWED)),
                );
            }
            if sasl.and_then(|s| s.sasl_jaas_config.as_ref()).is_none() {
                report(&join(&base, "security.sasl.saslJaasConfig"), format!("required with protocol `{protocol}`"));
            }
            if let Some(Dynamic::Static(SaslMechanism::AwsMskIam)) = sasl.and_then(|s| s.sasl_mechanism.as_ref()) {
                if protocol != SecurityProtocol::SaslSsl {
                    report(
                        &join(&base, "security.protocol"),
                        format!("invalid value `{protocol}`: AWS_MSK_IAM needs `SASL_SSL`"),
                    );
                }
            }
        } else if sasl.is_some() && protocol == SecurityProtocol::Ssl {
            ignore(join(&base, "security.sasl"), "the protocol is SSL, which uses no SASL");
        }
        if protocol == SecurityProtocol::SaslPlaintext && shared.security.ssl.is_some() {
            ignore(join(&base, "security.ssl"), "the protocol is SASL_PLAINTEXT, which uses no TLS");
        }
    }
    if let Dynamic::Static(SecurityProtocol::Plaintext) = shared.security.protocol {
        if shared.security.sasl.is_some() {
            ignore(join(&base, "security.sasl"), "the protocol is PLAINTEXT, which uses no SASL");
        }
        if shared.security.ssl.is_some() {
            ignore(join(&base, "security.ssl"), "the protocol is PLAINTEXT, which uses no TLS");
        }
    }
    let producer = &shared.producer;
    if producer.enabled {
        if producer.topics.is_empty() {
            report(
                &join(&base, "producer.topics"),
                "at least one topic is required when the producer is enabled".into(),
            );
        }
        for (index, topic) in producer.topics.iter().enumerate() {
            if topic.trim().is_empty() {
                report(&format!("{base}.producer.topics[{index}]"), "must not be empty".into());
            }
        }
    }
    let consumer = &shared.consumer;
    if consumer.enabled {
        match (&consumer.topic_pattern, consumer.topics.is_empty()) {
            (Some(_), false) => {
                report(&join(&base, "consumer"), "give either `topics` or `topicPattern`, not both".into())
            }
            (Some(pattern), true) => {
                if !is_expression(pattern) {
                    if let Err(error) = regex::Regex::new(pattern) {
                        report(
                            &join(&base, "consumer.topicPattern"),
                            format!("invalid regular expression `{pattern}`: {error}"),
                        );
                    }
                }
            }
            (None, true) => report(
                &join(&base, "consumer.topics"),
                "at least one topic is required when the consumer is enabled".into(),
            ),
            (None, false) => {}
        }
        for (index, topic) in consumer.topics.iter().enumerate() {
            if topic.trim().is_empty() {
                report(&format!("{base}.consumer.topics[{index}]"), "must not be empty".into());
            }
        }
    }
}

/// Properties written as expressions, with their paths below `sharedConfiguration` (checked to
/// parse here; evaluated and checked again per request).
fn expressions(shared: &SharedConfiguration) -> Vec<(String, String)> {
    fn dynamic<T>(value: &Dynamic<T>) -> Option<String> {
        match value {
            Dynamic::Expression(expression) => Some(expression.clone()),
            Dynamic::Static(_) => None,
        }
    }
    let sasl = shared.security.sasl.as_ref();
    let mut found: Vec<(String, String)> = [
        ("security.protocol", dynamic(&shared.security.protocol)),
        ("security.sasl.saslMechanism", sasl.and_then(|s| s.sasl_mechanism.as_ref()).and_then(dynamic)),
        ("producer.compressionType", dynamic(&shared.producer.compression_type)),
        ("consumer.autoOffsetReset", dynamic(&shared.consumer.auto_offset_reset)),
        ("security.sasl.saslJaasConfig", sasl.and_then(|s| s.sasl_jaas_config.clone())),
        ("consumer.topicPattern", shared.consumer.topic_pattern.clone()),
    ]
    .into_iter()
    .filter_map(|(path, value)| Some((path.to_string(), value.filter(|v| is_expression(v))?)))
    .collect();
    for (list, topics) in [("producer.topics", &shared.producer.topics), ("consumer.topics", &shared.consumer.topics)] {
        for (index, topic) in topics.iter().enumerate().filter(|(_, t)| is_expression(t)) {
            found.push((format!("{list}[{index}]"), topic.clone()));
        }
    }
    found
}

fn allowed(values: &[&str]) -> String {
    values.iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join(", ")
}
