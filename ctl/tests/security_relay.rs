//! The standing red team, part three: the container's root against the frontend's
//! terminal relays (`ctl_core::terminal`: `StdioRelay`, `PtyRelay`) and the operator's
//! terminal they write to.
//!
//! Each test replays an attack that worked before the fix (docs/security.md): `ctl` runs
//! on an operator's terminal (a pty whose slave is `ctl`'s controlling terminal) that is
//! read slowly or not at all — a terminal whose buffer fills up is the point — while a
//! program in the container floods its output, or holds its input open without reading
//! it. `ctl` must return within a few seconds of the program's exit, and stop writing to
//! the terminal when it does.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use ctl_test_support::cli::{Ct, StateDir};
use ctl_test_support::redteam::{rootfs, Terminal};
use nix::sys::termios::{self, LocalFlags};

/// Kills `ctl` if it is still there (a failed test must not leave it running).
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// What the terminal saw of one session.
struct Session {
    /// How long `ctl` took to exit after the program's marker appeared (`None`: it had
    /// not exited `GIVE_UP` after it).
    exit_after_marker: Option<Duration>,
    /// Bytes that reached the terminal after the marker appeared, until the end.
    bytes_after_marker: usize,
    /// Bytes typed into the terminal.
    typed: usize,
}

/// How long a test waits for `ctl` after the program's exit before calling it hung.
const GIVE_UP: Duration = Duration::from_secs(15);
/// The longest `ctl` may take to return after the program exited.
const PROMPT: Duration = Duration::from_secs(5);

/// Runs `ctl ARGS` on `terminal`, reading 4 KiB of its output every 20 ms (and, with
/// `typing`, typing as much as the terminal takes), until `ctl` exits or `GIVE_UP` after
/// `marker` appeared on the host.
fn session(
    terminal: &Terminal,
    state: &StateDir,
    args: &[&str],
    stdin_tty: bool,
    marker: &Path,
    typing: bool,
) -> Session {
    let mut ctl = Reaper(terminal.spawn(state, args, stdin_tty));
    let start = Instant::now();
    let keys = vec![b'a'; 4096];
    let mut total = 0usize;
    let mut typed = 0usize;
    let mut marked: Option<(Instant, usize)> = None;
    let exit_after_marker = loop {
        total += terminal.read_up_to(4096);
        if typing {
            typed += terminal.type_some(&keys);
        }
        if marked.is_none() && marker.exists() {
            marked = Some((Instant::now(), total));
        }
        if ctl.0.try_wait().unwrap().is_some() {
            let (at, _) = marked.expect("ctl exited before the program's marker appeared");
            break Some(at.elapsed());
        }
        if let Some((at, _)) = marked {
            if at.elapsed() > GIVE_UP {
                break None;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the program's marker {} never appeared",
            marker.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    // What is left on the terminal reached it too.
    std::thread::sleep(Duration::from_millis(200));
    total += terminal.read_up_to(usize::MAX);
    let (_, before) = marked.unwrap();
    drop(ctl);
    Session {
        exit_after_marker,
        bytes_after_marker: total - before,
        typed,
    }
}

/// What may reach the terminal after the program's exit: what the terminal itself held
/// (a pty buffers up to about 68 KiB; the test reads it after the marker) and the bounded
/// final copy of the relay (at most 64 KiB), with slack for what was on its way.
const AFTER_EXIT: usize = 200 * 1024;

fn assert_prompt(what: &str, s: &Session) {
    eprintln!(
        "{what}: exit after {:?}, {} bytes after, {} typed",
        s.exit_after_marker, s.bytes_after_marker, s.typed
    );
    match s.exit_after_marker {
        Some(t) => assert!(
            t < PROMPT,
            "{what}: ctl took {t:?} to return after the program exited"
        ),
        None => panic!(
            "{what}: ctl was still running {GIVE_UP:?} after the program exited; {} bytes \
             reached the terminal meanwhile",
            s.bytes_after_marker
        ),
    }
    assert!(
        s.bytes_after_marker <= AFTER_EXIT,
        "{what}: {} bytes reached the terminal after the program exited",
        s.bytes_after_marker
    );
}

/// A process left behind floods the output; the program itself exits after a second.
fn flood_script(marker: &str) -> String {
    format!("trap '' HUP; yes flood & sleep 1; touch {marker}; exit 0")
}

#[test]
fn a_flood_left_behind_on_a_relayed_stdout_does_not_keep_ctl() {
    let state = StateDir::new();
    let ct = Ct::running(&state, "flood-out");
    let marker = rootfs(&ct).join("tmp/flood-out.done");
    let terminal = Terminal::new(true);
    let script = flood_script("/tmp/flood-out.done");
    let s = session(
        &terminal,
        &state,
        &["ct", "exec", &ct.name, "--", "sh", "-c", &script],
        false,
        &marker,
        false,
    );
    assert_prompt("StdioRelay", &s);
}

#[test]
fn a_flood_left_behind_on_an_interactive_exec_does_not_keep_ctl() {
    let state = StateDir::new();
    let ct = Ct::running(&state, "flood-pty");
    let marker = rootfs(&ct).join("tmp/flood-pty.done");
    let terminal = Terminal::new(true);
    let script = flood_script("/tmp/flood-pty.done");
    let s = session(
        &terminal,
        &state,
        &["ct", "exec", &ct.name, "--", "sh", "-c", &script],
        true,
        &marker,
        false,
    );
    assert_prompt("PtyRelay", &s);
}

/// A process left behind holds the program's stdin open (fd 3: a background job's fd 0
/// is `/dev/null`) and never reads it; the operator types more than a pipe or a pty holds.
fn hold_stdin_script(marker: &str, raw: bool) -> String {
    let stty = if raw { "stty raw -echo; " } else { "" };
    format!("{stty}trap '' HUP; exec 3<&0; sleep 60 0<&3 & sleep 3; touch {marker}; exit 0")
}

#[test]
fn input_nobody_reads_does_not_keep_a_relayed_stdin() {
    let state = StateDir::new();
    let ct = Ct::running(&state, "hold-in");
    let marker = rootfs(&ct).join("tmp/hold-in.done");
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("hold.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n{}\n",
            hold_stdin_script("/tmp/hold-in.done", false)
        ),
    )
    .unwrap();
    let terminal = Terminal::new(true);
    // Runscript with a script file: the terminal on stdin is relayed through a pipe.
    let s = session(
        &terminal,
        &state,
        &["ct", "runscript", &ct.name, script.to_str().unwrap()],
        true,
        &marker,
        true,
    );
    assert_prompt("StdioRelay input", &s);
    // More than the container takes: a pipe holds 64 KiB, a pty much less.
    assert!(s.typed > 24 * 1024, "only {} bytes typed", s.typed);
}

#[test]
fn input_nobody_reads_does_not_keep_an_interactive_exec() {
    let state = StateDir::new();
    let ct = Ct::running(&state, "hold-pty");
    let marker = rootfs(&ct).join("tmp/hold-pty.done");
    let terminal = Terminal::new(true);
    // Non-canonical: the container's pty takes no more once its buffers are full.
    let script = hold_stdin_script("/tmp/hold-pty.done", true);
    let s = session(
        &terminal,
        &state,
        &["ct", "exec", &ct.name, "--", "sh", "-c", &script],
        true,
        &marker,
        true,
    );
    assert_prompt("PtyRelay input", &s);
    // More than the container takes: a pipe holds 64 KiB, a pty much less.
    assert!(s.typed > 24 * 1024, "only {} bytes typed", s.typed);
}

#[test]
fn an_interrupted_interactive_exec_restores_the_operators_terminal() {
    let state = StateDir::new();
    let ct = Ct::running(&state, "sigterm");
    // A cooked terminal, as an operator's shell leaves it.
    let terminal = Terminal::new(false);
    let cooked = termios::tcgetattr(&terminal.slave).unwrap();
    assert!(cooked
        .local_flags
        .contains(LocalFlags::ICANON | LocalFlags::ECHO));
    for signal in [
        nix::sys::signal::Signal::SIGTERM,
        nix::sys::signal::Signal::SIGHUP,
    ] {
        let mut ctl =
            Reaper(terminal.spawn(&state, &["ct", "exec", &ct.name, "--", "sleep", "60"], true));
        // Wait for the relay's raw mode.
        let start = Instant::now();
        while termios::tcgetattr(&terminal.slave)
            .unwrap()
            .local_flags
            .contains(LocalFlags::ICANON)
        {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the terminal never went raw"
            );
            assert!(ctl.0.try_wait().unwrap().is_none(), "ctl exited early");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(300));
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(ctl.0.id() as i32), signal).unwrap();
        let start = Instant::now();
        while ctl.0.try_wait().unwrap().is_none() {
            terminal.read_up_to(usize::MAX);
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "ctl ignored {signal}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let after = termios::tcgetattr(&terminal.slave).unwrap();
        assert!(
            after
                .local_flags
                .contains(LocalFlags::ICANON | LocalFlags::ECHO | LocalFlags::ISIG),
            "{signal}: the terminal was left raw: {:?}",
            after.local_flags
        );
        assert_eq!(after.input_flags, cooked.input_flags, "{signal}");
        assert_eq!(after.output_flags, cooked.output_flags, "{signal}");
    }
}
