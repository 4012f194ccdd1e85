//! The async frontend (`ctl_core::async_frontend`, feature `tokio`) on real runners and a
//! real container: many calls in flight on a two-thread runtime, results equal to the
//! blocking API's, deadlines, and cancellation that leaves no runner, zombie or fd behind.

use std::time::Duration;

use ctl_core::{async_frontend, Args, Call, Command, ErrorKind, Stdio};
use serde_json::{json, Map, Value};
use tests::faults::{Fail, Sleep};
use tests::fixtures::{test_runner_path, TestContainer};

/// How many calls run at once (`CTL_ASYNC_IN_FLIGHT` overrides it, for measurements:
/// `docs/performance.md`).
const IN_FLIGHT: usize = 200;

fn in_flight() -> usize {
    std::env::var("CTL_ASYNC_IN_FLIGHT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(IN_FLIGHT)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn threads() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

fn sleep_args(seconds: f64) -> Args {
    Args::new(vec![json!(seconds)], Map::new())
}

fn call(tc: &TestContainer) -> Call<'_> {
    Call::new(tc.container())
        .runner(test_runner_path())
        .stderr(Stdio::Null)
}

/// The processes whose parent is this process (runners not reaped, or still running).
fn children() -> Vec<i32> {
    let me = std::process::id() as i32;
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    let rest = s.rsplit_once(") ")?.1.to_owned();
                    rest.split(' ').nth(1)?.parse::<i32>().ok()
                })
                == Some(me)
        })
        .collect()
}

#[test]
fn hundreds_of_calls_in_flight_on_two_threads() {
    let _serial = ctl_test_support::leaks::serial();
    let tc = TestContainer::running("asyncmany");
    let rt = runtime();
    let before = threads();
    let peak = std::sync::atomic::AtomicUsize::new(0);
    let n = in_flight();
    let started = std::time::Instant::now();
    let results: Vec<Result<Value, ctl_core::Error>> = rt.block_on(async {
        let calls = (0..n).map(|_| {
            let call = call(&tc);
            async move { async_frontend::invoke(&call, Sleep::SPEC, sleep_args(1.0)).await }
        });
        let all = futures_join_all(calls.collect());
        tokio::pin!(all);
        loop {
            tokio::select! {
                results = &mut all => break results,
                () = tokio::time::sleep(Duration::from_millis(100)) => {
                    peak.fetch_max(threads(), std::sync::atomic::Ordering::SeqCst);
                }
            }
        }
    });
    let elapsed = started.elapsed();
    let peak = peak.load(std::sync::atomic::Ordering::SeqCst);
    eprintln!("{n} calls of 1 s: all done after {elapsed:?}; threads before {before}, peak {peak}");
    for result in &results {
        assert_eq!(result.as_ref().unwrap(), &json!(true));
    }
    // No thread per call: the runtime's two workers (plus tokio's own) however many run.
    assert!(
        peak <= before + 4,
        "threads grew from {before} to {peak} for {n} calls"
    );
    assert!(children().is_empty(), "left: {:?}", children());
}

/// Joins futures on the current task (no extra crate: a `JoinSet` would need `'static`).
async fn futures_join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = (0..futures.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, future) in futures.iter_mut().enumerate() {
            if outputs[i].is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(output) => outputs[i] = Some(output),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(Option::unwrap).collect()
}

#[test]
fn cancelled_calls_leave_no_runner_zombie_or_fd() {
    let _serial = ctl_test_support::leaks::serial();
    let tc = TestContainer::running("asynccancel");
    let rt = runtime();
    // Warm up (the kept cgroup files, the runtime's own fds), then count.
    rt.block_on(async {
        async_frontend::invoke(&call(&tc), Sleep::SPEC, sleep_args(0.0))
            .await
            .unwrap()
    });
    let fds_before = ctl_test_support::leaks::open_fd_count();
    let n = in_flight();
    let (finished, cancelled) = rt.block_on(async {
        let tc = &tc;
        let mut done = 0;
        let mut dropped = 0;
        let mut calls = Vec::new();
        for i in 0..n {
            // Every other call sleeps for a minute: it is cancelled after a second.
            let seconds = if i % 2 == 0 { 60.0 } else { 1.0 };
            calls.push(async move {
                let call = call(tc);
                tokio::time::timeout(
                    Duration::from_secs(3),
                    async_frontend::invoke(&call, Sleep::SPEC, sleep_args(seconds)),
                )
                .await
            });
        }
        for result in futures_join_all(calls).await {
            match result {
                Ok(Ok(value)) => {
                    assert_eq!(value, json!(true));
                    done += 1
                }
                Ok(Err(e)) => panic!("{e}"),
                Err(_elapsed) => dropped += 1,
            }
        }
        // The reaping tasks of the dropped calls run on the runtime: give them a moment.
        for _ in 0..100 {
            if children().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        (done, dropped)
    });
    eprintln!("{n} calls: {finished} finished, {cancelled} cancelled");
    assert_eq!((finished, cancelled), (n / 2, n / 2));
    assert!(children().is_empty(), "runners left: {:?}", children());
    assert!(ctl_test_support::leaks::zombie_children().is_empty());
    assert_eq!(ctl_test_support::leaks::open_fd_count(), fds_before);
    // Nothing of the cancelled calls runs on in the container's entry cgroup either.
    let entry = tc.container().entry_cgroup().to_owned();
    for hierarchy in ctl_core::cgroup::hierarchies() {
        let procs = std::fs::read_to_string(hierarchy.path_of(&entry).join("cgroup.procs"))
            .unwrap_or_default();
        assert!(
            procs.trim().is_empty(),
            "{}: {procs}",
            hierarchy.path_of(&entry).display()
        );
    }
}

#[test]
fn results_errors_and_deadlines_are_the_blocking_apis() {
    // Serial: the tests count this process's children and fds.
    let _serial = ctl_test_support::leaks::serial();
    let tc = TestContainer::running("asyncsame");
    let rt = runtime();
    let fail = Args::new(vec![json!("it broke")], Map::new());
    let blocking = ctl_core::invoke(&call(&tc), Fail::SPEC, fail.clone())
        .unwrap_err()
        .to_string();
    let asynchronous = rt
        .block_on(async_frontend::invoke(&call(&tc), Fail::SPEC, fail))
        .unwrap_err()
        .to_string();
    assert_eq!(asynchronous, blocking);
    let timed = rt
        .block_on(async_frontend::invoke(
            &call(&tc).deadline(Duration::from_secs(1)),
            Sleep::SPEC,
            sleep_args(30.0),
        ))
        .unwrap_err();
    assert!(matches!(timed.kind(), ErrorKind::Timeout { .. }), "{timed}");
    // Typed, as the generated `runner` decodes it.
    let typed: bool = rt
        .block_on(async_frontend::call_runner::<Sleep>(
            &call(&tc),
            sleep_args(0.0),
        ))
        .unwrap();
    assert!(typed);
    // The methods `#[container_command]` generates with the feature.
    assert!(rt.block_on(Sleep::run_with_async(&call(&tc), 0.0)).unwrap());
    assert_eq!(
        rt.block_on(Fail::runner_async(&call(&tc), "it broke".into()))
            .unwrap_err()
            .to_string(),
        Fail::run_with(&call(&tc), "it broke".into())
            .unwrap_err()
            .to_string()
    );
    assert!(children().is_empty());
}

/// Custom frontends (blocking code: Exec's, State's, Freeze's, GetHostname's) through their
/// async twins and by name: the same results as the blocking API, and a dropped future
/// kills the runner in flight at once, leaving no process behind.
#[test]
fn custom_frontends_run_async_and_are_cancelled_on_drop() {
    let _serial = ctl_test_support::leaks::serial();
    let tc = TestContainer::running("asyncfront");
    let rt = runtime();
    let call = call(&tc).stdout(Stdio::Null);
    let exec_args = |argv: &[&str]| {
        Args::new(
            vec![json!(argv)],
            Map::from_iter([("options".to_owned(), json!({}))]),
        )
    };
    rt.block_on(async {
        // Typed twins of custom frontends.
        let state = commands::State::run_with_async(&call).await.unwrap();
        assert_eq!(state.state, "running");
        let hostname = commands::GetHostname::run_with_async(&call).await.unwrap();
        assert_eq!(hostname, commands::GetHostname::run_with(&call).unwrap());
        assert!(commands::Freeze::run_with_async(&call).await.unwrap());
        assert_eq!(
            commands::State::run_with_async(&call).await.unwrap().state,
            "frozen"
        );
        assert!(commands::Unfreeze::run_with_async(&call).await.unwrap());
        let status = commands::Exec::run_with_async(
            &call,
            vec!["sh".into(), "-c".into(), "exit 7".into()],
            false,
            false,
            Default::default(),
        )
        .await
        .unwrap();
        assert_eq!(status, 7);
        // By name: a custom frontend (Exec) and a plain runner half (Sleep).
        let by_name =
            async_frontend::invoke_by_name(&call, "Exec", exec_args(&["sh", "-c", "exit 3"]))
                .await
                .unwrap();
        assert_eq!(by_name, json!(3));
        let by_name = async_frontend::invoke_by_name(&call, "sleep", sleep_args(0.0))
            .await
            .unwrap();
        assert_eq!(by_name, json!(true));
        let unknown = async_frontend::invoke_by_name(&call, "NoSuchThing", Args::default())
            .await
            .unwrap_err();
        assert_eq!(
            unknown.to_string(),
            ctl_core::invoke_by_name(&call, "NoSuchThing", Args::default())
                .unwrap_err()
                .to_string()
        );
    });
    // Cancellation: an Exec of `sleep 60` (Exec's frontend on the blocking pool) dropped
    // after its program runs.
    let started = std::time::Instant::now();
    let outcome = rt.block_on(async {
        tokio::time::timeout(
            Duration::from_millis(1500),
            commands::Exec::run_with_async(
                &call,
                vec!["sleep".into(), "60".into()],
                false,
                false,
                Default::default(),
            ),
        )
        .await
    });
    assert!(outcome.is_err(), "the Exec ended by itself: {outcome:?}");
    // The blocking thread sees the cancellation, kills and reaps the runner: no child,
    // and nothing of the call left in the container's entry cgroup.
    let until = std::time::Instant::now() + Duration::from_secs(5);
    while !children().is_empty() {
        assert!(std::time::Instant::now() < until, "left: {:?}", children());
        std::thread::sleep(Duration::from_millis(20));
    }
    let entry = tc.container().entry_cgroup().to_owned();
    for hierarchy in ctl_core::cgroup::hierarchies() {
        let procs = std::fs::read_to_string(hierarchy.path_of(&entry).join("cgroup.procs"))
            .unwrap_or_default();
        assert!(procs.trim().is_empty(), "{procs}");
    }
    eprintln!(
        "cancelled Exec gone {:?} after the call started",
        started.elapsed()
    );
    // And the program inside is gone too (the attached `sleep 60` ends with its runner).
    let until = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let left = std::process::Command::new("pgrep")
            .args(["-f", "^sleep 60$"])
            .output()
            .unwrap();
        if left.stdout.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < until,
            "the program survived its cancelled call: {}",
            String::from_utf8_lossy(&left.stdout)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(ctl_test_support::leaks::zombie_children().is_empty());
}

/// Calls through a warm pool work async too (on the blocking pool, as the warm
/// conversation is blocking): the same warm runner serves them, and a dropped call's
/// child is killed while the warm runner lives on.
#[test]
fn warm_calls_run_async_and_are_cancelled_on_drop() {
    let _serial = ctl_test_support::leaks::serial();
    let tc = TestContainer::running("asyncwarm");
    let rt = runtime();
    let pool = ctl_core::frontend::WarmPool::new(Duration::from_secs(30));
    let warm = call(&tc).warm(&pool);
    let identity = rt
        .block_on(ctl_core::diag::Identity::runner_async(&warm))
        .unwrap();
    let runners = pool.pids();
    assert_eq!(runners.len(), 1);
    assert_eq!(identity.ppid, runners[0], "served by the warm runner");
    assert!(rt.block_on(Sleep::runner_async(&warm, 0.0)).unwrap());
    let by_name = rt
        .block_on(async_frontend::invoke_by_name(
            &warm,
            "Sleep",
            sleep_args(0.0),
        ))
        .unwrap();
    assert_eq!(by_name, json!(true));
    assert_eq!(pool.pids(), runners, "the same warm runner");
    // Dropped while its child sleeps: the child goes, the warm runner stays.
    let dropped = rt.block_on(async {
        tokio::time::timeout(Duration::from_millis(500), Sleep::runner_async(&warm, 30.0)).await
    });
    assert!(dropped.is_err());
    let children_of = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .count()
    };
    let until = std::time::Instant::now() + Duration::from_secs(5);
    while children_of(runners[0]) > 0 {
        assert!(std::time::Instant::now() < until, "the warm child survived");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(pool.pids(), runners, "the warm runner lives on");
    assert!(rt.block_on(Sleep::runner_async(&warm, 0.0)).unwrap());
}

/// Exec and Stop have async frontends of their own (`async_frontend = ...`): their calls,
/// typed or by name, run on the reactor and add no thread however many are in flight.
#[test]
fn exec_and_stop_frontends_run_on_the_reactor() {
    let _serial = ctl_test_support::leaks::serial();
    let tc = TestContainer::running("asyncexec");
    let rt = runtime();
    let call = call(&tc).stdout(Stdio::Null);
    // Warm up the runtime's own threads.
    rt.block_on(async { tokio::time::sleep(Duration::from_millis(10)).await });
    let before = threads();
    let peak = std::sync::atomic::AtomicUsize::new(before);
    let n = 100;
    let statuses: Vec<Result<Value, ctl_core::Error>> = rt.block_on(async {
        let calls = (0..n).map(|i| {
            let call = call.clone();
            let script = format!("sleep 1; exit {}", i % 5);
            async move {
                if i % 2 == 0 {
                    commands::Exec::run_with_async(
                        &call,
                        vec!["sh".into(), "-c".into(), script],
                        false,
                        false,
                        Default::default(),
                    )
                    .await
                    .map(|status| json!(status))
                } else {
                    let args = Args::new(
                        vec![json!(["sh", "-c", script])],
                        Map::from_iter([("options".to_owned(), json!({}))]),
                    );
                    async_frontend::invoke_by_name(&call, "Exec", args).await
                }
            }
        });
        let all = futures_join_all(calls.collect());
        tokio::pin!(all);
        loop {
            tokio::select! {
                results = &mut all => break results,
                () = tokio::time::sleep(Duration::from_millis(50)) => {
                    peak.fetch_max(threads(), std::sync::atomic::Ordering::SeqCst);
                }
            }
        }
    });
    for (i, status) in statuses.iter().enumerate() {
        assert_eq!(status.as_ref().unwrap(), &json!(i % 5), "call {i}");
    }
    let peak = peak.into_inner();
    eprintln!("{n} Execs of 1 s: threads {before} -> peak {peak}");
    assert!(
        peak <= before + 2,
        "Exec's async frontend added threads: {before} -> {peak}"
    );
    // Stop, async: the container ends stopped; a second Stop by name succeeds at once.
    assert!(rt
        .block_on(commands::Stop::run_with_async(
            &call,
            commands::StopMode::Kill,
            10,
            None
        ))
        .unwrap());
    assert_eq!(tc.lxc_state(), "stopped");
    let again = rt
        .block_on(async_frontend::invoke_by_name(
            &call,
            "Stop",
            Args::new(
                vec![json!("stop")],
                Map::from_iter([("timeout".to_owned(), json!(5))]),
            ),
        ))
        .unwrap();
    assert_eq!(again, json!(true));
    assert!(children().is_empty());
}
