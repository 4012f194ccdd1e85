//! SIGINT/SIGTERM/SIGHUP as a flag, for steps that must clean up before exiting
//! ([`install`]: `ctl demo`, `ctl bench`), or SIGINT/SIGTERM/SIGHUP/SIGQUIT passed on to
//! the runners (`ctl ct`, [`forward_to_runners`]).
//!
//! The handler only stores the signal number and writes one fixed line to stderr (both
//! async-signal-safe); the code polls [`received`] between steps. Every runner leads a
//! session and process group of its own, so a Ctrl-C on the terminal reaches ctl only:
//! the call in progress finishes (or times out with `--deadline`), then the cleanup
//! follows.

use std::sync::atomic::{AtomicI32, Ordering};

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

static RECEIVED: AtomicI32 = AtomicI32::new(0);

const NOTICE: &[u8] = b"\nctl: interrupted, cleaning up (this can take a few seconds)\n";

extern "C" fn on_signal(signal: libc::c_int) {
    if RECEIVED
        .compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst)
        .is_ok()
    {
        // SAFETY: write(2) is async-signal-safe; the buffer is a static.
        unsafe {
            libc::write(libc::STDERR_FILENO, NOTICE.as_ptr().cast(), NOTICE.len());
        }
    }
}

/// Installs the handler for SIGINT, SIGTERM and SIGHUP. Handlers (unlike ignored signals)
/// do not survive an exec, and the frontend resets these signals in its runners anyway.
pub fn install() -> nix::Result<()> {
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only touches an atomic and calls write(2).
        unsafe { sigaction(signal, &action) }?;
    }
    Ok(())
}

/// The first signal received since [`install`], if any.
pub fn received() -> Option<Signal> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        n => Signal::try_from(n).ok(),
    }
}

/// The write end of the pipe through which [`forward_to_runners`]'s handler wakes its
/// thread (-1: not installed).
static FORWARD_PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_forwarded_signal(signal: libc::c_int) {
    let fd = FORWARD_PIPE.load(Ordering::SeqCst);
    if fd >= 0 {
        let byte = signal as u8;
        // SAFETY: write(2) is async-signal-safe; one byte from the stack.
        unsafe {
            libc::write(fd, (&byte as *const u8).cast(), 1);
        }
    }
}

/// For `ctl ct …`: SIGINT, SIGTERM, SIGHUP and SIGQUIT are passed on to the runners, and
/// ctl goes on until they answer.
///
/// Runners lead sessions and process groups of their own (they must not share ctl's
/// controlling terminal, see `docs/security.md`), so a Ctrl-C on the terminal reaches ctl
/// only. A thread woken by the handler sends the signal to the process group of every
/// runner ctl started. A runner attached to a container passes it on to the program there
/// (`ctl_lxc::signals`: once, also to an interactive session's program, which leads a
/// session of its own on the container's pty) and answers with the program's exit status,
/// which ends ctl as usual; another runner ends by it, which ctl reports. A second signal
/// (or one while no runner runs) is passed on too and then ends ctl as it would have
/// without a handler. An interactive `ctl ct exec` puts the terminal in raw mode, so there
/// a Ctrl-C is a byte for the container's own terminal instead; a signal ending ctl in the
/// middle of it must not leave the operator's terminal raw: the mode stdin's terminal had
/// here is put back before the signal ends ctl.
pub fn forward_to_runners() -> std::io::Result<()> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let thread_read = read;
    let terminal = saved_terminal();
    std::thread::Builder::new()
        .name("ctl-signals".to_owned())
        .spawn(move || {
            let mut forwarded = 0;
            loop {
                let mut byte = [0u8; 1];
                match nix::unistd::read(&thread_read, &mut byte) {
                    Ok(1) => {}
                    Err(nix::errno::Errno::EINTR) => continue,
                    _ => return,
                }
                let Ok(signal) = Signal::try_from(byte[0] as libc::c_int) else {
                    continue;
                };
                let groups = runner_groups();
                for group in &groups {
                    let _ = nix::sys::signal::killpg(*group, signal);
                }
                forwarded += 1;
                if !groups.is_empty() && forwarded == 1 {
                    // The runners answer (or end); ctl goes on with them.
                    continue;
                }
                if let Some((fd, mode)) = &terminal {
                    restore_terminal(fd, mode);
                }
                // Then as if ctl had not caught it.
                // SAFETY: restores the default action; raise ends the process (these
                // signals' default action is to terminate).
                unsafe {
                    let _ = sigaction(
                        signal,
                        &SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty()),
                    );
                }
                let _ = nix::sys::signal::raise(signal);
                return;
            }
        })?;
    use std::os::fd::IntoRawFd;
    FORWARD_PIPE.store(write.into_raw_fd(), Ordering::SeqCst);
    let action = SigAction::new(
        SigHandler::Handler(on_forwarded_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in FORWARDED {
        // SAFETY: the handler only writes one byte to a pipe.
        unsafe { sigaction(signal, &action) }?;
    }
    Ok(())
}

/// What `ctl ct …` passes on to its runners.
const FORWARDED: [Signal; 4] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

/// The process groups led by children of this process: its runners (every runner leads
/// its own; other children, such as `useradd`, stay in ctl's group and are left alone).
fn runner_groups() -> Vec<nix::unistd::Pid> {
    let me = std::process::id() as i32;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // After the command name in parentheses: state ppid pgrp …
            let Some((_, rest)) = stat.rsplit_once(')') else {
                return false;
            };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            fields.get(1).and_then(|f| f.parse::<i32>().ok()) == Some(me)
                && fields.get(2).and_then(|f| f.parse::<i32>().ok()) == Some(pid)
        })
        .map(nix::unistd::Pid::from_raw)
        .collect()
}

/// Stdin's terminal (an fd of its own) and its mode now, if stdin is a terminal.
fn saved_terminal() -> Option<(std::os::fd::OwnedFd, nix::sys::termios::Termios)> {
    let stdin = std::io::stdin();
    let fd = std::os::fd::AsFd::as_fd(&stdin);
    let mode = nix::sys::termios::tcgetattr(fd).ok()?;
    Some((fd.try_clone_to_owned().ok()?, mode))
}

/// Puts `mode` back on the terminal `fd` if it was changed (by an interactive session's
/// raw mode). SIGTTOU is blocked in this thread: a ctl moved to the background meanwhile
/// must not be stopped by it on its way out.
fn restore_terminal(fd: &std::os::fd::OwnedFd, mode: &nix::sys::termios::Termios) {
    use nix::sys::termios::{tcgetattr, tcsetattr, SetArg};
    let Ok(now) = tcgetattr(fd) else {
        return;
    };
    let same = now.input_flags == mode.input_flags
        && now.output_flags == mode.output_flags
        && now.control_flags == mode.control_flags
        && now.local_flags == mode.local_flags
        && now.control_chars == mode.control_chars;
    if same {
        return;
    }
    let mut ttou = SigSet::empty();
    ttou.add(Signal::SIGTTOU);
    let _ = ttou.thread_block();
    let _ = tcsetattr(fd, SetArg::TCSANOW, mode);
}
