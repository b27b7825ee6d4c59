//! Loading definitions: defaults, lenient scalars, errors with paths and allowed values, ignored
//! fields, and cross-file checks.

use kafka_edge_definition::*;
use serde_json::{json, Value};

fn definition() -> Value {
    json!({
        "id": "orders",
        "name": "Orders",
        "definitionVersion": "4.0.0",
        "type": "message",
        "listeners": [{
            "type": "http",
            "paths": [{"path": "/orders"}],
            "entrypoints": [{"type": "http-get"}, {"type": "http-post"}]
        }],
        "endpointGroups": [{
            "name": "default",
            "type": "kafka",
            "sharedConfiguration": {
                "producer": {"enabled": true, "topics": ["orders"]},
                "consumer": {"enabled": true, "topics": ["orders"]}
            },
            "endpoints": [{"name": "default", "type": "kafka", "configuration": {"bootstrapServers": "localhost:9092"}}]
        }]
    })
}

fn load(value: &Value) -> Result<Loaded, Vec<Problem>> {
    load_str(&value.to_string(), Format::Json, "api.json")
}

fn problems(value: &Value) -> Vec<String> {
    load(value).expect_err("the definition must be refused").iter().map(ToString::to_string).collect()
}

fn only_problem(value: &Value) -> String {
    let found = problems(value);
    assert_eq!(found.len(), 1, "{found:#?}");
    found[0].clone()
}

#[test]
fn defaults_follow_the_reference_tables() {
    let loaded = load(&definition()).unwrap();
    assert!(loaded.ignored.is_empty(), "{:?}", loaded.ignored);
    let api = loaded.api;
    let entrypoints: Vec<&Entrypoint> = api.http_entrypoints().collect();
    assert_eq!(entrypoints[0].qos, Qos::Auto);
    match &entrypoints[0].configuration {
        EntrypointConfiguration::HttpGet(get) => assert_eq!(
            *get,
            HttpGetConfiguration {
                messages_limit_count: 500,
                messages_limit_duration_ms: 5000,
                headers_in_payload: false,
                metadata_in_payload: false,
            }
        ),
        other => panic!("unexpected {other:?}"),
    }
    match &entrypoints[1].configuration {
        EntrypointConfiguration::HttpPost(post) => assert!(!post.request_headers_to_message),
        other => panic!("unexpected {other:?}"),
    }
    let (_, endpoint) = api.primary_endpoint().unwrap();
    let shared = &endpoint.shared_configuration;
    assert_eq!(shared.security.protocol, Dynamic::Static(SecurityProtocol::Plaintext));
    assert_eq!(shared.producer.compression_type, Dynamic::Static(CompressionType::None));
    assert_eq!(shared.consumer.auto_offset_reset, Dynamic::Static(AutoOffsetReset::Latest));
    assert!(shared.consumer.encode_message_id);
    assert!(!shared.consumer.check_topic_existence);
    assert!(!shared.consumer.remove_confluent_header);
    assert_eq!(TrustStore::default().store_type, StoreType::Jks);
    assert_eq!(endpoint.weight, 1);
}

#[test]
fn numbers_and_booleans_may_be_strings() {
    let mut value = definition();
    value["listeners"][0]["entrypoints"][0]["configuration"] =
        json!({"messagesLimitCount": "20", "messagesLimitDurationMs": "2000", "headersInPayload": "true"});
    value["endpointGroups"][0]["sharedConfiguration"]["consumer"]["encodeMessageId"] = json!("false");
    let api = load(&value).unwrap().api;
    let Some(EntrypointConfiguration::HttpGet(get)) = api.http_entrypoints().next().map(|e| &e.configuration) else {
        panic!()
    };
    assert_eq!((get.messages_limit_count, get.messages_limit_duration_ms, get.headers_in_payload), (20, 2000, true));
    assert!(!api.primary_endpoint().unwrap().1.shared_configuration.consumer.encode_message_id);
}

#[test]
fn a_wrong_number_names_its_path_and_value() {
    let mut value = definition();
    value["listeners"][0]["entrypoints"][0]["configuration"] = json!({"messagesLimitCount": "lots"});
    let problem = only_problem(&value);
    assert!(
        problem.starts_with("api.json: listeners[0].entrypoints[0].configuration.messagesLimitCount: "),
        "{problem}"
    );
    assert!(problem.contains("\"lots\""), "{problem}");
}

#[test]
fn an_unknown_enum_value_names_path_value_and_allowed_values() {
    let mut value = definition();
    value["endpointGroups"][0]["sharedConfiguration"]["consumer"]["autoOffsetReset"] = json!("first");
    assert_eq!(
        only_problem(&value),
        "api.json: endpointGroups[0].sharedConfiguration.consumer.autoOffsetReset: invalid value `first`, expected one of `latest`, `earliest`, `none`"
    );
    let mut value = definition();
    value["endpointGroups"][0]["sharedConfiguration"]["producer"]["compressionType"] = json!("brotli");
    assert!(only_problem(&value).contains("expected one of `none`, `gzip`, `snappy`, `lz4`, `zstd`"));
}

#[test]
fn qos_must_suit_the_entrypoint() {
    let mut value = definition();
    value["listeners"][0]["entrypoints"][1]["qos"] = json!("at-least-once");
    assert_eq!(
        only_problem(&value),
        "api.json: listeners[0].entrypoints[1].qos: invalid value `at-least-once` for entrypoint `http-post`, expected one of `none`, `auto`"
    );
    let mut value = definition();
    value["listeners"][0]["entrypoints"][0]["qos"] = json!("balanced");
    assert_eq!(load(&value).unwrap().api.http_entrypoints().next().unwrap().qos, Qos::Auto);
}

#[test]
fn unknown_fields_in_implemented_blocks_are_errors() {
    let mut value = definition();
    value["endpointGroups"][0]["sharedConfiguration"]["consumer"]["autoOffsetRest"] = json!("earliest");
    let problem = only_problem(&value);
    assert!(problem.starts_with("api.json: endpointGroups[0].sharedConfiguration.consumer.autoOffsetRest: unknown field `autoOffsetRest`, expected one of"), "{problem}");
    assert!(problem.contains("`autoOffsetReset`"), "{problem}");
}

#[test]
fn fields_we_do_not_implement_are_reported_as_ignored() {
    let mut value = definition();
    value["analytics"] = json!({"enabled": false});
    value["listeners"][0]["cors"] =
        json!({"enabled": true, "runPolicies": true, "allowOrigin": ["*"], "somethingElse": 1});
    let loaded = load(&value).unwrap();
    let mut ignored: Vec<String> = loaded.ignored.iter().map(|i| i.path.clone()).collect();
    ignored.sort();
    assert_eq!(ignored, ["analytics", "listeners[0].cors.runPolicies", "listeners[0].cors.somethingElse"]);
    let analytics = loaded.ignored.iter().find(|i| i.path == "analytics").unwrap();
    assert_eq!(analytics.to_string(), "api.json: analytics: ignored (not a field kafka-edge implements)");
}

#[test]
fn an_entrypoint_needs_the_capability_it_uses() {
    let mut value = definition();
    value["endpointGroups"][0]["sharedConfiguration"]["producer"] = json!({"enabled": false});
    let problem = only_problem(&value);
    assert!(problem.starts_with("api.json: listeners[0].entrypoints[1].type: entrypoint `http-post` publishes, but the endpoint's producer is not enabled"), "{problem}");
}

#[test]
fn websocket_directions_default_to_enabled_and_need_their_capability() {
    let mut value = definition();
    value["listeners"][0]["entrypoints"].as_array_mut().unwrap().push(json!({"type": "websocket", "qos": "none"}));
    let loaded = load(&value).unwrap();
    assert!(loaded.ignored.is_empty(), "{:?}", loaded.ignored);
    match &loaded.api.http_entrypoints().nth(2).unwrap().configuration {
        EntrypointConfiguration::Websocket(websocket) => {
            assert!(websocket.publisher.enabled && websocket.subscriber.enabled);
            assert_eq!(*websocket, WebsocketConfiguration::default());
        }
        other => panic!("unexpected {other:?}"),
    }

    value["endpointGroups"][0]["sharedConfiguration"]["consumer"] = json!({"enabled": false});
    value["listeners"][0]["entrypoints"] = json!([{"type": "websocket"}]);
    let problem = only_problem(&value);
    assert_eq!(problem, "api.json: listeners[0].entrypoints[0].type: entrypoint `websocket` subscribes, but the endpoint's consumer is not enabled (set consumer.enabled to true, or the entrypoint's subscriber.enabled to false)");

    // A publish-only websocket needs no consumer; booleans may be strings.
    value["listeners"][0]["entrypoints"][0]["configuration"] = json!({"subscriber": {"enabled": "false"}});
    let loaded = load(&value).unwrap();
    match &loaded.api.http_entrypoints().next().unwrap().configuration {
        EntrypointConfiguration::Websocket(websocket) => {
            assert!(websocket.publisher.enabled && !websocket.subscriber.enabled)
        }
        other => panic!("unexpected {other:?}"),
    }

    value["listeners"][0]["entrypoints"][0]["configuration"] = json!({"publisher": {"enabled": true, "maxFrames": 3}});
    let problem = only_problem(&value);
    assert!(
        problem.starts_with(
            "api.json: listeners[0].entrypoints[0].configuration.publisher.maxFrames: unknown field `maxFrames`"
        ),
        "{problem}"
    );
}

#[test]
fn enabled_clients_need_topics_and_bootstrap_servers_need_ports() {
    let mut value = definition();
    value["endpointGroups"][0]["sharedConfiguration"]["consumer"] = json!({"enabled": true});
    value["endpointGroups"][0]["endpoints"][0]["configuration"]["bootstrapServers"] = json!("localhost");
    let found = problems(&value);
    assert!(found.contains(&"api.json: endpointGroups[0].endpoints[0].configuration.bootstrapServers: invalid value `localhost`, expected host:port (a comma-separated list of them)".to_string()), "{found:#?}");
    assert!(found.contains(&"api.json: endpointGroups[0].sharedConfiguration.consumer.topics: at least one topic is required when the consumer is enabled".to_string()), "{found:#?}");
}

#[test]
fn plans_load_typed_and_broken_ones_are_refused() {
    let mut value = definition();
    value["plans"] = json!([
        {"id": "k", "name": "Key", "security": {"type": "api-key", "configuration": {"propagateApiKey": "true"}}, "status": "published"},
        {"id": "j", "name": "JWT", "security": {"type": "jwt", "configuration": {"signature": "HMAC_HS512", "resolverParameter": "s3cret"}},
         "status": "CLOSED", "selectionRule": "#request.headers['x'] != null", "flows": [{"name": "f"}]},
        {"id": "f", "name": "Free"}
    ]);
    let loaded = load(&value).expect("loads");
    let plans = &loaded.api.plans;
    assert!(matches!(&plans[0].security, Some(PlanSecurity::ApiKey(key)) if key.propagate_api_key));
    assert!(matches!(&plans[1].security, Some(PlanSecurity::Jwt(jwt))
        if jwt.signature == JwtSignature::HmacHs512 && jwt.propagate_auth_header && jwt.client_id_claim.is_none()));
    assert_eq!((plans[1].status, plans[1].flows.len()), (PlanStatus::Closed, 1));
    assert!(plans[2].security.is_none() && plans[2].status.serves());

    value["plans"] =
        json!([{"id": "o", "name": "OAuth", "security": {"type": "oauth2", "configuration": {"oauthResource": "am"}}}]);
    assert_eq!(
        only_problem(&value),
        "api.json: plans[0].security.configuration.oauthResource: no `resources[]` entry is named `am`"
    );
    value["resources"] = json!([{"name": "am", "type": "cache", "configuration": {}}]);
    assert!(only_problem(&value).ends_with("the resource `am` is not of type `oauth2`"));
    value["resources"] = json!([{"name": "am", "type": "oauth2",
        "configuration": {"introspectionEndpoint": "https://idp/introspect", "clientSecret": "s3cret"}}]);
    let loaded = load(&value).expect("an oauth2 plan with its resource loads");
    assert!(!format!("{:?}", loaded.api.resources).contains("s3cret"), "the client secret never prints");
    value["resources"] = json!([]);
    value["plans"] = json!([{"id": "j", "name": "JWT", "security": {"type": "jwt", "configuration": {"publicKeyResolver": "GATEWAY_KEYS"}}}]);
    assert!(only_problem(&value).contains("plans[0].security.configuration.publicKeyResolver: `GATEWAY_KEYS`"));
    value["plans"] = json!([{"id": "j", "name": "JWT", "security": {"type": "jwt", "configuration": {"publicKeyResolver": "JWKS_URL", "resolverParameter": "ftp://x"}}}]);
    assert!(only_problem(&value).contains("resolverParameter: required with JWKS_URL"));
    value["plans"] = json!([{"id": "a", "name": "A"}, {"id": "a", "name": "B"}]);
    assert!(only_problem(&value).contains("plans[1].id: plan id `a` is used by another plan"));
    value["plans"] = json!([{"id": "j", "name": "JWT", "security": {"type": "jwt", "configuration": {
        "resolverParameter": "k", "confirmationMethodValidation": {"certificateBoundThumbprint": {"enabled": true}}}}}]);
    assert!(only_problem(&value).contains("certificate-bound tokens are not checked"));
}

#[test]
fn unknown_plan_configuration_fields_are_reported_as_ignored() {
    let mut value = definition();
    value["plans"] = json!([{"id": "k", "name": "Key", "security": {"type": "api-key", "configuration": {"apiKeyHeader": "X-Key"}}}]);
    let loaded = load(&value).expect("loads");
    assert_eq!(loaded.ignored.len(), 1, "{:?}", loaded.ignored);
    assert_eq!(loaded.ignored[0].path, "plans[0].security.configuration.apiKeyHeader");
}

#[test]
fn expressions_are_accepted_and_malformed_ones_refused_with_the_position() {
    let mut value = definition();
    value["endpointGroups"][0]["sharedConfiguration"]["consumer"]["autoOffsetReset"] =
        json!("{#request.headers['autoOffsetReset'][0]}");
    assert!(load(&value).is_ok());
    value["endpointGroups"][0]["sharedConfiguration"]["consumer"]["autoOffsetReset"] =
        json!("{#request.headers['autoOffsetReset'][0]");
    let problem = only_problem(&value);
    assert!(problem.starts_with("api.json: endpointGroups[0].sharedConfiguration.consumer.autoOffsetReset: invalid expression `{#request.headers['autoOffsetReset'][0]`: at position "), "{problem}");
}

#[test]
fn security_blocks_load_with_gravitee_names_and_aliases() {
    let mut value = definition();
    value["endpointGroups"][0]["sharedConfiguration"]["security"] = json!({
        "protocol": "SASL_SSL",
        "sasl": {"saslMechanism": "SCRAM_SHA-256", "saslJaasConfig": "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"u\" password=\"p\";"},
        "ssl": {"truststore": {"type": "PEM", "certificates": "-----BEGIN CERTIFICATE-----"}, "keyStore": {"type": "PKCS12", "location": "/k.p12", "password": "x"}}
    });
    let loaded = load(&value).unwrap();
    let ssl = loaded.api.primary_endpoint().unwrap().1.shared_configuration.security.ssl.clone().unwrap();
    assert_eq!(ssl.trust_store.unwrap().store_type, StoreType::Pem);
    assert_eq!(ssl.key_store.unwrap().store_type, StoreType::Pkcs12);

    // A SASL protocol needs its mechanism and login line; the problem names no secret.
    value["endpointGroups"][0]["sharedConfiguration"]["security"]["sasl"] =
        json!({"saslJaasConfig": "x password=\"hunter2\";"});
    let problem = only_problem(&value);
    assert!(problem.contains("security.sasl.saslMechanism: required with protocol `SASL_SSL`"), "{problem}");
    assert!(!problem.contains("hunter2"), "no secret in problems: {problem}");
}

#[test]
fn yaml_definitions_load_like_json() {
    let yaml = r#"
id: orders
name: Orders
type: MESSAGE
listeners:
  - type: http
    paths: [{path: /orders}]
    entrypoints:
      - type: http-get
        configuration: {messagesLimitCount: "5"}
endpointGroups:
  - name: default
    type: kafka
    sharedConfiguration:
      consumer: {enabled: true, topics: [orders]}
    endpoints:
      - name: default
        type: kafka
        configuration: {bootstrapServers: "localhost:9092"}
"#;
    let loaded = load_str(yaml, Format::Yaml, "api.yaml").unwrap();
    assert_eq!(loaded.api.id, "orders");
}

#[test]
fn directories_are_searched_and_shared_context_paths_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.json"), definition().to_string()).unwrap();
    let mut second = definition();
    second["id"] = json!("other");
    std::fs::create_dir(dir.path().join("nested")).unwrap();
    std::fs::write(dir.path().join("nested/b.json"), second.to_string()).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a definition").unwrap();
    let found = load_paths(&[dir.path().to_path_buf()]).expect_err("duplicate context path");
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0].message.starts_with("context path `/orders` is also served by"), "{}", found[0]);

    second["listeners"][0]["paths"][0]["path"] = json!("/other");
    std::fs::write(dir.path().join("nested/b.json"), second.to_string()).unwrap();
    let loaded = load_paths(&[dir.path().to_path_buf()]).unwrap();
    assert_eq!(loaded.len(), 2);
}

/// A Kubernetes ConfigMap volume: the files are symlinks into `..data`, itself a symlink to a
/// timestamped directory. Each definition must be read once.
#[cfg(unix)]
#[test]
fn a_config_map_mount_shows_each_definition_once() {
    let dir = tempfile::tempdir().unwrap();
    let version = dir.path().join("..2026_12_07_08_00_00.000000001");
    std::fs::create_dir(&version).unwrap();
    std::fs::write(version.join("orders.json"), definition().to_string()).unwrap();
    std::os::unix::fs::symlink(&version, dir.path().join("..data")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("..data/orders.json"), dir.path().join("orders.json")).unwrap();
    let loaded = load_paths(&[dir.path().to_path_buf()]).expect("loads once");
    assert_eq!(loaded.len(), 1);
    assert!(loaded[0].file.ends_with("/orders.json"), "{}", loaded[0].file);
}

#[test]
fn configuration_that_is_never_used_is_reported_as_ignored() {
    let mut value = definition();
    let endpoint = value["endpointGroups"][0]["endpoints"][0].clone();
    value["endpointGroups"][0]["endpoints"][0]["inheritConfiguration"] = json!(true);
    value["endpointGroups"][0]["endpoints"][0]["sharedConfigurationOverride"] =
        json!({"consumer": {"enabled": true, "topics": ["x"]}});
    value["endpointGroups"][0]["endpoints"].as_array_mut().unwrap().push(endpoint);
    value["endpointGroups"][0]["sharedConfiguration"]["security"] =
        json!({"protocol": "PLAINTEXT", "sasl": {"saslMechanism": "PLAIN"}});
    let loaded = load(&value).unwrap();
    let mut ignored: Vec<String> = loaded.ignored.iter().map(|i| format!("{} ({})", i.path, i.reason)).collect();
    ignored.sort();
    assert_eq!(
        ignored,
        [
            "endpointGroups[0].endpoints[0].sharedConfigurationOverride (inheritConfiguration is true: the group's sharedConfiguration applies)",
            "endpointGroups[0].endpoints[1] (requests are served by the first endpoint of the first group)",
            "endpointGroups[0].sharedConfiguration.security.sasl (the protocol is PLAINTEXT, which uses no SASL)",
        ]
    );
}

#[test]
fn problems_in_an_override_name_the_override() {
    let mut value = definition();
    value["endpointGroups"][0]["endpoints"][0]["inheritConfiguration"] = json!(false);
    value["endpointGroups"][0]["endpoints"][0]["sharedConfigurationOverride"] =
        json!({"producer": {"enabled": true, "topics": ["orders"]}, "consumer": {"enabled": true}});
    assert_eq!(
        only_problem(&value),
        "api.json: endpointGroups[0].endpoints[0].sharedConfigurationOverride.consumer.topics: at least one topic is required when the consumer is enabled"
    );
}

#[test]
fn a_webhook_proxy_host_is_a_host_alone() {
    let with_proxy = |proxy: Value| {
        let mut api = definition();
        api["listeners"].as_array_mut().expect("listeners").push(
            json!({"type": "subscription", "entrypoints": [{"type": "webhook", "configuration": {"proxy": proxy}}]}),
        );
        api["plans"] = json!([{"id": "push", "name": "push", "mode": "PUSH"}]);
        api
    };
    for host in ["http://proxy.internal", "edge:s3cret@proxy.internal", "proxy.internal:3128", "proxy internal"] {
        let problem = only_problem(&with_proxy(json!({"enabled": true, "host": host, "port": 3128})));
        assert!(
            problem.starts_with("api.json: listeners[1].entrypoints[0].configuration.proxy.host: expected a host name"),
            "{problem}"
        );
        assert!(!problem.contains("s3cret"), "{problem}");
    }
    for host in ["proxy.internal", "10.0.0.7", "[::1]"] {
        assert!(load(&with_proxy(json!({"enabled": true, "host": host, "port": "3128"}))).is_ok(), "{host}");
    }
    assert!(load(&with_proxy(json!({"enabled": true, "useSystemProxy": true}))).is_ok());
}
