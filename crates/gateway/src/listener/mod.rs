//! The accept loop of the gateway's listeners: plain TCP or TLS (rustls, HTTP/2 and HTTP/1.1 by
//! ALPN), HTTP/1.1 and HTTP/2 (cleartext by prior knowledge), a bound on the time a client has to
//! send a request head, a cap on open connections, and a drain on shutdown that lets in-flight
//! requests finish. `axum::serve` offers none of the first four, and each belongs in one place.

pub mod tls;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

use crate::observe::Metrics;

pub use tls::{ClientAuth, Tls, TlsError, TlsFiles};

/// The default `--header-timeout`.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The default `--max-connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// How often a refused connection is logged at most.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// How a listener accepts connections.
#[derive(Clone)]
pub struct ListenerOptions {
    /// Serve HTTPS with these certificates; plain HTTP without.
    pub tls: Option<Arc<Tls>>,
    /// Time a client has to send a complete request head, from the moment the connection opens
    /// or its previous response ended (and to finish the TLS handshake).
    pub header_timeout: Duration,
    /// Connections beyond this many are closed as soon as they are accepted.
    pub max_connections: usize,
    /// Where open and refused connections are counted.
    pub metrics: Option<Arc<Metrics>>,
}

impl Default for ListenerOptions {
    fn default() -> Self {
        Self {
            tls: None,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            metrics: None,
        }
    }
}

/// The client certificate of a mutual-TLS connection (its DER), for the requests made on it.
#[derive(Clone, Debug)]
pub struct ClientCertificate(pub Arc<[u8]>);

/// Serves `app` on `listener` until `shutdown`, then stops accepting, asks every connection to
/// close once its requests are answered (HTTP/2 GOAWAY, HTTP/1.1 keep-alive off) and waits for
/// them. Requests see `ConnectInfo<SocketAddr>` and, with client certificates, [`ClientCertificate`].
pub async fn serve(
    listener: TcpListener,
    app: Router,
    options: ListenerOptions,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let connections = Arc::new(Semaphore::new(options.max_connections));
    let mut last_refusal_log: Option<Instant> = None;
    loop {
        let (stream, remote) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(%error, "Cannot accept a connection.");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            if let Some(metrics) = &options.metrics {
                metrics.connection_refused();
            }
            if last_refusal_log.is_none_or(|at| at.elapsed() >= REFUSAL_LOG_INTERVAL) {
                last_refusal_log = Some(Instant::now());
                tracing::warn!(
                    limit = options.max_connections,
                    "Connection limit reached (--max-connections): closing new connections."
                );
            }
            drop(stream);
            continue;
        };
        let watcher = graceful.watcher();
        let (app, options) = (app.clone(), options.clone());
        if let Some(metrics) = &options.metrics {
            metrics.connection_opened();
        }
        tokio::spawn(async move {
            connection(stream, remote, app, &options, watcher).await;
            if let Some(metrics) = &options.metrics {
                metrics.connection_closed();
            }
            drop(permit);
        });
    }
    graceful.shutdown().await;
    Ok(())
}

async fn connection(
    stream: TcpStream,
    remote: SocketAddr,
    app: Router,
    options: &ListenerOptions,
    watcher: hyper_util::server::graceful::Watcher,
) {
    // Events are small writes: without TCP_NODELAY, Nagle's algorithm holds one back until the
    // client acknowledges the previous one, which a delayed ACK can postpone by 40 ms.
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "Cannot set TCP_NODELAY on a client connection.");
    }
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(options.header_timeout);
    builder.http2().timer(TokioTimer::new());
    let served = match &options.tls {
        None => {
            // The builder reads the first bytes to tell HTTP/1.1 from HTTP/2 before any header
            // timer runs: a connection that never sends a byte is bounded here.
            let mut first = [0u8; 1];
            if !matches!(tokio::time::timeout(options.header_timeout, stream.peek(&mut first)).await, Ok(Ok(1..))) {
                return tracing::debug!(%remote, "No request within --header-timeout; connection closed.");
            }
            let service = with_connection_info(app, remote, None);
            watcher.watch(builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned()).await
        }
        Some(tls) => {
            let handshake = tokio::time::timeout(options.header_timeout, tls.acceptor().accept(stream)).await;
            let stream = match handshake {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => return tracing::debug!(%remote, %error, "TLS handshake failed."),
                Err(_) => return tracing::debug!(%remote, "TLS handshake not finished within --header-timeout."),
            };
            let certificate = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|der| ClientCertificate(Arc::from(der.as_ref())));
            // ALPN decided the protocol: no sniffing, so the HTTP/1.1 header timer runs from the start.
            let http2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
            let builder = if http2 { builder.http2_only() } else { builder.http1_only() };
            let service = with_connection_info(app, remote, certificate);
            watcher.watch(builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned()).await
        }
    };
    if let Err(error) = served {
        // Clients that go away, header timeouts: the connection's business, not an operator's.
        tracing::debug!(%remote, %error, "Connection ended with an error.");
    }
}

/// The router as a hyper service whose requests carry the peer address and client certificate.
fn with_connection_info(
    app: Router,
    remote: SocketAddr,
    certificate: Option<ClientCertificate>,
) -> TowerToHyperService<
    impl tower::Service<
            http::Request<hyper::body::Incoming>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
            Future = impl Send,
        > + Clone,
> {
    let service = app.map_request(move |mut request: http::Request<hyper::body::Incoming>| {
        request.extensions_mut().insert(ConnectInfo(remote));
        if let Some(certificate) = &certificate {
            request.extensions_mut().insert(certificate.clone());
        }
        request
    });
    TowerToHyperService::new(service)
}
