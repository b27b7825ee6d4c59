//! Trust and key stores turned into PEM text, in memory, for every TLS client of the gateway: the
//! Kafka endpoint (`security.ssl.trustStore` / `keyStore` → librdkafka's `ssl.ca.pem`,
//! `ssl.certificate.pem`, `ssl.key.pem`: librdkafka reads neither JKS nor PKCS#12 truststores)
//! and webhook callbacks (a subscription's `ssl`). A decrypted key is never written to disk.
//! Problems name the field at fault, below the `ssl` block, and never carry key material or
//! passwords.

mod jks;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use kafka_edge_definition::{KeyStore, Problem, StoreType, TrustStore};
use openssl::pkcs12::Pkcs12;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;

/// A store problem: its path is the field below the `ssl` block (`trustStore.password`).
fn error(field: &'static str, reason: impl Into<String>) -> Problem {
    Problem::new(field, reason)
}

/// The client's certificate chain and its (unencrypted, PKCS#8) private key, as PEM.
pub struct ClientIdentity {
    pub certificate_chain_pem: String,
    pub private_key_pem: String,
}

/// The CA certificates to trust, as PEM; `None` for type NONE (the system's CAs apply).
pub fn trusted_certificates(store: &TrustStore) -> Result<Option<String>, Problem> {
    if store.store_type == StoreType::None {
        return Ok(None);
    }
    let bytes = store_bytes(
        store.location.as_deref(),
        store.certificates.as_deref(),
        "trustStore.location",
        "trustStore.certificates",
    )?;
    let certificates = match detect(&bytes, store.store_type) {
        Detected::Pem => {
            X509::stack_from_pem(&bytes).map_err(|_| error("trustStore.certificates", "no valid PEM certificate"))?
        }
        Detected::Jks => {
            let contents = jks::parse(&bytes, store.password.as_deref()).map_err(|e| jks_error(e, "trustStore"))?;
            let mut certificates = contents.trusted_certificates;
            certificates.extend(contents.private_keys.into_iter().flat_map(|key| key.chain));
            certificates
                .iter()
                .map(|der| X509::from_der(der))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| error("trustStore.location", "the JKS store holds an unreadable certificate"))?
        }
        Detected::Pkcs12 => {
            let parsed = parse_pkcs12(&bytes, store.password.as_deref(), "trustStore.password")?;
            parsed.cert.into_iter().chain(parsed.ca.into_iter().flatten()).collect()
        }
    };
    if certificates.is_empty() {
        return Err(error("trustStore", "the store holds no certificate"));
    }
    Ok(Some(to_pem(&certificates)?))
}

/// The client identity for mutual TLS; `None` for type NONE.
pub fn client_identity(store: &KeyStore) -> Result<Option<ClientIdentity>, Problem> {
    if store.store_type == StoreType::None {
        return Ok(None);
    }
    let key_password = store.key_password.as_deref().or(store.password.as_deref());
    let (key, chain) = match store.store_type {
        StoreType::Pem if store.location.is_none() => {
            let key = store
                .key
                .as_deref()
                .ok_or_else(|| error("keyStore.key", "required for a PEM keystore without location"))?;
            let chain = store
                .certificate_chain
                .as_deref()
                .ok_or_else(|| error("keyStore.certificateChain", "required for a PEM keystore without location"))?;
            let chain = X509::stack_from_pem(chain.as_bytes())
                .map_err(|_| error("keyStore.certificateChain", "no valid PEM certificate"))?;
            (pem_private_key(key.as_bytes(), key_password, "keyStore.key")?, chain)
        }
        _ => {
            let bytes =
                store_bytes(store.location.as_deref(), store.key.as_deref(), "keyStore.location", "keyStore.key")?;
            match detect(&bytes, store.store_type) {
                Detected::Pem => {
                    // The chain follows the key in the file, or comes in `certificateChain`.
                    let mut chain = X509::stack_from_pem(&bytes).unwrap_or_default();
                    if chain.is_empty() {
                        if let Some(separate) = store.certificate_chain.as_deref() {
                            chain = X509::stack_from_pem(separate.as_bytes())
                                .map_err(|_| error("keyStore.certificateChain", "no valid PEM certificate"))?;
                        }
                    }
                    (pem_private_key(&bytes, key_password, "keyStore.location")?, chain)
                }
                Detected::Jks => {
                    let contents =
                        jks::parse(&bytes, store.password.as_deref()).map_err(|e| jks_error(e, "keyStore"))?;
                    let entry = contents
                        .private_keys
                        .into_iter()
                        .next()
                        .ok_or_else(|| error("keyStore", "the JKS store holds no private key"))?;
                    let der = entry.recover(key_password.unwrap_or_default()).map_err(|e| jks_error(e, "keyStore"))?;
                    let key = PKey::private_key_from_pkcs8(&der)
                        .map_err(|_| error("keyStore", "the JKS private key is unreadable"))?;
                    let chain = entry.chain.iter().map(|der| X509::from_der(der)).collect::<Result<Vec<_>, _>>();
                    (key, chain.map_err(|_| error("keyStore", "the JKS store holds an unreadable certificate"))?)
                }
                Detected::Pkcs12 => {
                    let parsed = parse_pkcs12(&bytes, store.password.as_deref(), "keyStore.password")?;
                    let key = parsed.pkey.ok_or_else(|| error("keyStore", "the PKCS12 store holds no private key"))?;
                    let chain: Vec<X509> = parsed.cert.into_iter().chain(parsed.ca.into_iter().flatten()).collect();
                    (key, chain)
                }
            }
        }
    };
    let leaf = chain.first().ok_or_else(|| error("keyStore", "no certificate for the private key"))?;
    let matches = leaf.public_key().map(|public| key.public_eq(&public)).unwrap_or(false);
    if !matches {
        return Err(error("keyStore", "the certificate does not belong to the private key"));
    }
    let private_key_pem =
        key.private_key_to_pem_pkcs8().map_err(|_| error("keyStore", "the private key cannot be encoded"))?;
    Ok(Some(ClientIdentity {
        certificate_chain_pem: to_pem(&chain)?,
        private_key_pem: String::from_utf8_lossy(&private_key_pem).into_owned(),
    }))
}

enum Detected {
    Pem,
    Jks,
    Pkcs12,
}

/// What the bytes really are: keytool has written PKCS#12 by default since Java 9, so a "JKS"
/// file is often PKCS#12, and PEM text is recognised whatever the declared type.
fn detect(bytes: &[u8], declared: StoreType) -> Detected {
    if bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        Detected::Pem
    } else if jks::is_jks(bytes) || (declared == StoreType::Jks && bytes.first().is_none_or(|b| *b != 0x30)) {
        // Not DER (PKCS#12 starts with a SEQUENCE): let the JKS parser say what is wrong.
        Detected::Jks
    } else {
        Detected::Pkcs12
    }
}

/// The store's bytes: the file at `location`, or the inline value (PEM text, or base64 of a
/// binary store).
fn store_bytes(
    location: Option<&str>,
    inline: Option<&str>,
    location_field: &'static str,
    inline_field: &'static str,
) -> Result<Vec<u8>, Problem> {
    match (location.filter(|l| !l.trim().is_empty()), inline.filter(|i| !i.trim().is_empty())) {
        (Some(path), _) => std::fs::read(path.trim())
            .map_err(|e| error(location_field, format!("cannot read `{}`: {}", path.trim(), e.kind()))),
        (None, Some(text)) if text.contains("-----BEGIN ") => Ok(text.as_bytes().to_vec()),
        (None, Some(text)) => {
            let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
            STANDARD.decode(compact).map_err(|_| error(inline_field, "neither PEM text nor base64 of a store"))
        }
        (None, None) => Err(error(location_field, format!("a location or `{inline_field}` is required"))),
    }
}

fn pem_private_key(pem: &[u8], password: Option<&str>, field: &'static str) -> Result<PKey<Private>, Problem> {
    let encrypted =
        pem.windows(29).any(|w| w == b"-----BEGIN ENCRYPTED PRIVATE ") || pem.windows(11).any(|w| w == b"Proc-Type: ");
    if encrypted {
        let password = password
            .ok_or_else(|| error("keyStore.keyPassword", "the private key is encrypted: its password is required"))?;
        PKey::private_key_from_pem_passphrase(pem, password.as_bytes())
            .map_err(|_| error("keyStore.keyPassword", "wrong key password, or an unreadable key"))
    } else {
        PKey::private_key_from_pem(pem).map_err(|_| error(field, "no valid PEM private key"))
    }
}

fn parse_pkcs12(
    bytes: &[u8],
    password: Option<&str>,
    field: &'static str,
) -> Result<openssl::pkcs12::ParsedPkcs12_2, Problem> {
    let store = Pkcs12::from_der(bytes)
        .map_err(|_| error(field.trim_end_matches(".password"), "not a PKCS12, JKS or PEM store"))?;
    store
        .parse2(password.unwrap_or_default())
        .map_err(|_| error(field, "wrong password, or a PKCS12 store this OpenSSL cannot read"))
}

fn jks_error(error_kind: jks::JksError, store: &'static str) -> Problem {
    let field = match (store, &error_kind) {
        ("trustStore", jks::JksError::StorePassword) => "trustStore.password",
        ("keyStore", jks::JksError::StorePassword) => "keyStore.password",
        ("keyStore", jks::JksError::KeyPassword) => "keyStore.keyPassword",
        ("trustStore", _) => "trustStore.location",
        _ => "keyStore.location",
    };
    error(field, error_kind.to_string())
}

fn to_pem(certificates: &[X509]) -> Result<String, Problem> {
    let mut pem = String::new();
    for certificate in certificates {
        let encoded = certificate.to_pem().map_err(|_| error("trustStore", "a certificate cannot be encoded"))?;
        pem.push_str(&String::from_utf8_lossy(&encoded));
    }
    Ok(pem)
}
