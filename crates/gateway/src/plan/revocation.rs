//! Ends the open streams (SSE, WebSocket) of a credential once it is revoked: one cancellation
//! token per state record in use, cancelled when the record leaves the state (by this gateway's
//! admin API or, with a shared state, another gateway's). The endpoints that keep http-get
//! consumers warm for a credential's clients let them go at the same moment.

use crate::state::StateStore;
use kafka_edge_message::Endpoint;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use tokio_util::sync::CancellationToken;

#[derive(Default)]
pub struct Revocations {
    /// By state key; an entry lives as long as its record.
    tokens: Mutex<HashMap<String, CancellationToken>>,
    /// By state key: the endpoint that may keep a consumer warm for the credential's client.
    warm: Mutex<HashMap<String, Arc<dyn Endpoint>>>,
}

impl Revocations {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, CancellationToken>> {
        self.tokens.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The token cancelled when the record under `key` is removed (already cancelled when it is
    /// gone by now: a revocation between the check and this call still ends the stream).
    pub fn token(&self, key: &str, store: &dyn StateStore) -> CancellationToken {
        let token = self.lock().entry(key.to_owned()).or_default().clone();
        if store.record(key).is_none() {
            token.cancel();
            self.lock().remove(key);
        }
        token
    }

    /// When the record under `key` is removed, `endpoint` closes what it keeps warm.
    pub fn release_on_revoke(&self, key: &str, endpoint: &Arc<dyn Endpoint>) {
        let mut warm = self.warm.lock().unwrap_or_else(PoisonError::into_inner);
        if !warm.contains_key(key) {
            warm.insert(key.to_owned(), endpoint.clone());
        }
    }

    /// Follows the state until `shutdown`, cancelling the tokens of removed records.
    pub async fn follow(self: Arc<Self>, store: Arc<dyn StateStore>, shutdown: CancellationToken) {
        let mut changes = store.changes();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                changed = changes.changed() => if changed.is_err() { return },
            }
            self.lock().retain(|key, token| {
                let present = store.record(key).is_some();
                if !present {
                    token.cancel();
                }
                present
            });
            self.warm.lock().unwrap_or_else(PoisonError::into_inner).retain(|key, endpoint| {
                let present = store.record(key).is_some();
                if !present {
                    endpoint.close_idle();
                }
                present
            });
        }
    }
}
