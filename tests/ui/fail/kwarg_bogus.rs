use ctl_core::{container_command, CommandError, RunnerContext};

#[container_command(placement = exec)]
pub fn stop(_ctx: &mut RunnerContext, #[kwarg(bogus)] timeout: u64) -> Result<bool, CommandError> {
    Ok(timeout > 0)
}

fn main() {}
