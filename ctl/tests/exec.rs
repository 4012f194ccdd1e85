//! `ctl ct exec` and `ctl ct runscript`: ctl's stdio is the command's, the command's exit
//! status is ctl's, a non-zero one adds osctl's `error: executed command failed`.

use std::io::Write;

use ctl_test_support::cli::{ctl_bin, Ct, StateDir};

const FAILED: &str = "executed command failed";

#[test]
fn exec_stdout_stderr_stdin_and_exit_status() {
    let state = StateDir::new();
    let ct = Ct::running(&state, "exec");

    let run = ct.exec(&["echo", "hi"]);
    assert_eq!(run.ok(), "hi\n");
    assert_eq!(run.stderr, "", "{run}");

    let run = ct.exec(&["sh", "-c", "echo hi >&2"]);
    assert_eq!(run.ok(), "");
    assert_eq!(run.stderr, "hi\n", "{run}");

    let run = ct.exec(&["sh", "-c", "echo out; echo err >&2; exit 33"]);
    assert_eq!(run.fails(33), FAILED);
    assert_eq!(run.stdout, "out\n");
    assert_eq!(run.stderr, format!("err\nerror: {FAILED}\n"));

    // Options of the command are its own, not ctl's.
    assert_eq!(ct.exec(&["ls", "-d", "/etc"]).ok(), "/etc\n");

    let args = [
        "ct",
        "exec",
        ct.name.as_str(),
        "--",
        "sh",
        "-c",
        "tr a-z A-Z",
    ];
    assert_eq!(
        state.ctl_with_stdin(&args, Some(b"from stdin\n")).ok(),
        "FROM STDIN\n"
    );
}

#[test]
fn exec_of_a_made_up_command_fails() {
    let state = StateDir::new();
    let ct = Ct::running(&state, "nocmd");
    let run = ct.exec(&["no-such-command-ctl-test"]);
    assert_ne!(run.status, Some(0), "{run}");
    let status = run.status.unwrap();
    assert_eq!(run.fails(status), FAILED);
}

#[test]
fn exec_on_a_stopped_container() {
    let state = StateDir::new();
    let ct = Ct::new(&state, "stopx");
    // Without --run: one error line, status 1, nothing on stdout.
    let run = ct.exec(&["echo", "hi"]);
    let msg = run.fails(1);
    assert_eq!(run.stdout, "");
    assert!(!msg.contains(FAILED), "{msg}");
    assert_eq!(run.stderr.lines().count(), 1, "{run}");

    // With --run: started for the command.
    let args = ["ct", "exec", "-r", ct.name.as_str(), "--", "echo", "hi"];
    assert_eq!(state.ctl(&args).ok(), "hi\n");
    let args = [
        "ct",
        "exec",
        "--run",
        ct.name.as_str(),
        "--",
        "sh",
        "-c",
        "exit 7",
    ];
    assert_eq!(state.ctl(&args).fails(7), FAILED);
}

#[test]
fn runscript_from_a_file_and_from_stdin() {
    let state = StateDir::new();
    let ct = Ct::running(&state, "script");
    let dir = tempfile::tempdir().unwrap();

    let ok = dir.path().join("ok.sh");
    std::fs::write(&ok, "echo hi\necho hi >&2\n").unwrap();
    let run = ct.ctl(&["runscript", ok.to_str().unwrap()]);
    assert_eq!(run.ok(), "hi\n");
    assert_eq!(run.stderr, "hi\n", "{run}");

    let fail = dir.path().join("fail.sh");
    let mut f = std::fs::File::create(&fail).unwrap();
    writeln!(f, "echo before\nexit 33\necho after").unwrap();
    let run = ct.ctl(&["runscript", fail.to_str().unwrap()]);
    assert_eq!(run.fails(33), FAILED);
    assert_eq!(run.stdout, "before\n");

    let args = ["ct", "runscript", ct.name.as_str(), "-"];
    let run = state.ctl_with_stdin(&args, Some(b"echo from-stdin\nexit 5\n"));
    assert_eq!(run.fails(5), FAILED);
    assert_eq!(run.stdout, "from-stdin\n");

    // A relative path is the caller's, not the container's.
    let run = state
        .command(&["ct", "runscript", ct.name.as_str(), "ok.sh"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&run.stdout), "hi\n");
}

#[test]
fn runscript_run_mode_on_a_stopped_container() {
    let state = StateDir::new();
    let ct = Ct::new(&state, "scriptr");
    let args = ["ct", "runscript", "-r", ct.name.as_str(), "-"];
    assert_eq!(state.ctl_with_stdin(&args, Some(b"echo hi\n")).ok(), "hi\n");
    let args = ["ct", "runscript", ct.name.as_str(), "-"];
    let run = state.ctl_with_stdin(&args, Some(b"echo hi\n"));
    run.fails(1);
    assert_eq!(run.stdout, "");
}

#[test]
fn deadline_kills_a_slow_call() {
    let state = StateDir::new();
    let ct = Ct::running(&state, "slow");
    let run = state.ctl(&[
        "--deadline",
        "1",
        "--json",
        "ct",
        "exec",
        &ct.name,
        "--",
        "sleep",
        "30",
    ]);
    assert_eq!(run.status, Some(1), "{run}");
    let doc = run.json();
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["error"]["kind"], "timeout", "{doc}");
}

#[test]
fn json_exit_status_of_exec() {
    let state = StateDir::new();
    let ct = Ct::running(&state, "jexec");
    let run = state.ctl(&[
        "--json",
        "ct",
        "exec",
        &ct.name,
        "--",
        "sh",
        "-c",
        "echo hi; exit 33",
    ]);
    assert_eq!(run.status, Some(33), "{run}");
    // The command's own output comes first, the document is the last line.
    assert!(run.stdout.starts_with("hi\n"), "{run}");
    let doc = run.json();
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["error"]["kind"], "exit_status");
    assert_eq!(doc["error"]["message"], FAILED);
    assert_eq!(doc["error"]["exit_status"], 33);

    let run = state.ctl(&["--json", "ct", "exec", &ct.name, "--", "true"]);
    assert_eq!(run.ok(), "{\"ok\":true,\"result\":{\"exit_status\":0}}\n");
}

/// Interactive use: stdin, stdout and stderr are a terminal (`script` gives ctl a pty).
#[test]
fn exec_with_a_terminal() {
    let state = StateDir::new();
    let ct = Ct::running(&state, "tty");
    let inner = format!(
        "{} --state-dir {} ct exec {} -- sh -c 'tty; read x; echo got $x; exit 4'",
        ctl_bin(),
        state.path().display(),
        ct.name
    );
    let mut child = std::process::Command::new("script")
        .args(["-qec", &inner, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Like a person, type once the program is there: lxc-attach flushes what was typed
    // before it set up the terminal (TCSAFLUSH), as a terminal program may.
    let mut stdin = child.stdin.take().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    stdin.write_all(b"hello\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    // Inside, stdin is a terminal (a pty of the container's).
    assert!(text.contains("/dev/pts/"), "{text}");
    assert!(text.contains("got hello"), "{text}");
    assert!(text.contains("error: executed command failed"), "{text}");
    assert_eq!(out.status.code(), Some(4), "{text}");
}

#[test]
fn exec_t_forces_a_terminal_and_capital_t_refuses_one() {
    let state = StateDir::new();
    let ct = Ct::running(&state, "exectty");
    // stdin a pipe, no terminal anywhere: -t still gives the program a pty of the
    // container's (relayed), plain exec does not.
    let forced = state.ctl_with_stdin(&["ct", "exec", "-t", &ct.name, "--", "tty"], Some(b""));
    assert_eq!(forced.status, Some(0), "{forced}");
    assert!(forced.stdout.contains("/dev/pts/"), "{forced}");
    let plain = state.ctl_with_stdin(&["ct", "exec", &ct.name, "--", "tty"], Some(b""));
    assert_eq!(plain.status, Some(1), "{plain}");
    assert!(plain.stdout.contains("not a tty"), "{plain}");

    // On a terminal, -T keeps the program off any terminal (the control: without -T it
    // gets one).
    let terminal = ctl_test_support::redteam::Terminal::new(false);
    let on_terminal = |args: &[&str]| -> (Option<i32>, String) {
        let mut child = terminal.spawn(&state, args, true);
        let start = std::time::Instant::now();
        let mut output = Vec::new();
        let status = loop {
            terminal.read_master(&mut output);
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(
                start.elapsed() < std::time::Duration::from_secs(60),
                "ctl {args:?} hung"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        terminal.read_master(&mut output);
        (status.code(), String::from_utf8_lossy(&output).into_owned())
    };
    let (code, shown) = on_terminal(&["ct", "exec", "-T", &ct.name, "--", "tty"]);
    assert_eq!(code, Some(1), "{shown}");
    assert!(shown.contains("not a tty"), "{shown}");
    let (code, shown) = on_terminal(&["ct", "exec", &ct.name, "--", "tty"]);
    assert_eq!(code, Some(0), "{shown}");
    assert!(shown.contains("/dev/pts/"), "{shown}");
}

/// `ctl ct ARGS` on an operator's terminal (stdin on it when `stdin_tty`): the output up
/// to `ready`, then `act`, then everything until ctl exits; ctl's exit code.
fn on_terminal_until(
    state: &StateDir,
    args: &[&str],
    stdin_tty: bool,
    ready: &str,
    act: impl FnOnce(&ctl_test_support::redteam::Terminal, i32),
) -> (Option<i32>, String) {
    use std::time::{Duration, Instant};
    let terminal = ctl_test_support::redteam::Terminal::new(false);
    let mut child = terminal.spawn(state, args, stdin_tty);
    let mut output = Vec::new();
    let start = Instant::now();
    while !String::from_utf8_lossy(&output).contains(ready) {
        terminal.read_master(&mut output);
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "ctl exited ({status}) before {ready:?}: {}",
                String::from_utf8_lossy(&output)
            );
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no {ready:?}: {}",
            String::from_utf8_lossy(&output)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    act(&terminal, child.id() as i32);
    let start = Instant::now();
    let status = loop {
        terminal.read_master(&mut output);
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("ctl hung: {}", String::from_utf8_lossy(&output));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    terminal.read_master(&mut output);
    (
        status.code(),
        String::from_utf8_lossy(&output).replace('\r', ""),
    )
}

/// A program that counts the `signal`s it gets for a second after the first and exits
/// with 10 + their number.
fn counting_program(signal: &str) -> String {
    format!(
        "n=0; trap 'n=$((n+1)); echo got-$n' {signal}; echo READY; \
         while [ $n = 0 ]; do sleep 0.1; done; sleep 1; sleep 0.1; exit $((10+n))"
    )
}

/// SIGINT, SIGTERM, SIGHUP and SIGQUIT sent to ctl reach the program once, in an
/// interactive session (whose program leads a session of its own on the container's pty)
/// and in a plain one; ctl goes on and ends with the program's exit status.
#[test]
fn signals_to_ctl_reach_the_program_once() {
    let state = StateDir::new();
    let ct = Ct::running(&state, "sigfwd");
    for (name, signal) in [
        ("INT", nix::sys::signal::Signal::SIGINT),
        ("TERM", nix::sys::signal::Signal::SIGTERM),
        ("HUP", nix::sys::signal::Signal::SIGHUP),
        ("QUIT", nix::sys::signal::Signal::SIGQUIT),
    ] {
        let program = counting_program(name);
        for interactive in [true, false] {
            let (code, shown) = on_terminal_until(
                &state,
                &["ct", "exec", &ct.name, "--", "sh", "-c", &program],
                interactive,
                "READY",
                |_, ctl| {
                    std::thread::sleep(std::time::Duration::from_millis(300));
                    nix::sys::signal::kill(nix::unistd::Pid::from_raw(ctl), signal).unwrap();
                },
            );
            let what = format!("SIG{name}, interactive: {interactive}");
            assert!(shown.contains("got-1"), "{what}: {shown}");
            assert!(!shown.contains("got-2"), "{what}: twice: {shown}");
            assert_eq!(code, Some(11), "{what}: {shown}");
        }
    }
}

/// A program ended by the forwarded signal: ctl reports 128 + its number, as a shell does.
#[test]
fn a_program_ended_by_a_forwarded_signal_is_reported_as_such() {
    let state = StateDir::new();
    let ct = Ct::running(&state, "sigend");
    for interactive in [true, false] {
        let (code, shown) = on_terminal_until(
            &state,
            &[
                "ct",
                "exec",
                &ct.name,
                "--",
                "sh",
                "-c",
                "echo READY; exec sleep 60",
            ],
            interactive,
            "READY",
            |_, ctl| {
                std::thread::sleep(std::time::Duration::from_millis(300));
                nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(ctl),
                    nix::sys::signal::Signal::SIGTERM,
                )
                .unwrap();
            },
        );
        assert_eq!(code, Some(128 + 15), "interactive: {interactive}: {shown}");
    }
}

/// The operator's window size reaches the program's pty: at the start, and on a resize
/// (the program gets SIGWINCH from its pty and sees the new size).
#[test]
fn an_interactive_session_follows_the_window_size() {
    let state = StateDir::new();
    let ct = Ct::running(&state, "winch");
    let set_size = |terminal: &ctl_test_support::redteam::Terminal, rows: u16, cols: u16| {
        let size = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ with a winsize on the test's own pty master.
        let rc = unsafe {
            libc::ioctl(
                std::os::fd::AsRawFd::as_raw_fd(&terminal.master),
                libc::TIOCSWINSZ,
                &size,
            )
        };
        assert_eq!(rc, 0, "TIOCSWINSZ");
    };
    let program = "trap 'echo size $(stty size); exit 9' WINCH; echo READY $(stty size); \
                   while :; do sleep 0.1; done";
    let (code, shown) = on_terminal_until(
        &state,
        &["ct", "exec", &ct.name, "--", "sh", "-c", program],
        true,
        "READY",
        |terminal, _| set_size(terminal, 33, 77),
    );
    assert!(shown.contains("size 33 77"), "{shown}");
    assert_eq!(code, Some(9), "{shown}");
}
