//! OAUTHBEARER with OAuth 2 client credentials against a broker that validates JWTs (Kafka's
//! `OAuthBearerValidatorCallbackHandler` with the JWKS of a local authorization server, started
//! before the broker as a real identity provider would be). Each test has its own server and
//! private broker, whose SASL_PLAINTEXT listener accepts only tokens that server signed.

mod common;

use common::oauth::OAuthServer;
use common::*;
use eventsource_stream::Eventsource as _;
use futures::StreamExt as _;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const CLIENT_ID: &str = "kafka-edge-orders";
const CLIENT_SECRET: &str = "client-secret-for-tests";

/// An authorization server issuing tokens valid for `lifetime`, a private broker validating them
/// and a one-partition topic.
async fn identity_provider(prefix: &str, lifetime: Duration) -> (OAuthServer, PrivateBroker, String) {
    let server = OAuthServer::start(CLIENT_ID, CLIENT_SECRET, lifetime).await;
    let (properties, jvm_flags) = server.broker_settings();
    let broker = tokio::task::spawn_blocking(move || PrivateBroker::start_with_jvm_flags(&properties, &jvm_flags))
        .await
        .expect("private broker");
    let topic = unique(prefix);
    create_topic_on(broker.bootstrap(), &topic, 1).await;
    (server, broker, topic)
}

/// The test API on `topic` through the JWT-validating listener, logging in with the client
/// credentials `secret` and the server's token endpoint, as a Strimzi or KIP-768 user writes it.
fn oauth_api(server: &OAuthServer, broker: &PrivateBroker, topic: &str, secret: &str) -> ApiSpec {
    let mut spec = ApiSpec::new(topic);
    spec.bootstrap = broker.sasl_plaintext_bootstrap();
    spec.http_get = json!({"messagesLimitCount": 10, "messagesLimitDurationMs": 1000});
    spec.sse_qos = "auto";
    let jaas = format!(
        "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required \
         clientId=\"{CLIENT_ID}\" clientSecret=\"{secret}\" scope=\"kafka\" oauth.token.endpoint.uri=\"{}\";",
        server.token_url()
    );
    spec.security =
        Some(json!({"protocol": "SASL_PLAINTEXT", "sasl": {"saslMechanism": "OAUTHBEARER", "saslJaasConfig": jaas}}));
    spec
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_produce_and_consume_with_one_token_for_every_client() {
    let (server, broker, topic) = identity_provider("oauth-cc", Duration::from_secs(300)).await;
    let spec = oauth_api(&server, &broker, &topic, CLIENT_SECRET);
    let gateway = TestGateway::start(&spec).await;

    let posted = gateway.post("with a client-credentials token").await;
    assert_eq!(posted.status(), 202, "{:?}", posted.text().await);
    assert_eq!(values_on(broker.bootstrap(), &topic), ["with a client-credentials token"]);
    // Five clients, so five new consumers, and the producer: one token between them.
    for client in 0..5 {
        let body = gateway.get_json(&format!("oauth-reader-{client}"), "?limit=1").await;
        assert_eq!(contents(&body), ["with a client-credentials token"], "{body}");
    }
    assert_eq!(server.issued(), 1, "one token request for the producer and five consumers");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_client_secret_fails_with_a_clear_error_that_repeats_no_secret() {
    let (server, broker, topic) = identity_provider("oauth-cc-wrong", Duration::from_secs(300)).await;
    let wrong_secret = "not-the-client-secret";
    let spec = oauth_api(&server, &broker, &topic, wrong_secret);
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("api.json");
    std::fs::write(&file, spec.to_json().to_string()).expect("write");
    let gateway = GatewayProcess::start(
        dir.path(),
        &[],
        &["--admin-listen".as_ref(), "off".as_ref(), "--api".as_ref(), file.as_os_str()],
    );
    gateway.wait_until_listening().await;
    let url = format!("{}{}", gateway.base, spec.path);

    for _ in 0..3 {
        let posted = gateway.http.post(&url).body("never written").send().await.expect("POST");
        assert_eq!(posted.status(), 503);
        let body: Value = posted.json().await.expect("JSON error");
        assert_eq!(body["message"], "Endpoint configuration invalid: OAUTHBEARER credentials could not be resolved");
    }
    let (_, body) = gateway.get_json(&format!("{}?limit=1", spec.path), "oauth-reader").await;
    assert_eq!(
        body["error"]["content"],
        "Endpoint configuration invalid: OAUTHBEARER credentials could not be resolved"
    );

    let log = gateway.log();
    let refusal = format!(
        "token endpoint {} refused client `{CLIENT_ID}`: HTTP 401 Unauthorized (invalid_client)",
        server.token_url()
    );
    assert_eq!(log.matches(&refusal).count(), 1, "logged once, not per request: {log}");
    assert!(!log.contains(wrong_secret), "the secret (echoed by the server) is not repeated: {log}");
    assert!(server.refused() >= 4, "each new client asked again: {}", server.refused());
    assert!(values_on(broker.bootstrap(), &topic).is_empty());
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_renewed_while_an_sse_stream_runs_and_new_clients_get_fresh_ones() {
    // Tokens live 10 s and the broker refuses one the moment it expires: over 30 s the stream
    // keeps receiving, and every new consumer (a GET of a new client) and the producer
    // authenticate with a token the background renewal got, not with the first one.
    let lifetime = Duration::from_secs(10);
    let (server, broker, topic) = identity_provider("oauth-cc-renew", lifetime).await;
    // The stream reads its topic from the beginning: no message can slip past a consumer that
    // is still joining.
    let spec = oauth_api(&server, &broker, &topic, CLIENT_SECRET);
    let gateway = TestGateway::start(&spec).await;
    let response = gateway
        .http
        .get(gateway.url())
        .header("Accept", "text/event-stream")
        .header("X-Gravitee-Client-Identifier", "oauth-stream")
        .send()
        .await
        .expect("SSE");
    assert_eq!(response.status(), 200);
    let mut events = response.bytes_stream().eventsource();

    let started = Instant::now();
    let mut sent = Vec::new();
    let mut received = Vec::new();
    while started.elapsed() < lifetime * 3 {
        let message = format!("message-{}", sent.len());
        let posted = gateway.post(&message).await;
        let status = posted.status();
        let text = posted.text().await.unwrap_or_default();
        assert_eq!(status, 202, "POST at {:?} ({} tokens issued): {text}", started.elapsed(), server.issued());
        sent.push(message);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while received.len() < sent.len() {
            let event = tokio::time::timeout_at(deadline, events.next())
                .await
                .unwrap_or_else(|_| panic!("event {} not received at {:?}", sent.len(), started.elapsed()))
                .expect("stream open")
                .expect("event");
            if event.event == "message" && !event.data.is_empty() {
                received.push(event.data);
            }
        }
        if sent.len() % 3 == 0 {
            let reader = format!("oauth-reader-{}", sent.len());
            let body = gateway.get_json(&reader, "?limit=1").await;
            assert_eq!(contents(&body), ["message-0"], "a new consumer at {:?}: {body}", started.elapsed());
        }
        tokio::time::sleep(Duration::from_secs(1)).await; // pacing of the producer, not synchronisation
    }
    assert_eq!(received, sent, "every message, in order, across token renewals");
    let issued = server.issued();
    // One token at start, then one per half lifetime (5 s) over the 30 s and more: about 7.
    assert!((5..=12).contains(&issued), "tokens issued: {issued}");
    gateway.stop().await;
}
