//! TLS toward a callback URL from a subscription's `ssl` block: `trustAll`, `hostnameVerifier`,
//! a trust store (its CAs are added to the system roots) and a client identity. Stores are PEM,
//! PKCS12 or JKS, read by the same store reader as the Kafka endpoint's (`kafka-edge-stores`), so
//! both TLS clients of the gateway accept the same files; inline `content` is PEM text or base64
//! of a binary store.

use super::call::CallerError;
use kafka_edge_definition::subscription::{Ssl, Store};
use kafka_edge_definition::{KeyStore, Problem, StoreType, TrustStore};
use kafka_edge_stores::{client_identity, trusted_certificates};

/// What the stores of `ssl` hold, as PEM.
pub struct Materials {
    trusted_pem: Option<String>,
    /// Certificate chain and PKCS#8 key.
    identity_pem: Option<(String, String)>,
}

/// Reads the stores; used when a subscription is created (to answer 400) and when delivery starts.
/// A store that cannot be used is a problem at its field below the configuration (`ssl.…`),
/// never with key material or passwords.
pub fn materials(ssl: &Ssl) -> Result<Materials, Problem> {
    read_stores(ssl).map_err(|problem| problem.under("ssl"))
}

fn read_stores(ssl: &Ssl) -> Result<Materials, Problem> {
    let trusted_pem = match &ssl.trust_store {
        Some(store) => trusted_certificates(&trust_store(store)?).map_err(|e| problem(e, store))?,
        None => None,
    };
    let identity_pem = match &ssl.key_store {
        Some(store) => client_identity(&key_store(store)?)
            .map_err(|e| problem(e, store))?
            .map(|identity| (identity.certificate_chain_pem, identity.private_key_pem)),
        None => None,
    };
    Ok(Materials { trusted_pem, identity_pem })
}

/// Applies `ssl` to the client builder.
pub(super) fn apply(builder: reqwest::ClientBuilder, ssl: &Ssl) -> Result<reqwest::ClientBuilder, CallerError> {
    let mut builder =
        builder.danger_accept_invalid_certs(ssl.trust_all).danger_accept_invalid_hostnames(!ssl.hostname_verifier);
    let materials = materials(ssl).map_err(|problem| CallerError::new(problem.to_string()))?;
    if let Some(pem) = materials.trusted_pem {
        let certificates = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
            .map_err(|_| CallerError::new("ssl.trustStore: a certificate cannot be used"))?;
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    }
    if let Some((chain, key)) = materials.identity_pem {
        let identity = reqwest::Identity::from_pkcs8_pem(chain.as_bytes(), key.as_bytes())
            .map_err(|_| CallerError::new("ssl.keyStore: the identity cannot be used"))?;
        builder = builder.identity(identity);
    }
    Ok(builder)
}

fn store_type(store: &Store, field: &str) -> Result<StoreType, Problem> {
    match store.kind.to_ascii_uppercase().as_str() {
        "" | "PEM" => Ok(StoreType::Pem),
        "JKS" => Ok(StoreType::Jks),
        "PKCS12" => Ok(StoreType::Pkcs12),
        other => Err(Problem::new(
            format!("{field}.type"),
            format!("invalid value `{other}`, expected one of ``, `PEM`, `PKCS12`, `JKS`"),
        )),
    }
}

/// Inline content wins over a path.
fn trust_store(store: &Store) -> Result<TrustStore, Problem> {
    Ok(TrustStore {
        store_type: store_type(store, "trustStore")?,
        location: store.path.clone().filter(|_| store.content.is_none()),
        password: store.password.as_ref().map(|p| p.expose().to_string()),
        certificates: store.content.as_ref().map(|c| c.expose().to_string()),
    })
}

/// A PEM identity comes as certificate + key (content or path each); a binary one as one store.
fn key_store(store: &Store) -> Result<KeyStore, Problem> {
    let store_type = store_type(store, "keyStore")?;
    let password = store.password.as_ref().map(|p| p.expose().to_string());
    let key_password = store.key_password.as_ref().map(|p| p.expose().to_string());
    if store_type == StoreType::Pem {
        let certificate_chain =
            Some(pem_text(store.cert_content.as_deref(), store.cert_path.as_deref(), "keyStore.certPath")?);
        let key = Some(pem_text(
            store.key_content.as_ref().map(|k| k.expose()),
            store.key_path.as_deref(),
            "keyStore.keyPath",
        )?);
        return Ok(KeyStore { store_type, location: None, password, key, key_password, certificate_chain });
    }
    Ok(KeyStore {
        store_type,
        location: store.path.clone().filter(|_| store.content.is_none()),
        password,
        key: store.content.as_ref().map(|c| c.expose().to_string()),
        key_password,
        certificate_chain: None,
    })
}

fn pem_text(content: Option<&str>, path: Option<&str>, path_field: &str) -> Result<String, Problem> {
    match (content, path) {
        (Some(content), _) => Ok(content.to_string()),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map_err(|e| Problem::new(path_field, format!("cannot read `{path}`: {}", e.kind()))),
        (None, None) => Err(Problem::new(path_field.replace("Path", "Content"), "content or path required")),
    }
}

/// Renames the Kafka store fields to the subscription's.
fn problem(error: Problem, store: &Store) -> Problem {
    let field = match error.path.as_str() {
        "trustStore.location" => "trustStore.path",
        "trustStore.certificates" => "trustStore.content",
        "keyStore.location" => "keyStore.path",
        "keyStore.key" if store_type(store, "keyStore") == Ok(StoreType::Pem) => "keyStore.keyContent",
        "keyStore.key" => "keyStore.content",
        "keyStore.certificateChain" => "keyStore.certContent",
        other => other,
    };
    Problem::new(field, error.message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ssl(json: serde_json::Value) -> Ssl {
        serde_json::from_value(json).expect("ssl")
    }

    #[test]
    fn missing_files_and_bad_content_name_the_subscription_field() {
        let missing = read_stores(&ssl(
            serde_json::json!({"trustStore": {"type": "JKS", "path": "/nonexistent.jks", "password": "p"}}),
        ))
        .err()
        .expect("missing file");
        assert_eq!(missing.path, "trustStore.path");
        let garbage = read_stores(&ssl(serde_json::json!({"trustStore": {"type": "PKCS12", "content": "%%%"}})))
            .err()
            .expect("not base64");
        assert_eq!(garbage.path, "trustStore.content");
        let pem = read_stores(&ssl(
            serde_json::json!({"keyStore": {"type": "PEM", "certContent": "nope", "keyContent": "nope"}}),
        ))
        .err()
        .expect("not PEM");
        assert!(pem.path.starts_with("keyStore."), "{pem}");
        let kind =
            read_stores(&ssl(serde_json::json!({"trustStore": {"type": "P7B", "content": "x"}}))).err().expect("type");
        assert_eq!(kind.path, "trustStore.type");
    }
}
