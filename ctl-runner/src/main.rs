//! `ctl-runner`: the standalone runner with every built-in command.
//!
//! The frontend starts it with the envelope on stdin; operators can start it by hand with
//! an osctld-style envelope, or list what it knows with `ctl-runner --list [--json]`.
//! A plugin author's runner is this same file with their crate linked in as well.
//!
//! `#![no_main]`: a runner is started for every command, and std's runtime setup costs
//! about 50 µs of each start here (it reads `/proc/self/maps` to find the main thread's
//! stack for its overflow guard). The runner needs none of it; the one thing it keeps is
//! ignoring SIGPIPE, so that a reply to a vanished frontend fails with EPIPE instead of
//! killing the runner silently.
#![no_main]

// Linking a crate is what registers its commands (through `inventory`).
use commands as _;

#[no_mangle]
pub extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    // SAFETY: sets a disposition before any other thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    ctl_core::runner::main()
}
