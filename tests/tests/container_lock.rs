//! Per-container ordering (`ctl_core::lock`) on real runners and real containers: users
//! share the lock, changers take it alone, across threads, tasks and processes; waiting is
//! bounded by the call's deadline with a clear error; Exec holds it only until its
//! program runs; Freeze racing Exec no longer freezes the program mid-attach.

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use commands::{Exec, ExecOptions, Freeze, State, Unfreeze};
use ctl_core::{Call, ContainerLock, ErrorKind, LockMode, Stdio};
use tests::faults::Sleep;
use tests::fixtures::{test_runner_path, TestContainer};

fn call(tc: &TestContainer) -> Call<'_> {
    Call::new(tc.container())
        .runner(test_runner_path())
        .stdout(Stdio::Null)
        .stderr(Stdio::Null)
}

fn lock_file(tc: &TestContainer) -> PathBuf {
    let ct = tc.container();
    PathBuf::from(ctl_core::lock::DEFAULT_LOCK_DIR).join(format!("{}:{}.lock", ct.pool, ct.id))
}

fn exec(call: &Call<'_>, argv: &[&str]) -> Result<i32, ctl_core::Error> {
    let argv = argv.iter().map(|s| s.to_string()).collect();
    Exec::run_with(call, argv, false, false, ExecOptions::default())
}

/// The processes holding a `flock` on `path`, from `/proc/locks`.
fn lock_holders(path: &PathBuf) -> Vec<i32> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Vec::new();
    };
    std::fs::read_to_string("/proc/locks")
        .unwrap()
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let ino = f.get(5)?.rsplit(':').next()?.parse::<u64>().ok()?;
            (f.get(1) == Some(&"FLOCK") && ino == meta.ino())
                .then(|| f.get(4)?.parse().ok())
                .flatten()
        })
        .collect()
}

#[test]
fn a_changer_waits_for_users_and_says_who_holds_the_lock() {
    let _serial = ctl_test_support::leaks::serial();
    let tc = TestContainer::running("lockwait");
    let call = call(&tc);
    // A user: a runner that sleeps for 1.5 s under the shared lock.
    std::thread::scope(|s| {
        let sleeper = s.spawn(|| Sleep::run_with(&call, 1.5));
        // Until the sleeper's lock shows up.
        let path = lock_file(&tc);
        let until = Instant::now() + Duration::from_secs(5);
        while lock_holders(&path).is_empty() {
            assert!(Instant::now() < until, "the sleeper never took the lock");
            std::thread::sleep(Duration::from_millis(10));
        }
        // Another user gets in at once.
        let started = Instant::now();
        let state = State::run_with(&call.clone().deadline(Duration::from_millis(500))).unwrap();
        assert_eq!(state.state, "running");
        assert!(started.elapsed() < Duration::from_millis(500));
        // A changer does not, and its deadline ends the wait with a clear error.
        let started = Instant::now();
        let err = Freeze::run_with(&call.clone().deadline(Duration::from_millis(300))).unwrap_err();
        let waited = started.elapsed();
        match err.kind() {
            ErrorKind::Busy {
                container,
                mode,
                holder,
                ..
            } => {
                assert_eq!(container, &tc.container().ident());
                assert_eq!(*mode, LockMode::Exclusive);
                // The holder is this process: the frontend of the sleeper's call.
                let me = format!("pid {}", std::process::id());
                assert!(holder.as_deref().unwrap_or("").starts_with(&me), "{err}");
            }
            other => panic!("expected Busy, got {other:?}: {err}"),
        }
        assert!(err.to_string().contains("is busy"), "{err}");
        assert!(waited >= Duration::from_millis(300) && waited < Duration::from_secs(1));
        assert_eq!(
            tc.lxc_state(),
            "running",
            "the refused Freeze froze nothing"
        );
        // Without a deadline the changer waits for the user and then runs.
        let started = Instant::now();
        assert!(Freeze::run_with(&call).unwrap());
        assert!(sleeper.join().unwrap().unwrap());
        assert!(started.elapsed() >= Duration::from_millis(500));
    });
    assert!(Unfreeze::run_with(&call).unwrap());
    assert!(lock_holders(&lock_file(&tc)).is_empty());
}

#[test]
fn another_process_holding_the_lock_orders_our_calls() {
    let _serial = ctl_test_support::leaks::serial();
    let tc = TestContainer::running("lockproc");
    let call = call(&tc);
    let path = lock_file(&tc);
    // Any process that takes the file's flock: here util-linux's flock(1), as a stand-in
    // for `ctl` or another daemon.
    let _ = State::run_with(&call).unwrap(); // creates the lock file
                                             // In a process group of its own: its `sleep` inherits the locked fd, and goes with it.
    let mut holder = std::process::Command::new("flock")
        .arg("--exclusive")
        .arg(&path)
        .args(["sleep", "30"])
        .process_group(0)
        .spawn()
        .expect("flock(1) from util-linux");
    let until = Instant::now() + Duration::from_secs(5);
    while lock_holders(&path).is_empty() {
        assert!(Instant::now() < until, "flock(1) never took the lock");
        std::thread::sleep(Duration::from_millis(10));
    }
    let err = State::run_with(&call.clone().deadline(Duration::from_millis(200))).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Busy { holder: Some(h), .. } if h.contains("flock")),
        "{err}"
    );
    // Runner halves called directly take it too.
    let err = Sleep::runner(&call.clone().deadline(Duration::from_millis(200)), 0.0).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Busy { .. }), "{err}");
    // A call told not to lock (a caller that orders its calls itself) runs.
    assert!(State::run_with(&call.clone().unlocked()).unwrap().state == "running");
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(holder.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    holder.wait().unwrap();
    assert!(
        State::run_with(&call.clone().deadline(Duration::from_secs(5)))
            .unwrap()
            .state
            == "running"
    );
}

#[test]
fn a_caller_holds_the_lock_across_calls() {
    let _serial = ctl_test_support::leaks::serial();
    let tc = TestContainer::running("lockhold");
    let call = call(&tc);
    let lock = ContainerLock::acquire(&call, "test", LockMode::Exclusive)
        .unwrap()
        .expect("locking is on by default");
    let held = call.clone().under_lock(lock.clone());
    // Calls under the caller's lock run; others wait.
    assert!(Freeze::run_with(&held).unwrap());
    assert!(State::run_with(&held).unwrap().is_frozen());
    let err = State::run_with(&call.clone().deadline(Duration::from_millis(100))).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Busy { .. }), "{err}");
    assert!(Unfreeze::run_with(&held).unwrap());
    drop(held);
    drop(lock);
    assert!(
        State::run_with(&call.clone().deadline(Duration::from_secs(5)))
            .unwrap()
            .state
            == "running"
    );
}

#[test]
fn exec_holds_the_lock_only_until_its_program_runs() {
    let _serial = ctl_test_support::leaks::serial();
    let tc = TestContainer::running("lockexec");
    let call = call(&tc);
    let path = lock_file(&tc);
    std::thread::scope(|s| {
        let program = s.spawn(|| exec(&call, &["sleep", "3"]));
        // The program runs (its process is in the container) ...
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let out = std::process::Command::new("pgrep")
                .args(["-u", &tc.container().user, "-x", "sleep"])
                .output()
                .unwrap();
            let running = !out.stdout.is_empty();
            // (the container's own uid range is not the user's; look for any sleep 3)
            let any = std::process::Command::new("pgrep")
                .args(["-f", "^sleep 3$"])
                .output()
                .unwrap();
            if running || !any.stdout.is_empty() {
                break;
            }
            assert!(Instant::now() < until, "the program never started");
            std::thread::sleep(Duration::from_millis(20));
        }
        // ... and nothing holds the container's lock any more: not the frontend, not the
        // runner, not the process that attached, not the program.
        let until = Instant::now() + Duration::from_secs(2);
        while !lock_holders(&path).is_empty() {
            assert!(
                Instant::now() < until,
                "the lock is still held while the program runs: {:?}",
                lock_holders(&path)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // So a changer gets in while the program runs on: the program is frozen with the
        // container (as under osctld) and goes on after the thaw.
        let started = Instant::now();
        assert!(Freeze::run_with(&call.clone().deadline(Duration::from_secs(2))).unwrap());
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(Unfreeze::run_with(&call).unwrap());
        assert_eq!(program.join().unwrap().unwrap(), 0);
    });
}

/// The race of `docs/reliability.md`: Exec checks the state, then attaches; a Freeze
/// landing in between froze the program just attached, and the Exec then hung until its
/// deadline. Under the lock a Freeze waits for the attach, so every Exec either runs its
/// program (status 0) or refuses a frozen container — never times out.
#[test]
fn freeze_racing_exec_never_freezes_a_program_mid_attach() {
    let _serial = ctl_test_support::leaks::serial();
    let tc = TestContainer::running("lockrace");
    let call = call(&tc).deadline(Duration::from_secs(20));
    let stop = AtomicBool::new(false);
    let (ran, refused, pairs) = (
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    );
    let run_for = Duration::from_secs(6);
    std::thread::scope(|s| {
        for _ in 0..6 {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    match exec(&call, &["true"]) {
                        Ok(0) => ran.fetch_add(1, Ordering::Relaxed),
                        Err(e)
                            if e.command_message()
                                .is_some_and(|m| m.contains("unfreeze it first")) =>
                        {
                            refused.fetch_add(1, Ordering::Relaxed)
                        }
                        other => panic!("Exec under a racing Freeze: {other:?}"),
                    };
                }
            });
        }
        for _ in 0..2 {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    assert!(Freeze::run_with(&call).unwrap());
                    std::thread::sleep(Duration::from_millis(5));
                    assert!(Unfreeze::run_with(&call).unwrap());
                    pairs.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(20));
                }
            });
        }
        std::thread::sleep(run_for);
        stop.store(true, Ordering::Relaxed);
    });
    let (ran, refused, pairs) = (ran.into_inner(), refused.into_inner(), pairs.into_inner());
    eprintln!(
        "{ran} Execs ran, {refused} refused a frozen container, {pairs} Freeze/Unfreeze pairs"
    );
    assert!(
        ran > 10 && pairs > 5,
        "too little happened: {ran} {refused} {pairs}"
    );
    assert_eq!(tc.lxc_state(), "running");
}

#[test]
fn async_calls_wait_for_the_lock_on_the_timer_and_can_be_cancelled_while_waiting() {
    let _serial = ctl_test_support::leaks::serial();
    let tc = TestContainer::running("lockasync");
    // The lock directory's fd, kept open by ctl-core once it is checked, is opened here
    // before the count.
    drop(ContainerLock::acquire(&call(&tc), "test", LockMode::Shared).unwrap());
    // The runtime first: its fds (and tokio's process-wide signal pipe, when a crate of
    // the build enables tokio's `signal`) are not the calls'.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let fds_before = fd_targets();
    // Tasks need 'static calls: a copy of the record that lives for the test's process.
    let ct: &'static ctl_core::Container = Box::leak(Box::new(tc.container().clone()));
    let call = Call::new(ct)
        .runner(test_runner_path())
        .stdout(Stdio::Null)
        .stderr(Stdio::Null);
    let lock = ContainerLock::acquire(&call, "test", LockMode::Exclusive)
        .unwrap()
        .unwrap();
    rt.block_on(async {
        // 50 users wait (no thread each) while the test holds the lock exclusively.
        let waiting: Vec<_> = (0..50)
            .map(|_| {
                let call = call.clone();
                tokio::spawn(async move { Sleep::runner_async(&call, 0.0).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(waiting.iter().all(|t| !t.is_finished()));
        // Half of them go away while waiting.
        for t in &waiting[..25] {
            t.abort();
        }
        // A deadline ends a wait with Busy, as in the blocking API.
        let err = State::run_with_async(&call.clone().deadline(Duration::from_millis(100)))
            .await
            .unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::Busy { .. }), "{err}");
        drop(lock);
        let mut done = 0;
        for t in waiting {
            match t.await {
                Ok(result) => {
                    assert!(result.unwrap());
                    done += 1;
                }
                Err(e) => assert!(e.is_cancelled()),
            }
        }
        assert_eq!(done, 25);
    });
    assert_eq!(fd_targets(), fds_before);
    drop(rt);
    assert!(ctl_test_support::leaks::zombie_children().is_empty());
}

/// What this process's fds point to (the kept `cgroup.procs` files forgotten first).
fn fd_targets() -> Vec<String> {
    ctl_core::frontend::forget_cgroup_files();
    let mut targets: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|t| t.display().to_string())
        // The read_dir's own fd.
        .filter(|t| !t.starts_with("/proc/") || !t.ends_with("/fd"))
        .collect();
    targets.sort();
    targets
}

/// Exec with `run` on a stopped container (the container started for the program): the
/// lock goes once the start is under way, not when the program ends.
#[test]
fn exec_with_run_lets_the_lock_go_once_the_container_starts() {
    let _serial = ctl_test_support::leaks::serial();
    let tc = TestContainer::new("lockrun");
    let call = call(&tc);
    let path = lock_file(&tc);
    std::thread::scope(|s| {
        let program = s.spawn(|| {
            Exec::run_with(
                &call,
                vec!["sleep".into(), "3".into()],
                true,
                false,
                ExecOptions::default(),
            )
        });
        let until = Instant::now() + Duration::from_secs(10);
        while tc.lxc_state() != "running" {
            assert!(Instant::now() < until, "the container never started");
            std::thread::sleep(Duration::from_millis(20));
        }
        let until = Instant::now() + Duration::from_secs(2);
        while !lock_holders(&path).is_empty() {
            assert!(
                Instant::now() < until,
                "the lock is held while the started program runs: {:?}",
                lock_holders(&path)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(program.join().unwrap().unwrap(), 0);
    });
}

/// A changer called under a shared lock is refused (it would run beside users); the
/// lock directory, removed while a process uses it, is made again.
#[test]
fn a_changer_under_a_shared_lock_is_refused_and_a_removed_directory_comes_back() {
    let _serial = ctl_test_support::leaks::serial();
    let tc = TestContainer::running("lockmode");
    let dir = tempfile::tempdir().unwrap();
    let locks = dir.path().join("locks");
    let launcher = ctl_core::Launcher::new().with_lock_dir(Some(locks.clone()));
    let call = call(&tc).launcher(&launcher);
    let shared = ContainerLock::acquire(&call, "test", LockMode::Shared)
        .unwrap()
        .unwrap();
    let err = Freeze::run_with(&call.clone().under_lock(shared.clone())).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Arguments { .. }), "{err}");
    assert!(err.to_string().contains("exclusive one is needed"), "{err}");
    assert_eq!(tc.lxc_state(), "running");
    drop(shared);
    // The directory goes (a service manager cleaning /run): the next call makes it again.
    std::fs::remove_dir_all(&locks).unwrap();
    assert_eq!(State::run_with(&call).unwrap().state, "running");
    let mode = std::fs::metadata(&locks).unwrap().mode() & 0o777;
    assert_eq!(mode, 0o700);
    assert!(locks
        .join(format!("{}.lock", tc.container().ident()))
        .exists());
}

/// A container that holds up an Exec's attach (here its payload frozen behind LXC's back,
/// as its root can freeze its own processes: the process entering it stops before its
/// exec) does not keep changers out for the Exec's whole deadline: the attaching worker
/// lets the lock go after `ATTACH_HOLD_LIMIT`, and an Unfreeze then gets in and thaws it.
#[test]
fn an_attach_the_container_holds_up_lets_the_lock_go_at_its_limit() {
    let _serial = ctl_test_support::leaks::serial();
    let tc = TestContainer::running("lockhold10");
    let ct = tc.container();
    let call = call(&tc);
    let state = ctl_core::cgroup::hierarchies()
        .iter()
        .find(|h| h.has_controller("freezer"))
        .expect("a v1 freezer hierarchy (notes/lxc-on-these-machines.md)")
        .path_of(&format!("{}/lxc.payload.{}", ct.cgroup_path, ct.id))
        .join("freezer.state");
    std::fs::write(&state, "FROZEN").unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(&state).unwrap().trim() != "FROZEN" {
        assert!(Instant::now() < until, "the payload did not freeze");
        std::thread::sleep(Duration::from_millis(20));
    }
    let limit = ctl_lxc::isolated::ATTACH_HOLD_LIMIT;
    std::thread::scope(|s| {
        let started = Instant::now();
        let exec = s.spawn(|| exec(&call.clone().deadline(limit * 3), &["true"]));
        // The Exec holds the lock while its attach is stuck ...
        let path = lock_file(&tc);
        let until = Instant::now() + Duration::from_secs(5);
        while lock_holders(&path).is_empty() {
            assert!(Instant::now() < until, "the Exec never took the lock");
            std::thread::sleep(Duration::from_millis(10));
        }
        // ... until the limit, not until its deadline: then a changer gets in.
        assert!(Unfreeze::run_with(&call.clone().deadline(limit * 2)).unwrap());
        let waited = started.elapsed();
        eprintln!("the Unfreeze got the lock after {waited:?} (limit {limit:?})");
        assert!(waited >= limit - Duration::from_secs(1), "{waited:?}");
        assert!(waited < limit * 2, "{waited:?}");
        // Thawed, the stuck attach goes on: the program runs.
        assert_eq!(exec.join().unwrap().unwrap(), 0);
    });
    assert_eq!(std::fs::read_to_string(&state).unwrap().trim(), "THAWED");
}
