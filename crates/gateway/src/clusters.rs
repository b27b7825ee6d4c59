//! What `/ready` says of each API's Kafka cluster (docs/operations.md#ready): whether it answered
//! last time it was asked, and when. Learnt from the producer created at start and from requests
//! (crate::metered); nothing probes the cluster on its own, so an idle API keeps what was last
//! seen.

use kafka_edge_message::{EndpointFailure, FailureKind};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

#[derive(Default)]
struct Seen {
    success: Option<SystemTime>,
    failure: Option<(SystemTime, &'static str, String)>,
}

impl Seen {
    /// `None` until the cluster was asked; then whether the latest answer was a success.
    fn reachable(&self) -> Option<bool> {
        match (&self.success, &self.failure) {
            (None, None) => None,
            (Some(_), None) => Some(true),
            (None, Some(_)) => Some(false),
            (Some(success), Some((failure, _, _))) => Some(success >= failure),
        }
    }
}

/// API id → what was last seen of its cluster.
#[derive(Default)]
pub struct Clusters(Mutex<BTreeMap<Arc<str>, Seen>>);

/// Failures that say the cluster cannot be used (not those of one request or one client).
fn is_cluster_failure(kind: FailureKind) -> bool {
    matches!(
        kind,
        FailureKind::ConfigurationInvalid
            | FailureKind::ConnectionClosed
            | FailureKind::TimedOut
            | FailureKind::Unknown
    )
}

impl Clusters {
    /// The cluster of `api` answered.
    pub fn answered(&self, api: &Arc<str>) {
        let mut seen = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match seen.get_mut(api) {
            Some(seen) => seen.success = Some(SystemTime::now()),
            None => {
                seen.insert(api.clone(), Seen { success: Some(SystemTime::now()), failure: None });
            }
        }
    }

    /// A request of `api` failed; recorded when the failure is the cluster's.
    pub fn failed(&self, api: &Arc<str>, failure: &EndpointFailure) {
        if !is_cluster_failure(failure.kind) {
            return;
        }
        let mut seen = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = seen.entry(api.clone()).or_default();
        entry.failure = Some((SystemTime::now(), failure.kind.key(), failure.message.clone()));
    }

    /// `/ready`'s `clusters` object for these APIs, and whether any is known unreachable.
    pub fn report<'a>(&self, apis: impl Iterator<Item = &'a str>) -> (Value, bool) {
        let seen = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let mut report = serde_json::Map::new();
        let mut any_unreachable = false;
        let unknown = Seen::default();
        for api in apis {
            let status = seen.get(api).unwrap_or(&unknown);
            let reachable = status.reachable();
            any_unreachable |= reachable == Some(false);
            let failure = status
                .failure
                .as_ref()
                .map(|(at, key, message)| json!({"at": rfc3339(*at), "key": key, "message": message}));
            report.insert(
                api.to_owned(),
                json!({"reachable": reachable, "lastSuccess": status.success.map(rfc3339), "lastFailure": failure}),
            );
        }
        (Value::Object(report), any_unreachable)
    }
}

fn rfc3339(at: SystemTime) -> String {
    let at: time::OffsetDateTime = at.into();
    at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_answer_decides_and_request_failures_do_not_count() {
        let clusters = Clusters::default();
        let api: Arc<str> = Arc::from("orders");
        let (report, unreachable) = clusters.report(["orders"].into_iter());
        assert_eq!(report["orders"]["reachable"], Value::Null);
        assert!(!unreachable);
        clusters.failed(&api, &EndpointFailure::bad_request("a malformed cursor"));
        assert_eq!(clusters.report(["orders"].into_iter()).0["orders"]["reachable"], Value::Null);
        clusters.failed(&api, &EndpointFailure::configuration_invalid("no Kafka broker answered"));
        let (report, unreachable) = clusters.report(["orders"].into_iter());
        assert_eq!(report["orders"]["reachable"], false);
        assert_eq!(report["orders"]["lastFailure"]["key"], "FAILURE_ENDPOINT_CONFIGURATION_INVALID");
        assert!(unreachable);
        clusters.answered(&api);
        let (report, unreachable) = clusters.report(["orders"].into_iter());
        assert_eq!(report["orders"]["reachable"], true, "{report}");
        assert!(report["orders"]["lastSuccess"].as_str().is_some_and(|at| at.ends_with('Z')), "{report}");
        assert!(!unreachable);
    }
}
