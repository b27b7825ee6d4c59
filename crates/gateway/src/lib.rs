//! The gateway: serves every loaded API on one listener, picks the API by context path and the
//! entrypoint by request shape, identifies the client, and shuts down without losing messages.

pub mod access;
pub mod admin;
pub mod api;
pub mod apis;
pub mod asyncapi;
pub mod client_identifier;
pub mod clusters;
pub mod cors;
pub mod credentials;
pub mod forwarded;
pub mod listener;
pub mod metered;
pub mod observe;
pub mod otel;
pub mod plan;
pub mod reload;
mod routing;
pub mod state;
pub mod webhook;

pub use api::LoadedApi;
pub use apis::ApiTable;

use axum::extract::{ConnectInfo, Request, State};
use axum::response::Response;
use axum::Router;
use forwarded::TrustedProxies;
use kafka_edge_endpoint_kafka::ProducerPool;
use kafka_edge_message::DEFAULT_MAX_MESSAGE_BYTES;
use listener::ListenerOptions;
use observe::{Metrics, Readiness};
use plan::Revocations;
use state::StateStore;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How long shutdown waits for queued records to reach the cluster.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// The HTTP side of the gateway: every loaded API on one listener.
pub struct Gateway {
    apis: Arc<ApiTable>,
    shutdown: CancellationToken,
    options: Options,
    revocations: Arc<Revocations>,
}

/// How the gateway serves, beyond its APIs.
#[derive(Clone)]
pub struct Options {
    /// The largest message a client may send (`--max-message-bytes`): an http-post body, a
    /// WebSocket frame. The producers of the APIs' pool must take records that large
    /// (`ProducerPool::with_max_message_bytes`).
    pub max_message_bytes: usize,
    /// Where API keys are looked up; without it, every API key is refused.
    pub state: Option<Arc<dyn StateStore>>,
    /// Whose `Forwarded` / `X-Forwarded-For` headers name the client (`--trusted-proxies`).
    pub trusted_proxies: TrustedProxies,
    /// TLS, header timeout, connection cap.
    pub listener: ListenerOptions,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// What `/ready` answers.
    pub readiness: Arc<Readiness>,
    /// One line per request, and per stream opening and end (`--access-log`).
    pub access_log: bool,
    /// Spans of served requests, exported over OTLP (`OTEL_*`; crate::otel).
    pub tracer: Option<Arc<otel::Tracer>>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            state: None,
            trusted_proxies: TrustedProxies::default(),
            listener: ListenerOptions::default(),
            metrics: Default::default(),
            readiness: Default::default(),
            access_log: true,
            tracer: None,
        }
    }
}

impl Gateway {
    /// With the default options: 8 MiB messages, no state (API keys refused).
    pub fn new(apis: Vec<Arc<LoadedApi>>, shutdown: CancellationToken) -> Arc<Self> {
        Self::with_options(apis, shutdown, Options::default())
    }

    pub fn with_options(apis: Vec<Arc<LoadedApi>>, shutdown: CancellationToken, options: Options) -> Arc<Self> {
        Self::with_table(ApiTable::new(apis), shutdown, options)
    }

    /// Serves the APIs of `apis`, whichever they are at each request (a reload replaces them).
    pub fn with_table(apis: Arc<ApiTable>, shutdown: CancellationToken, options: Options) -> Arc<Self> {
        for api in apis.current().iter() {
            announce(api, &options);
        }
        Arc::new(Self { apis, shutdown, options, revocations: Default::default() })
    }

    /// Logs what a newly served API (at start or by a reload) offers.
    pub fn announce(&self, api: &LoadedApi) {
        announce(api, &self.options);
    }

    /// Serves until `shutdown` is cancelled, then stops accepting and lets in-flight requests
    /// and WebSocket sessions finish (their consumers commit and leave their groups, as do the
    /// http-get consumers kept warm). The
    /// producers are the runtime's: [`flush`] them once everything that publishes has ended.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) -> std::io::Result<()> {
        let shutdown = self.shutdown.clone();
        if let Some(state) = &self.options.state {
            tokio::spawn(self.revocations.clone().follow(state.clone(), shutdown.clone()));
        }
        let app = Router::new().fallback(dispatch).with_state(self.clone());
        let listening = listener.local_addr()?;
        match &self.options.listener.tls {
            Some(tls) => {
                tokio::spawn(tls.clone().follow(shutdown.clone()));
                tracing::info!(address = %listening, "Gateway listening (HTTPS).");
            }
            None => tracing::info!(address = %listening, "Gateway listening."),
        }
        let options = ListenerOptions { metrics: Some(self.options.metrics.clone()), ..self.options.listener.clone() };
        let apis = self.apis.clone();
        let closing = shutdown.clone();
        tokio::spawn(async move {
            closing.cancelled().await;
            apis.close();
        });
        listener::serve(listener, app, options, shutdown).await?;
        // Upgraded (WebSocket) connections are no longer the HTTP server's: wait for them too,
        // of every version a reload left running.
        for api in self.apis.all() {
            api.websockets.ended().await;
            // Warm http-get consumers leave their groups now, not when the process is gone.
            api.endpoint.close_idle();
        }
        tracing::info!("Gateway stopped accepting.");
        Ok(())
    }
}

fn announce(api: &LoadedApi, options: &Options) {
    let plans: Vec<&str> = api.plans.kinds().iter().map(|kind| kind.as_str()).collect();
    tracing::info!(api = %api.id, paths = ?api.context_paths, entrypoints = ?api.entrypoint_names(), ?plans, "Serving API.");
    let asks_certificates = options.listener.tls.as_ref().is_some_and(|tls| tls.asks_client_certificates());
    if plans.contains(&"mtls") && !asks_certificates {
        tracing::warn!(api = %api.id, "The API has an mtls plan but the listener asks for no client certificate (--tls-client-ca): that plan admits nobody.");
    }
}

/// Waits (up to 10 s) for the records queued in every producer of the pool to reach the cluster.
pub async fn flush(producers: Arc<ProducerPool>) {
    tracing::info!("Flushing producers.");
    tokio::task::spawn_blocking(move || producers.flush(FLUSH_TIMEOUT)).await.ok();
}

async fn dispatch(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    routing::dispatch(&gateway, remote, request).await
}
