use ctl_core::{container_command, Args, CommandError, RunnerContext};

#[container_command(placement = exec, osctld = freeze_osctld)]
pub fn freeze(_ctx: &mut RunnerContext) -> Result<bool, CommandError> {
    Ok(true)
}

// Missing the native runner function, and answering a bool instead of a JSON value.
fn freeze_osctld(_ctx: &mut RunnerContext, _args: Args) -> Result<bool, CommandError> {
    Ok(true)
}

fn main() {}
