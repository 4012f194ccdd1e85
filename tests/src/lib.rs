//! Support for the workspace's integration tests: commands that misbehave on purpose
//! (linked into the `ctl-test-runner` binary, a plugin runner as a plugin author would
//! write one) and fixtures for real system users and cgroups.

pub mod faults;
pub mod fixtures;
