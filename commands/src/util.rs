//! Small helpers shared by the commands.

use ctl_core::{CommandError, RunnerContext};

/// Opens the command's container through liblxc.
pub(crate) fn open(ctx: &RunnerContext) -> Result<ctl_lxc::Container, CommandError> {
    Ok(ctl_lxc::Container::open(&ctx.id, &ctx.lxc_home)?)
}
