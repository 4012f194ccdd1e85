use ctl_core::{container_command, CommandError};

pub struct Daemon;

impl Daemon {
    #[container_command(placement = exec)]
    pub fn freeze(&self) -> Result<bool, CommandError> {
        Ok(true)
    }
}

fn main() {}
