//! SIGINT/SIGTERM/SIGHUP as a flag, for steps that must clean up before exiting.
//!
//! The handler only stores the signal number and writes one fixed line to stderr (both
//! async-signal-safe); the code polls [`received`] between steps. A runner without a
//! deadline stays in ctl's process group, so a Ctrl-C on the terminal ends it too (its call
//! fails with the signal); with `--deadline` it leads a group of its own and its call
//! finishes or times out. Either way the cleanup follows.

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
