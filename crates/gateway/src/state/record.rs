//! The records of the gateway state and how they are spelled in the state file and topic.
//!
//! A webhook subscription is written as it always was (no `kind`: version 1 of the oldest kind),
//! so that gateways of earlier versions keep reading a fleet's subscriptions during an upgrade.
//! Every newer kind carries `"kind"` and `"version"`. A gateway keeps a record whose kind or
//! version it does not know as it is ([`Record::Unknown`]): it serves nothing from it, a file
//! store writes it back, and an upgraded gateway of the fleet reads it.

use super::model::Subscription;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The version of the kinds this gateway writes.
const VERSION: u64 = 1;

/// One entry of the gateway state.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Subscription(Box<Subscription>),
    ApiKey(ApiKey),
    ClientCertificate(ClientCertificate),
    /// A kind or version this gateway does not know, kept as read under its key.
    Unknown {
        key: String,
        value: Value,
    },
}

/// An API key of an `api-key` plan. Only the key's SHA-256 is stored: the key itself is shown once,
/// when it is created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiKey {
    pub api_id: String,
    pub plan_id: String,
    /// The client identifier of requests made with the key (so their consumer group).
    pub subscription: String,
    /// Lowercase hex SHA-256 of the key.
    pub key_hash: String,
}

/// A client certificate registered for an `mtls` plan, by SHA-256 fingerprint of its DER.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientCertificate {
    pub api_id: String,
    pub plan_id: String,
    pub subscription: String,
    /// Lowercase hex SHA-256 of the certificate's DER encoding.
    pub fingerprint: String,
}

const API_KEY: &str = "api-key";
const CLIENT_CERTIFICATE: &str = "client-certificate";

/// Lowercase hex SHA-256 of `bytes`: how keys and certificates are named in the state.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The state key of the API key whose SHA-256 is `key_hash`.
pub fn api_key_key(api: &str, key_hash: &str) -> String {
    format!("apikey/{api}/{key_hash}")
}

/// The state key of a client certificate of `api`.
pub fn certificate_key(api: &str, fingerprint: &str) -> String {
    format!("certificate/{api}/{fingerprint}")
}

/// Why a value is not a record this gateway can use.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(String);

impl Record {
    /// Where the record lives in the state (the topic's record key).
    pub fn key(&self) -> String {
        match self {
            Record::Subscription(subscription) => subscription.key(),
            Record::ApiKey(key) => api_key_key(&key.api_id, &key.key_hash),
            Record::ClientCertificate(certificate) => certificate_key(&certificate.api_id, &certificate.fingerprint),
            Record::Unknown { key, .. } => key.clone(),
        }
    }

    pub fn to_json(&self) -> Value {
        let tagged = |kind: &str, body: Value| {
            let mut object = serde_json::Map::new();
            object.insert("kind".into(), kind.into());
            object.insert("version".into(), VERSION.into());
            if let Value::Object(fields) = body {
                object.extend(fields);
            }
            Value::Object(object)
        };
        // Serializing these plain structs cannot fail.
        let encode = |value: Result<Value, serde_json::Error>| value.unwrap_or(Value::Null);
        match self {
            Record::Subscription(subscription) => encode(serde_json::to_value(subscription)),
            Record::ApiKey(key) => tagged(API_KEY, encode(serde_json::to_value(key))),
            Record::ClientCertificate(certificate) => {
                tagged(CLIENT_CERTIFICATE, encode(serde_json::to_value(certificate)))
            }
            Record::Unknown { value, .. } => value.clone(),
        }
    }

    /// Reads a record stored under `key` (when the store has keys; the file store passes `None`).
    /// A kind or version this gateway does not know is [`Record::Unknown`]; a known kind that does
    /// not read, or that is stored under another key, is an error. Error texts never quote values
    /// (they may hold secrets).
    pub fn from_json(key: Option<&str>, value: Value) -> Result<Record, DecodeError> {
        let kind = value.get("kind").and_then(Value::as_str).map(str::to_owned);
        let version = value.get("version").and_then(Value::as_u64);
        let record = match (kind.as_deref(), version) {
            (None, _) => Record::Subscription(Box::new(decode(value, "subscription")?)),
            (Some(API_KEY), Some(v)) if v <= VERSION => Record::ApiKey(decode(untagged(value), API_KEY)?),
            (Some(CLIENT_CERTIFICATE), Some(v)) if v <= VERSION => {
                Record::ClientCertificate(decode(untagged(value), CLIENT_CERTIFICATE)?)
            }
            (Some(kind), version) => {
                let key = match key {
                    Some(key) => key.to_owned(),
                    None => {
                        format!("unknown/{kind}/{}/{}", version.unwrap_or(0), sha256_hex(value.to_string().as_bytes()))
                    }
                };
                return Ok(Record::Unknown { key, value });
            }
        };
        match key {
            Some(key) if key != record.key() => {
                Err(DecodeError(format!("a record stored under another key than its own ({key})")))
            }
            _ => Ok(record),
        }
    }

    pub fn as_subscription(&self) -> Option<&Subscription> {
        match self {
            Record::Subscription(subscription) => Some(subscription),
            _ => None,
        }
    }
}

fn untagged(mut value: Value) -> Value {
    if let Value::Object(fields) = &mut value {
        fields.remove("kind");
        fields.remove("version");
    }
    value
}

fn decode<T: serde::de::DeserializeOwned>(value: Value, kind: &str) -> Result<T, DecodeError> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        // serde's message names the field or the expected type, never the value read.
        let reason = match error.into_inner().to_string() {
            message if message.starts_with("invalid type") || message.starts_with("invalid value") => {
                "a value of the wrong type".to_string()
            }
            message => message,
        };
        DecodeError(format!("not a valid {kind} record at `{path}`: {reason}"))
    })
}

impl From<Subscription> for Record {
    fn from(subscription: Subscription) -> Self {
        Record::Subscription(Box::new(subscription))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_api_key_round_trips_with_its_kind_and_version() {
        let key = ApiKey {
            api_id: "orders".into(),
            plan_id: "keys".into(),
            subscription: "sub-1".into(),
            key_hash: sha256_hex(b"secret"),
        };
        let encoded = Record::ApiKey(key.clone()).to_json();
        assert_eq!(encoded["kind"], "api-key");
        assert_eq!(encoded["version"], 1);
        assert_eq!(encoded["apiId"], "orders");
        let stored_under = api_key_key("orders", &key.key_hash);
        assert_eq!(Record::from_json(Some(&stored_under), encoded.clone()).unwrap(), Record::ApiKey(key));
        assert!(Record::from_json(Some("apikey/other/x"), encoded).is_err(), "a record under a foreign key");
    }

    #[test]
    fn unknown_kinds_and_newer_versions_are_kept_as_read() {
        let newer = json!({"kind": "api-key", "version": 2, "apiId": "a", "somethingNew": true});
        let read = Record::from_json(Some("apikey/a/x"), newer.clone()).unwrap();
        assert_eq!(read, Record::Unknown { key: "apikey/a/x".into(), value: newer.clone() });
        assert_eq!(read.to_json(), newer);
        let other = json!({"kind": "rate-limit", "version": 1});
        let from_file = Record::from_json(None, other.clone()).unwrap();
        assert!(matches!(&from_file, Record::Unknown { key, .. } if key.starts_with("unknown/rate-limit/1/")));
        assert_eq!(Record::from_json(None, other).unwrap(), from_file, "the same value gets the same key");
    }

    #[test]
    fn a_broken_known_record_is_an_error_that_quotes_no_value() {
        let error = Record::from_json(None, json!({"kind": "api-key", "version": 1, "apiId": 5})).unwrap_err();
        assert!(error.to_string().contains("apiId"), "{error}");
        let error = Record::from_json(
            None,
            json!({"id": "s", "apiId": "a", "planId": "p", "configuration": {"callbackUrl": ["hunter2"]}}),
        )
        .unwrap_err();
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }
}
