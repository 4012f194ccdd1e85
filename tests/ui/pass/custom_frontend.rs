use ctl_core::{container_command, Call, CommandError, Error, RunnerContext};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
pub struct StateInfo {
    pub state: String,
    pub init_pid: Option<i32>,
}

/// The state of the container.
#[container_command(placement = fork, name = "State", frontend = state_frontend)]
pub fn state(
    _ctx: &RunnerContext,
    #[kwarg(default)] verbose: bool,
) -> Result<StateInfo, CommandError> {
    Ok(StateInfo {
        state: if verbose {
            "RUNNING".into()
        } else {
            "running".into()
        },
        init_pid: None,
    })
}

fn state_frontend(call: &Call<'_>, verbose: bool) -> Result<StateInfo, Error> {
    if call.container().id.is_empty() {
        return Err(Error::command("State", "no container"));
    }
    State::runner(call, verbose)
}

fn main() {
    let _: fn(&Call<'_>, bool) -> Result<StateInfo, Error> = State::run_with;
}
