//! TLS toward a callback URL from a subscription's `ssl` block: `trustAll`, `hostnameVerifier`,
//! a PEM trust store (added to the system roots), and a client identity from a PEM (certificate +
//! PKCS#8 key) or PKCS12 key store. JKS and PKCS12 trust stores are refused when the subscription
//! is created (state::validate), so they never reach this module.

use super::call::CallerError;
use crate::state::model::{Ssl, Store};
use base64::Engine;

/// Applies `ssl` to the client builder.
pub(super) fn apply(mut builder: reqwest::ClientBuilder, ssl: &Ssl) -> Result<reqwest::ClientBuilder, CallerError> {
    builder = builder.danger_accept_invalid_certs(ssl.trust_all).danger_accept_invalid_hostnames(!ssl.hostname_verifier);
    if let Some(store) = &ssl.trust_store {
        let pem = read(store.content.as_deref(), store.path.as_deref(), "ssl.trustStore")?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|_| CallerError::new("ssl.trustStore: not a PEM certificate bundle"))?;
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    }
    if let Some(store) = &ssl.key_store {
        builder = builder.identity(identity(store)?);
    }
    Ok(builder)
}

fn identity(store: &Store) -> Result<reqwest::Identity, CallerError> {
    match store.kind.as_str() {
        "PKCS12" => {
            let content = store.content.as_deref().map(|c| base64::engine::general_purpose::STANDARD.decode(c.trim()));
            let der = match content {
                Some(Ok(der)) => der,
                Some(Err(_)) => return Err(CallerError::new("ssl.keyStore.content: not base64")),
                None => read(None, store.path.as_deref(), "ssl.keyStore")?,
            };
            let password = store.password.as_ref().map(|p| p.expose()).unwrap_or_default();
            reqwest::Identity::from_pkcs12_der(&der, password).map_err(|_| CallerError::new("ssl.keyStore: cannot read the PKCS12 store (wrong password?)"))
        }
        _ => {
            let certificate = read(store.cert_content.as_deref(), store.cert_path.as_deref(), "ssl.keyStore certificate")?;
            let key = read(store.key_content.as_ref().map(|k| k.expose()), store.key_path.as_deref(), "ssl.keyStore key")?;
            reqwest::Identity::from_pkcs8_pem(&certificate, &key).map_err(|_| CallerError::new("ssl.keyStore: expected a PEM certificate and an unencrypted PKCS#8 key"))
        }
    }
}

/// Inline content wins over a path.
fn read(content: Option<&str>, path: Option<&str>, what: &str) -> Result<Vec<u8>, CallerError> {
    match (content, path) {
        (Some(content), _) => Ok(content.as_bytes().to_vec()),
        (None, Some(path)) => std::fs::read(path).map_err(|error| CallerError::new(format!("{what}: cannot read {path}: {error}"))),
        (None, None) => Err(CallerError::new(format!("{what}: neither content nor path"))),
    }
}
