//! Per-consumer accounting: the slot each consumer of a subscription holds, and the lag it last
//! reported.
//!
//! Consumers are the expensive resource (each about 4 threads, half a MiB and a member of a group
//! on the broker), and any key-less client can ask for new ones by sending new client
//! identifiers. A slot is taken for each consumer a subscription creates, over the process and
//! per client address, and given back when the consumer is closed (a parked warm consumer keeps
//! its slot). Shared consumers take none.

use crate::client::{LagSink, STATISTICS_INTERVAL_MS};
use kafka_edge_message::{EndpointFailure, FailureKind};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A lag report older than this is from a consumer that is gone (three missed reports).
const LAG_REPORT_EXPIRY: Duration = Duration::from_millis(3 * STATISTICS_INTERVAL_MS as u64);

#[derive(Default)]
struct Taken {
    total: usize,
    by_address: HashMap<String, usize>,
}

/// The slots of one gateway.
pub(crate) struct ConsumerSlots {
    max_total: usize,
    max_per_address: usize,
    taken: Mutex<Taken>,
    /// Client id → the API and lag its consumer last reported, and when.
    lags: Mutex<HashMap<String, (String, i64, Instant)>>,
}

/// One consumer's slot, given back when dropped.
pub(crate) struct Slot {
    slots: Arc<ConsumerSlots>,
    address: String,
    /// The consumer whose lag is reported, once known.
    client_id: Option<String>,
}

impl ConsumerSlots {
    pub(crate) fn new(max_total: usize, max_per_address: usize) -> Arc<Self> {
        Arc::new(Self { max_total, max_per_address, taken: Mutex::default(), lags: Mutex::default() })
    }

    /// A slot for a new consumer of the client at `address`, or the failure that says which limit
    /// is reached. An empty address (a webhook subscription, which an operator created) counts
    /// toward the process's limit only.
    pub(crate) fn take(self: &Arc<Self>, address: &str) -> Result<Slot, EndpointFailure> {
        let mut taken = self.taken.lock().unwrap_or_else(PoisonError::into_inner);
        if taken.total >= self.max_total {
            return Err(EndpointFailure::new(
                FailureKind::Overloaded,
                format!(
                    "Too many consumers: the gateway holds {} (its --max-consumers); try again later",
                    self.max_total
                ),
            ));
        }
        let of_address = taken.by_address.get(address).copied().unwrap_or(0);
        if !address.is_empty() && of_address >= self.max_per_address {
            return Err(EndpointFailure::new(
                FailureKind::Overloaded,
                format!(
                    "Too many consumers for one client address: {} are open (the gateway's \
                     --max-consumers-per-address); close some or try again later",
                    self.max_per_address
                ),
            ));
        }
        taken.total += 1;
        *taken.by_address.entry(address.to_owned()).or_default() += 1;
        Ok(Slot { slots: self.clone(), address: address.to_owned(), client_id: None })
    }

    /// The lag of every live consumer, summed by API.
    pub(crate) fn lag_by_api(&self) -> BTreeMap<String, i64> {
        let lags = self.lags.lock().unwrap_or_else(PoisonError::into_inner);
        let mut by_api = BTreeMap::new();
        for (api, lag, at) in lags.values() {
            if at.elapsed() < LAG_REPORT_EXPIRY {
                *by_api.entry(api.clone()).or_default() += lag;
            }
        }
        by_api
    }

    /// Consumers holding a slot now.
    pub(crate) fn taken(&self) -> usize {
        self.taken.lock().unwrap_or_else(PoisonError::into_inner).total
    }
}

impl Slot {
    /// Where the consumer `client_id` of `api` reports its lag, until this slot is given back.
    pub(crate) fn lag_sink(&mut self, client_id: &str, api: &str) -> LagSink {
        self.client_id = Some(client_id.to_owned());
        let (slots, client_id, api) = (self.slots.clone(), client_id.to_owned(), api.to_owned());
        Box::new(move |lag| {
            let mut lags = slots.lags.lock().unwrap_or_else(PoisonError::into_inner);
            lags.insert(client_id.clone(), (api.clone(), lag, Instant::now()));
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(client_id) = &self.client_id {
            self.slots.lags.lock().unwrap_or_else(PoisonError::into_inner).remove(client_id);
        }
        let mut taken = self.slots.taken.lock().unwrap_or_else(PoisonError::into_inner);
        taken.total = taken.total.saturating_sub(1);
        if let Some(count) = taken.by_address.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                taken.by_address.remove(&self.address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_apply_over_the_process_and_per_address_and_slots_come_back() {
        let slots = ConsumerSlots::new(3, 2);
        let first = slots.take("10.0.0.1").expect("first");
        let _second = slots.take("10.0.0.1").expect("second");
        let refused = slots.take("10.0.0.1").err().expect("third of one address");
        assert_eq!(refused.kind, FailureKind::Overloaded);
        assert!(refused.message.contains("--max-consumers-per-address"), "{}", refused.message);
        let _other = slots.take("10.0.0.2").expect("another address");
        let refused = slots.take("10.0.0.3").err().expect("fourth over the process");
        assert!(refused.message.contains("--max-consumers)"), "{}", refused.message);
        drop(first);
        assert_eq!(slots.taken(), 2);
        slots.take("10.0.0.1").expect("a slot given back is free again");
        drop(_other);
        let webhooks: Vec<Slot> =
            (0..2).map(|_| slots.take("").expect("webhooks count toward the total only")).collect();
        assert_eq!(slots.taken(), 3);
        drop(webhooks);
    }
}
