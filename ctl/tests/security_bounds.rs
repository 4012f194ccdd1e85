//! Red team: a container's hostile root against `ctl`.
//!
//! - Helpers attached into the container live in its pid namespace, so its root can
//!   SIGSTOP them: `ct wall` must not hang, and `ct stop` must still kill the container
//!   within its `--timeout` (a container cannot block its own kill).
//! - Text the container controls (its hostname, messages) must reach a terminal with its
//!   control characters escaped.
//!
//! Every `ctl` here runs as a subprocess killed after a bound of the test's own, so that a
//! regression fails instead of hanging the suite.

use std::io::Read;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use ctl_test_support::cli::{Ct, Run, StateDir};

/// Runs `ctl --state-dir DIR ARGS...` and kills it if it takes longer than `bound`; returns
/// what it did and how long it took (`status: None` when it had to be killed).
fn ctl_bounded(state: &StateDir, args: &[&str], bound: Duration) -> (Run, Duration) {
    let started = Instant::now();
    let mut child = state
        .command(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ctl");
    // Pipes read on threads so that a chatty ctl cannot block on a full pipe.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > bound {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let took = started.elapsed();
    // A runner left behind by a killed ctl may still hold the pipes: do not wait for it.
    let join = |h: std::thread::JoinHandle<Vec<u8>>| {
        let give_up = Instant::now() + Duration::from_secs(2);
        while !h.is_finished() && Instant::now() < give_up {
            std::thread::sleep(Duration::from_millis(20));
        }
        if h.is_finished() {
            String::from_utf8_lossy(&h.join().unwrap()).into_owned()
        } else {
            "(pipe still held open by a leftover process)".to_owned()
        }
    };
    let run = Run {
        args: args.join(" "),
        status: status.and_then(|s| s.code()),
        stdout: join(out),
        stderr: join(err),
    };
    let run = if status.is_none() {
        Run {
            stderr: format!("{}\n(killed by the test after {bound:?})", run.stderr),
            ..run
        }
    } else {
        run
    };
    (run, took)
}

/// The container's rootfs on the host.
fn rootfs(ct: &Ct<'_>) -> PathBuf {
    ct.state
        .path()
        .join("lxc")
        .join(ct.user())
        .join(&ct.name)
        .join("rootfs")
}

/// The file whose existence (inside the container: `/tmp/stopper-off`) ends the stopper.
const STOPPER_OFF: &str = "tmp/stopper-off";

/// Starts, as the container's root, a busybox loop that SIGSTOPs every process inside that
/// did not exist when it started (whatever the host attaches: wall's and the mount
/// helpers' processes, halt, ...). The loop uses shell builtins only, so that it creates
/// no processes of its own. It ends when `/tmp/stopper-off` appears (written from the
/// host, see [`STOPPER_OFF`]: an exec would be stopped too) or the container stops.
fn start_stopper(ct: &Ct<'_>) {
    let _ = std::fs::remove_file(rootfs(ct).join(STOPPER_OFF));
    let script = r#"
known=" $(ls /proc | grep '^[0-9]' | tr '\n' ' ') "
while [ ! -e /tmp/stopper-off ]; do
  for p in /proc/[0-9]*; do
    n=${p#/proc/}
    case "$known" in *" $n "*) continue;; esac
    [ "$n" = "$$" ] && continue
    kill -STOP "$n" 2>/dev/null
  done
done
"#;
    let launch = format!(
        "sh -c '{}' </dev/null >/dev/null 2>&1 &",
        script.replace('\'', r#"'\''"#)
    );
    ct.exec(&["sh", "-c", &launch]).ok();
    // Give the loop time to take its census before anything is attached.
    std::thread::sleep(Duration::from_millis(500));
}

/// Ends the stopper (if the container still runs).
fn end_stopper(ct: &Ct<'_>) {
    let _ = std::fs::write(rootfs(ct).join(STOPPER_OFF), b"");
}

/// Processes on the host whose command line mentions container `name` and that are
/// stopped (state `T`): helpers left behind.
fn stopped_processes_of(name: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let file_name = entry.file_name();
        let Some(pid) = file_name.to_str().filter(|s| s.parse::<u32>().is_ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let state = stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.split(' ').next())
            .unwrap_or("?");
        if cmdline.contains(name) && (state == "T" || state == "t") {
            found.push(format!("{pid} [{state}] {cmdline}"));
        }
    }
    found
}

/// How often a test replays an attack until the stopper caught a helper: a busybox loop
/// scanning `/proc` catches a short-lived helper in about half the attempts here.
const ATTEMPTS: usize = 12;

#[test]
fn wall_with_its_helper_sigstopped_ends_on_its_own() {
    let state = StateDir::new();
    let ct = Ct::running(&state, "sbwall");
    start_stopper(&ct);
    let mut caught = false;
    for _ in 0..ATTEMPTS {
        // No --deadline: the bound must come from ctl itself.
        let (run, took) = ctl_bounded(
            &state,
            &["ct", "wall", &ct.name, "maintenance"],
            Duration::from_secs(40),
        );
        assert!(run.status.is_some(), "ct wall hung: {run}");
        assert!(took < Duration::from_secs(20), "took {took:?}: {run}");
        if run.status == Some(0) {
            continue; // the helper finished before the stopper saw it
        }
        let message = run.fails(1);
        assert!(
            message.contains("wall inside the container did not finish within 5 s; killed"),
            "{message}"
        );
        caught = true;
        break;
    }
    end_stopper(&ct);
    assert!(
        caught,
        "the stopper never caught wall's helper in {ATTEMPTS} attempts"
    );
    // The helper was killed and reaped: nothing stopped is left behind.
    std::thread::sleep(Duration::from_millis(300));
    let left = stopped_processes_of(&ct.name);
    assert!(left.is_empty(), "left behind: {left:?}");
    // The container is still usable afterwards.
    ct.ctl(&["wall", "after the attack"]).ok();
}

/// Starts the container (again), sets the stopper on it and stops it with a message and
/// `--timeout 5` in `mode`, until the stopper caught wall's helper (the runner says so on
/// its stderr, which `-v` shows). Each stop must end, succeed and leave the container
/// stopped in time.
fn stop_against_the_stopper(mode: &str) {
    let state = StateDir::new();
    let ct = Ct::new(&state, &format!("sb{mode}"));
    let mut caught = false;
    for _ in 0..ATTEMPTS {
        ct.ctl(&["start"]).ok();
        start_stopper(&ct);
        let (run, took) = ctl_bounded(
            &state,
            &[
                "-v",
                "ct",
                "stop",
                &ct.name,
                "--mode",
                mode,
                "--timeout",
                "5",
                "--message",
                "going down",
            ],
            Duration::from_secs(40),
        );
        end_stopper(&ct);
        assert!(run.status.is_some(), "ct stop hung: {run}");
        run.ok();
        // --timeout 5 bounds the message and the clean part; the kill takes well under a
        // second here.
        assert!(took < Duration::from_secs(15), "took {took:?}: {run}");
        assert_eq!(ct.state_word(), "stopped");
        let left = stopped_processes_of(&ct.name);
        assert!(left.is_empty(), "left behind: {left:?}");
        if run
            .stderr
            .contains("wall inside the container did not finish within 5 s; killed")
        {
            caught = true;
            break;
        }
    }
    assert!(
        caught,
        "the stopper never caught wall's helper in {ATTEMPTS} stops"
    );
}

#[test]
fn stop_kill_with_a_message_kills_within_the_timeout_although_wall_is_sigstopped() {
    stop_against_the_stopper("kill");
}

#[test]
fn stop_with_halt_and_wall_sigstopped_falls_back_to_kill_at_the_timeout() {
    stop_against_the_stopper("stop");
}

#[test]
fn a_hostname_with_terminal_escapes_is_printed_escaped() {
    let state = StateDir::new();
    let ct = Ct::running(&state, "sbhost");
    // As the container's root: clear the screen and retitle the terminal.
    ct.exec(&[
        "sh",
        "-c",
        r"hostname $(printf 'a\033[2J\033]0;pwned\007b')",
    ])
    .ok();
    let run = ct.ctl(&["hostname"]);
    let out = run.ok();
    assert!(
        !out.bytes().any(|b| b == 0x1b || b == 0x07),
        "raw control bytes in {out:?}"
    );
    assert_eq!(out.trim_end(), r"a\x1b[2J\x1b]0;pwned\x07b");
    // --json carries the hostname as it is (JSON escapes it).
    let doc = state.ctl(&["--json", "ct", "hostname", &ct.name]).json();
    assert_eq!(doc["result"], "a\x1b[2J\x1b]0;pwned\x07b");
}

#[test]
fn error_lines_from_inside_the_container_are_printed_escaped() {
    let state = StateDir::new();
    let ct = Ct::running(&state, "sberr");
    // The message of this error is written by the helper inside the container and names
    // the path it did not find, escape sequences and all.
    let run = ct.ctl(&["mount", "/run/ctl-shared", "x\x1b[2J\u{9b}31m", "/mnt/x"]);
    let message = run.fails(1);
    assert!(
        !run.stderr.contains('\x1b') && !run.stderr.contains('\u{9b}'),
        "raw control characters in {:?}",
        run.stderr
    );
    assert!(
        message.contains(r"Source directory not found at: /run/ctl-shared/x\x1b[2J\u{9b}31m"),
        "{message}"
    );
}
