use ctl_core::{container_command, CommandError, RunnerContext};

pub struct Mode {
    pub force: bool,
}

#[container_command(placement = exec)]
pub fn stop(_ctx: &mut RunnerContext, mode: Mode) -> Result<bool, CommandError> {
    Ok(mode.force)
}

fn main() {}
