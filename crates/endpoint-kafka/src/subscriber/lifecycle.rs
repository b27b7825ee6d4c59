//! Where a subscription's consumer is in its life, as one value both sides read: the task that
//! pumps records and the rebalance callback on librdkafka's polling thread.
//!
//! ```text
//! created → subscribed → assigned ⇄ consuming → closing → closed
//!                           ↘ idle ↗ (kept warm between requests: no fetch, still in its group)
//! ```
//!
//! A consumer that was ever assigned partitions or received a record has reached its cluster:
//! losing it afterwards is a closed connection, not a bad configuration (DESIGN 4.6).

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub(crate) enum Phase {
    /// The client exists; it has not asked for topics yet.
    Created = 0,
    /// Subscribed to its topics; waiting for the group to assign partitions.
    Subscribed = 1,
    /// Partitions assigned (cursor positions applied); nothing received yet.
    Assigned = 2,
    /// Records flow to the entrypoint.
    Consuming = 3,
    /// Parked between requests with its assignment kept, fetching nothing.
    Idle = 4,
    /// The final commit and the group leave are under way.
    Closing = 5,
    /// Left its group; the client is gone.
    Closed = 6,
}

impl Phase {
    fn from_u8(value: u8) -> Phase {
        match value {
            0 => Phase::Created,
            1 => Phase::Subscribed,
            2 => Phase::Assigned,
            3 => Phase::Consuming,
            4 => Phase::Idle,
            5 => Phase::Closing,
            _ => Phase::Closed,
        }
    }

    /// The moves the diagram allows; anything else is a bug, and is ignored.
    fn may_move_to(self, next: Phase) -> bool {
        use Phase::*;
        matches!(
            (self, next),
            (Created, Subscribed)
                | (Subscribed, Assigned)
                // A record can be the first sign of an assignment (incremental assignment).
                | (Subscribed | Assigned, Consuming)
                // A rebalance assigns again while consuming or parked.
                | (Consuming | Idle, Assigned)
                | (Assigned | Consuming, Idle)
                | (Idle, Consuming)
                | (Created | Subscribed | Assigned | Consuming | Idle, Closing)
                | (Closing, Closed)
        )
    }
}

/// The phase of one consumer; moves only along the diagram. Also counts the group's rebalances,
/// for whoever waits for one: a parked consumer leaves at the first, and `auto` learns from the
/// first assignment that the cluster speaks the consumer protocol.
#[derive(Debug)]
pub(crate) struct Lifecycle {
    phase: AtomicU8,
    rebalances: watch::Sender<u64>,
    revocations: AtomicU64,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self {
            phase: AtomicU8::new(Phase::Created as u8),
            rebalances: watch::Sender::new(0),
            revocations: AtomicU64::new(0),
        }
    }
}

impl Lifecycle {
    pub(crate) fn phase(&self) -> Phase {
        Phase::from_u8(self.phase.load(Ordering::Acquire))
    }

    /// The group assigned or revoked partitions (called on librdkafka's polling thread).
    pub(crate) fn rebalanced(&self) {
        self.rebalances.send_modify(|count| *count = count.wrapping_add(1));
    }

    /// The group took partitions away (called on librdkafka's polling thread).
    pub(crate) fn revoked(&self) {
        self.revocations.fetch_add(1, Ordering::AcqRel);
    }

    /// How many times the group took partitions away: what a consumer knows of its partitions'
    /// positions holds only while this does not change.
    pub(crate) fn revocations(&self) -> u64 {
        self.revocations.load(Ordering::Acquire)
    }

    /// Sees the rebalances from now on.
    pub(crate) fn rebalances(&self) -> watch::Receiver<u64> {
        self.rebalances.subscribe()
    }

    /// Moves to `next` when the diagram allows it from the current phase; returns whether it did.
    pub(crate) fn advance(&self, next: Phase) -> bool {
        self.phase
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |current| {
                Phase::from_u8(current).may_move_to(next).then_some(next as u8)
            })
            .is_ok()
    }

    /// Whether the cluster answered this live consumer with an assignment or a record (errors
    /// are not classified once it is closing).
    pub(crate) fn reached_cluster(&self) -> bool {
        matches!(self.phase(), Phase::Assigned | Phase::Consuming | Phase::Idle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_consumer_moves_forward_through_its_life() {
        let lifecycle = Lifecycle::default();
        assert!(!lifecycle.reached_cluster());
        assert!(lifecycle.advance(Phase::Subscribed));
        assert!(lifecycle.advance(Phase::Assigned));
        assert!(lifecycle.reached_cluster());
        assert!(lifecycle.advance(Phase::Consuming));
        assert!(lifecycle.advance(Phase::Assigned), "a rebalance assigns again");
        assert!(lifecycle.advance(Phase::Consuming));
        assert!(lifecycle.advance(Phase::Closing));
        assert!(!lifecycle.advance(Phase::Consuming), "nothing is consumed once closing");
        assert!(lifecycle.advance(Phase::Closed));
        assert_eq!(lifecycle.phase(), Phase::Closed);
    }

    #[test]
    fn a_warm_consumer_parks_and_resumes() {
        let lifecycle = Lifecycle::default();
        for phase in [Phase::Subscribed, Phase::Assigned, Phase::Consuming, Phase::Idle, Phase::Consuming] {
            assert!(lifecycle.advance(phase), "to {phase:?}");
        }
        assert!(lifecycle.advance(Phase::Idle));
        assert!(lifecycle.advance(Phase::Closing));
    }

    #[test]
    fn moves_the_diagram_does_not_allow_are_refused() {
        let lifecycle = Lifecycle::default();
        assert!(!lifecycle.advance(Phase::Consuming), "not subscribed yet");
        assert!(!lifecycle.advance(Phase::Closed), "closed only after closing");
        assert_eq!(lifecycle.phase(), Phase::Created);
    }
}
