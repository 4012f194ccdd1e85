use ctl_core::{container_command, CommandError, RunnerContext};

#[container_command(placement = exec, lock = sometimes)]
pub fn freeze(_ctx: &mut RunnerContext) -> Result<bool, CommandError> {
    Ok(true)
}

fn main() {}
