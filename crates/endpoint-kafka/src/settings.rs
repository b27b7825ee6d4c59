//! The configuration one request actually uses (DESIGN 4.1, 4.2): every string property may be an
//! expression, evaluated per request; `gravitee.attributes.endpoint.kafka.<path>` attributes
//! override any property; the `gravitee.attribute.kafka.*` attributes pick topics and the group.
//! The result is checked like a static value and turned into librdkafka properties.

use crate::security::jaas::{JaasConfig, LoginModule, OAuthBearerLogin};
use crate::security::msk_iam::region_from_bootstrap;
use crate::security::oauth::TokenSource;
use kafka_edge_definition::{
    AutoOffsetReset, CompressionType, Dynamic, Endpoint as EndpointDefinition, KafkaEndpointConfiguration, Problem,
    SaslMechanism, SecurityConfiguration, SecurityProtocol, SharedConfiguration,
};
use kafka_edge_el::{ParseError, Template};
use kafka_edge_message::{EndpointFailure, ExecutionContext, FailureKind, Scope};
use kafka_edge_stores::{client_identity, trusted_certificates, ClientIdentity};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Display;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};

pub const ATTR_GROUP_ID: &str = "gravitee.attribute.kafka.groupId";
pub use kafka_edge_message::ATTR_RECORD_KEY;
pub const ATTR_PRODUCER_TOPICS: &str = "gravitee.attribute.kafka.producer.topics";
pub const ATTR_CONSUMER_TOPICS: &str = "gravitee.attribute.kafka.consumer.topics";
pub const ATTR_TOPICS_DEPRECATED: &str = "gravitee.attribute.kafka.topics";
/// Prefix of the attributes that override a configuration property by its path.
pub const ATTR_OVERRIDE_PREFIX: &str = "gravitee.attributes.endpoint.kafka.";

/// The librdkafka properties that identify a connection: clients with equal ones can be shared.
/// They hold credentials, so `Debug` shows the property names only.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct ConnectionProperties(BTreeMap<&'static str, String>, Option<TokenSource>);

impl ConnectionProperties {
    /// Where OAUTHBEARER tokens come from, when that is the mechanism.
    pub(crate) fn token_source(&self) -> Option<&TokenSource> {
        self.1.as_ref()
    }

    pub fn insert(&mut self, name: &'static str, value: impl Into<String>) {
        self.0.insert(name, value.into());
    }

    /// The `bootstrap.servers` in use (never a credential): for logs.
    pub fn bootstrap_servers(&self) -> &str {
        self.0.get("bootstrap.servers").map_or("", String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.0.iter().map(|(name, value)| (*name, value.as_str()))
    }

    /// Sets every property on a librdkafka configuration.
    pub fn apply(&self, config: &mut rdkafka::ClientConfig) {
        for (name, value) in self.iter() {
            config.set(name, value);
        }
    }
}

impl std::fmt::Debug for ConnectionProperties {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// The TLS material of an endpoint, read from its stores once, when the API loads.
#[derive(Default)]
struct Tls {
    trusted_ca_pem: Option<String>,
    identity: Option<ClientIdentity>,
    /// Without a trust store, where the system's CAs are when `SSL_CERT_FILE` or `SSL_CERT_DIR`
    /// says so. OpenSSL reads those variables itself, but librdkafka linked with a static OpenSSL
    /// (the static binary) probes the usual bundle paths instead: passing the location keeps both
    /// builds alike.
    system_ca_location: Option<String>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("truststore", &self.trusted_ca_pem.is_some())
            .field("keystore", &self.identity.is_some())
            .field("system_ca_location", &self.system_ca_location)
            .finish()
    }
}

/// One string property: its path, the attribute that overrides it, and its compiled value.
#[derive(Debug)]
struct Property {
    path: &'static str,
    override_attribute: String,
    value: Template,
}

impl Property {
    fn new(path: &'static str, source: &str) -> Result<Self, ParseError> {
        Ok(Self { path, override_attribute: format!("{ATTR_OVERRIDE_PREFIX}{path}"), value: Template::parse(source)? })
    }

    fn dynamic<T: Display>(path: &'static str, value: &Dynamic<T>) -> Result<Self, ParseError> {
        match value {
            Dynamic::Static(value) => Self::new(path, &value.to_string()),
            Dynamic::Expression(expression) => Self::new(path, expression),
        }
    }

    fn resolve(&self, context: &ExecutionContext) -> Option<String> {
        if let Some(value) = context.attributes.get(&self.override_attribute) {
            return Some(value.clone());
        }
        if let Some(literal) = self.value.is_literal().then(|| self.value.source()) {
            return Some(literal.to_string());
        }
        self.value.evaluate_string(&Scope::request(context))
    }
}

/// A list of topics; each entry may be an expression, and each value is split on commas.
#[derive(Debug)]
struct TopicList {
    path: &'static str,
    override_attribute: String,
    entries: Vec<Template>,
}

impl TopicList {
    fn new(path: &'static str, entries: &[String]) -> Result<Self, ParseError> {
        let entries = entries.iter().map(|entry| Template::parse(entry)).collect::<Result<_, _>>()?;
        Ok(Self { path, override_attribute: format!("{ATTR_OVERRIDE_PREFIX}{path}"), entries })
    }

    fn resolve(&self, context: &ExecutionContext) -> Vec<String> {
        if let Some(value) = context.attributes.get(&self.override_attribute) {
            return split_list(value);
        }
        let scope = Scope::request(context);
        self.entries
            .iter()
            .filter_map(|entry| entry.evaluate_string(&scope))
            .flat_map(|value| split_list(&value))
            .collect()
    }
}

/// Resolves the definition's values for one request.
#[derive(Debug)]
pub(crate) struct Resolver {
    api_id: String,
    bootstrap_servers: Property,
    protocol: Property,
    sasl_mechanism: Option<Property>,
    sasl_jaas_config: Option<Property>,
    tls: Tls,
    /// `producer.enabled`.
    produces: bool,
    producer_topics: TopicList,
    compression: Property,
    consumer_topics: TopicList,
    topic_pattern: Option<Property>,
    auto_offset_reset: Property,
    encode_message_id: bool,
    remove_confluent_header: bool,
    check_topic_existence: bool,
    deprecation_logged: AtomicBool,
    /// Known at load when the mechanism is GSSAPI and the JAAS line holds no expression.
    kerberos_principal: Option<String>,
}

/// What a publish needs.
#[derive(Debug)]
pub(crate) struct ProducerSettings {
    pub connection: ConnectionProperties,
    pub topics: Vec<String>,
    pub compression: CompressionType,
}

/// Which topics a subscription reads.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum TopicSelection {
    Names(Vec<String>),
    /// A regular expression over topic names; topics created later are picked up.
    Pattern(String),
}

/// What a subscription needs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ConsumerSettings {
    pub connection: ConnectionProperties,
    pub topics: TopicSelection,
    pub group_id: String,
    pub auto_offset_reset: AutoOffsetReset,
    pub encode_message_id: bool,
    pub remove_confluent_header: bool,
    pub check_topic_existence: bool,
}

/// Whether this build authenticates with SASL/GSSAPI (Kerberos): the `gssapi` feature, on by
/// default, links Cyrus SASL; the static binary (`scripts/release`) leaves it out, because GSSAPI
/// needs `kinit` and a SASL plugin at run time anyway.
pub const GSSAPI_BUILT_IN: bool = cfg!(feature = "gssapi");

/// librdkafka's `sasl.kerberos.principal` when the JAAS line names none.
const DEFAULT_KERBEROS_PRINCIPAL: &str = "kafkaclient";

const GSSAPI_LEFT_OUT: &str = "`GSSAPI` is not in this build of kafka-edge (the static binary leaves Kerberos out); \
     use the standard build (cargo install --path crates/gateway) on a host with kinit and the Cyrus SASL GSSAPI plugin";

impl Resolver {
    /// Compiles every property and reads the TLS stores: a store that cannot be read, or a
    /// wrong password, fails here, when the API loads. Problems name the property below the
    /// shared configuration in use (`security.ssl.keyStore.password`), or `bootstrapServers`.
    pub fn new(api_id: &str, definition: &EndpointDefinition) -> Result<Self, Problem> {
        let shared = &definition.shared_configuration;
        let sasl = shared.security.sasl.as_ref();
        let ssl = shared.security.ssl.as_ref();
        // Blocks the protocol does not use are reported as ignored at load, and not read.
        let (uses_tls, uses_sasl) = match shared.security.protocol {
            Dynamic::Static(SecurityProtocol::Plaintext) => (false, false),
            Dynamic::Static(SecurityProtocol::Ssl) => (true, false),
            Dynamic::Static(SecurityProtocol::SaslPlaintext) => (false, true),
            Dynamic::Static(SecurityProtocol::SaslSsl) | Dynamic::Expression(_) => (true, true),
        };
        let ssl = ssl.filter(|_| uses_tls);
        let sasl = sasl.filter(|_| uses_sasl);
        let tls = Tls {
            trusted_ca_pem: ssl
                .and_then(|s| s.trust_store.as_ref())
                .map(trusted_certificates)
                .transpose()
                .map_err(|problem| problem.under("security.ssl"))?
                .flatten(),
            identity: ssl
                .and_then(|s| s.key_store.as_ref())
                .map(client_identity)
                .transpose()
                .map_err(|problem| problem.under("security.ssl"))?
                .flatten(),
            system_ca_location: ["SSL_CERT_FILE", "SSL_CERT_DIR"]
                .into_iter()
                .find_map(|name| std::env::var(name).ok().filter(|value| !value.trim().is_empty())),
        };
        let expression =
            |path: &'static str| move |error: ParseError| Problem::new(path, format!("invalid expression: {error}"));
        let jaas_problem = |message: String| Problem::new("security.sasl.saslJaasConfig", message);
        if let Some(Dynamic::Static(SaslMechanism::Gssapi)) = sasl.and_then(|s| s.sasl_mechanism.as_ref()) {
            if !GSSAPI_BUILT_IN {
                return Err(Problem::new("security.sasl.saslMechanism", GSSAPI_LEFT_OUT.to_string()));
            }
        }
        let mut kerberos_principal = None;
        if let Some(jaas) = sasl.and_then(|s| s.sasl_jaas_config.as_deref()).filter(|j| !j.contains("{#")) {
            let login = JaasConfig::parse(jaas)
                .and_then(|config| LoginModule::from_jaas(&config))
                .map_err(|error| jaas_problem(error.to_string()))?;
            if let Some(Dynamic::Static(mechanism)) = sasl.and_then(|s| s.sasl_mechanism.as_ref()) {
                if !login_fits(*mechanism, &login) {
                    return Err(jaas_problem(format!("the login module does not fit mechanism {mechanism}")));
                }
                if let (SaslMechanism::Gssapi, LoginModule::Kerberos { principal, .. }) = (mechanism, login) {
                    kerberos_principal = Some(principal.unwrap_or_else(|| DEFAULT_KERBEROS_PRINCIPAL.to_string()));
                }
            }
        }
        Ok(Self {
            api_id: api_id.to_string(),
            bootstrap_servers: Property::new("bootstrapServers", &definition.configuration.bootstrap_servers)
                .map_err(expression("bootstrapServers"))?,
            protocol: Property::dynamic("security.protocol", &shared.security.protocol)
                .map_err(expression("security.protocol"))?,
            sasl_mechanism: sasl
                .and_then(|s| s.sasl_mechanism.as_ref())
                .map(|m| Property::dynamic("security.sasl.saslMechanism", m))
                .transpose()
                .map_err(expression("security.sasl.saslMechanism"))?,
            sasl_jaas_config: sasl
                .and_then(|s| s.sasl_jaas_config.as_deref())
                .map(|j| Property::new("security.sasl.saslJaasConfig", j))
                .transpose()
                .map_err(expression("security.sasl.saslJaasConfig"))?,
            tls,
            produces: shared.producer.enabled,
            producer_topics: TopicList::new("producer.topics", &shared.producer.topics)
                .map_err(expression("producer.topics"))?,
            compression: Property::dynamic("producer.compressionType", &shared.producer.compression_type)
                .map_err(expression("producer.compressionType"))?,
            consumer_topics: TopicList::new("consumer.topics", &shared.consumer.topics)
                .map_err(expression("consumer.topics"))?,
            topic_pattern: shared
                .consumer
                .topic_pattern
                .as_deref()
                .map(|p| Property::new("consumer.topicPattern", p))
                .transpose()
                .map_err(expression("consumer.topicPattern"))?,
            auto_offset_reset: Property::dynamic("consumer.autoOffsetReset", &shared.consumer.auto_offset_reset)
                .map_err(expression("consumer.autoOffsetReset"))?,
            encode_message_id: shared.consumer.encode_message_id,
            remove_confluent_header: shared.consumer.remove_confluent_header,
            check_topic_existence: shared.consumer.check_topic_existence,
            deprecation_logged: AtomicBool::new(false),
            kerberos_principal,
        })
    }

    /// The Kerberos principal of a static GSSAPI configuration.
    pub fn kerberos_principal(&self) -> Option<&str> {
        self.kerberos_principal.as_deref()
    }
}

/// The connection properties (bootstrap, TLS, SASL) of a fixed `security` block, for the
/// gateway's own Kafka clients such as the `kafka://` state store. Those clients have no request
/// to evaluate expressions against and no token callback, so expressions and the token-based
/// mechanisms (OAUTHBEARER, AWS_MSK_IAM) are refused; every error names its field.
pub fn static_connection(
    bootstrap_servers: &str,
    security: &SecurityConfiguration,
) -> Result<ConnectionProperties, Problem> {
    let refuse = |path: &str, message: &str| Problem::new(path, message);
    let protocol = match &security.protocol {
        Dynamic::Static(protocol) => *protocol,
        Dynamic::Expression(_) => return Err(refuse("security.protocol", "expressions are not allowed here")),
    };
    if matches!(protocol, SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl) {
        let sasl = security
            .sasl
            .as_ref()
            .ok_or_else(|| refuse("security.sasl", &format!("required with protocol `{}`", protocol.as_str())))?;
        match &sasl.sasl_mechanism {
            None => {
                return Err(refuse(
                    "security.sasl.saslMechanism",
                    &format!("required with protocol `{}`", protocol.as_str()),
                ))
            }
            Some(Dynamic::Expression(_)) => {
                return Err(refuse("security.sasl.saslMechanism", "expressions are not allowed here"))
            }
            Some(Dynamic::Static(mechanism @ (SaslMechanism::OAuthBearer | SaslMechanism::AwsMskIam))) => {
                return Err(refuse(
                    "security.sasl.saslMechanism",
                    &format!(
                        "`{}` is not supported here; use PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or GSSAPI",
                        mechanism.as_str()
                    ),
                ))
            }
            Some(Dynamic::Static(SaslMechanism::Gssapi)) if !GSSAPI_BUILT_IN => {
                return Err(refuse("security.sasl.saslMechanism", GSSAPI_LEFT_OUT))
            }
            Some(Dynamic::Static(_)) => {}
        }
        match sasl.sasl_jaas_config.as_deref() {
            None => {
                return Err(refuse(
                    "security.sasl.saslJaasConfig",
                    &format!("required with protocol `{}`", protocol.as_str()),
                ))
            }
            Some(jaas) if jaas.contains("{#") => {
                return Err(refuse("security.sasl.saslJaasConfig", "expressions are not allowed here"))
            }
            Some(_) => {}
        }
    }
    if bootstrap_servers.contains("{#") || !valid_bootstrap_servers(bootstrap_servers) {
        return Err(refuse("bootstrapServers", "expected a comma-separated list of host:port"));
    }
    let endpoint = EndpointDefinition {
        name: "state".into(),
        weight: 1,
        configuration: KafkaEndpointConfiguration { bootstrap_servers: bootstrap_servers.into() },
        shared_configuration: SharedConfiguration { security: security.clone(), ..SharedConfiguration::default() },
        inherits_configuration: true,
    };
    let resolver = Resolver::new("state", &endpoint)?;
    // Everything that could fail at request time was checked above.
    resolver.connection(&ExecutionContext::default()).map_err(|failure| refuse("security", &failure.message))
}

impl Resolver {
    fn connection(&self, context: &ExecutionContext) -> Result<ConnectionProperties, EndpointFailure> {
        let protocol: SecurityProtocol = self.parse(&self.protocol, context)?;
        let servers = self.resolved(&self.bootstrap_servers, context)?;
        if !valid_bootstrap_servers(&servers) {
            return Err(self.invalid(self.bootstrap_servers.path, "expected a comma-separated list of host:port"));
        }
        let mut properties = ConnectionProperties::default();
        properties.insert("bootstrap.servers", servers);
        properties.insert("security.protocol", protocol.as_str().to_ascii_lowercase());
        if matches!(protocol, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl) {
            match (&self.tls.trusted_ca_pem, &self.tls.system_ca_location) {
                (Some(ca), _) => properties.insert("ssl.ca.pem", ca.clone()),
                (None, Some(location)) => properties.insert("ssl.ca.location", location.clone()),
                (None, None) => {}
            }
            if let Some(identity) = &self.tls.identity {
                properties.insert("ssl.certificate.pem", identity.certificate_chain_pem.clone());
                properties.insert("ssl.key.pem", identity.private_key_pem.clone());
            }
        }
        if matches!(protocol, SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl) {
            self.sasl(context, protocol, &mut properties)?;
        }
        Ok(properties)
    }

    /// SASL: the mechanism, and the JAAS line turned into librdkafka's settings.
    fn sasl(
        &self,
        context: &ExecutionContext,
        protocol: SecurityProtocol,
        properties: &mut ConnectionProperties,
    ) -> Result<(), EndpointFailure> {
        let mechanism_path = "security.sasl.saslMechanism";
        let jaas_path = "security.sasl.saslJaasConfig";
        let mechanism: SaslMechanism = match &self.sasl_mechanism {
            Some(property) => self.parse(property, context)?,
            None => return Err(self.invalid(mechanism_path, "required with a SASL protocol")),
        };
        let jaas = match &self.sasl_jaas_config {
            Some(property) => self.resolved(property, context)?,
            None => return Err(self.invalid(jaas_path, "required with a SASL protocol")),
        };
        let login = JaasConfig::parse(&jaas)
            .and_then(|config| LoginModule::from_jaas(&config))
            .map_err(|error| self.invalid(jaas_path, &error.to_string()))?;
        match (mechanism, login) {
            (
                SaslMechanism::Plain | SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512,
                LoginModule::Plain { username, password } | LoginModule::Scram { username, password },
            ) => {
                properties.insert("sasl.mechanism", mechanism.as_str());
                properties.insert("sasl.username", username);
                properties.insert("sasl.password", password);
            }
            (SaslMechanism::Gssapi, _) if !GSSAPI_BUILT_IN => return Err(self.invalid(mechanism_path, GSSAPI_LEFT_OUT)),
            (SaslMechanism::Gssapi, LoginModule::Kerberos { principal, key_tab, service_name, .. }) => {
                properties.insert("sasl.mechanism", "GSSAPI");
                properties.insert("sasl.kerberos.service.name", service_name.unwrap_or_else(|| "kafka".into()));
                if let Some(principal) = principal {
                    properties.insert("sasl.kerberos.principal", principal);
                }
                if let Some(key_tab) = key_tab {
                    properties.insert("sasl.kerberos.keytab", key_tab);
                }
            }
            (SaslMechanism::OAuthBearer, LoginModule::OAuthBearer(login)) => {
                properties.insert("sasl.mechanism", "OAUTHBEARER");
                properties.1 = Some(match login {
                    OAuthBearerLogin::AccessToken(token) if token.trim().is_empty() => {
                        return Err(self.invalid(jaas_path, "the access_token is empty"))
                    }
                    OAuthBearerLogin::AccessToken(token) => TokenSource::AccessToken(token),
                    OAuthBearerLogin::Unsecured { principal, claims } => TokenSource::Unsecured { principal, claims },
                    OAuthBearerLogin::ClientCredentials(credentials) => TokenSource::ClientCredentials(credentials),
                });
            }
            (SaslMechanism::AwsMskIam, LoginModule::AwsMskIam(_)) if protocol != SecurityProtocol::SaslSsl => {
                return Err(self.invalid(mechanism_path, "AWS_MSK_IAM needs the SASL_SSL protocol"));
            }
            (SaslMechanism::AwsMskIam, LoginModule::AwsMskIam(login)) => {
                let servers = properties.0.get("bootstrap.servers").cloned().unwrap_or_default();
                let region = region_from_bootstrap(&servers)
                    .or_else(|| std::env::var("AWS_REGION").ok())
                    .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
                    .ok_or_else(|| {
                        self.invalid(
                            mechanism_path,
                            "AWS_MSK_IAM: no region in the bootstrap servers, AWS_REGION or AWS_DEFAULT_REGION",
                        )
                    })?;
                properties.insert("sasl.mechanism", "OAUTHBEARER");
                properties.1 = Some(TokenSource::MskIam { region, login });
            }
            (mechanism, _) => {
                return Err(self.invalid(jaas_path, &format!("the login module does not fit mechanism {mechanism}")))
            }
        }
        Ok(())
    }

    /// Whether the endpoint produces, and everything its producer needs is fixed by the definition
    /// (no expression in the connection, the topics or the compression).
    pub fn produces_statically(&self) -> bool {
        let literal = |property: &Property| property.value.is_literal();
        self.produces
            && literal(&self.bootstrap_servers)
            && literal(&self.protocol)
            && literal(&self.compression)
            && self.sasl_mechanism.as_ref().is_none_or(literal)
            && self.sasl_jaas_config.as_ref().is_none_or(literal)
            && !self.producer_topics.entries.is_empty()
            && self.producer_topics.entries.iter().all(Template::is_literal)
    }

    /// `message_attributes` come first: a message-level topic attribute wins (DESIGN 4.2).
    pub fn producer(
        &self,
        context: &ExecutionContext,
        message_attributes: &HashMap<String, String>,
    ) -> Result<ProducerSettings, EndpointFailure> {
        let chosen = message_attributes
            .get(ATTR_PRODUCER_TOPICS)
            .or_else(|| self.deprecated_topics(message_attributes))
            .or_else(|| context.attributes.get(ATTR_PRODUCER_TOPICS))
            .or_else(|| self.deprecated_topics(&context.attributes));
        let topics = match chosen {
            Some(value) => split_list(value),
            None => self.producer_topics.resolve(context),
        };
        if topics.is_empty() {
            return Err(self.invalid(self.producer_topics.path, "no topic"));
        }
        Ok(ProducerSettings {
            connection: self.connection(context)?,
            topics,
            compression: self.parse(&self.compression, context)?,
        })
    }

    pub fn consumer(&self, context: &ExecutionContext) -> Result<ConsumerSettings, EndpointFailure> {
        let named = context
            .attributes
            .get(ATTR_CONSUMER_TOPICS)
            .or_else(|| self.deprecated_topics(&context.attributes))
            .map(|v| split_list(v));
        let topics = match (named, &self.topic_pattern) {
            (Some(topics), _) => TopicSelection::Names(topics),
            (None, Some(pattern)) => TopicSelection::Pattern(self.resolved(pattern, context)?),
            (None, None) => TopicSelection::Names(self.consumer_topics.resolve(context)),
        };
        if matches!(&topics, TopicSelection::Names(names) if names.is_empty()) {
            return Err(self.invalid(self.consumer_topics.path, "no topic"));
        }
        let group_id = context
            .attributes
            .get(ATTR_GROUP_ID)
            .filter(|group| !group.trim().is_empty())
            .cloned()
            .unwrap_or_else(|| context.client_identifier.clone());
        Ok(ConsumerSettings {
            connection: self.connection(context)?,
            topics,
            group_id,
            auto_offset_reset: self.parse(&self.auto_offset_reset, context)?,
            encode_message_id: self.flag("consumer.encodeMessageId", self.encode_message_id, context),
            remove_confluent_header: self.flag("consumer.removeConfluentHeader", self.remove_confluent_header, context),
            check_topic_existence: self.flag("consumer.checkTopicExistence", self.check_topic_existence, context),
        })
    }

    /// A boolean property, overridable by attribute (`true`/`false`).
    fn flag(&self, path: &str, configured: bool, context: &ExecutionContext) -> bool {
        match context.attributes.get(&format!("{ATTR_OVERRIDE_PREFIX}{path}")).map(|v| v.trim().to_ascii_lowercase()) {
            Some(value) if value == "true" => true,
            Some(value) if value == "false" => false,
            _ => configured,
        }
    }

    fn resolved(&self, property: &Property, context: &ExecutionContext) -> Result<String, EndpointFailure> {
        property
            .resolve(context)
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| self.invalid(property.path, "resolved to nothing"))
    }

    fn parse<T: FromStr<Err = String>>(
        &self,
        property: &Property,
        context: &ExecutionContext,
    ) -> Result<T, EndpointFailure> {
        let value = self.resolved(property, context)?;
        value.trim().parse().map_err(|reason: String| self.invalid(property.path, &reason))
    }

    fn deprecated_topics<'a>(&self, attributes: &'a HashMap<String, String>) -> Option<&'a String> {
        let value = attributes.get(ATTR_TOPICS_DEPRECATED)?;
        if !self.deprecation_logged.swap(true, Ordering::Relaxed) {
            tracing::warn!(api = %self.api_id, attribute = ATTR_TOPICS_DEPRECATED,
                "Deprecated attribute used; set gravitee.attribute.kafka.producer.topics or gravitee.attribute.kafka.consumer.topics instead.");
        }
        Some(value)
    }

    /// DESIGN 4.1: a value that cannot be used ends the request with a 500; the log names the path.
    fn invalid(&self, path: &str, reason: &str) -> EndpointFailure {
        tracing::warn!(api = %self.api_id, path, reason, "Invalid configuration at request time.");
        EndpointFailure::new(FailureKind::InvalidDynamicConfiguration, "Invalid configuration")
    }
}

/// Whether a JAAS login module can authenticate with the SASL mechanism.
fn login_fits(mechanism: SaslMechanism, login: &LoginModule) -> bool {
    matches!(
        (mechanism, login),
        (
            SaslMechanism::Plain | SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512,
            LoginModule::Plain { .. } | LoginModule::Scram { .. }
        ) | (SaslMechanism::Gssapi, LoginModule::Kerberos { .. })
            | (SaslMechanism::OAuthBearer, LoginModule::OAuthBearer(_))
            | (SaslMechanism::AwsMskIam, LoginModule::AwsMskIam(_))
    )
}

/// A comma-separated value as a list, trimmed, without empty entries.
pub(crate) fn split_list(value: &str) -> Vec<String> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
}

fn valid_bootstrap_servers(servers: &str) -> bool {
    servers.split(',').map(str::trim).all(|server| {
        server.rsplit_once(':').is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolver(security: serde_json::Value, bootstrap: &str) -> Resolver {
        let definition = serde_json::json!({"id": "t", "name": "t", "type": "message",
            "listeners": [{"type": "http", "paths": [{"path": "/t"}], "entrypoints": [{"type": "http-post"}]}],
            "endpointGroups": [{"name": "g", "type": "kafka",
                "sharedConfiguration": {"security": security, "producer": {"enabled": true, "topics": ["t"]}},
                "endpoints": [{"name": "e", "type": "kafka", "configuration": {"bootstrapServers": bootstrap}}]}]});
        let loaded = kafka_edge_definition::load_str(&definition.to_string(), kafka_edge_definition::Format::Json, "t")
            .expect("valid");
        Resolver::new("t", loaded.api.primary_endpoint().expect("endpoint").1).expect("resolver")
    }

    fn properties(resolver: &Resolver) -> ConnectionProperties {
        resolver.connection(&ExecutionContext::default()).expect("connection")
    }

    #[test]
    fn kerberos_logins_become_librdkafka_kerberos_settings() {
        let jaas = r#"com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true storeKey=true keyTab="/etc/kafka.keytab" principal="kafka-edge@EXAMPLE.COM" serviceName="kafka";"#;
        let security = serde_json::json!({"protocol": "SASL_PLAINTEXT", "sasl": {"saslMechanism": "GSSAPI", "saslJaasConfig": jaas}});
        let properties = properties(&resolver(security, "kdc-host:9092"));
        let found: Vec<(&str, &str)> = properties.iter().collect();
        assert_eq!(
            found,
            [
                ("bootstrap.servers", "kdc-host:9092"),
                ("sasl.kerberos.keytab", "/etc/kafka.keytab"),
                ("sasl.kerberos.principal", "kafka-edge@EXAMPLE.COM"),
                ("sasl.kerberos.service.name", "kafka"),
                ("sasl.mechanism", "GSSAPI"),
                ("security.protocol", "sasl_plaintext"),
            ]
        );
    }

    #[test]
    fn a_login_module_that_does_not_fit_the_mechanism_fails_at_load() {
        let jaas = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="p";"#;
        let security = serde_json::json!({"protocol": "SASL_PLAINTEXT", "sasl": {"saslMechanism": "OAUTHBEARER", "saslJaasConfig": jaas}});
        let definition = serde_json::json!({"id": "t", "name": "t", "type": "message",
            "listeners": [{"type": "http", "paths": [{"path": "/t"}], "entrypoints": [{"type": "http-post"}]}],
            "endpointGroups": [{"name": "g", "type": "kafka",
                "sharedConfiguration": {"security": security, "producer": {"enabled": true, "topics": ["t"]}},
                "endpoints": [{"name": "e", "type": "kafka", "configuration": {"bootstrapServers": "h:9092"}}]}]});
        let loaded =
            kafka_edge_definition::load_str(&definition.to_string(), kafka_edge_definition::Format::Json, "t").unwrap();
        let error = Resolver::new("t", loaded.api.primary_endpoint().unwrap().1).unwrap_err();
        assert_eq!(
            error.to_string(),
            "security.sasl.saslJaasConfig: the login module does not fit mechanism OAUTHBEARER"
        );
    }

    #[test]
    fn passwords_never_show_in_debug_output() {
        let jaas =
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="hunter2";"#;
        let security = serde_json::json!({"protocol": "SASL_PLAINTEXT", "sasl": {"saslMechanism": "PLAIN", "saslJaasConfig": jaas}});
        let properties = properties(&resolver(security, "h:9092"));
        assert!(properties.iter().any(|(name, value)| name == "sasl.password" && value == "hunter2"));
        assert!(!format!("{properties:?}").contains("hunter2"));
    }

    #[test]
    fn msk_iam_needs_sasl_ssl_and_takes_its_region_from_the_bootstrap_host() {
        let jaas = r#"software.amazon.msk.auth.iam.IAMLoginModule required awsProfileName="dev";"#;
        let security = serde_json::json!({"protocol": "SASL_SSL", "sasl": {"saslMechanism": "AWS_MSK_IAM", "saslJaasConfig": jaas}});
        let properties = properties(&resolver(security, "b-1.demo.abc123.c2.kafka.eu-west-1.amazonaws.com:9098"));
        assert!(properties.iter().any(|p| p == ("sasl.mechanism", "OAUTHBEARER")));
        assert!(matches!(properties.token_source(), Some(TokenSource::MskIam { region, .. }) if region == "eu-west-1"));
    }

    #[test]
    fn lists_are_split_on_commas_and_trimmed() {
        assert_eq!(
            split_list("test-topic-message-attribute, another-topic-override"),
            vec!["test-topic-message-attribute", "another-topic-override"]
        );
        assert_eq!(split_list(" , a,,b "), vec!["a", "b"]);
    }
}
