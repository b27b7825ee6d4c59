//! Kafka security against the test bed's real listeners (SASL_PLAINTEXT, SSL with client
//! authentication, SASL_SSL), real users and real certificates in every store format.

mod common;

use base64::Engine as _;
use common::*;
use serde_json::{json, Value};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests with scripts/test, which starts the Kafka test bed")
    })
}

fn cert(file: &str) -> String {
    format!("{}/{file}", env("KAFKA_EDGE_TESTKIT_CERTS"))
}

fn read_cert(file: &str) -> String {
    std::fs::read_to_string(cert(file)).expect("test bed certificate")
}

fn jaas_plain(user: &str, password: &str) -> String {
    format!(
        "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"{user}\" password=\"{password}\";"
    )
}

fn jaas_scram(user: &str, password: &str) -> String {
    format!(
        "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"{user}\" password=\"{password}\";"
    )
}

/// An unsigned JWT, which the test bed's OAUTHBEARER validator accepts.
fn unsecured_jwt(subject: &str) -> String {
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("test setup").as_secs();
    let header = engine.encode(r#"{"alg":"none"}"#);
    let payload = engine.encode(json!({"sub": subject, "iat": now, "exp": now + 3600}).to_string());
    format!("{header}.{payload}.")
}

fn pem_truststore() -> Value {
    json!({"type": "PEM", "location": cert("ca.pem")})
}

/// Produces through the gateway and reads the record back through it, on a fresh topic.
async fn round_trip(bootstrap_variable: &str, security: Value) {
    let topic = unique("secure");
    create_topic(&topic, 1).await;
    let mut spec = ApiSpec::new(&topic);
    spec.bootstrap = env(bootstrap_variable);
    spec.security = Some(security);
    // TLS handshakes and a group join on a busy machine: a generous window; `limit=1` answers
    // as soon as the record arrives.
    spec.http_get = json!({"messagesLimitCount": 1, "messagesLimitDurationMs": 15000});
    let gateway = TestGateway::start(&spec).await;
    let response = gateway.post("secret payload").await;
    let status = response.status();
    assert_eq!(status, 202, "{}", response.text().await.unwrap_or_default());
    let body = gateway.get_json(&unique("c"), "?limit=1").await;
    assert_eq!(contents(&body), ["secret payload"], "{body}");
    gateway.stop().await;
}

/// Publishing fails with the configuration-invalid key.
async fn refused(bootstrap_variable: &str, security: Value) -> Value {
    let mut spec = ApiSpec::new(&unique("refused"));
    spec.bootstrap = env(bootstrap_variable);
    spec.security = Some(security);
    let gateway = TestGateway::start(&spec).await;
    let response = gateway.post("never").await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.expect("test setup");
    assert_eq!(body["key"], "FAILURE_ENDPOINT_CONFIGURATION_INVALID", "{body}");
    gateway.stop().await;
    body
}

#[tokio::test]
async fn sasl_plain() {
    round_trip(
        "KAFKA_EDGE_BOOTSTRAP_SASL_PLAINTEXT",
        json!({"protocol": "SASL_PLAINTEXT",
        "sasl": {"saslMechanism": "PLAIN", "saslJaasConfig": jaas_plain("alice", "alice-secret")}}),
    )
    .await;
}

#[tokio::test]
async fn sasl_scram_sha_256_and_512() {
    for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512"] {
        round_trip(
            "KAFKA_EDGE_BOOTSTRAP_SASL_PLAINTEXT",
            json!({"protocol": "SASL_PLAINTEXT",
            "sasl": {"saslMechanism": mechanism, "saslJaasConfig": jaas_scram("scram-user", "scram-secret")}}),
        )
        .await;
    }
}

#[tokio::test]
async fn sasl_oauthbearer_with_an_unsecured_login() {
    round_trip("KAFKA_EDGE_BOOTSTRAP_SASL_PLAINTEXT", json!({"protocol": "SASL_PLAINTEXT",
        "sasl": {"saslMechanism": "OAUTHBEARER",
                 "saslJaasConfig": "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub=\"alice\";"}})).await;
}

#[tokio::test]
async fn sasl_oauthbearer_with_a_token_from_a_context_attribute() {
    let topic = unique("oauth-el");
    create_topic(&topic, 1).await;
    let mut spec = ApiSpec::new(&topic);
    spec.bootstrap = env("KAFKA_EDGE_BOOTSTRAP_SASL_PLAINTEXT");
    spec.security = Some(json!({"protocol": "SASL_PLAINTEXT", "sasl": {"saslMechanism": "OAUTHBEARER",
        "saslJaasConfig": "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required access_token=\"{#context.attributes['gravitee.attribute.kafka.oauthbearer.token']}\";"}}));
    spec.flows = json!([{"request": [{"policy": "assign-attributes", "configuration": {"attributes": [
        {"name": "gravitee.attribute.kafka.oauthbearer.token", "value": "{#request.headers['X-Token'][0]}"}]}}]}]);
    let gateway = TestGateway::start(&spec).await;
    let response = gateway
        .http
        .post(gateway.url())
        .header("X-Token", unsecured_jwt("alice"))
        .body("with a token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202, "{}", response.text().await.unwrap_or_default());
    assert_eq!(payload(&read_records(&topic, 1)[0]), "with a token");
    gateway.stop().await;
}

#[tokio::test]
async fn event_hubs_connection_string_over_sasl_ssl() {
    let connection_string = "Endpoint=sb://kafka-edge-test.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=test-shared-key";
    round_trip("KAFKA_EDGE_BOOTSTRAP_SASL_SSL", json!({"protocol": "SASL_SSL",
        "sasl": {"saslMechanism": "PLAIN",
                 "saslJaasConfig": format!("org.apache.kafka.common.security.plain.PlainLoginModule required username='$ConnectionString' password='{connection_string}';")},
        "ssl": {"trustStore": pem_truststore()}})).await;
}

#[tokio::test]
async fn mutual_tls_with_every_keystore_format() {
    let p12 = base64::engine::general_purpose::STANDARD.encode(std::fs::read(cert("client.keystore.p12")).unwrap());
    let keystores = [
        json!({"type": "PEM", "location": cert("client.keystore.pem")}),
        json!({"type": "PEM", "location": cert("client.keystore.enc.pem"), "keyPassword": "key-secret"}),
        json!({"type": "PEM", "key": read_cert("client.key.enc.pem"), "keyPassword": "key-secret", "certificateChain": read_cert("client.chain.pem")}),
        json!({"type": "JKS", "location": cert("client.keystore.jks"), "password": "keystore-secret", "keyPassword": "key-secret"}),
        json!({"type": "PKCS12", "location": cert("client.keystore.p12"), "password": "keystore-secret"}),
        json!({"type": "PKCS12", "key": p12, "password": "keystore-secret"}),
    ];
    for keystore in keystores {
        round_trip(
            "KAFKA_EDGE_BOOTSTRAP_SSL",
            json!({"protocol": "SSL", "ssl": {"trustStore": pem_truststore(), "keyStore": keystore}}),
        )
        .await;
    }
}

#[tokio::test]
async fn every_truststore_format() {
    let jks = base64::engine::general_purpose::STANDARD.encode(std::fs::read(cert("truststore.jks")).unwrap());
    let truststores = [
        json!({"type": "PEM", "certificates": read_cert("ca.pem")}),
        json!({"type": "JKS", "location": cert("truststore.jks"), "password": "truststore-secret"}),
        json!({"type": "JKS", "certificates": jks, "password": "truststore-secret"}),
        json!({"type": "PKCS12", "location": cert("truststore.p12"), "password": "truststore-secret"}),
    ];
    for truststore in truststores {
        round_trip(
            "KAFKA_EDGE_BOOTSTRAP_SASL_SSL",
            json!({"protocol": "SASL_SSL",
            "sasl": {"saslMechanism": "PLAIN", "saslJaasConfig": jaas_plain("alice", "alice-secret")},
            "ssl": {"truststore": truststore}}),
        )
        .await;
    }
}

#[tokio::test]
async fn a_wrong_password_an_untrusted_broker_and_a_missing_client_certificate_are_refused() {
    let wrong = refused(
        "KAFKA_EDGE_BOOTSTRAP_SASL_PLAINTEXT",
        json!({"protocol": "SASL_PLAINTEXT",
        "sasl": {"saslMechanism": "PLAIN", "saslJaasConfig": jaas_plain("alice", "not-the-password")}}),
    )
    .await;
    assert!(!wrong.to_string().contains("not-the-password"));
    refused(
        "KAFKA_EDGE_BOOTSTRAP_SASL_SSL",
        json!({"protocol": "SASL_SSL",
        "sasl": {"saslMechanism": "PLAIN", "saslJaasConfig": jaas_plain("alice", "alice-secret")},
        "ssl": {"trustStore": {"type": "PEM", "location": cert("untrusted-ca.pem")}}}),
    )
    .await;
    refused("KAFKA_EDGE_BOOTSTRAP_SSL", json!({"protocol": "SSL", "ssl": {"trustStore": pem_truststore()}})).await;
}

const BINARY: &str = env!("CARGO_BIN_EXE_kafka-edge");

#[test]
fn a_wrong_store_password_fails_at_load_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = ApiSpec::new("t");
    spec.security = Some(json!({"protocol": "SSL", "ssl": {"trustStore": pem_truststore(),
        "keyStore": {"type": "PKCS12", "location": cert("client.keystore.p12"), "password": "keystore-wrong-secret"}}}));
    let file = dir.path().join("api.json");
    std::fs::write(&file, spec.to_json().to_string()).unwrap();
    let output = std::process::Command::new(BINARY).arg("validate").arg(&file).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("endpointGroups[0].sharedConfiguration.security.ssl.keyStore.password: wrong password"),
        "{stdout}"
    );
    assert!(!stdout.contains("keystore-wrong-secret"));
}

/// Every secret the definitions below hold; none may appear in the gateway's output.
const SECRETS: &[&str] =
    &["alice-secret", "wrong-secret-42", "keystore-secret", "key-secret", "truststore-secret", "PRIVATE KEY"];

#[tokio::test]
async fn no_secret_reaches_the_log() {
    let (ok_topic, ssl_topic) = (unique("log-ok"), unique("log-ssl"));
    create_topic(&ok_topic, 1).await;
    create_topic(&ssl_topic, 1).await;
    let dir = tempfile::tempdir().unwrap();
    let mut good = ApiSpec::new(&ok_topic);
    good.bootstrap = env("KAFKA_EDGE_BOOTSTRAP_SASL_PLAINTEXT");
    good.security = Some(
        json!({"protocol": "SASL_PLAINTEXT", "sasl": {"saslMechanism": "PLAIN", "saslJaasConfig": jaas_plain("alice", "alice-secret")}}),
    );
    let mut wrong = ApiSpec::new(&ok_topic);
    wrong.bootstrap = env("KAFKA_EDGE_BOOTSTRAP_SASL_PLAINTEXT");
    wrong.security = Some(
        json!({"protocol": "SASL_PLAINTEXT", "sasl": {"saslMechanism": "SCRAM-SHA-512", "saslJaasConfig": jaas_scram("scram-user", "wrong-secret-42")}}),
    );
    let mut tls = ApiSpec::new(&ssl_topic);
    tls.bootstrap = env("KAFKA_EDGE_BOOTSTRAP_SSL");
    tls.security = Some(json!({"protocol": "SSL", "ssl": {
        "trustStore": {"type": "JKS", "location": cert("truststore.jks"), "password": "truststore-secret"},
        "keyStore": {"type": "JKS", "location": cert("client.keystore.jks"), "password": "keystore-secret", "keyPassword": "key-secret"}}}));
    for (name, spec) in [("good.json", &good), ("wrong.json", &wrong), ("tls.json", &tls)] {
        std::fs::write(dir.path().join(name), spec.to_json().to_string()).unwrap();
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut gateway = std::process::Command::new(BINARY)
        .args(["run", "--api"])
        .arg(dir.path())
        .args(["--listen", &format!("127.0.0.1:{port}"), "--admin-listen", "127.0.0.1:0"])
        .env("RUST_LOG", "debug")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let mut answered = false;
    for _ in 0..300 {
        if http.post(format!("{base}{}", good.path)).body("fine").send().await.is_ok_and(|r| r.status() == 202) {
            answered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(answered, "the gateway served the good API");
    assert_eq!(http.post(format!("{base}{}", wrong.path)).body("refused").send().await.unwrap().status(), 503);
    assert_eq!(http.post(format!("{base}{}", tls.path)).body("mtls").send().await.unwrap().status(), 202);
    let status = std::process::Command::new("kill").args(["-TERM", &gateway.id().to_string()]).status().unwrap();
    assert!(status.success());
    let output = tokio::task::spawn_blocking(move || {
        let output = gateway.stderr.take().map(|mut stderr| {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut stderr, &mut text).unwrap();
            text
        });
        gateway.wait().unwrap();
        output.unwrap_or_default()
    })
    .await
    .unwrap();
    assert!(output.contains("Kafka producer created"), "debug log captured");
    for secret in SECRETS {
        assert!(!output.contains(secret), "the log shows `{secret}`");
    }
}

/// Without a trust store, the system's CAs: `SSL_CERT_FILE` names them when set, in every build
/// (a static OpenSSL ignores it unless kafka-edge passes it on), and the test bed's CA is not
/// among the machine's own.
#[tokio::test]
async fn without_a_trust_store_the_ca_file_ssl_cert_file_names_is_trusted() {
    let topic = unique("system-ca");
    create_topic(&topic, 1).await;
    let mut spec = ApiSpec::new(&topic);
    spec.bootstrap = env("KAFKA_EDGE_BOOTSTRAP_SASL_SSL");
    spec.security = Some(json!({"protocol": "SASL_SSL",
        "sasl": {"saslMechanism": "SCRAM-SHA-256", "saslJaasConfig": jaas_scram("scram-user", "scram-secret")}}));
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("api.json");
    std::fs::write(&file, spec.to_json().to_string()).expect("write definition");
    let args = ["--admin-listen".as_ref(), "off".as_ref(), "--produce-timeout".as_ref(), "5".as_ref()];
    let args = [&args[..], &["--api".as_ref(), file.as_os_str()]].concat();
    let ca = cert("ca.pem");
    let none = vec![("SSL_CERT_FILE", ""), ("SSL_CERT_DIR", "")];
    for (env, expected) in [(vec![("SSL_CERT_FILE", ca.as_str())], 202), (none, 503)] {
        let run = tempfile::tempdir().expect("dir");
        let gateway = GatewayProcess::start_with_env(run.path(), &[], &args, &env);
        let url = format!("{}{}", gateway.base, spec.path);
        let mut status = None;
        for _ in 0..300 {
            if let Ok(response) = gateway.http.post(&url).body("over TLS").send().await {
                status = Some(response.status().as_u16());
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(status, Some(expected), "{env:?}; log: {}", gateway.log());
        gateway.stop().await;
    }
}

/// checkTopicExistence holds for a consumer that authenticates with a token (it was skipped
/// silently): a missing topic fails the GET with the ConfigurationInvalid error, an existing one
/// is consumed.
#[tokio::test]
async fn check_topic_existence_applies_to_oauthbearer_consumers() {
    let present = unique("oauth-check");
    create_topic(&present, 1).await;
    produce(&present, &[(None, "here")]).await;
    let security = json!({"protocol": "SASL_PLAINTEXT", "sasl": {"saslMechanism": "OAUTHBEARER",
        "saslJaasConfig": "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub=\"alice\";"}});
    let missing = unique("oauth-nothere");
    for (topic, exists) in [(&missing, false), (&present, true)] {
        let mut spec = ApiSpec::new(topic);
        spec.bootstrap = env("KAFKA_EDGE_BOOTSTRAP_SASL_PLAINTEXT");
        spec.security = Some(security.clone());
        spec.consumer_extra = json!({"autoOffsetReset": "earliest", "checkTopicExistence": true});
        spec.http_get = json!({"messagesLimitCount": 1, "messagesLimitDurationMs": 15000});
        let gateway = TestGateway::start(&spec).await;
        let page = gateway.get_json(&unique("c"), "?limit=1").await;
        if exists {
            assert_eq!(contents(&page), ["here"], "{page}");
        } else {
            assert_eq!(page["error"]["metadata"]["key"], "FAILURE_ENDPOINT_CONFIGURATION_INVALID", "{page}");
            let message = page["error"]["content"].as_str().unwrap_or_default();
            assert!(message.contains(&format!("topic `{missing}` does not exist")), "{page}");
        }
        gateway.stop().await;
    }
}
