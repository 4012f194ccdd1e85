use ctl_core::{container_command, RunnerContext};

mod errors {
    pub struct NotAnError;
}

#[container_command(placement = exec)]
pub fn freeze(_ctx: &mut RunnerContext) -> Result<bool, errors::NotAnError> {
    Ok(true)
}

fn main() {}
