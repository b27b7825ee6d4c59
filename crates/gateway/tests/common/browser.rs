//! Headless Chromium driving a page of the test's own: the page reports what the browser saw
//! back to the server that served it, so tests await what happened instead of a time budget.
//! Chromium is required: without it the tests fail, they never skip.

use axum::extract::State;
use axum::response::Html;
use axum::routing::{get, post};
use serde_json::Value;
use std::net::SocketAddr;
use std::process::Stdio;
use tokio::sync::mpsc;

use super::TIMEOUT;

const CHROMIUM: &str = "chromium";

/// What a page reports: a JSON object with at least `kind`.
pub type Report = Value;

/// Serves `page` at `/` and collects what it POSTs to `/report`.
pub async fn page_server(page: &'static str) -> (SocketAddr, mpsc::UnboundedReceiver<Report>) {
    let (sender, receiver) = mpsc::unbounded_channel::<Report>();
    let app = axum::Router::new()
        .route("/", get(move || async move { Html(page) }))
        .route(
            "/report",
            post(|State(sender): State<mpsc::UnboundedSender<Report>>, body: String| async move {
                let _ = sender.send(serde_json::from_str(&body).expect("report is JSON"));
            }),
        )
        .with_state(sender);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind page server");
    let address = listener.local_addr().expect("test setup");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("page server") });
    (address, receiver)
}

/// Headless Chromium on `url`, killed when dropped.
pub struct Browser {
    child: tokio::process::Child,
    log: std::path::PathBuf,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// `extra` are more Chromium switches (`--disable-web-security`).
    pub fn open(url: &str, extra: &[&str]) -> Self {
        let profile = tempfile::tempdir().expect("profile dir");
        let log = profile.path().join("chromium.log");
        let spawned = tokio::process::Command::new(CHROMIUM)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ])
            .args(extra)
            .arg(format!("--user-data-dir={}", profile.path().join("profile").display()))
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .kill_on_drop(true)
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(error) => panic!(
                "cannot run `{CHROMIUM}` ({error}): this test needs a real browser; install Debian's `chromium` package (scripts/bootstrap does)"
            ),
        };
        Self { child, log, _profile: profile }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        log.lines().rev().take(20).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}

/// The next report of `kind`, collecting every report into `seen`.
pub async fn next(
    reports: &mut mpsc::UnboundedReceiver<Report>,
    seen: &mut Vec<Report>,
    kind: &str,
    browser: &mut Browser,
) -> Report {
    let waited = tokio::time::timeout(TIMEOUT, async {
        loop {
            tokio::select! {
                report = reports.recv() => {
                    let report = report.expect("page server alive");
                    seen.push(report.clone());
                    if report["kind"] == kind {
                        return Ok(report);
                    }
                }
                status = browser.child.wait() => return Err(status),
            }
        }
    })
    .await;
    match waited {
        Ok(Ok(report)) => report,
        Ok(Err(status)) => panic!(
            "chromium exited ({status:?}) before the page reported `{kind}`; reports: {seen:?}\n{}",
            browser.log_tail()
        ),
        Err(_) => panic!(
            "the page did not report `{kind}` within {TIMEOUT:?}; reports: {seen:?}\nchromium log:\n{}",
            browser.log_tail()
        ),
    }
}
