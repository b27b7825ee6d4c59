//! What a JAAS line means: the five login modules Kafka users configure, with the options each
//! one reads. The SASL settings for librdkafka are derived from these, not from the raw line.
//! `Debug` redacts every password, secret and token.

use super::{JaasConfig, JaasError};
use crate::security::client_credentials::ClientCredentials;
use std::fmt;

const PLAIN: &str = "org.apache.kafka.common.security.plain.PlainLoginModule";
const SCRAM: &str = "org.apache.kafka.common.security.scram.ScramLoginModule";
const OAUTHBEARER: &str = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule";
const KERBEROS: &str = "com.sun.security.auth.module.Krb5LoginModule";
const MSK_IAM: &str = "software.amazon.msk.auth.iam.IAMLoginModule";

/// The supported classes, for error messages.
pub(super) const SUPPORTED: &str = "org.apache.kafka.common.security.plain.PlainLoginModule, \
    org.apache.kafka.common.security.scram.ScramLoginModule, \
    org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule, \
    com.sun.security.auth.module.Krb5LoginModule, software.amazon.msk.auth.iam.IAMLoginModule";

const REDACTED: &str = "<redacted>";
const UNSECURED_CLAIM: &str = "unsecuredLoginStringClaim_";

/// A login module and its options.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) enum LoginModule {
    /// SASL/PLAIN.
    Plain { username: String, password: String },
    /// SASL/SCRAM-SHA-256 or -512 (the mechanism is set apart from the JAAS line).
    Scram { username: String, password: String },
    /// SASL/OAUTHBEARER.
    OAuthBearer(OAuthBearerLogin),
    /// SASL/GSSAPI.
    Kerberos { principal: Option<String>, key_tab: Option<String>, service_name: Option<String>, use_key_tab: bool },
    /// AWS MSK IAM, carried over SASL/OAUTHBEARER.
    AwsMskIam(MskIamLogin),
}

/// Where an OAUTHBEARER token comes from.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) enum OAuthBearerLogin {
    /// `access_token="…"`: a token obtained elsewhere.
    AccessToken(String),
    /// `unsecuredLoginStringClaim_sub="…"`: an unsigned JWT for brokers with the unsecured validator;
    /// `claims` are the other `unsecuredLoginStringClaim_<name>` options, by name.
    Unsecured { principal: String, claims: Vec<(String, String)> },
    /// `clientId`, `clientSecret`, `scope` and a token endpoint: tokens of the OAuth 2 client
    /// credentials grant.
    ClientCredentials(ClientCredentials),
}

/// The option names of a client credentials login: KIP-768's (`clientId` …) or those of Strimzi's
/// OAuth library (`oauth.client.id` …), so that either line works unchanged. Kafka's own client
/// takes the endpoint as a client property, `sasl.oauthbearer.token.endpoint.url`, which a
/// Gravitee definition cannot carry: here it is a JAAS option of that name too.
const TOKEN_ENDPOINT: [&str; 2] = ["oauth.token.endpoint.uri", "sasl.oauthbearer.token.endpoint.url"];
const CLIENT_ID: [&str; 2] = ["clientId", "oauth.client.id"];
const CLIENT_SECRET: [&str; 2] = ["clientSecret", "oauth.client.secret"];
const SCOPE: [&str; 2] = ["scope", "oauth.scope"];

/// Options of `software.amazon.msk.auth.iam.IAMLoginModule`, named as in aws-msk-iam-auth.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub(crate) struct MskIamLogin {
    /// `awsProfileName`: a profile of the shared credentials file.
    pub profile: Option<String>,
    /// `awsRoleArn`: a role to assume through STS.
    pub role_arn: Option<String>,
    /// `awsRoleSessionName`.
    pub role_session_name: Option<String>,
    /// `awsRoleAccessKeyId`: the credentials that assume the role, instead of the default chain.
    pub role_access_key_id: Option<String>,
    /// `awsRoleSecretAccessKey`.
    pub role_secret_access_key: Option<String>,
    /// `awsRoleSessionToken`, when the role credentials are themselves temporary.
    pub role_session_token: Option<String>,
    /// `awsRoleExternalId`.
    pub role_external_id: Option<String>,
    /// `awsStsRegion`: the region of the STS endpoint (the global endpoint otherwise).
    pub sts_region: Option<String>,
}

impl LoginModule {
    /// Reads the options of a supported login module.
    pub fn from_jaas(config: &JaasConfig) -> Result<LoginModule, JaasError> {
        match config.login_module.as_str() {
            PLAIN => {
                let (username, password) = credentials(config, "PlainLoginModule")?;
                Ok(LoginModule::Plain { username, password })
            }
            SCRAM => {
                let (username, password) = credentials(config, "ScramLoginModule")?;
                Ok(LoginModule::Scram { username, password })
            }
            OAUTHBEARER => oauthbearer(config).map(LoginModule::OAuthBearer),
            KERBEROS => kerberos(config),
            MSK_IAM => msk_iam(config).map(LoginModule::AwsMskIam),
            other if is_class_name(other) => Err(JaasError::UnsupportedModule { module: other.to_string() }),
            // Not shaped like a class: it may be a mistyped secret, so it is not repeated.
            _ => Err(JaasError::NotAClassName),
        }
    }
}

fn owned(config: &JaasConfig, name: &str) -> Option<String> {
    config.option(name).map(str::to_string)
}

fn required(config: &JaasConfig, module: &'static str, option: &'static str) -> Result<String, JaasError> {
    owned(config, option).ok_or(JaasError::MissingOption { module, option })
}

fn credentials(config: &JaasConfig, module: &'static str) -> Result<(String, String), JaasError> {
    Ok((required(config, module, "username")?, required(config, module, "password")?))
}

/// The options whose name starts with `prefix`, by the rest of their name (the last one wins).
fn prefixed(config: &JaasConfig, prefix: &str) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = Vec::new();
    for (name, value) in &config.options {
        if let Some(rest) = name.strip_prefix(prefix).filter(|rest| !rest.is_empty()) {
            found.retain(|(known, _)| known != rest);
            found.push((rest.to_string(), value.clone()));
        }
    }
    found
}

fn oauthbearer(config: &JaasConfig) -> Result<OAuthBearerLogin, JaasError> {
    if let Some(token) = owned(config, "access_token") {
        return Ok(OAuthBearerLogin::AccessToken(token));
    }
    if let Some(principal) = owned(config, "unsecuredLoginStringClaim_sub") {
        let claims = prefixed(config, UNSECURED_CLAIM).into_iter().filter(|(name, _)| name != "sub").collect();
        return Ok(OAuthBearerLogin::Unsecured { principal, claims });
    }
    let either = |names: [&str; 2]| names.iter().find_map(|name| owned(config, name));
    let missing = |option| JaasError::MissingOption { module: "OAuthBearerLoginModule", option };
    match (either(TOKEN_ENDPOINT), either(CLIENT_ID)) {
        (None, None) => {
            Err(missing("access_token, unsecuredLoginStringClaim_sub, or clientId with oauth.token.endpoint.uri"))
        }
        (None, Some(_)) => Err(missing("oauth.token.endpoint.uri (the token endpoint of clientId)")),
        (Some(_), None) => Err(missing("clientId")),
        (Some(token_endpoint), Some(client_id)) => {
            if !(token_endpoint.starts_with("https://") || token_endpoint.starts_with("http://")) {
                return Err(JaasError::InvalidOption {
                    option: "oauth.token.endpoint.uri",
                    expected: "an http:// or https:// URL",
                });
            }
            Ok(OAuthBearerLogin::ClientCredentials(ClientCredentials {
                token_endpoint,
                client_id,
                client_secret: either(CLIENT_SECRET).ok_or(missing("clientSecret"))?,
                scope: either(SCOPE).filter(|scope| !scope.trim().is_empty()),
            }))
        }
    }
}

fn kerberos(config: &JaasConfig) -> Result<LoginModule, JaasError> {
    let use_key_tab = match config.option("useKeyTab") {
        None => false,
        Some(value) if value.eq_ignore_ascii_case("true") => true,
        Some(value) if value.eq_ignore_ascii_case("false") => false,
        Some(_) => return Err(JaasError::InvalidOption { option: "useKeyTab", expected: "true or false" }),
    };
    Ok(LoginModule::Kerberos {
        principal: owned(config, "principal"),
        key_tab: owned(config, "keyTab"),
        service_name: owned(config, "serviceName"),
        use_key_tab,
    })
}

fn msk_iam(config: &JaasConfig) -> Result<MskIamLogin, JaasError> {
    let login = MskIamLogin {
        profile: owned(config, "awsProfileName"),
        role_arn: owned(config, "awsRoleArn"),
        role_session_name: owned(config, "awsRoleSessionName"),
        role_access_key_id: owned(config, "awsRoleAccessKeyId"),
        role_secret_access_key: owned(config, "awsRoleSecretAccessKey"),
        role_session_token: owned(config, "awsRoleSessionToken"),
        role_external_id: owned(config, "awsRoleExternalId"),
        sts_region: owned(config, "awsStsRegion"),
    };
    let module = "IAMLoginModule";
    match (&login.role_access_key_id, &login.role_secret_access_key) {
        (Some(_), None) => return Err(JaasError::MissingOption { module, option: "awsRoleSecretAccessKey" }),
        (None, Some(_)) => return Err(JaasError::MissingOption { module, option: "awsRoleAccessKeyId" }),
        _ => {}
    }
    if login.role_arn.is_none() && login.role_access_key_id.is_some() {
        return Err(JaasError::InvalidOption {
            option: "awsRoleAccessKeyId",
            expected: "given together with awsRoleArn",
        });
    }
    Ok(login)
}

/// `a.b.C`: at least two dot-separated Java identifiers.
fn is_class_name(text: &str) -> bool {
    let mut parts = 0;
    for part in text.split('.') {
        let mut chars = part.chars();
        let starts = chars.next().is_some_and(|c| c.is_alphabetic() || c == '_' || c == '$');
        if !starts || !chars.all(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            return false;
        }
        parts += 1;
    }
    parts >= 2
}

fn names(pairs: &[(String, String)]) -> Vec<&str> {
    pairs.iter().map(|(name, _)| name.as_str()).collect()
}

fn redacted(value: &Option<String>) -> Option<&'static str> {
    value.as_ref().map(|_| REDACTED)
}

impl fmt::Debug for LoginModule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoginModule::Plain { username, .. } => {
                f.debug_struct("Plain").field("username", username).field("password", &REDACTED).finish()
            }
            LoginModule::Scram { username, .. } => {
                f.debug_struct("Scram").field("username", username).field("password", &REDACTED).finish()
            }
            LoginModule::OAuthBearer(login) => f.debug_tuple("OAuthBearer").field(login).finish(),
            LoginModule::Kerberos { principal, key_tab, service_name, use_key_tab } => f
                .debug_struct("Kerberos")
                .field("principal", principal)
                .field("key_tab", key_tab)
                .field("service_name", service_name)
                .field("use_key_tab", use_key_tab)
                .finish(),
            LoginModule::AwsMskIam(login) => f.debug_tuple("AwsMskIam").field(login).finish(),
        }
    }
}

impl fmt::Debug for OAuthBearerLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OAuthBearerLogin::AccessToken(_) => f.debug_tuple("AccessToken").field(&REDACTED).finish(),
            OAuthBearerLogin::Unsecured { principal, claims } => {
                f.debug_struct("Unsecured").field("principal", principal).field("claim_names", &names(claims)).finish()
            }
            OAuthBearerLogin::ClientCredentials(credentials) => credentials.fmt(f),
        }
    }
}

impl fmt::Debug for MskIamLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MskIamLogin")
            .field("profile", &self.profile)
            .field("role_arn", &self.role_arn)
            .field("role_session_name", &self.role_session_name)
            .field("role_access_key_id", &redacted(&self.role_access_key_id))
            .field("role_secret_access_key", &redacted(&self.role_secret_access_key))
            .field("role_session_token", &redacted(&self.role_session_token))
            .field("role_external_id", &redacted(&self.role_external_id))
            .field("sts_region", &self.sts_region)
            .finish()
    }
}
