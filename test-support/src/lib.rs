//! What the workspace's tests share, in one place: the `tests` crate's integration tests
//! (through `tests::fixtures`, which re-exports from here), `ctl`'s CLI tests and
//! `ctl-provision`'s tests.
//!
//! - [`names`]: unique container names.
//! - [`require`]: the checks that make a test *fail*, never skip, on a machine that cannot
//!   run it (not root, LXC missing).
//! - [`user`]: a throwaway system user with a container context ([`user::TestUser`]).
//! - [`container`]: real LXC containers made by the provisioner
//!   ([`container::TestContainer`], and the [`container::Env`]/[`container::Guard`] pair
//!   of `ctl-provision`'s own tests).
//! - [`runner`]: paths of the runner binaries, calls through them, fake runners.
//! - [`leaks`]: zombies, open fds, processes, mounts, and what a removed container must
//!   not leave behind.
//! - [`cli`]: the built `ctl` binary driven as a user would ([`cli::StateDir`],
//!   [`cli::Run`], [`cli::Ct`]).
//! - [`pty`]: a terminal inside a running container, and utmp records for it.
//! - [`redteam`]: static helper programs built from `redteam/*.c` of this crate, planted
//!   in containers, and an operator's terminal.
//!
//! Everything here panics on failure: these are test fixtures. Most of it needs root.

#![deny(clippy::undocumented_unsafe_blocks, unsafe_op_in_unsafe_fn)]

pub mod cli;
pub mod container;
pub mod leaks;
pub mod names;
pub mod pty;
pub mod redteam;
pub mod require;
pub mod runner;
pub mod user;
