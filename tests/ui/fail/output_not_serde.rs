use ctl_core::{container_command, CommandError, RunnerContext};

pub struct State {
    pub running: bool,
}

#[container_command(placement = fork)]
pub fn state(_ctx: &mut RunnerContext) -> Result<State, CommandError> {
    Ok(State { running: true })
}

fn main() {}
