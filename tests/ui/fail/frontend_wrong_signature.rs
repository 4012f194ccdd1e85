use ctl_core::{container_command, Call, CommandError, Error, RunnerContext};

#[container_command(placement = fork, frontend = state_frontend)]
pub fn state(_ctx: &RunnerContext, verbose: bool) -> Result<String, CommandError> {
    Ok(verbose.to_string())
}

fn state_frontend(call: &Call<'_>) -> Result<String, Error> {
    State::runner(call, false)
}

fn main() {}
