use ctl_core::{container_command, CommandError};

#[container_command(placement = exec)]
pub fn freeze() -> Result<bool, CommandError> {
    Ok(true)
}

fn main() {}
