//! Wall.

use ctl_core::{bail, container_command, CommandError, RunnerContext};

/// Write a message to every user tty inside the container, with a banner naming the host
/// and the time.
#[container_command(placement = exec)]
pub fn wall(_ctx: &mut RunnerContext, _message: String, #[kwarg(default)] _banner: Option<String>) -> Result<bool, CommandError> {
    bail!("not implemented yet")
}
