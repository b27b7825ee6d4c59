//! The binary's log output: text or JSON lines on stderr, written by a thread of their own so that
//! a request never waits for the terminal or a log collector (the access log writes one line per
//! request). When that thread falls behind by more than `QUEUED_LINES`, lines are dropped and
//! counted, never blocking; the count is written once it catches up.

use serde_json::{Map, Value};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

/// Lines waiting for the writer thread at most.
const QUEUED_LINES: usize = 65_536;
/// Longest wait for the queued lines at exit.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

enum Queued {
    Line(Vec<u8>),
    Flush(SyncSender<()>),
}

/// Hands each formatted line to the writer thread.
#[derive(Clone)]
pub struct Lines {
    queue: SyncSender<Queued>,
    dropped: Arc<AtomicU64>,
}

/// Kept by `main` to wait for the queued lines before the process exits.
pub struct Flusher(SyncSender<Queued>);

impl Flusher {
    pub fn flush(&self) {
        let (done, finished) = mpsc::sync_channel(1);
        if self.0.send(Queued::Flush(done)).is_ok() {
            let _ = finished.recv_timeout(FLUSH_TIMEOUT);
        }
    }
}

/// Starts the writer thread on stderr.
pub fn stderr_lines() -> (Lines, Flusher) {
    let (queue, queued) = mpsc::sync_channel(QUEUED_LINES);
    let dropped = Arc::new(AtomicU64::new(0));
    let counted = dropped.clone();
    let spawned = std::thread::Builder::new().name("log-writer".into()).spawn(move || write_lines(queued, &counted));
    if let Err(error) = spawned {
        eprintln!("cannot start the log writer thread: {error}");
    }
    (Lines { queue: queue.clone(), dropped }, Flusher(queue))
}

fn write_lines(queued: Receiver<Queued>, dropped: &AtomicU64) {
    let stderr = std::io::stderr();
    while let Ok(first) = queued.recv() {
        let mut out = stderr.lock();
        let mut next = Some(first);
        // Everything already queued goes out in one burst, then one flush.
        while let Some(item) = next {
            match item {
                Queued::Line(line) => {
                    let _ = out.write_all(&line);
                }
                Queued::Flush(done) => {
                    let _ = out.flush();
                    let _ = done.try_send(());
                }
            }
            next = queued.try_recv().ok();
        }
        let lost = dropped.swap(0, Ordering::Relaxed);
        if lost > 0 {
            let _ = writeln!(out, "{lost} log lines were dropped: the log output could not keep up");
        }
        let _ = out.flush();
    }
}

/// One write per formatted event (tracing-subscriber formats a whole line, then writes it once).
pub struct LineWriter<'a>(&'a Lines);

impl Write for LineWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        match self.0.queue.try_send(Queued::Line(bytes.to_vec())) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => {}
            Err(TrySendError::Full(_)) => {
                self.0.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Lines {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter(self)
    }
}

/// JSON lines in which every field is a JSON value: numbers and booleans as such, a list (a field
/// recorded with `?` whose Debug text is a list) as an array, the rest as strings.
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        context: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        let mut fields = Map::new();
        event.record(&mut JsonFields(&mut fields));
        let metadata = event.metadata();
        let mut line = Map::new();
        line.insert("timestamp".into(), Value::String(timestamp));
        line.insert("level".into(), Value::String(metadata.level().as_str().into()));
        line.insert("fields".into(), Value::Object(fields));
        line.insert("target".into(), Value::String(metadata.target().into()));
        if let Some(scope) = context.event_scope() {
            let spans: Vec<Value> = scope.from_root().map(|span| Value::String(span.name().into())).collect();
            line.insert("spans".into(), Value::Array(spans));
        }
        writeln!(writer, "{}", Value::Object(line))
    }
}

struct JsonFields<'a>(&'a mut Map<String, Value>);

impl Visit for JsonFields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        let value = match serde_json::from_str::<Value>(&text) {
            Ok(list @ Value::Array(_)) if text.starts_with('[') => list,
            _ => Value::String(text),
        };
        self.0.insert(field.name().into(), value);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), Value::String(value.into()));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(field.name().into(), Value::String(value.to_string()));
    }
}
