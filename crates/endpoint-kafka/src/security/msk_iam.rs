//! AWS MSK IAM authentication over SASL/OAUTHBEARER. librdkafka has no `AWS_MSK_IAM` mechanism
//! (only the Java client does), but MSK also accepts an OAUTHBEARER token that is the base64url
//! encoding of a SigV4-presigned `kafka-cluster:Connect` URL, as AWS's own signers
//! (`aws-msk-iam-sasl-signer-go`, `-python`) build it.
//!
//! Two halves, because librdkafka asks for tokens from a synchronous callback on its polling
//! thread: [`sign_token`] only computes (no I/O, safe in the callback), and
//! [`resolve_credentials`] does the I/O (an STS call, a file read) in async code that the caller
//! runs ahead of time and caches. SigV4 is implemented here on `sha2` + `hmac` and checked
//! against botocore and AWS's published test vectors. No error or `Debug` output holds a secret.

// Until the SASL settings connect AWS_MSK_IAM (issue 4), only the tests call into this module.

mod clock;
mod credentials;
mod metadata;
mod profile;
mod sigv4;
mod sts;
#[cfg(test)]
mod tests;

pub(crate) use crate::security::jaas::MskIamLogin;
pub(crate) use credentials::resolve_credentials;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long a presigned token is valid; librdkafka refreshes at about 80 % of it.
const TOKEN_EXPIRY: Duration = Duration::from_secs(900);
const SIGNING_SERVICE: &str = "kafka-cluster";
const ACTION: &str = "kafka-cluster:Connect";

/// AWS credentials. `Debug` shows the access key id (an identifier that every signed request and
/// the token itself carry in clear) and redacts the secret key and the session token.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    /// When temporary credentials (STS) stop working.
    pub expiry: Option<SystemTime>,
}

/// A token for librdkafka's `generate_oauth_token`. `Debug` redacts the token: it is a bearer
/// credential for 15 minutes.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct MskToken {
    pub token: String,
    /// Absolute expiry in epoch milliseconds: the earlier of signing + 900 s and the credentials' expiry.
    pub lifetime_ms: i64,
    /// The access key id; the broker identifies the client from the signature, not from this.
    pub principal: String,
}

/// Why no credentials could be had. The texts name sources, files, roles and endpoints, never a
/// key, secret or token.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MskIamError {
    #[error("no AWS credentials for MSK IAM; tried {tried}")]
    NoCredentials { tried: String },
    #[error("AWS_ENDPOINT_URL_STS is not an http(s) URL")]
    InvalidStsEndpoint,
    #[error("STS AssumeRole of `{role_arn}` at {endpoint} failed: {reason}")]
    StsUnreachable { role_arn: String, endpoint: String, reason: String },
    #[error("STS refused AssumeRole of `{role_arn}` at {endpoint}: HTTP {status} {code}{message}")]
    StsRefused { role_arn: String, endpoint: String, status: u16, code: String, message: String },
    #[error("STS answered AssumeRole of `{role_arn}` without a readable {missing}")]
    StsResponse { role_arn: String, missing: &'static str },
}

/// Signs a token for the cluster's `region` at `now`; `user_agent` is appended unsigned, as the
/// AWS signers do (`aws:UserAgent` in IAM policies sees it).
pub(crate) fn sign_token(region: &str, credentials: &AwsCredentials, now: SystemTime, user_agent: &str) -> MskToken {
    let host = aws_host("kafka", region);
    let scope = sigv4::Scope { credentials, region, service: SIGNING_SERVICE, time: now };
    let query = sigv4::presign(&scope, &host, &[("Action", ACTION)], TOKEN_EXPIRY.as_secs());
    let url = format!("https://{host}/?{query}&User-Agent={}", sigv4::uri_encode(user_agent));
    // X-Amz-Date has whole seconds, and the broker counts the 900 s from it.
    let signed_at = UNIX_EPOCH + Duration::from_secs(clock::epoch_seconds(now));
    let token_expiry = epoch_millis(signed_at + TOKEN_EXPIRY);
    let lifetime_ms = credentials.expiry.map_or(token_expiry, |expiry| token_expiry.min(epoch_millis(expiry)));
    MskToken { token: URL_SAFE_NO_PAD.encode(url), lifetime_ms, principal: credentials.access_key_id.clone() }
}

/// The region of an MSK bootstrap list (`b-1.c.x.kafka.eu-west-1.amazonaws.com:9098,…`, also MSK
/// Serverless `…kafka-serverless.<region>…`); `None` when no server names one, and then the
/// caller falls back on `AWS_REGION`/`AWS_DEFAULT_REGION`.
pub(crate) fn region_from_bootstrap(bootstrap: &str) -> Option<String> {
    bootstrap.split(',').find_map(|server| {
        let server = server.trim().to_ascii_lowercase();
        let host = server.rsplit_once(':').map_or(server.as_str(), |(host, _port)| host);
        let labels: Vec<&str> = host.split('.').collect();
        labels.windows(4).find_map(|window| match window {
            [service, region, "amazonaws", "com"] if is_msk_service(service) && is_region(region) => {
                Some(region.to_string())
            }
            _ => None,
        })
    })
}

fn is_msk_service(label: &str) -> bool {
    label == "kafka" || label == "kafka-serverless"
}

/// `eu-west-1`, `us-gov-west-1`, `cn-north-1`: lower-case words and a number, joined by `-`.
fn is_region(label: &str) -> bool {
    let parts: Vec<&str> = label.split('-').collect();
    parts.len() >= 3
        && parts.last().is_some_and(|last| last.chars().all(|c| c.is_ascii_digit()))
        && parts.iter().all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// `<service>.<region>.amazonaws.com`, or `.com.cn` in the China regions.
fn aws_host(service: &str, region: &str) -> String {
    let suffix = if region.starts_with("cn-") { "amazonaws.com.cn" } else { "amazonaws.com" };
    format!("{service}.{region}.{suffix}")
}

fn epoch_millis(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
}

fn redacted<T>(value: &Option<T>) -> Option<&'static str> {
    value.as_ref().map(|_| "<redacted>")
}

impl fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &redacted(&self.session_token))
            .field("expiry", &self.expiry)
            .finish()
    }
}

impl fmt::Debug for MskToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MskToken")
            .field("token", &"<redacted>")
            .field("lifetime_ms", &self.lifetime_ms)
            .field("principal", &self.principal)
            .finish()
    }
}
