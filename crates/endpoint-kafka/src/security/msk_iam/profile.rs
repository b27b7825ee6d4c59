//! The AWS shared credentials file (`~/.aws/credentials`): INI sections named after profiles,
//! with `aws_access_key_id`, `aws_secret_access_key` and optionally `aws_session_token`. Only
//! static keys are read; `~/.aws/config` features (`role_arn`, `source_profile`, SSO,
//! `credential_process`) are not. Reasons for a miss name keys, never values.

use super::AwsCredentials;
use std::collections::HashMap;

/// The credentials of `profile` in the text of a credentials file.
pub(super) fn find(text: &str, profile: &str) -> Result<AwsCredentials, String> {
    let keys = section(text, profile).ok_or_else(|| format!("no [{profile}] section"))?;
    let value = |name: &str| keys.get(name).filter(|value| !value.is_empty()).cloned();
    let missing = |name: &str| format!("[{profile}] has no {name}");
    Ok(AwsCredentials {
        access_key_id: value("aws_access_key_id").ok_or_else(|| missing("aws_access_key_id"))?,
        secret_access_key: value("aws_secret_access_key").ok_or_else(|| missing("aws_secret_access_key"))?,
        session_token: value("aws_session_token").or_else(|| value("aws_security_token")),
        expiry: None,
    })
}

/// The keys of one section (a section written twice merges, later keys winning); `None` when absent.
fn section(text: &str, wanted: &str) -> Option<HashMap<String, String>> {
    let mut current: Option<&str> = None;
    let mut found: Option<HashMap<String, String>> = None;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')) {
            current = Some(name.trim());
            if current == Some(wanted) {
                found.get_or_insert_with(HashMap::new);
            }
            continue;
        }
        if current != Some(wanted) {
            continue;
        }
        if let (Some((key, value)), Some(keys)) = (line.split_once('='), found.as_mut()) {
            keys.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
# written by aws configure
[default]
aws_access_key_id = AKIADEFAULT
aws_secret_access_key = default/secret+key

[dev]
; temporary
AWS_ACCESS_KEY_ID=AKIADEV
aws_secret_access_key=dev=secret=
aws_session_token = dev-token

[empty]
aws_access_key_id =
[half]
aws_access_key_id = AKIAHALF
[ dev ]
aws_session_token = newer-token
";

    #[test]
    fn reads_profiles() {
        let default = find(FILE, "default").unwrap_or_else(|reason| panic!("{reason}"));
        assert_eq!(default.access_key_id, "AKIADEFAULT");
        assert_eq!(default.secret_access_key, "default/secret+key");
        assert_eq!(default.session_token, None);
        let dev = find(FILE, "dev").unwrap_or_else(|reason| panic!("{reason}"));
        assert_eq!(dev.access_key_id, "AKIADEV");
        assert_eq!(dev.secret_access_key, "dev=secret=");
        assert_eq!(dev.session_token.as_deref(), Some("newer-token"));
        assert_eq!(dev.expiry, None);
    }

    #[test]
    fn explains_misses_without_values() {
        assert_eq!(find(FILE, "prod"), Err("no [prod] section".to_string()));
        assert_eq!(find(FILE, "empty"), Err("[empty] has no aws_access_key_id".to_string()));
        assert_eq!(find(FILE, "half"), Err("[half] has no aws_secret_access_key".to_string()));
        assert_eq!(find("", "default"), Err("no [default] section".to_string()));
    }
}
