//! Where the AWS credentials that sign MSK IAM tokens come from, in the spirit of
//! aws-msk-iam-auth's chain for an `IAMLoginModule` line, without the AWS SDK:
//!
//! 1. `awsRoleArn`: STS AssumeRole, signed with `awsRoleAccessKeyId`/`awsRoleSecretAccessKey`
//!    when given, else with the base chain below;
//! 2. the base chain, in the AWS SDKs' order: the profile `awsProfileName` when set (as
//!    aws-msk-iam-auth, it comes before the environment), then
//!    `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, then the profile
//!    `AWS_PROFILE` or `default` of the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`,
//!    else `~/.aws/credentials`), then web identity (EKS IRSA: `AWS_WEB_IDENTITY_TOKEN_FILE` and
//!    `AWS_ROLE_ARN` through STS AssumeRoleWithWebIdentity), then the container credentials
//!    endpoint (ECS, EKS Pod Identity), then the EC2 instance metadata service (IMDSv2).

use super::metadata;
use super::sts::{self, AssumeRole};
use super::{profile, AwsCredentials, MskIamError, MskIamLogin};
use std::time::SystemTime;

/// Reads an environment variable; the real one in production, a map in tests.
pub(crate) type Env<'a> = &'a (dyn Fn(&str) -> Option<String> + Sync);

/// The session name when `awsRoleSessionName` is not set: it shows in CloudTrail.
const DEFAULT_SESSION_NAME: &str = "kafka-edge";

/// Resolves the credentials for `login`. Does I/O (a file, maybe STS): run it outside
/// librdkafka's callback and cache the result until shortly before `expiry`.
///
/// STS is reached in `awsStsRegion`, else `AWS_REGION`/`AWS_DEFAULT_REGION`, else through the
/// global endpoint; a caller that knows the cluster's region may put it in `login.sts_region`.
pub(crate) async fn resolve_credentials(login: &MskIamLogin, env: Env<'_>) -> Result<AwsCredentials, MskIamError> {
    let Some(role_arn) = login.role_arn.as_deref() else {
        return base_chain(login, env).await;
    };
    let base = match (&login.role_access_key_id, &login.role_secret_access_key) {
        (Some(access_key_id), Some(secret_access_key)) => AwsCredentials {
            access_key_id: access_key_id.clone(),
            secret_access_key: secret_access_key.clone(),
            session_token: login.role_session_token.clone(),
            expiry: None,
        },
        _ => base_chain(login, env).await?,
    };
    let endpoint = sts_endpoint(login.sts_region.clone(), env)?;
    let request = AssumeRole {
        role_arn,
        session_name: login.role_session_name.as_deref().unwrap_or(DEFAULT_SESSION_NAME),
        external_id: login.role_external_id.as_deref(),
    };
    sts::assume_role(&endpoint, &base, &request, SystemTime::now()).await
}

/// STS in `sts_region`, else `AWS_REGION`/`AWS_DEFAULT_REGION`, else the global endpoint;
/// `AWS_ENDPOINT_URL_STS` overrides it.
fn sts_endpoint(sts_region: Option<String>, env: Env<'_>) -> Result<sts::Endpoint, MskIamError> {
    let region = sts_region.or_else(|| variable(env, "AWS_REGION")).or_else(|| variable(env, "AWS_DEFAULT_REGION"));
    sts::Endpoint::new(region.as_deref(), variable(env, "AWS_ENDPOINT_URL_STS").as_deref())
}

/// Profile `awsProfileName`, the environment, profile `AWS_PROFILE`/`default`, web identity, the
/// container endpoint, then the instance metadata service.
async fn base_chain(login: &MskIamLogin, env: Env<'_>) -> Result<AwsCredentials, MskIamError> {
    let mut tried = Vec::new();
    if let Some(name) = &login.profile {
        match from_profile(name, env).await {
            Ok(credentials) => return Ok(credentials),
            Err(reason) => tried.push(format!("profile `{name}` ({reason})")),
        }
    }
    match from_environment(env) {
        Ok(credentials) => return Ok(credentials),
        Err(reason) => tried.push(format!("the environment ({reason})")),
    }
    let name = variable(env, "AWS_PROFILE").unwrap_or_else(|| "default".to_string());
    if login.profile.as_ref() != Some(&name) {
        match from_profile(&name, env).await {
            Ok(credentials) => return Ok(credentials),
            Err(reason) => tried.push(format!("profile `{name}` ({reason})")),
        }
    }
    match web_identity(login, env).await {
        Ok(Some(credentials)) => return Ok(credentials),
        Ok(None) => tried.push("web identity (AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN are not set)".into()),
        Err(reason) => tried.push(format!("web identity ({reason})")),
    }
    match metadata::container(env).await {
        Ok(Some(credentials)) => return Ok(credentials),
        Ok(None) => tried.push("the container endpoint (AWS_CONTAINER_CREDENTIALS_*_URI is not set)".into()),
        Err(reason) => tried.push(format!("the container endpoint ({reason})")),
    }
    match metadata::instance_metadata(env).await {
        Ok(Some(credentials)) => return Ok(credentials),
        Ok(None) => tried.push("the instance metadata service (AWS_EC2_METADATA_DISABLED)".into()),
        Err(reason) => tried.push(format!("the instance metadata service ({reason})")),
    }
    Err(MskIamError::NoCredentials { tried: tried.join(", ") })
}

/// EKS IRSA: the token in `AWS_WEB_IDENTITY_TOKEN_FILE` traded for `AWS_ROLE_ARN`'s credentials.
async fn web_identity(login: &MskIamLogin, env: Env<'_>) -> Result<Option<AwsCredentials>, String> {
    let (Some(path), Some(role_arn)) = (variable(env, "AWS_WEB_IDENTITY_TOKEN_FILE"), variable(env, "AWS_ROLE_ARN"))
    else {
        return Ok(None);
    };
    let token = tokio::fs::read_to_string(&path).await.map_err(|error| format!("cannot read {path}: {error}"))?;
    let session_name = variable(env, "AWS_ROLE_SESSION_NAME").unwrap_or_else(|| DEFAULT_SESSION_NAME.to_string());
    let endpoint = sts_endpoint(login.sts_region.clone(), env).map_err(|error| error.to_string())?;
    sts::assume_role_with_web_identity(&endpoint, &role_arn, &session_name, token.trim())
        .await
        .map(Some)
        .map_err(|error| error.to_string())
}

fn from_environment(env: Env<'_>) -> Result<AwsCredentials, String> {
    let access_key_id = variable(env, "AWS_ACCESS_KEY_ID").ok_or("AWS_ACCESS_KEY_ID is not set")?;
    let secret_access_key = variable(env, "AWS_SECRET_ACCESS_KEY").ok_or("AWS_SECRET_ACCESS_KEY is not set")?;
    Ok(AwsCredentials {
        access_key_id,
        secret_access_key,
        session_token: variable(env, "AWS_SESSION_TOKEN"),
        expiry: None,
    })
}

async fn from_profile(name: &str, env: Env<'_>) -> Result<AwsCredentials, String> {
    let path = match variable(env, "AWS_SHARED_CREDENTIALS_FILE") {
        Some(path) => match (path.strip_prefix("~/"), variable(env, "HOME")) {
            (Some(rest), Some(home)) => format!("{home}/{rest}"),
            _ => path,
        },
        None => format!("{}/.aws/credentials", variable(env, "HOME").ok_or("HOME is not set")?),
    };
    let text = tokio::fs::read_to_string(&path).await.map_err(|error| format!("cannot read {path}: {error}"))?;
    profile::find(&text, name).map_err(|reason| format!("{reason} in {path}"))
}

/// A variable's value, an empty one counting as unset.
pub(super) fn variable(env: Env<'_>, name: &str) -> Option<String> {
    env(name).filter(|value| !value.is_empty())
}
