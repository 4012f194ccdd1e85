//! Hardening: a runner killed mid-command, a daemon (or a calling thread) that goes away
//! while its runner works, runners of another protocol version, and LXC failures. Real
//! processes, real users and cgroups, real containers.
//!
//! Needs root and `cargo build --workspace --bins` first (the runner binaries).

use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsFd;
use std::process::{Command, Stdio as ProcStdio};
use std::time::{Duration, Instant};

use commands::{Freeze, State, Unfreeze};
use ctl_core::diag::Ping;
use ctl_core::frontend::WarmPool;
use ctl_core::{Call, Error, ErrorKind, Placement, Stdio};
use serde_json::json;
use tests::faults::{Fail, PidThenSleep};
use tests::fixtures::{
    ctl_runner_path, lingering_zombies, open_fd_count, process_alive, serial, test_runner_path,
    write_script, TestContainer, TestUser,
};

fn call(user: &TestUser) -> Call<'_> {
    Call::new(user.container())
        .runner(test_runner_path())
        .stdout(Stdio::Null)
        .stderr(Stdio::Null)
}

/// Waits up to `timeout` for `pid` to be gone (or a zombie); whether it went.
fn gone_within(pid: i32, timeout: Duration) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if !process_alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    !process_alive(pid)
}

/// The parent pid of `pid`, from `/proc/<pid>/stat`.
fn ppid_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.split(' ').nth(1)?.parse().ok()
}

// ---------------------------------------------------------------------------------------
// A runner killed with SIGKILL mid-command

#[test]
fn runner_killed_mid_command_is_a_runner_failure_with_signal_9() {
    let _serial = serial();
    let user = TestUser::new("hkill");
    // Warm lazily initialised state (cgroup hierarchies, runner path) before counting fds.
    Ping::run_with(&call(&user), json!(0)).unwrap();
    for placement in [Placement::Exec, Placement::Fork, Placement::ForkAsRoot] {
        for deadline in [None, Some(Duration::from_secs(60))] {
            let fds = open_fd_count();
            let (r, w) = nix::unistd::pipe().unwrap();
            // The killer: reads the runner's pid from the command's stdout, kills it.
            let killer = std::thread::spawn(move || {
                let mut line = String::new();
                BufReader::new(std::fs::File::from(r))
                    .read_line(&mut line)
                    .unwrap();
                let pid: i32 = line.trim().parse().expect("the runner wrote its pid");
                nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                )
                .unwrap();
                pid
            });
            let started = Instant::now();
            let c = call(&user)
                .placement(placement)
                .stdout(Stdio::Fd(w.as_fd()))
                .deadline(deadline);
            let err = PidThenSleep::run_with(&c, 3600.0).unwrap_err();
            drop(c);
            drop(w);
            let runner = killer.join().unwrap();
            match err.kind() {
                ErrorKind::RunnerFailed { status, .. } => {
                    assert_eq!(
                        status.signal(),
                        Some(libc::SIGKILL),
                        "{placement} {deadline:?}: {err}"
                    );
                    assert_eq!(err.command_name(), "PidThenSleep");
                }
                _ => {
                    panic!("{placement} {deadline:?}: expected a runner failure, got {err:?}")
                }
            }
            assert!(
                err.to_string().contains("killed by signal 9 (SIGKILL)"),
                "{err}"
            );
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "took {:?}",
                started.elapsed()
            );
            assert!(!process_alive(runner), "runner {runner} still there");
            assert_eq!(open_fd_count(), fds, "{placement} {deadline:?}: fds leaked");
            assert_eq!(
                lingering_zombies(),
                Vec::<i32>::new(),
                "{placement} {deadline:?}: zombies"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// The daemon goes away

/// Starts `ctl-test-runner selftest-daemon-dies` (a daemon running the slow `PidThenSleep`
/// through its own binary) on `ct`; returns the daemon and the runner's pid.
fn daemon_with_a_slow_runner(
    ct: &ctl_core::Container,
    deadline: Option<&str>,
) -> (std::process::Child, i32) {
    let mut cmd = Command::new(test_runner_path());
    cmd.arg("selftest-daemon-dies");
    if let Some(d) = deadline {
        cmd.arg(d);
    }
    let mut daemon = cmd
        .stdin(ProcStdio::piped())
        .stdout(ProcStdio::piped())
        .stderr(ProcStdio::inherit())
        .spawn()
        .unwrap();
    daemon
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(ct).unwrap().as_bytes())
        .unwrap();
    let mut line = String::new();
    BufReader::new(daemon.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let runner: i32 = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("no runner pid from the daemon: {line:?}"));
    (daemon, runner)
}

#[test]
fn runner_dies_with_a_daemon_killed_mid_command() {
    let _serial = serial();
    let user = TestUser::new("hdaemon");
    for deadline in [None, Some("3600")] {
        let (mut daemon, runner) = daemon_with_a_slow_runner(user.container(), deadline);
        assert_eq!(
            ppid_of(runner),
            Some(daemon.id() as i32),
            "the runner is the daemon's child"
        );
        assert!(process_alive(runner));
        // The runner is the container user's, in a session and process group of its own:
        // only the parent-death signal can take it down with the daemon.
        let t0 = Instant::now();
        daemon.kill().unwrap();
        daemon.wait().unwrap();
        assert!(
            gone_within(runner, Duration::from_secs(5)),
            "runner {runner} outlived its daemon (deadline {deadline:?})"
        );
        eprintln!(
            "runner gone {:?} after the daemon's SIGKILL (deadline {deadline:?})",
            t0.elapsed()
        );
    }
}

/// The race the parent check closes: the daemon dies after the spawn but before the runner
/// armed its parent-death signal. The runner sees another parent than the envelope names
/// and exits without running the command.
#[test]
fn runner_whose_daemon_died_before_it_armed_pdeathsig_exits() {
    let _serial = serial();
    let envelope = |parent: u32| {
        json!({
            "name": "Ping", "pool": "p", "id": "c", "lxc_home": "/", "user_home": "/",
            "args": ["ran"], "kwargs": {}, "return": 1,
            "ctl": {"version": ctl_core::PROTOCOL_VERSION, "placement": {}, "parent_pid": parent},
        })
        .to_string()
    };
    let run = |input: String| {
        tests::fixtures::output_with_stdin(&mut Command::new(ctl_runner_path()), input.as_bytes())
    };
    // The parent as the envelope says: the command runs.
    let out = run(envelope(std::process::id()));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "{\"status\":true,\"output\":\"ran\"}\n"
    );
    // Another parent (ours died; init or a subreaper adopted the runner): no command, no reply.
    let out = run(envelope(1));
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stdout.is_empty(),
        "ran without its daemon: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// `PR_SET_PDEATHSIG` fires when the *thread* that created the child ends, not the
/// process. A cold call blocks its thread until the runner is reaped, so a calling thread
/// cannot end under its runner; warm runners outlive their callers, so the pool starts
/// them all from a thread of its own. Here a short-lived thread starts a warm runner and
/// ends: the runner must survive it and serve the next call.
#[test]
fn warm_runner_outlives_the_thread_that_first_used_it() {
    let _serial = serial();
    let user = TestUser::new("hthread");
    let pool = WarmPool::new(Duration::from_secs(60));
    std::thread::scope(|s| {
        s.spawn(|| {
            let v = Ping::run_with(&call(&user).warm(&pool), json!("from a thread")).unwrap();
            assert_eq!(v, json!("from a thread"));
        });
    });
    let pids = pool.pids();
    assert_eq!(pids.len(), 1);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        process_alive(pids[0]),
        "the warm runner died with the thread that first used it"
    );
    assert_eq!(
        Ping::run_with(&call(&user).warm(&pool), json!(2)).unwrap(),
        json!(2)
    );
    assert_eq!(pool.pids(), pids, "the warm runner was replaced");
    pool.clear();
    assert!(gone_within(pids[0], Duration::from_secs(5)));
}

// ---------------------------------------------------------------------------------------
// A runner of another protocol version

/// A runner that refuses our version, cold and warm; and a warm runner that never says
/// it is ready is bounded by the call's deadline.
#[test]
fn runner_of_another_version_is_named_cold_and_warm() {
    let _serial = serial();
    let user = TestUser::new("hver");
    let dir = tempfile::tempdir().unwrap();
    // Reads one envelope (a warm runner's socket never reaches EOF: one read only).
    let refusal = json!({
        "status": false,
        "message": "runner speaks protocol version 99",
        "ctl_error": {"kind": "version", "runner": 99, "frontend": ctl_core::PROTOCOL_VERSION},
    });
    let script = write_script(
        dir.path(),
        "new-runner",
        &format!("dd bs=1M count=1 status=none of=/dev/null; printf '%s\\n' '{refusal}' >&3"),
    );
    let pool = WarmPool::new(Duration::from_secs(30));
    for warm in [false, true] {
        let mut c = call(&user)
            .runner(&script)
            .placement(Placement::ForkAsRoot)
            .deadline(Duration::from_secs(20));
        if warm {
            c = c.warm(&pool);
        }
        match Fail::run_with(&c, "x".into()).unwrap_err().into_kind() {
            ErrorKind::VersionMismatch {
                runner,
                frontend,
                path,
            } => {
                assert_eq!((runner, frontend), (99, ctl_core::PROTOCOL_VERSION));
                assert_eq!(path, script);
            }
            other => panic!("warm={warm}: expected a version mismatch, got {other:?}"),
        }
    }
    assert_eq!(pool.len(), 0, "a refusing runner is not kept");

    let mute = write_script(dir.path(), "mute-runner", "exec sleep 1000");
    let c = call(&user)
        .runner(&mute)
        .placement(Placement::ForkAsRoot)
        .deadline(Duration::from_secs(2))
        .warm(&pool);
    let t0 = Instant::now();
    let err = Fail::run_with(&c, "x".into()).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Timeout { .. }), "{err:?}");
    assert!(
        t0.elapsed() < Duration::from_secs(6),
        "the deadline of 2s took {:?}",
        t0.elapsed()
    );
    assert_eq!(lingering_zombies(), Vec::<i32>::new());
}

// ---------------------------------------------------------------------------------------
// LXC failures

fn command_error<T: std::fmt::Debug>(result: Result<T, Error>) -> String {
    let Some(message) = result.as_ref().err().and_then(Error::command_message) else {
        panic!("expected a command error, got {result:?}");
    };
    message.to_owned()
}

/// LXC's failures are command errors with its text, within the deadline: a container that
/// does not exist, one whose config was deleted under it, one whose config liblxc cannot
/// parse.
#[test]
fn lxc_failures_are_command_errors_not_hangs() {
    let _serial = serial();
    // No LXC container at all behind this user.
    let user = TestUser::new("hnolxc");
    let ct = user.container();
    let c = Call::new(ct)
        .runner(ctl_runner_path())
        .deadline(Duration::from_secs(60));
    let t0 = Instant::now();
    let message = command_error(Freeze::run_with(&c));
    assert!(message.contains("does not exist"), "{message}");
    let message = command_error(Unfreeze::run_with(&c));
    assert!(message.contains("does not exist"), "{message}");
    assert!(t0.elapsed() < Duration::from_secs(30));

    // A real container whose LXC directory is deleted under it.
    let t = TestContainer::new("hgone");
    let ct = t.container();
    let c = Call::new(ct)
        .runner(ctl_runner_path())
        .deadline(Duration::from_secs(60));
    assert_eq!(State::run_with(&c).unwrap().state, "stopped");
    let dir = ct.lxc_home.join(&ct.id);
    let config = std::fs::read(dir.join("config")).unwrap();
    std::fs::remove_file(dir.join("config")).unwrap();
    let message = command_error(Freeze::run_with(&c));
    assert!(message.contains("does not exist"), "{message}");

    // A config liblxc refuses: its own words come back.
    std::fs::write(dir.join("config"), b"lxc.no_such_key = 1\n").unwrap();
    let message = command_error(Freeze::run_with(&c));
    eprintln!("Freeze on a broken config: {message}");
    assert!(!message.is_empty());
    std::fs::write(dir.join("config"), config).unwrap();
    assert_eq!(State::run_with(&c).unwrap().state, "stopped");
    assert_eq!(lingering_zombies(), Vec::<i32>::new());
}
