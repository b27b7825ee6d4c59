//! One callback call: the HTTP client a subscription uses (timeouts and proxy from the
//! entrypoint's configuration, TLS from the subscription's `ssl`), its headers and its
//! authentication (basic, token, or an OAuth 2 client-credentials token cached until it expires
//! or the callback answers 401).

use super::{DeliveryObserver, Unobserved};
use base64::Engine;
use http::{HeaderMap, HeaderName, HeaderValue};
use kafka_edge_definition::subscription::{AuthType, OAuth2Auth, Secret, WebhookSubscriptionConfiguration};
use kafka_edge_definition::{ProxyType, WebhookConfiguration, WebhookProxy};
use kafka_edge_message::Message;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Refresh an OAuth 2 token this long before it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(30);
/// Used when a token answer has no `expires_in`.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(300);

/// The client could not be built from the subscription.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CallerError(String);

impl CallerError {
    pub(super) fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// How one call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallOutcome {
    Delivered,
    /// 5xx, or the call could not be made: retried per the retry policy. `sent` is false when
    /// the request never reached the callback (no connection, no token), so a retry cannot
    /// repeat it.
    Failed {
        detail: String,
        sent: bool,
    },
    /// Any other status: the subscriber refused the message.
    Rejected(u16),
}

enum Authentication {
    None,
    /// A fixed `Authorization` value (basic or token), marked sensitive.
    Fixed(HeaderValue),
    /// The cached token is shared by the calls in flight.
    OAuth2 {
        settings: OAuth2Auth,
        token: tokio::sync::Mutex<Option<(HeaderValue, Instant)>>,
    },
}

/// Calls one subscription's callback URL.
pub struct Caller {
    client: reqwest::Client,
    url: reqwest::Url,
    headers: HeaderMap,
    authentication: Authentication,
    observer: Arc<dyn DeliveryObserver>,
}

impl Caller {
    /// Each call's outcome goes to `observer`.
    pub fn observed_by(mut self, observer: Arc<dyn DeliveryObserver>) -> Self {
        self.observer = observer;
        self
    }

    pub fn observer(&self) -> &dyn DeliveryObserver {
        &*self.observer
    }

    pub fn new(
        entrypoint: &WebhookConfiguration,
        configuration: &WebhookSubscriptionConfiguration,
    ) -> Result<Self, CallerError> {
        let options = &entrypoint.http;
        let builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(options.connect_timeout))
            .read_timeout(Duration::from_millis(options.read_timeout))
            .pool_idle_timeout(Duration::from_millis(options.idle_timeout))
            .pool_max_idle_per_host(options.max_concurrent_connections.clamp(1, 20) as usize);
        let builder = with_proxy(builder, &entrypoint.proxy)?;
        let client = super::tls::apply(builder, &configuration.ssl)?
            .build()
            .map_err(|e| CallerError(format!("cannot build the HTTP client: {e}")))?;
        let url =
            reqwest::Url::parse(&configuration.callback_url).map_err(|e| CallerError(format!("callbackUrl: {e}")))?;
        let mut headers = HeaderMap::new();
        for header in &configuration.headers {
            let name = HeaderName::from_bytes(header.name.as_bytes())
                .map_err(|_| CallerError(format!("header name `{}` is not valid", header.name)))?;
            let value = HeaderValue::from_str(&header.value)
                .map_err(|_| CallerError(format!("header `{}` has an invalid value", header.name)))?;
            headers.append(name, value);
        }
        let auth = &configuration.auth;
        let authentication = match (auth.kind, &auth.basic, &auth.token, &auth.oauth2) {
            (AuthType::Basic, Some(basic), _, _) => {
                let encoded = base64::engine::general_purpose::STANDARD.encode(format!(
                    "{}:{}",
                    basic.username,
                    basic.password.expose()
                ));
                Authentication::Fixed(sensitive(&format!("Basic {encoded}"))?)
            }
            (AuthType::Token, _, Some(token), _) => {
                Authentication::Fixed(sensitive(&format!("Bearer {}", token.value.expose()))?)
            }
            (AuthType::Oauth2, _, _, Some(oauth2)) => {
                Authentication::OAuth2 { settings: oauth2.clone(), token: Default::default() }
            }
            (AuthType::None, ..) => Authentication::None,
            _ => return Err(CallerError("auth block missing for its type".into())),
        };
        Ok(Self { client, url, headers, authentication, observer: Arc::new(Unobserved) })
    }

    /// POSTs the message content; message headers first, then subscription headers not already
    /// present, then `Authorization`. With OAuth 2, a 401 refreshes the token and calls once more.
    pub async fn call(&self, message: &Message) -> CallOutcome {
        let outcome = self.call_once(message).await;
        if outcome == CallOutcome::Rejected(401) {
            if let Authentication::OAuth2 { token, .. } = &self.authentication {
                *token.lock().await = None;
                return self.call_once(message).await;
            }
        }
        outcome
    }

    async fn call_once(&self, message: &Message) -> CallOutcome {
        let mut headers = HeaderMap::new();
        for (name, value) in message.headers.iter() {
            if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
                headers.append(name, value);
            }
        }
        for (name, value) in &self.headers {
            if !headers.contains_key(name) {
                headers.append(name.clone(), value.clone());
            }
        }
        match self.authorization().await {
            Ok(Some(value)) => {
                headers.insert(http::header::AUTHORIZATION, value);
            }
            Ok(None) => {}
            Err(detail) => return CallOutcome::Failed { detail, sent: false },
        }
        let request = self.client.post(self.url.clone()).headers(headers).body(message.content.clone());
        match request.send().await {
            Ok(response) if response.status().is_success() => {
                // Read the body so the connection can be reused.
                let _ = response.bytes().await;
                CallOutcome::Delivered
            }
            // The proxy refused us: the callback never saw the message, and it is no rejection of
            // the message (which would send it to the dead-letter queue).
            Ok(response) if response.status() == http::StatusCode::PROXY_AUTHENTICATION_REQUIRED => {
                CallOutcome::Failed {
                    detail: "the proxy answered 407: check proxy.username and proxy.password".into(),
                    sent: false,
                }
            }
            Ok(response) if response.status().is_server_error() => {
                CallOutcome::Failed { detail: format!("callback answered {}", response.status().as_u16()), sent: true }
            }
            Ok(response) => CallOutcome::Rejected(response.status().as_u16()),
            Err(error) => CallOutcome::Failed { detail: call_failure(&error), sent: !error.is_connect() },
        }
    }

    async fn authorization(&self) -> Result<Option<HeaderValue>, String> {
        match &self.authentication {
            Authentication::None => Ok(None),
            Authentication::Fixed(value) => Ok(Some(value.clone())),
            Authentication::OAuth2 { settings, token } => {
                // Held while fetching, so concurrent calls wait for one token request.
                let mut token = token.lock().await;
                if let Some((value, expires)) = token.as_ref() {
                    if Instant::now() + TOKEN_MARGIN < *expires {
                        return Ok(Some(value.clone()));
                    }
                }
                let (value, lifetime) = fetch_token(&self.client, settings).await?;
                *token = Some((value.clone(), Instant::now() + lifetime));
                Ok(Some(value))
            }
        }
    }
}

/// What went wrong, for the subscription's stop message: the phase, then the innermost cause
/// (`connection timed out`, `Connection refused (os error 111)`), never the URL.
fn call_failure(error: &reqwest::Error) -> String {
    let phase = match (error.is_connect(), error.is_timeout()) {
        (true, true) => "connect timeout (http.connectTimeout)",
        (true, false) => "cannot connect",
        (false, true) => "no answer in time (http.readTimeout)",
        (false, false) => "request error",
    };
    // The innermost source: reqwest's own message would carry the URL, which may hold a secret.
    let mut innermost = None;
    let mut next = std::error::Error::source(error);
    while let Some(source) = next {
        innermost = Some(source);
        next = source.source();
    }
    match innermost.map(|cause| cause.to_string()).filter(|cause| !cause.is_empty()) {
        Some(cause) => format!("callback call failed: {phase}: {cause}"),
        None => format!("callback call failed: {phase}"),
    }
}

/// No proxy unless enabled; then the system's (environment variables) or `type://host:port`.
/// SOCKS4 has no password, so username and password apply to HTTP and SOCKS5 only.
fn with_proxy(builder: reqwest::ClientBuilder, proxy: &WebhookProxy) -> Result<reqwest::ClientBuilder, CallerError> {
    if !proxy.enabled {
        return Ok(builder.no_proxy());
    }
    if proxy.use_system_proxy {
        return Ok(builder);
    }
    let (Some(host), Some(port)) = (proxy.host.as_deref(), proxy.port) else {
        return Err(CallerError("proxy: host and port are required".into()));
    };
    // socks5h: the proxy resolves the callback's host name, as a SOCKS5 client usually lets it.
    let scheme = match proxy.proxy_type {
        ProxyType::Http => "http",
        ProxyType::Socks4 => "socks4",
        ProxyType::Socks5 => "socks5h",
    };
    let mut route = reqwest::Proxy::all(format!("{scheme}://{}:{port}", host.trim()))
        .map_err(|_| CallerError(format!("proxy: `{}:{port}` is not a valid proxy address", host.trim())))?;
    if let (Some(username), false) =
        (proxy.username.as_deref().filter(|u| !u.is_empty()), proxy.proxy_type == ProxyType::Socks4)
    {
        route = route.basic_auth(username, proxy.password.as_deref().unwrap_or_default());
    }
    Ok(builder.proxy(route))
}

fn sensitive(value: &str) -> Result<HeaderValue, CallerError> {
    let mut value = HeaderValue::from_str(value)
        .map_err(|_| CallerError("credentials are not representable in an HTTP header".into()))?;
    value.set_sensitive(true);
    Ok(value)
}

#[derive(serde::Deserialize)]
struct TokenAnswer {
    access_token: Secret,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// The client-credentials grant: `grant_type=client_credentials&client_id=..&client_secret=..`
/// (and `scope` when scopes are configured).
async fn fetch_token(client: &reqwest::Client, settings: &OAuth2Auth) -> Result<(HeaderValue, Duration), String> {
    let mut form = vec![
        ("grant_type", "client_credentials".to_string()),
        ("client_id", settings.client_id.clone()),
        ("client_secret", settings.client_secret.expose().to_string()),
    ];
    if !settings.scopes.is_empty() {
        form.push(("scope", settings.scopes.join(" ")));
    }
    let response = client
        .post(&settings.endpoint)
        .form(&form)
        .send()
        .await
        .map_err(|e| format!("OAuth 2 token request failed: {}", e.without_url()))?;
    if !response.status().is_success() {
        return Err(format!("OAuth 2 token endpoint answered {}", response.status().as_u16()));
    }
    let answer: TokenAnswer =
        response.json().await.map_err(|_| "OAuth 2 token endpoint answered without an access_token".to_string())?;
    let lifetime = answer.expires_in.map(Duration::from_secs).unwrap_or(DEFAULT_TOKEN_LIFETIME);
    let value = sensitive(&format!("Bearer {}", answer.access_token.expose())).map_err(|e| e.to_string())?;
    Ok((value, lifetime))
}
