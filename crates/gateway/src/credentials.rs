//! Credentials issued per API and plan (docs/plans.md, docs/admin-api.md): API keys of `api-key`
//! plans (through the admin API or a `--api-keys` file) and client certificates of `mtls` plans
//! (through the admin API). Both are kept in the gateway state by their SHA-256, so that every
//! gateway of a fleet sharing the state admits and revokes the same ones.

use crate::api::LoadedApi;
use crate::apis::ApiTable;
use crate::plan::{check_key, generate_key, hash_key};
use crate::state::record::{api_key_key, certificate_key, sha256_hex};
use crate::state::validate::{self, check_id};
use crate::state::{ApiKey, ClientCertificate, Record, StateError, StateStore};
use kafka_edge_definition::Problem;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// How keys and certificates are named in admin API paths by their SHA-256.
pub const HASH_PREFIX: &str = "sha256:";

/// The body of `POST /apis/{api}/keys`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// Generated when absent.
    #[serde(default)]
    pub key: Option<String>,
    pub plan: String,
    /// The client identifier of the key's requests; generated (a UUID) when absent.
    #[serde(default)]
    pub subscription: Option<String>,
}

/// One entry of a `--api-keys` file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StaticKey {
    api: String,
    key: String,
    plan: String,
    #[serde(default)]
    subscription: Option<String>,
}

/// What the admin API answers about a key; `key` only when the caller gave or was given it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyView {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub plan: String,
    pub subscription: String,
    /// `sha256:<hex>`: names the key in admin API paths without the key.
    pub key_hash: String,
}

impl KeyView {
    fn of(record: &ApiKey, key: Option<String>) -> Self {
        Self {
            key,
            plan: record.plan_id.clone(),
            subscription: record.subscription.clone(),
            key_hash: format!("{HASH_PREFIX}{}", record.key_hash),
        }
    }
}

/// The body of `POST /apis/{api}/certificates`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterCertificate {
    /// The client's certificate, PEM.
    pub certificate: String,
    pub plan: String,
    /// The client identifier of the certificate's requests; generated (a UUID) when absent.
    #[serde(default)]
    pub subscription: Option<String>,
}

/// What the admin API answers about a client certificate.
#[derive(Debug, Serialize)]
pub struct CertificateView {
    pub plan: String,
    pub subscription: String,
    /// `sha256:<hex>` of the certificate's DER.
    pub fingerprint: String,
}

impl CertificateView {
    fn of(record: &ClientCertificate) -> Self {
        Self {
            plan: record.plan_id.clone(),
            subscription: record.subscription.clone(),
            fingerprint: format!("{HASH_PREFIX}{}", record.fingerprint),
        }
    }
}

/// Why a credential operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("API `{0}` not found")]
    UnknownApi(String),
    /// A request field is wrong: its path and why.
    #[error("{0}")]
    Invalid(Problem),
    #[error("{0}")]
    Conflict(Problem),
    #[error("{0}")]
    State(#[from] StateError),
}

/// The keys of the loaded APIs.
pub struct Credentials {
    apis: Arc<ApiTable>,
    store: Arc<dyn StateStore>,
}

impl Credentials {
    pub fn new(apis: Arc<ApiTable>, store: Arc<dyn StateStore>) -> Self {
        Self { apis, store }
    }

    fn api(&self, api: &str) -> Result<Arc<LoadedApi>, CredentialError> {
        self.apis.get(api).ok_or_else(|| CredentialError::UnknownApi(api.into()))
    }

    /// Issues a key; the answer holds the key, which is never shown again.
    pub async fn create(&self, api: &str, request: CreateKey) -> Result<KeyView, CredentialError> {
        let loaded = self.api(api)?;
        if !loaded.plans.takes_api_keys(&request.plan) {
            return Err(CredentialError::Invalid(Problem::new(
                "plan",
                format!("`{}` is not an api-key plan of API `{api}`", request.plan),
            )));
        }
        let key = match request.key {
            Some(key) => {
                check_key(&key).map_err(|error| CredentialError::Invalid(Problem::new("key", error.to_string())))?;
                key
            }
            None => {
                generate_key().map_err(|error| StateError::Kafka(format!("no random source for a key: {error}")))?
            }
        };
        let subscription = request.subscription.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        check_id("subscription", &subscription).map_err(CredentialError::Invalid)?;
        let record = ApiKey { api_id: api.into(), plan_id: request.plan, subscription, key_hash: hash_key(&key) };
        if self.store.api_key(api, &record.key_hash).is_some() {
            return Err(CredentialError::Conflict(Problem::new("key", "this key is already issued for the API")));
        }
        self.check_subscription_is_this_apis(api, &record.subscription)?;
        self.store.put_record(Record::ApiKey(record.clone())).await?;
        Ok(KeyView::of(&record, Some(key)))
    }

    /// A subscription id is a consumer group: it must not be shared with another API's credentials.
    fn check_subscription_is_this_apis(&self, api: &str, subscription: &str) -> Result<(), CredentialError> {
        let elsewhere = self.store.records().into_iter().any(|other| match other {
            Record::ApiKey(other) => other.subscription == subscription && other.api_id != api,
            Record::ClientCertificate(other) => other.subscription == subscription && other.api_id != api,
            _ => false,
        });
        if elsewhere {
            return Err(CredentialError::Conflict(Problem::new(
                "subscription",
                format!("`{subscription}` is the subscription of another API's credential"),
            )));
        }
        Ok(())
    }

    /// Registers a client certificate for an `mtls` plan of `api`.
    pub async fn register_certificate(
        &self,
        api: &str,
        request: RegisterCertificate,
    ) -> Result<CertificateView, CredentialError> {
        let loaded = self.api(api)?;
        if !loaded.plans.takes_certificates(&request.plan) {
            return Err(CredentialError::Invalid(Problem::new(
                "plan",
                format!("`{}` is not an mtls plan of API `{api}`", request.plan),
            )));
        }
        let der = CertificateDer::from_pem_slice(request.certificate.as_bytes()).map_err(|_| {
            CredentialError::Invalid(Problem::new("certificate", "not a PEM certificate (-----BEGIN CERTIFICATE-----)"))
        })?;
        let subscription = request.subscription.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        check_id("subscription", &subscription).map_err(CredentialError::Invalid)?;
        let record = ClientCertificate {
            api_id: api.into(),
            plan_id: request.plan,
            subscription,
            fingerprint: sha256_hex(der.as_ref()),
        };
        if self.store.client_certificate(api, &record.fingerprint).is_some() {
            return Err(CredentialError::Conflict(Problem::new("certificate", "already registered for the API")));
        }
        self.check_subscription_is_this_apis(api, &record.subscription)?;
        self.store.put_record(Record::ClientCertificate(record.clone())).await?;
        Ok(CertificateView::of(&record))
    }

    pub fn certificates(&self, api: &str) -> Result<Vec<CertificateView>, CredentialError> {
        self.api(api)?;
        Ok(self
            .store
            .records()
            .iter()
            .filter_map(|record| match record {
                Record::ClientCertificate(certificate) if certificate.api_id == api => {
                    Some(CertificateView::of(certificate))
                }
                _ => None,
            })
            .collect())
    }

    /// The certificate named `sha256:<hex>` (or the bare hex).
    pub fn certificate(&self, api: &str, fingerprint: &str) -> Result<Option<CertificateView>, CredentialError> {
        self.api(api)?;
        let hex = fingerprint.strip_prefix(HASH_PREFIX).unwrap_or(fingerprint).to_ascii_lowercase();
        Ok(self.store.client_certificate(api, &hex).as_ref().map(CertificateView::of))
    }

    /// Unregisters a certificate: refused from then on, its open streams end.
    pub async fn unregister_certificate(&self, api: &str, fingerprint: &str) -> Result<bool, CredentialError> {
        let Some(found) = self.certificate(api, fingerprint)? else { return Ok(false) };
        let hex = found.fingerprint.trim_start_matches(HASH_PREFIX);
        Ok(self.store.delete_record(&certificate_key(api, hex)).await?)
    }

    pub fn list(&self, api: &str) -> Result<Vec<KeyView>, CredentialError> {
        self.api(api)?;
        Ok(self
            .store
            .records()
            .iter()
            .filter_map(|record| match record {
                Record::ApiKey(key) if key.api_id == api => Some(KeyView::of(key, None)),
                _ => None,
            })
            .collect())
    }

    /// The key named by the key itself or by `sha256:<hex>`.
    pub fn find(&self, api: &str, named: &str) -> Result<Option<KeyView>, CredentialError> {
        self.api(api)?;
        let (hash, key) = match named.strip_prefix(HASH_PREFIX) {
            Some(hash) => (hash.to_ascii_lowercase(), None),
            None => (hash_key(named), Some(named.to_owned())),
        };
        Ok(self.store.api_key(api, &hash).map(|record| KeyView::of(&record, key)))
    }

    /// Revokes a key; false when there was none. Requests with it are refused from now on, and
    /// its open streams end (on every gateway following the state).
    pub async fn revoke(&self, api: &str, named: &str) -> Result<bool, CredentialError> {
        let Some(found) = self.find(api, named)? else { return Ok(false) };
        let hash = found.key_hash.trim_start_matches(HASH_PREFIX);
        Ok(self.store.delete_record(&api_key_key(api, hash)).await?)
    }

    /// Puts the keys of a `--api-keys` file (a JSON list of `{"api","key","plan","subscription"?}`)
    /// into the state; a key already there keeps its record unless its plan or subscription
    /// changed. Returns how many keys the file holds.
    pub async fn load_static(&self, bytes: &[u8]) -> Result<usize, String> {
        let list: Vec<StaticKey> = validate::parse(bytes).map_err(|e| e.to_string())?;
        let mut records = Vec::new();
        for (index, entry) in list.into_iter().enumerate() {
            let at = |problem: Problem| problem.under(&format!("[{index}]")).to_string();
            let loaded = self.api(&entry.api).map_err(|e| format!("[{index}].api: {e}"))?;
            if !loaded.plans.takes_api_keys(&entry.plan) {
                return Err(format!("[{index}].plan: `{}` is not an api-key plan of API `{}`", entry.plan, entry.api));
            }
            check_key(&entry.key).map_err(|error| at(Problem::new("key", error.to_string())))?;
            // A stable default, so that restarts keep the key's consumer group; not a part of the
            // key's stored hash, which group listings would show.
            let subscription = entry
                .subscription
                .unwrap_or_else(|| hash_key(&format!("subscription\0{}", entry.key))[..32].to_owned());
            check_id("subscription", &subscription).map_err(at)?;
            records.push(ApiKey {
                api_id: entry.api,
                plan_id: entry.plan,
                subscription,
                key_hash: hash_key(&entry.key),
            });
        }
        let count = records.len();
        for record in records {
            if self.store.api_key(&record.api_id, &record.key_hash).as_ref() != Some(&record) {
                self.store.put_record(Record::ApiKey(record)).await.map_err(|e| e.to_string())?;
            }
        }
        Ok(count)
    }
}
