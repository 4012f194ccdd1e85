use ctl_core::{container_command, CommandError, RunnerContext};

#[container_command(placement = fork, setuid_helpers = yes, name = "get-state")]
pub fn state(
    _ctx: &mut RunnerContext,
    #[kwarg]
    #[kwarg]
    verbose: bool,
) -> Result<bool, CommandError> {
    Ok(verbose)
}

fn main() {}
