use ctl_core::{container_command, CommandError, RunnerContext};

#[container_command(placement = exec)]
pub fn resize(_ctx: &mut RunnerContext, (rows, cols): (u16, u16)) -> Result<bool, CommandError> {
    Ok(rows > 0 && cols > 0)
}

fn main() {}
