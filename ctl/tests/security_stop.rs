//! The standing red team, part three: a container against its own stop.
//!
//! - Its root freezes its own init in a freezer cgroup of its own below the payload
//!   (cgroup v1 lets it: the payload is delegated to it), where neither LXC's monitor
//!   state nor liblxc's unfreeze looks: a frozen init never dies of SIGKILL, and `ctl ct
//!   stop` hung for good (10 min observed), the container kept running.
//! - Its root replaces `halt`: the replacement got the caller's own stderr (a root-opened
//!   file, e.g. a daemon's log) and could write into it.

use std::process::Stdio;
use std::time::{Duration, Instant};

use ctl_test_support::cli::{Ct, StateDir};

/// Freezes the container's init in `/tmp/fz/ice` (a freezer cgroup the container's root
/// makes below its payload); with `keep`, a loop inside freezes it again every 50 ms.
fn freeze_own_init(ct: &Ct<'_>, keep: bool) {
    let mut script = String::from(
        "mkdir -p /tmp/fz && mount -t cgroup -o freezer none /tmp/fz && mkdir -p /tmp/fz/ice \
         && echo 1 > /tmp/fz/ice/cgroup.procs && echo FROZEN > /tmp/fz/ice/freezer.state",
    );
    if keep {
        script.push_str(
            " && (while :; do echo FROZEN > /tmp/fz/ice/freezer.state; sleep 0.05; done) \
             </dev/null >/dev/null 2>&1 &",
        );
    }
    ct.exec(&["sh", "-c", &script]).ok();
}

/// `ctl ct stop NAME ARGS…`, killed (and the test failed) after `limit`.
fn stop_within(ct: &Ct<'_>, args: &[&str], limit: Duration) -> (Option<i32>, Duration) {
    let mut all = vec!["ct", "stop", ct.name.as_str()];
    all.extend_from_slice(args);
    let mut child = ct
        .state
        .command(&all)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status.code(), start.elapsed());
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ctl {all:?} still running after {limit:?}: the container holds up its stop");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_container_that_froze_its_own_init_is_stopped() {
    let state = StateDir::new();
    let ct = Ct::running(&state, "rsf");
    freeze_own_init(&ct, false);
    assert_eq!(
        ct.state_word(),
        "running",
        "the monitor does not see the freeze"
    );
    let (status, took) = stop_within(&ct, &["--timeout", "5"], Duration::from_secs(60));
    assert_eq!(status, Some(0), "stop failed after {took:?}");
    assert_eq!(ct.state_word(), "stopped");
}

#[test]
fn a_container_that_keeps_refreezing_its_init_is_killed_within_a_bound() {
    let state = StateDir::new();
    let ct = Ct::running(&state, "rsk");
    freeze_own_init(&ct, true);
    // Kill mode: the frontend's thaw races the loop, and LXC's kill mostly gets through.
    // Default mode: halt, then LXC's kill, which the loop keeps from working; the runner
    // is killed at timeout 1 s + KILL_GRACE 10 s + its slack 10 s, and root kills what is
    // left in the container's cgroups (at most 10 s).
    for mode in ["kill", "stop"] {
        if ct.state_word() != "running" {
            ct.ctl(&["start"]).ok();
            freeze_own_init(&ct, true);
        }
        let (status, took) = stop_within(
            &ct,
            &["--mode", mode, "--timeout", "1"],
            Duration::from_secs(60),
        );
        assert_eq!(status, Some(0), "stop --mode {mode} failed after {took:?}");
        assert_eq!(ct.state_word(), "stopped", "--mode {mode}");
        eprintln!("stop --mode {mode} took {took:?}");
    }
}

#[test]
fn a_trojaned_halt_does_not_get_the_callers_stderr() {
    let state = StateDir::new();
    let ct = Ct::running(&state, "rsh");
    // In place of `/bin/halt`, where the container's PATH (osctld's, `/bin` first) finds it.
    let trojan = "#!/bin/sh\necho ran > /halt-ran\necho FORGED-BY-HALT >&2\necho FORGED-BY-HALT\n\
                  exec /bin/busybox halt\n";
    ct.state
        .ctl_with_stdin(
            &[
                "ct",
                "exec",
                &ct.name,
                "--",
                "sh",
                "-c",
                "rm -f /bin/halt && cat > /bin/halt && chmod 755 /bin/halt",
            ],
            Some(trojan.as_bytes()),
        )
        .ok();
    // The caller's stdout and stderr: a root-owned log file, as a daemon's would be.
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("daemon.log");
    std::fs::write(&log_path, "root's log line\n").unwrap();
    // (StopByHalt attaches `halt` the same way, through `commands::support::attach_wait`.)
    {
        let args = ["ct", "stop", ct.name.as_str(), "--timeout", "10"];
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(&log_path)
            .unwrap();
        let status = ct
            .state
            .command(&args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .status()
            .unwrap();
        let text = std::fs::read_to_string(&log_path).unwrap();
        assert!(
            !text.contains("FORGED"),
            "ctl {args:?} ({status}) handed its output to the container's halt:\n{text}"
        );
        assert!(text.starts_with("root's log line\n"), "{text}");
    }
    // The trojan did run (the check above is not vacuous).
    assert!(
        ctl_test_support::redteam::rootfs(&ct)
            .join("halt-ran")
            .exists(),
        "the planted halt never ran"
    );
}
