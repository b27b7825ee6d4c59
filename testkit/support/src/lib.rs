//! Helpers that integration tests share: the address of the test bed's real broker (never a mock),
//! unique names, topic creation, and a direct Kafka client to check what really landed in Kafka.

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::Message as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Longest wait for anything a test awaits.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// The test bed's broker; the test command (scripts/test) exports its address.
pub fn bootstrap() -> String {
    std::env::var("KAFKA_EDGE_BOOTSTRAP")
        .expect("KAFKA_EDGE_BOOTSTRAP is not set: run the tests with scripts/test, which starts the Kafka test bed")
}

/// The test bed script, for what only the Java tools can do.
pub fn testkit_script() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../kafka"))
}

/// A name no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

pub fn client_config() -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap());
    config
}

pub async fn create_topic(name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = client_config().create().expect("admin client");
    let options = AdminOptions::new().operation_timeout(Some(TIMEOUT));
    let results = admin
        .create_topics(&[NewTopic::new(name, partitions, TopicReplication::Fixed(1))], &options)
        .await
        .expect("create topic request");
    for result in results {
        result.expect("topic created");
    }
}

/// Produces records directly, not through the gateway.
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
pub async fn produce_with_headers(topic: &str, value: &[u8], headers: &[(&str, &str)]) {
    let producer: FutureProducer = client_config().create().expect("producer");
    let headers = headers.iter().fold(OwnedHeaders::new(), |h, (k, v)| h.insert(Header { key: k, value: Some(*v) }));
    producer
        .send(FutureRecord::<(), _>::to(topic).payload(value).headers(headers), TIMEOUT)
        .await
        .expect("direct produce");
}

/// Reads records of `topic` from the beginning of every partition until `count` arrived or
/// TIMEOUT passed.
pub fn read_records(topic: &str, count: usize) -> Vec<OwnedMessage> {
    let consumer: BaseConsumer = client_config().set("group.id", unique("reader")).create().expect("consumer");
    let metadata = consumer.fetch_metadata(Some(topic), TIMEOUT).expect("metadata");
    let mut assignment = TopicPartitionList::new();
    for partition in metadata.topics()[0].partitions() {
        assignment.add_partition_offset(topic, partition.id(), Offset::Beginning).expect("partition");
    }
    consumer.assign(&assignment).expect("assign");
    let deadline = Instant::now() + TIMEOUT;
    let mut records = Vec::new();
    while records.len() < count && Instant::now() < deadline {
        if let Some(result) = consumer.poll(Duration::from_millis(200)) {
            records.push(result.expect("record").detach());
        }
    }
    records
}

/// How many records `topic` holds (sum of its partitions' high watermarks; no compaction here).
pub fn record_count(topic: &str) -> i64 {
    let consumer: BaseConsumer = client_config().create().expect("consumer");
    let metadata = consumer.fetch_metadata(Some(topic), TIMEOUT).expect("metadata");
    metadata.topics()[0]
        .partitions()
        .iter()
        .map(|p| consumer.fetch_watermarks(topic, p.id(), TIMEOUT).map(|(low, high)| high - low).expect("watermarks"))
        .sum()
}

/// The offset `group` committed for `topic`/`partition` (the next one it will read), if any.
pub fn committed_offset(group: &str, topic: &str, partition: i32) -> Option<i64> {
    let consumer: BaseConsumer = client_config().set("group.id", group).create().expect("consumer");
    let mut wanted = TopicPartitionList::new();
    wanted.add_partition(topic, partition);
    let committed = consumer.committed_offsets(wanted, TIMEOUT).expect("committed offsets");
    let element = committed.find_partition(topic, partition)?;
    match element.offset() {
        Offset::Offset(offset) => Some(offset),
        _ => None,
    }
}

/// Number of members the consumer group has right now (0 when it is empty or unknown).
pub fn group_members(group: &str) -> usize {
    let consumer: BaseConsumer = client_config().create().expect("consumer");
    let groups = consumer.fetch_group_list(Some(group), TIMEOUT).expect("group list");
    groups.groups().iter().find(|g| g.name() == group).map_or(0, |g| g.members().len())
}

/// Polls `condition` until it holds or TIMEOUT passes; returns whether it held.
pub async fn eventually(condition: impl FnMut() -> bool) -> bool {
    eventually_within(TIMEOUT, condition).await
}

/// Polls `condition` until it holds or `limit` passes; returns whether it held. For promises
/// with a deadline ("leaves its group within a second").
pub async fn eventually_within(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        let checked_at = Instant::now();
        if checked_at >= deadline {
            return false;
        }
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn payload(record: &OwnedMessage) -> String {
    String::from_utf8_lossy(record.payload().unwrap_or_default()).into_owned()
}
