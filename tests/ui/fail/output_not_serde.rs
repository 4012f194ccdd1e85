use ctl_core::{container_command, CommandError, RunnerContext};

pub struct StateInfo {
    pub running: bool,
}

#[container_command(placement = fork)]
pub fn state(_ctx: &mut RunnerContext) -> Result<Option<StateInfo>, CommandError> {
    Ok(Some(StateInfo { running: true }))
}

fn main() {}
