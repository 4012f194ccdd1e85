use ctl_core::{container_command, CommandError, Container};

#[container_command(placement = exec)]
pub fn freeze(_ct: &Container) -> Result<bool, CommandError> {
    Ok(true)
}

fn main() {}
