//! Shared helpers for the integration tests: the real broker of the test bed (never a mock), a
//! gateway started in-process on a random port, API definitions, and a direct Kafka client that
//! checks what really landed in Kafka.
#![allow(dead_code)]

use kafka_edge_definition::{load_str, Format};
use kafka_edge_gateway::Gateway;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::Message as _;
use serde_json::{json, Value};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Longest wait for anything a test awaits.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// The test bed's broker; the test command exports its address.
pub fn bootstrap() -> String {
    std::env::var("KAFKA_EDGE_BOOTSTRAP").expect(
        "KAFKA_EDGE_BOOTSTRAP is not set: run the tests with scripts/test, which starts the Kafka test bed",
    )
}

/// A name no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

fn client_config() -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap());
    config
}

pub async fn create_topic(name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = client_config().create().expect("admin client");
    let results = admin
        .create_topics(&[NewTopic::new(name, partitions, TopicReplication::Fixed(1))], &AdminOptions::new().operation_timeout(Some(TIMEOUT)))
        .await
        .expect("create topic request");
    for result in results {
        result.expect("topic created");
    }
}

/// Produces records directly (not through the gateway).
pub async fn produce(topic: &str, records: &[(Option<&str>, &str)]) {
    let producer: FutureProducer = client_config().create().expect("producer");
    for (key, value) in records {
        let mut record = FutureRecord::to(topic).payload(*value);
        if let Some(key) = key {
            record = record.key(*key);
        }
        producer.send(record, TIMEOUT).await.expect("direct produce");
    }
}

/// Produces one record with headers directly.
pub async fn produce_with_headers(topic: &str, value: &str, headers: &[(&str, &str)]) {
    let producer: FutureProducer = client_config().create().expect("producer");
    let headers = headers.iter().fold(OwnedHeaders::new(), |h, (k, v)| h.insert(Header { key: k, value: Some(*v) }));
    producer.send(FutureRecord::<(), _>::to(topic).payload(value).headers(headers), TIMEOUT).await.expect("direct produce");
}

/// Reads every record of `topic` from the beginning until `count` arrived (or TIMEOUT).
pub fn read_records(topic: &str, count: usize) -> Vec<OwnedMessage> {
    let consumer: BaseConsumer = client_config().set("group.id", unique("reader")).create().expect("consumer");
    let metadata = consumer.fetch_metadata(Some(topic), TIMEOUT).expect("metadata");
    let mut assignment = TopicPartitionList::new();
    for partition in metadata.topics()[0].partitions() {
        assignment.add_partition_offset(topic, partition.id(), Offset::Beginning).expect("partition");
    }
    consumer.assign(&assignment).expect("assign");
    let deadline = std::time::Instant::now() + TIMEOUT;
    let mut records = Vec::new();
    while records.len() < count && std::time::Instant::now() < deadline {
        if let Some(result) = consumer.poll(Duration::from_millis(200)) {
            records.push(result.expect("record").detach());
        }
    }
    records
}

/// Number of members the group has right now.
pub fn group_members(group: &str) -> usize {
    let consumer: BaseConsumer = client_config().create().expect("consumer");
    let groups = consumer.fetch_group_list(Some(group), TIMEOUT).expect("group list");
    groups.groups().iter().find(|g| g.name() == group).map_or(0, |g| g.members().len())
}

/// Polls `condition` until it holds or TIMEOUT passes; returns whether it held.
pub async fn eventually(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while tokio::time::Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    condition()
}

/// What the test API looks like.
pub struct ApiSpec {
    pub path: String,
    pub producer_topics: Vec<String>,
    pub consumer_topics: Vec<String>,
    pub http_get: Value,
    pub http_get_qos: &'static str,
    pub http_post: Value,
    pub consumer_extra: Value,
    pub producer_extra: Value,
    pub bootstrap: String,
}

impl ApiSpec {
    pub fn new(topic: &str) -> Self {
        Self {
            path: format!("/{}", unique("api")),
            producer_topics: vec![topic.to_string()],
            consumer_topics: vec![topic.to_string()],
            http_get: json!({"messagesLimitCount": 10, "messagesLimitDurationMs": 3000}),
            http_get_qos: "auto",
            http_post: json!({}),
            consumer_extra: json!({"autoOffsetReset": "earliest"}),
            producer_extra: json!({}),
            bootstrap: bootstrap(),
        }
    }

    pub fn to_json(&self) -> Value {
        let mut consumer = json!({"enabled": true, "topics": self.consumer_topics});
        merge(&mut consumer, &self.consumer_extra);
        let mut producer = json!({"enabled": true, "topics": self.producer_topics});
        merge(&mut producer, &self.producer_extra);
        json!({
            "id": unique("api"),
            "name": "test",
            "definitionVersion": "4.0.0",
            "type": "message",
            "listeners": [{
                "type": "http",
                "paths": [{"path": self.path}],
                "entrypoints": [
                    {"type": "http-get", "qos": self.http_get_qos, "configuration": self.http_get},
                    {"type": "http-post", "configuration": self.http_post}
                ]
            }],
            "endpointGroups": [{
                "name": "default", "type": "kafka",
                "sharedConfiguration": {"consumer": consumer, "producer": producer},
                "endpoints": [{"name": "default", "type": "kafka", "configuration": {"bootstrapServers": self.bootstrap}}]
            }]
        })
    }
}

fn merge(target: &mut Value, extra: &Value) {
    if let (Some(target), Some(extra)) = (target.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            target.insert(k.clone(), v.clone());
        }
    }
}

/// A gateway serving one API, in this process, on a random loopback port.
pub struct TestGateway {
    pub base: String,
    pub path: String,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    pub http: reqwest::Client,
}

impl TestGateway {
    pub async fn start(spec: &ApiSpec) -> Self {
        Self::start_json(spec.to_json(), &spec.path).await
    }

    pub async fn start_json(definition: Value, path: &str) -> Self {
        let loaded = load_str(&definition.to_string(), Format::Json, "test").expect("valid test definition");
        let shutdown = CancellationToken::new();
        let gateway = Gateway::new(vec![loaded.api], shutdown.clone()).expect("gateway");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let task = tokio::spawn(async move {
            gateway.serve(listener).await.expect("serve");
        });
        Self { base, path: path.to_string(), shutdown, task, http: reqwest::Client::new() }
    }

    pub fn url(&self) -> String {
        format!("{}{}", self.base, self.path)
    }

    pub async fn post(&self, body: &str) -> reqwest::Response {
        self.http.post(self.url()).body(body.to_string()).send().await.expect("POST")
    }

    /// GET as client `client` (X-Gravitee-Client-Identifier), JSON body.
    pub async fn get_json(&self, client: &str, query: &str) -> Value {
        let response = self
            .http
            .get(format!("{}{query}", self.url()))
            .header("Accept", "application/json")
            .header("X-Gravitee-Client-Identifier", client)
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status(), 200, "GET status");
        response.json().await.expect("JSON body")
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}

/// The `content` of every item of an http-get JSON body.
pub fn contents(body: &Value) -> Vec<String> {
    body["items"].as_array().map_or_else(Vec::new, |items| {
        items.iter().map(|item| item["content"].as_str().unwrap_or_default().to_string()).collect()
    })
}

pub fn payload(record: &OwnedMessage) -> String {
    String::from_utf8_lossy(record.payload().unwrap_or_default()).into_owned()
}
