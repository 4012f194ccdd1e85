//! Signals for the attached program: what reaches the caller of
//! [`Container::attach_isolated`](crate::Container::attach_isolated) while it waits is passed
//! on to the program, once, and neither the caller nor its attaching worker die of it (so
//! the program's exit status still comes back).
//!
//! # Who gets what
//!
//! A runner leads a process group of its own, and senders signal that group (`ctl` passes
//! SIGINT, SIGTERM, SIGHUP and SIGQUIT on to its runners' groups; a frontend's deadline
//! sends SIGKILL to it). The runner and its forked attaching worker are in that group, and
//! so is an attached program that stays in the worker's group (a plain exec): the group
//! signal reaches it directly. A program that made a process group of its own (an
//! interactive session's program leads a session on its pty) does not get it; the worker
//! sends it on. So while an attach runs:
//!
//! - the caller (the runner) catches the four signals and does nothing with them: its
//!   worker got the same group signal;
//! - the worker sends each to the program when the program is in another process group,
//!   through a pidfd (never a recycled pid); one that came before the program existed is
//!   sent to it as soon as it does;
//! - the program starts with the default dispositions (the attached process resets them
//!   before anything else; `exec` would anyway).
//!
//! A signal sent to the runner's pid alone (not its group) is absorbed while the attach
//! runs. SIGWINCH needs none of this: the kernel sends it to the program when the session's
//! window size changes on its pty.
//!
//! The handler only reads atomics and makes async-signal-safe system calls (`getpgid`,
//! `getpgrp`, `pidfd_send_signal`).

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

/// The signals passed on to the attached program.
pub const FORWARDED: [Signal; 4] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

/// The attached program's pidfd in the worker (-1: no program yet, or in the caller).
static PROGRAM_PIDFD: AtomicI32 = AtomicI32::new(-1);
/// The attached program's pid (for its process group; signals go through the pidfd).
static PROGRAM_PID: AtomicI32 = AtomicI32::new(0);
/// The last signal caught while there was no program to send it to (0: none).
static PENDING: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(signal: libc::c_int) {
    let pidfd = PROGRAM_PIDFD.load(Ordering::SeqCst);
    if pidfd < 0 {
        PENDING.store(signal, Ordering::SeqCst);
        return;
    }
    let pid = PROGRAM_PID.load(Ordering::SeqCst);
    // SAFETY: getpgid/getpgrp take and return integers only.
    let (theirs, ours) = unsafe { (libc::getpgid(pid), libc::getpgrp()) };
    if theirs == ours {
        // In our process group: the group signal reached it already.
        return;
    }
    send(pidfd, signal);
}

fn send(pidfd: libc::c_int, signal: libc::c_int) {
    // SAFETY: pidfd_send_signal with an fd (a closed or recycled number fails with EBADF
    // or names no process of ours), no siginfo and no flags.
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd,
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        );
    }
}

/// The caller's dispositions of [`FORWARDED`] while an attach runs; put back on drop.
pub(crate) struct Forwarding {
    saved: Vec<(Signal, SigAction)>,
}

impl Forwarding {
    /// Catches [`FORWARDED`] in this process (and in the worker it forks next, which
    /// inherits the handler; see [`Forwarding::program_started`]).
    pub(crate) fn install() -> nix::Result<Forwarding> {
        PROGRAM_PIDFD.store(-1, Ordering::SeqCst);
        PENDING.store(0, Ordering::SeqCst);
        let action = SigAction::new(
            SigHandler::Handler(on_signal),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        let mut forwarding = Forwarding { saved: Vec::new() };
        for signal in FORWARDED {
            // SAFETY: the handler only touches atomics and makes async-signal-safe calls.
            let old = unsafe { sigaction(signal, &action) }?;
            forwarding.saved.push((signal, old));
        }
        Ok(forwarding)
    }

    /// In the worker, once the program exists: from now on signals go to it (`pidfd` must
    /// stay open until the worker ends); one caught before is sent now.
    pub(crate) fn program_started(pid: libc::pid_t, pidfd: &OwnedFd) {
        PROGRAM_PID.store(pid, Ordering::SeqCst);
        PROGRAM_PIDFD.store(pidfd.as_raw_fd(), Ordering::SeqCst);
        // It did not exist when that signal was sent: it gets it whatever its group.
        let pending = PENDING.swap(0, Ordering::SeqCst);
        if pending != 0 {
            send(pidfd.as_raw_fd(), pending);
        }
    }
}

impl Drop for Forwarding {
    fn drop(&mut self) {
        for (signal, old) in &self.saved {
            // SAFETY: puts back the disposition this process had before `install`.
            let _ = unsafe { sigaction(*signal, old) };
        }
    }
}

/// In the attached process, before anything else: the default dispositions of
/// [`FORWARDED`] (it inherited the worker's handler, which would swallow them until its
/// `exec`). Async-signal-safe.
pub(crate) fn reset_in_program() {
    for signal in FORWARDED {
        // SAFETY: signal(2) with SIG_DFL is async-signal-safe.
        unsafe { libc::signal(signal as libc::c_int, libc::SIG_DFL) };
    }
}
