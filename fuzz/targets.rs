//! What each fuzz target does with its input, shared by the cargo-fuzz binaries
//! (`fuzz_targets/`) and the corpus replay that the test command runs
//! (`crates/gateway/tests/fuzz_corpus.rs`). Each function must return for any input: an error is
//! fine, a panic is a bug.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// A target: takes any input, returns or panics.
pub type Target = fn(&[u8]);

/// Every target by its corpus directory name (`fuzz/seeds/NAME`).
pub const ALL: [(&str, Target); 7] = [
    ("cursor", cursor),
    ("last_event_id", last_event_id),
    ("jaas", jaas),
    ("definition_json", definition_json),
    ("definition_yaml", definition_yaml),
    ("subscription_body", subscription_body),
    ("stores", stores),
];

/// `?cursor=` and message ids, both renderings: a cursor that parses renders back to itself, and
/// every position it names can be resumed.
pub fn cursor(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for encoded in [false, true] {
        let Ok(parsed) = kafka_edge_endpoint_kafka::Cursor::parse(text, encoded) else { continue };
        let again = kafka_edge_endpoint_kafka::Cursor::parse(&parsed.render(encoded), encoded);
        assert_eq!(again.as_ref(), Ok(&parsed), "a rendered cursor parses back to itself");
        for (topic, positions) in &parsed.positions {
            for partition in positions.keys() {
                let _ = parsed.resume_offset(topic, *partition);
            }
        }
    }
}

/// A `Last-Event-ID` header as it comes off the wire, read as the SSE entrypoint does.
pub fn last_event_id(data: &[u8]) {
    let Ok(value) = http::HeaderValue::from_bytes(data) else { return };
    let Ok(text) = value.to_str() else { return };
    cursor(text.as_bytes());
}

/// A `sasl.jaas.config` line, parsed and matched to its login module.
pub fn jaas(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    kafka_edge_endpoint_kafka::fuzzing::jaas(text);
}

pub fn definition_json(data: &[u8]) {
    definition(data, kafka_edge_definition::Format::Json);
}

pub fn definition_yaml(data: &[u8]) {
    definition(data, kafka_edge_definition::Format::Yaml);
}

/// An API definition file: loaded (parsed, defaulted, validated) as `--api` loads it.
fn definition(data: &[u8], format: kafka_edge_definition::Format) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = kafka_edge_definition::load_str(text, format, "fuzz");
}

/// The body of `POST /apis/{api}/subscriptions` on the admin API, checked as the admin API does.
pub fn subscription_body(data: &[u8]) {
    use kafka_edge_gateway::state::validate;
    let Ok(request) = validate::parse::<validate::CreateSubscription>(data) else { return };
    if let Some(id) = &request.id {
        let _ = validate::check_id("id", id);
    }
    let _ = validate::check_configuration("configuration", &request.configuration);
}

/// A store given inline: the first byte picks the type and the password, the rest is the store, as
/// PEM text or base64. Read as a trust store (`certificates`), and a PEM one also as a key store
/// (`certificateChain` and `key`; JKS and PKCS12 key stores are files, read by the same parsers).
pub fn stores(data: &[u8]) {
    use kafka_edge_definition::{KeyStore, StoreType, TrustStore};
    let Some((&choice, store)) = data.split_first() else { return };
    let store_type = match choice % 3 {
        0 => StoreType::Pem,
        1 => StoreType::Jks,
        _ => StoreType::Pkcs12,
    };
    // The test bed's trust store password, or none.
    let password = (choice & 0x80 != 0).then(|| "truststore-secret".to_string());
    let inline = match std::str::from_utf8(store) {
        Ok(text) if text.contains("-----BEGIN") => text.to_string(),
        _ => STANDARD.encode(store),
    };
    let trust =
        TrustStore { store_type, location: None, password: password.clone(), certificates: Some(inline.clone()) };
    let _ = kafka_edge_stores::trusted_certificates(&trust);
    if store_type == StoreType::Pem {
        let key = KeyStore {
            store_type,
            key_password: password,
            certificate_chain: Some(inline.clone()),
            key: Some(inline),
            ..KeyStore::default()
        };
        let _ = kafka_edge_stores::client_identity(&key);
    }
}
