//! Credentials from the endpoints AWS compute services serve them on: the container credentials
//! endpoint (ECS task roles, EKS Pod Identity) and the EC2 instance metadata service (IMDSv2,
//! instance profiles). Both answer JSON with `AccessKeyId`, `SecretAccessKey`, `Token` and
//! `Expiration`, as the AWS SDKs read it.

use super::{clock, AwsCredentials};
use crate::security::msk_iam::credentials::{variable, Env};
use std::time::Duration;

/// ECS's credentials host, for `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`.
const ECS_HOST: &str = "http://169.254.170.2";
/// The hosts a plain-HTTP `AWS_CONTAINER_CREDENTIALS_FULL_URI` may name, as in the AWS SDKs:
/// loopback, ECS, and EKS Pod Identity's agent.
const PLAIN_HTTP_HOSTS: [&str; 5] = ["127.0.0.1", "localhost", "[::1]", "169.254.170.2", "169.254.170.23"];
const IMDS_ENDPOINT: &str = "http://169.254.169.254";
/// IMDS answers within a millisecond where it exists; elsewhere the address does not answer at
/// all, and the chain must not hang on it (the SDKs wait 1 s too).
const IMDS_TIMEOUT: Duration = Duration::from_secs(1);
const CONTAINER_TIMEOUT: Duration = Duration::from_secs(5);
const IMDS_TOKEN_TTL_SECONDS: &str = "21600";
const MAX_RESPONSE: usize = 64 * 1024;

/// The container credentials endpoint, when the environment names one; `Ok(None)` when not.
pub(super) async fn container(env: Env<'_>) -> Result<Option<AwsCredentials>, String> {
    let url = match (
        variable(env, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"),
        variable(env, "AWS_CONTAINER_CREDENTIALS_FULL_URI"),
    ) {
        (Some(relative), _) => format!("{ECS_HOST}{relative}"),
        (None, Some(full)) => {
            let parsed = reqwest::Url::parse(&full)
                .map_err(|_| "AWS_CONTAINER_CREDENTIALS_FULL_URI is not a URL".to_string())?;
            let host = parsed.host_str().unwrap_or_default();
            let allowed = parsed.scheme() == "https" || (parsed.scheme() == "http" && PLAIN_HTTP_HOSTS.contains(&host));
            if !allowed {
                return Err(format!(
                    "AWS_CONTAINER_CREDENTIALS_FULL_URI must be https, or http to loopback or the ECS/EKS \
                     agent addresses, not {}://{host}",
                    parsed.scheme()
                ));
            }
            full
        }
        (None, None) => return Ok(None),
    };
    let token = match variable(env, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
        Some(path) => Some(
            tokio::fs::read_to_string(&path)
                .await
                .map_err(|error| format!("cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE {path}: {error}"))?
                .trim()
                .to_string(),
        ),
        None => variable(env, "AWS_CONTAINER_AUTHORIZATION_TOKEN"),
    };
    let client = client(CONTAINER_TIMEOUT)?;
    let mut request = client.get(&url).header("accept", "application/json");
    if let Some(token) = token {
        request = request.header("authorization", token);
    }
    let text = answer(request, "the container credentials endpoint").await?;
    parse(&text).map(Some).map_err(|missing| format!("the container credentials endpoint answered without {missing}"))
}

/// The instance profile's credentials from IMDSv2: a session token (PUT), the role's name, then
/// its credentials. `Ok(None)` when `AWS_EC2_METADATA_DISABLED` is `true`.
pub(super) async fn instance_metadata(env: Env<'_>) -> Result<Option<AwsCredentials>, String> {
    if variable(env, "AWS_EC2_METADATA_DISABLED").is_some_and(|value| value.eq_ignore_ascii_case("true")) {
        return Ok(None);
    }
    let endpoint = variable(env, "AWS_EC2_METADATA_SERVICE_ENDPOINT").unwrap_or_else(|| IMDS_ENDPOINT.to_string());
    let endpoint = endpoint.trim_end_matches('/');
    let client = client(IMDS_TIMEOUT)?;
    let session = client
        .put(format!("{endpoint}/latest/api/token"))
        .header("x-aws-ec2-metadata-token-ttl-seconds", IMDS_TOKEN_TTL_SECONDS);
    let session = answer(session, "the instance metadata service").await?;
    let path = format!("{endpoint}/latest/meta-data/iam/security-credentials/");
    let roles =
        answer(client.get(&path).header("x-aws-ec2-metadata-token", &session), "the instance metadata service").await?;
    let role = roles.lines().map(str::trim).find(|line| !line.is_empty()).ok_or("no instance profile role")?;
    let credentials = client.get(format!("{path}{role}")).header("x-aws-ec2-metadata-token", &session);
    let text = answer(credentials, "the instance metadata service").await?;
    parse(&text)
        .map(Some)
        .map_err(|missing| format!("the instance metadata service answered role `{role}` without {missing}"))
}

fn client(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .no_proxy()
        .build()
        .map_err(|error| error.to_string())
}

/// The body of a successful answer; a failure names `source` and the status or error only.
async fn answer(request: reqwest::RequestBuilder, source: &str) -> Result<String, String> {
    let response = request.send().await.map_err(|error| format!("{source} did not answer ({error})"))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("{source} answered HTTP {status}"));
    }
    let bytes = response.bytes().await.map_err(|error| format!("{source} did not answer ({error})"))?;
    Ok(String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_RESPONSE)]).into_owned())
}

/// The credentials of a JSON answer; `Err` names the first field missing.
fn parse(text: &str) -> Result<AwsCredentials, &'static str> {
    let json: serde_json::Value = serde_json::from_str(text).map_err(|_| "a JSON body")?;
    if json.get("Code").and_then(|code| code.as_str()).is_some_and(|code| code != "Success") {
        return Err("Code Success");
    }
    let field = |name: &'static str| {
        json.get(name)
            .and_then(|value| value.as_str())
            .filter(|value| !value.is_empty())
            .map(str::to_string)
            .ok_or(name)
    };
    Ok(AwsCredentials {
        access_key_id: field("AccessKeyId")?,
        secret_access_key: field("SecretAccessKey")?,
        session_token: field("Token").ok(),
        expiry: Some(field("Expiration").ok().as_deref().and_then(clock::parse_utc).ok_or("Expiration")?),
    })
}
