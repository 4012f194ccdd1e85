//! GetHostname, VethName.

use ctl_core::{bail, container_command, CommandError, RunnerContext};

/// The container's hostname, read in its UTS namespace.
#[container_command(placement = fork_as_root)]
pub fn get_hostname(_ctx: &mut RunnerContext) -> Result<String, CommandError> {
    bail!("not implemented yet")
}

/// The host-side name of the container's veth interface number `index`.
#[container_command(placement = fork)]
pub fn veth_name(_ctx: &mut RunnerContext, _index: u32) -> Result<String, CommandError> {
    bail!("not implemented yet")
}
