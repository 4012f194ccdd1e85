use ctl_core::{container_command, CommandError, RunnerContext};

#[container_command(placement = exec, timeout = 5)]
pub fn freeze(_ctx: &mut RunnerContext) -> Result<bool, CommandError> {
    Ok(true)
}

fn main() {}
