//! The cases of `ctl bench`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use commands::{Exec, Freeze, State, Unfreeze};
use ctl_core::diag::Ping;
use ctl_core::frontend::WarmPool;
use ctl_core::{cgroup, Call, Container, Placement, Stdio};
use serde_json::json;

use crate::in_flight;
use crate::migrate::ProcsFiles;
use crate::placed::Placed;
use crate::report::{CaseResult, Report};

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Bound on the whole run.
    pub seconds: f64,
    /// The runner binary (default: as `ctl_core::runner_path` resolves it).
    pub runner: Option<PathBuf>,
    /// Only the cases whose names match one of these patterns (`*` matches any run of
    /// characters); empty: every case.
    pub cases: Vec<String>,
    /// Calls in flight at once in the async case (`async_<N>_sleep1`).
    pub async_in_flight: usize,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            seconds: 30.0,
            runner: None,
            cases: Vec::new(),
            async_in_flight: DEFAULT_ASYNC_IN_FLIGHT,
        }
    }
}

/// Calls in flight at once in the async case by default (issue 15's figure).
pub const DEFAULT_ASYNC_IN_FLIGHT: usize = 1000;

/// The cases with fixed names, in the order they run (then `async_<N>_sleep1`).
const CASES: &[&str] = &[
    "spawn_true",
    "cgroup_migrate",
    "exec_noop",
    "exec_noop_dynamic",
    "fork_noop",
    "warm_noop",
    "exec_noop_1g",
    "ruby_noop",
    "freeze_cycle",
    "lxc_freeze_cycle",
    "freeze_runner_cycle",
    "warm_freeze_cycle",
    "state",
    "lxc_info_state",
    "state_runner",
    "warm_state",
    "exec_true",
    "lxc_attach_true",
    "nsenter_true",
    "warm_exec_true",
    "throughput_1",
    "throughput_2",
    "throughput_8",
    "throughput_64",
];

/// Every case's name with these options, in the order they run.
pub fn case_names(opts: &BenchOptions) -> Vec<String> {
    let mut names: Vec<String> = CASES.iter().map(|n| (*n).to_owned()).collect();
    names.push(in_flight::case_name(opts.async_in_flight));
    names
}

impl BenchOptions {
    /// Whether the case `name` runs.
    pub fn selects(&self, name: &str) -> bool {
        self.cases.is_empty() || self.cases.iter().any(|p| glob_match(p, name))
    }

    /// The steps of a group that run.
    fn pick<'a>(&self, steps: Vec<(&'static str, Step<'a>)>) -> Vec<(&'static str, Step<'a>)> {
        steps
            .into_iter()
            .filter(|(name, _)| self.selects(name))
            .collect()
    }
}

/// `pattern` against `name`, `*` matching any run of characters.
fn glob_match(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// Number of time slices the run is divided into (one per group of cases).
const SLICES: f64 = 15.0;
const RUBY_RUNNER: &str = r#"#!/usr/bin/env ruby
# The runner side of the envelope protocol, as osctld's Ruby runner speaks it (a lower
# bound: osctld loads much more than the json library).
require 'json'
env = JSON.parse($stdin.read)
IO.new(env['return']).write({status: true, output: env['args'][0]}.to_json + "\n")
"#;

/// Runs every case against `ct`, which must be running.
pub fn run(ct: &Container, opts: &BenchOptions) -> Report {
    let slice = Duration::from_secs_f64((opts.seconds / SLICES).max(0.2));
    // The runner the frontend picks for each command (the static one for `static_runner`
    // commands such as `Ping`, when installed), unless the options force one for all.
    let runner = opts.runner.clone().or_else(|| ctl_core::runner_path().ok());
    let static_runner = match (&opts.runner, &runner) {
        (None, Some(r)) => ctl_core::frontend::static_runner_path(r),
        _ => None,
    };
    let base = Call::new(ct).stdout(Stdio::Null).stderr(Stdio::Null);
    let call = match &opts.runner {
        Some(r) => base.clone().runner(r.clone()),
        None => base.clone(),
    };
    // The dynamic runner whatever the command: what an LXC command's runner costs.
    let dynamic_call = match &runner {
        Some(r) => base.runner(r.clone()),
        None => base,
    };
    let mut cases = Vec::new();

    // The floor and the framework's cold no-ops, interleaved so that they see the same
    // machine.
    let procs = ProcsFiles::new(open_procs(ct));
    let ping = |c: &Call<'_>| {
        Ping::run_with(c, json!("ping"))
            .map(drop)
            .map_err(|e| e.to_string())
    };
    let fork_call = call.clone().placement(Placement::Fork);
    cases.extend(interleaved(
        slice * 3,
        5000,
        opts.pick(vec![
            ("spawn_true", Box::new(spawn_true) as Step<'_>),
            (
                "cgroup_migrate",
                Box::new(|| match &procs {
                    Ok(p) if !p.is_empty() => p.measure().map(Some),
                    Ok(_) => Err("no cgroup hierarchies".to_owned()),
                    Err(e) => Err(format!("opening cgroup.procs: {e}")),
                }),
            ),
            ("exec_noop", Box::new(|| ping(&call).map(|_| None))),
            (
                "exec_noop_dynamic",
                Box::new(|| ping(&dynamic_call).map(|_| None)),
            ),
            ("fork_noop", Box::new(|| ping(&fork_call).map(|_| None))),
        ]),
    ));

    // The warm path on its own: a warm runner reaps each command's child after the reply,
    // while the next case already runs. Interleaved with the floor, that background work
    // made `spawn_true` ~45 µs slower and the cold no-ops ~35 µs faster here (presumably
    // by keeping the other CPU awake), which flattered `exec_noop_vs_floor` by ~0.1.
    // A no-op needs no liblxc: this pool skips the warm-up hooks (see WarmPool::warm_up);
    // the LXC cases below use a pool that runs them.
    let pool = WarmPool::new(Duration::from_secs(60)).warm_up(false);
    let warm_call = call.clone().warm(&pool);
    cases.extend(interleaved(
        slice,
        5000,
        opts.pick(vec![(
            "warm_noop",
            Box::new(|| ping(&warm_call).map(|_| None)) as Step<'_>,
        )]),
    ));
    drop(pool);

    // A big caller: 1 GiB touched.
    if opts.selects("exec_noop_1g") {
        let mut heap = vec![0u8; 1 << 30];
        for page in heap.chunks_mut(4096) {
            page[0] = 1;
        }
        cases.extend(interleaved(
            slice,
            2000,
            vec![(
                "exec_noop_1g",
                Box::new(|| ping(&call).map(|_| None)) as Step<'_>,
            )],
        ));
        std::hint::black_box(&heap);
    }

    // Ruby.
    if opts.selects("ruby_noop") {
        cases.push(ruby_case(&call, slice));
    }

    // Against LXC's own tools, run the same way (as the user, in the cgroups).
    let lxc_home = ct.lxc_home.to_string_lossy().into_owned();
    let lxc = |tool: &'static str, extra: &'static [&'static str]| {
        let mut v = vec![
            tool.to_owned(),
            "-P".to_owned(),
            lxc_home.clone(),
            "-n".to_owned(),
            ct.id.clone(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let lxc_pool = WarmPool::new(Duration::from_secs(60));
    let warm = call.clone().warm(&lxc_pool);
    const LXC_CASES: &[&str] = &[
        "freeze_cycle",
        "lxc_freeze_cycle",
        "freeze_runner_cycle",
        "warm_freeze_cycle",
        "state",
        "lxc_info_state",
        "state_runner",
        "warm_state",
        "exec_true",
        "lxc_attach_true",
        "nsenter_true",
        "warm_exec_true",
    ];
    let placed = if LXC_CASES.iter().any(|n| opts.selects(n)) {
        Some(Placed::new(ct))
    } else {
        None
    };
    match placed {
        None => {}
        Some(Ok(placed)) => {
            let run_tool = |argv: &[String]| -> Result<Option<f64>, String> {
                let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
                match placed.run(&argv) {
                    Ok(true) => Ok(None),
                    Ok(false) => Err(format!("{} failed", argv[0])),
                    Err(e) => Err(format!("{}: {e}", argv[0])),
                }
            };
            let (freeze, unfreeze, info, attach) = (
                lxc("lxc-freeze", &[]),
                lxc("lxc-unfreeze", &[]),
                lxc("lxc-info", &["-s"]),
                lxc("lxc-attach", &["--clear-env", "--", "true"]),
            );
            // The floor of an attach: util-linux's nsenter, as root, into every namespace of
            // the container's init (no cgroups, no id or capability changes), process
            // start included.
            let nsenter_argv = ctl_lxc::command_socket::query_state(
                &ct.lxc_home,
                &ct.id,
                &[ct.ugid, 0],
                Some(std::time::Instant::now() + Duration::from_secs(10)),
            )
            .ok()
            .flatten()
            .and_then(|state| state.init_pid)
            .map(|pid| {
                vec![
                    "nsenter".to_owned(),
                    "-t".to_owned(),
                    pid.to_string(),
                    "-a".to_owned(),
                    "true".to_owned(),
                ]
            })
            .ok_or_else(|| "no init pid for nsenter".to_owned());
            let nsenter = || -> Result<Option<f64>, String> {
                let argv = nsenter_argv.as_ref().map_err(Clone::clone)?;
                let status = std::process::Command::new(&argv[0])
                    .args(&argv[1..])
                    .status()
                    .map_err(|e| format!("nsenter: {e}"))?;
                if status.success() {
                    Ok(None)
                } else {
                    Err(format!("nsenter {status}"))
                }
            };
            // liblxc's freeze waits for FROZEN with a one-second poll, which lxc-freeze's
            // cycles hit now and then: more time, so that the medians are of enough
            // cycles.
            cases.extend(interleaved(
                slice * 3,
                2000,
                opts.pick(vec![
                    (
                        "freeze_cycle",
                        Box::new(|| {
                            Freeze::run_with(&call).map_err(|e| e.to_string())?;
                            Unfreeze::run_with(&call).map_err(|e| e.to_string())?;
                            Ok(None)
                        }) as Step<'_>,
                    ),
                    (
                        "lxc_freeze_cycle",
                        Box::new(|| {
                            run_tool(&freeze)?;
                            run_tool(&unfreeze)
                        }),
                    ),
                    // The frontends freeze in-process; these two measure the runner
                    // halves (the same freezer path, as the container's user), cold and
                    // warm, as a daemon invoking the runner by name gets them.
                    (
                        "freeze_runner_cycle",
                        Box::new(|| {
                            Freeze::runner(&call).map_err(|e| e.to_string())?;
                            Unfreeze::runner(&call).map_err(|e| e.to_string())?;
                            Ok(None)
                        }),
                    ),
                    (
                        "warm_freeze_cycle",
                        Box::new(|| {
                            Freeze::runner(&warm).map_err(|e| e.to_string())?;
                            Unfreeze::runner(&warm).map_err(|e| e.to_string())?;
                            Ok(None)
                        }),
                    ),
                ]),
            ));
            cases.extend(interleaved(
                slice,
                2000,
                opts.pick(vec![
                    (
                        "state",
                        Box::new(|| {
                            State::run_with(&call)
                                .map(|_| None)
                                .map_err(|e| e.to_string())
                        }) as Step<'_>,
                    ),
                    ("lxc_info_state", Box::new(|| run_tool(&info))),
                    // The frontend answers from the monitor in-process; these two measure
                    // the runner half (liblxc as the user), cold and warm, as a daemon
                    // invoking the runner by name gets it.
                    (
                        "state_runner",
                        Box::new(|| {
                            State::runner(&call)
                                .map(|_| None)
                                .map_err(|e| e.to_string())
                        }),
                    ),
                    (
                        "warm_state",
                        Box::new(|| {
                            State::runner(&warm)
                                .map(|_| None)
                                .map_err(|e| e.to_string())
                        }),
                    ),
                ]),
            ));
            cases.extend(interleaved(
                slice,
                2000,
                opts.pick(vec![
                    (
                        "exec_true",
                        Box::new(|| {
                            match Exec::run_with(
                                &call,
                                vec!["true".to_owned()],
                                false,
                                false,
                                Default::default(),
                            ) {
                                Ok(0) => Ok(None),
                                Ok(rc) => Err(format!("true exited with {rc}")),
                                Err(e) => Err(e.to_string()),
                            }
                        }) as Step<'_>,
                    ),
                    ("lxc_attach_true", Box::new(|| run_tool(&attach))),
                    ("nsenter_true", Box::new(nsenter)),
                    (
                        "warm_exec_true",
                        Box::new(|| {
                            match Exec::run_with(
                                &warm,
                                vec!["true".to_owned()],
                                false,
                                false,
                                Default::default(),
                            ) {
                                Ok(0) => Ok(None),
                                Ok(rc) => Err(format!("true exited with {rc}")),
                                Err(e) => Err(e.to_string()),
                            }
                        }),
                    ),
                ]),
            ));
        }
        Some(Err(e)) => {
            for name in [
                "freeze_cycle",
                "lxc_freeze_cycle",
                "state",
                "lxc_info_state",
                "exec_true",
                "lxc_attach_true",
                "nsenter_true",
            ]
            .into_iter()
            .filter(|n| opts.selects(n))
            {
                cases.push(CaseResult::skipped(
                    name,
                    format!("cannot place LXC's tools: {e}"),
                ));
            }
        }
    }

    // The LXC cases' warm runners end here: the async case below counts processes.
    drop(warm);
    drop(lxc_pool);

    for k in [1usize, 2, 8, 64] {
        if opts.selects(&format!("throughput_{k}")) {
            cases.push(throughput(ct, opts.runner.clone(), k, slice));
        }
    }

    // Issue 15: calls in flight at once on a two-worker tokio runtime, through the async
    // frontend (not bounded by --seconds: two rounds of about the sleep each).
    if opts.selects(&in_flight::case_name(opts.async_in_flight)) {
        cases.push(in_flight::run(
            ct,
            opts.runner.clone(),
            opts.async_in_flight,
        ));
    }

    let mut report = Report {
        container: ct.id.clone(),
        machine: machine(),
        date: date(),
        runner: runner
            .as_ref()
            .map_or_else(|| "<unresolved>".to_owned(), |r| r.display().to_string()),
        static_runner: static_runner.map(|r| r.display().to_string()),
        seconds: opts.seconds,
        selected: opts.cases.clone(),
        cases,
        ratios: Default::default(),
        // The dynamic runner's: the larger of the two, and the one LXC commands use.
        runner_peak_rss_kib: if opts.cases.is_empty() {
            runner_peak_rss(&dynamic_call).ok()
        } else {
            None
        },
        targets: Default::default(),
    };
    report.finish();
    report
}

/// One iteration: `Ok(Some(us))` when the step measured itself, `Ok(None)` to use the
/// wall time of the call.
type Step<'a> = Box<dyn FnMut() -> Result<Option<f64>, String> + 'a>;

/// Runs the steps round-robin until `budget` is spent or each ran `max` times. The order
/// rotates by one step every round, so that every step follows every other one equally
/// often: with a fixed order, what a step leaves behind (a `fork`'s write-protected pages,
/// a runner still exiting, warm caches) always lands on the same next step.
fn interleaved(
    budget: Duration,
    max: usize,
    mut steps: Vec<(&'static str, Step<'_>)>,
) -> Vec<CaseResult> {
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); steps.len()];
    let mut errors = vec![0usize; steps.len()];
    let mut first_error: Vec<Option<String>> = vec![None; steps.len()];
    // Warm-up: lazily initialised state, page cache.
    for (i, (_, step)) in steps.iter_mut().enumerate() {
        for _ in 0..2 {
            if let Err(e) = step() {
                errors[i] += 1;
                first_error[i].get_or_insert(e);
            }
        }
    }
    let started = Instant::now();
    let n = steps.len();
    let mut round = 0;
    while started.elapsed() < budget && samples.iter().any(|s| s.len() < max) {
        round += 1;
        for k in 0..n {
            let i = (k + round) % n;
            let step = &mut steps[i].1;
            if samples[i].len() >= max || first_error[i].is_some() {
                continue;
            }
            let t = Instant::now();
            match step() {
                Ok(Some(us)) => samples[i].push(us),
                Ok(None) => samples[i].push(t.elapsed().as_secs_f64() * 1e6),
                Err(e) => {
                    errors[i] += 1;
                    first_error[i].get_or_insert(e);
                }
            }
        }
    }
    steps
        .iter()
        .enumerate()
        .map(|(i, (name, _))| match &first_error[i] {
            Some(e) if samples[i].is_empty() => {
                let mut c = CaseResult::skipped(name, format!("failed: {e}"));
                c.errors = errors[i];
                c
            }
            _ => CaseResult::from_samples(name, std::mem::take(&mut samples[i]), errors[i]),
        })
        .collect()
}

fn spawn_true() -> Result<Option<f64>, String> {
    let status = std::process::Command::new("/bin/true")
        .status()
        .map_err(|e| e.to_string())?;
    if status.success() {
        Ok(None)
    } else {
        Err("/bin/true failed".to_owned())
    }
}

/// The `cgroup.procs` files a cold exec runner writes to: every hierarchy's, except the
/// unified one when runners are born there (`clone3(CLONE_INTO_CGROUP)`, see
/// `ctl_core::frontend::spawn_into_cgroup_available`). The floor then leaves out that
/// move, and `exec_noop` pays for the birth in the cgroup itself: the comparison stays
/// conservative.
fn open_procs(ct: &Container) -> Vec<std::fs::File> {
    let _ = cgroup::create_entry(ct.entry_cgroup(), ct.ugid);
    let born_in_unified = ctl_core::frontend::spawn_into_cgroup_available();
    cgroup::hierarchies()
        .iter()
        .filter(|h| !(h.unified && born_in_unified))
        .map(|h| h.path_of(ct.entry_cgroup()).join("cgroup.procs"))
        .filter_map(|p| std::fs::OpenOptions::new().write(true).open(p).ok())
        .collect()
}

fn ruby_case(call: &Call<'_>, slice: Duration) -> CaseResult {
    let Some(ruby) = which("ruby") else {
        return CaseResult::skipped(
            "ruby_noop",
            "no `ruby` on this machine (apt-get install ruby)",
        );
    };
    let dir = std::env::temp_dir().join(format!("ctl-bench-ruby-{}", std::process::id()));
    let script = dir.join("ruby-runner");
    let setup = std::fs::create_dir_all(&dir)
        .and_then(|()| {
            std::fs::write(
                &script,
                RUBY_RUNNER.replace("/usr/bin/env ruby", &ruby.to_string_lossy()),
            )
        })
        .and_then(|()| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
        });
    if let Err(e) = setup {
        let _ = std::fs::remove_dir_all(&dir);
        return CaseResult::skipped("ruby_noop", format!("cannot write the Ruby runner: {e}"));
    }
    let ruby_call = call.clone().runner(&script);
    let mut out = interleaved(
        slice,
        200,
        vec![(
            "ruby_noop",
            Box::new(|| match Ping::run_with(&ruby_call, json!("ping")) {
                Ok(v) if v == json!("ping") => Ok(None),
                Ok(v) => Err(format!("unexpected reply {v}")),
                Err(e) => Err(e.to_string()),
            }) as Step<'_>,
        )],
    );
    let _ = std::fs::remove_dir_all(&dir);
    out.remove(0)
}

fn throughput(ct: &Container, runner: Option<PathBuf>, k: usize, slice: Duration) -> CaseResult {
    let name = format!("throughput_{k}");
    let ct = Arc::new(ct.clone());
    let started = Instant::now();
    let threads: Vec<_> = (0..k)
        .map(|_| {
            let (ct, runner) = (Arc::clone(&ct), runner.clone());
            std::thread::spawn(move || {
                let c = Call::new(&ct).stdout(Stdio::Null).stderr(Stdio::Null);
                let c = match runner {
                    Some(r) => c.runner(r),
                    None => c,
                };
                let mut lat = Vec::new();
                let mut errors = 0;
                while started.elapsed() < slice {
                    let t = Instant::now();
                    match Ping::run_with(&c, json!(1)) {
                        Ok(_) => lat.push(t.elapsed().as_secs_f64() * 1e6),
                        Err(_) => errors += 1,
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for t in threads {
        match t.join() {
            Ok((lat, e)) => {
                all.extend(lat);
                errors += e;
            }
            Err(_) => errors += 1,
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let n = all.len();
    let mut c = CaseResult::from_samples(&name, all, errors);
    c.per_second = Some(n as f64 / elapsed);
    c
}

/// Peak RSS of an exec-placement runner, as it reports it itself (`Identity`'s `VmHWM`).
fn runner_peak_rss(call: &Call<'_>) -> Result<u64, String> {
    let info = ctl_core::diag::Identity::run_with(call).map_err(|e| e.to_string())?;
    Ok(info.peak_rss_kib)
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| PathBuf::from(d).join(tool))
        .find(|p| p.is_file())
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown cpu".to_owned());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cpu}, {cores} cores, Linux {}", kernel.trim())
}

fn date() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[test]
    fn case_patterns() {
        assert!(glob_match("exec_noop", "exec_noop"));
        assert!(!glob_match("exec_noop", "exec_noop_1g"));
        assert!(glob_match("exec_noop*", "exec_noop_1g"));
        assert!(glob_match("async_*", "async_1000_sleep1"));
        assert!(glob_match("*_sleep1", "async_500_sleep1"));
        assert!(glob_match("*state*", "warm_state"));
        assert!(glob_match("a*b*c", "aXbYc"));
        assert!(!glob_match("a*b*c", "aXcYb"));
        assert!(!glob_match("ab*ba", "aba"));
        assert!(glob_match("*", "anything"));
        let opts = BenchOptions {
            cases: vec!["throughput_*".to_owned()],
            ..BenchOptions::default()
        };
        assert!(opts.selects("throughput_8") && !opts.selects("exec_noop"));
        assert!(BenchOptions::default().selects("exec_noop"));
        assert_eq!(
            case_names(&BenchOptions::default()).last().unwrap(),
            "async_1000_sleep1"
        );
    }

    #[test]
    fn interleaving_rotates_so_every_step_follows_every_other() {
        let order = RefCell::new(Vec::new());
        let step = |i: usize| -> Step<'_> {
            let order = &order;
            Box::new(move || {
                order.borrow_mut().push(i);
                Ok(Some(1.0))
            })
        };
        let results = interleaved(
            Duration::from_secs(60),
            9,
            vec![("a", step(0)), ("b", step(1)), ("c", step(2))],
        );
        assert!(results.iter().all(|r| r.count == 9), "{results:?}");
        let order = order.into_inner();
        // Two warm-up calls each, then the measured rounds.
        let measured = &order[6..];
        for a in 0..3 {
            for b in 0..3 {
                if a != b {
                    assert!(
                        measured.windows(2).any(|w| w == [a, b]),
                        "{b} never follows {a} in {measured:?}"
                    );
                }
            }
        }
    }
}
