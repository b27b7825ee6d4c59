//! `jwt` plans: a Bearer JWT signed with the plan's one algorithm, by the given key or a key of a
//! JWKS URL, within its `exp`/`nbf` (with [`CLOCK_SKEW`]). The token's algorithm must be the
//! plan's: `alg: none` and an HMAC token presented to an RSA or EC key are refused.

use super::{Admission, CompiledPlan, Guard, Refusal, ATTR_PLAN, ATTR_USER};
use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use kafka_edge_definition::{JwtSecurity, JwtSignature, KeyResolver, PlanSecurityType, Problem, TokenTypValidation};
use serde_json::{Map, Value};
use std::time::{Duration, Instant};

/// How far `exp` and `nbf` may be off, for clocks that disagree a little (Gravitee's JWT library
/// allows the same 60 s).
pub const CLOCK_SKEW: Duration = Duration::from_secs(60);
/// A JWKS is fetched again after this long, or on a `kid` it does not hold (at most once a second).
const JWKS_MAX_AGE: Duration = Duration::from_secs(300);
const JWKS_MIN_INTERVAL: Duration = Duration::from_secs(1);

pub(super) struct JwtGuard {
    algorithm: Algorithm,
    keys: Keys,
    client_id_claim: Option<String>,
    user_claim: String,
    propagate_auth_header: bool,
    extract_claims: bool,
    typ: TokenTypValidation,
}

enum Keys {
    Given(DecodingKey),
    Jwks(Jwks),
}

struct Jwks {
    url: String,
    client: reqwest::Client,
    /// Never held across an await: requests with known keys never wait for a fetch.
    cache: std::sync::RwLock<JwksCache>,
    /// One fetch at a time; requests that need it wait for it, the others use the cache.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct JwksCache {
    keys: Vec<(Option<String>, DecodingKey)>,
    fetched: Option<Instant>,
}

fn algorithm(signature: JwtSignature) -> Algorithm {
    match signature {
        JwtSignature::RsaRs256 => Algorithm::RS256,
        JwtSignature::RsaRs384 => Algorithm::RS384,
        JwtSignature::RsaRs512 => Algorithm::RS512,
        JwtSignature::HmacHs256 => Algorithm::HS256,
        JwtSignature::HmacHs384 => Algorithm::HS384,
        JwtSignature::HmacHs512 => Algorithm::HS512,
        JwtSignature::EcdsaEs256 => Algorithm::ES256,
        JwtSignature::EcdsaEs384 => Algorithm::ES384,
    }
}

/// Whether `token` has a JWT's shape (three base64url parts, a JSON header naming `alg`); a
/// Bearer token that does not is not for a `jwt` plan.
pub(super) fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3 && jsonwebtoken::decode_header(token).is_ok()
}

impl JwtGuard {
    /// Problems carry their path below the plan's `security.configuration`.
    pub(super) fn build(configuration: &JwtSecurity) -> Result<Self, Problem> {
        let algorithm = algorithm(configuration.signature);
        let parameter = configuration.resolver_parameter.as_deref().map(str::trim).unwrap_or_default();
        let keys = match configuration.public_key_resolver {
            KeyResolver::JwksUrl => {
                let client = reqwest::Client::builder()
                    .connect_timeout(Duration::from_millis(configuration.connect_timeout))
                    .timeout(Duration::from_millis(configuration.request_timeout))
                    .build()
                    .map_err(|error| {
                        Problem::new("resolverParameter", format!("cannot build the JWKS client: {error}"))
                    })?;
                Keys::Jwks(Jwks {
                    url: parameter.to_owned(),
                    client,
                    cache: Default::default(),
                    fetching: Default::default(),
                })
            }
            _ => Keys::Given(given_key(algorithm, parameter)?),
        };
        Ok(Self {
            algorithm,
            keys,
            client_id_claim: configuration.client_id_claim.clone().filter(|claim| !claim.trim().is_empty()),
            user_claim: configuration.user_claim.clone(),
            propagate_auth_header: configuration.propagate_auth_header,
            extract_claims: configuration.extract_claims,
            typ: configuration.token_typ_validation.clone(),
        })
    }

    pub(super) fn propagates_auth_header(&self) -> bool {
        self.propagate_auth_header
    }

    /// The token's claims when it verifies; else why not, without quoting it.
    async fn verify(&self, token: &str) -> Result<Map<String, Value>, Rejection> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid("the token is not a valid JWT"))?;
        if header.alg != self.algorithm {
            let reason = format!("the token is signed with {:?}; this plan accepts {:?}", header.alg, self.algorithm);
            return Err(Rejection::Invalid(reason));
        }
        self.check_typ(header.typ.as_deref()).map_err(Rejection::Invalid)?;
        let key = match &self.keys {
            Keys::Given(key) => key.clone(),
            Keys::Jwks(jwks) => jwks.key(header.kid.as_deref(), self.algorithm).await?,
        };
        let mut validation = Validation::new(self.algorithm);
        validation.leeway = CLOCK_SKEW.as_secs();
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation).map(|data| data.claims).map_err(|error| {
            invalid(match error.kind() {
                ErrorKind::ExpiredSignature => "the token has expired",
                ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)",
                ErrorKind::InvalidSignature => "the token's signature does not verify",
                ErrorKind::InvalidAlgorithm | ErrorKind::InvalidKeyFormat => {
                    "the token's algorithm does not match the plan's key"
                }
                _ => "the token is not a valid JWT",
            })
        })
    }

    fn check_typ(&self, typ: Option<&str>) -> Result<(), String> {
        if !self.typ.enabled {
            return Ok(());
        }
        let Some(typ) = typ else {
            return if self.typ.ignore_missing { Ok(()) } else { Err("the token has no `typ` header".into()) };
        };
        let expected = self.typ.expected_values.iter().any(|value| {
            if self.typ.ignore_case {
                value.eq_ignore_ascii_case(typ)
            } else {
                value == typ
            }
        });
        if expected {
            Ok(())
        } else {
            Err("the token's `typ` header is not one this plan accepts".into())
        }
    }

    /// The client the token names: the configured claim, else `azp`, else `aud`, else
    /// `client_id` (Gravitee's order); of a list, its first entry.
    fn client_id(&self, claims: &Map<String, Value>) -> Result<String, String> {
        let text = |name: &str| super::claim_text(claims, name);
        match &self.client_id_claim {
            Some(claim) => text(claim).ok_or_else(|| format!("the token has no `{claim}` claim naming the client")),
            None => text("azp")
                .or_else(|| text("aud"))
                .or_else(|| text("client_id"))
                .ok_or_else(|| "the token has no `azp`, `aud` or `client_id` claim naming the client".into()),
        }
    }
}

fn given_key(algorithm: Algorithm, parameter: &str) -> Result<DecodingKey, Problem> {
    let problem =
        |what: &str| Problem::new("resolverParameter", format!("not {what} (the signature is {algorithm:?})"));
    match algorithm {
        // As Gravitee: a secret that reads as standard base64 is its decoded bytes, else its text.
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
            Ok(match base64::engine::general_purpose::STANDARD.decode(parameter) {
                Ok(bytes) => DecodingKey::from_secret(&bytes),
                Err(_) => DecodingKey::from_secret(parameter.as_bytes()),
            })
        }
        Algorithm::ES256 | Algorithm::ES384 => {
            DecodingKey::from_ec_pem(parameter.as_bytes()).map_err(|_| problem("a PEM EC public key"))
        }
        _ => DecodingKey::from_rsa_pem(parameter.as_bytes()).map_err(|_| problem("a PEM RSA public key")),
    }
}

impl Jwks {
    /// The key for `kid` (any key of the set when the token names none): from the cache, else
    /// from a fresh fetch. A stale cache still serves while another request refreshes it.
    async fn key(&self, kid: Option<&str>, algorithm: Algorithm) -> Result<DecodingKey, Rejection> {
        let (found, stale) = self.cached(kid);
        match (found, stale) {
            (Some(key), false) => return Ok(key),
            (Some(key), true) => {
                // Whoever gets the guard refreshes; the others keep using the stale key.
                let Ok(_guard) = self.fetching.try_lock() else { return Ok(key) };
                self.refresh(algorithm).await;
            }
            (None, _) => {
                let _guard = self.fetching.lock().await;
                // A fetch that ran while this request waited may have brought the key.
                if let (Some(key), _) = self.cached(kid) {
                    return Ok(key);
                }
                self.refresh(algorithm).await;
            }
        }
        let (found, _) = self.cached(kid);
        if let Some(key) = found {
            return Ok(key);
        }
        let never_read = self.read().keys.is_empty();
        Err(match kid {
            // Never read: the token cannot be judged.
            _ if never_read => Rejection::Unavailable("the plan's JWKS URL cannot be read".into()),
            Some(_) => invalid("the token's key id (kid) is not in the plan's JWKS"),
            None => invalid("the token names no key id (kid) and the plan's JWKS has several keys"),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, JwksCache> {
        self.cache.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The cached key for `kid` (a token without `kid` only against a set of one key), and
    /// whether the cache is due for a refresh.
    fn cached(&self, kid: Option<&str>) -> (Option<DecodingKey>, bool) {
        let cache = self.read();
        let stale = cache.fetched.is_none_or(|at| at.elapsed() > JWKS_MAX_AGE);
        let key = match kid {
            Some(kid) => cache.keys.iter().find(|(id, _)| id.as_deref() == Some(kid)).map(|(_, key)| key.clone()),
            None if cache.keys.len() == 1 => cache.keys.first().map(|(_, key)| key.clone()),
            None => None,
        };
        (key, stale)
    }

    /// Fetches the set again unless that happened less than a second ago. Called with `fetching`
    /// held.
    async fn refresh(&self, algorithm: Algorithm) {
        let recent = self.read().fetched.is_some_and(|at| at.elapsed() < JWKS_MIN_INTERVAL);
        if recent {
            return;
        }
        let fetched = self.fetch(algorithm).await;
        let mut cache = self.cache.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        match fetched {
            Ok(keys) => *cache = JwksCache { keys, fetched: Some(Instant::now()) },
            Err(reason) => {
                // Logged once per attempt, at most once a second; the cached keys stay in use.
                tracing::warn!(reason, "Cannot refresh the JWKS of a jwt plan.");
                cache.fetched = Some(Instant::now());
            }
        }
    }

    async fn fetch(&self, algorithm: Algorithm) -> Result<Vec<(Option<String>, DecodingKey)>, String> {
        let response = self.client.get(&self.url).send().await.map_err(|error| format!("{}", error.without_url()))?;
        if !response.status().is_success() {
            return Err(format!("the JWKS URL answered {}", response.status()));
        }
        let set: JwkSet = response.json().await.map_err(|_| "the JWKS URL did not answer a JWK set".to_string())?;
        Ok(set
            .keys
            .iter()
            // A key that names another algorithm, or is for encryption, is not this plan's.
            .filter(|jwk| jwk.common.key_algorithm.is_none_or(|alg| format!("{alg:?}") == format!("{algorithm:?}")))
            .filter(|jwk| !matches!(jwk.common.public_key_use, Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)))
            .filter_map(|jwk| Some((jwk.common.key_id.clone(), DecodingKey::from_jwk(jwk).ok()?)))
            .collect())
    }
}

/// Why a token was not admitted.
enum Rejection {
    Invalid(String),
    /// The token cannot be judged now (the JWKS cannot be read).
    Unavailable(String),
}

fn invalid(reason: &str) -> Rejection {
    Rejection::Invalid(reason.into())
}

/// Tries the candidate plans in order; the first whose key verifies the token admits it.
pub(super) async fn admit<'p>(candidates: &[&'p CompiledPlan], token: &str) -> Result<Admission<'p>, Refusal> {
    let mut rejection = invalid("no jwt plan takes this request (closed, or its selection rule)");
    for plan in candidates {
        let Guard::Jwt(guard) = &plan.guard else { continue };
        let verified = guard.verify(token).await;
        match verified.and_then(|claims| Ok((guard.client_id(&claims).map_err(Rejection::Invalid)?, claims))) {
            Ok((client_id, claims)) => {
                let mut attributes = vec![(ATTR_PLAN.to_string(), plan.id.clone())];
                if let Some(Value::String(user)) = claims.get(&guard.user_claim) {
                    attributes.push((ATTR_USER.into(), user.clone()));
                }
                attributes.push(("oauth.client_id".into(), client_id.clone()));
                if guard.propagate_auth_header {
                    attributes.push(("jwt.token".into(), token.to_owned()));
                }
                let claims = guard.extract_claims.then(|| kafka_edge_el::Value::from_json(&Value::Object(claims)));
                return Ok(Admission {
                    plan: Some(plan),
                    client_identifier: client_id,
                    revocable: None,
                    attributes,
                    claims,
                });
            }
            Err(why) => rejection = why,
        }
    }
    Err(match rejection {
        Rejection::Invalid(reason) => Refusal::invalid(PlanSecurityType::Jwt, &reason),
        Rejection::Unavailable(reason) => Refusal::unavailable("JWT_JWKS_RESOLUTION_ERROR", &reason),
    })
}
