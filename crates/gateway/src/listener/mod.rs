//! The accept loop of the gateway's listeners: plain TCP or TLS (rustls, HTTP/2 and HTTP/1.1 by
//! ALPN), HTTP/1.1 and HTTP/2 (cleartext by prior knowledge), a bound on the time a client has to
//! send a request head, a cap on open connections, and a drain on shutdown that lets in-flight
//! requests finish. `axum::serve` offers none of the first four, and each belongs in one place.

pub mod tls;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;

use crate::observe::Metrics;

pub use tls::{ClientAuth, Tls, TlsError, TlsFiles};

/// The largest request head (request line and headers) a client may send: HTTP/1.1's read
/// buffer, HTTP/2's header list. Hyper's own default is about 400 KiB.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// The default `--header-timeout`.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The default `--max-connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// How long shutdown waits for open connections to finish their requests.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How often an HTTP/2 connection is pinged; a peer that does not answer within the header
/// timeout is gone.
const HTTP2_PING_INTERVAL: Duration = Duration::from_secs(30);
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
    /// After shutdown, how long in-flight requests may run before their connections are closed.
    pub drain_timeout: Duration,
    /// Where open and refused connections are counted.
    pub metrics: Option<Arc<Metrics>>,
}

impl Default for ListenerOptions {
    fn default() -> Self {
        Self {
            tls: None,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            metrics: None,
        }
    }
}

/// The client certificate of a mutual-TLS connection (its DER), for the requests made on it.
#[derive(Clone, Debug)]
pub struct ClientCertificate(pub Arc<[u8]>);

/// Serves `app` on `listener` until `shutdown`, then stops accepting, asks every connection to
/// close once its requests are answered (HTTP/2 GOAWAY, HTTP/1.1 keep-alive off) and waits for
/// them, at most `options.drain_timeout` (`--drain-timeout`). Requests see `ConnectInfo<SocketAddr>` and, with client
/// certificates, [`ClientCertificate`].
pub async fn serve(
    listener: TcpListener,
    app: Router,
    options: ListenerOptions,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let tasks = TaskTracker::new();
    let drain_timeout = options.drain_timeout;
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
        let (app, options, shutdown) = (app.clone(), options.clone(), shutdown.clone());
        if let Some(metrics) = &options.metrics {
            metrics.connection_opened();
        }
        tasks.spawn(async move {
            connection(stream, remote, app, &options, shutdown).await;
            if let Some(metrics) = &options.metrics {
                metrics.connection_closed();
            }
            drop(permit);
        });
    }
    tasks.close();
    if tokio::time::timeout(drain_timeout, tasks.wait()).await.is_err() {
        tracing::warn!(open = tasks.len(), "Connections still open after the drain timeout; closing them.");
    }
    Ok(())
}

/// The HTTP/2 connection preface; a plain connection that starts with it speaks HTTP/2.
const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Whether a plain connection speaks HTTP/2, from its first bytes, read (not consumed) within
/// `timeout`; `None` when they do not come in time.
async fn speaks_http2(stream: &TcpStream, timeout: Duration) -> Option<bool> {
    let detect = async {
        let mut buffer = [0u8; HTTP2_PREFACE.len()];
        loop {
            let read = stream.peek(&mut buffer).await.ok().filter(|read| *read > 0)?;
            if buffer[..read] != HTTP2_PREFACE[..read] {
                return Some(false);
            }
            if read == HTTP2_PREFACE.len() {
                return Some(true);
            }
            // A prefix of the preface: wait for more bytes.
            stream.readable().await.ok()?;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(timeout, detect).await.ok().flatten()
}

async fn connection(
    stream: TcpStream,
    remote: SocketAddr,
    app: Router,
    options: &ListenerOptions,
    shutdown: CancellationToken,
) {
    // Events are small writes: without TCP_NODELAY, Nagle's algorithm holds one back until the
    // client acknowledges the previous one, which a delayed ACK can postpone by 40 ms.
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%remote, %error, "Cannot set TCP_NODELAY on a client connection.");
    }
    let served = match &options.tls {
        None => {
            // Told here, within the header timeout, rather than by a builder that would wait for
            // the first bytes without a timer.
            let Some(http2) = speaks_http2(&stream, options.header_timeout).await else {
                return tracing::debug!(%remote, "No request within --header-timeout; connection closed.");
            };
            let service = with_connection_info(app, remote, None);
            serve_connection(TokioIo::new(stream), http2, service, options, &shutdown).await
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
            let http2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
            let service = with_connection_info(app, remote, certificate);
            serve_connection(TokioIo::new(stream), http2, service, options, &shutdown).await
        }
    };
    if let Err(error) = served {
        // Clients that go away, header timeouts: the connection's business, not an operator's.
        tracing::debug!(%remote, %error, "Connection ended with an error.");
    }
}

/// One connection in the protocol already decided. HTTP/1.1: the header timer runs from the start
/// and after every response; HTTP/2: pings find peers that went away. On `shutdown` the
/// connection is asked to close gracefully and then driven to its end.
async fn serve_connection<I, S>(
    io: I,
    http2: bool,
    service: S,
    options: &ListenerOptions,
    shutdown: &CancellationToken,
) -> Result<(), hyper::Error>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::Service<http::Request<hyper::body::Incoming>, Response = axum::response::Response>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if http2 {
        let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        builder
            .timer(TokioTimer::new())
            .keep_alive_interval(HTTP2_PING_INTERVAL)
            .keep_alive_timeout(options.header_timeout)
            .max_header_list_size(MAX_HEADER_BYTES as u32);
        let connection = builder.serve_connection(io, service);
        tokio::pin!(connection);
        tokio::select! {
            served = connection.as_mut() => return served,
            _ = shutdown.cancelled() => connection.as_mut().graceful_shutdown(),
        }
        connection.await
    } else {
        let mut builder = hyper::server::conn::http1::Builder::new();
        // A request head larger than the buffer is answered 431 and the connection closed.
        builder.timer(TokioTimer::new()).header_read_timeout(options.header_timeout).max_buf_size(MAX_HEADER_BYTES);
        let connection = builder.serve_connection(io, service).with_upgrades();
        tokio::pin!(connection);
        tokio::select! {
            served = connection.as_mut() => return served,
            _ = shutdown.cancelled() => connection.as_mut().graceful_shutdown(),
        }
        connection.await
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
