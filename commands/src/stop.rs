//! Stop (modes stop / shutdown / kill), StopByHalt, StopRunit.

use ctl_core::{bail, container_command, CommandError, RunnerContext};
use serde::{Deserialize, Serialize};

/// How `Stop` stops a container (osctld's modes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopMode {
    /// Clean shutdown, else kill when the timeout passes.
    Stop,
    /// Clean shutdown or fail.
    Shutdown,
    /// Kill at once.
    Kill,
}

/// Stop the container: clean shutdown (halt from inside, bounded by the timeout), falling
/// back to kill in `stop` mode; optional wall message first.
#[container_command(placement = exec)]
pub fn stop(
    _ctx: &mut RunnerContext,
    _mode: StopMode,
    #[kwarg] _timeout: u64,
    #[kwarg(default)] _message: Option<String>,
) -> Result<bool, CommandError> {
    bail!("not implemented yet")
}

/// Stop the container by running `halt` inside it.
#[container_command(placement = exec)]
pub fn stop_by_halt(_ctx: &mut RunnerContext, #[kwarg(default)] _message: Option<String>) -> Result<bool, CommandError> {
    bail!("not implemented yet")
}

/// Prepare runit inside the container for a stop (`/etc/runit/stopit` executable,
/// `/etc/runit/reboot` mode 0).
#[container_command(placement = exec)]
pub fn stop_runit(_ctx: &mut RunnerContext) -> Result<bool, CommandError> {
    bail!("not implemented yet")
}
