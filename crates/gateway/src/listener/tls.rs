//! TLS for a listener (docs/tls.md): a PEM certificate chain and key, optionally the CA that
//! client certificates must chain to (required or optional). The files are read at start (a
//! mistake fails the start, naming the file) and read again when they change, so a renewed
//! certificate is served without a restart; a renewal that does not load is logged and the
//! previous certificate stays in use.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// How often the files are checked for a change.
const RELOAD_INTERVAL: Duration = Duration::from_secs(5);

/// Whether clients must present a certificate (with `--tls-client-ca`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ClientAuth {
    /// Connections without a certificate are accepted; those with one must chain to the CA.
    Optional,
    #[default]
    Required,
}

/// Where the listener's TLS material is.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub certificate: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
    pub client_auth: ClientAuth,
}

/// Why the TLS files cannot be used; names the file and never quotes a key.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{file}: {reason}")]
    File { file: String, reason: String },
    #[error("the certificate of {certificate} does not fit the key of {key}, or is not usable: {reason}")]
    Pair { certificate: String, key: String, reason: String },
}

/// A listener's TLS configuration, swapped when its files change.
pub struct Tls {
    files: TlsFiles,
    config: RwLock<(Arc<ServerConfig>, Vec<Option<SystemTime>>)>,
}

fn file_error(file: &Path, reason: impl std::fmt::Display) -> TlsError {
    TlsError::File { file: file.display().to_string(), reason: reason.to_string() }
}

impl Tls {
    pub fn load(files: TlsFiles) -> Result<Arc<Self>, TlsError> {
        let config = build(&files)?;
        let stamps = stamps(&files);
        Ok(Arc::new(Self { files, config: RwLock::new((Arc::new(config), stamps)) }))
    }

    /// Whether clients are asked for a certificate (`--tls-client-ca`).
    pub fn asks_client_certificates(&self) -> bool {
        self.files.client_ca.is_some()
    }

    pub fn acceptor(&self) -> TlsAcceptor {
        let guard = self.config.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        TlsAcceptor::from(guard.0.clone())
    }

    /// Reads the files again when their modification times change, until `shutdown`.
    pub async fn follow(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(RELOAD_INTERVAL) => {}
            }
            self.reload_if_changed();
        }
    }

    /// Whether a new configuration was installed.
    pub fn reload_if_changed(&self) -> bool {
        let current = stamps(&self.files);
        let changed = {
            let guard = self.config.read().unwrap_or_else(|poisoned| poisoned.into_inner());
            guard.1 != current
        };
        if !changed {
            return false;
        }
        let mut guard = self.config.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        match build(&self.files) {
            Ok(config) => {
                *guard = (Arc::new(config), current);
                tracing::info!(certificate = %self.files.certificate.display(), "TLS certificate reloaded.");
                true
            }
            Err(error) => {
                // Not again until the files change once more.
                guard.1 = current;
                tracing::error!(%error, "TLS files changed but cannot be used; serving the previous certificate.");
                false
            }
        }
    }
}

fn stamps(files: &TlsFiles) -> Vec<Option<SystemTime>> {
    let modified = |path: &Path| std::fs::metadata(path).and_then(|metadata| metadata.modified()).ok();
    let mut stamps = vec![modified(&files.certificate), modified(&files.key)];
    stamps.extend(files.client_ca.as_deref().map(modified));
    stamps
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|error| file_error(path, error))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| file_error(path, format!("not a PEM certificate file: {error}")))?;
    if certificates.is_empty() {
        return Err(file_error(path, "holds no PEM certificate (-----BEGIN CERTIFICATE-----)"));
    }
    Ok(certificates)
}

fn build(files: &TlsFiles) -> Result<ServerConfig, TlsError> {
    let chain = certificates(&files.certificate)?;
    // The key's own parse errors may quote its content: say only what kind of file was expected.
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|_| file_error(&files.key, "holds no PEM private key (PKCS#8, PKCS#1 or SEC1)"))?;
    // Deprecated only because ring has no post-quantum key exchange; aws-lc-rs, which has, would be
    // a second C cryptography build beside the OpenSSL librdkafka links (docs/tls.md).
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|error| file_error(&files.certificate, error))?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for certificate in certificates(ca)? {
                roots
                    .add(certificate)
                    .map_err(|error| file_error(ca, format!("not a usable CA certificate: {error}")))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = match files.client_auth {
                ClientAuth::Optional => verifier.allow_unauthenticated(),
                ClientAuth::Required => verifier,
            };
            builder.with_client_cert_verifier(verifier.build().map_err(|error| file_error(ca, error))?)
        }
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|error| TlsError::Pair {
        certificate: files.certificate.display().to_string(),
        key: files.key.display().to_string(),
        reason: error.to_string(),
    })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}
