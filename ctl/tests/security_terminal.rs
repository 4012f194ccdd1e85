//! The standing red team, part one: the container's root (and its system user) against
//! the operator's terminal and the processes that enter the container.
//!
//! Each test replays an attack that worked before the fix (docs/security.md): `ctl` runs
//! as an operator runs it, from a shell on a terminal (a pty whose slave is `ctl`'s
//! controlling terminal), and static programs the container's root planted in its rootfs
//! try to type into that terminal (`TIOCSTI`, with `dev.tty.legacy_tiocsti=1`) or to catch
//! the processes entering the container (`PTRACE_SEIZE`, `pidfd_getfd`). The programs are
//! C sources in `test-support/redteam/`, built here with `cc -static`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ctl_test_support::cli::{Ct, Run, StateDir};
use ctl_test_support::redteam::{
    ct_dir, legacy_tiocsti_on, plant, redteam_binary, rootfs, wait_for_text, Terminal,
};

/// An operator: a raw terminal that `ctl` runs on, with bounded runs.
struct Operator {
    terminal: Terminal,
}

impl Operator {
    fn new() -> Operator {
        Operator {
            terminal: Terminal::new(true),
        }
    }

    /// Runs `ctl ARGS` on this terminal (see [`Terminal::spawn`]). Bounded: killed after
    /// 90 s. What the terminal showed is the run's stdout.
    fn ctl(&self, state: &StateDir, args: &[&str], stdin_tty: bool) -> Run {
        let mut child = self.terminal.spawn(state, args, stdin_tty);
        let start = Instant::now();
        let mut output = Vec::new();
        let status = loop {
            self.terminal.read_master(&mut output);
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > Duration::from_secs(90) {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "ctl {args:?} hung; terminal output: {}",
                    String::from_utf8_lossy(&output)
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        self.terminal.read_master(&mut output);
        Run {
            args: args.join(" "),
            status: status.code(),
            stdout: String::from_utf8_lossy(&output).into_owned(),
            stderr: String::new(),
        }
    }

    fn typed_input(&self) -> String {
        self.terminal.typed_input()
    }
}

/// Waits until `path` holds the injector's last line, `done` (bounded).
fn injector_result(path: &Path) -> String {
    wait_for_text(
        path,
        "done",
        Duration::from_secs(20),
        "the injector never finished",
    )
}

#[track_caller]
fn assert_not_injected(operator: &Operator, result: &str) {
    assert!(
        !result.contains("INJECTED"),
        "the container typed into the operator's terminal:\n{result}"
    );
    assert!(
        result.contains("/dev/tty: open failed"),
        "the container's /dev/tty must be no terminal of the host:\n{result}"
    );
    let typed = operator.typed_input();
    assert!(
        !typed.contains("PWNED"),
        "the operator's terminal received input from the container: {typed:?}"
    );
}

#[test]
fn a_program_run_by_exec_cannot_type_into_the_operators_terminal() {
    legacy_tiocsti_on();
    let state = StateDir::new();
    let ct = Ct::running(&state, "rtx");
    plant(&ct, "inject", "/inject");
    let operator = Operator::new();
    // As in the report: stdin redirected, output on the terminal; the injector types
    // after ctl has returned, from the background.
    let run = operator.ctl(
        &state,
        &[
            "ct",
            "exec",
            &ct.name,
            "--",
            "/inject",
            "300",
            "/inject.result",
        ],
        false,
    );
    assert_eq!(run.status, Some(0), "{run}");
    let result = injector_result(&rootfs(&ct).join("inject.result"));
    assert_not_injected(&operator, &result);
    // The program's output still reaches the terminal (relayed, not handed over).
    assert!(
        result.contains("stdout: not a terminal"),
        "stdout must be a pipe relayed by the frontend:\n{result}"
    );
}

#[test]
fn stop_runs_a_trojaned_halt_without_the_operators_terminal() {
    legacy_tiocsti_on();
    let state = StateDir::new();
    let ct = Ct::running(&state, "rth");
    // `halt` as the container's PATH finds it (osctld's, `/bin` first): the operator runs
    // no program of the container's on purpose, Stop attaches `halt`.
    plant(&ct, "inject", "/bin/halt");
    let operator = Operator::new();
    let run = operator.ctl(&state, &["ct", "stop", &ct.name, "--timeout", "20"], false);
    assert_eq!(run.status, Some(0), "{run}");
    let result = injector_result(&rootfs(&ct).join("inject.result"));
    assert_not_injected(&operator, &result);
}

#[test]
fn runscript_through_a_trojaned_shell_cannot_reach_the_operators_terminal() {
    legacy_tiocsti_on();
    let state = StateDir::new();
    let ct = Ct::running(&state, "rts");
    let operator = Operator::new();
    let script_dir = tempfile::tempdir().unwrap();
    let script = script_dir.path().join("job.sh");
    std::fs::write(&script, "#!/bin/sh\necho job\n").unwrap();
    // The container's root replaced its /bin/sh (the script's interpreter).
    plant(&ct, "inject", "/inject");
    ct.exec(&["sh", "-c", "rm /bin/sh && cp /inject /bin/sh"])
        .ok();
    let run = operator.ctl(
        &state,
        &["ct", "runscript", &ct.name, script.to_str().unwrap()],
        false,
    );
    assert_eq!(run.status, Some(0), "{run}");
    let result = injector_result(&rootfs(&ct).join("inject.result"));
    assert_not_injected(&operator, &result);
}

#[test]
fn an_lxc_hook_of_the_container_user_under_exec_run_sees_no_host_terminal() {
    legacy_tiocsti_on();
    let state = StateDir::new();
    let ct = Ct::new(&state, "rtk");
    // The container's user may edit its LXC config: a pre-start hook that injects. It
    // runs on the host, as that user, in the runner's session.
    let inject = redteam_binary("inject");
    let out_dir = tempfile::Builder::new()
        .prefix("ctl-redteam-out-")
        .tempdir_in("/tmp")
        .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(out_dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let result_path = out_dir.path().join("hook.result");
    let hook = out_dir.path().join("hook.sh");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\nexec {} 300 {}\n",
            inject.display(),
            result_path.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = ct_dir(&ct).join("config");
    let status = Command::new("setpriv")
        .args([
            "--reuid",
            &ct.user(),
            "--regid",
            &ct.user(),
            "--clear-groups",
        ])
        .args([
            "sh",
            "-c",
            &format!(
                "echo 'lxc.hook.pre-start = {}' >> {}",
                hook.display(),
                config.display()
            ),
        ])
        .status()
        .unwrap();
    assert!(status.success(), "the container's user edits its config");
    let operator = Operator::new();
    let run = operator.ctl(&state, &["ct", "exec", "-r", &ct.name, "--", "true"], false);
    assert_eq!(run.status, Some(0), "{run}");
    let result = injector_result(&result_path);
    assert_not_injected(&operator, &result);
}

#[test]
fn an_interactive_exec_gets_a_terminal_of_the_container_not_the_operators() {
    legacy_tiocsti_on();
    let state = StateDir::new();
    let ct = Ct::running(&state, "rti");
    plant(&ct, "inject", "/inject");
    let operator = Operator::new();
    // stdin on the terminal: an interactive session. The program's terminal is a pty of
    // the container's devpts; typing into it stays in the container.
    let run = operator.ctl(
        &state,
        &[
            "ct", "exec", &ct.name, "--", "sh", "-c",
            "tty; echo dev=$(stat -L -c %d /proc/self/fd/0); echo dev=$(stat -c %d /dev/pts/ptmx); \
             /inject 0 /inject.result; sleep 1",
        ],
        true,
    );
    assert_eq!(run.status, Some(0), "{run}");
    assert!(
        run.stdout.contains("/dev/pts/"),
        "the program runs on a pty: {run}"
    );
    let result = injector_result(&rootfs(&ct).join("inject.result"));
    let typed = operator.typed_input();
    assert!(
        !typed.contains("PWNED"),
        "the operator's terminal received input from the container: {typed:?}"
    );
    // Its own terminal is the container's: /dev/tty opens (and TIOCSTI types into the
    // container's pty, which is the container's business).
    assert!(!result.contains("/dev/tty: open failed"), "{result}");
    // The pty is the container's own: on the container's devpts, not the host's.
    let devices: Vec<&str> = run
        .stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("dev="))
        .collect();
    assert_eq!(devices.len(), 2, "{run}");
    assert_eq!(
        devices[0], devices[1],
        "the pty is not on the container's devpts: {run}"
    );
    let host = nix::sys::stat::stat("/dev/pts/ptmx").unwrap().st_dev;
    assert_ne!(
        devices[0],
        host.to_string(),
        "the pty is on the host's devpts: {run}"
    );
}

/// The red team's catcher: every process that appears in the container is hunted with
/// `PTRACE_SEIZE` and `pidfd_getfd` until it executes a program. Nothing forked from a
/// runner (its name is `runner:<command>`) may be caught: a catch there hands the
/// container's root the runner's reply pipe, its stderr, the call's stdio and liblxc's
/// host-side log.
#[test]
fn nothing_entering_the_container_can_be_caught() {
    let state = StateDir::new();
    let ct = Ct::running(&state, "rtc");
    plant(&ct, "catch", "/catch");
    ct.exec(&["/catch", "60000", "/catch.log"]).ok();
    let log_path = rootfs(&ct).join("catch.log");
    wait_for_text(
        &log_path,
        "watching",
        Duration::from_secs(10),
        "the catcher did not start",
    );
    let operator = Operator::new();
    for _ in 0..10 {
        ct.exec(&["true"]).ok();
    }
    for _ in 0..3 {
        ct.ctl(&["wall", "red team"]).ok();
        let run = operator.ctl(&state, &["ct", "exec", &ct.name, "--", "true"], true);
        assert_eq!(run.status, Some(0), "{run}");
    }
    let script_dir = tempfile::tempdir().unwrap();
    let script = script_dir.path().join("job.sh");
    std::fs::write(&script, "#!/bin/sh\ntrue\n").unwrap();
    ct.ctl(&["runscript", script.to_str().unwrap()]).ok();
    ct.ctl(&["stop", "--timeout", "5"]).ok();
    let log = std::fs::read_to_string(&log_path).unwrap();
    let caught: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with("CAUGHT"))
        .filter(|l| {
            let comm = l
                .split_whitespace()
                .find_map(|w| w.strip_prefix("comm="))
                .unwrap_or("");
            comm.starts_with("runner:") || comm.starts_with("ctl") || comm.starts_with("lxc")
        })
        .collect();
    assert!(
        caught.is_empty(),
        "the container's root caught processes entering it:\n{}",
        caught.join("\n")
    );
    // The catcher did work: the container's own programs (after their exec) are caught.
    assert!(
        log.lines().any(|l| l.starts_with("CAUGHT")),
        "the catcher caught nothing at all; is it working?\n{log}"
    );
}

/// The operator can always leave an interactive session (raw mode sends Ctrl-C to the
/// container as a byte, and a container can ignore it): `~.` at the start of a line ends
/// it, as in ssh, and hangs up the container's pty.
#[test]
fn the_operator_leaves_an_interactive_session_with_tilde_dot() {
    let state = StateDir::new();
    let ct = Ct::running(&state, "rte");
    let operator = Operator::new();
    let typist = operator.terminal.master.try_clone().unwrap();
    let typing = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(3));
        // Ctrl-C first: ignored inside. Then the escape.
        let _ = nix::unistd::write(&typist, b"\x03");
        std::thread::sleep(Duration::from_millis(300));
        let _ = nix::unistd::write(&typist, b"\r~.");
    });
    let start = Instant::now();
    let run = operator.ctl(
        &state,
        &[
            "ct",
            "exec",
            &ct.name,
            "--",
            "sh",
            "-c",
            "trap '' INT; sleep 60",
        ],
        true,
    );
    typing.join().unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "the session did not end: {run}"
    );
    // The program was hung up (SIGHUP: 128 + 1).
    assert_eq!(run.status, Some(129), "{run}");
}

/// The container's `/dev/ptmx` is its root's to replace: an interactive exec must neither
/// block on a FIFO there nor relay anything but a real pty, and says why it cannot start.
#[test]
fn a_fake_ptmx_in_the_container_fails_the_session_clearly() {
    let state = StateDir::new();
    let ct = Ct::running(&state, "rtp");
    ct.exec(&[
        "sh",
        "-c",
        "umount /dev/ptmx 2>/dev/null; rm -f /dev/ptmx && mkfifo /dev/ptmx",
    ])
    .ok();
    let operator = Operator::new();
    let run = operator.ctl(&state, &["ct", "exec", &ct.name, "--", "true"], true);
    assert_eq!(run.status, Some(1), "{run}");
    assert!(
        run.stdout
            .contains("cannot set up the terminal session in the container")
            && run.stdout.contains("/dev/ptmx is not a pty multiplexer"),
        "{run}"
    );
}
