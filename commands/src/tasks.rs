//! WithRootfs and WithMountns: osctld passes a Ruby block to run inside the container's
//! rootfs or mount namespace. A closure cannot cross an exec, so here the block is a
//! *named task* registered with `inventory`, called with JSON arguments.

use ctl_core::{bail, container_command, CommandError, RunnerContext};
use serde_json::Value;

/// A task runnable by `WithRootfs` / `WithMountns`.
pub struct RootfsTask {
    pub name: &'static str,
    pub run: fn(Value) -> Result<Value, CommandError>,
}

inventory::collect!(RootfsTask);

/// Run the registered task `task` chrooted into the container's rootfs, as the
/// container's root host uid/gid.
#[container_command(placement = fork_as_root)]
pub fn with_rootfs(_ctx: &mut RunnerContext, _task: String, _args: Value) -> Result<Value, CommandError> {
    bail!("not implemented yet")
}

/// Run the registered task `task` in the mount namespace of `pid` (default: the init
/// pid), optionally chrooted.
#[container_command(placement = fork_as_root)]
pub fn with_mountns(
    _ctx: &mut RunnerContext,
    _task: String,
    _args: Value,
    #[kwarg(default)] _pid: Option<i32>,
    #[kwarg(default)] _chroot: Option<String>,
) -> Result<Value, CommandError> {
    bail!("not implemented yet")
}
