//! The APIs being served, swapped as a whole by a reload (docs/operations.md#reload). Each request
//! reads the table once, so it is served by one version from start to end; a version that a
//! reload replaced or removed keeps its open streams for a grace period, then ends them as a
//! shutdown would (SSE `goaway`, WebSocket 1013).

use crate::api::LoadedApi;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;
use tokio::sync::watch;

/// How long the open streams of a replaced or removed API version keep running by default.
pub const DEFAULT_RELOAD_GRACE: Duration = Duration::from_secs(30);

/// The APIs served now, and the replaced versions whose streams are still running.
pub struct ApiTable {
    current: RwLock<Arc<[Arc<LoadedApi>]>>,
    /// Versions taken out of `current` whose streams may still run, until they end.
    retiring: Mutex<Vec<Arc<LoadedApi>>>,
    grace: Duration,
    /// Bumped by each change of `current`.
    changes: watch::Sender<u64>,
    /// Set at shutdown: no more changes.
    closed: AtomicBool,
}

impl ApiTable {
    /// A table that reloads with the default grace period.
    pub fn new(apis: Vec<Arc<LoadedApi>>) -> Arc<Self> {
        Self::with_grace(apis, DEFAULT_RELOAD_GRACE)
    }

    pub fn with_grace(apis: Vec<Arc<LoadedApi>>, grace: Duration) -> Arc<Self> {
        Arc::new(Self {
            current: RwLock::new(apis.into()),
            retiring: Mutex::default(),
            grace,
            changes: watch::Sender::new(0),
            closed: AtomicBool::new(false),
        })
    }

    /// The APIs served now.
    pub fn current(&self) -> Arc<[Arc<LoadedApi>]> {
        self.current.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The API served now under `id`.
    pub fn get(&self, id: &str) -> Option<Arc<LoadedApi>> {
        self.current().iter().find(|api| api.id == id).cloned()
    }

    /// Wakes at each change of the served APIs.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Serves `apis` from now on. Every version no longer served is retired: its warm consumers
    /// leave now, its open streams run for the grace period and are then ended. After
    /// [`ApiTable::close`] nothing changes any more.
    pub fn replace(self: &Arc<Self>, apis: Vec<Arc<LoadedApi>>) {
        let previous = {
            // Checked under the lock that `close` takes, so no version escapes its shutdown.
            let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
            if self.closed.load(Ordering::SeqCst) {
                return;
            }
            std::mem::replace(&mut *current, apis.into())
        };
        let now = self.current();
        for old in previous.iter().filter(|old| !now.iter().any(|api| Arc::ptr_eq(api, old))) {
            self.retire(old.clone());
        }
        self.changes.send_modify(|version| *version += 1);
    }

    fn retire(self: &Arc<Self>, api: Arc<LoadedApi>) {
        api.endpoint.close_idle();
        self.retiring.lock().unwrap_or_else(PoisonError::into_inner).push(api.clone());
        let table = self.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(table.grace) => {}
                _ = api.closing.cancelled() => {}
            }
            api.closing.cancel();
            api.websockets.ended().await;
            table.retiring.lock().unwrap_or_else(PoisonError::into_inner).retain(|other| !Arc::ptr_eq(other, &api));
        });
    }

    /// Shutdown: ends the streams of every version (current and retiring) as their shutdown
    /// signal, and refuses further changes.
    pub fn close(&self) {
        {
            let _current = self.current.write().unwrap_or_else(PoisonError::into_inner);
            self.closed.store(true, Ordering::SeqCst);
        }
        for api in self.all() {
            api.closing.cancel();
        }
    }

    /// Every version that may still have sessions: current and retiring.
    pub fn all(&self) -> Vec<Arc<LoadedApi>> {
        let mut all: Vec<Arc<LoadedApi>> = self.current().to_vec();
        all.extend(self.retiring.lock().unwrap_or_else(PoisonError::into_inner).iter().cloned());
        all
    }
}
