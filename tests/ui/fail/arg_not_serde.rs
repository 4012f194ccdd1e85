use ctl_core::{container_command, CommandError, RunnerContext};

pub struct Mode {
    pub force: bool,
}

#[container_command(placement = exec)]
pub fn stop(_ctx: &mut RunnerContext, #[kwarg] modes: Vec<Mode>) -> Result<bool, CommandError> {
    Ok(modes.iter().any(|m| m.force))
}

fn main() {}
