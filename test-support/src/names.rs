//! Unique names for containers and other objects of one test run.

use std::sync::atomic::{AtomicU32, Ordering};

/// A container name unique across parallel test binaries (pid) and the tests of one
/// binary (a counter): `<tag>-<pid % 100000>-<n>`.
///
/// One behaviour for every caller: the pid is cut to five digits (as `ctl`'s tests and
/// `TestContainer` always did; `ctl-provision`'s tests used the whole pid), so that names
/// stay short: a container's user is `ctl-<name>` and stays readable up to 32 characters,
/// and LXC's paths and sockets grow with the name. Tags must therefore be short (a few
/// letters). Only two live test processes whose pids differ by a multiple of 100000 could
/// collide.
pub fn unique_name(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{tag}-{}-{n}", std::process::id() % 100_000)
}
