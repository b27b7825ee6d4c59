//! Webhook delivery (DESIGN 5.6): one task per active subscription, started and stopped so that
//! the running tasks always follow the state store — changes made through the admin API, by a
//! task that stopped its subscription, or (with a shared store) by another gateway.

use crate::api::LoadedApi;
use crate::apis::ApiTable;
use crate::observe::Metrics;
use crate::state::validate::{self, StaticSubscription};
use crate::state::{StateStore, Subscription, SubscriptionState};
use kafka_edge_definition::EntrypointType;
use kafka_edge_entrypoints::webhook::{self, Stop};
use kafka_edge_message::{Endpoint, ExecutionContext, RequestInfo};
use kafka_edge_policies::{FlowEndpoint, RequestShape};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Longest wait for a delivery task to close its consumer when it is stopped.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// The execution context of a subscription's delivery (client identifier = subscription id),
/// and the API's endpoint seen through the flows that apply to the webhook entrypoint.
fn delivery_context(api: &LoadedApi, subscription: &Subscription) -> (ExecutionContext, Arc<dyn Endpoint>) {
    let request = RequestInfo {
        id: uuid::Uuid::new_v4().to_string(),
        method: "POST".into(),
        path: "/".into(),
        path_info: "/".into(),
        ..Default::default()
    };
    let context = ExecutionContext {
        api: api.info.clone(),
        entrypoint: EntrypointType::Webhook.as_str(),
        client_identifier: subscription.id.clone(),
        attributes: Default::default(),
        structured_attributes: Default::default(),
        request: Arc::new(request),
    };
    let flows = api
        .flows
        .select(&RequestShape { path_info: "/", method: "POST", entrypoint: EntrypointType::Webhook }, &context);
    (context, FlowEndpoint::wrap(api.endpoint.clone(), flows))
}

/// An API's webhook calls, counted for `/metrics`.
struct Counted {
    api: Arc<str>,
    metrics: Arc<Metrics>,
}

impl webhook::DeliveryObserver for Counted {
    fn call(&self, outcome: &'static str) {
        self.metrics.webhook_call(&self.api, outcome);
    }

    fn dead_lettered(&self) {
        self.metrics.webhook_dead_letter(&self.api);
    }
}

struct Running {
    subscription: Subscription,
    /// The API version it delivers for: a reload that replaces it restarts the delivery.
    api: Arc<LoadedApi>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

/// The webhook side of the gateway: the APIs, the state, the tasks.
pub struct Webhooks {
    apis: Arc<ApiTable>,
    store: Arc<dyn StateStore>,
    running: tokio::sync::Mutex<HashMap<String, Running>>,
    shutdown: CancellationToken,
    metrics: Arc<Metrics>,
}

/// Why an API cannot take a subscription.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotSubscribable {
    #[error("API `{0}` not found")]
    Api(String),
    #[error("API `{0}` has no webhook entrypoint")]
    NoWebhook(String),
    #[error("plan `{plan}` is not a PUSH plan of API `{api}`")]
    Plan { api: String, plan: String },
}

impl Webhooks {
    /// Prepares delivery for the APIs of the table with a webhook entrypoint, as the table
    /// changes; nothing runs before [`Webhooks::run`].
    pub fn new(apis: Arc<ApiTable>, store: Arc<dyn StateStore>, shutdown: CancellationToken) -> Arc<Self> {
        Self::counted(apis, store, shutdown, Default::default())
    }

    /// As `new`, with calls and dead letters counted in `metrics`.
    pub fn counted(
        apis: Arc<ApiTable>,
        store: Arc<dyn StateStore>,
        shutdown: CancellationToken,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        Arc::new(Self { apis, store, running: Default::default(), shutdown, metrics })
    }

    pub fn store(&self) -> &Arc<dyn StateStore> {
        &self.store
    }

    /// The API a subscription of `plan` belongs to.
    pub fn check(&self, api: &str, plan: &str) -> Result<Arc<LoadedApi>, NotSubscribable> {
        let found = self.check_api(api)?;
        if !found.has_push_plan(plan) {
            return Err(NotSubscribable::Plan { api: api.into(), plan: plan.into() });
        }
        Ok(found)
    }

    /// The API, if it is loaded and has a webhook entrypoint.
    pub fn check_api(&self, api: &str) -> Result<Arc<LoadedApi>, NotSubscribable> {
        match self.apis.get(api) {
            Some(found) if found.webhook.is_some() => Ok(found),
            Some(_) => Err(NotSubscribable::NoWebhook(api.into())),
            None => Err(NotSubscribable::Api(api.into())),
        }
    }

    /// Puts the subscriptions of a `--subscriptions` file into the store: an entry whose
    /// configuration is already stored keeps its state (a stopped one stays stopped); a new or
    /// changed one is stored active.
    pub async fn load_static(&self, bytes: &[u8]) -> Result<usize, String> {
        let list: Vec<StaticSubscription> = validate::parse(bytes).map_err(|e| e.to_string())?;
        for (index, entry) in list.iter().enumerate() {
            let base = format!("[{index}]");
            validate::check_id(&format!("{base}.id"), &entry.id).map_err(|e| e.to_string())?;
            validate::check_configuration(&format!("{base}.configuration"), &entry.configuration)
                .map_err(|e| e.to_string())?;
            self.check(&entry.api, &entry.plan).map_err(|e| format!("{base}: {e}"))?;
        }
        let count = list.len();
        for entry in list {
            let wanted = Subscription {
                id: entry.id,
                api_id: entry.api,
                plan_id: entry.plan,
                configuration: entry.configuration,
                state: SubscriptionState::Active,
            };
            let current = self.store.get(&wanted.api_id, &wanted.id);
            if current.is_some_and(|c| c.plan_id == wanted.plan_id && c.configuration == wanted.configuration) {
                continue;
            }
            self.store.put(wanted).await.map_err(|e| e.to_string())?;
        }
        Ok(count)
    }

    /// Follows the store and the served APIs until shutdown, then stops every task (each
    /// consumer leaves its group).
    pub async fn run(self: Arc<Self>) {
        let mut changes = self.store.changes();
        let mut reloads = self.apis.changes();
        loop {
            self.reconcile().await;
            tokio::select! {
                _ = self.shutdown.cancelled() => break,
                changed = changes.changed() => if changed.is_err() { break },
                reloaded = reloads.changed() => if reloaded.is_err() { break },
            }
        }
        let running: Vec<Running> = self.running.lock().await.drain().map(|(_, r)| r).collect();
        for task in running {
            stop_task(task).await;
        }
    }

    /// Starts a task for every active subscription without one and stops every task whose
    /// subscription is gone, stopped or changed, or whose API was reloaded or removed. Returns
    /// once stopped tasks have ended.
    pub async fn reconcile(&self) {
        if self.shutdown.is_cancelled() {
            return;
        }
        let mut running = self.running.lock().await;
        let apis: HashMap<String, Arc<LoadedApi>> = self
            .apis
            .current()
            .iter()
            .filter(|api| api.webhook.is_some())
            .map(|api| (api.id.clone(), api.clone()))
            .collect();
        let wanted: HashMap<String, Subscription> = self
            .store
            .list()
            .into_iter()
            .filter(|s| s.state == SubscriptionState::Active && apis.contains_key(&s.api_id))
            .map(|s| (s.key(), s))
            .collect();
        let outdated: Vec<String> = running
            .iter()
            .filter(|(key, r)| {
                let same_api = apis.get(&r.subscription.api_id).is_some_and(|api| Arc::ptr_eq(api, &r.api));
                wanted.get(*key) != Some(&r.subscription) || !same_api || r.task.is_finished()
            })
            .map(|(key, _)| key.clone())
            .collect();
        for key in outdated {
            if let Some(task) = running.remove(&key) {
                stop_task(task).await;
            }
        }
        for (key, subscription) in wanted {
            if running.contains_key(&key) {
                continue;
            }
            let Some(api) = apis.get(&subscription.api_id) else { continue };
            let cancel = self.shutdown.child_token();
            let observer = Arc::new(Counted { api: Arc::from(api.id.as_str()), metrics: self.metrics.clone() });
            let delivery = deliver(api.clone(), subscription.clone(), self.store.clone(), observer, cancel.clone());
            let task = tokio::spawn(delivery);
            running.insert(key, Running { subscription, api: api.clone(), cancel, task });
        }
    }
}

/// One subscription's delivery, until cancelled or until it stops; a stop is recorded in the state.
async fn deliver(
    api: Arc<LoadedApi>,
    subscription: Subscription,
    store: Arc<dyn StateStore>,
    observer: Arc<Counted>,
    cancel: CancellationToken,
) {
    // Delivery runs only for APIs with a webhook entrypoint (Webhooks::new).
    let Some(entrypoint) = api.webhook.as_ref() else { return };
    let context = || delivery_context(&api, &subscription);
    let stopped = webhook::run(entrypoint, &subscription, context, observer, cancel).await;
    if let Some(stop) = stopped {
        record_stop(&*store, &subscription, stop).await;
    }
}

/// Records the stop in the state (unless the subscription was deleted meanwhile).
async fn record_stop(store: &dyn StateStore, subscription: &Subscription, stop: Stop) {
    let (api, id) = (&subscription.api_id, &subscription.id);
    tracing::warn!(%api, subscription = %id, reason = stop.reason, message = %stop.message, "Webhook subscription stopped.");
    let Some(mut current) = store.get(&subscription.api_id, &subscription.id) else { return };
    current.state = SubscriptionState::Stopped { reason: stop.reason.into(), message: stop.message };
    if let Err(error) = store.put(current).await {
        tracing::error!(api = %subscription.api_id, subscription = %subscription.id, %error, "Cannot record the stopped subscription.");
    }
}

async fn stop_task(running: Running) {
    running.cancel.cancel();
    if tokio::time::timeout(STOP_TIMEOUT, running.task).await.is_err() {
        tracing::warn!(subscription = %running.subscription.id, "Webhook delivery did not stop in time.");
    }
}
