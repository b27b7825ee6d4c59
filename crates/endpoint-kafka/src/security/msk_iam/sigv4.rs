//! AWS Signature Version 4, the two forms MSK IAM needs: a presigned query string (the MSK token)
//! and an `Authorization` header (the STS call). Only the root path `/` is signed, which is all
//! both use. Reference: AWS's "Create a signed AWS API request" and its SigV4 test suite.

use super::{clock, AwsCredentials};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::fmt::Write;
use std::time::SystemTime;

const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// Who signs, for which region and service, and when.
pub(super) struct Scope<'a> {
    pub credentials: &'a AwsCredentials,
    pub region: &'a str,
    pub service: &'a str,
    pub time: SystemTime,
}

impl Scope<'_> {
    /// `20150830/us-east-1/service/aws4_request`.
    fn credential_scope(&self, amz_date: &str) -> String {
        format!("{}/{}/{}/aws4_request", &amz_date[..8], self.region, self.service)
    }

    /// The hex signature of a canonical request.
    fn sign(&self, amz_date: &str, canonical_request: &str) -> String {
        let string_to_sign = format!(
            "{ALGORITHM}\n{amz_date}\n{}\n{}",
            self.credential_scope(amz_date),
            sha256_hex(canonical_request.as_bytes())
        );
        let secret = format!("AWS4{}", self.credentials.secret_access_key);
        let key = [&amz_date[..8], self.region, self.service, "aws4_request"]
            .iter()
            .fold(secret.into_bytes(), |key, part| hmac(&key, part.as_bytes()).to_vec());
        hex(&hmac(&key, string_to_sign.as_bytes()))
    }
}

/// The query string of `GET https://<host>/?<params>` presigned for `expires` seconds, in the
/// order botocore writes it: the operation's parameters, the `X-Amz-*` ones, the signature last.
pub(super) fn presign(scope: &Scope<'_>, host: &str, params: &[(&str, &str)], expires: u64) -> String {
    let amz_date = clock::amz_date(scope.time);
    let credential = format!("{}/{}", scope.credentials.access_key_id, scope.credential_scope(&amz_date));
    let expires = expires.to_string();
    let mut query: Vec<(&str, &str)> = params.to_vec();
    query.extend([
        ("X-Amz-Algorithm", ALGORITHM),
        ("X-Amz-Credential", &credential),
        ("X-Amz-Date", &amz_date),
        ("X-Amz-Expires", &expires),
        ("X-Amz-SignedHeaders", "host"),
    ]);
    if let Some(token) = &scope.credentials.session_token {
        query.push(("X-Amz-Security-Token", token));
    }
    let encoded: Vec<String> =
        query.iter().map(|(name, value)| format!("{}={}", uri_encode(name), uri_encode(value))).collect();
    let mut sorted = encoded.clone();
    sorted.sort();
    let canonical = format!("GET\n/\n{}\nhost:{host}\n\nhost\n{}", sorted.join("&"), sha256_hex(b""));
    let signature = scope.sign(&amz_date, &canonical);
    format!("{}&X-Amz-Signature={signature}", encoded.join("&"))
}

/// The headers that sign `<method> https://<host>/` with `headers` and `body`: `x-amz-date`,
/// `x-amz-security-token` with temporary credentials, then `authorization`. `host` is signed
/// but not returned (the HTTP client sends it).
pub(super) fn authorization_headers(
    scope: &Scope<'_>,
    method: &str,
    host: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<(&'static str, String)> {
    let amz_date = clock::amz_date(scope.time);
    let mut added = vec![("x-amz-date", amz_date.clone())];
    if let Some(token) = &scope.credentials.session_token {
        added.push(("x-amz-security-token", token.clone()));
    }
    let mut signed: Vec<(String, String)> = headers
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), canonical_value(value)))
        .chain([("host".to_string(), host.to_string())])
        .chain(added.iter().map(|(name, value)| (name.to_string(), value.clone())))
        .collect();
    signed.sort();
    let names = signed.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>().join(";");
    let lines: String = signed.iter().map(|(name, value)| format!("{name}:{value}\n")).collect();
    let canonical = format!("{method}\n/\n\n{lines}\n{names}\n{}", sha256_hex(body));
    let signature = scope.sign(&amz_date, &canonical);
    let credential = format!("{}/{}", scope.credentials.access_key_id, scope.credential_scope(&amz_date));
    added.push((
        "authorization",
        format!("{ALGORITHM} Credential={credential}, SignedHeaders={names}, Signature={signature}"),
    ));
    added
}

/// Percent-encodes all but the unreserved characters `A-Z a-z 0-9 - _ . ~`, as SigV4 requires.
pub(super) fn uri_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(char::from(byte));
        } else {
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    encoded
}

/// A header value trimmed, with inner runs of spaces made one.
fn canonical_value(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length: `new_from_slice` cannot fail for it.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut text, byte| {
        let _ = write!(text, "{byte:02x}");
        text
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    // AWS SigV4 test suite: credentials, region, service and time of every case.
    fn suite_credentials() -> AwsCredentials {
        AwsCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
            expiry: None,
        }
    }

    fn suite_authorization(method: &str) -> String {
        let credentials = suite_credentials();
        let time = UNIX_EPOCH + Duration::from_secs(1_440_938_160); // 2015-08-30T12:36:00Z
        let scope = Scope { credentials: &credentials, region: "us-east-1", service: "service", time };
        let headers = authorization_headers(&scope, method, "example.amazonaws.com", &[], b"");
        assert_eq!(headers[0], ("x-amz-date", "20150830T123600Z".to_string()));
        headers.into_iter().find(|(name, _)| *name == "authorization").map(|(_, value)| value).unwrap_or_default()
    }

    #[test]
    fn aws_test_suite_get_vanilla() {
        assert_eq!(
            suite_authorization("GET"),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    #[test]
    fn aws_test_suite_post_vanilla() {
        assert!(suite_authorization("POST")
            .ends_with("Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"));
    }

    #[test]
    fn aws_test_suite_get_vanilla_string_to_sign_hash() {
        // The suite publishes the canonical request's hash for get-vanilla.
        let canonical = "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\
                         e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(
            sha256_hex(canonical.as_bytes()),
            "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
        );
    }

    #[test]
    fn encodes_like_sigv4() {
        assert_eq!(uri_encode("kafka-cluster:Connect"), "kafka-cluster%3AConnect");
        assert_eq!(uri_encode("a/b+c=d e~f_g.h"), "a%2Fb%2Bc%3Dd%20e~f_g.h");
        assert_eq!(uri_encode("é"), "%C3%A9");
        assert_eq!(canonical_value("  a   b  c "), "a b c");
    }
}
