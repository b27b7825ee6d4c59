//! Known answers from `tests/data/msk_iam_reference.py` (botocore), the credential chain, and
//! STS against a local HTTP server.

use super::*;
use std::collections::HashMap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ACCESS_KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET_ACCESS_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const SESSION_TOKEN: &str = "IQoJb3JpZ2luX2VjEXAMPLE/session+token==";
/// 2025-01-15T08:30:00Z.
const SIGNED_AT: u64 = 1_736_929_800;
const USER_AGENT: &str = "kafka-edge/0.1.0";

/// botocore's token for the credentials above without a session token (see the reference script).
const TOKEN_WITHOUT_SESSION: &str = "aHR0cHM6Ly9rYWZrYS51cy1lYXN0LTEuYW1hem9uYXdzLmNvbS8_QWN0aW9uPWthZmthLWNsdXN0ZXIlM0FDb25uZWN0JlgtQW16LUFsZ29yaXRobT1BV1M0LUhNQUMtU0hBMjU2JlgtQW16LUNyZWRlbnRpYWw9QUtJQUlPU0ZPRE5ON0VYQU1QTEUlMkYyMDI1MDExNSUyRnVzLWVhc3QtMSUyRmthZmthLWNsdXN0ZXIlMkZhd3M0X3JlcXVlc3QmWC1BbXotRGF0ZT0yMDI1MDExNVQwODMwMDBaJlgtQW16LUV4cGlyZXM9OTAwJlgtQW16LVNpZ25lZEhlYWRlcnM9aG9zdCZYLUFtei1TaWduYXR1cmU9MzM4ZTY3ZmEzMzliMmZmM2JiMGUxOTgxMDg5ODkyY2M5N2QxMzAwMzM2ZmZiZjljOTM3N2FjNWIxOTVlZjc5NiZVc2VyLUFnZW50PWthZmthLWVkZ2UlMkYwLjEuMA";
/// botocore's token with `SESSION_TOKEN`.
const TOKEN_WITH_SESSION: &str = "aHR0cHM6Ly9rYWZrYS51cy1lYXN0LTEuYW1hem9uYXdzLmNvbS8_QWN0aW9uPWthZmthLWNsdXN0ZXIlM0FDb25uZWN0JlgtQW16LUFsZ29yaXRobT1BV1M0LUhNQUMtU0hBMjU2JlgtQW16LUNyZWRlbnRpYWw9QUtJQUlPU0ZPRE5ON0VYQU1QTEUlMkYyMDI1MDExNSUyRnVzLWVhc3QtMSUyRmthZmthLWNsdXN0ZXIlMkZhd3M0X3JlcXVlc3QmWC1BbXotRGF0ZT0yMDI1MDExNVQwODMwMDBaJlgtQW16LUV4cGlyZXM9OTAwJlgtQW16LVNpZ25lZEhlYWRlcnM9aG9zdCZYLUFtei1TZWN1cml0eS1Ub2tlbj1JUW9KYjNKcFoybHVYMlZqRVhBTVBMRSUyRnNlc3Npb24lMkJ0b2tlbiUzRCUzRCZYLUFtei1TaWduYXR1cmU9YjRkZDhlNjllNzQwYTk4YzIyMGM3ZTdlMjk2ODNkZTExMWZkYjFjMzdhYjVlYzZlNzhjMGYwYThlNWJiYjE3YSZVc2VyLUFnZW50PWthZmthLWVkZ2UlMkYwLjEuMA";
/// botocore's `Authorization` for the AssumeRole POST of the reference script.
const STS_AUTHORIZATION: &str = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20250115/eu-west-1/sts/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature=4b3e4de7fad699389bf2b92c185b28d1792a03124c2c0c6a01bb71bbac83afbd";

fn signed_at() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(SIGNED_AT)
}

fn credentials(session_token: Option<&str>) -> AwsCredentials {
    AwsCredentials {
        access_key_id: ACCESS_KEY_ID.into(),
        secret_access_key: SECRET_ACCESS_KEY.into(),
        session_token: session_token.map(str::to_string),
        expiry: None,
    }
}

fn decoded(token: &str) -> String {
    String::from_utf8(URL_SAFE_NO_PAD.decode(token).unwrap_or_default()).unwrap_or_default()
}

#[test]
fn token_without_session_token_matches_botocore() {
    let token = sign_token("us-east-1", &credentials(None), signed_at(), USER_AGENT);
    assert_eq!(decoded(&token.token), decoded(TOKEN_WITHOUT_SESSION), "the URLs");
    assert_eq!(token.token, TOKEN_WITHOUT_SESSION);
    assert_eq!(token.lifetime_ms, (SIGNED_AT as i64 + 900) * 1000);
    assert_eq!(token.principal, ACCESS_KEY_ID);
}

#[test]
fn token_with_session_token_matches_botocore() {
    let token = sign_token("us-east-1", &credentials(Some(SESSION_TOKEN)), signed_at(), USER_AGENT);
    assert_eq!(decoded(&token.token), decoded(TOKEN_WITH_SESSION), "the URLs");
    assert_eq!(token.token, TOKEN_WITH_SESSION);
}

#[test]
fn sub_second_signing_times_sign_the_whole_second() {
    let token = sign_token("us-east-1", &credentials(None), signed_at() + Duration::from_millis(999), USER_AGENT);
    assert_eq!(token.token, TOKEN_WITHOUT_SESSION);
    assert_eq!(token.lifetime_ms, (SIGNED_AT as i64 + 900) * 1000);
}

#[test]
fn token_lifetime_stops_at_the_credentials_expiry() {
    let mut temporary = credentials(Some(SESSION_TOKEN));
    temporary.expiry = Some(signed_at() + Duration::from_secs(300));
    assert_eq!(
        sign_token("us-east-1", &temporary, signed_at(), USER_AGENT).lifetime_ms,
        (SIGNED_AT as i64 + 300) * 1000
    );
    temporary.expiry = Some(signed_at() + Duration::from_secs(3600));
    assert_eq!(
        sign_token("us-east-1", &temporary, signed_at(), USER_AGENT).lifetime_ms,
        (SIGNED_AT as i64 + 900) * 1000
    );
}

#[test]
fn token_shape_for_other_regions() {
    let url = decoded(&sign_token("cn-north-1", &credentials(None), signed_at(), "a b/c").token);
    assert!(url.starts_with("https://kafka.cn-north-1.amazonaws.com.cn/?Action=kafka-cluster%3AConnect&"), "{url}");
    assert!(url.contains("%2Fcn-north-1%2Fkafka-cluster%2Faws4_request"), "{url}");
    assert!(url.ends_with("&User-Agent=a%20b%2Fc"), "{url}");
}

#[test]
fn debug_redacts_secrets() {
    let debug = format!("{:?}", credentials(Some(SESSION_TOKEN)));
    assert!(
        debug.contains(ACCESS_KEY_ID) && !debug.contains(SECRET_ACCESS_KEY) && !debug.contains(SESSION_TOKEN),
        "{debug}"
    );
    let token = sign_token("us-east-1", &credentials(None), signed_at(), USER_AGENT);
    let debug = format!("{token:?}");
    assert!(!debug.contains(&token.token) && debug.contains("lifetime_ms"), "{debug}");
}

#[test]
fn regions_from_bootstrap_servers() {
    let region = |servers: &str| region_from_bootstrap(servers);
    assert_eq!(region("b-1.x.y.kafka.eu-west-1.amazonaws.com:9098").as_deref(), Some("eu-west-1"));
    assert_eq!(
        region("localhost:9092, B-2.Demo.ABC.c3.Kafka.US-EAST-2.amazonaws.com:9098").as_deref(),
        Some("us-east-2")
    );
    assert_eq!(
        region("boot-abc.c2.kafka-serverless.ap-southeast-1.amazonaws.com:9098").as_deref(),
        Some("ap-southeast-1")
    );
    assert_eq!(region("b-1.x.kafka.cn-north-1.amazonaws.com.cn:9098").as_deref(), Some("cn-north-1"));
    assert_eq!(region("b-1.x.kafka.us-gov-west-1.amazonaws.com").as_deref(), Some("us-gov-west-1"));
    for none in [
        "",
        "localhost:9092",
        "kafka.example.com:9092",
        "b-1.kafka.amazonaws.com:9098",
        "kafka.eu-west.amazonaws.com:9098",
        "[::1]:9092",
        "kafka..amazonaws.com",
    ] {
        assert_eq!(region(none), None, "{none}");
    }
}

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + Sync {
    let map: HashMap<String, String> =
        pairs.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect();
    move |name| map.get(name).cloned()
}

/// A credentials file that is removed when dropped.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(text: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!("kafka-edge-aws-{}", uuid::Uuid::new_v4()));
        std::fs::write(&path, text).unwrap_or_else(|error| panic!("{error}"));
        TempFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap_or_default()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

const CREDENTIALS_FILE: &str = "[default]\naws_access_key_id=AKIADEFAULT\naws_secret_access_key=default-secret\n\n\
                                [dev]\naws_access_key_id=AKIADEV\naws_secret_access_key=dev-secret\naws_session_token=dev-token\n";

#[tokio::test]
async fn chain_reads_the_environment() {
    let env = env_of(&[
        ("AWS_ACCESS_KEY_ID", "AKIAENV"),
        ("AWS_SECRET_ACCESS_KEY", "env-secret"),
        ("AWS_SESSION_TOKEN", "env-token"),
    ]);
    let found = resolve_credentials(&MskIamLogin::default(), &env).await.unwrap_or_else(|error| panic!("{error}"));
    assert_eq!((found.access_key_id.as_str(), found.secret_access_key.as_str()), ("AKIAENV", "env-secret"));
    assert_eq!(found.session_token.as_deref(), Some("env-token"));
}

#[tokio::test]
async fn chain_reads_profiles() {
    let file = TempFile::new(CREDENTIALS_FILE);
    let env = env_of(&[("AWS_SHARED_CREDENTIALS_FILE", file.path())]);
    let default = resolve_credentials(&MskIamLogin::default(), &env).await.unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(default.access_key_id, "AKIADEFAULT");

    let env = env_of(&[("AWS_SHARED_CREDENTIALS_FILE", file.path()), ("AWS_PROFILE", "dev")]);
    let dev = resolve_credentials(&MskIamLogin::default(), &env).await.unwrap_or_else(|error| panic!("{error}"));
    assert_eq!((dev.access_key_id.as_str(), dev.session_token.as_deref()), ("AKIADEV", Some("dev-token")));

    // An explicit awsProfileName comes before the environment, as in aws-msk-iam-auth.
    let env = env_of(&[
        ("AWS_SHARED_CREDENTIALS_FILE", file.path()),
        ("AWS_ACCESS_KEY_ID", "AKIAENV"),
        ("AWS_SECRET_ACCESS_KEY", "e"),
    ]);
    let login = MskIamLogin { profile: Some("dev".into()), ..MskIamLogin::default() };
    let explicit = resolve_credentials(&login, &env).await.unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(explicit.access_key_id, "AKIADEV");

    // `~/.aws/credentials` under HOME.
    let home = std::env::temp_dir().join(format!("kafka-edge-home-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(home.join(".aws")).unwrap_or_else(|error| panic!("{error}"));
    std::fs::write(home.join(".aws/credentials"), CREDENTIALS_FILE).unwrap_or_else(|error| panic!("{error}"));
    let env = env_of(&[("HOME", home.to_str().unwrap_or_default())]);
    let from_home = resolve_credentials(&MskIamLogin::default(), &env).await;
    let _ = std::fs::remove_dir_all(&home);
    assert_eq!(from_home.map(|found| found.access_key_id).ok().as_deref(), Some("AKIADEFAULT"));
}

#[tokio::test]
async fn chain_failure_lists_the_sources_without_secrets() {
    let file = TempFile::new(CREDENTIALS_FILE);
    let env = env_of(&[
        ("AWS_SHARED_CREDENTIALS_FILE", file.path()),
        ("AWS_SECRET_ACCESS_KEY", "env-secret"),
        ("AWS_PROFILE", "prod"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]);
    let login = MskIamLogin { profile: Some("staging".into()), ..MskIamLogin::default() };
    let error = resolve_credentials(&login, &env).await.err().map(|error| error.to_string()).unwrap_or_default();
    assert!(error.contains("profile `staging` (no [staging] section in"), "{error}");
    assert!(error.contains("the environment (AWS_ACCESS_KEY_ID is not set)"), "{error}");
    assert!(error.contains("profile `prod`"), "{error}");
    assert!(error.contains("web identity (AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN are not set)"), "{error}");
    assert!(error.contains("the container endpoint (AWS_CONTAINER_CREDENTIALS_*_URI is not set)"), "{error}");
    assert!(error.contains("the instance metadata service (AWS_EC2_METADATA_DISABLED)"), "{error}");
    for secret in ["env-secret", "default-secret", "dev-secret", "dev-token"] {
        assert!(!error.contains(secret), "{error}");
    }

    let no_imds = env_of(&[("AWS_EC2_METADATA_DISABLED", "true")]);
    let nothing = resolve_credentials(&MskIamLogin::default(), &no_imds).await.err().map(|error| error.to_string());
    assert!(nothing.unwrap_or_default().contains("profile `default` (HOME is not set)"));
    let unreadable = env_of(&[
        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/kafka-edge/credentials"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]);
    let error = resolve_credentials(&MskIamLogin::default(), &unreadable).await.err().map(|error| error.to_string());
    assert!(error.unwrap_or_default().contains("cannot read /nonexistent/kafka-edge/credentials"));
}

#[test]
fn resolving_is_send_so_it_can_be_spawned() {
    fn assert_send<T: Send>(_: &T) {}
    let env = env_of(&[]);
    let login = MskIamLogin::default();
    assert_send(&resolve_credentials(&login, &env));
}

const ASSUME_ROLE_RESPONSE: &str = r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::123456789012:assumed-role/msk_client_role/kafka-edge</Arn>
      <AssumedRoleId>AROA3XFRBF535PLBIFPI4:kafka-edge</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>ASIAROLEEXAMPLE</AccessKeyId>
      <SecretAccessKey>role/secret+key</SecretAccessKey>
      <SessionToken>role-session&amp;token</SessionToken>
      <Expiration>2025-01-15T09:30:00Z</Expiration>
    </Credentials>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata>
</AssumeRoleResponse>"#;

/// Serves one HTTP request with `status` and `body`; the task yields the request it read.
async fn sts_server(status: &'static str, body: &'static str) -> (String, tokio::task::JoinHandle<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|error| panic!("{error}"));
    let url = format!("http://{}/", listener.local_addr().unwrap_or_else(|error| panic!("{error}")));
    let server = tokio::spawn(async move {
        let Ok((mut stream, _)) = listener.accept().await else { return String::new() };
        let mut request = Vec::new();
        let mut buffer = [0u8; 4096];
        while let Ok(read) = stream.read(&mut buffer).await {
            request.extend_from_slice(&buffer[..read]);
            let text = String::from_utf8_lossy(&request).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|line| {
                        line.to_ascii_lowercase().strip_prefix("content-length:").map(|n| n.trim().parse().unwrap_or(0))
                    })
                    .unwrap_or(0);
                if body.len() >= length {
                    break;
                }
            }
            if read == 0 {
                break;
            }
        }
        let response = format!(
            "HTTP/1.1 {status}\r\ncontent-type: text/xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
        String::from_utf8_lossy(&request).to_string()
    });
    (url, server)
}

fn role_login() -> MskIamLogin {
    MskIamLogin {
        role_arn: Some("arn:aws:iam::123456789012:role/msk_client_role".into()),
        role_access_key_id: Some(ACCESS_KEY_ID.into()),
        role_secret_access_key: Some(SECRET_ACCESS_KEY.into()),
        sts_region: Some("eu-west-1".into()),
        ..MskIamLogin::default()
    }
}

#[tokio::test]
async fn assume_role_with_the_role_keys() {
    let (url, server) = sts_server("200 OK", ASSUME_ROLE_RESPONSE).await;
    let env = env_of(&[("AWS_ENDPOINT_URL_STS", &url)]);
    let found = resolve_credentials(&role_login(), &env).await.unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(found.access_key_id, "ASIAROLEEXAMPLE");
    assert_eq!(found.secret_access_key, "role/secret+key");
    assert_eq!(found.session_token.as_deref(), Some("role-session&token"));
    assert_eq!(found.expiry, Some(UNIX_EPOCH + Duration::from_secs(SIGNED_AT + 3600)));

    let request = server.await.unwrap_or_default().to_ascii_lowercase();
    assert!(request.starts_with("post / http/1.1\r\n"), "{request}");
    assert!(request.contains("content-type: application/x-www-form-urlencoded; charset=utf-8\r\n"), "{request}");
    assert!(request.contains("authorization: aws4-hmac-sha256 credential=akiaiosfodnn7example/"), "{request}");
    assert!(
        request.contains("/eu-west-1/sts/aws4_request, signedheaders=content-type;host;x-amz-date, signature="),
        "{request}"
    );
    assert!(!request.contains("x-amz-security-token"), "{request}");
    assert!(request.ends_with(
        "\r\n\r\naction=assumerole&rolearn=arn%3aaws%3aiam%3a%3a123456789012%3arole%2fmsk_client_role&rolesessionname=kafka-edge&version=2011-06-15"
    ), "{request}");
}

#[tokio::test]
async fn assume_role_signs_like_botocore() {
    let (url, server) = sts_server("200 OK", ASSUME_ROLE_RESPONSE).await;
    let endpoint = sts::Endpoint::new(Some("eu-west-1"), Some(&url)).unwrap_or_else(|error| panic!("{error}"));
    let request = sts::AssumeRole {
        role_arn: "arn:aws:iam::123456789012:role/msk_client_role",
        session_name: "kafka-edge",
        external_id: None,
    };
    let found = sts::assume_role(&endpoint, &credentials(Some(SESSION_TOKEN)), &request, signed_at()).await;
    assert!(found.is_ok(), "{found:?}");
    let request = server.await.unwrap_or_default();
    assert!(request.contains(&format!("x-amz-security-token: {SESSION_TOKEN}\r\n")), "{request}");
    assert!(request.contains("x-amz-date: 20250115T083000Z\r\n"), "{request}");
    // The botocore vector signed host `sts.eu-west-1.amazonaws.com`; here it is the local server,
    // so compare everything but the signature, then the signature on botocore's host.
    let (prefix, _) = STS_AUTHORIZATION.split_once("Signature=").unwrap_or_default();
    assert!(request.contains(&format!("authorization: {prefix}Signature=")), "{request}");
    let scope = sigv4::Scope {
        credentials: &credentials(Some(SESSION_TOKEN)),
        region: "eu-west-1",
        service: "sts",
        time: signed_at(),
    };
    let body = "Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fmsk_client_role&RoleSessionName=kafka-edge&Version=2011-06-15";
    let headers = sigv4::authorization_headers(
        &scope,
        "POST",
        "sts.eu-west-1.amazonaws.com",
        &[("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")],
        body.as_bytes(),
    );
    assert_eq!(headers.last().map(|(_, value)| value.as_str()), Some(STS_AUTHORIZATION));
}

#[tokio::test]
async fn assume_role_with_base_credentials_from_the_environment() {
    let (url, server) = sts_server("200 OK", ASSUME_ROLE_RESPONSE).await;
    let env = env_of(&[
        ("AWS_ENDPOINT_URL_STS", &url),
        ("AWS_REGION", "us-west-2"),
        ("AWS_ACCESS_KEY_ID", "AKIAENV"),
        ("AWS_SECRET_ACCESS_KEY", "env-secret"),
        ("AWS_SESSION_TOKEN", "env-token"),
    ]);
    let login = MskIamLogin {
        role_arn: Some("arn:aws:iam::123456789012:role/r".into()),
        role_session_name: Some("s".into()),
        role_external_id: Some("ext-1".into()),
        ..MskIamLogin::default()
    };
    let found = resolve_credentials(&login, &env).await.unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(found.access_key_id, "ASIAROLEEXAMPLE");
    let request = server.await.unwrap_or_default();
    assert!(request.contains("Credential=AKIAENV/") && request.contains("/us-west-2/sts/aws4_request"), "{request}");
    assert!(request.contains("x-amz-security-token: env-token\r\n"), "{request}");
    assert!(request.contains("&RoleSessionName=s&ExternalId=ext-1&Version=2011-06-15"), "{request}");
}

#[tokio::test]
async fn sts_refusals_and_failures_keep_secrets_out() {
    let refusal = "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>\
                   <Message>User: arn:aws:iam::123456789012:user/gw is not authorized to perform: sts:AssumeRole</Message></Error></ErrorResponse>";
    let (url, server) = sts_server("403 Forbidden", refusal).await;
    let error = resolve_credentials(&role_login(), &env_of(&[("AWS_ENDPOINT_URL_STS", &url)])).await.err();
    let _ = server.await;
    let message = error.map(|error| error.to_string()).unwrap_or_default();
    assert!(
        message.contains("HTTP 403 AccessDenied: User: arn:aws:iam::123456789012:user/gw is not authorized"),
        "{message}"
    );
    assert!(message.contains("arn:aws:iam::123456789012:role/msk_client_role"), "{message}");

    let (url, server) = sts_server("200 OK", "<AssumeRoleResponse/>").await;
    let error = resolve_credentials(&role_login(), &env_of(&[("AWS_ENDPOINT_URL_STS", &url)])).await.err();
    let _ = server.await;
    let message = error.map(|error| error.to_string()).unwrap_or_default();
    assert!(message.ends_with("without a readable Credentials"), "{message}");

    // A port that was just free: the connection is refused.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.and_then(|listener| listener.local_addr());
    let closed = closed.unwrap_or_else(|error| panic!("{error}"));
    let error = resolve_credentials(&role_login(), &env_of(&[("AWS_ENDPOINT_URL_STS", &format!("http://{closed}/"))]))
        .await
        .err();
    let unreachable = error.map(|error| error.to_string()).unwrap_or_default();
    let expected = format!("STS AssumeRole of `arn:aws:iam::123456789012:role/msk_client_role` at {closed} failed: ");
    assert!(unreachable.starts_with(&expected), "{unreachable}");

    let bad =
        resolve_credentials(&role_login(), &env_of(&[("AWS_ENDPOINT_URL_STS", "http://user:hunter2@")])).await.err();
    let bad = bad.map(|error| error.to_string()).unwrap_or_default();
    assert_eq!(bad, "AWS_ENDPOINT_URL_STS is not an http(s) URL");

    for message in [message, unreachable, bad] {
        assert!(!message.contains(SECRET_ACCESS_KEY) && !message.contains("hunter2"), "{message}");
    }
}

/// One request as a local metadata server saw it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }
}

/// A server of any number of requests, each answered by `route` with a status line and a body;
/// it keeps every request it saw.
async fn metadata_server(
    route: impl Fn(&Seen) -> (&'static str, String) + Send + Sync + 'static,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<Seen>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|error| panic!("{error}"));
    let base = format!("http://{}", listener.local_addr().unwrap_or_else(|error| panic!("{error}")));
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let route = std::sync::Arc::new(route);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let (log, route) = (log.clone(), route.clone());
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                let seen = loop {
                    let Ok(read) = stream.read(&mut buffer).await else { return };
                    request.extend_from_slice(&buffer[..read]);
                    let text = String::from_utf8_lossy(&request).to_string();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let mut lines = head.lines();
                        let mut first = lines.next().unwrap_or_default().split(' ');
                        let (method, path) = (first.next().unwrap_or_default(), first.next().unwrap_or_default());
                        let headers: Vec<(String, String)> = lines
                            .filter_map(|line| line.split_once(':'))
                            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
                            .collect();
                        let length = headers
                            .iter()
                            .find(|(name, _)| name == "content-length")
                            .and_then(|(_, value)| value.parse().ok())
                            .unwrap_or(0);
                        if body.len() >= length {
                            break Seen { method: method.into(), path: path.into(), headers };
                        }
                    }
                    if read == 0 {
                        return;
                    }
                };
                let (status, body) = route(&seen);
                log.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(seen);
                let response =
                    format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (base, seen)
}

/// Metadata-style JSON credentials expiring `expires_in` from now.
fn json_credentials(access_key_id: &str, expires_in: Duration) -> String {
    // 20250115T093000Z → 2025-01-15T09:30:00Z
    let amz = clock::amz_date(SystemTime::now() + expires_in);
    let iso =
        format!("{}-{}-{}T{}:{}:{}Z", &amz[0..4], &amz[4..6], &amz[6..8], &amz[9..11], &amz[11..13], &amz[13..15]);
    format!(
        r#"{{"Code":"Success","AccessKeyId":"{access_key_id}","SecretAccessKey":"metadata/secret","Token":"metadata-session","Expiration":"{iso}"}}"#
    )
}

#[tokio::test]
async fn container_endpoint_with_a_token_file_as_ecs_and_eks_pod_identity_serve_it() {
    let (base, seen) = metadata_server(|request| match request.header("authorization") {
        Some("pod-identity-token") => ("200 OK", json_credentials("ASIACONTAINER", Duration::from_secs(3600))),
        _ => ("401 Unauthorized", String::new()),
    })
    .await;
    let token = TempFile::new("pod-identity-token\n");
    let url = format!("{base}/v1/credentials");
    let env = env_of(&[
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &url),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", token.path()),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]);
    let found = resolve_credentials(&MskIamLogin::default(), &env).await.unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(found.access_key_id, "ASIACONTAINER");
    assert_eq!(found.session_token.as_deref(), Some("metadata-session"));
    assert!(found.expiry.is_some_and(|expiry| expiry > SystemTime::now()));
    assert_eq!(seen.lock().map(|seen| seen[0].path.clone()).unwrap_or_default(), "/v1/credentials");

    // The token in the variable, and a wrong one.
    let env = env_of(&[
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &url),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "wrong-token"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]);
    let error =
        resolve_credentials(&MskIamLogin::default(), &env).await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(error.contains("the container endpoint (the container credentials endpoint answered HTTP 401"), "{error}");
    assert!(!error.contains("wrong-token"), "{error}");

    // Plain HTTP only to loopback and the ECS/EKS agent addresses, as the AWS SDKs allow.
    let env = env_of(&[
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://credentials.example.com/v1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]);
    let error =
        resolve_credentials(&MskIamLogin::default(), &env).await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(error.contains("must be https, or http to loopback"), "{error}");
}

const WEB_IDENTITY_RESPONSE: &str = r#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <Credentials>
      <AccessKeyId>ASIAWEBIDENTITY</AccessKeyId>
      <SecretAccessKey>web/identity+secret</SecretAccessKey>
      <SessionToken>web-identity-session</SessionToken>
      <Expiration>2099-01-15T09:30:00Z</Expiration>
    </Credentials>
  </AssumeRoleWithWebIdentityResult>
</AssumeRoleWithWebIdentityResponse>"#;

#[tokio::test]
async fn web_identity_as_eks_irsa_sets_it_up() {
    let (url, server) = sts_server("200 OK", WEB_IDENTITY_RESPONSE).await;
    let token = TempFile::new("eyJhbGciOiJSUzI1NiJ9.service-account.token\n");
    let env = env_of(&[
        ("AWS_WEB_IDENTITY_TOKEN_FILE", token.path()),
        ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/msk-irsa"),
        ("AWS_ROLE_SESSION_NAME", "orders-pod"),
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ENDPOINT_URL_STS", &url),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]);
    let found = resolve_credentials(&MskIamLogin::default(), &env).await.unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(found.access_key_id, "ASIAWEBIDENTITY");
    assert_eq!(found.session_token.as_deref(), Some("web-identity-session"));
    let request = server.await.unwrap_or_default();
    assert!(request.contains("Action=AssumeRoleWithWebIdentity"), "{request}");
    assert!(request.contains("RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fmsk-irsa"), "{request}");
    assert!(request.contains("RoleSessionName=orders-pod"), "{request}");
    assert!(request.contains("WebIdentityToken=eyJhbGciOiJSUzI1NiJ9.service-account.token&"), "{request}");
    assert!(!request.to_ascii_lowercase().contains("authorization:"), "not signed: {request}");
}

#[tokio::test]
async fn instance_metadata_v2_with_its_session_token() {
    let (base, seen) = metadata_server(|request| {
        let session = request.header("x-aws-ec2-metadata-token") == Some("imds-session-token");
        match (request.method.as_str(), request.path.as_str()) {
            ("PUT", "/latest/api/token") if request.header("x-aws-ec2-metadata-token-ttl-seconds").is_some() => {
                ("200 OK", "imds-session-token".into())
            }
            ("GET", "/latest/meta-data/iam/security-credentials/") if session => {
                ("200 OK", "msk-instance-role\n".into())
            }
            ("GET", "/latest/meta-data/iam/security-credentials/msk-instance-role") if session => {
                ("200 OK", json_credentials("ASIAINSTANCE", Duration::from_secs(3600)))
            }
            _ => ("401 Unauthorized", String::new()),
        }
    })
    .await;
    let env = env_of(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT", &base), ("HOME", "/nonexistent")]);
    let found = resolve_credentials(&MskIamLogin::default(), &env).await.unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(found.access_key_id, "ASIAINSTANCE");
    let paths: Vec<String> =
        seen.lock().map(|seen| seen.iter().map(|s| format!("{} {}", s.method, s.path)).collect()).unwrap_or_default();
    assert_eq!(
        paths,
        [
            "PUT /latest/api/token",
            "GET /latest/meta-data/iam/security-credentials/",
            "GET /latest/meta-data/iam/security-credentials/msk-instance-role"
        ]
    );

    // The environment comes first, as in the AWS SDKs.
    let env = env_of(&[
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &base),
        ("AWS_ACCESS_KEY_ID", "AKIAENV"),
        ("AWS_SECRET_ACCESS_KEY", "env-secret"),
    ]);
    let found = resolve_credentials(&MskIamLogin::default(), &env).await.unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(found.access_key_id, "AKIAENV");
}

#[tokio::test]
async fn a_client_outlives_its_first_credentials() {
    use crate::security::oauth::{SharedCredentials, SharedEnv, TokenSource};
    use std::sync::atomic::{AtomicUsize, Ordering};
    // Each answer is a new key that expires 4 s later, like a container endpoint's short-lived ones.
    let answered = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = answered.clone();
    let (base, _seen) = metadata_server(move |_| {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        ("200 OK", json_credentials(&format!("ASIAROTATING{n}"), Duration::from_secs(4)))
    })
    .await;
    let url = format!("{base}/v1/credentials");
    let env: SharedEnv = std::sync::Arc::new(move |name: &str| match name {
        "AWS_CONTAINER_CREDENTIALS_FULL_URI" => Some(url.clone()),
        "AWS_EC2_METADATA_DISABLED" => Some("true".into()),
        _ => None,
    });
    let login = MskIamLogin { role_session_name: Some("outlives".into()), ..MskIamLogin::default() };
    let source = TokenSource::MskIam { region: "eu-west-1".into(), login: login.clone() };
    let shared = SharedCredentials::get(&source, &login, env).await.unwrap_or_else(|error| panic!("{error}"));
    let first = shared.credentials();
    assert_eq!(first.access_key_id, "ASIAROTATING1");
    let first_expiry = first.expiry.unwrap_or_else(|| panic!("temporary credentials"));

    // Past the first credentials' expiry, with no new client: a token is signed with renewed ones.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while SystemTime::now() <= first_expiry + Duration::from_millis(200) {
        assert!(tokio::time::Instant::now() < deadline, "the first credentials never expired");
        tokio::time::sleep(Duration::from_millis(100)).await; // waiting for the clock itself
    }
    let now = SystemTime::now();
    let current = shared.credentials();
    assert_ne!(current.access_key_id, "ASIAROTATING1", "renewed in the background");
    assert!(current.expiry.is_some_and(|expiry| expiry > now), "the credentials in use have not expired");
    let token = sign_token("eu-west-1", &current, now, "test");
    assert_eq!(token.principal, current.access_key_id);
    assert!(token.lifetime_ms <= epoch_millis(current.expiry.unwrap_or(now)), "tokens stop at the credentials' expiry");
    assert!(answered.load(Ordering::SeqCst) >= 2);
}
