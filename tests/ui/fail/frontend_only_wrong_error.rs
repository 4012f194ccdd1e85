use ctl_core::{container_command, Call, CommandError};

#[container_command(frontend_only)]
pub fn syscmd(_call: &Call<'_>, cmd: Vec<String>) -> Result<usize, CommandError> {
    Ok(cmd.len())
}

fn main() {}
