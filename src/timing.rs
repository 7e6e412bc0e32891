//! Phase timings as debug-level log events (`trialpipe -v` shows them): how long each part of a
//! stage took, for finding where a large run spends its time. Nothing is printed here; the
//! binary's log subscriber decides whether the events are shown.

use std::time::Instant;

/// Run `f` and log how long it took under the name `what`: wall time, and where the system
/// tells (Linux), the CPU time of the whole process, which shows how much ran in parallel.
pub fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let cpu = cpu_seconds();
    let out = f();
    let wall = start.elapsed().as_secs_f64();
    match (cpu, cpu_seconds(), memory_mib()) {
        (Some(a), Some(b), Some((rss, peak))) => tracing::debug!(
            "{what}: {wall:.3} s (cpu {:.2} s; memory {rss} MiB, peak so far {peak} MiB)",
            b - a
        ),
        _ => tracing::debug!("{what}: {wall:.3} s"),
    }
    out
}

/// Resident memory of this process now and at its peak so far, in MiB, from `/proc/self/status`
/// (None elsewhere).
fn memory_mib() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib = |key: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(key))?;
        line[key.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    };
    Some((kib("VmRSS:")? / 1024, kib("VmHWM:")? / 1024))
}

/// User plus system CPU time of this process so far, from `/proc/self/stat` (None elsewhere).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces): utime and
    // stime are fields 14 and 15 of the line, in clock ticks (100 per second on Linux).
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Consecutive laps of one phase: each [`Laps::lap`] logs the time since the previous lap.
pub struct Laps {
    prefix: &'static str,
    last: Instant,
}

impl Laps {
    /// Start timing; every lap is logged as `<prefix>: <name>`.
    pub fn start(prefix: &'static str) -> Laps {
        Laps {
            prefix,
            last: Instant::now(),
        }
    }

    /// Log the time since the previous lap (or the start) under `name`.
    pub fn lap(&mut self, name: &str) {
        let now = Instant::now();
        tracing::debug!(
            "{}: {name}: {:.3} s",
            self.prefix,
            (now - self.last).as_secs_f64()
        );
        self.last = now;
    }
}
