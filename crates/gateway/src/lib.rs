//! The gateway: serves every loaded API on one listener, picks the API by context path and the
//! entrypoint by request shape, identifies the client, and shuts down without losing messages.

pub mod admin;
pub mod client_identifier;
mod routing;
pub mod state;
pub mod webhook;

pub use routing::{check, ServedApi};

use axum::extract::{ConnectInfo, Request, State};
use axum::response::Response;
use axum::serve::ListenerExt;
use axum::Router;
use kafka_edge_definition::ApiDefinition;
use kafka_edge_endpoint_kafka::ProducerPool;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Largest request body accepted (one http-post message).
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// How long shutdown waits for queued records to reach the cluster.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors that stop the gateway.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("listener failed: {0}")]
    Listener(#[from] std::io::Error),
    #[error("API `{api}`: {reason}")]
    Api { api: String, reason: String },
}

/// The running state shared by all requests.
pub struct Gateway {
    apis: Vec<ServedApi>,
    producers: Arc<ProducerPool>,
    shutdown: CancellationToken,
}

impl Gateway {
    /// Prepares the given APIs; nothing connects to Kafka until a request needs it.
    pub fn new(definitions: Vec<ApiDefinition>, shutdown: CancellationToken) -> Result<Arc<Self>, GatewayError> {
        let producers = Arc::new(ProducerPool::new());
        let apis = definitions
            .into_iter()
            .map(|definition| ServedApi::new(definition, producers.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        for api in &apis {
            tracing::info!(api = %api.id, paths = ?api.context_paths, entrypoints = ?api.entrypoint_names(), "Serving API.");
        }
        Ok(Arc::new(Self { apis, producers, shutdown }))
    }

    /// Serves until `shutdown` is cancelled, then stops accepting, lets in-flight requests finish
    /// (their consumers commit and leave their groups) and flushes the producers.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) -> Result<(), GatewayError> {
        let shutdown = self.shutdown.clone();
        let producers = self.producers.clone();
        let app = Router::new().fallback(dispatch).with_state(self.clone());
        tracing::info!(address = %listener.local_addr()?, "Gateway listening.");
        // Events are small writes: without TCP_NODELAY, Nagle's algorithm holds one back until the
        // client acknowledges the previous one, which a delayed ACK can postpone by 40 ms.
        let listener = listener.tap_io(|connection| {
            if let Err(error) = connection.set_nodelay(true) {
                tracing::debug!(%error, "Cannot set TCP_NODELAY on a client connection.");
            }
        });
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await?;
        // Upgraded (WebSocket) connections are no longer the HTTP server's: wait for them too.
        for api in &self.apis {
            api.websockets_ended().await;
        }
        tracing::info!("Gateway stopped accepting; flushing producers.");
        tokio::task::spawn_blocking(move || producers.flush(FLUSH_TIMEOUT)).await.ok();
        tracing::info!("Gateway stopped.");
        Ok(())
    }
}

async fn dispatch(State(gateway): State<Arc<Gateway>>, ConnectInfo(remote): ConnectInfo<SocketAddr>, request: Request) -> Response {
    routing::dispatch(&gateway.apis, remote, gateway.shutdown.clone(), request).await
}
