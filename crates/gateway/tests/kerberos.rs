//! SASL/GSSAPI against a real MIT Kerberos KDC (testkit/kdc) and a private broker whose GSSAPI
//! listener logs in with its own keytab: the gateway authenticates with a keytab named in a
//! Gravitee `Krb5LoginModule` line, exactly as users write it. librdkafka gets its tickets by
//! running `kinit` into the process's ticket cache, so each gateway runs as a process of its own
//! with `KRB5_CONFIG` naming the realm and `KRB5CCNAME` a cache of its own.

mod common;

use common::*;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

/// The JAAS line of a Gravitee definition for `user`'s principal with the keytab at `keytab`.
fn krb5_login(keytab: &Path, user: &str) -> String {
    format!(
        "com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true storeKey=true keyTab=\"{}\" \
         principal=\"{}\" serviceName=\"kafka\";",
        keytab.display(),
        Kdc::principal(user)
    )
}

/// The test API on `topic` through the broker's GSSAPI listener, logging in with `jaas`.
fn kerberos_api(topic: &str, bootstrap: &str, jaas: &str) -> ApiSpec {
    let mut spec = ApiSpec::new(topic);
    spec.bootstrap = bootstrap.to_string();
    spec.http_get = json!({"messagesLimitCount": 10, "messagesLimitDurationMs": 1000});
    spec.security = Some(json!({
        "protocol": "SASL_PLAINTEXT",
        "sasl": {"saslMechanism": "GSSAPI", "saslJaasConfig": jaas}
    }));
    spec
}

/// A KDC, a broker with a GSSAPI listener on it, and a one-partition topic. (The broker is
/// dropped before the KDC: fields drop in order.)
struct Realm {
    broker: PrivateBroker,
    kdc: Kdc,
    topic: String,
}

async fn realm(prefix: &str) -> Realm {
    let (kdc, broker) = tokio::task::spawn_blocking(|| {
        let kdc = Kdc::start();
        let broker = PrivateBroker::start_with_kerberos(&kdc);
        (kdc, broker)
    })
    .await
    .expect("KDC and broker");
    let topic = unique(prefix);
    create_topic_on(broker.bootstrap(), &topic, 1).await;
    Realm { broker, kdc, topic }
}

impl Realm {
    fn gssapi_bootstrap(&self) -> String {
        self.broker.gssapi_bootstrap().expect("a GSSAPI listener")
    }
}

/// `kafka-edge run` serving `definitions` (one file each) as a client of `kdc`'s realm, with a
/// ticket cache of its own in `dir`, once it answers.
async fn gateway(dir: &Path, kdc: &Kdc, definitions: &[Value]) -> GatewayProcess {
    let mut args: Vec<std::ffi::OsString> = vec!["--admin-listen".into(), "off".into()];
    for (index, definition) in definitions.iter().enumerate() {
        let file = dir.join(format!("api-{index}.json"));
        std::fs::write(&file, definition.to_string()).expect("write definition");
        args.extend(["--api".into(), file.into_os_string()]);
    }
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|arg| arg.as_os_str()).collect();
    let krb5_config = kdc.krb5_conf().display().to_string();
    let cache = format!("FILE:{}", dir.join("krb5cc").display());
    let env = [("KRB5_CONFIG", krb5_config.as_str()), ("KRB5CCNAME", cache.as_str())];
    let gateway = GatewayProcess::start_with_env(dir, &[], &args, &env);
    gateway.wait_until_listening().await;
    gateway
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produces_and_consumes_through_a_kerberos_listener() {
    let realm = realm("kerberos").await;
    let spec =
        kerberos_api(&realm.topic, &realm.gssapi_bootstrap(), &krb5_login(&realm.kdc.keytab("edge-a"), "edge-a"));
    let dir = tempfile::tempdir().expect("dir");
    let gateway = gateway(dir.path(), &realm.kdc, &[spec.to_json()]).await;
    let url = format!("{}{}", gateway.base, spec.path);

    let posted = gateway.http.post(&url).body("over kerberos").send().await.expect("POST");
    assert_eq!(posted.status(), 202, "POST through the GSSAPI listener: {}", gateway.log());
    assert_eq!(values_on(realm.broker.bootstrap(), &realm.topic), ["over kerberos"], "the record on the broker");

    let (status, body) = gateway.get_json(&format!("{}?limit=1", spec.path), "kerberos-reader").await;
    assert_eq!(status, 200);
    assert_eq!(contents(&body), ["over kerberos"], "GET through the GSSAPI listener: {body}");

    // The tickets librdkafka's kinit got are edge-a's, in the cache the gateway was given.
    let klist = std::process::Command::new("klist")
        .arg("-c")
        .arg(dir.path().join("krb5cc"))
        .env("KRB5_CONFIG", realm.kdc.krb5_conf())
        .output()
        .expect("klist runs");
    let tickets = String::from_utf8_lossy(&klist.stdout);
    assert!(tickets.contains(&format!("Default principal: {}", Kdc::principal("edge-a"))), "{tickets}");
    assert!(tickets.contains("kafka/localhost@KAFKA-EDGE.TEST"), "a service ticket for the broker: {tickets}");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keytab_without_the_principal_fails_with_a_clear_error_and_no_secret() {
    let realm = realm("kerberos-wrong-keytab").await;
    // edge-b's keytab holds no key of edge-a: kinit fails, and the broker is never asked.
    let jaas = krb5_login(&realm.kdc.keytab("edge-b"), "edge-a");
    let spec = kerberos_api(&realm.topic, &realm.gssapi_bootstrap(), &jaas);
    let dir = tempfile::tempdir().expect("dir");
    let gateway = gateway(dir.path(), &realm.kdc, &[spec.to_json()]).await;
    let url = format!("{}{}", gateway.base, spec.path);

    let posted = gateway.http.post(&url).body("never written").send().await.expect("POST");
    assert_eq!(posted.status(), 503);
    let body: Value = posted.json().await.expect("JSON error");
    assert_eq!(body["message"], "Endpoint configuration invalid: authentication with the Kafka cluster failed");

    let (_, body) = gateway.get_json(&format!("{}?limit=1", spec.path), "kerberos-reader").await;
    assert_eq!(
        body["error"]["content"], "Endpoint configuration invalid: authentication with the Kafka cluster failed",
        "the GET names the same cause: {body}"
    );

    let log = gateway.log();
    // The reason is in the log: kinit's own message and the GSSAPI error librdkafka got.
    assert!(log.contains("Keytab contains no suitable keys for edge-a@KAFKA-EDGE.TEST"), "{log}");
    assert!(log.contains("No Kerberos credentials available"), "{log}");
    // Cyrus SASL repeats its error on every librdkafka retry: those lines are debug, and the
    // gateway's own report carries the reason.
    assert!(!log.lines().any(|line| line.contains("ERROR") && line.contains("LIBSASL")), "{log}");
    assert!(values_on(realm.broker.bootstrap(), &realm.topic).is_empty(), "nothing written");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_kerberos_principal_is_refused_at_start_and_at_reload() {
    // No KDC is needed: the refusal is at load, before any client exists.
    let topic = unique("kerberos-two");
    let keytabs = tempfile::tempdir().expect("dir");
    let first = kerberos_api(&topic, "localhost:1", &krb5_login(&keytabs.path().join("a.keytab"), "edge-a"));
    let second = kerberos_api(&topic, "localhost:1", &krb5_login(&keytabs.path().join("b.keytab"), "edge-b"));

    let dir = tempfile::tempdir().expect("dir");
    let files: Vec<_> = [&first, &second]
        .iter()
        .enumerate()
        .map(|(index, spec)| {
            let file = dir.path().join(format!("api-{index}.json"));
            std::fs::write(&file, spec.to_json().to_string()).expect("write");
            file
        })
        .collect();
    let validated = std::process::Command::new(env!("CARGO_BIN_EXE_kafka-edge"))
        .arg("validate")
        .args(&files)
        .output()
        .expect("validate runs");
    assert_eq!(validated.status.code(), Some(1));
    let problems = String::from_utf8_lossy(&validated.stdout);
    assert!(
        problems.contains(&format!(
            "{}: endpointGroups[0].sharedConfiguration.security.sasl.saslJaasConfig: Kerberos principal \
             `edge-b@KAFKA-EDGE.TEST` differs from `edge-a@KAFKA-EDGE.TEST`",
            files[1].display()
        )),
        "{problems}"
    );

    // Served alone, the first loads; a second file with another principal is refused on reload
    // and the first keeps serving.
    std::fs::remove_file(&files[1]).expect("remove");
    let gateway = GatewayProcess::start(
        dir.path(),
        &[],
        &["--admin-listen".as_ref(), "off".as_ref(), "--api".as_ref(), dir.path().as_os_str()],
    );
    gateway.wait_until_listening().await;
    std::fs::write(&files[1], second.to_json().to_string()).expect("write");
    assert!(
        eventually_within(Duration::from_secs(10), || gateway
            .log()
            .contains("Kerberos principal `edge-b@KAFKA-EDGE.TEST`"))
        .await,
        "{}",
        gateway.log()
    );
    let refused = gateway.http.post(format!("{}{}", gateway.base, second.path)).body("x").send().await.expect("POST");
    assert_eq!(refused.status(), 404, "the refused API is not served");
    gateway.stop().await;
}
