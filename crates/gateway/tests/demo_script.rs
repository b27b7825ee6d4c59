//! `scripts/demo` as a user stops it: SIGTERM or SIGINT to the script stops the gateway and the
//! broker the script started, and leaves alone a broker that was already running. The demo runs
//! this build's binary on a broker of its own (own directory and ports), never the shared test bed.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_kafka-edge");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Loopback ports nothing listens on right now.
fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<TcpListener> = (0..N).map(|_| TcpListener::bind("127.0.0.1:0").expect("free port")).collect();
    std::array::from_fn(|i| listeners[i].local_addr().expect("address").port())
}

/// POSTs `body` to the demo API; the response's status line and rest, or "" when no answer.
fn post(port: u16, body: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut stream) = TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_secs(1))
    else {
        return String::new();
    };
    let request = format!(
        "POST /demo HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut response = String::new();
    if stream.write_all(request.as_bytes()).is_ok() {
        let _ = stream.read_to_string(&mut response);
    }
    response
}

fn accepts(port: u16) -> bool {
    TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_millis(500)).is_ok()
}

/// Waits for `condition`, checking every 200 ms, for at most `limit`.
fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    condition()
}

/// A private broker and gateway address, as environment for `scripts/demo` and `testkit/kafka`.
struct Demo {
    dir: tempfile::TempDir,
    kafka_port: u16,
    gateway_port: u16,
    env: Vec<(String, String)>,
}

/// A failed assertion must not leave the private broker running.
impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.testkit("down");
    }
}

impl Demo {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let [kafka, controller, sasl, ssl, sasl_ssl, gateway] = free_ports::<6>();
        let env = [
            ("KAFKA_EDGE_TESTKIT_DIR", dir.path().join("kafka").display().to_string()),
            ("KAFKA_EDGE_TESTKIT_PLAINTEXT_PORT", kafka.to_string()),
            ("KAFKA_EDGE_TESTKIT_CONTROLLER_PORT", controller.to_string()),
            ("KAFKA_EDGE_TESTKIT_SASL_PLAINTEXT_PORT", sasl.to_string()),
            ("KAFKA_EDGE_TESTKIT_SSL_PORT", ssl.to_string()),
            ("KAFKA_EDGE_TESTKIT_SASL_SSL_PORT", sasl_ssl.to_string()),
            ("KAFKA_EDGE_LISTEN", format!("127.0.0.1:{gateway}")),
            ("KAFKA_EDGE_ADMIN_LISTEN", "127.0.0.1:0".to_string()),
            ("KAFKA_EDGE_STATE", format!("file:{}", dir.path().join("state").display())),
            ("KAFKA_EDGE_DEMO_BINARY", BINARY.to_string()),
        ]
        .map(|(name, value)| (name.to_string(), value));
        Self { dir, kafka_port: kafka, gateway_port: gateway, env: env.to_vec() }
    }

    fn command(&self, program: &str) -> Command {
        use std::os::unix::process::CommandExt as _;
        let mut command = Command::new(repo().join(program));
        command.current_dir(repo()).envs(self.env.iter().map(|(k, v)| (k, v)));
        // As from a terminal: a test command started as a background job (`cmd &`, nohup) passes
        // SIGINT on ignored, and bash cannot trap a signal ignored when it started.
        // SAFETY: between fork and exec only the async-signal-safe signal() is called.
        unsafe {
            command.pre_exec(|| {
                libc::signal(libc::SIGINT, libc::SIG_DFL);
                Ok(())
            });
        }
        command
    }

    fn testkit(&self, action: &str) -> ExitStatus {
        self.command("testkit/kafka").arg(action).stdout(Stdio::null()).stderr(Stdio::null()).status().expect("testkit")
    }

    fn start(&self) -> Child {
        let log = std::fs::File::create(self.dir.path().join("demo.log")).expect("log file");
        let child = self
            .command("scripts/demo")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("scripts/demo");
        let ready =
            eventually(Duration::from_secs(180), || post(self.gateway_port, "hello").starts_with("HTTP/1.1 202"));
        assert!(ready, "the demo never answered 202:\n{}", self.log());
        child
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("demo.log")).unwrap_or_default()
    }

    /// Sends `signal` to the script only (not its process group) and waits for it to exit.
    fn stop_with(&self, mut demo: Child, signal: &str) {
        let sent = Command::new("kill").args(["-s", signal, &demo.id().to_string()]).status().expect("kill");
        assert!(sent.success());
        let exited = eventually(Duration::from_secs(60), || demo.try_wait().ok().flatten().is_some());
        assert!(exited, "scripts/demo still running 60 s after SIG{signal}:\n{}", self.log());
        assert!(!accepts(self.gateway_port), "the gateway still listens after SIG{signal}:\n{}", self.log());
    }
}

#[test]
fn signals_stop_the_gateway_and_only_the_broker_the_demo_started() {
    let shared_bed: u16 = std::env::var("KAFKA_EDGE_BOOTSTRAP")
        .ok()
        .and_then(|bootstrap| bootstrap.rsplit(':').next().and_then(|port| port.parse().ok()))
        .unwrap_or(39092);
    assert!(accepts(shared_bed), "the shared test bed is up");

    // The demo starts its broker: SIGTERM stops both.
    let demo = Demo::new();
    let script = demo.start();
    demo.stop_with(script, "TERM");
    assert!(!accepts(demo.kafka_port), "the broker the demo started is stopped:\n{}", demo.log());

    // A broker that was already running is left alone: SIGINT stops the gateway only.
    let demo = Demo::new();
    assert!(demo.testkit("up").success());
    let script = demo.start();
    demo.stop_with(script, "INT");
    assert!(accepts(demo.kafka_port), "the broker the demo found running still runs:\n{}", demo.log());

    assert!(accepts(shared_bed), "the shared test bed was not touched");
}
