//! What a subscription's consumer does when its group moves partitions. Runs on librdkafka's
//! polling thread (through the client's callbacks), so it only applies positions, commits
//! synchronously on revoke (what was acknowledged is committed before another member takes over)
//! and records the lifecycle.

use super::lifecycle::{Lifecycle, Phase};
use crate::client::Callbacks;
use crate::cursor::Cursor;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, RebalanceProtocol};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use std::sync::{Arc, Mutex};

pub(crate) struct Rebalance {
    pub(crate) lifecycle: Arc<Lifecycle>,
    /// Cursor positions not applied yet: each applies on the first assignment of its partition,
    /// which may come in a later rebalance than the others'.
    pending_cursor: Mutex<Option<Cursor>>,
    commit_on_revoke: bool,
}

impl Rebalance {
    pub(crate) fn new(lifecycle: Arc<Lifecycle>, cursor: Option<Cursor>, commit_on_revoke: bool) -> Self {
        Self { lifecycle, pending_cursor: Mutex::new(cursor), commit_on_revoke }
    }

    pub(crate) fn apply(
        &self,
        client_id: &str,
        consumer: &BaseConsumer<Callbacks>,
        event: RDKafkaRespErr,
        partitions: &mut TopicPartitionList,
    ) {
        match event {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.apply_cursor(partitions);
                self.lifecycle.advance(Phase::Assigned);
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.lifecycle.revoked();
                if self.commit_on_revoke {
                    let _ = consumer.commit_consumer_state(CommitMode::Sync);
                }
            }
            _ => {}
        }
        Self::assign_as_told(client_id, consumer, event, partitions);
        self.lifecycle.rebalanced();
    }

    /// Where a resumed consumer's client asked to continue, for the partitions it is not assigned
    /// now (the assigned ones are sought at once).
    pub(crate) fn set_pending_cursor(&self, cursor: Option<Cursor>) {
        if let Ok(mut pending) = self.pending_cursor.lock() {
            *pending = cursor;
        }
    }

    /// Takes the assignment or revocation as the group decided it (eager or cooperative).
    pub(crate) fn assign_as_told(
        client_id: &str,
        consumer: &BaseConsumer<Callbacks>,
        event: RDKafkaRespErr,
        partitions: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(consumer.rebalance_protocol(), RebalanceProtocol::Cooperative);
        let result = match event {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                tracing::debug!(%client_id, assigned = partitions.count(), "Partitions assigned.");
                if cooperative {
                    consumer.incremental_assign(partitions)
                } else {
                    consumer.assign(partitions)
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                if cooperative {
                    consumer.incremental_unassign(partitions)
                } else {
                    consumer.unassign()
                }
            }
            other => {
                tracing::warn!(%client_id, error = ?other, "Rebalance failed.");
                consumer.unassign()
            }
        };
        if let Err(error) = result {
            tracing::warn!(%client_id, %error, "Applying a rebalance failed.");
        }
    }

    fn apply_cursor(&self, partitions: &mut TopicPartitionList) {
        let Ok(mut pending) = self.pending_cursor.lock() else { return };
        let Some(cursor) = pending.as_mut() else { return };
        let assigned: Vec<(String, i32)> =
            partitions.elements().iter().map(|element| (element.topic().to_string(), element.partition())).collect();
        for (topic, partition) in assigned {
            if let Some(offset) = cursor.resume_offset(&topic, partition) {
                if partitions.set_partition_offset(&topic, partition, Offset::Offset(offset)).is_ok() {
                    if let Some(positions) = cursor.positions.get_mut(&topic) {
                        positions.remove(&partition);
                    }
                }
            }
        }
    }
}
