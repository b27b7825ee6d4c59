//! Plans (docs/plans.md): which plan of an API takes a request, whether the credential it carries
//! holds, and who is calling (the client identifier, so the default consumer group).
//!
//! The plan is chosen by the credential the request carries: a Bearer token goes to the `jwt`
//! plans (when it reads as a JWT and the API has some), else to the `oauth2` plans; an API key to the `api-key` plans, a client certificate to the
//! `mtls` plans, a request without any to the `key-less` plans. A credential that is present and fails is a 401, never served as key-less.
//! Among plans of one kind, the first whose `selectionRule` holds takes the request.

mod api_key;
mod jwt;
mod mtls;
mod oauth2;
mod refusal;
mod revocation;

pub use api_key::{check_key, generate_key, hash_key, ApiKeyError, API_KEY_HEADER, API_KEY_QUERY};
pub use refusal::Refusal;
pub use revocation::Revocations;

use crate::client_identifier;
use crate::listener::ClientCertificate;
use crate::state::StateStore;
use http::request::Parts;
use kafka_edge_definition::{ApiDefinition, PlanMode, PlanSecurity, PlanSecurityType, Problem};
use kafka_edge_el::Template;
use kafka_edge_message::{ExecutionContext, Scope};
use kafka_edge_policies::ApiFlows;
use std::net::IpAddr;

/// Context attributes a plan sets, as Gravitee names them.
pub const ATTR_PLAN: &str = "gravitee.attribute.plan";
/// The subscription of an API key (Gravitee's `user-id`).
pub const ATTR_SUBSCRIPTION: &str = "gravitee.attribute.user-id";
/// The user a JWT names (its `userClaim`).
pub const ATTR_USER: &str = "gravitee.attribute.user";
pub const ATTR_CLIENT_IDENTIFIER: &str = "gravitee.attribute.clientIdentifier";

/// The plans of an API that take requests (STANDARD mode, PUBLISHED or DEPRECATED), compiled.
pub struct Plans {
    plans: Vec<CompiledPlan>,
    /// Every `api-key` plan, serving or not: keys may be issued before a plan is published.
    api_key_plans: Vec<String>,
    /// Every `mtls` plan, serving or not.
    mtls_plans: Vec<String>,
    /// No STANDARD plan at all: the API is served to everyone, as a key-less plan would.
    open: bool,
}

/// One plan, ready to check requests.
pub struct CompiledPlan {
    pub id: String,
    guard: Guard,
    selection_rule: Option<Template>,
    /// The plan's own flows, run before the API's.
    pub flows: ApiFlows,
}

enum Guard {
    KeyLess,
    ApiKey { propagate: bool },
    Jwt(Box<jwt::JwtGuard>),
    OAuth2(Box<oauth2::OAuth2Guard>),
    Mtls,
}

impl Guard {
    fn kind(&self) -> PlanSecurityType {
        match self {
            Guard::KeyLess => PlanSecurityType::KeyLess,
            Guard::ApiKey { .. } => PlanSecurityType::ApiKey,
            Guard::Jwt(_) => PlanSecurityType::Jwt,
            Guard::OAuth2(_) => PlanSecurityType::OAuth2,
            Guard::Mtls => PlanSecurityType::Mtls,
        }
    }
}

/// What a request was admitted as.
pub struct Admission<'p> {
    /// `None` when the API has no STANDARD plan.
    pub plan: Option<&'p CompiledPlan>,
    pub client_identifier: String,
    /// The state record that admitted the request, when revoking it must end its streams.
    pub revocable: Option<String>,
    /// Context attributes the plan sets (Gravitee's names: `api-key`, `jwt.token`, `user`, …).
    pub attributes: Vec<(String, String)>,
    /// `jwt.claims`, for expressions, when the plan extracts them.
    pub claims: Option<kafka_edge_el::Value>,
}

/// The credentials a request carries.
#[derive(Default)]
pub struct Presented {
    bearer: Option<String>,
    api_key: Option<String>,
    /// The DER of the connection's client certificate.
    certificate: Option<ClientCertificate>,
}

/// The query parameter a Bearer token may come in instead of `Authorization`.
pub const ACCESS_TOKEN_QUERY: &str = "access_token";

impl Presented {
    /// `Authorization: Bearer` (else the `access_token` query parameter) and the API key.
    pub fn read(parts: &Parts) -> Self {
        let query = kafka_edge_entrypoints::query::parse(parts.uri.query());
        let from_header =
            parts.headers.get(http::header::AUTHORIZATION).and_then(|value| value.to_str().ok()).and_then(|value| {
                let (scheme, token) = value.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned())
            });
        let bearer =
            from_header.or_else(|| query_parameter(&query, ACCESS_TOKEN_QUERY)).filter(|token| !token.is_empty());
        let certificate = parts.extensions.get::<ClientCertificate>().cloned();
        Self { bearer, api_key: api_key::presented(parts, &query), certificate }
    }
}

/// The first non-empty value of a query parameter.
fn query_parameter(query: &[(String, String)], name: &str) -> Option<String> {
    query.iter().find(|(found, value)| found == name && !value.is_empty()).map(|(_, value)| value.clone())
}

/// A claim's text: a non-empty string, or the first non-empty entry of a list (`aud`).
fn claim_text(claims: &serde_json::Map<String, serde_json::Value>, name: &str) -> Option<String> {
    match claims.get(name)? {
        serde_json::Value::String(value) => Some(value.clone()),
        serde_json::Value::Array(values) => values.first().and_then(serde_json::Value::as_str).map(str::to_owned),
        _ => None,
    }
    .filter(|value| !value.is_empty())
}

impl Plans {
    /// Compiles the STANDARD plans that take requests; problems carry their path below the
    /// definition's root (`plans[1].security.configuration.resolverParameter`).
    pub fn build(definition: &ApiDefinition) -> Result<Plans, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut plans = Vec::new();
        let standard: Vec<_> =
            definition.plans.iter().enumerate().filter(|(_, plan)| plan.mode == PlanMode::Standard).collect();
        for (index, plan) in &standard {
            let base = format!("plans[{index}]");
            // Every plan is checked, so that a mistake shows before the plan is published.
            let flows = ApiFlows::compile(&plan.flows)
                .map_err(|found| problems.extend(found.into_iter().map(|p| p.under(&base))))
                .ok();
            let selection_rule = plan.selection_rule.as_deref().and_then(|rule| {
                // Gravitee takes a rule written `#…` (its v3 form) as `{#…}`.
                let rule =
                    if rule.trim_start().starts_with('#') { format!("{{{}}}", rule.trim()) } else { rule.to_owned() };
                Template::parse(&rule)
                    .map_err(|error| {
                        problems.push(
                            Problem::new("selectionRule", format!("invalid expression `{rule}`: {error}")).under(&base),
                        )
                    })
                    .ok()
            });
            let guard = match &plan.security {
                None | Some(PlanSecurity::KeyLess) => Some(Guard::KeyLess),
                Some(PlanSecurity::ApiKey(configuration)) => {
                    Some(Guard::ApiKey { propagate: configuration.propagate_api_key })
                }
                Some(PlanSecurity::Mtls) => Some(Guard::Mtls),
                Some(PlanSecurity::Jwt(configuration)) => jwt::JwtGuard::build(configuration)
                    .map_err(|problem| problems.push(problem.under(&format!("{base}.security.configuration"))))
                    .ok()
                    .map(|guard| Guard::Jwt(Box::new(guard))),
                Some(PlanSecurity::OAuth2(configuration)) => {
                    // The definition's validation checked that the resource exists and is oauth2.
                    let resource = definition
                        .resources
                        .iter()
                        .find(|resource| resource.name == configuration.oauth_resource)
                        .and_then(|resource| resource.oauth2.as_ref());
                    resource.and_then(|resource| {
                        oauth2::OAuth2Guard::build(configuration, resource)
                            .map_err(|problem| problems.push(problem.under(&format!("{base}.security.configuration"))))
                            .ok()
                            .map(|guard| Guard::OAuth2(Box::new(guard)))
                    })
                }
            };
            if let (Some(flows), Some(guard)) = (flows, guard) {
                if plan.status.serves() {
                    plans.push(CompiledPlan { id: plan.id.clone(), guard, selection_rule, flows });
                }
            }
        }
        let ids = |kind: PlanSecurityType| {
            standard
                .iter()
                .filter(|(_, plan)| plan.security.as_ref().is_some_and(|security| security.kind() == kind))
                .map(|(_, plan)| plan.id.clone())
                .collect()
        };
        let (api_key_plans, mtls_plans) = (ids(PlanSecurityType::ApiKey), ids(PlanSecurityType::Mtls));
        if problems.is_empty() {
            Ok(Plans { plans, api_key_plans, mtls_plans, open: standard.is_empty() })
        } else {
            Err(problems)
        }
    }

    /// The plan kinds that take requests, for logs and `WWW-Authenticate`.
    pub fn kinds(&self) -> Vec<PlanSecurityType> {
        let mut kinds: Vec<PlanSecurityType> = Vec::new();
        for plan in &self.plans {
            if !kinds.contains(&plan.guard.kind()) {
                kinds.push(plan.guard.kind());
            }
        }
        kinds
    }

    fn of_kind(&self, kind: PlanSecurityType) -> impl Iterator<Item = &CompiledPlan> {
        self.plans.iter().filter(move |plan| plan.guard.kind() == kind)
    }

    /// Chooses the plan and checks the credential. `context` is the request as expressions see it
    /// (for selection rules); `remote` is the client's address (for key-less identifiers).
    pub async fn admit<'p>(
        &'p self,
        presented: &Presented,
        context: &ExecutionContext,
        headers: &http::HeaderMap,
        remote: IpAddr,
        store: Option<&dyn StateStore>,
    ) -> Result<Admission<'p>, Refusal> {
        let mut admission = self.choose(presented, context, remote, store).await?;
        let credentialed = admission.plan.is_some_and(|plan| plan.kind() != PlanSecurityType::KeyLess);
        let separator = if credentialed { '/' } else { '-' };
        admission.client_identifier = client_identifier::with_sent(admission.client_identifier, headers, separator);
        admission.attributes.push((ATTR_CLIENT_IDENTIFIER.into(), admission.client_identifier.clone()));
        Ok(admission)
    }

    async fn choose<'p>(
        &'p self,
        presented: &Presented,
        context: &ExecutionContext,
        remote: IpAddr,
        store: Option<&dyn StateStore>,
    ) -> Result<Admission<'p>, Refusal> {
        let key_less = |plan: Option<&'p CompiledPlan>| Admission {
            plan,
            client_identifier: client_identifier::anonymous(context.api_id(), remote),
            revocable: None,
            attributes: plan.map(|plan| vec![(ATTR_PLAN.to_string(), plan.id.clone())]).unwrap_or_default(),
            claims: None,
        };
        if self.open {
            return Ok(key_less(None));
        }
        let scope = Scope::request(context);
        let selected =
            |plan: &&CompiledPlan| plan.selection_rule.as_ref().is_none_or(|rule| rule.evaluate_condition(&scope));
        let kinds = self.kinds();
        if let Some(token) = presented.bearer.as_deref() {
            if kinds.contains(&PlanSecurityType::Jwt) && jwt::looks_like_jwt(token) {
                let candidates: Vec<&CompiledPlan> = self.of_kind(PlanSecurityType::Jwt).filter(selected).collect();
                return jwt::admit(&candidates, token).await;
            }
            if kinds.contains(&PlanSecurityType::OAuth2) {
                let candidates: Vec<&CompiledPlan> = self.of_kind(PlanSecurityType::OAuth2).filter(selected).collect();
                return oauth2::admit(&candidates, token).await;
            }
            // A Bearer token for an API that takes JWTs is an attempt to authenticate: never key-less.
            if kinds.contains(&PlanSecurityType::Jwt) {
                return Err(Refusal::invalid(PlanSecurityType::Jwt, "the Bearer token is not a JWT"));
            }
        }
        if let Some(key) = presented.api_key.as_deref().filter(|_| kinds.contains(&PlanSecurityType::ApiKey)) {
            let candidates: Vec<&CompiledPlan> = self.of_kind(PlanSecurityType::ApiKey).filter(selected).collect();
            return api_key::admit(&candidates, key, context.api_id(), store);
        }
        if let Some(certificate) = presented.certificate.as_ref().filter(|_| kinds.contains(&PlanSecurityType::Mtls)) {
            let candidates: Vec<&CompiledPlan> = self.of_kind(PlanSecurityType::Mtls).filter(selected).collect();
            return mtls::admit(&candidates, &certificate.0, context.api_id(), store);
        }
        if let Some(plan) = self.of_kind(PlanSecurityType::KeyLess).find(selected) {
            return Ok(key_less(Some(plan)));
        }
        Err(Refusal::missing(&kinds, presented))
    }

    /// Whether the API has no STANDARD plan: it reads no credential.
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Whether `plan` is an `api-key` plan of the API (keys can be issued for it).
    pub fn takes_api_keys(&self, plan: &str) -> bool {
        self.api_key_plans.iter().any(|id| id == plan)
    }

    /// Whether `plan` is an `mtls` plan of the API (certificates can be registered for it).
    pub fn takes_certificates(&self, plan: &str) -> bool {
        self.mtls_plans.iter().any(|id| id == plan)
    }
}

impl CompiledPlan {
    /// Whether the credential stays on the request once the plan admitted it.
    pub fn propagates_credential(&self) -> bool {
        match &self.guard {
            Guard::KeyLess => true,
            Guard::ApiKey { propagate } => *propagate,
            Guard::Jwt(jwt) => jwt.propagates_auth_header(),
            Guard::OAuth2(oauth2) => oauth2.propagates_auth_header(),
            Guard::Mtls => true,
        }
    }

    pub fn kind(&self) -> PlanSecurityType {
        self.guard.kind()
    }
}
