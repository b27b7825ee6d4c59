//! http-get consumers kept in their group between one client's requests (DESIGN 4.4): a returning
//! client's GET resumes the parked consumer instead of joining the group again. A consumer parks
//! with everything it delivered committed and its fetch position rewound to just after that, so
//! resuming it is the same as a new member starting from the committed offsets, without the join.

use super::Stop;
use crate::cursor::Cursor;
use crate::report::Origin;
use crate::settings::ConsumerSettings;
use kafka_edge_message::{EndpointFailure, Message, Qos};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use tokio::sync::{mpsc, oneshot};

/// Which consumer a request may resume: the same API, resolved consumer configuration (and so
/// the same group) and QoS.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct WarmKey {
    pub(crate) api: String,
    pub(crate) settings: ConsumerSettings,
    pub(crate) qos: Qos,
}

/// What a parked consumer needs to serve a new request.
pub(crate) struct Resume {
    pub(crate) messages: mpsc::Sender<Result<Message, EndpointFailure>>,
    pub(crate) stop: oneshot::Receiver<Stop>,
    pub(crate) cursor: Option<Cursor>,
    pub(crate) origin: Origin,
    /// Answered once the consumer fetches again (its partitions resumed, the cursor applied).
    pub(crate) resumed: oneshot::Sender<()>,
}

/// The parked consumers of the gateway, each waiting for its key's next request.
pub(crate) struct WarmConsumers {
    parked: Mutex<HashMap<WarmKey, oneshot::Sender<Resume>>>,
    max: usize,
}

impl WarmConsumers {
    pub(crate) fn new(max: usize) -> Self {
        Self { parked: Mutex::new(HashMap::new()), max }
    }

    /// A place for a consumer to park under `key`, or `None` when the gateway keeps as many as it
    /// may or another consumer of the same key is parked already (that one stays).
    pub(crate) fn offer(&self, key: WarmKey) -> Option<oneshot::Receiver<Resume>> {
        let mut parked = self.parked.lock().unwrap_or_else(PoisonError::into_inner);
        // A consumer that left (its idle window ended, its group moved) drops its receiver.
        parked.retain(|_, resume| !resume.is_closed());
        if parked.len() >= self.max || parked.contains_key(&key) {
            return None;
        }
        let (resume, resumed) = oneshot::channel();
        parked.insert(key, resume);
        Some(resumed)
    }

    /// The parked consumer of `key`, if one is still waiting.
    pub(crate) fn take(&self, key: &WarmKey) -> Option<oneshot::Sender<Resume>> {
        let mut parked = self.parked.lock().unwrap_or_else(PoisonError::into_inner);
        parked.remove(key).filter(|resume| !resume.is_closed())
    }

    /// Closes every parked consumer of `api` (its definition changed, a credential was revoked).
    pub(crate) fn close_api(&self, api: &str) {
        self.parked.lock().unwrap_or_else(PoisonError::into_inner).retain(|key, _| key.api != api);
    }

    pub(crate) fn len(&self) -> usize {
        let parked = self.parked.lock().unwrap_or_else(PoisonError::into_inner);
        parked.values().filter(|resume| !resume.is_closed()).count()
    }
}
