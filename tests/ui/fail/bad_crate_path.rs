use ctl_core::{container_command, CommandError, RunnerContext};

#[container_command(placement = exec, crate = "ctl core")]
pub fn freeze(_ctx: &mut RunnerContext) -> Result<bool, CommandError> {
    Ok(true)
}

#[container_command(placement = exec, crate = 1)]
pub fn thaw(_ctx: &mut RunnerContext) -> Result<bool, CommandError> {
    Ok(true)
}

#[container_command(placement = exec, crate = ctl_core::<u8>)]
pub fn state(_ctx: &mut RunnerContext) -> Result<bool, CommandError> {
    Ok(true)
}

fn main() {}
