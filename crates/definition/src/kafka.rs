//! The Kafka endpoint configuration (DESIGN 4.1; the seed's reference tables). Unknown fields are
//! errors, as in Gravitee's own schema (`additionalProperties: false`).

use crate::value::{lenient_bool, string_enum, Dynamic};
use serde::Deserialize;

/// `endpoints[].configuration`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KafkaEndpointConfiguration {
    /// Comma-separated `host:port` list used for the first connection. Required.
    pub bootstrap_servers: String,
}

/// `sharedConfiguration` / `sharedConfigurationOverride`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SharedConfiguration {
    #[serde(default)]
    pub security: SecurityConfiguration,
    #[serde(default)]
    pub producer: ProducerConfiguration,
    #[serde(default)]
    pub consumer: ConsumerConfiguration,
}

string_enum!(
    /// `security.protocol`.
    SecurityProtocol default Plaintext { Plaintext => "PLAINTEXT", SaslPlaintext => "SASL_PLAINTEXT", SaslSsl => "SASL_SSL", Ssl => "SSL" }
);

string_enum!(
    /// `security.sasl.saslMechanism`. The seed's `SCRAM_SHA-256` spelling is accepted.
    SaslMechanism {
        Gssapi => "GSSAPI",
        OAuthBearer => "OAUTHBEARER",
        Plain => "PLAIN",
        ScramSha256 => "SCRAM-SHA-256" | "SCRAM_SHA-256" | "SCRAM_SHA_256",
        ScramSha512 => "SCRAM-SHA-512" | "SCRAM_SHA-512" | "SCRAM_SHA_512",
        AwsMskIam => "AWS_MSK_IAM",
    }
);

string_enum!(
    /// `security.ssl.trustStore.type` and `security.ssl.keyStore.type`.
    StoreType default Jks { None => "NONE" | "", Pem => "PEM", Pkcs12 => "PKCS12", Jks => "JKS" }
);

/// `security`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecurityConfiguration {
    /// PLAINTEXT (default), SASL_PLAINTEXT, SASL_SSL or SSL.
    #[serde(default)]
    pub protocol: Dynamic<SecurityProtocol>,
    #[serde(default)]
    pub sasl: Option<SaslConfiguration>,
    #[serde(default)]
    pub ssl: Option<SslConfiguration>,
}

/// `security.sasl`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SaslConfiguration {
    #[serde(default)]
    pub sasl_mechanism: Option<Dynamic<SaslMechanism>>,
    /// A JAAS login line (secret: never logged).
    #[serde(default)]
    pub sasl_jaas_config: Option<String>,
}

/// `security.ssl`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SslConfiguration {
    #[serde(default, alias = "truststore")]
    pub trust_store: Option<TrustStore>,
    #[serde(default, alias = "keystore")]
    pub key_store: Option<KeyStore>,
}

/// `security.ssl.trustStore`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrustStore {
    #[serde(default, rename = "type")]
    pub store_type: StoreType,
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub certificates: Option<String>,
}

/// `security.ssl.keyStore`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyStore {
    #[serde(default, rename = "type")]
    pub store_type: StoreType,
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub key_password: Option<String>,
    #[serde(default)]
    pub certificate_chain: Option<String>,
}

string_enum!(
    /// `producer.compressionType`.
    CompressionType default None { None => "none", Gzip => "gzip", Snappy => "snappy", Lz4 => "lz4", Zstd => "zstd" }
);

/// `producer`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProducerConfiguration {
    /// Whether the API may produce. Default false.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub enabled: bool,
    /// Topics every message is produced to (one record per topic). Required when enabled.
    #[serde(default)]
    pub topics: Vec<String>,
    /// none (default), gzip, snappy, lz4 or zstd.
    #[serde(default)]
    pub compression_type: Dynamic<CompressionType>,
}

string_enum!(
    /// `consumer.autoOffsetReset`.
    AutoOffsetReset default Latest { Latest => "latest", Earliest => "earliest", None => "none" }
);

/// `consumer`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsumerConfiguration {
    /// Whether the API may consume. Default false.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub enabled: bool,
    /// Topics to consume. Either this or `topicPattern` is required when enabled.
    #[serde(default)]
    pub topics: Vec<String>,
    /// One Java-syntax regular expression selecting the topics to consume.
    #[serde(default)]
    pub topic_pattern: Option<String>,
    /// Base64-encode message ids and cursors. Default true.
    #[serde(default = "default_true", deserialize_with = "lenient_bool")]
    pub encode_message_id: bool,
    /// latest (default), earliest or none.
    #[serde(default)]
    pub auto_offset_reset: Dynamic<AutoOffsetReset>,
    /// Fail the request when a listed topic does not exist. Default false.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub check_topic_existence: bool,
    /// Strip the 5-byte Confluent schema-registry prefix from message content. Default false.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub remove_confluent_header: bool,
}

fn default_true() -> bool {
    true
}

impl Default for ConsumerConfiguration {
    fn default() -> Self {
        Self {
            enabled: false,
            topics: Vec::new(),
            topic_pattern: None,
            encode_message_id: true,
            auto_offset_reset: Dynamic::default(),
            check_topic_existence: false,
            remove_confluent_header: false,
        }
    }
}
