//! Results and their rendering.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use crate::in_flight::InFlight;

/// One case.
#[derive(Clone, Debug, Serialize)]
pub struct CaseResult {
    pub name: String,
    pub count: usize,
    pub median_us: Option<f64>,
    pub p90_us: Option<f64>,
    pub p99_us: Option<f64>,
    /// Commands per second, for throughput cases.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_second: Option<f64>,
    /// Errors seen (a throughput case must have none).
    pub errors: usize,
    /// Why the case did not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// The async case's figures (threads, fds, wall time, the cancelled round).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_flight: Option<InFlight>,
}

impl CaseResult {
    /// A case computed from latencies in microseconds.
    pub fn from_samples(name: &str, mut samples: Vec<f64>, errors: usize) -> CaseResult {
        samples.sort_by(|a, b| a.total_cmp(b));
        let pct = |p: f64| -> Option<f64> {
            if samples.is_empty() {
                return None;
            }
            let idx = ((samples.len() as f64 - 1.0) * p).round() as usize;
            Some(samples[idx.min(samples.len() - 1)])
        };
        CaseResult {
            name: name.to_owned(),
            count: samples.len(),
            median_us: pct(0.5),
            p90_us: pct(0.9),
            p99_us: pct(0.99),
            per_second: None,
            errors,
            skipped: None,
            in_flight: None,
        }
    }

    /// A case that could not run.
    pub fn skipped(name: &str, why: impl Into<String>) -> CaseResult {
        CaseResult {
            name: name.to_owned(),
            count: 0,
            median_us: None,
            p90_us: None,
            p99_us: None,
            per_second: None,
            errors: 0,
            skipped: Some(why.into()),
            in_flight: None,
        }
    }
}

/// A whole run.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The container the run used.
    pub container: String,
    pub machine: String,
    pub date: String,
    /// The (dynamic) runner binary.
    pub runner: String,
    /// The statically linked runner the frontend starts for `static_runner` commands (the
    /// no-op cases' `Ping`), if one is installed.
    pub static_runner: Option<String>,
    pub seconds: f64,
    /// The `--case` patterns the run was restricted to (empty: every case ran).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub selected: Vec<String>,
    pub cases: Vec<CaseResult>,
    pub ratios: BTreeMap<String, Option<f64>>,
    pub runner_peak_rss_kib: Option<u64>,
    /// The targets of the benchmark issue and whether this run met them.
    pub targets: BTreeMap<String, Target>,
}

/// A target and its outcome.
#[derive(Clone, Debug, Serialize)]
pub struct Target {
    pub want: String,
    pub value: Option<f64>,
    pub met: Option<bool>,
}

impl Report {
    pub(crate) fn median(&self, name: &str) -> Option<f64> {
        self.cases
            .iter()
            .find(|c| c.name == name)
            .and_then(|c| c.median_us)
    }

    pub(crate) fn case(&self, name: &str) -> Option<&CaseResult> {
        self.cases.iter().find(|c| c.name == name)
    }

    /// The async case's figures, if it ran.
    pub(crate) fn in_flight(&self) -> Option<&InFlight> {
        self.cases.iter().find_map(|c| c.in_flight.as_ref())
    }

    /// Computes the ratios and target outcomes from the cases.
    pub(crate) fn finish(&mut self) {
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        };
        let m = |n: &str| self.median(n);
        let floor = match (m("spawn_true"), m("cgroup_migrate")) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
        let tp = |k: &str| self.case(k).and_then(|c| c.per_second);
        let mut r = BTreeMap::new();
        r.insert(
            "exec_noop_vs_floor".to_owned(),
            ratio(m("exec_noop"), floor),
        );
        r.insert(
            "exec_noop_dynamic_vs_floor".to_owned(),
            ratio(m("exec_noop_dynamic"), floor),
        );
        r.insert(
            "fork_noop_vs_spawn".to_owned(),
            ratio(m("fork_noop"), m("spawn_true")),
        );
        r.insert(
            "big_caller".to_owned(),
            ratio(m("exec_noop_1g"), m("exec_noop")),
        );
        r.insert(
            "ruby_vs_exec".to_owned(),
            ratio(m("ruby_noop"), m("exec_noop")),
        );
        r.insert(
            "freeze_vs_lxc".to_owned(),
            ratio(m("freeze_cycle"), m("lxc_freeze_cycle")),
        );
        r.insert(
            "state_vs_lxc".to_owned(),
            ratio(m("state"), m("lxc_info_state")),
        );
        r.insert(
            "exec_true_vs_lxc".to_owned(),
            ratio(m("exec_true"), m("lxc_attach_true")),
        );
        r.insert(
            "exec_true_vs_nsenter".to_owned(),
            ratio(m("exec_true"), m("nsenter_true")),
        );
        r.insert(
            "warm_noop_vs_spawn".to_owned(),
            ratio(m("warm_noop"), m("spawn_true")),
        );
        for (name, a, b) in [
            (
                "freeze_runner_vs_lxc",
                "freeze_runner_cycle",
                "lxc_freeze_cycle",
            ),
            (
                "warm_freeze_vs_lxc",
                "warm_freeze_cycle",
                "lxc_freeze_cycle",
            ),
            ("state_runner_vs_lxc", "state_runner", "lxc_info_state"),
            ("warm_state_vs_lxc", "warm_state", "lxc_info_state"),
            ("warm_exec_true_vs_lxc", "warm_exec_true", "lxc_attach_true"),
        ] {
            r.insert(name.to_owned(), ratio(m(a), m(b)));
        }
        r.insert(
            "throughput_8_vs_1".to_owned(),
            ratio(tp("throughput_8"), tp("throughput_1")),
        );
        let in_flight = self.in_flight();
        r.insert(
            "async_wall_vs_sleep".to_owned(),
            in_flight.map(|f| f.wall_vs_sleep),
        );
        let threads_added = in_flight.map(|f| f.threads_peak as f64 - f.threads_before as f64);
        let leftovers = in_flight
            .and_then(|f| f.cancel.as_ref())
            .map(|c| c.leftovers as f64);
        self.ratios = r;

        let mut t = BTreeMap::new();
        let mut target = |name: &str, want: &str, value: Option<f64>, ok: fn(f64) -> bool| {
            t.insert(
                name.to_owned(),
                Target {
                    want: want.to_owned(),
                    value,
                    met: value.map(ok),
                },
            );
        };
        target(
            "exec_noop_vs_floor",
            "<= 1.2",
            self.ratios["exec_noop_vs_floor"],
            |v| v <= 1.2,
        );
        target(
            "fork_noop_vs_spawn",
            "<= 1.3",
            self.ratios["fork_noop_vs_spawn"],
            |v| v <= 1.3,
        );
        target("big_caller", "<= 1.1", self.ratios["big_caller"], |v| {
            v <= 1.1
        });
        target("ruby_vs_exec", ">= 20", self.ratios["ruby_vs_exec"], |v| {
            v >= 20.0
        });
        target(
            "freeze_vs_lxc",
            "<= 0.5",
            self.ratios["freeze_vs_lxc"],
            |v| v <= 0.5,
        );
        target("state_vs_lxc", "<= 0.5", self.ratios["state_vs_lxc"], |v| {
            v <= 0.5
        });
        // Issue 14's targets for Exec through our own attach.
        target(
            "exec_true_vs_lxc",
            "<= 0.3",
            self.ratios["exec_true_vs_lxc"],
            |v| v <= 0.3,
        );
        target(
            "exec_true_vs_nsenter",
            "<= 1.5",
            self.ratios["exec_true_vs_nsenter"],
            |v| v <= 1.5,
        );
        target(
            "throughput_8_vs_1",
            ">= 1.6",
            self.ratios["throughput_8_vs_1"],
            |v| v >= 1.6,
        );
        target(
            "warm_noop_vs_spawn",
            "<= 0.5",
            self.ratios["warm_noop_vs_spawn"],
            |v| v <= 0.5,
        );
        // The same targets for the opt-in warm path.
        target(
            "warm_freeze_vs_lxc",
            "<= 0.5",
            self.ratios["warm_freeze_vs_lxc"],
            |v| v <= 0.5,
        );
        target(
            "warm_state_vs_lxc",
            "<= 0.5",
            self.ratios["warm_state_vs_lxc"],
            |v| v <= 0.5,
        );
        target(
            "runner_peak_rss_kib",
            "<= 4096",
            self.runner_peak_rss_kib.map(|v| v as f64),
            |v| v <= 4096.0,
        );
        // Issue 15: calls in flight on a two-worker runtime. No thread per call; all done
        // in about the sleep plus the runners' starts (serial on the two workers: about
        // 1 ms of CPU each); nothing left by the cancelled half.
        target("async_threads_added", "== 0", threads_added, |v| v == 0.0);
        target(
            "async_wall_vs_sleep",
            "<= 3",
            self.ratios["async_wall_vs_sleep"],
            |v| v <= 3.0,
        );
        target("async_cancel_leftovers", "== 0", leftovers, |v| v == 0.0);
        let errors: usize = self.cases.iter().map(|c| c.errors).sum();
        target("errors", "== 0", Some(errors as f64), |v| v == 0.0);
        self.targets = t;
    }

    /// The human table.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "ctl bench — {} — {} — runner {}",
            self.machine, self.date, self.runner
        );
        let _ = writeln!(
            out,
            "no-op cases (Ping, static_runner) run in {}; exec_noop_dynamic in the runner above",
            self.static_runner
                .as_deref()
                .unwrap_or("the runner above (no static runner installed)")
        );
        if !self.selected.is_empty() {
            let _ = writeln!(out, "only the cases matching: {}", self.selected.join(", "));
        }
        let _ = writeln!(
            out,
            "{:<20} {:>7} {:>11} {:>11} {:>11} {:>10}",
            "case", "count", "median µs", "p90 µs", "p99 µs", "per s"
        );
        let f = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"));
        for c in &self.cases {
            if let Some(why) = &c.skipped {
                let _ = writeln!(out, "{:<20} skipped: {why}", c.name);
                continue;
            }
            let _ = writeln!(
                out,
                "{:<20} {:>7} {:>11} {:>11} {:>11} {:>10}{}",
                c.name,
                c.count,
                f(c.median_us),
                f(c.p90_us),
                f(c.p99_us),
                c.per_second.map_or_else(String::new, |v| format!("{v:.0}")),
                if c.errors > 0 {
                    format!("  ({} errors)", c.errors)
                } else {
                    String::new()
                }
            );
            if let Some(f) = &c.in_flight {
                write_in_flight(&mut out, f);
            }
        }
        let _ = writeln!(
            out,
            "runner_peak_rss_kib  {}",
            self.runner_peak_rss_kib
                .map_or_else(|| "-".to_owned(), |v| v.to_string())
        );
        let _ = writeln!(
            out,
            "\n{:<26} {:>8}  {:<8} met",
            "ratio / target", "value", "want"
        );
        // Not a target: what the no-op costs in the dynamic runner, as every LXC command's
        // runner starts (the same as exec_noop when no static runner is installed).
        if let Some(Some(v)) = self.ratios.get("exec_noop_dynamic_vs_floor") {
            let _ = writeln!(
                out,
                "{:<26} {:>8}  {:<8} (no target)",
                "exec_noop_dynamic_vs_floor",
                format_ratio(*v),
                "-"
            );
        }
        for (name, t) in &self.targets {
            // A run restricted by --case: only the targets it measured.
            if !self.selected.is_empty() && t.value.is_none() {
                continue;
            }
            let _ = writeln!(
                out,
                "{:<26} {:>8}  {:<8} {}",
                name,
                t.value.map_or_else(|| "-".to_owned(), format_ratio),
                t.want,
                match t.met {
                    Some(true) => "yes",
                    Some(false) => "NO",
                    None => "n/a",
                }
            );
        }
        out
    }
}

/// The async case's lines under its row: wall time, threads, fds, the cancelled round.
fn write_in_flight(out: &mut String, f: &InFlight) {
    let _ = writeln!(
        out,
        "  {} calls of `sleep {}` in flight on {} workers: all done in {:.2} s ({:.2} x the sleep), the last started after {:.2} s{}",
        f.calls,
        f.sleep_s,
        f.worker_threads,
        f.wall_s,
        f.wall_vs_sleep,
        f.last_start_s,
        if f.failed > 0 {
            format!(", {} failed: {}", f.failed, f.first_error.as_deref().unwrap_or(""))
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        out,
        "  threads {} -> peak {} -> {}; fds {} -> peak {} -> {}; processes in the container's cgroups at most {}",
        f.threads_before,
        f.threads_peak,
        f.threads_after,
        f.fds_before,
        f.fds_peak,
        f.fds_after,
        f.container_procs_peak
    );
    let opt = |v: Option<u64>| v.map_or_else(|| "unlimited".to_owned(), |v| v.to_string());
    let _ = writeln!(
        out,
        "  limits: nofile {}/{}, nproc {}, pids.max {}, pid_max {}",
        opt(f.limits.nofile_soft),
        opt(f.limits.nofile_hard),
        opt(f.limits.nproc_soft),
        opt(f.limits.pids_max),
        opt(f.limits.pid_max)
    );
    if let Some(note) = &f.note {
        let _ = writeln!(out, "  limited: {note}");
    }
    if let Some(c) = &f.cancel {
        let _ = writeln!(
            out,
            "  cancel round: {} calls, {} dropped after {} ms (sleep 60), {} finished (sleep 1), {} failed, {:.2} s",
            c.calls, c.cancelled, c.cancel_after_ms, c.finished, c.failed, c.wall_s
        );
        let _ = writeln!(
            out,
            "  left after {} ms: {} children, {} zombies, fds {} -> {}, {} more in the entry cgroup ({} before), container processes {} -> {}",
            c.settled_ms,
            c.children_left,
            c.zombies_left,
            c.fds_before,
            c.fds_after,
            c.entry_cgroup_procs_left,
            c.entry_cgroup_procs_before,
            c.container_procs_before,
            c.container_procs_after
        );
    }
}

/// Two decimals, or three significant digits below 0.1 (a freeze cycle against one that
/// slept a second is 0.0009, not 0.00).
fn format_ratio(v: f64) -> String {
    if v != 0.0 && v.abs() < 0.1 {
        let decimals = (2.0 - v.abs().log10().floor()) as usize;
        format!("{v:.decimals$}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod ratio_format_tests {
    use super::format_ratio;

    #[test]
    fn small_ratios_keep_three_significant_digits() {
        assert_eq!(format_ratio(1.234), "1.23");
        assert_eq!(format_ratio(0.43), "0.43");
        assert_eq!(format_ratio(0.0654), "0.0654");
        assert_eq!(format_ratio(0.000897), "0.000897");
        assert_eq!(format_ratio(0.0), "0.00");
        assert_eq!(format_ratio(46.79), "46.79");
    }
}
