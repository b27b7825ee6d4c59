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

/// How many members `group` has, whichever group protocol it uses (classic or KIP-848's
/// consumer protocol, which the older DescribeGroups request does not show).
pub fn group_members(group: &str) -> usize {
    group_member_clients(group).len()
}

/// The `client.id` of each member of `group` (kafka-edge names each consumer it creates).
pub fn group_member_clients(group: &str) -> Vec<String> {
    let admin: AdminClient<DefaultClientContext> = client_config().create().expect("admin client");
    describe_group_members(&admin, group).unwrap_or_else(|error| panic!("describing group {group}: {error}"))
}

/// librdkafka's DescribeConsumerGroups (ConsumerGroupDescribe for consumer-protocol groups,
/// DescribeGroups for classic ones), which rust-rdkafka does not wrap.
fn describe_group_members(admin: &AdminClient<DefaultClientContext>, group: &str) -> Result<Vec<String>, String> {
    use rdkafka::bindings as rd;
    use std::ffi::{CStr, CString};
    let group_id = CString::new(group).map_err(|e| e.to_string())?;
    let rk = admin.inner().native_ptr();
    // SAFETY: every pointer comes from librdkafka for this client and is used before the event
    // that owns it is destroyed; the queue, options and event are destroyed exactly once.
    unsafe {
        let queue = rd::rd_kafka_queue_new(rk);
        let options =
            rd::rd_kafka_AdminOptions_new(rk, rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS);
        let mut groups = [group_id.as_ptr()];
        rd::rd_kafka_DescribeConsumerGroups(rk, groups.as_mut_ptr(), 1, options, queue);
        let event = rd::rd_kafka_queue_poll(queue, TIMEOUT.as_millis() as i32);
        let outcome = if event.is_null() {
            Err("no answer".to_string())
        } else if rd::rd_kafka_event_error(event) != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            Err(CStr::from_ptr(rd::rd_kafka_event_error_string(event)).to_string_lossy().into_owned())
        } else {
            let result = rd::rd_kafka_event_DescribeConsumerGroups_result(event);
            let mut count = 0;
            let descriptions = rd::rd_kafka_DescribeConsumerGroups_result_groups(result, &mut count);
            let mut clients = Vec::new();
            for index in 0..count {
                let description = *descriptions.add(index);
                // A group that does not exist (any more) is described with an error: no members.
                if !rd::rd_kafka_ConsumerGroupDescription_error(description).is_null() {
                    continue;
                }
                for member in 0..rd::rd_kafka_ConsumerGroupDescription_member_count(description) {
                    let member = rd::rd_kafka_ConsumerGroupDescription_member(description, member);
                    let client = rd::rd_kafka_MemberDescription_client_id(member);
                    clients.push(CStr::from_ptr(client).to_string_lossy().into_owned());
                }
            }
            Ok(clients)
        };
        if !event.is_null() {
            rd::rd_kafka_event_destroy(event);
        }
        rd::rd_kafka_AdminOptions_destroy(options);
        rd::rd_kafka_queue_destroy(queue);
        outcome
    }
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

/// A broker of its own (own state directory and loopback ports), for tests that need a broker
/// configured unlike the shared test bed's; stopped and deleted when dropped.
pub struct PrivateBroker {
    env: Vec<(&'static str, String)>,
    bootstrap: String,
}

impl PrivateBroker {
    /// Starts it with these extra `server.properties` lines (`name=value`, space-separated),
    /// which win over the test bed's defaults. Blocking: takes the broker's start time.
    pub fn start(properties: &str) -> Self {
        let ports: Vec<u16> = (0..5)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("free port"))
            .collect::<Vec<_>>()
            .iter()
            .map(|listener| listener.local_addr().expect("address").port())
            .collect();
        let dir = std::env::temp_dir().join(unique("kafka-edge-private-broker"));
        let env = vec![
            ("KAFKA_EDGE_TESTKIT_DIR", dir.display().to_string()),
            ("KAFKA_EDGE_TESTKIT_PLAINTEXT_PORT", ports[0].to_string()),
            ("KAFKA_EDGE_TESTKIT_CONTROLLER_PORT", ports[1].to_string()),
            ("KAFKA_EDGE_TESTKIT_SASL_PLAINTEXT_PORT", ports[2].to_string()),
            ("KAFKA_EDGE_TESTKIT_SSL_PORT", ports[3].to_string()),
            ("KAFKA_EDGE_TESTKIT_SASL_SSL_PORT", ports[4].to_string()),
            ("KAFKA_EDGE_TESTKIT_BROKER_PROPERTIES", properties.to_string()),
        ];
        let broker = Self { env, bootstrap: format!("127.0.0.1:{}", ports[0]) };
        let started = broker.testkit("up");
        assert!(started.status.success(), "private broker did not start: {}", String::from_utf8_lossy(&started.stderr));
        broker
    }

    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    fn testkit(&self, command: &str) -> std::process::Output {
        std::process::Command::new(testkit_script())
            .arg(command)
            .envs(self.env.iter().map(|(name, value)| (*name, value)))
            .output()
            .expect("testkit/kafka runs")
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        let _ = self.testkit("down");
    }
}
