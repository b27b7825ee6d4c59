use super::*;
use crate::security::client_credentials::ClientCredentials;
use proptest::prelude::*;

const PLAIN: &str = "org.apache.kafka.common.security.plain.PlainLoginModule";
const IAM: &str = "software.amazon.msk.auth.iam.IAMLoginModule";

fn parse(text: &str) -> JaasConfig {
    JaasConfig::parse(text).unwrap_or_else(|error| panic!("{text:?} should parse: {error}"))
}

fn login(text: &str) -> LoginModule {
    LoginModule::from_jaas(&parse(text)).unwrap_or_else(|error| panic!("{text:?} should map: {error}"))
}

fn expected_at(position: usize) -> impl Fn(&JaasError) -> bool {
    move |error| matches!(error, JaasError::Expected { position: p, .. } if *p == position)
}

#[test]
fn plain_with_double_quotes() {
    let config = parse(
        r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="alice" password="alice-secret";"#,
    );
    assert_eq!(config.login_module, PLAIN);
    assert_eq!(config.control_flag, "required");
    assert_eq!(config.option("username"), Some("alice"));
    assert_eq!(config.option("password"), Some("alice-secret"));
    assert_eq!(config.option("missing"), None);
    assert_eq!(
        LoginModule::from_jaas(&config),
        Ok(LoginModule::Plain { username: "alice".into(), password: "alice-secret".into() })
    );
}

#[test]
fn plain_with_single_quotes_holding_semicolons_and_equals() {
    let connection = "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=abc+/def=";
    let text = format!("{PLAIN} required username='$ConnectionString' password='{connection}';");
    assert_eq!(login(&text), LoginModule::Plain { username: "$ConnectionString".into(), password: connection.into() });
}

#[test]
fn scram() {
    assert_eq!(
        login(r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="u" password="p";"#),
        LoginModule::Scram { username: "u".into(), password: "p".into() }
    );
}

#[test]
fn oauthbearer_access_token() {
    assert_eq!(
        login(
            r#"org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required access_token="eyJhbGciOiJIUzI1NiJ9.e30.sig";"#
        ),
        LoginModule::OAuthBearer(OAuthBearerLogin::AccessToken("eyJhbGciOiJIUzI1NiJ9.e30.sig".into()))
    );
}

#[test]
fn oauthbearer_unsecured_with_claims() {
    assert_eq!(
        login(
            r#"org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="alice";"#
        ),
        LoginModule::OAuthBearer(OAuthBearerLogin::Unsecured { principal: "alice".into(), claims: vec![] })
    );
    let with_claims = login(
        "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required \
         unsecuredLoginStringClaim_sub=\"alice\" unsecuredLoginStringClaim_scope=\"read write\";",
    );
    assert_eq!(
        with_claims,
        LoginModule::OAuthBearer(OAuthBearerLogin::Unsecured {
            principal: "alice".into(),
            claims: vec![("scope".into(), "read write".into())]
        })
    );
}

#[test]
fn oauthbearer_client_credentials_with_kip_768_or_strimzi_names() {
    let expected = LoginModule::OAuthBearer(OAuthBearerLogin::ClientCredentials(ClientCredentials {
        token_endpoint: "https://idp.example.com/realms/kafka/protocol/openid-connect/token".into(),
        client_id: "orders".into(),
        client_secret: "s3cret".into(),
        scope: Some("kafka".into()),
    }));
    assert_eq!(
        login(
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required clientId=\"orders\" \
             clientSecret=\"s3cret\" scope=\"kafka\" \
             oauth.token.endpoint.uri=\"https://idp.example.com/realms/kafka/protocol/openid-connect/token\";"
        ),
        expected
    );
    assert_eq!(
        login(
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required oauth.client.id=\"orders\" \
             oauth.client.secret=\"s3cret\" oauth.scope=\"kafka\" \
             sasl.oauthbearer.token.endpoint.url=\"https://idp.example.com/realms/kafka/protocol/openid-connect/token\";"
        ),
        expected
    );
    let refused = |line: &str| {
        LoginModule::from_jaas(&parse(&format!(
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required {line};"
        )))
    };
    assert!(matches!(
        refused("clientId=a clientSecret=b"),
        Err(JaasError::MissingOption { option: "oauth.token.endpoint.uri (the token endpoint of clientId)", .. })
    ));
    assert!(matches!(
        refused("clientId=a oauth.token.endpoint.uri=https://idp/token"),
        Err(JaasError::MissingOption { option: "clientSecret", .. })
    ));
    assert!(matches!(
        refused("clientId=a clientSecret=b oauth.token.endpoint.uri=idp/token"),
        Err(JaasError::InvalidOption { option: "oauth.token.endpoint.uri", .. })
    ));
}

#[test]
fn kerberos() {
    let text = r#"com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true storeKey=true keyTab="/etc/kafka.keytab" principal="kafka-edge@EXAMPLE.COM" serviceName="kafka";"#;
    assert_eq!(
        login(text),
        LoginModule::Kerberos {
            principal: Some("kafka-edge@EXAMPLE.COM".into()),
            key_tab: Some("/etc/kafka.keytab".into()),
            service_name: Some("kafka".into()),
            use_key_tab: true,
        }
    );
    let bad = parse("com.sun.security.auth.module.Krb5LoginModule required useKeyTab=yes;");
    assert_eq!(
        LoginModule::from_jaas(&bad),
        Err(JaasError::InvalidOption { option: "useKeyTab", expected: "true or false" })
    );
}

#[test]
fn msk_iam_default_chain_profile_and_role() {
    assert_eq!(login(&format!("{IAM} required;")), LoginModule::AwsMskIam(MskIamLogin::default()));
    assert_eq!(
        login(&format!(r#"{IAM} required awsProfileName="dev";"#)),
        LoginModule::AwsMskIam(MskIamLogin { profile: Some("dev".into()), ..MskIamLogin::default() })
    );
    let role = login(&format!(
        r#"{IAM} required awsRoleArn="arn:aws:iam::123456789012:role/msk_client_role" awsRoleAccessKeyId="ACCESS_KEY" awsRoleSecretAccessKey="SECRET" awsRoleSessionName="s" awsStsRegion="eu-west-1";"#
    ));
    assert_eq!(
        role,
        LoginModule::AwsMskIam(MskIamLogin {
            role_arn: Some("arn:aws:iam::123456789012:role/msk_client_role".into()),
            role_session_name: Some("s".into()),
            role_access_key_id: Some("ACCESS_KEY".into()),
            role_secret_access_key: Some("SECRET".into()),
            sts_region: Some("eu-west-1".into()),
            ..MskIamLogin::default()
        })
    );
    let debug = format!("{role:?}");
    assert!(!debug.contains("SECRET") && !debug.contains("ACCESS_KEY"), "{debug}");
}

#[test]
fn msk_iam_role_keys_come_in_pairs_and_with_a_role() {
    let half = parse(&format!(r#"{IAM} required awsRoleArn="arn" awsRoleAccessKeyId="A";"#));
    assert_eq!(
        LoginModule::from_jaas(&half),
        Err(JaasError::MissingOption { module: "IAMLoginModule", option: "awsRoleSecretAccessKey" })
    );
    let no_role = parse(&format!(r#"{IAM} required awsRoleAccessKeyId="A" awsRoleSecretAccessKey="B";"#));
    assert!(matches!(
        LoginModule::from_jaas(&no_role),
        Err(JaasError::InvalidOption { option: "awsRoleAccessKeyId", .. })
    ));
}

#[test]
fn lenient_layout_unquoted_values_escapes_and_flags() {
    let config = parse(&format!("\n  {PLAIN}\n\tREQUIRED\n username = alice\n password=\"a\\\"b\\\\c\\n\"  \n"));
    assert_eq!(config.control_flag, "required");
    assert_eq!(config.option("username"), Some("alice"));
    assert_eq!(config.option("password"), Some("a\"b\\c\n"));
    for flag in ["requisite", "sufficient", "Optional"] {
        assert_eq!(parse(&format!("{PLAIN} {flag} username=a password=b")).control_flag, flag.to_lowercase());
    }
    assert_eq!(parse(&format!("{PLAIN} required password=YWJj==;")).option("password"), Some("YWJj=="));
    assert_eq!(parse(&format!("{PLAIN} required a=1 a=2;")).option("a"), Some("2"), "the last one wins");
}

#[test]
fn malformed_lines_report_positions() {
    assert_eq!(JaasConfig::parse(""), Err(JaasError::Empty));
    assert_eq!(JaasConfig::parse(" \n\t "), Err(JaasError::Empty));
    // Unterminated quote: the position of the opening quote.
    assert_eq!(JaasConfig::parse(r#"a.B required password="abc"#), Err(JaasError::UnterminatedQuote { position: 23 }));
    assert_eq!(
        JaasConfig::parse(r#"a.B required password='abc\'"#),
        Err(JaasError::UnterminatedQuote { position: 23 })
    );
    // Missing control flag: the option name stands where the flag should.
    let missing_flag = JaasConfig::parse(r#"a.B username="u" password="p";"#).unwrap_err();
    assert!(expected_at(5)(&missing_flag), "{missing_flag}");
    assert!(missing_flag.to_string().contains("control flag"), "{missing_flag}");
    assert!(expected_at(4)(&JaasConfig::parse("a.B").unwrap_err()));
    assert!(expected_at(1)(&JaasConfig::parse(";").unwrap_err()));
    assert!(expected_at(1)(&JaasConfig::parse("\"a.B\" required;").unwrap_err()));
    assert!(expected_at(23)(&JaasConfig::parse("a.B required username \"u\"").unwrap_err()));
    assert!(expected_at(23)(&JaasConfig::parse("a.B required username=;").unwrap_err()));
    assert!(expected_at(23)(&JaasConfig::parse("a.B required username=").unwrap_err()));
    assert!(expected_at(14)(&JaasConfig::parse("a.B required =x").unwrap_err()));
    assert!(expected_at(19)(&JaasConfig::parse("a.B required a=b; c.D required;").unwrap_err()));
    // Positions count characters, not bytes.
    assert!(expected_at(20)(&JaasConfig::parse("a.B required a=\"é\" ?").unwrap_err()));
    let message = JaasConfig::parse("a.B required a=b; c.D required;").unwrap_err().to_string();
    assert_eq!(message, "JAAS configuration, character 19: expected the end after `;` (one login module per line)");
}

#[test]
fn unsupported_modules_and_missing_options() {
    let unknown = LoginModule::from_jaas(&parse("org.example.CustomLoginModule required;")).unwrap_err();
    assert_eq!(unknown, JaasError::UnsupportedModule { module: "org.example.CustomLoginModule".into() });
    let message = unknown.to_string();
    assert!(message.contains("org.example.CustomLoginModule") && message.contains("PlainLoginModule"), "{message}");
    assert_eq!(LoginModule::from_jaas(&parse("hunter2 required;")), Err(JaasError::NotAClassName));
    assert_eq!(
        LoginModule::from_jaas(&parse(&format!("{PLAIN} required username=\"u\";"))),
        Err(JaasError::MissingOption { module: "PlainLoginModule", option: "password" })
    );
    assert_eq!(
        LoginModule::from_jaas(&parse("org.apache.kafka.common.security.scram.ScramLoginModule required password=p;")),
        Err(JaasError::MissingOption { module: "ScramLoginModule", option: "username" })
    );
    let oauth =
        LoginModule::from_jaas(&parse("org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;"));
    assert!(matches!(oauth, Err(JaasError::MissingOption { module: "OAuthBearerLoginModule", .. })));
}

#[test]
fn debug_shows_option_names_never_values() {
    let config = parse(&format!(r#"{PLAIN} required username="alice" password="hunter2";"#));
    let debug = format!("{config:?}");
    assert!(debug.contains("password") && !debug.contains("hunter2") && !debug.contains("alice"), "{debug}");
    let module = format!("{:?}", LoginModule::from_jaas(&config));
    assert!(module.contains("alice") && !module.contains("hunter2"), "{module}");
    let token = format!(
        "{:?}",
        login("org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required access_token=hunter2;")
    );
    assert!(!token.contains("hunter2"), "{token}");
}

#[test]
fn no_error_message_repeats_a_secret() {
    let secret = "hunter2";
    let inputs = [
        secret.to_string(),
        format!("{secret} required"),
        format!("{secret} {secret}"),
        format!("{secret}; x"),
        format!("\"{secret}\""),
        format!("{PLAIN} {secret}"),
        format!("{PLAIN} required password=\"{secret}"),
        format!("{PLAIN} required password='{secret}"),
        format!("{PLAIN} required password=\"{secret}\\"),
        format!("{PLAIN} required password {secret}"),
        format!("{PLAIN} required password=\"{secret}\" ; {secret}"),
        format!("{PLAIN} required password={secret}; extra={secret}"),
        format!("{PLAIN} required password={secret}\"x"),
        format!("{PLAIN} required password={secret}\"{secret}"),
        format!("{PLAIN} required password=\"{secret}\" \"{secret}\""),
        format!("{PLAIN} required password=\"{secret}\" ={secret}"),
        format!("{PLAIN} required {secret}"),
        format!("{PLAIN} required {secret}="),
        format!("{PLAIN} required {secret}=;"),
        format!("{PLAIN} required username=u password=\"{secret}\" password2"),
        format!("{PLAIN} required username=u ?{secret}"),
        format!("{PLAIN} required username=u password=\"{secret}\";;"),
        format!("{PLAIN} required username=\"{secret}"),
        format!("{PLAIN} required user\u{0}name={secret}"),
        format!("{PLAIN} required password=\"{secret}\""), // no username: from_jaas error
        format!("{PLAIN}x required password=\"{secret}\" username=u"),
        format!("org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required clientId=c clientSecret={secret}"),
        format!("{IAM} required awsRoleArn=a awsRoleAccessKeyId={secret}"),
        format!("{IAM} required awsRoleSecretAccessKey={secret}"),
        format!("com.sun.security.auth.module.Krb5LoginModule required useKeyTab={secret}"),
        format!("{secret}-x required password={secret}"),
        format!("-{secret} required;"),
        format!("{secret}-x.Y required;"),
    ];
    for input in &inputs {
        let outcome = JaasConfig::parse(input).and_then(|config| LoginModule::from_jaas(&config));
        if let Err(error) = outcome {
            let message = error.to_string();
            assert!(!message.contains(secret), "{input:?} gave {message:?}");
            assert!(!format!("{error:?}").contains(secret), "{input:?} gave {error:?}");
        }
    }
}

/// Renders options as a JAAS line, choosing quotes and layout from `style`.
fn render(module: &str, flag: &str, options: &[(String, String)], style: &[u8]) -> String {
    let mut text = format!("{module} {flag}");
    for (index, (name, value)) in options.iter().enumerate() {
        let choice = style.get(index).copied().unwrap_or(0);
        let separator = ["\n", "  ", "\t", " "][usize::from(choice % 4)];
        let around = if choice & 4 != 0 { " " } else { "" };
        let quote = if choice & 8 != 0 { '\'' } else { '"' };
        let unquoted = choice & 16 != 0 && !value.is_empty() && value.chars().all(is_unquoted);
        let rendered = if unquoted {
            value.clone()
        } else {
            let escaped = value.replace('\\', "\\\\").replace(quote, &format!("\\{quote}"));
            format!("{quote}{escaped}{quote}")
        };
        text.push_str(&format!("{separator}{name}{around}={around}{rendered}"));
    }
    if style.first().is_some_and(|first| first & 32 != 0) {
        text.push(';');
    }
    text
}

proptest! {
    #[test]
    fn parse_never_panics(text in "\\PC{0,80}") {
        let _ = JaasConfig::parse(&text).map(|config| LoginModule::from_jaas(&config));
    }

    #[test]
    fn parse_never_panics_on_jaas_like_text(text in "[a-z.A-Z =;'\"\\\\\\n]{0,60}") {
        let _ = JaasConfig::parse(&text).map(|config| LoginModule::from_jaas(&config));
    }

    #[test]
    fn rendered_options_parse_back(
        module in "[a-z]{1,6}(\\.[a-zA-Z$_][a-zA-Z0-9]{0,6}){0,3}",
        flag in prop::sample::select(&["required", "requisite", "sufficient", "optional", "REQUIRED"][..]),
        options in prop::collection::btree_map("[a-zA-Z_][a-zA-Z0-9_.$-]{0,12}", any::<String>(), 0..6),
        style in prop::collection::vec(any::<u8>(), 0..6),
    ) {
        let options: Vec<(String, String)> = options.into_iter().collect();
        let text = render(&module, flag, &options, &style);
        let config = JaasConfig::parse(&text).map_err(|error| TestCaseError::fail(format!("{text:?}: {error}")))?;
        prop_assert_eq!(&config.login_module, &module);
        prop_assert_eq!(config.control_flag, flag.to_lowercase());
        prop_assert_eq!(config.options, options);
    }
}
