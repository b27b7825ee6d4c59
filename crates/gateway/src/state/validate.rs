//! Reading a subscription from outside (admin API body, `--subscriptions` file): strict JSON with
//! the failing field named, then the checks serde cannot express.

use super::model::{AuthType, WebhookSubscriptionConfiguration};
use kafka_edge_definition::Problem;
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// A field that is missing, unknown or has a value that is not allowed: its dotted path (e.g.
/// `configuration.callbackUrl`) and why.
fn invalid(path: &str, message: impl Into<String>) -> Problem {
    Problem::new(path, message)
}

/// `POST /apis/{apiId}/subscriptions` body.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSubscription {
    /// Generated (a UUID) when absent.
    #[serde(default)]
    pub id: Option<String>,
    /// The PUSH plan.
    pub plan: String,
    pub configuration: WebhookSubscriptionConfiguration,
}

/// One entry of a `--subscriptions` file: like the admin body, plus the API and a required id
/// (so a restart finds the same subscription, and its consumer group, again).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticSubscription {
    pub api: String,
    pub id: String,
    pub plan: String,
    pub configuration: WebhookSubscriptionConfiguration,
}

/// Parses `bytes` as `T`, naming the field that failed.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let path = if path == "." { String::new() } else { path };
        let message = error.into_inner().to_string();
        // serde_json appends " at line L column C": keep the message about the field.
        let message = message.split(" at line ").next().unwrap_or_default().to_string();
        Problem::new(path, message)
    })
}

/// Checks an id given by the caller: a non-empty run of `[A-Za-z0-9._-]`, at most 128 chars (it
/// becomes a consumer group and part of a state key).
pub fn check_id(path: &str, id: &str) -> Result<(), Problem> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if id.is_empty() || id.len() > 128 || !id.chars().all(allowed) {
        return Err(invalid(path, "must be 1 to 128 characters from A-Z a-z 0-9 . _ -"));
    }
    Ok(())
}

/// The checks beyond types, each naming its field under `base` (e.g. `configuration`).
pub fn check_configuration(base: &str, configuration: &WebhookSubscriptionConfiguration) -> Result<(), Problem> {
    let at = |field: &str| format!("{base}.{field}");
    if configuration.entrypoint_id != "webhook" {
        return Err(invalid(
            &at("entrypointId"),
            format!("invalid value `{}`, expected `webhook`", configuration.entrypoint_id),
        ));
    }
    check_url(&at("callbackUrl"), &configuration.callback_url)?;
    for (index, header) in configuration.headers.iter().enumerate() {
        if header.name.is_empty() || http::HeaderName::from_bytes(header.name.as_bytes()).is_err() {
            return Err(invalid(&at(&format!("headers[{index}].name")), "not a valid HTTP header name"));
        }
        if http::HeaderValue::from_str(&header.value).is_err() {
            return Err(invalid(&at(&format!("headers[{index}].value")), "not a valid HTTP header value"));
        }
    }
    let auth = &configuration.auth;
    match auth.kind {
        AuthType::None => {}
        AuthType::Basic if auth.basic.is_none() => {
            return Err(invalid(&at("auth.basic"), "required when auth.type is `basic`"))
        }
        AuthType::Token if auth.token.is_none() => {
            return Err(invalid(&at("auth.token"), "required when auth.type is `token`"))
        }
        AuthType::Oauth2 => match &auth.oauth2 {
            None => return Err(invalid(&at("auth.oauth2"), "required when auth.type is `oauth2`")),
            Some(oauth2) => check_url(&at("auth.oauth2.endpoint"), &oauth2.endpoint)?,
        },
        AuthType::Basic | AuthType::Token => {}
    }
    let retry = &configuration.retry;
    if retry.max_delay_seconds < retry.initial_delay_seconds {
        return Err(invalid(&at("retry.maxDelaySeconds"), "must be at least retry.initialDelaySeconds"));
    }
    let stores = [("ssl.trustStore", &configuration.ssl.trust_store), ("ssl.keyStore", &configuration.ssl.key_store)];
    for (field, store) in stores {
        let Some(store) = store else { continue };
        let allowed = ["", "PEM", "PKCS12", "JKS"];
        if !allowed.contains(&store.kind.to_ascii_uppercase().as_str()) {
            return Err(invalid(
                &at(&format!("{field}.type")),
                format!("invalid value `{}`, expected one of ``, `PEM`, `PKCS12`, `JKS`", store.kind),
            ));
        }
        let has = |content: bool, path: bool| content || path;
        let pem_identity = field == "ssl.keyStore" && matches!(store.kind.to_ascii_uppercase().as_str(), "" | "PEM");
        let complete = if pem_identity {
            has(store.cert_content.is_some(), store.cert_path.is_some())
                && has(store.key_content.is_some(), store.key_path.is_some())
        } else {
            has(store.content.is_some(), store.path.is_some())
        };
        if !complete {
            let needed =
                if pem_identity { "certContent or certPath, and keyContent or keyPath" } else { "content or path" };
            return Err(invalid(&at(field), format!("needs {needed}")));
        }
    }
    // Unreadable stores and wrong passwords are refused now rather than at the first delivery.
    kafka_edge_entrypoints::webhook::tls::materials(&configuration.ssl).map_err(|problem| problem.under(base))?;
    Ok(())
}

/// `^https?://` followed by something a client can call.
fn check_url(path: &str, url: &str) -> Result<(), Problem> {
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return Err(invalid(path, "must start with http:// or https://"));
    }
    match reqwest::Url::parse(url) {
        Ok(parsed) if parsed.host_str().is_some() => Ok(()),
        _ => Err(invalid(path, "not a valid URL")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::model::{RetryOption, REDACTED};

    #[test]
    fn unknown_and_missing_fields_are_named() {
        let error =
            parse::<CreateSubscription>(br#"{"plan":"p","configuration":{"callbackUrl":"http://x","colour":1}}"#)
                .unwrap_err();
        assert_eq!(error.path, "configuration.colour");
        assert!(error.message.contains("colour"), "{error}");
        let error = parse::<CreateSubscription>(br#"{"plan":"p","configuration":{"callbackUrl":"http://x","auth":{"type":"basic","basic":{"username":"u"}}}}"#).unwrap_err();
        assert_eq!(error.path, "configuration.auth.basic");
        assert!(error.message.contains("password"), "{error}");
        let error = parse::<CreateSubscription>(
            br#"{"plan":"p","configuration":{"callbackUrl":"http://x","retry":{"retryOption":"Sometimes"}}}"#,
        )
        .unwrap_err();
        assert_eq!(error.path, "configuration.retry.retryOption");
    }

    #[test]
    fn checks_url_headers_and_auth_blocks() {
        let parsed = |body: &str| parse::<CreateSubscription>(body.as_bytes()).unwrap();
        let request = parsed(r#"{"plan":"p","configuration":{"callbackUrl":"ftp://x"}}"#);
        assert_eq!(
            check_configuration("configuration", &request.configuration).unwrap_err().path,
            "configuration.callbackUrl"
        );
        let request =
            parsed(r#"{"plan":"p","configuration":{"callbackUrl":"http://x","headers":[{"name":"a b","value":"v"}]}}"#);
        assert_eq!(
            check_configuration("configuration", &request.configuration).unwrap_err().path,
            "configuration.headers[0].name"
        );
        let request = parsed(r#"{"plan":"p","configuration":{"callbackUrl":"http://x","auth":{"type":"token"}}}"#);
        assert_eq!(
            check_configuration("configuration", &request.configuration).unwrap_err().path,
            "configuration.auth.token"
        );
        let request = parsed(
            r#"{"plan":"p","configuration":{"callbackUrl":"https://x/y","retry":{"retryOption":"Retry On Fail","retryStrategy":"EXPONENTIAL"}}}"#,
        );
        assert!(check_configuration("configuration", &request.configuration).is_ok());
        assert_eq!(request.configuration.retry.retry_option, RetryOption::RetryOnFail);
    }

    #[test]
    fn secrets_are_redacted_in_debug_and_answers() {
        let body = r#"{"plan":"p","configuration":{"callbackUrl":"http://x","auth":{"type":"basic","basic":{"username":"u","password":"hunter2"}},"ssl":{"keyStore":{"type":"PKCS12","content":"UFJJVkFURS1LRVk="}}}}"#;
        let request = parse::<CreateSubscription>(body.as_bytes()).unwrap();
        assert!(!format!("{request:?}").contains("hunter2") && !format!("{request:?}").contains("UFJJVkFURS1LRVk="));
        let subscription = crate::state::Subscription {
            id: "s".into(),
            api_id: "a".into(),
            plan_id: "p".into(),
            configuration: request.configuration,
            state: Default::default(),
        };
        let answer = serde_json::to_string(&subscription.redacted()).unwrap();
        assert!(
            !answer.contains("hunter2") && !answer.contains("UFJJVkFURS1LRVk=") && answer.contains(REDACTED),
            "{answer}"
        );
        assert!(serde_json::to_string(&subscription).unwrap().contains("hunter2"));
    }

    #[test]
    fn retry_delays_follow_the_strategy() {
        use crate::state::model::{Retry, RetryStrategy};
        use std::time::Duration;
        let mut retry = Retry {
            retry_option: RetryOption::RetryOnFail,
            max_attempts: 4,
            initial_delay_seconds: 2,
            max_delay_seconds: 10,
            ..Retry::default()
        };
        let delays = |r: &Retry| (1..=5).map(|a| r.delay(a).map(|d| d.as_secs())).collect::<Vec<_>>();
        assert_eq!(delays(&retry), vec![Some(2), Some(4), Some(6), Some(8), None]);
        retry.retry_strategy = RetryStrategy::Exponential;
        assert_eq!(delays(&retry), vec![Some(2), Some(4), Some(8), Some(10), None]);
        retry.retry_option = RetryOption::NoRetry;
        assert_eq!(retry.delay(1), None);
        let _ = Duration::ZERO;
    }
}
