//! Webhook delivery (DESIGN 5.6): one task per active subscription, started and stopped so that
//! the running tasks always follow the state store — changes made through the admin API, by a
//! task that stopped its subscription, or (with a shared store) by another gateway.

mod call;
mod deliver;
pub(crate) mod tls;

use crate::state::validate::{self, StaticSubscription};
use crate::state::{StateStore, Subscription, SubscriptionState};
use crate::GatewayError;
use kafka_edge_definition::{ApiDefinition, EntrypointConfiguration, EntrypointType, PlanMode, Qos, WebhookConfiguration};
use kafka_edge_endpoint_kafka::{KafkaEndpoint, ProducerPool};
use kafka_edge_message::{ApiInfo, Endpoint, ExecutionContext, RequestInfo};
use kafka_edge_policies::{ApiFlows, FlowEndpoint, RequestShape};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Longest wait for a delivery task to close its consumer when it is stopped.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// The webhook entrypoint of an API.
pub struct WebhookEntrypoint {
    pub qos: Qos,
    pub configuration: WebhookConfiguration,
    pub dlq_endpoint: Option<String>,
    /// The endpoint `dlq.endpoint` names: where rejected messages are published.
    dlq: Option<Arc<dyn Endpoint>>,
}

impl WebhookEntrypoint {
    /// Messages in flight per subscription: 1 for at-most-once and at-least-once (order and
    /// acknowledgement), else `http.maxConcurrentConnections` (1 to 20).
    pub fn concurrency(&self) -> usize {
        match self.qos {
            Qos::AtMostOnce | Qos::AtLeastOnce => 1,
            _ => self.configuration.http.max_concurrent_connections.clamp(1, 20) as usize,
        }
    }
}

/// An API as webhook delivery sees it.
pub struct WebhookApi {
    pub id: String,
    push_plans: Vec<String>,
    pub webhook: WebhookEntrypoint,
    endpoint: Arc<dyn Endpoint>,
    flows: ApiFlows,
    info: Arc<ApiInfo>,
}

impl WebhookApi {
    /// Whether `plan` is one of this API's PUSH plans.
    pub fn has_push_plan(&self, plan: &str) -> bool {
        self.push_plans.iter().any(|p| p == plan)
    }

    /// The execution context of a subscription's delivery (client identifier = subscription id),
    /// and the endpoint seen through the flows that apply to the webhook entrypoint.
    fn context_for(&self, subscription: &Subscription) -> (ExecutionContext, Arc<dyn Endpoint>) {
        let request = RequestInfo { id: uuid::Uuid::new_v4().to_string(), method: "POST".into(), path: "/".into(), path_info: "/".into(), ..Default::default() };
        let context = ExecutionContext { api: self.info.clone(), client_identifier: subscription.id.clone(), attributes: Default::default(), request: Arc::new(request) };
        let flows = self.flows.select(&RequestShape { path_info: "/", method: "POST", entrypoint: EntrypointType::Webhook }, &context);
        (context, FlowEndpoint::wrap(self.endpoint.clone(), flows))
    }
}

struct Running {
    subscription: Subscription,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

/// The webhook side of the gateway: the APIs with a webhook entrypoint, the state, the tasks.
pub struct Webhooks {
    /// Every loaded API id, to tell "no such API" from "no webhook entrypoint".
    all_apis: Vec<String>,
    apis: HashMap<String, Arc<WebhookApi>>,
    store: Arc<dyn StateStore>,
    running: tokio::sync::Mutex<HashMap<String, Running>>,
    shutdown: CancellationToken,
}

/// Why an API cannot take a subscription.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unknown {
    #[error("API `{0}` not found")]
    Api(String),
    #[error("API `{0}` has no webhook entrypoint")]
    NoWebhook(String),
    #[error("plan `{plan}` is not a PUSH plan of API `{api}`")]
    Plan { api: String, plan: String },
}

impl Webhooks {
    /// Prepares delivery for every API with a webhook entrypoint; nothing runs before [`Webhooks::run`].
    pub fn new(definitions: &[ApiDefinition], store: Arc<dyn StateStore>, shutdown: CancellationToken) -> Result<Arc<Self>, GatewayError> {
        let producers = Arc::new(ProducerPool::new());
        let mut apis = HashMap::new();
        for definition in definitions {
            if let Some(api) = webhook_api(definition, producers.clone())? {
                apis.insert(api.id.clone(), Arc::new(api));
            }
        }
        let all_apis = definitions.iter().map(|d| d.id.clone()).collect();
        Ok(Arc::new(Self { all_apis, apis, store, running: Default::default(), shutdown }))
    }

    pub fn store(&self) -> &Arc<dyn StateStore> {
        &self.store
    }

    /// The API a subscription of `plan` belongs to.
    pub fn check(&self, api: &str, plan: &str) -> Result<&Arc<WebhookApi>, Unknown> {
        let found = self.check_api(api)?;
        if !found.has_push_plan(plan) {
            return Err(Unknown::Plan { api: api.into(), plan: plan.into() });
        }
        Ok(found)
    }

    /// The API, if it is loaded and has a webhook entrypoint.
    pub fn check_api(&self, api: &str) -> Result<&Arc<WebhookApi>, Unknown> {
        match self.apis.get(api) {
            Some(found) => Ok(found),
            None if self.all_apis.iter().any(|a| a == api) => Err(Unknown::NoWebhook(api.into())),
            None => Err(Unknown::Api(api.into())),
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
            validate::check_configuration(&format!("{base}.configuration"), &entry.configuration).map_err(|e| e.to_string())?;
            self.check(&entry.api, &entry.plan).map_err(|e| format!("{base}: {e}"))?;
        }
        let count = list.len();
        for entry in list {
            let wanted = Subscription { id: entry.id, api_id: entry.api, plan_id: entry.plan, configuration: entry.configuration, state: SubscriptionState::Active };
            let current = self.store.get(&wanted.api_id, &wanted.id);
            if current.is_some_and(|c| c.plan_id == wanted.plan_id && c.configuration == wanted.configuration) {
                continue;
            }
            self.store.put(wanted).await.map_err(|e| e.to_string())?;
        }
        Ok(count)
    }

    /// Follows the store until shutdown, then stops every task (each consumer leaves its group).
    pub async fn run(self: Arc<Self>) {
        let mut changes = self.store.changes();
        loop {
            self.reconcile().await;
            tokio::select! {
                _ = self.shutdown.cancelled() => break,
                changed = changes.changed() => if changed.is_err() { break },
            }
        }
        let running: Vec<Running> = self.running.lock().await.drain().map(|(_, r)| r).collect();
        for task in running {
            stop_task(task).await;
        }
    }

    /// Starts a task for every active subscription without one and stops every task whose
    /// subscription is gone, stopped or changed. Returns once stopped tasks have ended.
    pub async fn reconcile(&self) {
        if self.shutdown.is_cancelled() {
            return;
        }
        let mut running = self.running.lock().await;
        let wanted: HashMap<String, Subscription> = self
            .store
            .list()
            .into_iter()
            .filter(|s| s.state == SubscriptionState::Active && self.apis.contains_key(&s.api_id))
            .map(|s| (s.key(), s))
            .collect();
        let outdated: Vec<String> = running.iter().filter(|(key, r)| wanted.get(*key) != Some(&r.subscription) || r.task.is_finished()).map(|(key, _)| key.clone()).collect();
        for key in outdated {
            if let Some(task) = running.remove(&key) {
                stop_task(task).await;
            }
        }
        for (key, subscription) in wanted {
            if running.contains_key(&key) {
                continue;
            }
            let Some(api) = self.apis.get(&subscription.api_id) else { continue };
            let cancel = self.shutdown.child_token();
            let task = tokio::spawn(deliver::run(api.clone(), subscription.clone(), self.store.clone(), cancel.clone()));
            running.insert(key, Running { subscription, cancel, task });
        }
    }
}

async fn stop_task(running: Running) {
    running.cancel.cancel();
    if tokio::time::timeout(STOP_TIMEOUT, running.task).await.is_err() {
        tracing::warn!(subscription = %running.subscription.id, "Webhook delivery did not stop in time.");
    }
}

/// The webhook part of a definition, if it has a webhook entrypoint.
fn webhook_api(definition: &ApiDefinition, producers: Arc<ProducerPool>) -> Result<Option<WebhookApi>, GatewayError> {
    let api_error = |reason: String| GatewayError::Api { api: definition.id.clone(), reason };
    let entrypoint = definition.listeners.iter().flat_map(|l| l.entrypoints.iter()).find_map(|e| match &e.configuration {
        EntrypointConfiguration::Webhook(configuration) => Some(WebhookEntrypoint { qos: e.qos, configuration: configuration.clone(), dlq_endpoint: e.dlq_endpoint.clone(), dlq: None }),
        _ => None,
    });
    let Some(mut webhook) = entrypoint else { return Ok(None) };
    if let Some(name) = &webhook.dlq_endpoint {
        webhook.dlq = Some(dlq_endpoint(definition, name, producers.clone())?);
    }
    let flows = ApiFlows::compile(&definition.flows).map_err(|problems| api_error(problems.iter().map(|p| format!("{}: {}", p.path, p.message)).collect::<Vec<_>>().join("; ")))?;
    let (_, endpoint) = definition.primary_endpoint().ok_or_else(|| api_error("no Kafka endpoint".into()))?;
    let endpoint = KafkaEndpoint::new(&definition.id, endpoint, producers).map_err(|error| api_error(format!("invalid expression: {error}")))?;
    let push_plans = definition.plans.iter().filter(|p| p.mode == PlanMode::Push).map(|p| p.id.clone()).collect();
    let info = Arc::new(ApiInfo { id: definition.id.clone(), name: definition.name.clone(), properties: definition.properties.clone() });
    Ok(Some(WebhookApi { id: definition.id.clone(), push_plans, webhook, endpoint: Arc::new(endpoint), flows, info }))
}

/// The endpoint `dlq.endpoint` names: an endpoint group (its first endpoint) or an endpoint, which
/// must be able to produce.
fn dlq_endpoint(definition: &ApiDefinition, name: &str, producers: Arc<ProducerPool>) -> Result<Arc<dyn Endpoint>, GatewayError> {
    let api_error = |reason: String| GatewayError::Api { api: definition.id.clone(), reason };
    let by_group = definition.endpoint_groups.iter().find(|g| g.name == name).and_then(|g| g.endpoints.first());
    let by_name = || definition.endpoint_groups.iter().flat_map(|g| g.endpoints.iter()).find(|e| e.name == name);
    let endpoint = by_group.or_else(by_name).ok_or_else(|| api_error(format!("dlq.endpoint `{name}` names no endpoint group or endpoint")))?;
    if !endpoint.shared_configuration.producer.enabled {
        return Err(api_error(format!("dlq.endpoint `{name}`: its producer is not enabled")));
    }
    let endpoint = KafkaEndpoint::new(&definition.id, endpoint, producers).map_err(|error| api_error(format!("dlq.endpoint `{name}`: {error}")))?;
    Ok(Arc::new(endpoint))
}
