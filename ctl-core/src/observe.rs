//! What the framework tells an operator about its calls: a `tracing` span per runner call
//! and metrics through the [`metrics`] facade. The framework records; the daemon chooses
//! the subscriber and the exporter (Prometheus, StatsD, ...) — without one installed the
//! metrics macros do nothing.
//!
//! # The span
//!
//! `ctl.call` (level INFO), one per runner started (cold or warm), with the fields
//! `command`, `container`, `placement`, `warm`, and once known `runner_pid`, the step
//! times in microseconds since the call started — `spawn_us` (the runner started),
//! `envelope_us` (the envelope written: the runner is reading it), `reply_us` (its reply
//! line read), `exit_us` (its exit seen) — and `outcome` (`ok`, an [`ErrorKind`] name,
//! or `cancelled` for a dropped async call). A DEBUG event `call finished` closes it with
//! the error, if any. A frontend that starts several runners (Stop) makes several spans.
//!
//! # The metrics
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `ctl_calls_total` | counter | `command`, `placement`, `mode` (`cold`/`warm`), `outcome` |
//! | `ctl_call_errors_total` | counter | `command`, `kind` ([`ErrorKind::name`]) |
//! | `ctl_call_duration_seconds` | histogram | `command`, `mode` |
//! | `ctl_calls_in_flight` | gauge | `command` |
//! | `ctl_lock_wait_seconds` | histogram | `command`, `lock` ([`LockMode`](crate::LockMode)), `outcome` (`ok`, `busy`, `cancelled`) |
//!
//! [`ErrorKind`]: crate::ErrorKind
//! [`ErrorKind::name`]: crate::ErrorKind::name

use std::time::{Duration, Instant};

use serde_json::Value;
use tracing::field::Empty;

use crate::error::Error;
use crate::frontend::exchange::Timings;

/// One runner call as it is traced and counted. Dropped unfinished (an async call whose
/// future went away), it counts as `cancelled`.
pub(crate) struct CallRecord {
    span: tracing::Span,
    command: &'static str,
    placement: &'static str,
    mode: &'static str,
    started: Instant,
    finished: bool,
}

impl CallRecord {
    pub fn start(
        command: &'static str,
        container: &crate::Container,
        placement: crate::Placement,
        warm: bool,
    ) -> CallRecord {
        let span = tracing::info_span!(
            "ctl.call",
            command,
            // Formatted only when the span is enabled (no allocation per call otherwise).
            container = %format_args!("{}:{}", container.pool, container.id),
            placement = placement.as_str(),
            warm,
            runner_pid = Empty,
            spawn_us = Empty,
            envelope_us = Empty,
            reply_us = Empty,
            exit_us = Empty,
            outcome = Empty,
        );
        metrics::gauge!("ctl_calls_in_flight", "command" => command).increment(1.0);
        CallRecord {
            span,
            command,
            placement: placement.as_str(),
            mode: if warm { "warm" } else { "cold" },
            started: Instant::now(),
            finished: false,
        }
    }

    pub fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// The runner (or the warm runner's child) `pid` is running.
    pub fn spawned(&self, pid: i32) {
        self.span.record("runner_pid", pid);
        self.span.record("spawn_us", micros(self.started.elapsed()));
    }

    /// The conversation's steps, measured from its start (right after the spawn).
    pub fn conversed(&self, timings: &Timings) {
        let base = self.started.elapsed().saturating_sub(timings.exit);
        let at = |d: Duration| micros(base + d);
        if let Some(envelope) = timings.envelope {
            self.span.record("envelope_us", at(envelope));
        }
        if let Some(reply) = timings.reply {
            self.span.record("reply_us", at(reply));
        }
        self.span.record("exit_us", at(timings.exit));
    }

    pub fn finish(mut self, result: &Result<Value, Error>) {
        self.finished = true;
        let outcome = match result {
            Ok(_) => "ok",
            Err(e) => e.kind().name(),
        };
        self.count(outcome);
        let elapsed_us = micros(self.started.elapsed());
        match result {
            Ok(_) => tracing::debug!(parent: &self.span, elapsed_us, "call finished"),
            Err(error) => {
                tracing::debug!(parent: &self.span, elapsed_us, %error, "call finished")
            }
        }
    }

    fn count(&self, outcome: &'static str) {
        self.span.record("outcome", outcome);
        let command = self.command;
        metrics::counter!(
            "ctl_calls_total",
            "command" => command,
            "placement" => self.placement,
            "mode" => self.mode,
            "outcome" => outcome,
        )
        .increment(1);
        if outcome != "ok" {
            metrics::counter!("ctl_call_errors_total", "command" => command, "kind" => outcome)
                .increment(1);
        }
        metrics::histogram!("ctl_call_duration_seconds", "command" => command, "mode" => self.mode)
            .record(self.started.elapsed().as_secs_f64());
    }
}

impl Drop for CallRecord {
    fn drop(&mut self) {
        if !self.finished {
            self.count("cancelled");
            tracing::debug!(parent: &self.span, "call cancelled");
        }
        metrics::gauge!("ctl_calls_in_flight", "command" => self.command).decrement(1.0);
    }
}

/// The container's lock was taken after `waited` (or not: `result` says why).
pub(crate) fn lock_waited<T>(
    command: &'static str,
    mode: crate::LockMode,
    waited: Duration,
    result: &Result<T, Error>,
) {
    let outcome = match result {
        Ok(_) => "ok",
        Err(e) => e.kind().name(),
    };
    metrics::histogram!(
        "ctl_lock_wait_seconds",
        "command" => command,
        "lock" => mode.as_str(),
        "outcome" => outcome,
    )
    .record(waited.as_secs_f64());
    match result {
        Ok(_) => tracing::trace!(
            command,
            lock = mode.as_str(),
            waited_us = micros(waited),
            "container lock taken"
        ),
        Err(error) => {
            tracing::debug!(command, lock = mode.as_str(), waited_us = micros(waited), %error, "container lock not taken")
        }
    }
}

fn micros(d: Duration) -> u64 {
    d.as_micros().min(u128::from(u64::MAX)) as u64
}
