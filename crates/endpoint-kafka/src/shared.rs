//! What every API of one gateway shares on the Kafka side: the producer pool, how consumers join
//! their groups, what was learnt about each cluster's group protocol, and the http-get consumers
//! kept warm between a client's requests.

use crate::producer::ProducerPool;
use crate::subscriber::{ConsumerSlots, FanOuts, WarmConsumers};
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// The consumer group protocol a subscription's consumer joins with (`--group-protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum GroupProtocol {
    /// `consumer` where the cluster supports it (learnt once per cluster), else `classic`.
    #[default]
    Auto,
    /// The join/sync protocol every Kafka broker speaks; a new group waits for the broker's
    /// `group.initial.rebalance.delay.ms` (3 s by default).
    Classic,
    /// KIP-848 (Kafka 4.0+): the broker assigns, and a new group does not wait.
    Consumer,
}

impl GroupProtocol {
    pub const ALLOWED: &'static str = "auto, classic, consumer";

    pub fn as_str(self) -> &'static str {
        match self {
            GroupProtocol::Auto => "auto",
            GroupProtocol::Classic => "classic",
            GroupProtocol::Consumer => "consumer",
        }
    }
}

impl fmt::Display for GroupProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GroupProtocol {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "auto" => Ok(GroupProtocol::Auto),
            "classic" => Ok(GroupProtocol::Classic),
            "consumer" => Ok(GroupProtocol::Consumer),
            other => Err(format!("unknown group protocol `{other}` (allowed: {})", Self::ALLOWED)),
        }
    }
}

/// How subscriptions' consumers behave, for the whole gateway.
#[derive(Debug, Clone)]
pub struct ConsumerOptions {
    pub group_protocol: GroupProtocol,
    /// How long an http-get consumer stays in its group after answering, for the same client's
    /// next GET; zero closes it with the response.
    pub keep_warm_for: Duration,
    /// Most consumers kept warm at once, over every API; past it a consumer closes as before.
    pub max_warm: usize,
    /// Most consumers of subscriptions at once, over every API (shared consumers not counted).
    pub max_consumers: usize,
    /// Most such consumers for one client address.
    pub max_consumers_per_address: usize,
}

impl ConsumerOptions {
    pub const DEFAULT_KEEP_WARM_FOR: Duration = Duration::from_secs(15);
    pub const DEFAULT_MAX_WARM: usize = 256;
    pub const DEFAULT_MAX_CONSUMERS: usize = 2000;
    pub const DEFAULT_MAX_CONSUMERS_PER_ADDRESS: usize = 100;
}

impl Default for ConsumerOptions {
    fn default() -> Self {
        Self {
            group_protocol: GroupProtocol::Auto,
            keep_warm_for: Self::DEFAULT_KEEP_WARM_FOR,
            max_warm: Self::DEFAULT_MAX_WARM,
            max_consumers: Self::DEFAULT_MAX_CONSUMERS,
            max_consumers_per_address: Self::DEFAULT_MAX_CONSUMERS_PER_ADDRESS,
        }
    }
}

/// The Kafka clients and choices every API of a gateway shares.
pub struct KafkaClients {
    pub producers: Arc<ProducerPool>,
    pub(crate) consumers: ConsumerOptions,
    pub(crate) protocols: LearntProtocols,
    pub(crate) warm: Arc<WarmConsumers>,
    pub(crate) fan_outs: Arc<FanOuts>,
    pub(crate) slots: Arc<ConsumerSlots>,
}

impl KafkaClients {
    pub fn new(producers: Arc<ProducerPool>, consumers: ConsumerOptions) -> Self {
        let warm = Arc::new(WarmConsumers::new(consumers.max_warm));
        let slots = ConsumerSlots::new(consumers.max_consumers, consumers.max_consumers_per_address);
        Self { producers, consumers, protocols: LearntProtocols::default(), warm, fan_outs: Default::default(), slots }
    }

    /// Consumers of subscriptions open right now, parked warm ones included (for metrics).
    pub fn consumers(&self) -> usize {
        self.slots.taken()
    }

    /// Records the live consumers of each API are behind, from their latest statistics.
    pub fn consumer_lag(&self) -> std::collections::BTreeMap<String, i64> {
        self.slots.lag_by_api()
    }

    /// Consumers kept warm right now (for metrics).
    pub fn warm_consumers(&self) -> usize {
        self.warm.len()
    }

    /// Streams served by shared consumers, and those consumers (for metrics).
    pub fn shared_streams(&self) -> (usize, usize) {
        self.fan_outs.counts()
    }
}

impl Default for KafkaClients {
    fn default() -> Self {
        Self::new(Arc::new(ProducerPool::new()), ConsumerOptions::default())
    }
}

impl fmt::Debug for KafkaClients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaClients").field("consumers", &self.consumers).finish_non_exhaustive()
    }
}

/// What a consumer joins with, for one cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Joining {
    Classic,
    Consumer,
    /// `auto` on a cluster not tried yet: join with `consumer`, and learn from the outcome.
    TryConsumer,
}

/// Which clusters (by bootstrap servers) were found to lack the consumer protocol, or to have it.
#[derive(Debug, Default)]
pub(crate) struct LearntProtocols(Mutex<HashMap<String, bool>>);

impl LearntProtocols {
    pub(crate) fn joining(&self, chosen: GroupProtocol, bootstrap_servers: &str) -> Joining {
        match chosen {
            GroupProtocol::Classic => Joining::Classic,
            GroupProtocol::Consumer => Joining::Consumer,
            GroupProtocol::Auto => match self.0.lock().unwrap_or_else(PoisonError::into_inner).get(bootstrap_servers) {
                Some(true) => Joining::Consumer,
                Some(false) => Joining::Classic,
                None => Joining::TryConsumer,
            },
        }
    }

    pub(crate) fn learn(&self, bootstrap_servers: &str, supports_consumer: bool) {
        let mut learnt = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if learnt.insert(bootstrap_servers.to_string(), supports_consumer).is_none() {
            let protocol = if supports_consumer { "consumer" } else { "classic" };
            tracing::info!(bootstrap_servers, protocol, "Consumer group protocol chosen for the cluster.");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_tries_the_consumer_protocol_until_the_cluster_answers() {
        let learnt = LearntProtocols::default();
        assert_eq!(learnt.joining(GroupProtocol::Auto, "a:9092"), Joining::TryConsumer);
        learnt.learn("a:9092", false);
        assert_eq!(learnt.joining(GroupProtocol::Auto, "a:9092"), Joining::Classic);
        assert_eq!(learnt.joining(GroupProtocol::Consumer, "a:9092"), Joining::Consumer, "a choice is kept");
        assert_eq!(learnt.joining(GroupProtocol::Auto, "b:9092"), Joining::TryConsumer);
        learnt.learn("b:9092", true);
        assert_eq!(learnt.joining(GroupProtocol::Auto, "b:9092"), Joining::Consumer);
    }

    #[test]
    fn protocols_parse_with_the_allowed_values_in_the_error() {
        assert_eq!("consumer".parse::<GroupProtocol>(), Ok(GroupProtocol::Consumer));
        let error = "kip848".parse::<GroupProtocol>().unwrap_err();
        assert!(error.contains("auto, classic, consumer"), "{error}");
    }
}
