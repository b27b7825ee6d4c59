//! The 401 a request gets when no plan admits it: the JSON error body with Gravitee's key and a
//! reason that never quotes the credential, and a `WWW-Authenticate` challenge per plan kind the
//! API accepts.

use super::Presented;
use axum::response::Response;
use http::{HeaderValue, StatusCode};
use kafka_edge_definition::PlanSecurityType;
use kafka_edge_entrypoints::error::json_error;

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    status: StatusCode,
    /// Gravitee's error key (`API_KEY_MISSING`, `JWT_INVALID_TOKEN`, …).
    pub key: &'static str,
    pub message: String,
    challenges: Vec<String>,
}

const REALM: &str = "realm=\"kafka-edge\"";

fn challenge(kind: PlanSecurityType) -> Option<String> {
    match kind {
        PlanSecurityType::Jwt | PlanSecurityType::OAuth2 => Some(format!("Bearer {REALM}")),
        PlanSecurityType::ApiKey => Some(format!("ApiKey {REALM}, header=\"X-Gravitee-Api-Key\", query=\"api-key\"")),
        // A certificate is asked for in the TLS handshake, not by a challenge.
        PlanSecurityType::KeyLess | PlanSecurityType::Mtls => None,
    }
}

impl Refusal {
    /// No credential any plan of the API takes (`kinds`: the kinds the API serves).
    pub fn missing(kinds: &[PlanSecurityType], presented: &Presented) -> Self {
        let mut challenges: Vec<String> = Vec::new();
        for challenge in kinds.iter().filter_map(|kind| challenge(*kind)) {
            if !challenges.contains(&challenge) {
                challenges.push(challenge);
            }
        }
        let wanted: Vec<&str> = kinds
            .iter()
            .filter_map(|kind| match kind {
                PlanSecurityType::ApiKey => Some("an API key (X-Gravitee-Api-Key header or api-key query parameter)"),
                PlanSecurityType::Jwt => Some("a JWT (Authorization: Bearer)"),
                PlanSecurityType::OAuth2 => Some("an OAuth 2 access token (Authorization: Bearer)"),
                PlanSecurityType::Mtls => Some("a registered client certificate (TLS)"),
                _ => None,
            })
            .collect();
        let (key, message) = match (wanted.is_empty(), presented.bearer.is_some()) {
            // Only key-less plans, none of whose selection rules held.
            (true, _) => {
                ("GATEWAY_PLAN_UNRESOLVABLE", "Unauthorized: no plan of this API takes the request".to_string())
            }
            (false, true) if kinds.contains(&PlanSecurityType::Jwt) => {
                ("JWT_INVALID_TOKEN", "Unauthorized: the Bearer token is not a JWT".to_string())
            }
            (false, _) => {
                let key = if kinds.contains(&PlanSecurityType::ApiKey) {
                    "API_KEY_MISSING"
                } else if kinds.contains(&PlanSecurityType::Jwt) {
                    "JWT_MISSING_TOKEN"
                } else if kinds.contains(&PlanSecurityType::OAuth2) {
                    "OAUTH2_MISSING_HEADER"
                } else {
                    "CLIENT_CERTIFICATE_MISSING"
                };
                (key, format!("Unauthorized: this API needs {}", wanted.join(" or ")))
            }
        };
        Self { status: StatusCode::UNAUTHORIZED, key, message, challenges }
    }

    /// The credential cannot be judged now (what it is checked against cannot be read): 503.
    pub fn unavailable(key: &'static str, reason: &str) -> Self {
        let message = format!("Temporarily unavailable: {reason}");
        Self { status: StatusCode::SERVICE_UNAVAILABLE, key, message, challenges: Vec::new() }
    }

    /// A valid OAuth 2 token without the plan's scopes: 403, as RFC 6750 says.
    pub fn insufficient_scope(required: &[String]) -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            key: "OAUTH2_INSUFFICIENT_SCOPE",
            message: format!(
                "Forbidden: the access token lacks the scopes this plan requires ({})",
                required.join(" ")
            ),
            challenges: vec![format!("Bearer {REALM}, error=\"insufficient_scope\", scope=\"{}\"", required.join(" "))],
        }
    }

    /// A credential of `kind` that does not hold; `reason` says why without quoting it.
    pub fn invalid(kind: PlanSecurityType, reason: &str) -> Self {
        let (key, error) = match kind {
            PlanSecurityType::ApiKey => ("API_KEY_INVALID", None),
            PlanSecurityType::Mtls => ("CLIENT_CERTIFICATE_INVALID", None),
            PlanSecurityType::OAuth2 => ("OAUTH2_INVALID_ACCESS_TOKEN", Some("invalid_token")),
            _ => ("JWT_INVALID_TOKEN", Some("invalid_token")),
        };
        let challenges = challenge(kind)
            .map(|challenge| match error {
                Some(error) => format!("{challenge}, error=\"{error}\""),
                None => challenge,
            })
            .into_iter()
            .collect();
        Self { status: StatusCode::UNAUTHORIZED, key, message: format!("Unauthorized: {reason}"), challenges }
    }

    pub fn into_response(self) -> Response {
        let mut response = json_error(self.status, &self.message, Some(self.key));
        for challenge in &self.challenges {
            if let Ok(value) = HeaderValue::from_str(challenge) {
                response.headers_mut().append(http::header::WWW_AUTHENTICATE, value);
            }
        }
        response
    }
}
