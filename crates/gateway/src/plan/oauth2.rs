//! `oauth2` plans: a Bearer token introspected (RFC 7662) by the API's `oauth2` resource, the
//! answers cached until the token expires, so that a client streaming with one token costs one
//! introspection, not one per request.

use super::{Admission, CompiledPlan, Guard, Refusal, ATTR_PLAN, ATTR_USER};
use base64::Engine as _;
use http::StatusCode;
use kafka_edge_definition::{IntrospectionMethod, OAuth2Resource, OAuth2Security, PlanSecurityType, Problem};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// An active token's answer is kept until its `exp`, and at most this long (also when it has none).
const MAX_CACHE: Duration = Duration::from_secs(300);
/// An inactive token's answer is kept this long.
const INACTIVE_CACHE: Duration = Duration::from_secs(10);
/// Cached answers at most; beyond, expired ones are dropped, then all.
const CACHE_ENTRIES: usize = 10_000;
const INTROSPECTION_TIMEOUT: Duration = Duration::from_secs(5);
/// An `exp` this far in the past still counts (clocks disagree a little), as for JWTs.
const CLOCK_SKEW_SECONDS: u64 = 60;

pub(super) struct OAuth2Guard {
    introspection: Introspection,
    extract_payload: bool,
    required_scopes: Option<(Vec<String>, bool)>,
    propagate_auth_header: bool,
}

struct Introspection {
    url: String,
    resource: OAuth2Resource,
    client: reqwest::Client,
    cache: Mutex<HashMap<[u8; 32], (Instant, Answer)>>,
}

#[derive(Clone)]
enum Answer {
    Active(Map<String, Value>),
    Inactive,
}

impl OAuth2Guard {
    /// `resource` is the plan's `oauthResource` (checked to exist by the definition's validation).
    pub(super) fn build(configuration: &OAuth2Security, resource: &OAuth2Resource) -> Result<Self, Problem> {
        let url = resource.introspection_url();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Problem::new(
                "oauthResource",
                format!("the resource's introspection URL `{url}` is not http:// or https:// (authorizationServerUrl + introspectionEndpoint)"),
            ));
        }
        let client = reqwest::Client::builder().timeout(INTROSPECTION_TIMEOUT).build().map_err(|error| {
            Problem::new("oauthResource", format!("cannot build the introspection client: {error}"))
        })?;
        let required_scopes = (configuration.check_required_scopes && !configuration.required_scopes.is_empty())
            .then(|| (configuration.required_scopes.clone(), configuration.mode_strict));
        Ok(Self {
            introspection: Introspection { url, resource: resource.clone(), client, cache: Default::default() },
            extract_payload: configuration.extract_payload,
            required_scopes,
            propagate_auth_header: configuration.propagate_auth_header,
        })
    }

    pub(super) fn propagates_auth_header(&self) -> bool {
        self.propagate_auth_header
    }

    fn scopes(&self, claims: &Map<String, Value>) -> Vec<String> {
        match (claims.get("scope"), claims.get("scp")) {
            (Some(Value::String(scopes)), _) => {
                scopes.split(self.introspection.resource.scope_separator.as_str()).map(str::to_owned).collect()
            }
            (_, Some(Value::Array(scopes))) => scopes.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            _ => Vec::new(),
        }
    }
}

impl Introspection {
    async fn answer(&self, token: &str) -> Result<Answer, String> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some((until, answer)) = self.lock().get(&key) {
            if Instant::now() < *until {
                return Ok(answer.clone());
            }
        }
        let answer = self.call(token).await?;
        let keep = match &answer {
            Answer::Inactive => INACTIVE_CACHE,
            Answer::Active(claims) => {
                let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
                match claims.get("exp").and_then(Value::as_u64) {
                    Some(exp) => Duration::from_secs(exp.saturating_sub(now)).min(MAX_CACHE),
                    None => MAX_CACHE,
                }
            }
        };
        let mut cache = self.lock();
        if cache.len() >= CACHE_ENTRIES {
            let now = Instant::now();
            cache.retain(|_, (until, _)| *until > now);
            if cache.len() >= CACHE_ENTRIES {
                cache.clear();
            }
        }
        cache.insert(key, (Instant::now() + keep, answer.clone()));
        Ok(answer)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], (Instant, Answer)>> {
        self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// One introspection call, as Gravitee's generic resource makes it. Errors name no token and
    /// no secret.
    async fn call(&self, token: &str) -> Result<Answer, String> {
        let resource = &self.resource;
        let mut request = match resource.introspection_endpoint_method {
            IntrospectionMethod::Get => self.client.get(&self.url),
            IntrospectionMethod::Post => self.client.post(&self.url),
        };
        if resource.token_is_supplied_by_query_param {
            request = request.query(&[(resource.token_query_param_name.as_str(), token)]);
        }
        if let Some(header) =
            resource.token_header_name.as_deref().filter(|_| resource.token_is_supplied_by_http_header)
        {
            request = request.header(header, token);
        }
        if resource.token_is_supplied_by_form_url_encoded
            && resource.introspection_endpoint_method == IntrospectionMethod::Post
        {
            request = request.form(&[(resource.token_form_url_encoded_name.as_str(), token)]);
        }
        if resource.use_client_authorization_header {
            let credentials = format!("{}:{}", resource.client_id, resource.client_secret.expose());
            let value = format!(
                "{} {}",
                resource.client_authorization_header_scheme,
                base64::engine::general_purpose::STANDARD.encode(credentials)
            );
            request = request.header(resource.client_authorization_header_name.as_str(), value);
        }
        let response = request
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|error| format!("the introspection endpoint cannot be reached: {}", error.without_url()))?;
        if response.status() != StatusCode::OK {
            return Err(format!("the introspection endpoint answered {}", response.status()));
        }
        let claims: Map<String, Value> =
            response.json().await.map_err(|_| "the introspection endpoint did not answer a JSON object".to_string())?;
        // RFC 7662 makes `active` required; Gravitee takes an answer without it as active, which
        // would let an endpoint that answers 200 to anything admit every token.
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let expired = claims.get("exp").and_then(Value::as_u64).is_some_and(|exp| exp + CLOCK_SKEW_SECONDS < now);
        Ok(match claims.get("active") {
            Some(Value::Bool(true)) if !expired => Answer::Active(claims),
            _ => Answer::Inactive,
        })
    }
}

/// The first candidate plan admits the token if its resource says it is active (and carries the
/// required scopes).
pub(super) async fn admit<'p>(candidates: &[&'p CompiledPlan], token: &str) -> Result<Admission<'p>, Refusal> {
    let Some((plan, guard)) = candidates.iter().find_map(|plan| match &plan.guard {
        Guard::OAuth2(guard) => Some((*plan, guard)),
        _ => None,
    }) else {
        return Err(Refusal::invalid(
            PlanSecurityType::OAuth2,
            "no oauth2 plan takes this request (closed, or its selection rule)",
        ));
    };
    let answer = guard.introspection.answer(token).await.map_err(|reason| {
        tracing::warn!(plan = %plan.id, reason, "Token introspection failed.");
        Refusal::unavailable("OAUTH2_SERVER_UNAVAILABLE", &reason)
    })?;
    let Answer::Active(claims) = answer else {
        return Err(Refusal::invalid(PlanSecurityType::OAuth2, "the access token is not active"));
    };
    if let Some((required, strict)) = &guard.required_scopes {
        let granted = guard.scopes(&claims);
        let has = |scope: &String| granted.contains(scope);
        let enough = if *strict { required.iter().all(has) } else { required.iter().any(has) };
        if !enough {
            return Err(Refusal::insufficient_scope(required));
        }
    }
    let text = |name: &str| super::claim_text(&claims, name);
    let client_id = text("client_id").or_else(|| text("aud")).ok_or_else(|| {
        Refusal::invalid(PlanSecurityType::OAuth2, "the introspection names no client (client_id or aud)")
    })?;
    let mut attributes =
        vec![(ATTR_PLAN.to_string(), plan.id.clone()), ("oauth.client_id".to_string(), client_id.clone())];
    if let Some(user) = text(&guard.introspection.resource.user_claim) {
        attributes.push((ATTR_USER.into(), user));
    }
    if guard.extract_payload {
        attributes.push(("oauth.payload".into(), Value::Object(claims).to_string()));
    }
    if guard.propagate_auth_header {
        attributes.push(("oauth.access_token".into(), token.to_owned()));
    }
    Ok(Admission { plan: Some(plan), client_identifier: client_id, revocable: None, attributes, claims: None })
}
