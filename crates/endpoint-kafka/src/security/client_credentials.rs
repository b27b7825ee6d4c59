//! OAUTHBEARER tokens from an OAuth 2 token endpoint with the client credentials grant (RFC 6749
//! §4.4; Kafka's KIP-768), for clusters that validate JWTs: Confluent Cloud, Strimzi with
//! Keycloak, any OIDC provider. One token per (endpoint, client, secret, scope) serves the whole
//! process: it is fetched when the first client needs it and refreshed in the background before
//! it expires, so a consumer per request does not mean a token request per request, and
//! librdkafka's token callbacks, which must not block, only read it.

use super::error_chain;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rdkafka::client::OAuthToken;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A token request that takes longer fails.
const TIMEOUT: Duration = Duration::from_secs(10);
/// A token is renewed once half its lifetime has passed, and a new client never gets one that
/// old: a client logs in to several brokers (and its group coordinator) in the seconds after it
/// is created, each time with the token it got then, and librdkafka asks for the next one at
/// 80 % of that token's lifetime.
const RENEW_AT: f64 = 0.5;
/// Lifetime of a token whose expiry the endpoint does not give (neither `expires_in` nor `exp`).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);
/// Longest wait between two tries while the endpoint fails.
const MAX_RETRY: Duration = Duration::from_secs(30);
/// Bytes of an answer read, at most.
const MAX_RESPONSE: usize = 64 * 1024;

/// The JAAS options of a client credentials login. Part of a client's identity: `Debug` never
/// shows the secret.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct ClientCredentials {
    pub token_endpoint: String,
    pub client_id: String,
    pub client_secret: String,
    pub scope: Option<String>,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("token_endpoint", &self.token_endpoint)
            .field("client_id", &self.client_id)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// A token the endpoint issued.
#[derive(Clone)]
struct Issued {
    token: String,
    principal: String,
    issued_at: SystemTime,
    expires_at: SystemTime,
}

impl Issued {
    fn renew_at(&self) -> SystemTime {
        let lifetime = self.expires_at.duration_since(self.issued_at).unwrap_or_default();
        self.issued_at + lifetime.mul_f64(RENEW_AT)
    }
}

/// The process's token for one set of client credentials.
pub(crate) struct SharedToken {
    credentials: ClientCredentials,
    current: Mutex<Option<Issued>>,
    /// Held while a request to the endpoint is out, so that concurrent first clients wait for one.
    fetching: tokio::sync::Mutex<()>,
}

impl SharedToken {
    /// The token of `credentials`, fetched now unless a fresh one is cached; the first use starts
    /// its background renewal, which ends when no client holds it any more.
    pub async fn get(credentials: &ClientCredentials) -> Result<Arc<SharedToken>, String> {
        static TOKENS: OnceLock<Mutex<HashMap<ClientCredentials, Weak<SharedToken>>>> = OnceLock::new();
        let (shared, created) = {
            let mut tokens = TOKENS.get_or_init(Default::default).lock().unwrap_or_else(PoisonError::into_inner);
            tokens.retain(|_, token| token.strong_count() > 0);
            match tokens.get(credentials).and_then(Weak::upgrade) {
                Some(shared) => (shared, false),
                None => {
                    let shared = Arc::new(SharedToken {
                        credentials: credentials.clone(),
                        current: Mutex::new(None),
                        fetching: tokio::sync::Mutex::new(()),
                    });
                    tokens.insert(credentials.clone(), Arc::downgrade(&shared));
                    (shared, true)
                }
            }
        };
        shared.ensure_fresh().await?;
        if created {
            tokio::spawn(renew(Arc::downgrade(&shared)));
        }
        Ok(shared)
    }

    /// What librdkafka's callback hands the broker; an error once the token expired and could not
    /// be renewed (the callback is asked again later). librdkafka is told the token lasts half
    /// its remaining time, so that it asks again early (at 80 % of that) and always holds a token
    /// with life left: it logs in again with the one it holds whenever a connection is re-made,
    /// which Kafka 4.4 forces when it refuses librdkafka's re-authentication (docs/security.md).
    pub fn token(&self, now: SystemTime) -> Result<OAuthToken, String> {
        let current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        match current.as_ref() {
            Some(issued) if issued.expires_at > now => Ok(OAuthToken {
                token: issued.token.clone(),
                principal_name: issued.principal.clone(),
                lifetime_ms: millis(now + issued.expires_at.duration_since(now).unwrap_or_default() / 2),
            }),
            Some(_) => {
                Err(format!("the OAuth token of client `{}` expired and was not renewed", self.credentials.client_id))
            }
            None => Err(format!("no OAuth token for client `{}`", self.credentials.client_id)),
        }
    }

    fn renew_at(&self) -> Option<SystemTime> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner).as_ref().map(Issued::renew_at)
    }

    async fn ensure_fresh(&self) -> Result<(), String> {
        let fresh = || self.renew_at().is_some_and(|renew_at| renew_at > SystemTime::now());
        if fresh() {
            return Ok(());
        }
        let _one_request = self.fetching.lock().await;
        if fresh() {
            return Ok(());
        }
        self.fetch().await
    }

    async fn fetch(&self) -> Result<(), String> {
        let issued = request_token(&self.credentials).await?;
        tracing::debug!(
            client_id = %self.credentials.client_id,
            expires_in_s = issued.expires_at.duration_since(issued.issued_at).unwrap_or_default().as_secs(),
            "OAuth token issued."
        );
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Some(issued);
        Ok(())
    }
}

/// Renews the token at `RENEW_AT` of its lifetime while anyone holds it; on failure, tries again
/// after 1, 2, 4 … 30 s, logging the first failure of a run and the recovery.
async fn renew(token: Weak<SharedToken>) {
    let mut failures: u32 = 0;
    loop {
        let wait = match failures {
            0 => {
                let Some(renew_at) = token.upgrade().and_then(|shared| shared.renew_at()) else { return };
                renew_at.duration_since(SystemTime::now()).unwrap_or_default()
            }
            n => Duration::from_secs(1 << (n - 1).min(5)).min(MAX_RETRY),
        };
        tokio::time::sleep(wait).await;
        let Some(shared) = token.upgrade() else { return };
        let renewed = {
            let _one_request = shared.fetching.lock().await;
            shared.fetch().await
        };
        match renewed {
            Ok(()) if failures > 0 => {
                tracing::info!(client_id = %shared.credentials.client_id, "OAuth token renewed again.");
                failures = 0;
            }
            Ok(()) => {}
            Err(reason) => {
                if failures == 0 {
                    tracing::warn!(client_id = %shared.credentials.client_id, %reason, "OAuth token not renewed; trying again.");
                }
                failures = failures.saturating_add(1);
            }
        }
    }
}

/// One token request: `grant_type=client_credentials` with the client authenticated by HTTP Basic
/// (id and secret form-encoded first, as RFC 6749 §2.3.1 and Kafka's own client do).
async fn request_token(credentials: &ClientCredentials) -> Result<Issued, String> {
    // Lifetimes count from the request, not the answer: the token may be older than it looks.
    let asked_at = SystemTime::now();
    let endpoint = &credentials.token_endpoint;
    let unreachable =
        |error: reqwest::Error| format!("token endpoint {endpoint} did not answer: {}", error_chain(&error));
    let encode = |text: &str| form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
    let basic = STANDARD.encode(format!("{}:{}", encode(&credentials.client_id), encode(&credentials.client_secret)));
    let body = {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "client_credentials");
        if let Some(scope) = &credentials.scope {
            form.append_pair("scope", scope);
        }
        form.finish()
    };
    let client = reqwest::Client::builder().timeout(TIMEOUT).build().map_err(unreachable)?;
    let response = client
        .post(endpoint.as_str())
        .header("authorization", format!("Basic {basic}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .body(body)
        .send()
        .await
        .map_err(unreachable)?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(unreachable)?;
    let answer: serde_json::Value = serde_json::from_slice(&bytes[..bytes.len().min(MAX_RESPONSE)]).unwrap_or_default();
    if !status.is_success() {
        // RFC 6749 §5.2's `error` code only: a description may echo what was sent.
        let code = answer.get("error").and_then(|code| code.as_str()).filter(|code| is_error_code(code));
        let code = code.map(|code| format!(" ({code})")).unwrap_or_default();
        return Err(format!(
            "token endpoint {endpoint} refused client `{}`: HTTP {status}{code}",
            credentials.client_id
        ));
    }
    issued(&answer, &credentials.client_id, asked_at)
        .ok_or_else(|| format!("token endpoint {endpoint} answered without an access_token"))
}

/// The token of an endpoint's answer: it expires at the earlier of `expires_in` and the JWT's
/// `exp` (the broker checks `exp`, which is in whole seconds); its principal is the JWT's `sub`,
/// else the client id.
fn issued(answer: &serde_json::Value, client_id: &str, now: SystemTime) -> Option<Issued> {
    let token = answer.get("access_token")?.as_str().filter(|token| !token.is_empty())?.to_string();
    let claims = jwt_claims(&token);
    let claim = |name: &str| claims.as_ref().and_then(|claims| claims.get(name).cloned());
    let by_expires_in =
        answer.get("expires_in").and_then(serde_json::Value::as_u64).map(|s| now + Duration::from_secs(s));
    let by_exp = claim("exp").and_then(|exp| exp.as_u64()).map(|exp| UNIX_EPOCH + Duration::from_secs(exp));
    let expires_at = match (by_expires_in, by_exp) {
        (Some(a), Some(b)) => a.min(b),
        (Some(at), None) | (None, Some(at)) => at,
        (None, None) => now + DEFAULT_LIFETIME,
    };
    let principal =
        claim("sub").and_then(|sub| sub.as_str().map(str::to_string)).unwrap_or_else(|| client_id.to_string());
    Some(Issued { token, principal, issued_at: now, expires_at })
}

/// The claims of a JWT, when the token is one (no signature check: the broker checks it).
pub(crate) fn jwt_claims(token: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        serde_json::Value::Object(claims) => Some(claims),
        _ => None,
    }
}

/// RFC 6749's error codes are short ASCII words; anything else is not repeated.
fn is_error_code(code: &str) -> bool {
    (1..=64).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
}

fn millis(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lifetime_comes_from_expires_in_and_exp_and_the_principal_from_sub() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let jwt = format!("e30.{}.sig", URL_SAFE_NO_PAD.encode(r#"{"sub":"svc-orders","exp":1700000600}"#));
        let with_expires_in = issued(&json!({"access_token": jwt, "expires_in": 300}), "client", now).unwrap();
        assert_eq!(with_expires_in.expires_at, now + Duration::from_secs(300));
        let exp_first = issued(&json!({"access_token": jwt, "expires_in": 900}), "client", now).unwrap();
        assert_eq!(exp_first.expires_at, now + Duration::from_secs(600), "the earlier of expires_in and exp");
        assert_eq!(with_expires_in.principal, "svc-orders");
        let from_exp = issued(&json!({"access_token": jwt}), "client", now).unwrap();
        assert_eq!(from_exp.expires_at, now + Duration::from_secs(600));
        let opaque = issued(&json!({"access_token": "opaque"}), "client", now).unwrap();
        assert_eq!((opaque.principal.as_str(), opaque.expires_at), ("client", now + DEFAULT_LIFETIME));
        assert_eq!(opaque.renew_at(), now + DEFAULT_LIFETIME.mul_f64(RENEW_AT));
        assert!(issued(&json!({"token_type": "Bearer"}), "client", now).is_none());
        assert!(issued(&json!({"access_token": ""}), "client", now).is_none());
    }

    #[test]
    fn the_secret_is_never_shown_and_only_error_codes_are_repeated() {
        let credentials = ClientCredentials {
            token_endpoint: "https://idp.example.com/token".into(),
            client_id: "orders".into(),
            client_secret: "s3cret-value".into(),
            scope: Some("kafka".into()),
        };
        assert!(!format!("{credentials:?}").contains("s3cret"));
        assert!(is_error_code("invalid_client"));
        assert!(!is_error_code("Bad secret s3cret-value"));
    }
}
