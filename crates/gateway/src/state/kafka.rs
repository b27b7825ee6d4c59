//! `kafka://HOST:PORT/TOPIC`: the state shared by a fleet in a compacted topic (not in this build).

use super::{Cache, StateError, StateStore, Subscription};
use tokio::sync::watch;

pub struct KafkaStore {
    cache: Cache,
}

impl KafkaStore {
    pub async fn open(_bootstrap: &str, _topic: &str) -> Result<Self, StateError> {
        Err(StateError::Kafka("the kafka:// state store is not implemented by this build; use file:PATH".into()))
    }
}

#[async_trait::async_trait]
impl StateStore for KafkaStore {
    fn list(&self) -> Vec<Subscription> {
        self.cache.list()
    }

    fn get(&self, api: &str, id: &str) -> Option<Subscription> {
        self.cache.get(api, id)
    }

    async fn put(&self, _subscription: Subscription) -> Result<(), StateError> {
        Err(StateError::Kafka("not implemented".into()))
    }

    async fn delete(&self, _api: &str, _id: &str) -> Result<bool, StateError> {
        Err(StateError::Kafka("not implemented".into()))
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.cache.changes()
    }
}
