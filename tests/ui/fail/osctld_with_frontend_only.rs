use ctl_core::{container_command, Call, Error};

#[container_command(frontend_only, osctld = ctl_core::osctld::ok_without_output)]
pub fn syscmd(_call: &Call<'_>, cmd: Vec<String>) -> Result<usize, Error> {
    Ok(cmd.len())
}

fn main() {}
