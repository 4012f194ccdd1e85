use ctl_core::{container_command, CommandError, RunnerContext};

#[container_command(name = "Freeze")]
pub fn freeze(_ctx: &mut RunnerContext) -> Result<bool, CommandError> {
    Ok(true)
}

fn main() {}
