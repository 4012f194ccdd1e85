//! Mount, Unmount.

use ctl_core::{bail, container_command, CommandError, RunnerContext};

/// Move the mount `shared_dir/src` (propagated into the container) onto `dst` inside.
#[container_command(placement = exec)]
pub fn mount(
    _ctx: &mut RunnerContext,
    #[kwarg] _shared_dir: String,
    #[kwarg] _src: String,
    #[kwarg] _dst: String,
) -> Result<bool, CommandError> {
    bail!("not implemented yet")
}

/// Unmount `mountpoint` inside the container (not mounted is fine).
#[container_command(placement = exec)]
pub fn unmount(_ctx: &mut RunnerContext, _mountpoint: String) -> Result<bool, CommandError> {
    bail!("not implemented yet")
}
