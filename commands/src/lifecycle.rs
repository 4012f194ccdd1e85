//! Start, Freeze, Unfreeze, State, Reboot.

use ctl_core::{bail, container_command, CommandError, RunnerContext};
use serde::{Deserialize, Serialize};

/// What `State` returns (osctld's `{id, state, init_pid}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateInfo {
    pub id: String,
    /// Lower-case LXC state word: `running`, `frozen`, `stopped`, ...
    pub state: String,
    pub init_pid: Option<i32>,
}

/// Start a stopped container as its user, inside its cgroups.
#[container_command(placement = exec, setuid_helpers)]
pub fn start(_ctx: &mut RunnerContext) -> Result<bool, CommandError> {
    bail!("not implemented yet")
}

/// Freeze the container.
#[container_command(placement = exec)]
pub fn freeze(_ctx: &mut RunnerContext) -> Result<bool, CommandError> {
    bail!("not implemented yet")
}

/// Unfreeze (thaw) the container.
#[container_command(placement = exec)]
pub fn unfreeze(_ctx: &mut RunnerContext) -> Result<bool, CommandError> {
    bail!("not implemented yet")
}

/// The container's state and init pid.
#[container_command(placement = fork)]
pub fn state(_ctx: &mut RunnerContext) -> Result<StateInfo, CommandError> {
    bail!("not implemented yet")
}

/// Reboot the container.
#[container_command(placement = fork)]
pub fn reboot(_ctx: &mut RunnerContext) -> Result<bool, CommandError> {
    bail!("not implemented yet")
}
