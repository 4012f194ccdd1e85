use ctl_core::{container_command, CommandError, RunnerContext};

#[container_command(placement = attach)]
pub fn freeze(_ctx: &mut RunnerContext) -> Result<bool, CommandError> {
    Ok(true)
}

fn main() {}
