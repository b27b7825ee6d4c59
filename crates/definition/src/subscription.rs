//! The model of a webhook subscription (DESIGN 5.6), as the admin API, the state file and the
//! state topic spell it
//! (Gravitee's `WebhookEntrypointConnectorSubscriptionConfiguration`, camelCase). Unknown fields
//! are errors. Secrets (passwords, tokens, client secrets) print as `***` in Debug and are replaced
//! by `***` in admin API answers ([`Subscription::redacted`]); only the state store holds them.

use serde::{Deserialize, Serialize};

/// What replaces a secret in Debug output and admin API answers.
pub const REDACTED: &str = "***";

/// A string that never shows in Debug output.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// One subscription of a PUSH plan: where and how the gateway delivers an API's messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Subscription {
    /// Unique within the API; the consumer group of the delivery.
    pub id: String,
    pub api_id: String,
    /// A PUSH plan of the API.
    pub plan_id: String,
    pub configuration: WebhookSubscriptionConfiguration,
    #[serde(default)]
    pub state: SubscriptionState,
}

impl Subscription {
    /// The key in the state store and state topic: `subscription/<api>/<id>`.
    pub fn key(&self) -> String {
        key(&self.api_id, &self.id)
    }

    /// A copy fit for an admin API answer: every secret replaced by `***`.
    pub fn redacted(&self) -> Subscription {
        let mut copy = self.clone();
        let configuration = &mut copy.configuration;
        let hide = |secret: &mut Secret| *secret = Secret(REDACTED.into());
        if let Some(basic) = configuration.auth.basic.as_mut() {
            hide(&mut basic.password);
        }
        if let Some(token) = configuration.auth.token.as_mut() {
            hide(&mut token.value);
        }
        if let Some(oauth2) = configuration.auth.oauth2.as_mut() {
            hide(&mut oauth2.client_secret);
        }
        for store in
            [configuration.ssl.trust_store.as_mut(), configuration.ssl.key_store.as_mut()].into_iter().flatten()
        {
            store.password.as_mut().map(hide);
            store.key_password.as_mut().map(hide);
            store.key_content.as_mut().map(hide);
        }
        if let Some(key_store) = configuration.ssl.key_store.as_mut() {
            key_store.content.as_mut().map(hide);
        }
        copy
    }
}

/// The state store key of subscription `id` of API `api`.
pub fn key(api: &str, id: &str) -> String {
    format!("subscription/{api}/{id}")
}

/// Whether messages are delivered.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase", deny_unknown_fields)]
pub enum SubscriptionState {
    #[default]
    Active,
    /// Delivery gave up; `reason` is a key such as `WEBHOOK_UNREACHABLE`.
    Stopped { reason: String, message: String },
}

/// `configuration` of a webhook subscription.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookSubscriptionConfiguration {
    /// The entrypoint the subscription uses: `webhook`.
    #[serde(default = "default_entrypoint_id")]
    pub entrypoint_id: String,
    /// Where messages are POSTed; must start with `http://` or `https://`.
    pub callback_url: String,
    /// Added to every call (message headers with the same name win).
    #[serde(default)]
    pub headers: Vec<HeaderEntry>,
    #[serde(default)]
    pub auth: Auth,
    #[serde(default)]
    pub ssl: Ssl,
    #[serde(default)]
    pub retry: Retry,
}

fn default_entrypoint_id() -> String {
    "webhook".into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderEntry {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthType {
    #[default]
    None,
    Basic,
    Token,
    Oauth2,
}

/// `auth`: how the gateway authenticates to the callback URL.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    #[serde(rename = "type", default)]
    pub kind: AuthType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic: Option<BasicAuth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<TokenAuth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2: Option<OAuth2Auth>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    pub username: String,
    pub password: Secret,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenAuth {
    pub value: Secret,
}

/// OAuth 2 client credentials grant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OAuth2Auth {
    /// The token endpoint.
    pub endpoint: String,
    pub client_id: String,
    pub client_secret: Secret,
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// `ssl`: TLS toward the callback URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Ssl {
    /// Check that the certificate names the host. Default true.
    #[serde(default = "yes")]
    pub hostname_verifier: bool,
    /// Accept any server certificate. Default false.
    #[serde(default)]
    pub trust_all: bool,
    /// CA certificates trusted besides the system roots (PEM, PKCS12 or JKS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_store: Option<Store>,
    /// The client identity (PEM certificate + key, or a PKCS12 or JKS store).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_store: Option<Store>,
}

fn yes() -> bool {
    true
}

impl Default for Ssl {
    fn default() -> Self {
        Self { hostname_verifier: true, trust_all: false, trust_store: None, key_store: None }
    }
}

/// A trust or key store (`type`: "", JKS, PKCS12, PEM).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Store {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// PEM text or base64 of a binary store; of a key store, it holds the private key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_password: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_content: Option<Secret>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum RetryOption {
    #[default]
    #[serde(rename = "No Retry")]
    NoRetry,
    #[serde(rename = "Retry On Fail")]
    RetryOnFail,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RetryStrategy {
    #[default]
    Linear,
    Exponential,
}

/// `retry`: what happens when a call fails with 5xx or a network error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Retry {
    #[serde(default)]
    pub retry_option: RetryOption,
    #[serde(default)]
    pub retry_strategy: RetryStrategy,
    /// Retries after the first failed call. Default 5.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Delay before the first retry, in seconds. Default 1.
    #[serde(default = "default_initial_delay")]
    pub initial_delay_seconds: u64,
    /// Longest delay between two calls, in seconds. Default 30.
    #[serde(default = "default_max_delay")]
    pub max_delay_seconds: u64,
}

fn default_max_attempts() -> u32 {
    5
}

fn default_initial_delay() -> u64 {
    1
}

fn default_max_delay() -> u64 {
    30
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            retry_option: RetryOption::NoRetry,
            retry_strategy: RetryStrategy::Linear,
            max_attempts: default_max_attempts(),
            initial_delay_seconds: default_initial_delay(),
            max_delay_seconds: default_max_delay(),
        }
    }
}

impl Retry {
    /// The delay before retry number `attempt` (1-based), or `None` when no retry is left.
    pub fn delay(&self, attempt: u32) -> Option<std::time::Duration> {
        if self.retry_option == RetryOption::NoRetry || attempt == 0 || attempt > self.max_attempts {
            return None;
        }
        let seconds = match self.retry_strategy {
            RetryStrategy::Linear => self.initial_delay_seconds.saturating_mul(u64::from(attempt)),
            RetryStrategy::Exponential => {
                self.initial_delay_seconds.saturating_mul(1u64.checked_shl(attempt - 1).unwrap_or(u64::MAX))
            }
        };
        Some(std::time::Duration::from_secs(seconds.min(self.max_delay_seconds)))
    }
}
