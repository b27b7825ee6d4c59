//! STS `AssumeRole` over its query API (a signed form POST, an XML answer), for
//! `awsRoleArn`: enough of STS to trade base credentials for a role's temporary ones without the
//! AWS SDK. The endpoint is `sts.<awsStsRegion>.amazonaws.com`, or the global `sts.amazonaws.com`
//! (signed for `us-east-1`) as in aws-msk-iam-auth; `AWS_ENDPOINT_URL_STS` overrides it, as in
//! the AWS SDKs (and in our tests).

use super::sigv4::{self, Scope};
use super::{aws_host, clock, AwsCredentials, MskIamError};
use crate::security::error_chain;
use std::time::{Duration, SystemTime};

const TIMEOUT: Duration = Duration::from_secs(10);
const MAX_RESPONSE: usize = 64 * 1024;
const FORM: &str = "application/x-www-form-urlencoded; charset=utf-8";

/// Where AssumeRole goes and the region it is signed for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Endpoint {
    url: reqwest::Url,
    /// `host[:port]`, as the HTTP client sends it in `Host`.
    host: String,
    region: String,
}

impl Endpoint {
    /// The endpoint for `sts_region` (global when `None`), or `override_url`.
    pub(super) fn new(sts_region: Option<&str>, override_url: Option<&str>) -> Result<Endpoint, MskIamError> {
        let region = sts_region.unwrap_or("us-east-1").to_string();
        let url = match (override_url, sts_region) {
            (Some(url), _) => url.to_string(),
            (None, Some(region)) => format!("https://{}/", aws_host("sts", region)),
            (None, None) => "https://sts.amazonaws.com/".to_string(),
        };
        let url = reqwest::Url::parse(&url).map_err(|_| MskIamError::InvalidStsEndpoint)?;
        let host = match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_string(),
            (None, _) => return Err(MskIamError::InvalidStsEndpoint),
        };
        if !matches!(url.scheme(), "http" | "https") {
            return Err(MskIamError::InvalidStsEndpoint);
        }
        Ok(Endpoint { url, host, region })
    }
}

/// What to assume.
pub(super) struct AssumeRole<'a> {
    pub role_arn: &'a str,
    pub session_name: &'a str,
    pub external_id: Option<&'a str>,
}

impl AssumeRole<'_> {
    fn body(&self) -> String {
        let mut body = format!(
            "Action=AssumeRole&RoleArn={}&RoleSessionName={}",
            sigv4::uri_encode(self.role_arn),
            sigv4::uri_encode(self.session_name)
        );
        if let Some(external_id) = self.external_id {
            body.push_str(&format!("&ExternalId={}", sigv4::uri_encode(external_id)));
        }
        body.push_str("&Version=2011-06-15");
        body
    }
}

/// Assumes the role with `base` credentials, signing at `now`.
pub(super) async fn assume_role(
    endpoint: &Endpoint,
    base: &AwsCredentials,
    request: &AssumeRole<'_>,
    now: SystemTime,
) -> Result<AwsCredentials, MskIamError> {
    let body = request.body();
    let scope = Scope { credentials: base, region: &endpoint.region, service: "sts", time: now };
    let signed =
        sigv4::authorization_headers(&scope, "POST", &endpoint.host, &[("content-type", FORM)], body.as_bytes());
    let secrets = [Some(base.secret_access_key.as_str()), base.session_token.as_deref()];
    exchange(endpoint, request.role_arn, body, signed, &secrets).await
}

/// `AssumeRoleWithWebIdentity` (EKS IRSA: `AWS_WEB_IDENTITY_TOKEN_FILE` and `AWS_ROLE_ARN`): the
/// web identity token is the credential, so the request is not signed.
pub(super) async fn assume_role_with_web_identity(
    endpoint: &Endpoint,
    role_arn: &str,
    session_name: &str,
    web_identity_token: &str,
) -> Result<AwsCredentials, MskIamError> {
    let body = format!(
        "Action=AssumeRoleWithWebIdentity&RoleArn={}&RoleSessionName={}&WebIdentityToken={}&Version=2011-06-15",
        sigv4::uri_encode(role_arn),
        sigv4::uri_encode(session_name),
        sigv4::uri_encode(web_identity_token)
    );
    exchange(endpoint, role_arn, body, Vec::new(), &[Some(web_identity_token)]).await
}

/// Posts `body` to STS with `headers` and reads the `Credentials` of the answer. `secrets` are
/// what the request carried: a refusal message that repeats one is not shown.
async fn exchange(
    endpoint: &Endpoint,
    role_arn: &str,
    body: String,
    headers: Vec<(&str, String)>,
    secrets: &[Option<&str>],
) -> Result<AwsCredentials, MskIamError> {
    let unreachable = |error: reqwest::Error| MskIamError::StsUnreachable {
        role_arn: role_arn.to_string(),
        endpoint: endpoint.host.clone(),
        reason: error_chain(&error),
    };
    let client = reqwest::Client::builder().timeout(TIMEOUT).build().map_err(unreachable)?;
    let mut post = client.post(endpoint.url.clone()).header("content-type", FORM).body(body);
    for (name, value) in headers {
        post = post.header(name, value);
    }
    let response = post.send().await.map_err(unreachable)?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(unreachable)?;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_RESPONSE)]);
    if !status.is_success() {
        let (code, message) = refusal(&text, secrets);
        return Err(MskIamError::StsRefused {
            role_arn: role_arn.to_string(),
            endpoint: endpoint.host.clone(),
            status: status.as_u16(),
            code,
            message,
        });
    }
    credentials(&text).map_err(|missing| MskIamError::StsResponse { role_arn: role_arn.to_string(), missing })
}

/// The `Credentials` of an `AssumeRoleResponse`; `Err` names the first element missing.
pub(super) fn credentials(xml: &str) -> Result<AwsCredentials, &'static str> {
    let credentials = element(xml, "Credentials").ok_or("Credentials")?;
    let field =
        |name: &'static str| element(credentials, name).map(unescape).filter(|value| !value.is_empty()).ok_or(name);
    Ok(AwsCredentials {
        access_key_id: field("AccessKeyId")?,
        secret_access_key: field("SecretAccessKey")?,
        session_token: Some(field("SessionToken")?),
        expiry: Some(element(credentials, "Expiration").and_then(clock::parse_utc).ok_or("Expiration")?),
    })
}

/// The `Code` of an `ErrorResponse` and, unless it repeats one of `secrets`, its `Message`.
fn refusal(xml: &str, secrets: &[Option<&str>]) -> (String, String) {
    let code = element(xml, "Code").map(unescape).unwrap_or_default();
    let message = element(xml, "Message").map(unescape).unwrap_or_default();
    let leaks = secrets.iter().flatten().any(|secret| !secret.is_empty() && message.contains(secret));
    let message = if message.is_empty() || leaks { String::new() } else { format!(": {}", truncate(&message, 300)) };
    (code, message)
}

/// The text between the first `<name>` and the next `</name>`.
fn element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))?;
    Some(xml[start..start + end].trim())
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
}

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let global = Endpoint::new(None, None).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(
            (global.url.as_str(), global.host.as_str(), global.region.as_str()),
            ("https://sts.amazonaws.com/", "sts.amazonaws.com", "us-east-1")
        );
        let regional = Endpoint::new(Some("eu-west-1"), None).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!((regional.host.as_str(), regional.region.as_str()), ("sts.eu-west-1.amazonaws.com", "eu-west-1"));
        let china = Endpoint::new(Some("cn-north-1"), None).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(china.host, "sts.cn-north-1.amazonaws.com.cn");
        let local =
            Endpoint::new(Some("eu-west-1"), Some("http://127.0.0.1:4566")).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!((local.host.as_str(), local.region.as_str()), ("127.0.0.1:4566", "eu-west-1"));
        for bad in ["not a url", "ftp://example.com/", "unix:/run/sts"] {
            assert!(matches!(Endpoint::new(None, Some(bad)), Err(MskIamError::InvalidStsEndpoint)), "{bad}");
        }
    }

    #[test]
    fn request_body_is_form_encoded() {
        let request = AssumeRole {
            role_arn: "arn:aws:iam::123456789012:role/msk_client_role",
            session_name: "kafka-edge",
            external_id: Some("a b&c"),
        };
        assert_eq!(
            request.body(),
            "Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fmsk_client_role\
             &RoleSessionName=kafka-edge&ExternalId=a%20b%26c&Version=2011-06-15"
        );
    }

    #[test]
    fn reads_refusals_without_echoing_secrets() {
        let base = [Some("s3cr3t"), Some("t0k3n")];
        let xml = "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User is not authorized &amp; so on</Message></Error></ErrorResponse>";
        assert_eq!(refusal(xml, &base), ("AccessDenied".to_string(), ": User is not authorized & so on".to_string()));
        let leaky = "<Error><Code>SignatureDoesNotMatch</Code><Message>canonical request had t0k3n</Message></Error>";
        assert_eq!(refusal(leaky, &base), ("SignatureDoesNotMatch".to_string(), String::new()));
        assert_eq!(refusal("<html>bad gateway</html>", &base), (String::new(), String::new()));
        assert_eq!(truncate("abcdef", 3), "abc…");
    }

    #[test]
    fn incomplete_responses_name_what_is_missing() {
        assert_eq!(credentials("<AssumeRoleResponse/>"), Err("Credentials"));
        let no_token = "<Credentials><AccessKeyId>A</AccessKeyId><SecretAccessKey>S</SecretAccessKey></Credentials>";
        assert_eq!(credentials(no_token), Err("SessionToken"));
        let bad_expiry = "<Credentials><AccessKeyId>A</AccessKeyId><SecretAccessKey>S</SecretAccessKey>\
                          <SessionToken>T</SessionToken><Expiration>soon</Expiration></Credentials>";
        assert_eq!(credentials(bad_expiry), Err("Expiration"));
    }
}
