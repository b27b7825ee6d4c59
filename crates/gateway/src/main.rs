//! `kafka-edge`: run the gateway, or validate API definitions.

use anyhow::Context;
use clap::builder::TypedValueParser as _;
use clap::{Parser, Subcommand, ValueEnum};
use kafka_edge_endpoint_kafka::{ConsumerOptions, GroupProtocol, KafkaClients, ProducerPool};
use kafka_edge_gateway::forwarded::TrustedProxies;
use kafka_edge_gateway::listener::{
    ClientAuth, ListenerOptions, Tls, TlsFiles, DEFAULT_DRAIN_TIMEOUT, DEFAULT_HEADER_TIMEOUT, DEFAULT_MAX_CONNECTIONS,
};
use kafka_edge_gateway::observe::Metrics;
use kafka_edge_gateway::otel::{OtlpSettings, Tracer};
use kafka_edge_gateway::reload::Definitions;
use kafka_edge_gateway::{ApiTable, Gateway, LoadedApi, Options as GatewayOptions};
use kafka_edge_message::DEFAULT_MAX_MESSAGE_BYTES;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

mod logging;
mod subscriptions;

/// How often the definition files are read again for changes.
const RELOAD_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// `0.1.0 (<git revision>)`: the revision is `unknown` for a build outside a git checkout.
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("KAFKA_EDGE_REVISION"), ")");

#[derive(Parser)]
#[command(
    name = "kafka-edge",
    version = VERSION,
    about = "An event-native API gateway that puts Apache Kafka behind HTTP.",
    after_help = "Logs go to stderr. RUST_LOG sets the level, in tracing's filter syntax (default `info`; \
                  e.g. RUST_LOG=debug, or RUST_LOG=info,librdkafka=debug for librdkafka's own lines)."
)]
struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "KAFKA_EDGE_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// How subscriptions' consumers join their groups, and how long http-get keeps them.
#[derive(clap::Args)]
struct ConsumerArgs {
    /// Consumer group protocol: `consumer` (KIP-848, Kafka 4.0+: no initial rebalance delay),
    /// `classic`, or `auto` (consumer where the cluster supports it, learnt once per cluster).
    #[arg(long, env = "KAFKA_EDGE_GROUP_PROTOCOL", default_value = "auto", value_name = "auto|classic|consumer")]
    group_protocol: GroupProtocol,
    /// Seconds an http-get consumer stays in its group after a response, for the same client's
    /// next GET (0: it leaves with every response).
    #[arg(long, env = "KAFKA_EDGE_HTTP_GET_KEEP_WARM", default_value_t = ConsumerOptions::DEFAULT_KEEP_WARM_FOR.as_secs(), value_name = "SECONDS")]
    http_get_keep_warm: u64,
    /// Most http-get consumers kept warm at once, over every API.
    #[arg(long, env = "KAFKA_EDGE_MAX_WARM_CONSUMERS", default_value_t = ConsumerOptions::DEFAULT_MAX_WARM, value_name = "N")]
    max_warm_consumers: usize,
    /// Most Kafka consumers for subscriptions at once, over every API (each about 4 threads and
    /// 0.5 MiB); past it http-get answers 503, SSE an error event, WebSocket closes with 1013.
    #[arg(long, env = "KAFKA_EDGE_MAX_CONSUMERS", default_value_t = ConsumerOptions::DEFAULT_MAX_CONSUMERS, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=1_000_000).map(|n| n as usize))]
    max_consumers: usize,
    /// Most such consumers for one client address (after --trusted-proxies).
    #[arg(long, env = "KAFKA_EDGE_MAX_CONSUMERS_PER_ADDRESS", default_value_t = ConsumerOptions::DEFAULT_MAX_CONSUMERS_PER_ADDRESS,
          value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1_000_000).map(|n| n as usize))]
    max_consumers_per_address: usize,
}

impl ConsumerArgs {
    fn options(&self) -> ConsumerOptions {
        ConsumerOptions {
            group_protocol: self.group_protocol,
            keep_warm_for: std::time::Duration::from_secs(self.http_get_keep_warm),
            max_warm: self.max_warm_consumers,
            max_consumers: self.max_consumers,
            max_consumers_per_address: self.max_consumers_per_address,
        }
    }
}

/// How requests are served, beyond the listener.
#[derive(clap::Args)]
struct ServingArgs {
    /// Reverse proxies whose Forwarded / X-Forwarded-For headers name the client, as a
    /// comma-separated list of addresses and CIDR networks (default: none, headers not read).
    #[arg(long, env = "KAFKA_EDGE_TRUSTED_PROXIES", value_name = "CIDR,...", default_value = "")]
    trusted_proxies: TrustedProxies,
    /// Largest message a client may send, in bytes: an http-post body, a WebSocket frame; the
    /// producers take records this large (the Kafka cluster keeps its own limit).
    #[arg(
        long,
        env = "KAFKA_EDGE_MAX_MESSAGE_BYTES",
        default_value_t = DEFAULT_MAX_MESSAGE_BYTES,
        value_name = "BYTES",
        value_parser = clap::value_parser!(u32).range(1024..=900_000_000).map(|bytes| bytes as usize)
    )]
    max_message_bytes: usize,
    /// Seconds a produced record may wait for the Kafka cluster's acknowledgement; then the
    /// request fails (http-post 504) and the record is no longer sent (librdkafka's
    /// message.timeout.ms).
    #[arg(long, env = "KAFKA_EDGE_PRODUCE_TIMEOUT", value_name = "SECONDS",
          default_value_t = kafka_edge_endpoint_kafka::DEFAULT_PRODUCE_TIMEOUT.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    produce_timeout: u64,
    /// Seconds the open SSE and WebSocket streams of an API version that a reload replaced or
    /// removed keep running; then they end (SSE `goaway`, WebSocket 1013).
    #[arg(long, env = "KAFKA_EDGE_RELOAD_GRACE", value_name = "SECONDS",
          default_value_t = kafka_edge_gateway::apis::DEFAULT_RELOAD_GRACE.as_secs(),
          value_parser = clap::value_parser!(u64).range(0..=86_400))]
    reload_grace: u64,
    /// One log line per request (and per stream opening and end), at INFO on the
    /// `kafka_edge::access` target.
    #[arg(long, env = "KAFKA_EDGE_ACCESS_LOG", value_enum, default_value_t = Switch::On)]
    access_log: Switch,
    /// /ready answers 503 while the Kafka cluster of any API is known unreachable (by default one
    /// unreachable cluster does not take every replica out of rotation).
    #[arg(long, env = "KAFKA_EDGE_READY_REQUIRES_CLUSTERS")]
    ready_requires_clusters: bool,
}

/// How the client listener accepts connections.
#[derive(clap::Args)]
struct ListenerArgs {
    /// Serve HTTPS: the PEM certificate chain (re-read when the file changes).
    #[arg(long, env = "KAFKA_EDGE_TLS_CERT", value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "KAFKA_EDGE_TLS_KEY", value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Ask clients for a certificate that chains to this PEM CA (for mtls plans).
    #[arg(long, env = "KAFKA_EDGE_TLS_CLIENT_CA", value_name = "FILE", requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
    /// With --tls-client-ca: whether a client must present a certificate.
    #[arg(long, env = "KAFKA_EDGE_TLS_CLIENT_AUTH", value_enum, default_value_t = ClientAuth::Required, requires = "tls_client_ca")]
    tls_client_auth: ClientAuth,
    /// Seconds a client has to send a complete request head (and to finish the TLS handshake),
    /// counted from the connection's start or the end of its previous response.
    #[arg(long, env = "KAFKA_EDGE_HEADER_TIMEOUT", value_name = "SECONDS", default_value_t = DEFAULT_HEADER_TIMEOUT.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    header_timeout: u64,
    /// Serve the admin API over HTTPS with this PEM certificate chain (required for a non-loopback
    /// --admin-listen while the admin API is on).
    #[arg(long, env = "KAFKA_EDGE_ADMIN_TLS_CERT", value_name = "FILE", requires = "admin_tls_key")]
    admin_tls_cert: Option<PathBuf>,
    /// The PEM private key of --admin-tls-cert.
    #[arg(long, env = "KAFKA_EDGE_ADMIN_TLS_KEY", value_name = "FILE", requires = "admin_tls_cert")]
    admin_tls_key: Option<PathBuf>,
    /// Open client connections at most; more are closed when accepted.
    #[arg(long, env = "KAFKA_EDGE_MAX_CONNECTIONS", value_name = "N", default_value_t = DEFAULT_MAX_CONNECTIONS,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000).map(|n| n as usize))]
    max_connections: usize,
    /// Seconds in-flight requests may run after SIGTERM (SSE streams end at once with a goaway,
    /// WebSocket sessions with 1013); then their connections are closed and the process exits.
    #[arg(long, env = "KAFKA_EDGE_DRAIN_TIMEOUT", value_name = "SECONDS", default_value_t = DEFAULT_DRAIN_TIMEOUT.as_secs(),
          value_parser = clap::value_parser!(u64).range(0..=3600))]
    drain_timeout: u64,
}

impl ListenerArgs {
    /// The admin listener's TLS, if configured.
    fn admin_tls(&self) -> anyhow::Result<Option<Arc<Tls>>> {
        match (&self.admin_tls_cert, &self.admin_tls_key) {
            (Some(certificate), Some(key)) => {
                let files = TlsFiles {
                    certificate: certificate.clone(),
                    key: key.clone(),
                    client_ca: None,
                    client_auth: ClientAuth::default(),
                };
                Ok(Some(Tls::load(files).context("--admin-tls-cert / --admin-tls-key")?))
            }
            _ => Ok(None),
        }
    }

    fn options(self) -> anyhow::Result<ListenerOptions> {
        let tls = match (self.tls_cert, self.tls_key) {
            (Some(certificate), Some(key)) => {
                let files =
                    TlsFiles { certificate, key, client_ca: self.tls_client_ca, client_auth: self.tls_client_auth };
                Some(Tls::load(files).context("--tls-cert / --tls-key / --tls-client-ca")?)
            }
            _ => None,
        };
        Ok(ListenerOptions {
            tls,
            header_timeout: std::time::Duration::from_secs(self.header_timeout),
            max_connections: self.max_connections,
            drain_timeout: std::time::Duration::from_secs(self.drain_timeout),
            metrics: None,
        })
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Switch {
    On,
    Off,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the APIs defined in the given files and directories.
    Run {
        /// An API definition file (.json, .yaml, .yml) or a directory of them; repeatable.
        #[arg(long = "api", required = true, value_name = "FILE|DIR")]
        apis: Vec<PathBuf>,
        /// Address to listen on.
        #[arg(long, env = "KAFKA_EDGE_LISTEN", default_value = "0.0.0.0:8082", value_name = "ADDR")]
        listen: String,
        /// Where runtime state (webhook subscriptions) lives: file:PATH or kafka://HOST:PORT/TOPIC.
        #[arg(long, env = "KAFKA_EDGE_STATE", default_value = kafka_edge_gateway::state::DEFAULT_STATE, value_name = "URI")]
        state: String,
        /// TLS/SASL for a kafka:// state: a Kafka endpoint's `security` block, as JSON or YAML.
        #[arg(long, env = "KAFKA_EDGE_STATE_SECURITY", value_name = "FILE")]
        state_security: Option<PathBuf>,
        /// Address of the admin listener (/health, /ready, /metrics; the admin API when
        /// KAFKA_EDGE_ADMIN_TOKEN is set), or `off`.
        #[arg(long, env = "KAFKA_EDGE_ADMIN_LISTEN", default_value = kafka_edge_gateway::admin::DEFAULT_LISTEN, value_name = "ADDR|off")]
        admin_listen: String,
        /// Static webhook subscriptions: a JSON list of {"api","id","plan","configuration"}.
        #[arg(long, value_name = "FILE")]
        subscriptions: Option<PathBuf>,
        /// API keys of api-key plans: a JSON list of {"api","key","plan","subscription"?}, put
        /// into the state (by hash) at start.
        #[arg(long, env = "KAFKA_EDGE_API_KEYS", value_name = "FILE")]
        api_keys: Option<PathBuf>,
        #[command(flatten)]
        listener: Box<ListenerArgs>,
        #[command(flatten)]
        serving: Box<ServingArgs>,
        #[command(flatten)]
        consumers: Box<ConsumerArgs>,
    },
    /// Print the AsyncAPI 3.0 document of an API definition (exit 1 with its problems if invalid).
    Asyncapi {
        /// An API definition file (.json, .yaml, .yml).
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Check API definitions: exit 0 when all are valid, otherwise print one line per problem.
    Validate {
        /// API definition files (.json, .yaml, .yml) or directories of them, searched recursively.
        #[arg(required = true, value_name = "FILE|DIR")]
        paths: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    let ca_bundle = point_openssl_at_system_certificates();
    tune_malloc();
    let cli = Cli::parse();
    let log = init_logging(cli.log_format);
    if let Some(bundle) = ca_bundle {
        tracing::debug!(bundle = %bundle.display(), "Trusting the system's CA certificates.");
    }
    let result = match cli.command {
        Command::Run {
            apis,
            listen,
            state,
            state_security,
            admin_listen,
            subscriptions,
            api_keys,
            listener,
            serving,
            consumers,
        } => listener.admin_tls().and_then(|admin_tls| {
            let listener = listener.options()?;
            let admin_listener = ListenerOptions { tls: admin_tls, metrics: None, ..listener.clone() };
            let admin_listen = Some(admin_listen);
            let options =
                subscriptions::Options { state, state_security, admin_listen, admin_listener, subscriptions, api_keys };
            let ServingArgs {
                trusted_proxies,
                max_message_bytes,
                produce_timeout,
                reload_grace,
                access_log,
                ready_requires_clusters,
            } = *serving;
            let access_log = matches!(access_log, Switch::On);
            let serving =
                GatewayOptions { max_message_bytes, trusted_proxies, listener, access_log, ..Default::default() };
            let reload_grace = std::time::Duration::from_secs(reload_grace);
            let running = Running {
                reload_grace,
                produce_timeout: std::time::Duration::from_secs(produce_timeout),
                ready_requires_clusters,
            };
            run(apis, listen, serving, options, consumers.options(), running)
        }),
        Command::Validate { paths } => Ok(validate(&paths)),
        Command::Asyncapi { file } => Ok(asyncapi(&file)),
    };
    let code = match result {
        Ok(code) => code,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    };
    log.flush();
    code
}

fn init_logging(format: LogFormat) -> logging::Flusher {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (lines, flusher) = logging::stderr_lines();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(lines);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.event_format(logging::JsonLines).init(),
    }
    flusher
}

fn validate(paths: &[PathBuf]) -> ExitCode {
    match Definitions::load(paths.to_vec(), Arc::new(KafkaClients::default())) {
        Ok(loaded) if loaded.is_empty() => {
            println!(
                "no API definition (.json, .yaml, .yml) found in {}",
                paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
            );
            ExitCode::FAILURE
        }
        Ok(loaded) => {
            for (file, api, ignored) in loaded.files() {
                for ignored in ignored {
                    println!("warning: {ignored}");
                }
                println!("ok: {} (API `{}`)", file.display(), api.id);
            }
            ExitCode::SUCCESS
        }
        Err(problems) => {
            for problem in &problems {
                println!("{problem}");
            }
            ExitCode::FAILURE
        }
    }
}

fn asyncapi(file: &std::path::Path) -> ExitCode {
    match Definitions::load(vec![file.to_path_buf()], Arc::new(KafkaClients::default())) {
        Ok(loaded) => match loaded.apis().first() {
            Some(api) => {
                let document = kafka_edge_gateway::asyncapi::document(&api.definition);
                println!("{}", serde_json::to_string_pretty(&document).unwrap_or_default());
                ExitCode::SUCCESS
            }
            None => {
                println!("no API definition (.json, .yaml, .yml) found at {}", file.display());
                ExitCode::FAILURE
            }
        },
        Err(problems) => {
            for problem in &problems {
                println!("{problem}");
            }
            ExitCode::FAILURE
        }
    }
}

/// The `run` options that the gateway library does not take.
struct Running {
    reload_grace: std::time::Duration,
    produce_timeout: std::time::Duration,
    ready_requires_clusters: bool,
}

fn run(
    paths: Vec<PathBuf>,
    listen: String,
    serving: GatewayOptions,
    options: subscriptions::Options,
    consumers: ConsumerOptions,
    running: Running,
) -> anyhow::Result<ExitCode> {
    // One pool for every API, the webhook DLQs included: flushed once, when nothing publishes.
    let producers = Arc::new(
        ProducerPool::new()
            .with_max_message_bytes(serving.max_message_bytes)
            .with_produce_timeout(running.produce_timeout),
    );
    let clients = Arc::new(KafkaClients::new(producers.clone(), consumers));
    let definitions = match Definitions::load(paths.clone(), clients.clone()) {
        Ok(definitions) => definitions,
        Err(problems) => {
            for problem in &problems {
                tracing::error!("Invalid API definition: {problem}");
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    if definitions.is_empty() {
        anyhow::bail!("no API definition (.json, .yaml, .yml) found in {paths:?}");
    }
    let otlp = OtlpSettings::from_env(|name| std::env::var(name).ok()).context("OpenTelemetry export")?;
    for (_, _, ignored) in definitions.files() {
        for ignored in ignored {
            tracing::warn!("{ignored}");
        }
    }
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        let admin_shutdown = CancellationToken::new();
        let apis = ApiTable::with_grace(definitions.apis(), running.reload_grace);
        let observed = Arc::new(kafka_edge_gateway::admin::Observed {
            readiness: serving.readiness.clone(),
            metrics: serving.metrics.clone(),
            clients: clients.clone(),
            apis: apis.clone(),
            ready_requires_clusters: running.ready_requires_clusters,
        });
        let started =
            subscriptions::start(apis.clone(), options, observed, shutdown.clone(), admin_shutdown.clone()).await?;
        let tracer = match otlp {
            Some(settings) => {
                let endpoint = settings.endpoint.clone();
                let tracer = Tracer::start(settings).context("OpenTelemetry export")?;
                tracing::info!(%endpoint, "Exporting spans over OTLP.");
                Some(tracer)
            }
            None => None,
        };
        let serving = GatewayOptions { state: Some(started.store), tracer: tracer.clone(), ..serving };
        let (readiness, metrics) = (serving.readiness.clone(), serving.metrics.clone());
        let gateway = Gateway::with_table(apis.clone(), shutdown.clone(), serving);
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .with_context(|| format!("cannot listen on {listen} (set by --listen or KAFKA_EDGE_LISTEN)"))?;
        readiness.set_listening();
        tokio::spawn(stop_on_signal(shutdown.clone(), readiness));
        warm_producers(&apis.current(), &metrics);
        tokio::spawn(follow_definitions(definitions, gateway.clone(), apis, metrics, shutdown.clone()));
        let served = gateway.serve(listener).await;
        shutdown.cancel();
        started.delivery.await.ok();
        kafka_edge_gateway::flush(producers).await;
        admin_shutdown.cancel();
        if let Some(tracer) = tracer {
            // The spans of the last requests, within the exporter's own timeout.
            tracer.flush(std::time::Duration::from_secs(10)).await;
        }
        tracing::info!("Gateway stopped.");
        served?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Reads the definitions again every second and on SIGHUP, and serves what changed.
async fn follow_definitions(
    mut definitions: Definitions,
    gateway: Arc<Gateway>,
    apis: Arc<ApiTable>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let mut hangups = hangups();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(RELOAD_INTERVAL) => {}
            Some(()) = hangups.recv() => tracing::info!("SIGHUP received, reading the API definitions again."),
        }
        let reloaded = tokio::task::spawn_blocking(move || {
            let changes = definitions.reload();
            (definitions, changes)
        })
        .await;
        let Ok((read, changes)) = reloaded else { return };
        definitions = read;
        if changes.is_empty() {
            continue;
        }
        apis.replace(definitions.apis());
        let new: Vec<Arc<LoadedApi>> = changes.added.into_iter().chain(changes.replaced).collect();
        for api in &new {
            gateway.announce(api);
        }
        warm_producers(&new, &metrics);
    }
}

/// SIGHUP, as a channel that never yields where there is no such signal.
fn hangups() -> tokio::sync::mpsc::Receiver<()> {
    let (sender, receiver) = tokio::sync::mpsc::channel(1);
    #[cfg(unix)]
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(mut signal) => {
            tokio::spawn(async move {
                while signal.recv().await.is_some() {
                    if sender.send(()).await.is_err() {
                        return;
                    }
                }
            });
        }
        Err(error) => tracing::warn!(%error, "Cannot listen for SIGHUP; definitions are still read every second."),
    }
    #[cfg(not(unix))]
    drop(sender);
    receiver
}

/// Creates the producers of APIs whose producer configuration is static, in the background, so
/// that the first POST does not wait for one (200-500 ms on the test bed).
fn warm_producers(apis: &[Arc<LoadedApi>], metrics: &Arc<Metrics>) {
    for api in apis {
        let (id, endpoint, metrics) = (Arc::<str>::from(api.id.as_str()), api.endpoint.clone(), metrics.clone());
        tokio::spawn(async move {
            match endpoint.warm().await {
                Ok(()) => {
                    tracing::debug!(api = %id, "Producer ready.");
                    metrics.clusters.answered(&id);
                }
                // The first request that needs it tries again and reports the cause.
                Err(failure) => {
                    tracing::info!(api = %id, reason = %failure.message, "Producer not created at start.");
                    metrics.clusters.failed(&id, &failure);
                }
            }
        });
    }
}

/// On SIGINT or SIGTERM: `/ready` turns 503 at once, then the listener drains.
async fn stop_on_signal(shutdown: CancellationToken, readiness: Arc<kafka_edge_gateway::observe::Readiness>) {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(error) => {
                tracing::error!(%error, "Cannot listen for SIGTERM.");
                let _ = interrupt.await;
                readiness.set_draining();
                shutdown.cancel();
                return;
            }
        };
        tokio::select! {
            _ = interrupt => tracing::info!("SIGINT received, shutting down."),
            _ = terminate.recv() => tracing::info!("SIGTERM received, shutting down."),
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    readiness.set_draining();
    shutdown.cancel();
}

/// glibc gives each thread that allocates its own malloc arena, up to 8 per core. Every Kafka
/// consumer brings four librdkafka threads, and buffers freed in one arena are not reused by the
/// others, so a gateway serving http-get grew to ~80 MiB where two arenas hold it under 40 MiB
/// (BENCHMARKS.md). `MALLOC_ARENA_MAX`, when set, still decides.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_malloc() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes allocator tuning; it runs before any thread is started.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
    // glibc keeps what consumers freed inside its arenas (each prefetches up to 4 MiB of records,
    // and consumers come and go with their clients): under a soak the heap peaked at 27 MiB while
    // RSS climbed to 86 MiB in 10 minutes (BENCHMARKS.md). Giving the free pages back every 10 s
    // keeps RSS near what is in use.
    let trimmer = std::thread::Builder::new().name("malloc-trim".into()).spawn(|| loop {
        std::thread::sleep(std::time::Duration::from_secs(10));
        // SAFETY: malloc_trim only returns free memory to the kernel; it is thread-safe.
        unsafe {
            libc::malloc_trim(0);
        }
    });
    if let Err(error) = trimmer {
        eprintln!("kafka-edge: no malloc-trim thread ({error}); memory freed by consumers stays in the process");
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_malloc() {}

/// The static binary's OpenSSL was built with its own directory, which does not exist where the
/// binary runs: without a trust store, TLS to Kafka (librdkafka) and to webhooks (reqwest) would
/// trust nothing. Points OpenSSL at the first CA bundle of the usual distributions (and of the
/// container image) through `SSL_CERT_FILE`, which both honour, unless `SSL_CERT_FILE` or
/// `SSL_CERT_DIR` already says where. Runs before any thread exists.
#[cfg(feature = "static")]
fn point_openssl_at_system_certificates() -> Option<PathBuf> {
    const BUNDLES: [&str; 5] = [
        "/etc/ssl/certs/ca-certificates.crt", // Debian, Ubuntu, Alpine, distroless
        "/etc/pki/tls/certs/ca-bundle.crt",   // Fedora, RHEL
        "/etc/ssl/ca-bundle.pem",             // openSUSE
        "/etc/ssl/cert.pem",                  // Alpine, macOS
        "/etc/pki/tls/cacert.pem",            // OpenELEC
    ];
    if std::env::var_os("SSL_CERT_FILE").is_some() || std::env::var_os("SSL_CERT_DIR").is_some() {
        return None;
    }
    let bundle = BUNDLES.iter().map(PathBuf::from).find(|path| path.is_file())?;
    std::env::set_var("SSL_CERT_FILE", &bundle);
    Some(bundle)
}

/// A build that links the system's OpenSSL finds the system's CA certificates itself.
#[cfg(not(feature = "static"))]
fn point_openssl_at_system_certificates() -> Option<PathBuf> {
    None
}
