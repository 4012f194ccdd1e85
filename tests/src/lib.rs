//! Support for the workspace's integration tests: commands that misbehave on purpose
//! (linked into the `ctl-test-runner` binary, a plugin runner as a plugin author would
//! write one) and, under `fixtures`, the fixtures of the integration tests (real system
//! users, cgroups and containers), re-exported from `ctl-test-support`.

pub mod attach_probe;
pub mod faults;
pub mod fixtures;
