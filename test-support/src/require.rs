//! Checks that make a test fail, never skip, where the machine cannot run it.

use std::path::Path;

/// Asserts that the test runs as root; `why` completes "these tests need root (...)".
#[track_caller]
pub fn require_root(why: &str) {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these tests need root ({why})"
    );
}

/// The tools the provisioner and LXC's own tools (the oracle) need.
pub const LXC_TOOLS: &[&str] = &[
    "/usr/bin/lxc-start",
    "/usr/bin/lxc-info",
    "/usr/bin/newuidmap",
    "/bin/busybox",
    "/usr/bin/setpriv",
];

/// Fails (not skips) when the machine cannot run LXC tests: not root, or one of
/// [`LXC_TOOLS`] missing.
#[track_caller]
pub fn require_lxc() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these tests create users and containers and must run as root"
    );
    for tool in LXC_TOOLS {
        assert!(
            Path::new(tool).exists(),
            "{tool} is missing: install lxc, uidmap, busybox-static"
        );
    }
}
