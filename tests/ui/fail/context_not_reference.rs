use ctl_core::{container_command, CommandError, RunnerContext};

#[container_command(placement = exec)]
pub fn freeze(_ctx: RunnerContext) -> Result<bool, CommandError> {
    Ok(true)
}

fn main() {}
