//! Red team: a container's root stops or stalls the helpers that commands attach into its
//! pid namespace. Every command must end on its own bound (no caller deadline here), kill
//! and reap its helper, and say what happened. Each call runs on a thread the test waits
//! for with a bound of its own, so that a regression fails instead of hanging the suite.
//!
//! Needs root and `cargo build --workspace --bins` first (the runner binary).

use std::sync::mpsc;
use std::time::{Duration, Instant};

use commands::{Mount, StopByHalt};
use ctl_core::Container;
use ctl_provision::oracle;
use tests::fixtures::{command_call as call, command_error, TestContainer};

/// Runs `f` on a thread and waits at most `bound` for it; `None` when it did not end.
fn bounded<T: Send + 'static>(
    bound: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(bound).ok()
}

/// Runs `script` with `sh -c` as the container's root (LXC's own `lxc-attach`).
fn as_container_root(ct: &Container, script: &str) {
    let out = oracle::attach(ct, &["sh", "-c", script]).expect("lxc-attach");
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Host processes of the container's mapped ids that are stopped (state `T`).
fn stopped_processes() -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let state = stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.split(' ').next())
            .unwrap_or("?");
        if state == "T" {
            found.push(stat);
        }
    }
    found
}

#[test]
fn stop_by_halt_with_a_halt_that_stops_itself_ends_at_its_bound() {
    let tc = TestContainer::running("sbhalt");
    let ct = tc.container().clone();
    // A trojaned halt: it SIGSTOPs itself, so it neither halts nor exits.
    as_container_root(
        &ct,
        "for h in $(which -a halt); do rm -f $h; printf '#!/bin/sh\\nkill -STOP $$\\n' > $h; \
         chmod 755 $h; done",
    );
    let before = stopped_processes().len();
    let started = Instant::now();
    let c = ct.clone();
    let result = bounded(Duration::from_secs(60), move || {
        StopByHalt::run_with(&call(&c), None)
    })
    .expect("StopByHalt hung on a stopped halt");
    let took = started.elapsed();
    let message = command_error(result);
    assert!(
        message.contains("halt inside the container did not finish within 30 s; killed"),
        "{message}"
    );
    assert!(took < Duration::from_secs(40), "took {took:?}");
    // Killed and reaped: no stopped halt is left.
    assert!(
        stopped_processes().len() <= before,
        "stopped processes left: {:?}",
        stopped_processes()
    );
}

#[test]
fn mount_with_its_helper_sigstopped_ends_at_its_bound() {
    let tc = TestContainer::running("sbmount");
    let ct = tc.container().clone();
    // A loop of shell builtins (it creates no processes itself) that SIGSTOPs every
    // process that did not exist when it started; it ends when /tmp/stopper-off appears.
    as_container_root(
        &ct,
        r#"sh -c 'known=" $(ls /proc | grep "^[0-9]" | tr "\n" " ") "
while [ ! -e /tmp/stopper-off ]; do
  for p in /proc/[0-9]*; do
    n=${p#/proc/}
    case "$known" in *" $n "*) continue;; esac
    [ "$n" = "$$" ] && continue
    kill -STOP "$n" 2>/dev/null
  done
done' </dev/null >/dev/null 2>&1 &"#,
    );
    std::thread::sleep(Duration::from_millis(500));
    let mut caught = None;
    // The loop catches a short-lived helper in about half the attempts here.
    for _ in 0..12 {
        let c = ct.clone();
        let started = Instant::now();
        let result = bounded(Duration::from_secs(40), move || {
            Mount::run_with(
                &call(&c),
                "/nonexistent-shared".into(),
                "src".into(),
                "/mnt/x".into(),
            )
        })
        .expect("Mount hung on a stopped helper");
        let message = command_error(result);
        if message.contains("Shared dir not found at: ") {
            continue; // the helper finished before the stopper saw it
        }
        caught = Some((message, started.elapsed()));
        break;
    }
    // The stopper ends with the container (the fixture destroys it).
    let (message, took) = caught.expect("the stopper never caught the mount helper");
    assert!(
        message
            .contains("the mount helper inside the container did not finish within 10 s; killed"),
        "{message}"
    );
    assert!(took < Duration::from_secs(20), "took {took:?}");
}
