//! Plans, as a user runs them: `kafka-edge run` with api-key and jwt plans on a real broker. Keys
//! are issued through the admin API and a `--api-keys` file, JWTs are verified against a JWKS
//! served by a local HTTP server; what is checked is what a client sees (status, error body,
//! `WWW-Authenticate`, events) and what lands on the broker (records, their headers, the consumer
//! group a client's offsets are committed under).

mod common;

use common::*;
use eventsource_stream::Eventsource;
use futures::StreamExt;
use jsonwebtoken::{encode, EncodingKey, Header};
use rdkafka::message::{Headers as _, Message as _};
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

const BINARY: &str = env!("CARGO_BIN_EXE_kafka-edge");
const ADMIN_TOKEN: &str = "plans-admin-t0ken";

/// A definition with http-post (record headers from the request), http-get and sse on `topic`.
fn definition(api: &str, topic: &str, plans: Value) -> Value {
    json!({
        "id": api, "name": api, "definitionVersion": "4.0.0", "type": "message",
        "listeners": [{"type": "http", "paths": [{"path": format!("/{api}")}], "entrypoints": [
            {"type": "http-post", "configuration": {"requestHeadersToMessage": true}},
            {"type": "http-get", "configuration": {"messagesLimitCount": 10, "messagesLimitDurationMs": 1000}},
            {"type": "sse"},
            {"type": "websocket"}
        ]}],
        "endpointGroups": [{"name": "default", "type": "kafka",
            "sharedConfiguration": {"consumer": {"enabled": true, "topics": [topic], "autoOffsetReset": "earliest"},
                                    "producer": {"enabled": true, "topics": [topic]}},
            "endpoints": [{"name": "default", "type": "kafka", "configuration": {"bootstrapServers": bootstrap()}}]}],
        "plans": plans
    })
}

/// `kafka-edge run` serving `definitions`, with a file state and the admin API.
struct Edge {
    base: String,
    admin: String,
    child: Child,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Edge {
    async fn start(definitions: &[Value], api_keys: Option<Value>) -> Self {
        Self::start_with(definitions, api_keys, &[]).await
    }

    async fn start_with(definitions: &[Value], api_keys: Option<Value>, arguments: &[String]) -> Self {
        let dir = tempfile::tempdir().expect("dir");
        let (port, admin_port) = (free_port(), free_port());
        let mut command = Command::new(BINARY);
        command
            .args([
                "run",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--admin-listen",
                &format!("127.0.0.1:{admin_port}"),
            ])
            .args(arguments)
            .env("KAFKA_EDGE_ADMIN_TOKEN", ADMIN_TOKEN)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (index, definition) in definitions.iter().enumerate() {
            let file = dir.path().join(format!("api-{index}.json"));
            std::fs::write(&file, definition.to_string()).expect("write definition");
            command.arg("--api").arg(file);
        }
        if let Some(keys) = api_keys {
            let file = dir.path().join("keys.json");
            std::fs::write(&file, keys.to_string()).expect("write keys");
            command.arg("--api-keys").arg(file);
        }
        if !arguments.iter().any(|argument| argument == "--state") {
            command.arg("--state").arg(format!("file:{}", dir.path().join("state.json").display()));
        }
        let child = command.spawn().expect("start gateway");
        let edge = Self {
            base: format!("http://127.0.0.1:{port}"),
            admin: format!("http://127.0.0.1:{admin_port}"),
            child,
            http: reqwest::Client::new(),
            _dir: dir,
        };
        let mut ready = false;
        for _ in 0..300 {
            let served = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok();
            let admin = edge.http.get(format!("{}/nothing", edge.admin)).send().await.is_ok();
            if served && admin {
                ready = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(ready, "the gateway did not start listening");
        edge
    }

    async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.admin)).bearer_auth(ADMIN_TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("admin call");
        let status = response.status().as_u16();
        let text = response.text().await.expect("admin body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Status, JSON body and `WWW-Authenticate` values of a response.
async fn answer(response: reqwest::Response) -> (u16, Value, Vec<String>) {
    let status = response.status().as_u16();
    let challenges = response
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().expect("header").to_string())
        .collect();
    let body = serde_json::from_str(&response.text().await.expect("body")).unwrap_or(Value::Null);
    (status, body, challenges)
}

fn header_names(record: &rdkafka::message::OwnedMessage) -> Vec<String> {
    record.headers().map_or_else(Vec::new, |headers| headers.iter().map(|h| h.key.to_ascii_lowercase()).collect())
}

#[tokio::test]
async fn api_keys_admit_identify_and_revoke() {
    let topic = unique("plans-keys");
    create_topic(&topic, 1).await;
    let (api, other_api) = (unique("keys"), unique("other"));
    let plans = json!([{"id": "keyed", "name": "keyed", "security": {"type": "api-key"}, "status": "PUBLISHED"}]);
    let other_topic = unique("plans-other");
    let static_key = "static-key-0123456789";
    let keys_file = json!([{"api": api, "key": static_key, "plan": "keyed", "subscription": "static-sub"}]);
    let edge = Edge::start(
        &[definition(&api, &topic, plans.clone()), definition(&other_api, &other_topic, plans)],
        Some(keys_file),
    )
    .await;
    let url = format!("{}/{api}", edge.base);

    let (status, body, challenges) = answer(edge.http.post(&url).body("no key").send().await.expect("POST")).await;
    assert_eq!((status, body["key"].as_str()), (401, Some("API_KEY_MISSING")), "{body}");
    assert!(challenges.iter().any(|c| c.starts_with("ApiKey")), "{challenges:?}");
    let wrong = edge.http.post(&url).header("X-Gravitee-Api-Key", "not-a-known-key").body("x").send().await;
    let (status, body, _) = answer(wrong.expect("POST")).await;
    assert_eq!((status, body["key"].as_str()), (401, Some("API_KEY_INVALID")), "{body}");

    // Issued keys: one generated, one chosen; the answer is the only place the key is shown.
    let (status, generated) =
        edge.admin(reqwest::Method::POST, &format!("/apis/{api}/keys"), Some(json!({"plan": "keyed"}))).await;
    assert_eq!(status, 201, "{generated}");
    let generated_key = generated["key"].as_str().expect("generated key").to_string();
    assert!(generated_key.len() >= 43, "{generated_key}");
    let chosen = json!({"key": "chosen-key-abcdef", "plan": "keyed", "subscription": "sub-chosen"});
    let (status, created) = edge.admin(reqwest::Method::POST, &format!("/apis/{api}/keys"), Some(chosen.clone())).await;
    assert_eq!((status, created["subscription"].as_str()), (201, Some("sub-chosen")), "{created}");
    let (status, _) = edge.admin(reqwest::Method::POST, &format!("/apis/{api}/keys"), Some(chosen)).await;
    assert_eq!(status, 409, "the same key twice");
    let (status, refused) = edge
        .admin(reqwest::Method::POST, &format!("/apis/{api}/keys"), Some(json!({"plan": "nope", "key": "x"})))
        .await;
    assert_eq!((status, refused["field"].as_str()), (400, Some("plan")), "{refused}");
    let (_, listed) = edge.admin(reqwest::Method::GET, &format!("/apis/{api}/keys"), None).await;
    let listed = listed.as_array().expect("list").clone();
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert!(listed
        .iter()
        .all(|key| key.get("key").is_none() && key["keyHash"].as_str().unwrap().starts_with("sha256:")));

    // Accepted by header and by query parameter; the key reaches no record header.
    let posted = edge.http.post(&url).header("X-Gravitee-Api-Key", &generated_key).body("by header").send().await;
    assert_eq!(posted.expect("POST").status(), 202);
    let posted = edge.http.post(format!("{url}?api-key=chosen-key-abcdef")).body("by query").send().await;
    assert_eq!(posted.expect("POST").status(), 202);
    let posted = edge.http.post(&url).header("X-Gravitee-Api-Key", static_key).body("by static key").send().await;
    assert_eq!(posted.expect("POST").status(), 202);
    let records = read_records(&topic, 3);
    assert_eq!(records.iter().map(payload).collect::<Vec<_>>(), ["by header", "by query", "by static key"]);
    for record in &records {
        assert!(!header_names(record).contains(&"x-gravitee-api-key".to_string()), "{:?}", header_names(record));
    }

    // The key's subscription is the client identifier, so the consumer group: two keys, two groups.
    for (key, group) in
        [(generated_key.as_str(), generated["subscription"].as_str().unwrap()), ("chosen-key-abcdef", "sub-chosen")]
    {
        let got =
            edge.http.get(&url).header("X-Gravitee-Api-Key", key).header("Accept", "application/json").send().await;
        let got: Value = got.expect("GET").json().await.expect("JSON");
        assert_eq!(contents(&got).len(), 3, "{got}");
        assert_eq!(committed_offset(group, &topic, 0), Some(3), "group {group}");
    }

    // One key from another address is the same client: its GET continues in the same group.
    produce(&topic, &[(None, "later")]).await;
    let elsewhere =
        reqwest::Client::builder().local_address("127.0.0.2".parse::<std::net::IpAddr>().ok()).build().expect("client");
    let got = elsewhere
        .get(&url)
        .header("X-Gravitee-Api-Key", "chosen-key-abcdef")
        .header("Accept", "application/json")
        .send()
        .await;
    assert_eq!(contents(&got.expect("GET from 127.0.0.2").json().await.expect("JSON")), ["later"]);
    assert_eq!(committed_offset("sub-chosen", &topic, 0), Some(4));

    // A key of another API is refused.
    let (_, foreign) =
        edge.admin(reqwest::Method::POST, &format!("/apis/{other_api}/keys"), Some(json!({"plan": "keyed"}))).await;
    let foreign_key = foreign["key"].as_str().expect("key");
    let (status, _, _) =
        answer(edge.http.post(&url).header("X-Gravitee-Api-Key", foreign_key).body("x").send().await.expect("POST"))
            .await;
    assert_eq!(status, 401);

    // Revoking ends the key's open stream with a reason, and its next request is refused.
    let stream = edge
        .http
        .get(&url)
        .header("Accept", "text/event-stream")
        .header("X-Gravitee-Api-Key", "chosen-key-abcdef")
        .send()
        .await
        .expect("SSE");
    assert_eq!(stream.status(), 200);
    let mut events = stream.bytes_stream().eventsource();
    let (status, _) = edge.admin(reqwest::Method::DELETE, &format!("/apis/{api}/keys/chosen-key-abcdef"), None).await;
    assert_eq!(status, 204);
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Some(Ok(event)) = events.next().await {
            if event.event == "error" {
                return Some(event.data);
            }
        }
        None
    })
    .await
    .expect("the stream ends after the revocation");
    assert!(ended.is_some_and(|data| data.contains("revoked")), "an error event names the revocation");
    let again = edge.http.post(format!("{url}?api-key=chosen-key-abcdef")).body("x").send().await.expect("POST");
    assert_eq!(again.status(), 401);
    // Revocation by hash, for a key nobody kept.
    let hash = listed.iter().find(|k| k["subscription"] == "static-sub").expect("static key")["keyHash"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = edge.admin(reqwest::Method::DELETE, &format!("/apis/{api}/keys/{hash}"), None).await;
    assert_eq!(status, 204);
    let again = edge.http.post(&url).header("X-Gravitee-Api-Key", static_key).body("x").send().await.expect("POST");
    assert_eq!(again.status(), 401);
    assert_eq!(record_count(&topic), 4, "no refused request produced");
}

/// A JWKS server whose key set can be replaced (key rotation).
async fn jwks_server(keys: Arc<Mutex<Value>>) -> String {
    let app = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            let keys = keys.clone();
            async move { axum::Json(keys.lock().expect("test setup").clone()) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/jwks", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("jwks") });
    url
}

/// An RSA key pair: the signing key and its JWK with `kid`.
fn rsa_key(kid: &str) -> (EncodingKey, Value, String) {
    use base64::Engine as _;
    let rsa = openssl::rsa::Rsa::generate(2048).expect("rsa");
    let private = rsa.private_key_to_pem().expect("pem");
    let public_pem = String::from_utf8(rsa.public_key_to_pem().expect("public pem")).expect("utf-8");
    let b64 = |bytes: Vec<u8>| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let jwk = json!({"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
        "n": b64(rsa.n().to_vec()), "e": b64(rsa.e().to_vec())});
    (EncodingKey::from_rsa_pem(&private).expect("encoding key"), jwk, public_pem)
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs()
}

fn rs256(key: &EncodingKey, kid: &str, claims: Value) -> String {
    let mut header = Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(kid.into());
    encode(&header, &claims, key).expect("sign")
}

#[tokio::test]
async fn jwt_plans_verify_tokens_from_a_jwks_and_name_the_client() {
    let topic = unique("plans-jwt");
    create_topic(&topic, 1).await;
    let api = unique("jwt");
    let (first, first_jwk, public_pem) = rsa_key("k1");
    let keys = Arc::new(Mutex::new(json!({"keys": [first_jwk]})));
    let jwks = jwks_server(keys.clone()).await;
    let plans = json!([{
        "id": "tokens", "name": "tokens", "status": "PUBLISHED",
        "security": {"type": "jwt", "configuration": {"signature": "RSA_RS256", "publicKeyResolver": "JWKS_URL",
            "resolverParameter": jwks, "extractClaims": true, "propagateAuthHeader": false}},
        "flows": [{"name": "tenant", "publish": [{"name": "tenant", "policy": "transform-headers",
            "configuration": {"addHeaders": [{"name": "X-Tenant", "value": "{#context.attributes['jwt.claims']['tenant']}"}]}}]}]
    }]);
    let edge = Edge::start(&[definition(&api, &topic, plans)], None).await;
    let url = format!("{}/{api}", edge.base);
    let claims = |client: &str| json!({"azp": client, "sub": "alice", "tenant": "acme", "exp": now() + 300});

    let good = rs256(&first, "k1", claims("client-a"));
    let posted = edge.http.post(&url).bearer_auth(&good).body("signed").send().await.expect("POST");
    assert_eq!(posted.status(), 202);
    let record = read_records(&topic, 1).remove(0);
    assert_eq!(payload(&record), "signed");
    assert!(!header_names(&record).contains(&"authorization".to_string()), "{:?}", header_names(&record));
    let tenant =
        record.headers().and_then(|h| h.iter().find(|h| h.key == "X-Tenant").and_then(|h| h.value.map(<[u8]>::to_vec)));
    assert_eq!(tenant.as_deref(), Some(b"acme".as_slice()), "the plan's flow read the extracted claims");

    // The client id claim is the client identifier: the GET commits under the group `client-a`.
    let got = edge.http.get(format!("{url}?access_token={good}")).header("Accept", "application/json").send().await;
    assert_eq!(contents(&got.expect("GET").json().await.expect("JSON")), ["signed"]);
    assert_eq!(committed_offset("client-a", &topic, 0), Some(1));

    // Refused: missing, expired, forged, alg none, and an HMAC token made with the RSA public key.
    let refused = |token: Option<String>| {
        let mut request = edge.http.post(&url).body("refused");
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { answer(request.send().await.expect("POST")).await }
    };
    let (status, body, challenges) = refused(None).await;
    assert_eq!((status, body["key"].as_str()), (401, Some("JWT_MISSING_TOKEN")), "{body}");
    assert!(challenges.iter().any(|c| c.starts_with("Bearer")), "{challenges:?}");
    let expired = rs256(&first, "k1", json!({"azp": "client-a", "exp": now() - 3600}));
    let (status, body, challenges) = refused(Some(expired)).await;
    assert_eq!(status, 401);
    assert!(body["message"].as_str().unwrap().contains("expired"), "{body}");
    assert!(challenges.iter().any(|c| c.contains("invalid_token")), "{challenges:?}");
    let (forger, _, _) = rsa_key("k1");
    let (status, body, _) = refused(Some(rs256(&forger, "k1", claims("client-a")))).await;
    assert_eq!(status, 401, "{body}");
    use base64::Engine as _;
    let b64 = |value: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string());
    let unsigned = format!("{}.{}.", b64(json!({"alg": "none", "typ": "JWT"})), b64(claims("client-a")));
    assert_eq!(refused(Some(unsigned)).await.0, 401);
    let mut hmac_header = Header::new(jsonwebtoken::Algorithm::HS256);
    hmac_header.kid = Some("k1".into());
    let confused =
        encode(&hmac_header, &claims("client-a"), &EncodingKey::from_secret(public_pem.as_bytes())).expect("sign");
    let (status, body, _) = refused(Some(confused)).await;
    assert_eq!(status, 401, "{body}");
    assert!(body["message"].as_str().unwrap().contains("HS256"), "{body}");

    // Key rotation: a token signed by a new key is accepted once the JWKS publishes it.
    let (second, second_jwk, _) = rsa_key("k2");
    *keys.lock().expect("test setup") = json!({"keys": [second_jwk]});
    let rotated = rs256(&second, "k2", claims("client-b"));
    let posted = edge.http.post(&url).bearer_auth(&rotated).body("rotated").send().await.expect("POST");
    assert_eq!(posted.status(), 202);
    assert_eq!(record_count(&topic), 2, "only the two admitted requests produced");
}

#[tokio::test]
async fn several_plans_pick_by_credential_and_never_fall_back_to_key_less() {
    let topic = unique("plans-mixed");
    create_topic(&topic, 1).await;
    let api = unique("mixed");
    let secret = "a-shared-hmac-secret-of-32-bytes!";
    let plans = json!([
        {"id": "hmac", "name": "hmac", "security": {"type": "jwt", "configuration": {"signature": "HMAC_HS256", "resolverParameter": secret}}},
        {"id": "keys", "name": "keys", "security": {"type": "api-key"}},
        {"id": "open", "name": "open", "security": {"type": "key-less"}},
        {"id": "old", "name": "old", "security": {"type": "key-less"}, "status": "CLOSED", "selectionRule": "#request.headers['x-never'] != null"}
    ]);
    let edge = Edge::start(&[definition(&api, &topic, plans)], None).await;
    let url = format!("{}/{api}", edge.base);
    assert_eq!(
        edge.http.post(&url).body("anonymous").send().await.expect("POST").status(),
        202,
        "key-less serves the anonymous"
    );
    let token = encode(
        &Header::default(),
        &json!({"client_id": "svc", "exp": now() + 60}),
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign");
    assert_eq!(edge.http.post(&url).bearer_auth(&token).body("hmac").send().await.expect("POST").status(), 202);
    let wrong = encode(&Header::default(), &json!({"client_id": "svc"}), &EncodingKey::from_secret(b"another secret"))
        .expect("sign");
    assert_eq!(
        edge.http.post(&url).bearer_auth(&wrong).body("x").send().await.expect("POST").status(),
        401,
        "a bad JWT is not key-less"
    );
    let keyed = edge.http.post(&url).header("X-Gravitee-Api-Key", "unknown-key-123").body("x").send().await;
    assert_eq!(keyed.expect("POST").status(), 401, "an unknown key is not key-less");
    assert_eq!(record_count(&topic), 2);
}

#[tokio::test]
async fn a_selection_rule_decides_whether_its_plan_takes_a_request() {
    let topic = unique("plans-rule");
    create_topic(&topic, 1).await;
    let api = unique("rule");
    let plans = json!([{"id": "gold", "name": "gold", "security": {"type": "key-less"},
        "selectionRule": "{#request.headers['x-tier'] != null && #request.headers['x-tier'][0] == 'gold'}"}]);
    let edge = Edge::start(&[definition(&api, &topic, plans)], None).await;
    let url = format!("{}/{api}", edge.base);
    let (status, body, _) = answer(edge.http.post(&url).body("x").send().await.expect("POST")).await;
    assert_eq!((status, body["key"].as_str()), (401, Some("GATEWAY_PLAN_UNRESOLVABLE")), "{body}");
    let silver = edge.http.post(&url).header("X-Tier", "silver").body("x").send().await.expect("POST");
    assert_eq!(silver.status(), 401);
    let gold = edge.http.post(&url).header("X-Tier", "gold").body("gold").send().await.expect("POST");
    assert_eq!(gold.status(), 202);
    assert_eq!(record_count(&topic), 1);
}

fn certs() -> std::path::PathBuf {
    std::path::PathBuf::from(std::env::var("KAFKA_EDGE_TESTKIT_CERTS").expect("run the tests with scripts/test"))
}

/// An HTTPS client trusting the test bed's CA, presenting the certificate `identity` if any.
fn tls_client(identity: Option<&str>) -> reqwest::Client {
    let ca = std::fs::read(certs().join("ca.pem")).expect("CA");
    let mut builder = reqwest::Client::builder().add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("CA"));
    if let Some(name) = identity {
        let chain = std::fs::read(certs().join(format!("{name}.chain.pem"))).expect("chain");
        let key = std::fs::read(certs().join(format!("{name}.key.pem"))).expect("key");
        builder = builder.identity(reqwest::Identity::from_pkcs8_pem(&chain, &key).expect("identity"));
    }
    builder.build().expect("client")
}

#[tokio::test]
async fn mtls_plans_admit_registered_certificates_only() {
    let topic = unique("plans-mtls");
    create_topic(&topic, 1).await;
    let api = unique("mtls");
    let plans = json!([{"id": "devices", "name": "devices", "security": {"type": "mtls"}}]);
    let path = |name: &str| certs().join(name).display().to_string();
    let arguments = [
        "--tls-cert".to_string(),
        path("broker.cert.pem"),
        "--tls-key".into(),
        path("broker.key.pem"),
        "--tls-client-ca".into(),
        path("ca.pem"),
        "--tls-client-auth".into(),
        "optional".into(),
    ];
    let edge = Edge::start_with(&[definition(&api, &topic, plans)], None, &arguments).await;
    let url = format!("{}/{api}", edge.base.replace("http://127.0.0.1", "https://localhost"));
    let (device, anonymous) = (tls_client(Some("client")), tls_client(None));

    let (status, body, _) = answer(anonymous.post(&url).body("x").send().await.expect("POST")).await;
    assert_eq!((status, body["key"].as_str()), (401, Some("CLIENT_CERTIFICATE_MISSING")), "{body}");
    let (status, body, _) = answer(device.post(&url).body("x").send().await.expect("POST")).await;
    assert_eq!((status, body["key"].as_str()), (401, Some("CLIENT_CERTIFICATE_INVALID")), "{body}");

    let pem = std::fs::read_to_string(certs().join("client.cert.pem")).expect("certificate");
    let registration = json!({"certificate": pem, "plan": "devices", "subscription": "device-1"});
    let (status, registered) =
        edge.admin(reqwest::Method::POST, &format!("/apis/{api}/certificates"), Some(registration)).await;
    assert_eq!(status, 201, "{registered}");
    let fingerprint = registered["fingerprint"].as_str().expect("fingerprint").to_string();
    assert!(fingerprint.starts_with("sha256:") && fingerprint.len() == 71, "{fingerprint}");

    assert_eq!(device.post(&url).body("from the device").send().await.expect("POST").status(), 202);
    let got = device.get(&url).header("Accept", "application/json").send().await.expect("GET");
    assert_eq!(contents(&got.json().await.expect("JSON")), ["from the device"]);
    assert_eq!(committed_offset("device-1", &topic, 0), Some(1), "the registration's subscription is the group");

    let stream = device.get(&url).header("Accept", "text/event-stream").send().await.expect("SSE");
    assert_eq!(stream.status(), 200);
    let mut events = stream.bytes_stream().eventsource();
    let (status, _) =
        edge.admin(reqwest::Method::DELETE, &format!("/apis/{api}/certificates/{fingerprint}"), None).await;
    assert_eq!(status, 204);
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Some(Ok(event)) = events.next().await {
            if event.event == "error" {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(ended, Ok(true), "the stream of an unregistered certificate ends with an error event");
    assert_eq!(device.post(&url).body("x").send().await.expect("POST").status(), 401);
    assert_eq!(record_count(&topic), 1);
}

/// What an introspection server saw: the token of each call and its Authorization header.
type Introspections = Arc<Mutex<Vec<(String, String)>>>;

/// An RFC 7662 endpoint: `good-*` tokens are active for client `svc-<rest>` with scope
/// `orders:write`, `narrow` is active without it, everything else inactive. It reads the token
/// from the form body, as the plan's resource sends it.
async fn introspection_server() -> (Introspections, String) {
    let seen: Introspections = Default::default();
    let recorded = seen.clone();
    let app = axum::Router::new().route(
        "/oauth/introspect",
        axum::routing::post(
            move |headers: http::HeaderMap, axum::Form(form): axum::Form<std::collections::HashMap<String, String>>| {
                let recorded = recorded.clone();
                async move {
                    let token = form.get("token").cloned().unwrap_or_default();
                    let auth =
                        headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                    recorded.lock().expect("test setup").push((token.clone(), auth));
                    let answer = match token.strip_prefix("good-") {
                        Some(client) => json!({"active": true, "client_id": format!("svc-{client}"), "sub": "bob",
                        "scope": "orders:read orders:write", "exp": now() + 600}),
                        None if token == "narrow" => {
                            json!({"active": true, "client_id": "svc-narrow", "scope": "orders:read"})
                        }
                        None => json!({"active": false}),
                    };
                    axum::Json(answer)
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("introspection") });
    (seen, url)
}

#[tokio::test]
async fn oauth2_plans_introspect_tokens_once_and_check_scopes() {
    let topic = unique("plans-oauth2");
    create_topic(&topic, 1).await;
    let api = unique("oauth2");
    let (seen, server) = introspection_server().await;
    let mut definition = definition(
        &api,
        &topic,
        json!([{"id": "tokens", "name": "tokens",
        "security": {"type": "oauth2", "configuration": {"oauthResource": "idp", "checkRequiredScopes": true,
            "requiredScopes": ["orders:write"], "propagateAuthHeader": false}}}]),
    );
    definition["resources"] = json!([{"name": "idp", "type": "oauth2", "enabled": true, "configuration": {
        "authorizationServerUrl": server, "introspectionEndpoint": "/oauth/introspect", "introspectionEndpointMethod": "POST",
        "clientId": "gateway", "clientSecret": "introspection-s3cret", "tokenIsSuppliedByQueryParam": false,
        "tokenIsSuppliedByFormUrlEncoded": true}}]);
    let edge = Edge::start(&[definition], None).await;
    let url = format!("{}/{api}", edge.base);

    for body in ["first", "second"] {
        let posted = edge.http.post(&url).bearer_auth("good-a").body(body).send().await.expect("POST");
        assert_eq!(posted.status(), 202);
    }
    assert_eq!(seen.lock().unwrap().len(), 1, "the second request used the cached introspection");
    let (token, auth) = seen.lock().unwrap()[0].clone();
    assert_eq!(token, "good-a");
    use base64::Engine as _;
    assert_eq!(
        auth,
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("gateway:introspection-s3cret"))
    );
    let records = read_records(&topic, 2);
    assert!(records.iter().all(|r| !header_names(r).contains(&"authorization".to_string())));
    let got = edge.http.get(&url).bearer_auth("good-a").header("Accept", "application/json").send().await.expect("GET");
    assert_eq!(contents(&got.json().await.expect("JSON")), ["first", "second"]);
    assert_eq!(committed_offset("svc-a", &topic, 0), Some(2), "the introspected client_id is the group");

    let (status, body, challenges) =
        answer(edge.http.post(&url).bearer_auth("revoked").body("x").send().await.expect("POST")).await;
    assert_eq!((status, body["key"].as_str()), (401, Some("OAUTH2_INVALID_ACCESS_TOKEN")), "{body}");
    assert!(challenges.iter().any(|c| c.contains("invalid_token")), "{challenges:?}");
    let (status, body, challenges) =
        answer(edge.http.post(&url).bearer_auth("narrow").body("x").send().await.expect("POST")).await;
    assert_eq!((status, body["key"].as_str()), (403, Some("OAUTH2_INSUFFICIENT_SCOPE")), "{body}");
    assert!(challenges.iter().any(|c| c.contains("insufficient_scope")), "{challenges:?}");
    let (status, body, _) = answer(edge.http.post(&url).body("x").send().await.expect("POST")).await;
    assert_eq!((status, body["key"].as_str()), (401, Some("OAUTH2_MISSING_HEADER")), "{body}");
    assert_eq!(record_count(&topic), 2);
}

#[tokio::test]
async fn an_unreachable_introspection_endpoint_is_a_503() {
    let api = unique("oauth2-down");
    let topic = unique("plans-oauth2-down");
    let port = free_port();
    let mut definition = definition(
        &api,
        &topic,
        json!([{"id": "tokens", "name": "tokens",
        "security": {"type": "oauth2", "configuration": {"oauthResource": "idp"}}}]),
    );
    definition["resources"] = json!([{"name": "idp", "type": "oauth2", "configuration": {
        "authorizationServerUrl": format!("http://127.0.0.1:{port}"), "introspectionEndpoint": "/introspect",
        "clientId": "gateway", "clientSecret": "s3cret"}}]);
    let edge = Edge::start(&[definition], None).await;
    let posted = edge.http.post(format!("{}/{api}", edge.base)).bearer_auth("some-token").body("x").send().await;
    let (status, body, _) = answer(posted.expect("POST")).await;
    assert_eq!((status, body["key"].as_str()), (503, Some("OAUTH2_SERVER_UNAVAILABLE")), "{body}");
    assert!(!body.to_string().contains("s3cret") && !body.to_string().contains("some-token"), "{body}");
}

#[tokio::test]
async fn a_key_revoked_on_one_gateway_is_refused_by_another_sharing_the_state() {
    let topic = unique("plans-fleet");
    create_topic(&topic, 1).await;
    let api = unique("fleet");
    let plans = json!([{"id": "keyed", "name": "keyed", "security": {"type": "api-key"}}]);
    let state = ["--state".to_string(), format!("kafka://{}/{}", bootstrap(), unique("state"))];
    let first = Edge::start_with(&[definition(&api, &topic, plans.clone())], None, &state).await;
    let second = Edge::start_with(&[definition(&api, &topic, plans)], None, &state).await;
    let (status, created) =
        first.admin(reqwest::Method::POST, &format!("/apis/{api}/keys"), Some(json!({"plan": "keyed"}))).await;
    assert_eq!(status, 201, "{created}");
    let key = created["key"].as_str().expect("key").to_string();
    let post = |edge: &Edge| {
        edge.http.post(format!("{}/{api}", edge.base)).header("X-Gravitee-Api-Key", &key).body("m").send()
    };
    let mut admitted = false;
    for _ in 0..100 {
        if post(&second).await.is_ok_and(|r| r.status() == 202) {
            admitted = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(admitted, "the second gateway admits a key issued through the first");
    let stream = second
        .http
        .get(format!("{}/{api}", second.base))
        .header("Accept", "text/event-stream")
        .header("X-Gravitee-Api-Key", &key)
        .send()
        .await
        .expect("SSE");
    let mut events = stream.bytes_stream().eventsource();
    let (status, _) = first.admin(reqwest::Method::DELETE, &format!("/apis/{api}/keys/{key}"), None).await;
    assert_eq!(status, 204);
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Some(Ok(event)) = events.next().await {
            if event.event == "error" && event.data.contains("revoked") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(ended, Ok(true), "the second gateway ends the key's stream");
    assert_eq!(post(&second).await.expect("POST").status(), 401);
}

#[tokio::test]
async fn a_websocket_session_ends_with_1008_when_its_key_is_revoked() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    use tokio_tungstenite::tungstenite::Message;
    let topic = unique("plans-ws");
    create_topic(&topic, 1).await;
    let api = unique("ws-keys");
    let plans = json!([{"id": "keyed", "name": "keyed", "security": {"type": "api-key"}}]);
    let edge = Edge::start(&[definition(&api, &topic, plans)], None).await;
    let (_, created) =
        edge.admin(reqwest::Method::POST, &format!("/apis/{api}/keys"), Some(json!({"plan": "keyed"}))).await;
    let key = created["key"].as_str().expect("key").to_string();
    let url = format!("{}/{api}", edge.base.replace("http://", "ws://"));
    let refused = tokio_tungstenite::connect_async(url.as_str()).await;
    assert!(
        matches!(&refused, Err(tokio_tungstenite::tungstenite::Error::Http(response)) if response.status() == 401),
        "an upgrade without the key is refused with 401"
    );
    let mut request = url.into_client_request().expect("request");
    request.headers_mut().insert("X-Gravitee-Api-Key", key.parse().expect("header"));
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.expect("upgrade with the key");
    let (status, _) = edge.admin(reqwest::Method::DELETE, &format!("/apis/{api}/keys/{key}"), None).await;
    assert_eq!(status, 204);
    let closed = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Some(Ok(frame)) = socket.next().await {
            if let Message::Close(frame) = frame {
                return frame;
            }
        }
        None
    })
    .await
    .expect("a close frame in time")
    .expect("a close frame with a code");
    assert_eq!(closed.code, CloseCode::Policy);
    assert!(closed.reason.contains("revoked"), "{}", closed.reason);
}
