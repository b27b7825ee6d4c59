//! The `kafka://` gateway state over the test bed's secured listeners: SASL_SSL with a PLAIN user
//! and SSL with a client certificate from a JKS key store, shared by two stores the way a fleet
//! shares it; a wrong password fails the open without showing it; settings the state clients
//! cannot use are refused naming the field; `kafka-edge run --state-security` reads the file.

mod common;

use common::*;
use kafka_edge_definition::SecurityConfiguration;
use kafka_edge_gateway::state::{self, Subscription};
use serde_json::{json, Value};
use std::path::PathBuf;

fn cert(name: &str) -> String {
    let dir = std::env::var("KAFKA_EDGE_TESTKIT_CERTS")
        .expect("KAFKA_EDGE_TESTKIT_CERTS is not set: run the tests with scripts/test");
    PathBuf::from(dir).join(name).display().to_string()
}

fn listener(variable: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| panic!("{variable} is not set: run the tests with scripts/test"))
}

fn security(value: Value) -> SecurityConfiguration {
    serde_json::from_value(value).expect("a security block")
}

fn sasl_ssl(password: &str) -> SecurityConfiguration {
    security(json!({
        "protocol": "SASL_SSL",
        "sasl": {"saslMechanism": "PLAIN", "saslJaasConfig": format!("org.apache.kafka.common.security.plain.PlainLoginModule required username=\"alice\" password=\"{password}\";")},
        "ssl": {"trustStore": {"type": "PEM", "location": cert("ca.pem")}}
    }))
}

fn subscription(api: &str, id: &str) -> Subscription {
    serde_json::from_value(
        json!({"id": id, "apiId": api, "planId": "push", "configuration": {"callbackUrl": "http://127.0.0.1:1/hook"}}),
    )
    .expect("a subscription")
}

/// Two stores on one topic: what one writes, the other sees.
async fn shared_through(bootstrap_variable: &str, security: SecurityConfiguration) {
    let uri = format!("kafka://{}/{}", listener(bootstrap_variable), unique("kafka-edge-state"));
    let first = state::open_with(&uri, Some(&security)).await.expect("first store");
    let second = state::open_with(&uri, Some(&security)).await.expect("second store");
    first.put(subscription("orders", "billing")).await.expect("write");
    assert!(eventually(|| second.get("orders", "billing").is_some()).await, "the second store sees the subscription");
    assert!(second.delete("orders", "billing").await.expect("delete"));
    assert!(eventually(|| first.get("orders", "billing").is_none()).await, "the first store sees the delete");
}

#[tokio::test]
async fn a_kafka_state_over_sasl_ssl_is_shared() {
    shared_through("KAFKA_EDGE_BOOTSTRAP_SASL_SSL", sasl_ssl("alice-secret")).await;
}

#[tokio::test]
async fn a_kafka_state_over_ssl_with_a_jks_client_certificate_is_shared() {
    let security = security(json!({
        "protocol": "SSL",
        "ssl": {
            "trustStore": {"type": "JKS", "location": cert("truststore.jks"), "password": "truststore-secret"},
            "keyStore": {"type": "JKS", "location": cert("client.keystore.jks"), "password": "keystore-secret", "keyPassword": "key-secret"}
        }
    }));
    shared_through("KAFKA_EDGE_BOOTSTRAP_SSL", security).await;
}

#[tokio::test]
async fn a_wrong_password_fails_the_open_without_showing_it() {
    let uri = format!("kafka://{}/{}", listener("KAFKA_EDGE_BOOTSTRAP_SASL_SSL"), unique("kafka-edge-state"));
    let error = match state::open_with(&uri, Some(&sasl_ssl("not-alices-password"))).await {
        Ok(_) => panic!("opened with a wrong password"),
        Err(error) => error.to_string(),
    };
    assert!(
        error.starts_with("state topic: the cluster refused the login: ")
            && error.contains("Invalid username or password"),
        "{error}"
    );
    assert!(!error.contains("not-alices-password"), "{error}");
}

#[tokio::test]
async fn settings_the_state_clients_cannot_use_are_refused_naming_the_field() {
    let uri = format!("kafka://{}/{}", listener("KAFKA_EDGE_BOOTSTRAP_SASL_SSL"), unique("kafka-edge-state"));
    let refusal = |value: Value| {
        let uri = uri.clone();
        async move {
            match state::open_with(&uri, Some(&security(value))).await {
                Ok(_) => panic!("accepted"),
                Err(error) => error.to_string(),
            }
        }
    };
    let oauth = refusal(json!({"protocol": "SASL_SSL", "sasl": {"saslMechanism": "OAUTHBEARER", "saslJaasConfig": "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required access_token=\"t\";"}})).await;
    assert!(oauth.contains("--state-security: sasl.saslMechanism") && oauth.contains("OAUTHBEARER"), "{oauth}");
    let missing = refusal(json!({"protocol": "SASL_PLAINTEXT", "sasl": {"saslMechanism": "PLAIN"}})).await;
    assert!(missing.contains("sasl.saslJaasConfig: required"), "{missing}");
    let expression = refusal(json!({"protocol": "{#context.attributes['p']}"})).await;
    assert!(expression.contains("--state-security: protocol: expressions are not allowed here"), "{expression}");
    let store = refusal(json!({"protocol": "SSL", "ssl": {"trustStore": {"type": "JKS", "location": cert("truststore.jks"), "password": "wrong"}}})).await;
    assert!(store.contains("ssl.trustStore.password"), "{store}");

    let file_state = format!("file:{}", tempfile::tempdir().expect("dir").path().join("state").display());
    match state::open_with(&file_state, Some(&sasl_ssl("alice-secret"))).await {
        Ok(_) => panic!("a file state took Kafka security"),
        Err(error) => assert!(error.to_string().contains("kafka:// state only"), "{error}"),
    }
}

#[test]
fn run_names_the_field_of_an_invalid_security_file() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("state-security.yaml");
    std::fs::write(&file, "protocol: SASL_SSL\nsasl:\n  saslMechanism: PLAIN\n  colour: blue\n").expect("write");
    let api = dir.path().join("api.json");
    std::fs::write(&api, include_str!("../../../examples/demo-api.json")).expect("write");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kafka-edge"))
        .args(["run", "--api"])
        .arg(&api)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--state",
            "kafka://127.0.0.1:1/state",
            "--state-security",
        ])
        .arg(&file)
        .output()
        .expect("kafka-edge runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("state-security.yaml: sasl.colour: unknown field `colour`"), "{stderr}");
}

#[tokio::test]
async fn the_state_topic_is_created_compacted_and_a_deleting_one_is_refused() {
    use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
    use rdkafka::client::DefaultClientContext;
    let topic = unique("kafka-edge-state");
    let uri = format!("kafka://{}/{topic}", bootstrap());
    state::open(&uri).await.expect("a new state topic");
    let admin: AdminClient<DefaultClientContext> =
        rdkafka::ClientConfig::new().set("bootstrap.servers", bootstrap()).create().expect("admin");
    let described =
        admin.describe_configs(&[ResourceSpecifier::Topic(&topic)], &AdminOptions::new()).await.expect("describe");
    let policy = described[0].as_ref().expect("topic config").get("cleanup.policy").and_then(|e| e.value.clone());
    assert_eq!(policy.as_deref(), Some("compact"));

    let deleting = unique("kafka-edge-state");
    create_topic(&deleting, 1).await;
    match state::open(&format!("kafka://{}/{deleting}", bootstrap())).await {
        Ok(_) => panic!("a state topic with cleanup.policy=delete was accepted"),
        Err(error) => assert!(error.to_string().contains("cleanup.policy=delete"), "{error}"),
    }
}
