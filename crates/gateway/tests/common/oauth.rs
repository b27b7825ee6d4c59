//! A small OAuth 2 authorization server on a loopback port, for brokers that validate JWTs: a
//! token endpoint for the client credentials grant (HTTP Basic client authentication, as RFC 6749
//! §2.3.1 and Kafka's client send it) and the JWKS of the RSA key that signs its RS256 tokens.
//! It counts the tokens it issued.
#![allow(dead_code)]

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const KEY_ID: &str = "kafka-edge-test-key";
const ISSUER: &str = "kafka-edge-test-idp";
/// The audience the broker expects (Kafka 4.4 refuses to validate without one).
const AUDIENCE: &str = "kafka-edge-test-cluster";

pub struct OAuthServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    state: Arc<Issuer>,
    task: tokio::task::JoinHandle<()>,
}

struct Issuer {
    client_id: String,
    client_secret: String,
    lifetime: Duration,
    signing_key: jsonwebtoken::EncodingKey,
    jwk: Value,
    issued: AtomicUsize,
    refused: AtomicUsize,
}

impl OAuthServer {
    /// Issues tokens valid for `lifetime` to the one client `client_id` with `client_secret`.
    pub async fn start(client_id: &str, client_secret: &str, lifetime: Duration) -> Self {
        let rsa = openssl::rsa::Rsa::generate(2048).expect("RSA key");
        let pem = rsa.private_key_to_pem().expect("PEM");
        let jwk = json!({
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": KEY_ID,
            "n": URL_SAFE_NO_PAD.encode(rsa.n().to_vec()),
            "e": URL_SAFE_NO_PAD.encode(rsa.e().to_vec()),
        });
        let state = Arc::new(Issuer {
            client_id: client_id.to_string(),
            client_secret: client_secret.to_string(),
            lifetime,
            signing_key: jsonwebtoken::EncodingKey::from_rsa_pem(&pem).expect("signing key"),
            jwk,
            issued: AtomicUsize::new(0),
            refused: AtomicUsize::new(0),
        });
        let routes = Router::new().route("/jwks", get(jwks)).route("/token", post(token)).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let task = tokio::spawn(async move {
            axum::serve(listener, routes).await.expect("OAuth server");
        });
        Self { base, state, task }
    }

    pub fn jwks_url(&self) -> String {
        format!("{}/jwks", self.base)
    }

    pub fn token_url(&self) -> String {
        format!("{}/token", self.base)
    }

    /// Tokens issued so far.
    pub fn issued(&self) -> usize {
        self.state.issued.load(Ordering::SeqCst)
    }

    /// Token requests refused so far (wrong client or secret).
    pub fn refused(&self) -> usize {
        self.state.refused.load(Ordering::SeqCst)
    }

    /// The broker settings that make its SASL_PLAINTEXT listener validate OAUTHBEARER tokens
    /// against this server's JWKS (Kafka's `OAuthBearerValidatorCallbackHandler`), refusing a
    /// token the moment it expires (no clock skew allowed), and the JVM flag Kafka 4 needs to
    /// fetch the JWKS. Connections are not forced to re-authenticate (`connections.max.reauth.ms`
    /// stays 0): librdkafka 2.12's re-authentication fails against Kafka 4.4 (docs/security.md).
    pub fn broker_settings(&self) -> (String, String) {
        let properties = [
            "listener.name.sasl_plaintext.oauthbearer.sasl.server.callback.handler.class=\
             org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler"
                .to_string(),
            format!("sasl.oauthbearer.jwks.endpoint.url={}", self.jwks_url()),
            format!("sasl.oauthbearer.expected.audience={AUDIENCE}"),
            format!("sasl.oauthbearer.expected.issuer={ISSUER}"),
            "sasl.oauthbearer.clock.skew.seconds=0".to_string(),
        ];
        let jvm = format!("-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls={}", self.jwks_url());
        (properties.join(" "), jvm)
    }
}

impl Drop for OAuthServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn jwks(State(issuer): State<Arc<Issuer>>) -> Json<Value> {
    Json(json!({"keys": [issuer.jwk]}))
}

async fn token(State(issuer): State<Arc<Issuer>>, headers: HeaderMap, body: String) -> axum::response::Response {
    let form: Vec<(String, String)> = form_pairs(&body);
    let grant = form.iter().find(|(name, _)| name == "grant_type").map(|(_, value)| value.as_str());
    if grant != Some("client_credentials") {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "unsupported_grant_type"}))).into_response();
    }
    let basic = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Basic "))
        .and_then(|encoded| STANDARD.decode(encoded).ok())
        .and_then(|decoded| String::from_utf8(decoded).ok());
    let (id, secret) = basic.as_deref().and_then(|pair| pair.split_once(':')).unwrap_or_default();
    if decode(id) != issuer.client_id || decode(secret) != issuer.client_secret {
        issuer.refused.fetch_add(1, Ordering::SeqCst);
        // Some servers echo what they were sent: the gateway must not repeat it.
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client", "error_description": format!("bad secret {secret}")})),
        )
            .into_response();
    }
    let scope = form.iter().find(|(name, _)| name == "scope").map(|(_, value)| value.clone()).unwrap_or_default();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs();
    let claims = json!({
        "sub": issuer.client_id, "iat": now, "exp": now + issuer.lifetime.as_secs(),
        "scope": scope, "iss": ISSUER, "aud": AUDIENCE,
    });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(KEY_ID.to_string());
    let jwt = jsonwebtoken::encode(&header, &claims, &issuer.signing_key).expect("sign");
    issuer.issued.fetch_add(1, Ordering::SeqCst);
    Json(json!({"access_token": jwt, "token_type": "Bearer", "expires_in": issuer.lifetime.as_secs()})).into_response()
}

fn form_pairs(body: &str) -> Vec<(String, String)> {
    body.split('&').filter_map(|pair| pair.split_once('=')).map(|(name, value)| (decode(name), decode(value))).collect()
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => out.push(b' '),
            b'%' if index + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[index + 1..index + 3]).ok();
                match hex.and_then(|hex| u8::from_str_radix(hex, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        index += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
