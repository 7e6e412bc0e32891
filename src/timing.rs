//! Phase timings as debug-level log events (`trialpipe -v` shows them): how long each part of a
//! stage took, for finding where a large run spends its time. Nothing is printed here; the
//! binary's log subscriber decides whether the events are shown.

use std::time::Instant;

/// Run `f` and log how long it took under the name `what`.
pub fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    tracing::debug!("{what}: {:.3} s", start.elapsed().as_secs_f64());
    out
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
