//! `plans[]`: who may call an API, in Gravitee's v4 plan shapes (docs/plans.md). A plan's
//! `security.configuration` is read per type; fields kafka-edge does not implement are reported as
//! ignored, except those whose absence would weaken a check, which are problems when enabled.

use crate::api::Flow;
use crate::value::{lenient_bool, lenient_u64, string_enum};
use serde::Deserialize;

string_enum!(
    /// `plans[].security.type`.
    PlanSecurityType { KeyLess => "key-less" | "keyless", ApiKey => "api-key", Jwt => "jwt", OAuth2 => "oauth2", Mtls => "mtls" }
);

string_enum!(
    /// `plans[].mode`.
    PlanMode { Standard => "STANDARD", Push => "PUSH" }
);

string_enum!(
    /// `plans[].status`: only `PUBLISHED` and `DEPRECATED` plans take requests.
    PlanStatus default Published { Staging => "STAGING", Published => "PUBLISHED", Deprecated => "DEPRECATED", Closed => "CLOSED" }
);

impl PlanStatus {
    /// Whether a plan in this status takes requests (Gravitee deploys these two).
    pub fn serves(&self) -> bool {
        matches!(self, PlanStatus::Published | PlanStatus::Deprecated)
    }
}

/// `plans[]`: who may call the API.
#[derive(Debug, Clone)]
pub struct Plan {
    pub id: String,
    pub name: String,
    /// `None` for PUSH plans, which have no security block.
    pub security: Option<PlanSecurity>,
    pub mode: PlanMode,
    pub status: PlanStatus,
    /// `selectionRule`: an expression that must be true for the plan to take a request.
    pub selection_rule: Option<String>,
    /// The plan's own flows, run before the API's for the requests the plan takes.
    pub flows: Vec<Flow>,
}

/// `plans[].security`, typed by its `type`.
#[derive(Debug, Clone)]
pub enum PlanSecurity {
    KeyLess,
    ApiKey(ApiKeySecurity),
    Jwt(JwtSecurity),
    OAuth2(OAuth2Security),
    Mtls,
}

impl PlanSecurity {
    pub fn kind(&self) -> PlanSecurityType {
        match self {
            PlanSecurity::KeyLess => PlanSecurityType::KeyLess,
            PlanSecurity::ApiKey(_) => PlanSecurityType::ApiKey,
            PlanSecurity::Jwt(_) => PlanSecurityType::Jwt,
            PlanSecurity::OAuth2(_) => PlanSecurityType::OAuth2,
            PlanSecurity::Mtls => PlanSecurityType::Mtls,
        }
    }
}

fn yes() -> bool {
    true
}

/// `security.configuration` of an `api-key` plan.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeySecurity {
    /// Keep the key header and query parameter on the request (flows, expressions, record headers).
    #[serde(default, deserialize_with = "lenient_bool")]
    pub propagate_api_key: bool,
}

string_enum!(
    /// `security.configuration.signature` of a `jwt` plan: the one algorithm tokens must use.
    JwtSignature default RsaRs256 {
        RsaRs256 => "RSA_RS256", RsaRs384 => "RSA_RS384", RsaRs512 => "RSA_RS512",
        HmacHs256 => "HMAC_HS256", HmacHs384 => "HMAC_HS384", HmacHs512 => "HMAC_HS512",
        EcdsaEs256 => "ECDSA_ES256", EcdsaEs384 => "ECDSA_ES384"
    }
);

string_enum!(
    /// `security.configuration.publicKeyResolver` of a `jwt` plan.
    KeyResolver default GivenKey { GivenKey => "GIVEN_KEY", GatewayKeys => "GATEWAY_KEYS", JwksUrl => "JWKS_URL" }
);

/// `security.configuration` of a `jwt` plan.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JwtSecurity {
    #[serde(default)]
    pub signature: JwtSignature,
    #[serde(default)]
    pub public_key_resolver: KeyResolver,
    /// The key (GIVEN_KEY: an HMAC secret, or a PEM public key) or the JWKS URL (JWKS_URL).
    #[serde(default)]
    pub resolver_parameter: Option<String>,
    /// The claim that names the client; unset: `azp`, then `aud` (its first entry), then `client_id`.
    #[serde(default)]
    pub client_id_claim: Option<String>,
    /// The claim that names the user (`sub`).
    #[serde(default = "default_user_claim")]
    pub user_claim: String,
    #[serde(default = "yes", deserialize_with = "lenient_bool")]
    pub propagate_auth_header: bool,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub extract_claims: bool,
    /// Milliseconds to connect to the JWKS URL.
    #[serde(default = "default_timeout_ms", deserialize_with = "lenient_u64")]
    pub connect_timeout: u64,
    /// Milliseconds for the whole JWKS request.
    #[serde(default = "default_timeout_ms", deserialize_with = "lenient_u64")]
    pub request_timeout: u64,
    #[serde(default)]
    pub token_typ_validation: TokenTypValidation,
    /// Read only to refuse it when enabled (certificate-bound tokens are not checked).
    #[serde(default)]
    pub confirmation_method_validation: Option<serde_json::Value>,
    /// Read only to refuse it when enabled (revocation lists are not checked).
    #[serde(default)]
    pub revocation_check: Option<serde_json::Value>,
    /// Read only to refuse it when true (JWT scopes are not checked).
    #[serde(default, deserialize_with = "lenient_bool")]
    pub check_required_scopes: bool,
}

fn default_user_claim() -> String {
    "sub".into()
}

fn default_timeout_ms() -> u64 {
    2000
}

/// `tokenTypValidation`: the token's `typ` header must be one of `expectedValues`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenTypValidation {
    #[serde(default, deserialize_with = "lenient_bool")]
    pub enabled: bool,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub ignore_missing: bool,
    #[serde(default = "default_typ")]
    pub expected_values: Vec<String>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub ignore_case: bool,
}

impl Default for TokenTypValidation {
    fn default() -> Self {
        Self { enabled: false, ignore_missing: false, expected_values: default_typ(), ignore_case: false }
    }
}

fn default_typ() -> Vec<String> {
    vec!["JWT".into()]
}

/// `security.configuration` of an `oauth2` plan: the token is introspected by the API's
/// `resources[]` entry named `oauthResource`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OAuth2Security {
    pub oauth_resource: String,
    /// Gravitee's cache resource: read and not used (kafka-edge caches introspections itself).
    #[serde(default)]
    pub oauth_cache_resource: Option<String>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub extract_payload: bool,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub check_required_scopes: bool,
    #[serde(default)]
    pub required_scopes: Vec<String>,
    /// With `checkRequiredScopes`: every required scope (true) or any one of them (false).
    #[serde(default = "yes", deserialize_with = "lenient_bool")]
    pub mode_strict: bool,
    #[serde(default = "yes", deserialize_with = "lenient_bool")]
    pub propagate_auth_header: bool,
}

/// `resources[]`: services plans use. kafka-edge reads `oauth2` resources (Gravitee's generic
/// OAuth 2 authorization server); other types are reported as ignored.
#[derive(Debug, Clone)]
pub struct Resource {
    pub name: String,
    pub enabled: bool,
    /// `None` when the type is not one kafka-edge implements.
    pub oauth2: Option<OAuth2Resource>,
}

string_enum!(
    /// How the introspection endpoint is called.
    IntrospectionMethod default Get { Get => "GET", Post => "POST" }
);

/// `resources[].configuration` of type `oauth2`: the token introspection endpoint (RFC 7662).
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OAuth2Resource {
    /// Base URL; the introspection endpoint is appended.
    #[serde(default)]
    pub authorization_server_url: String,
    #[serde(default = "default_introspection_endpoint")]
    pub introspection_endpoint: String,
    #[serde(default)]
    pub introspection_endpoint_method: IntrospectionMethod,
    #[serde(default)]
    pub client_id: String,
    #[serde(default)]
    pub client_secret: crate::subscription::Secret,
    #[serde(default = "yes", deserialize_with = "lenient_bool")]
    pub use_client_authorization_header: bool,
    #[serde(default = "default_authorization_header")]
    pub client_authorization_header_name: String,
    #[serde(default = "default_authorization_scheme")]
    pub client_authorization_header_scheme: String,
    #[serde(default = "yes", deserialize_with = "lenient_bool")]
    pub token_is_supplied_by_query_param: bool,
    #[serde(default = "default_token_name")]
    pub token_query_param_name: String,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub token_is_supplied_by_http_header: bool,
    #[serde(default)]
    pub token_header_name: Option<String>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub token_is_supplied_by_form_url_encoded: bool,
    #[serde(default = "default_token_name")]
    pub token_form_url_encoded_name: String,
    #[serde(default = "default_user_claim")]
    pub user_claim: String,
    #[serde(default = "default_scope_separator")]
    pub scope_separator: String,
}

impl std::fmt::Debug for OAuth2Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuth2Resource")
            .field("authorization_server_url", &self.authorization_server_url)
            .field("introspection_endpoint", &self.introspection_endpoint)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .finish_non_exhaustive()
    }
}

impl OAuth2Resource {
    /// The introspection URL: the server URL and the endpoint joined by one slash.
    pub fn introspection_url(&self) -> String {
        let base = self.authorization_server_url.trim_end_matches('/');
        let endpoint = self.introspection_endpoint.trim_start_matches('/');
        if base.is_empty() {
            self.introspection_endpoint.clone()
        } else {
            format!("{base}/{endpoint}")
        }
    }
}

fn default_introspection_endpoint() -> String {
    "/oauth/check_token".into()
}

fn default_authorization_header() -> String {
    "Authorization".into()
}

fn default_authorization_scheme() -> String {
    "Basic".into()
}

fn default_token_name() -> String {
    "token".into()
}

fn default_scope_separator() -> String {
    " ".into()
}
