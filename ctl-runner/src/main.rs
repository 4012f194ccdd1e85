//! `ctl-runner`: the standalone runner with every built-in command.
//!
//! The frontend starts it with the envelope on stdin; operators can start it by hand with
//! an osctld-style envelope, or list what it knows with `ctl-runner --list [--json]`.
//! A plugin author's runner is this same file with their crate linked in as well, and
//! `ctl-core`'s `runner-binary` feature (see `ctl_core::runner_main!`).
#![no_main]

// Linking a crate is what registers its commands (through `inventory`).
use commands as _;

ctl_core::runner_main!();
