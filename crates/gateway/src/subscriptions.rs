//! `kafka-edge run`'s state side: open the state store, load static subscriptions and API keys,
//! start webhook delivery and (with a token) the admin API. Part of the binary, so `anyhow` is
//! fine here.

use anyhow::Context;
use kafka_edge_gateway::credentials::Credentials;
use kafka_edge_gateway::listener::ListenerOptions;
use kafka_edge_gateway::state::StateStore;
use kafka_edge_gateway::{admin, state, webhook::Webhooks, ApiTable};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The `run` options of this side.
pub struct Options {
    pub state: String,
    pub state_security: Option<PathBuf>,
    /// `None` or `off`: no admin listener.
    pub admin_listen: Option<String>,
    /// The admin listener's TLS, header timeout and connection cap.
    pub admin_listener: ListenerOptions,
    pub subscriptions: Option<PathBuf>,
    pub api_keys: Option<PathBuf>,
}

/// The running state side.
pub struct Started {
    pub store: Arc<dyn StateStore>,
    /// Ends once every delivery task stopped after `shutdown`.
    pub delivery: JoinHandle<()>,
}

/// Starts delivery and the admin listener. The admin listener stops with `admin_shutdown`, after
/// the client listener drained, so that `/ready` answers 503 during the drain.
pub async fn start(
    apis: Arc<ApiTable>,
    options: Options,
    observed: Arc<admin::Observed>,
    shutdown: CancellationToken,
    admin_shutdown: CancellationToken,
) -> anyhow::Result<Started> {
    let security = options.state_security.as_deref().map(kafka_edge_definition::load_security).transpose()?;
    let store =
        state::open_with(&options.state, security.as_ref()).await.with_context(|| match &options.state_security {
            Some(file) => {
                format!("opening the gateway state {} with the security of {}", options.state, file.display())
            }
            None => format!("opening the gateway state {}", options.state),
        })?;
    let webhooks = Webhooks::counted(apis.clone(), store.clone(), shutdown.clone(), observed.metrics.clone());
    let keys = Arc::new(Credentials::new(apis, store.clone()));
    if let Some(path) = &options.api_keys {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let count = keys.load_static(&bytes).await.map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        tracing::info!(count, file = %path.display(), "API keys loaded.");
    }
    if let Some(path) = &options.subscriptions {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let count = webhooks.load_static(&bytes).await.map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        tracing::info!(count, file = %path.display(), "Static webhook subscriptions loaded.");
    }
    let Some(admin_listen) = options.admin_listen.filter(|address| !address.eq_ignore_ascii_case("off")) else {
        tracing::info!("Admin listener off (--admin-listen off): no /health, /ready, /metrics nor admin API.");
        return Ok(Started { store, delivery: tokio::spawn(webhooks.run()) });
    };
    let listener = tokio::net::TcpListener::bind(&admin_listen).await.with_context(|| {
        format!(
            "cannot listen on {admin_listen} (the admin listener's address, set by --admin-listen or KAFKA_EDGE_ADMIN_LISTEN)"
        )
    })?;
    let address = listener.local_addr()?;
    let token = admin::token_from_env();
    if token.is_some() && !address.ip().is_loopback() && options.admin_listener.tls.is_none() {
        anyhow::bail!(
            "the admin API would listen on {address} in plain HTTP, and its token would cross the network in clear: \
             give it TLS (--admin-tls-cert and --admin-tls-key) or a loopback address (--admin-listen 127.0.0.1:8083)"
        );
    }
    let routes = match &token {
        Some(token) => admin::router(observed, Some((webhooks.clone(), keys, token))),
        None => {
            tracing::info!(
                "Admin API off: set {} to a secret token to serve it on {address}; /health, /ready and /metrics are served.",
                admin::TOKEN_ENV
            );
            admin::router(observed, None)
        }
    };
    let admin_options = options.admin_listener;
    tokio::spawn(async move {
        if let Err(error) = admin::serve(listener, admin_options, routes, admin_shutdown).await {
            tracing::error!(%error, "Admin listener stopped.");
        }
    });
    Ok(Started { store, delivery: tokio::spawn(webhooks.run()) })
}
