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
use std::path::{Path, PathBuf};
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
    create_topic_on(&bootstrap(), name, partitions).await;
}

/// Creates a topic on the cluster at `bootstrap` (a private broker).
pub async fn create_topic_on(bootstrap: &str, name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", bootstrap).create().expect("admin client");
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

/// Every value `topic` holds on the cluster at `bootstrap`, partition by partition, read up to
/// the high watermarks of the moment.
pub fn values_on(bootstrap: &str, topic: &str) -> Vec<String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique("reader"))
        .set("enable.partition.eof", "false")
        .create()
        .expect("consumer");
    let metadata = consumer.fetch_metadata(Some(topic), TIMEOUT).expect("metadata");
    let mut values = Vec::new();
    for partition in metadata.topics()[0].partitions() {
        let (low, high) = consumer.fetch_watermarks(topic, partition.id(), TIMEOUT).expect("watermarks");
        if high <= low {
            continue;
        }
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition_offset(topic, partition.id(), Offset::Offset(low)).expect("partition");
        consumer.assign(&assignment).expect("assign");
        let deadline = Instant::now() + TIMEOUT;
        let mut next = low;
        while next < high && Instant::now() < deadline {
            if let Some(result) = consumer.poll(Duration::from_millis(200)) {
                let record = result.expect("record");
                next = record.offset() + 1;
                values.push(String::from_utf8_lossy(record.payload().unwrap_or_default()).into_owned());
            }
        }
        assert!(next >= high, "read {topic}[{}] up to {next} of {high} in time", partition.id());
    }
    values
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

/// A record's headers as (name, value) text, in order; none when it has no headers.
pub fn headers(record: &OwnedMessage) -> Vec<(String, String)> {
    use rdkafka::message::Headers as _;
    record.headers().map_or_else(Vec::new, |headers| {
        headers
            .iter()
            .map(|h| (h.key.to_string(), String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned()))
            .collect()
    })
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
    ///
    /// Its ports are free ones picked just before the start: another broker of this process
    /// starting at the same time could pick a port freed in between, so starts take turns, and a
    /// start that fails (a port taken meanwhile by any socket) is tried again on new ports.
    pub fn start(properties: &str) -> Self {
        Self::start_with(properties, "", None)
    }

    /// As `start`, with these extra JVM flags for the broker (space-separated).
    pub fn start_with_jvm_flags(properties: &str, jvm_flags: &str) -> Self {
        Self::start_with(properties, jvm_flags, None)
    }

    /// As `start`, with a GSSAPI listener whose broker principal and keytab come from `kdc`
    /// (`gssapi_bootstrap`).
    pub fn start_with_kerberos(kdc: &Kdc) -> Self {
        Self::start_with("", "", Some(kdc))
    }

    fn start_with(properties: &str, jvm_flags: &str, kdc: Option<&Kdc>) -> Self {
        static STARTING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _turn = STARTING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut failures = Vec::new();
        for _ in 0..3 {
            let broker = Self::on_free_ports(properties, jvm_flags, kdc);
            let started = broker.testkit("up");
            if started.status.success() {
                return broker;
            }
            failures.push(String::from_utf8_lossy(&started.stderr).into_owned());
        }
        panic!("private broker did not start in 3 tries: {}", failures.join("\n---\n"));
    }

    fn on_free_ports(properties: &str, jvm_flags: &str, kdc: Option<&Kdc>) -> Self {
        let ports: Vec<u16> = (0..6)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("free port"))
            .collect::<Vec<_>>()
            .iter()
            .map(|listener| listener.local_addr().expect("address").port())
            .collect();
        let dir = std::env::temp_dir().join(unique("kafka-edge-private-broker"));
        let mut env = vec![
            ("KAFKA_EDGE_TESTKIT_DIR", dir.display().to_string()),
            ("KAFKA_EDGE_TESTKIT_PLAINTEXT_PORT", ports[0].to_string()),
            ("KAFKA_EDGE_TESTKIT_CONTROLLER_PORT", ports[1].to_string()),
            ("KAFKA_EDGE_TESTKIT_SASL_PLAINTEXT_PORT", ports[2].to_string()),
            ("KAFKA_EDGE_TESTKIT_SSL_PORT", ports[3].to_string()),
            ("KAFKA_EDGE_TESTKIT_SASL_SSL_PORT", ports[4].to_string()),
            ("KAFKA_EDGE_TESTKIT_BROKER_PROPERTIES", properties.to_string()),
            ("KAFKA_EDGE_TESTKIT_BROKER_JVM_OPTS", jvm_flags.to_string()),
        ];
        if let Some(kdc) = kdc {
            env.push(("KAFKA_EDGE_TESTKIT_GSSAPI_PORT", ports[5].to_string()));
            env.push(("KAFKA_EDGE_TESTKIT_KDC_DIR", kdc.dir().display().to_string()));
        }
        Self { env, bootstrap: format!("127.0.0.1:{}", ports[0]) }
    }

    /// `127.0.0.1:PORT` of the SASL_PLAINTEXT listener.
    pub fn sasl_plaintext_bootstrap(&self) -> String {
        let port = self.env.iter().find(|(name, _)| *name == "KAFKA_EDGE_TESTKIT_SASL_PLAINTEXT_PORT");
        format!("127.0.0.1:{}", port.map(|(_, port)| port.as_str()).unwrap_or_default())
    }

    /// `localhost:PORT` of the GSSAPI listener (`start_with_kerberos`): a Kerberos client asks
    /// for the ticket of `kafka/<host>`, and the broker's principal is `kafka/localhost`.
    pub fn gssapi_bootstrap(&self) -> Option<String> {
        let (_, port) = self.env.iter().find(|(name, _)| *name == "KAFKA_EDGE_TESTKIT_GSSAPI_PORT")?;
        Some(format!("localhost:{port}"))
    }

    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// Stops the broker (SIGTERM, as an operator would), keeping its data.
    pub fn stop(&self) {
        let stopped = self.testkit("stop");
        assert!(stopped.status.success(), "private broker did not stop: {}", String::from_utf8_lossy(&stopped.stderr));
    }

    /// Starts it again on the data `stop` kept, same ports. Blocking: takes the broker's start time.
    pub fn start_again(&self) {
        let started = self.testkit("start");
        assert!(started.status.success(), "private broker did not start: {}", String::from_utf8_lossy(&started.stderr));
    }

    /// Freezes the broker's process (SIGSTOP): connections stay open and nothing answers.
    pub fn hang(&self) {
        assert!(self.signal("-STOP"), "the private broker could not be frozen");
    }

    /// Lets a frozen broker run on (SIGCONT).
    pub fn resume(&self) {
        assert!(self.signal("-CONT"), "the private broker could not be resumed");
    }

    /// Sends `signal` to the broker's process; false when it is not running.
    fn signal(&self, signal: &str) -> bool {
        let Some((_, dir)) = self.env.iter().find(|(name, _)| *name == "KAFKA_EDGE_TESTKIT_DIR") else { return false };
        let Ok(pid) = std::fs::read_to_string(std::path::Path::new(dir).join("kafka.pid")) else { return false };
        let status = std::process::Command::new("kill").args([signal, pid.trim()]).status();
        status.is_ok_and(|status| status.success())
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
        // A test that failed while the broker was frozen must not leave it to the SIGKILL timeout.
        self.signal("-CONT");
        let _ = self.testkit("down");
    }
}

/// A Kerberos realm of its own (testkit/kdc) on a free loopback port, in a directory of its own,
/// with the principals `kafka/localhost` (the broker), `edge-a` and `edge-b`, each with a keytab.
/// Stopped and deleted when dropped.
pub struct Kdc {
    dir: PathBuf,
    port: u16,
}

impl Kdc {
    /// The realm's name.
    pub const REALM: &'static str = "KAFKA-EDGE.TEST";

    /// Creates the realm and starts its KDC. Blocking.
    pub fn start() -> Self {
        let mut failures = Vec::new();
        for _ in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("address");
            let kdc = Self { dir: std::env::temp_dir().join(unique("kafka-edge-kdc")), port: port.port() };
            let started = kdc.script("up");
            if started.status.success() {
                return kdc;
            }
            failures.push(String::from_utf8_lossy(&started.stderr).into_owned());
        }
        panic!("the KDC did not start in 3 tries: {}", failures.join("\n---\n"));
    }

    /// Its state directory: `krb5.conf`, the keytabs, `kdc.log`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The `krb5.conf` a client of the realm needs (`KRB5_CONFIG`).
    pub fn krb5_conf(&self) -> PathBuf {
        self.dir.join("krb5.conf")
    }

    /// The keytab of `edge-a` or `edge-b`.
    pub fn keytab(&self, user: &str) -> PathBuf {
        self.dir.join(format!("{user}.keytab"))
    }

    /// `user@KAFKA-EDGE.TEST`.
    pub fn principal(user: &str) -> String {
        format!("{user}@{}", Self::REALM)
    }

    fn script(&self, command: &str) -> std::process::Output {
        let script = testkit_script().with_file_name("kdc");
        std::process::Command::new(script)
            .arg(command)
            .env("KAFKA_EDGE_KDC_DIR", &self.dir)
            .env("KAFKA_EDGE_KDC_PORT", self.port.to_string())
            .output()
            .expect("testkit/kdc runs")
    }
}

impl Drop for Kdc {
    fn drop(&mut self) {
        let _ = self.script("down");
    }
}
