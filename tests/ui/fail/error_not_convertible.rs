use ctl_core::{container_command, RunnerContext};

pub struct NotAnError;

#[container_command(placement = exec)]
pub fn freeze(_ctx: &mut RunnerContext) -> Result<bool, NotAnError> {
    Ok(true)
}

fn main() {}
