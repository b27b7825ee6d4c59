//! What every scenario shares: how much work to do, progress on stderr, the measured outcome, and
//! the CPU time the processes involved spent meanwhile.

use bytes::Bytes;
use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How much work a scenario does: a number of messages shared by all workers, or a wall-clock time.
pub enum Budget {
    Count(AtomicU64),
    Until(Instant),
}

impl Budget {
    pub fn new(count: u64, duration: Option<Duration>) -> Self {
        match duration {
            Some(duration) => Budget::Until(Instant::now() + duration),
            None => Budget::Count(AtomicU64::new(count)),
        }
    }

    /// Claims one message; false when the budget is spent.
    pub fn take(&self) -> bool {
        match self {
            Budget::Count(left) => {
                left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_ok()
            }
            Budget::Until(deadline) => Instant::now() < *deadline,
        }
    }
}

/// What a produce scenario sends: `concurrency` workers share the budget, each sending `payload`.
pub struct Load {
    pub budget: Arc<Budget>,
    pub concurrency: usize,
    pub payload: Bytes,
    /// A header every request carries (a plan's credential).
    pub credential: Option<(&'static str, String)>,
}

/// A counter of finished messages, printed to stderr every two seconds while it lives.
pub struct Progress {
    done: Arc<AtomicU64>,
    ticker: tokio::task::JoinHandle<()>,
}

impl Progress {
    pub fn start(label: &str, total: Option<u64>) -> Self {
        let done = Arc::new(AtomicU64::new(0));
        let counter = done.clone();
        let label = label.to_string();
        let ticker = tokio::spawn(async move {
            let started = Instant::now();
            let mut interval = tokio::time::interval(Duration::from_secs(2));
            interval.tick().await;
            loop {
                interval.tick().await;
                let n = counter.load(Ordering::Relaxed);
                let rate = n as f64 / started.elapsed().as_secs_f64();
                match total {
                    Some(total) => eprintln!("bench:   {label}: {n}/{total} messages, {rate:.0} msg/s"),
                    None => eprintln!("bench:   {label}: {n} messages, {rate:.0} msg/s"),
                }
            }
        });
        Self { done, ticker }
    }

    pub fn counter(&self) -> Arc<AtomicU64> {
        self.done.clone()
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.ticker.abort();
    }
}

/// A latency histogram in microseconds, 1 µs to 10 min, 3 significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("static histogram bounds are valid")
}

pub fn record(histogram: &mut Histogram<u64>, elapsed: Duration) {
    histogram.saturating_record(elapsed.as_micros().clamp(1, u128::from(u64::MAX)) as u64);
}

/// What one concurrent worker of a produce scenario measured.
pub type WorkerTally = (Histogram<u64>, u64, u64);

/// Sums the workers' latency histograms and their ok / failed counts.
pub fn merge_tallies(tallies: impl IntoIterator<Item = WorkerTally>) -> anyhow::Result<WorkerTally> {
    let mut latency = latency_histogram();
    let (mut ok, mut failed) = (0, 0);
    for (histogram, worker_ok, worker_failed) in tallies {
        latency.add(histogram).map_err(|e| anyhow::anyhow!("merging histograms: {e}"))?;
        ok += worker_ok;
        failed += worker_failed;
    }
    Ok((latency, ok, failed))
}

/// The outcome of one scenario.
pub struct RunStats {
    pub name: &'static str,
    /// Messages that made it (acknowledged, or read).
    pub messages: u64,
    /// Payload bytes of those messages.
    pub bytes: u64,
    pub elapsed: Duration,
    /// Failed messages or requests.
    pub errors: u64,
    /// Per message (produce) or per request (HTTP GET drain); none where there is no request.
    pub latency: Option<Histogram<u64>>,
    /// What the latency measures, for the report.
    pub latency_of: &'static str,
    /// HTTP requests made, where the scenario made any.
    pub requests: Option<u64>,
    pub cpu: Cpu,
    /// Why the scenario stopped before its budget was spent (rates then cover the part that ran).
    pub stalled: Option<String>,
}

impl RunStats {
    pub fn per_second(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    pub fn megabytes_per_second(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

/// CPU used during a scenario, in cores (CPU seconds per wall second).
#[derive(Clone, Copy, Default)]
pub struct Cpu {
    pub gateway: Option<f64>,
    pub bench: Option<f64>,
    pub broker: Option<f64>,
    /// All processes of the machine, this one and the others together.
    pub machine: Option<f64>,
}

/// CPU-time readings of the gateway, this process and the broker at the start of a scenario.
pub struct CpuSampler {
    pids: [Option<u32>; 3],
    start: [Option<f64>; 3],
    machine_start: Option<f64>,
    started: Instant,
}

impl CpuSampler {
    pub fn start(gateway: Option<u32>, broker: Option<u32>) -> Self {
        let pids = [gateway, Some(std::process::id()), broker];
        Self {
            start: pids.map(|pid| pid.and_then(cpu_seconds)),
            pids,
            machine_start: machine_busy_seconds(),
            started: Instant::now(),
        }
    }

    pub fn finish(&self) -> Cpu {
        let wall = self.started.elapsed().as_secs_f64().max(f64::EPSILON);
        let used = |i: usize| Some((cpu_seconds(self.pids[i]?)? - self.start[i]?) / wall);
        let machine = machine_busy_seconds().zip(self.machine_start).map(|(end, start)| (end - start) / wall);
        Cpu { gateway: used(0), bench: used(1), broker: used(2), machine }
    }
}

/// The /proc clock tick (USER_HZ), 100 on every Linux architecture we run on.
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU seconds all CPUs spent neither idle nor waiting for I/O, from the first line of /proc/stat.
fn machine_busy_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<f64> = stat.lines().next()?.split_whitespace().skip(1).map(|t| t.parse().unwrap_or(0.0)).collect();
    let idle = ticks.get(3)? + ticks.get(4).unwrap_or(&0.0);
    Some((ticks.iter().sum::<f64>() - idle) / TICKS_PER_SECOND)
}

/// User + system CPU seconds of a process (all its threads), from /proc/<pid>/stat.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces; the fields after it are space-separated.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SECOND)
}
