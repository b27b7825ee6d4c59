//! The gateway: serves every loaded API on one listener, picks the API by context path and the
//! entrypoint by request shape, identifies the client, and shuts down without losing messages.

pub mod admin;
pub mod api;
pub mod client_identifier;
mod routing;
pub mod state;
pub mod webhook;

pub use api::LoadedApi;

use axum::extract::{ConnectInfo, Request, State};
use axum::response::Response;
use axum::serve::ListenerExt;
use axum::Router;
use kafka_edge_endpoint_kafka::ProducerPool;
use kafka_edge_message::DEFAULT_MAX_MESSAGE_BYTES;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How long shutdown waits for queued records to reach the cluster.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// The HTTP side of the gateway: every loaded API on one listener.
pub struct Gateway {
    apis: Vec<Arc<LoadedApi>>,
    shutdown: CancellationToken,
    /// The largest message a client may send (`--max-message-bytes`).
    max_message_bytes: usize,
}

impl Gateway {
    /// With the default message size limit (8 MiB).
    pub fn new(apis: Vec<Arc<LoadedApi>>, shutdown: CancellationToken) -> Arc<Self> {
        Self::with_max_message_bytes(apis, shutdown, DEFAULT_MAX_MESSAGE_BYTES)
    }

    /// `max_message_bytes` caps an http-post body and a WebSocket frame; the producers of the APIs'
    /// pool must take records that large (`ProducerPool::with_max_message_bytes`).
    pub fn with_max_message_bytes(
        apis: Vec<Arc<LoadedApi>>,
        shutdown: CancellationToken,
        max_message_bytes: usize,
    ) -> Arc<Self> {
        for api in &apis {
            tracing::info!(api = %api.id, paths = ?api.context_paths, entrypoints = ?api.entrypoint_names(), "Serving API.");
        }
        Arc::new(Self { apis, shutdown, max_message_bytes })
    }

    /// Serves until `shutdown` is cancelled, then stops accepting and lets in-flight requests
    /// and WebSocket sessions finish (their consumers commit and leave their groups). The
    /// producers are the runtime's: [`flush`] them once everything that publishes has ended.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) -> std::io::Result<()> {
        let shutdown = self.shutdown.clone();
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
            api.websockets.ended().await;
        }
        tracing::info!("Gateway stopped accepting.");
        Ok(())
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
    routing::dispatch(&gateway.apis, remote, gateway.shutdown.clone(), gateway.max_message_bytes, request).await
}
