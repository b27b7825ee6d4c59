//! OAUTHBEARER tokens for librdkafka's token-refresh callback. The callback runs on the thread
//! that polls the client, so it must not block: every source here is computed from what the
//! client was created with (a token from the JAAS line, possibly an expression's result, or an
//! unsecured JWT built locally), or read from a token fetched and renewed elsewhere (client
//! credentials), with no I/O.

use super::client_credentials::{jwt_claims, ClientCredentials, SharedToken};
use super::jaas::MskIamLogin;
use super::msk_iam::{resolve_credentials, sign_token, AwsCredentials};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rdkafka::client::OAuthToken;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where a client's OAUTHBEARER token comes from. Part of the client's identity (equal sources
/// share a producer), so it holds the token: `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) enum TokenSource {
    /// `OAuthBearerLoginModule required access_token="…"`.
    AccessToken(String),
    /// `unsecuredLoginStringClaim_sub="…"`: an unsigned JWT, for brokers with the unsecured validator.
    Unsecured { principal: String, claims: Vec<(String, String)> },
    /// AWS MSK IAM: a SigV4-signed token, from credentials resolved when the client is created.
    MskIam { region: String, login: MskIamLogin },
    /// OAuth 2 client credentials: the process's token for them (`SharedToken`).
    ClientCredentials(ClientCredentials),
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenSource::AccessToken(_) => f.write_str("AccessToken(<redacted>)"),
            TokenSource::Unsecured { principal, .. } => write!(f, "Unsecured({principal})"),
            TokenSource::MskIam { region, .. } => write!(f, "MskIam({region})"),
            TokenSource::ClientCredentials(credentials) => credentials.fmt(f),
        }
    }
}

/// Lifetime of a token whose expiry we cannot read; librdkafka refreshes at 80 % of it.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

/// What a client's token callback reads: the source, and what was fetched for it beforehand
/// (the callback must not do I/O): AWS credentials for MSK IAM, the shared token of client
/// credentials.
pub(crate) struct TokenProvider {
    source: TokenSource,
    aws: Option<Arc<SharedCredentials>>,
    issued: Option<Arc<SharedToken>>,
}

/// Sent with MSK IAM tokens, as Amazon's signers send theirs.
const USER_AGENT: &str = concat!("kafka-edge/", env!("CARGO_PKG_VERSION"));

impl TokenProvider {
    /// Resolves what the source needs ahead of the callbacks (AWS credentials for MSK IAM, a
    /// token for client credentials).
    pub async fn prepare(source: TokenSource) -> Result<TokenProvider, String> {
        let aws = match &source {
            TokenSource::MskIam { login, .. } => {
                let env: SharedEnv = Arc::new(|name: &str| std::env::var(name).ok());
                Some(SharedCredentials::get(&source, login, env).await?)
            }
            _ => None,
        };
        let issued = match &source {
            TokenSource::ClientCredentials(credentials) => Some(SharedToken::get(credentials).await?),
            _ => None,
        };
        Ok(TokenProvider { source, aws, issued })
    }

    pub fn token(&self, now: SystemTime) -> Result<OAuthToken, String> {
        match (&self.source, &self.aws) {
            (TokenSource::MskIam { region, .. }, Some(shared)) => {
                let signed = sign_token(region, &shared.credentials(), now, USER_AGENT);
                Ok(OAuthToken {
                    token: signed.token,
                    principal_name: signed.principal,
                    lifetime_ms: signed.lifetime_ms,
                })
            }
            (TokenSource::MskIam { .. }, None) => Err("AWS credentials were not resolved".into()),
            (TokenSource::ClientCredentials(_), _) => match &self.issued {
                Some(issued) => issued.token(now),
                None => Err("no OAuth token was fetched".into()),
            },
            (source, _) => Ok(source.token(now)),
        }
    }
}

/// How a renewal reads the environment: the process's own, or a map in tests.
pub(crate) type SharedEnv = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The process's AWS credentials for one MSK IAM source. Temporary ones (STS, web identity, the
/// container and instance endpoints) are renewed in the background at half their lifetime,
/// while any client holds them, so a stream that lives for hours signs with current credentials
/// and a consumer per request does not mean an STS call per request; librdkafka's callbacks only
/// read them.
pub(crate) struct SharedCredentials {
    login: MskIamLogin,
    env: SharedEnv,
    current: Mutex<AwsCredentials>,
}

impl SharedCredentials {
    /// The credentials of `source`, resolved now unless valid ones are shared already.
    pub async fn get(source: &TokenSource, login: &MskIamLogin, env: SharedEnv) -> Result<Arc<Self>, String> {
        static SHARED: OnceLock<Mutex<HashMap<TokenSource, Weak<SharedCredentials>>>> = OnceLock::new();
        let shared = SHARED.get_or_init(Default::default);
        let valid = |credentials: &AwsCredentials| {
            credentials.expiry.is_none_or(|expiry| expiry > SystemTime::now() + Duration::from_secs(60))
        };
        let existing = shared.lock().unwrap_or_else(PoisonError::into_inner).get(source).and_then(Weak::upgrade);
        if let Some(existing) = existing.filter(|existing| valid(&existing.credentials())) {
            return Ok(existing);
        }
        let credentials = resolve(login, &env).await?;
        let temporary = credentials.expiry.is_some();
        let created = Arc::new(SharedCredentials { login: login.clone(), env, current: Mutex::new(credentials) });
        {
            let mut shared = shared.lock().unwrap_or_else(PoisonError::into_inner);
            shared.retain(|_, credentials| credentials.strong_count() > 0);
            shared.insert(source.clone(), Arc::downgrade(&created));
        }
        if temporary {
            tokio::spawn(renew_credentials(Arc::downgrade(&created)));
        }
        Ok(created)
    }

    pub fn credentials(&self) -> AwsCredentials {
        self.current.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

async fn resolve(login: &MskIamLogin, env: &SharedEnv) -> Result<AwsCredentials, String> {
    let read = |name: &str| env(name);
    resolve_credentials(login, &read).await.map_err(|error| error.to_string())
}

/// Renews at half the remaining lifetime; on failure tries again after 1, 2, 4 … 30 s (logged at
/// the first failure of a run and at the recovery) while the current ones still work.
async fn renew_credentials(shared: Weak<SharedCredentials>) {
    let mut failures: u32 = 0;
    loop {
        let wait = match failures {
            0 => {
                let Some(expiry) = shared.upgrade().and_then(|shared| shared.credentials().expiry) else { return };
                expiry.duration_since(SystemTime::now()).unwrap_or_default() / 2
            }
            n => Duration::from_secs(1 << (n - 1).min(5)).min(Duration::from_secs(30)),
        };
        tokio::time::sleep(wait.max(Duration::from_millis(500))).await;
        let Some(holder) = shared.upgrade() else { return };
        match resolve(&holder.login, &holder.env).await {
            Ok(credentials) => {
                if failures > 0 {
                    tracing::info!(access_key_id = %credentials.access_key_id, "AWS credentials renewed again.");
                }
                failures = 0;
                *holder.current.lock().unwrap_or_else(PoisonError::into_inner) = credentials;
            }
            Err(reason) => {
                if failures == 0 {
                    tracing::warn!(%reason, "AWS credentials for MSK IAM not renewed; trying again.");
                }
                failures = failures.saturating_add(1);
            }
        }
    }
}

impl TokenSource {
    /// Tokens that need no credentials (everything but MSK IAM).
    pub fn token(&self, now: SystemTime) -> OAuthToken {
        let now_ms = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as i64;
        let default_expiry = now_ms + DEFAULT_LIFETIME.as_millis() as i64;
        match self {
            TokenSource::AccessToken(token) => {
                let claims = jwt_claims(token);
                let principal = claims
                    .as_ref()
                    .and_then(|c| c.get("sub")?.as_str().map(String::from))
                    .unwrap_or_else(|| "kafka-edge".into());
                let lifetime_ms =
                    claims.as_ref().and_then(|c| c.get("exp")?.as_i64()).map_or(default_expiry, |exp| exp * 1000);
                OAuthToken { token: token.clone(), principal_name: principal, lifetime_ms }
            }
            TokenSource::Unsecured { principal, claims } => {
                let issued = now_ms / 1000;
                let mut payload = serde_json::Map::new();
                payload.insert("sub".into(), principal.clone().into());
                payload.insert("iat".into(), issued.into());
                payload.insert("exp".into(), (issued + DEFAULT_LIFETIME.as_secs() as i64).into());
                for (name, value) in claims {
                    payload.insert(name.clone(), value.clone().into());
                }
                let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
                let body = URL_SAFE_NO_PAD.encode(serde_json::Value::Object(payload).to_string());
                OAuthToken {
                    token: format!("{header}.{body}."),
                    principal_name: principal.clone(),
                    lifetime_ms: (issued + DEFAULT_LIFETIME.as_secs() as i64) * 1000,
                }
            }
            TokenSource::MskIam { .. } | TokenSource::ClientCredentials(_) => {
                OAuthToken { token: String::new(), principal_name: String::new(), lifetime_ms: now_ms }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsecured_tokens_are_unsigned_jwts_with_subject_and_expiry() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let token = TokenSource::Unsecured { principal: "alice".into(), claims: vec![("scope".into(), "test".into())] }
            .token(now);
        assert_eq!(token.principal_name, "alice");
        assert_eq!(token.lifetime_ms, 1_700_003_600_000);
        assert!(token.token.ends_with('.'));
        let claims = jwt_claims(&token.token).unwrap();
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["iat"], 1_700_000_000);
        assert_eq!(claims["scope"], "test");
    }

    #[test]
    fn access_tokens_keep_their_subject_and_expiry_and_are_never_printed() {
        let payload = URL_SAFE_NO_PAD.encode(r#"{"sub":"svc","exp":1800000000}"#);
        let source = TokenSource::AccessToken(format!("e30.{payload}.sig"));
        let token = source.token(SystemTime::now());
        assert_eq!((token.principal_name.as_str(), token.lifetime_ms), ("svc", 1_800_000_000_000));
        assert!(!format!("{source:?}").contains("sig"));
        let opaque = TokenSource::AccessToken("opaque".into()).token(UNIX_EPOCH);
        assert_eq!((opaque.principal_name.as_str(), opaque.lifetime_ms), ("kafka-edge", 3_600_000));
    }
}
