//! The async case (issue 15): many calls in flight at once on a small tokio runtime.
//!
//! From a fresh multi-thread runtime with two worker threads, `N` tasks (default 1000) each
//! run `Exec sleep 1` in the container through the async frontend (`Exec::runner_async`,
//! the runner half: the runner attaches and runs `sleep`). Measured: the wall time until
//! all are done (and its ratio to the one-second sleep), each call's latency from its
//! start, the process's thread count (before, peak while running, after) and its open fds.
//! A second round runs `N` calls again, every other one `sleep 60` behind a 300 ms
//! `tokio::time::timeout` (dropped mid-flight, its runner and attached program already
//! running) and the rest `sleep 1`; afterwards nothing may be left: no child of this
//! process, no zombie, no extra fd, no process in the entry cgroup, no extra process in the
//! container.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use commands::Exec;
use ctl_core::{cgroup, Call, Container, Stdio};
use nix::sys::resource::{getrlimit, setrlimit, Resource, RLIM_INFINITY};
use serde::Serialize;

use crate::report::CaseResult;

/// How long each call's program sleeps in the container.
const SLEEP: Duration = Duration::from_secs(1);
/// When the cancelled half of the second round is dropped, after each call's start.
const CANCEL_AFTER: Duration = Duration::from_millis(300);
/// The runtime's worker threads.
const WORKERS: usize = 2;
/// Open fds a call in flight holds at most, with margin (the runner's pidfd, the
/// envelope, reply and stderr pipes; measured: `fds_peak` in the report).
const FDS_PER_CALL: u64 = 6;
/// Processes a call in flight holds: the runner, its attaching worker, the program.
const PROCS_PER_CALL: u64 = 3;

/// The case's name for `calls` calls in flight.
pub(crate) fn case_name(calls: usize) -> String {
    format!("async_{calls}_sleep1")
}

/// What the async case measured besides the per-call latencies.
#[derive(Clone, Debug, Serialize)]
pub struct InFlight {
    /// Calls in flight at once (the requested number unless a limit lowered it: `note`).
    pub calls: usize,
    /// What was asked for (`--async-in-flight`).
    pub requested: usize,
    pub worker_threads: usize,
    pub sleep_s: f64,
    /// From the first call's start until the last one's end.
    pub wall_s: f64,
    /// `wall_s` over the sleep: 1.0 would be no overhead at all.
    pub wall_vs_sleep: f64,
    /// When the last call started (its task first ran, and started its runner), after the
    /// first: the runners' starts take the two workers' time.
    pub last_start_s: f64,
    /// The most processes in the container's cgroups at once (its own few, the runners,
    /// their workers and the `sleep`s), sampled every 50 ms.
    pub container_procs_peak: usize,
    /// Calls that did not exit 0, and the first such outcome.
    pub failed: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    /// The process's threads (`/proc/self/status`), the runtime built and idle.
    pub threads_before: usize,
    /// Sampled every 10 ms while the calls run.
    pub threads_peak: usize,
    pub threads_after: usize,
    /// Open fds (without the kept `cgroup.procs` files), before and after the round.
    pub fds_before: usize,
    /// Sampled every 50 ms while the calls run (with the kept `cgroup.procs` files).
    pub fds_peak: usize,
    pub fds_after: usize,
    /// The limits a call in flight counts against, as found (after raising the soft fd limit).
    pub limits: Limits,
    /// What lowered `calls`, if anything did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The second round, half cancelled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancel: Option<CancelRound>,
}

/// Limits that bound the calls in flight.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Limits {
    /// RLIMIT_NOFILE soft (after raising it to the hard limit) and hard.
    pub nofile_soft: Option<u64>,
    pub nofile_hard: Option<u64>,
    /// RLIMIT_NPROC soft (the runners inherit it; it counts the container user's processes).
    pub nproc_soft: Option<u64>,
    /// The smallest `pids.max` on the way from the container's cgroup to the root, if any
    /// is set (`None`: unlimited or no pids controller).
    pub pids_max: Option<u64>,
    /// `kernel.pid_max`.
    pub pid_max: Option<u64>,
}

/// The second round: every other call dropped mid-flight.
#[derive(Clone, Debug, Serialize)]
pub struct CancelRound {
    pub calls: usize,
    pub finished: usize,
    pub cancelled: usize,
    /// Calls that neither finished with exit status 0 nor were cancelled.
    pub failed: usize,
    /// The drop, after each cancelled call's start.
    pub cancel_after_ms: u64,
    pub wall_s: f64,
    /// How long after the round nothing was left (bounded by 10 s).
    pub settled_ms: u64,
    /// Left afterwards: children of this process (runners) that were not there before
    /// the round (other cases' warm runners were), of which zombies.
    pub children_left: usize,
    pub zombies_left: usize,
    pub fds_before: usize,
    pub fds_after: usize,
    /// Processes in the entry cgroup (where the runners run) before the round, and how
    /// many more there are afterwards.
    pub entry_cgroup_procs_before: usize,
    pub entry_cgroup_procs_left: usize,
    /// Processes in the container's cgroups (payload, monitor, entry), before and after.
    pub container_procs_before: usize,
    pub container_procs_after: usize,
    /// Everything left, summed: children, zombies, extra fds, processes.
    pub leftovers: usize,
}

/// Runs the case against the running `ct`.
pub(crate) fn run(ct: &Container, runner: Option<PathBuf>, requested: usize) -> CaseResult {
    let requested = requested.max(1);
    let (limits, fit, note) = limits(ct, requested);
    let calls = requested.min(fit).max(1);
    let name = case_name(requested);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return CaseResult::skipped(&name, format!("failed: building the runtime: {e}")),
    };
    let ct = Arc::new(ct.clone());
    // Warm-up: lazily initialised state, the kept cgroup files, the runtime's own fds.
    let warm = rt.block_on(one_call(Arc::clone(&ct), runner.clone(), "true", None));
    match warm {
        Ok(Some(0)) => {}
        Ok(other) => {
            return CaseResult::skipped(&name, format!("failed: `true` ended with {other:?}"))
        }
        Err(e) => return CaseResult::skipped(&name, format!("failed: {e}")),
    }

    // Round 1: every call sleeps a second.
    let fds_before = open_fds_unkept();
    let threads_before = threads();
    let sampler = Sampler::start(&rt, ct.cgroup_path.clone());
    let started = Instant::now();
    let handles: Vec<_> = (0..calls)
        .map(|_| {
            let (ct, runner) = (Arc::clone(&ct), runner.clone());
            rt.spawn(async move {
                let t = Instant::now();
                let result = one_call(ct, runner, "1", None).await;
                (t - started, t.elapsed(), result)
            })
        })
        .collect();
    let results: Vec<_> = rt.block_on(async {
        let mut out = Vec::with_capacity(handles.len());
        for h in handles {
            out.push(h.await);
        }
        out
    });
    let wall = started.elapsed();
    let (threads_peak, fds_peak, container_procs_peak) = sampler.stop(&rt);
    let threads_after = threads();
    let fds_after = open_fds_unkept();
    let mut samples = Vec::with_capacity(calls);
    let mut failed = 0;
    let mut first_error = None;
    let mut last_start = Duration::ZERO;
    for r in results {
        if let Ok((start, _, _)) = &r {
            last_start = last_start.max(*start);
        }
        match r {
            Ok((_, latency, Ok(Some(0)))) => samples.push(latency.as_secs_f64() * 1e6),
            Ok((_, _, Ok(other))) => {
                failed += 1;
                first_error.get_or_insert_with(|| format!("sleep ended with {other:?}"));
            }
            Ok((_, _, Err(e))) => {
                failed += 1;
                first_error.get_or_insert(e);
            }
            Err(e) => {
                failed += 1;
                first_error.get_or_insert_with(|| format!("task: {e}"));
            }
        }
    }
    if samples.is_empty() {
        return CaseResult::skipped(
            &name,
            format!("failed: {}", first_error.unwrap_or_default()),
        );
    }
    let cancel = cancel_round(&rt, &ct, runner, calls);
    rt.shutdown_timeout(Duration::from_secs(5));

    let wall_s = wall.as_secs_f64();
    let mut case = CaseResult::from_samples(&name, samples, failed);
    case.per_second = Some(calls as f64 / wall_s);
    case.in_flight = Some(InFlight {
        calls,
        requested,
        worker_threads: WORKERS,
        sleep_s: SLEEP.as_secs_f64(),
        wall_s,
        wall_vs_sleep: wall_s / SLEEP.as_secs_f64(),
        last_start_s: last_start.as_secs_f64(),
        container_procs_peak,
        failed,
        first_error,
        threads_before,
        threads_peak: threads_peak.max(threads_before),
        threads_after,
        fds_before,
        fds_peak,
        fds_after,
        limits,
        note,
        cancel,
    });
    case
}

/// One `Exec` of `sleep ARG` (or of `true` when `arg` is "true") in the container; with
/// `cancel_after`, dropped after that long (`Ok(None)`).
async fn one_call(
    ct: Arc<Container>,
    runner: Option<PathBuf>,
    arg: &'static str,
    cancel_after: Option<Duration>,
) -> Result<Option<i32>, String> {
    let call = Call::new(&ct).stdout(Stdio::Null).stderr(Stdio::Null);
    let call = match runner {
        Some(r) => call.runner(r),
        None => call,
    };
    let argv = if arg == "true" {
        vec!["true".to_owned()]
    } else {
        vec!["sleep".to_owned(), arg.to_owned()]
    };
    let exec = Exec::runner_async(&call, argv, false, false, Default::default());
    let result = match cancel_after {
        Some(after) => match tokio::time::timeout(after, exec).await {
            Ok(r) => r,
            Err(_elapsed) => return Ok(None),
        },
        None => exec.await,
    };
    result.map(Some).map_err(|e| e.to_string())
}

fn cancel_round(
    rt: &tokio::runtime::Runtime,
    ct: &Arc<Container>,
    runner: Option<PathBuf>,
    calls: usize,
) -> Option<CancelRound> {
    let entry = ct.entry_cgroup().to_owned();
    let fds_before = open_fds_unkept();
    let container_before = container_procs(ct);
    let children_before = children();
    let entry_before = entry_procs(&entry);
    let started = Instant::now();
    let handles: Vec<_> = (0..calls)
        .map(|i| {
            let (ct, runner) = (Arc::clone(ct), runner.clone());
            rt.spawn(async move {
                // Every other call would sleep a minute: it is dropped mid-flight.
                if i % 2 == 0 {
                    one_call(ct, runner, "60", Some(CANCEL_AFTER)).await
                } else {
                    one_call(ct, runner, "1", None).await
                }
            })
        })
        .collect();
    let (mut finished, mut cancelled, mut failed) = (0, 0, 0);
    rt.block_on(async {
        for h in handles {
            match h.await {
                Ok(Ok(Some(0))) => finished += 1,
                Ok(Ok(None)) => cancelled += 1,
                _ => failed += 1,
            }
        }
    });
    let wall = started.elapsed();
    // The reaping tasks of the dropped calls run on the runtime, and the killed programs
    // take a moment to go: wait (bounded) until nothing is left.
    let settle = Instant::now();
    let left = || {
        let mut kids = children();
        kids.retain(|pid| !children_before.contains(pid));
        let entry_procs = entry_procs(&entry).saturating_sub(entry_before);
        (kids, entry_procs, container_procs(ct))
    };
    let (kids, entry_procs, container_after) = rt.block_on(async {
        loop {
            let now = left();
            let clean = now.0.is_empty()
                && now.1 == 0
                && now.2.zip(container_before).map_or(true, |(a, b)| a <= b);
            if clean || settle.elapsed() > Duration::from_secs(10) {
                break now;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let settled_ms = settle.elapsed().as_millis() as u64;
    let zombies = kids.iter().filter(|&&pid| is_zombie(pid)).count();
    let fds_after = open_fds_unkept();
    let container_extra = match (container_after, container_before) {
        (Some(a), Some(b)) => a.saturating_sub(b),
        _ => 0,
    };
    Some(CancelRound {
        calls,
        finished,
        cancelled,
        failed,
        cancel_after_ms: CANCEL_AFTER.as_millis() as u64,
        wall_s: wall.as_secs_f64(),
        settled_ms,
        children_left: kids.len(),
        zombies_left: zombies,
        fds_before,
        fds_after,
        entry_cgroup_procs_before: entry_before,
        entry_cgroup_procs_left: entry_procs,
        container_procs_before: container_before.unwrap_or(0),
        container_procs_after: container_after.unwrap_or(0),
        leftovers: kids.len() + fds_after.abs_diff(fds_before) + entry_procs + container_extra,
    })
}

/// Samples the thread count every 10 ms, the fd count and the container's processes every
/// 50 ms, on the runtime (a task, not a thread of its own: it would count itself).
struct Sampler {
    stop: Arc<AtomicBool>,
    threads: Arc<AtomicUsize>,
    fds: Arc<AtomicUsize>,
    procs: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    fn start(rt: &tokio::runtime::Runtime, cgroup_path: String) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let threads_peak = Arc::new(AtomicUsize::new(0));
        let fds_peak = Arc::new(AtomicUsize::new(0));
        let procs_peak = Arc::new(AtomicUsize::new(0));
        let task = rt.spawn({
            let (stop, threads_peak, fds_peak, procs_peak) = (
                Arc::clone(&stop),
                Arc::clone(&threads_peak),
                Arc::clone(&fds_peak),
                Arc::clone(&procs_peak),
            );
            async move {
                let mut tick = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    threads_peak.fetch_max(threads(), Ordering::Relaxed);
                    if tick % 5 == 0 {
                        fds_peak.fetch_max(open_fds(), Ordering::Relaxed);
                        procs_peak.fetch_max(pids_below_count(&cgroup_path), Ordering::Relaxed);
                    }
                    tick += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        });
        Sampler {
            stop,
            threads: threads_peak,
            fds: fds_peak,
            procs: procs_peak,
            task,
        }
    }

    /// The peaks: threads, fds, the container's processes.
    fn stop(self, rt: &tokio::runtime::Runtime) -> (usize, usize, usize) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = rt.block_on(self.task);
        (
            self.threads.load(Ordering::Relaxed),
            self.fds.load(Ordering::Relaxed),
            self.procs.load(Ordering::Relaxed),
        )
    }
}

/// Raises the soft fd limit to the hard one and finds how many calls fit under the
/// limits: (the limits, the number of calls that fit, what limited it below `wanted`).
fn limits(ct: &Container, wanted: usize) -> (Limits, usize, Option<String>) {
    let mut limits = Limits::default();
    let finite = |v: u64| (v != RLIM_INFINITY).then_some(v);
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let soft = if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
            hard
        } else {
            soft
        };
        limits.nofile_soft = finite(soft);
        limits.nofile_hard = finite(hard);
    }
    limits.nproc_soft = getrlimit(Resource::RLIMIT_NPROC)
        .ok()
        .and_then(|(soft, _)| finite(soft));
    limits.pids_max = pids_max(&ct.cgroup_path);
    limits.pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse().ok());
    let fds_now = open_fds() as u64;
    let procs_now = std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    e.file_name()
                        .to_str()
                        .is_some_and(|n| n.parse::<u32>().is_ok())
                })
                .count() as u64
        })
        .unwrap_or(0);
    let mut fit = wanted;
    let mut why = Vec::new();
    let mut bound = |what: String, headroom: u64, per_call: u64| {
        let n = usize::try_from(headroom / per_call).unwrap_or(usize::MAX);
        if n < wanted {
            why.push(format!("{what} fits {n} calls"));
            fit = fit.min(n);
        }
    };
    if let Some(soft) = limits.nofile_soft {
        bound(
            format!("RLIMIT_NOFILE {soft}"),
            soft.saturating_sub(fds_now + 64),
            FDS_PER_CALL,
        );
    }
    if let Some(nproc) = limits.nproc_soft {
        // Counted per user: the container user's processes are the runners and what
        // runs in the container; a rough bound, the processes of every user counted.
        bound(
            format!("RLIMIT_NPROC {nproc}"),
            nproc.saturating_sub(procs_now),
            PROCS_PER_CALL,
        );
    }
    if let Some(max) = limits.pids_max {
        let current = pids_below_count(&ct.cgroup_path) as u64;
        bound(
            format!("pids.max {max} of the container's cgroup"),
            max.saturating_sub(current),
            PROCS_PER_CALL,
        );
    }
    if let Some(pid_max) = limits.pid_max {
        bound(
            format!("kernel.pid_max {pid_max}"),
            pid_max.saturating_sub(procs_now + 256),
            PROCS_PER_CALL,
        );
    }
    let note = (fit < wanted).then(|| format!("{wanted} calls asked for: {}", why.join(", ")));
    (limits, fit, note)
}

/// The smallest `pids.max` from `relative` up to the root of the pids hierarchy.
fn pids_max(relative: &str) -> Option<u64> {
    let h = cgroup::hierarchies()
        .iter()
        .find(|h| h.has_controller("pids"))?;
    let mut dir = h.path_of(relative);
    let mut min: Option<u64> = None;
    loop {
        if let Ok(text) = std::fs::read_to_string(dir.join("pids.max")) {
            if let Ok(v) = text.trim().parse::<u64>() {
                min = Some(min.map_or(v, |m| m.min(v)));
            }
        }
        if dir == h.mount_point || !dir.pop() || !dir.starts_with(&h.mount_point) {
            break;
        }
    }
    min
}

fn pids_below_count(relative: &str) -> usize {
    cgroup::pids_in(relative, "unified").map_or(0, |p| p.len())
}

/// Processes in the entry cgroup itself, not below it (with the default layout the entry
/// cgroup is the container's, with the payload and monitor below), in any hierarchy.
fn entry_procs(entry: &str) -> usize {
    cgroup::hierarchies()
        .iter()
        .filter_map(|h| std::fs::read_to_string(h.path_of(entry).join("cgroup.procs")).ok())
        .map(|procs| procs.lines().filter(|l| !l.trim().is_empty()).count())
        .max()
        .unwrap_or(0)
}

/// Processes in the container's cgroups (payload, monitor, the runners' entry cgroup).
fn container_procs(ct: &Container) -> Option<usize> {
    cgroup::pids_in(&ct.cgroup_path, "unified")
        .ok()
        .map(|p| p.len())
}

fn threads() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

fn open_fds() -> usize {
    ctl_core::diag::open_fds().map_or(0, |f| f.len())
}

/// Open fds without the `cgroup.procs` files the frontend keeps open across calls
/// (deliberate and bounded: forgotten first, they cannot hide a leak).
fn open_fds_unkept() -> usize {
    ctl_core::frontend::forget_cgroup_files();
    open_fds()
}

/// The processes whose parent is this process (runners not reaped, or still running).
fn children() -> Vec<i32> {
    let me = std::process::id() as i32;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| stat_fields(pid).is_some_and(|(_, ppid)| ppid == me))
        .collect()
}

fn is_zombie(pid: i32) -> bool {
    stat_fields(pid).is_some_and(|(state, _)| state == 'Z')
}

/// State and parent of `pid`, from `/proc/<pid>/stat`.
fn stat_fields(pid: i32) -> Option<(char, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(") ")?.1;
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}
