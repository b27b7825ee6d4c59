//! Webhook delivery and the admin API started in the test process, on a random port, as
//! `kafka-edge run` starts them.
#![allow(dead_code)]

use super::{built, TIMEOUT};
use kafka_edge_definition::ApiDefinition;
use kafka_edge_gateway::state::{self, StateStore};
use kafka_edge_gateway::webhook::Webhooks;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const TOKEN: &str = "test-admin-token";

pub struct Edge {
    pub admin: String,
    pub http: reqwest::Client,
    shutdown: CancellationToken,
    delivery: tokio::task::JoinHandle<()>,
}

impl Edge {
    /// With a file state store at `state_file`.
    pub async fn start(definition: &ApiDefinition, state_file: &Path) -> Self {
        Self::start_on(definition, &format!("file:{}", state_file.display())).await
    }

    /// With the state store `state` names (`file:…` or `kafka://…`).
    pub async fn start_on(definition: &ApiDefinition, state: &str) -> Self {
        let store: Arc<dyn StateStore> = state::open(state).await.expect("state");
        let shutdown = CancellationToken::new();
        let apis = kafka_edge_gateway::ApiTable::new(vec![built(definition)]);
        let metrics: Arc<kafka_edge_gateway::observe::Metrics> = Default::default();
        let webhooks = Webhooks::counted(apis.clone(), store.clone(), shutdown.clone(), metrics.clone());
        let keys = Arc::new(kafka_edge_gateway::credentials::Credentials::new(apis.clone(), store));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let admin = format!("http://{}", listener.local_addr().expect("address"));
        let (served, stop) = (webhooks.clone(), shutdown.clone());
        tokio::spawn(async move {
            let observed = std::sync::Arc::new(kafka_edge_gateway::admin::Observed {
                readiness: Default::default(),
                metrics,
                clients: Default::default(),
                apis,
                ready_requires_clusters: false,
            });
            let routes = kafka_edge_gateway::admin::router(observed, Some((served, keys, TOKEN)));
            let options = kafka_edge_gateway::listener::ListenerOptions::default();
            kafka_edge_gateway::admin::serve(listener, options, routes, stop).await.expect("admin")
        });
        let delivery = tokio::spawn(webhooks.run());
        Self { admin, http: reqwest::Client::new(), shutdown, delivery }
    }

    /// The value of the sample `series` (name and labels) in `/metrics`, 0 when absent.
    pub async fn metric(&self, series: &str) -> f64 {
        let page = self.http.get(format!("{}/metrics", self.admin)).send().await.expect("/metrics");
        let page = page.text().await.expect("text");
        page.lines()
            .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
            .map_or(0.0, |value| value.trim().parse().expect("a number"))
    }

    /// One admin API call with the token: status and JSON body (`null` when there is none).
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.admin)).bearer_auth(TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("admin call");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Creates subscription `id` of `api` calling `url`; `extra` goes into its configuration.
    pub async fn subscribe(&self, api: &ApiDefinition, id: &str, url: &str, extra: Value) {
        let mut body = subscription(url, extra);
        body["id"] = json!(id);
        let (status, created) =
            self.call(reqwest::Method::POST, &format!("/apis/{}/subscriptions", api.id), Some(body)).await;
        assert_eq!(status, 201, "{created}");
    }

    /// The subscription as the admin API shows it.
    pub async fn subscription(&self, api: &ApiDefinition, id: &str) -> Value {
        let (status, body) =
            self.call(reqwest::Method::GET, &format!("/apis/{}/subscriptions/{id}", api.id), None).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Shuts the gateway down; returns once every delivery task ended (its consumer closed).
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.delivery.await;
    }
}

/// An admin API body for a subscription of plan `push` calling `url`; `extra` goes into its
/// configuration.
pub fn subscription(url: &str, extra: Value) -> Value {
    let mut configuration = json!({"entrypointId": "webhook", "callbackUrl": url});
    if let (Some(target), Some(extra)) = (configuration.as_object_mut(), extra.as_object()) {
        target.extend(extra.clone());
    }
    json!({"plan": "push", "configuration": configuration})
}

/// Polls the async `condition` until it holds or TIMEOUT passes; returns whether it held.
pub async fn eventually_async<F, Fut>(mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while tokio::time::Instant::now() < deadline {
        if condition().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}
