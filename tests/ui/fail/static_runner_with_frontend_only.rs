use ctl_core::{container_command, Call, Error};

#[container_command(frontend_only, static_runner)]
pub fn hostname(_call: &Call<'_>) -> Result<String, Error> {
    Ok(String::new())
}

#[container_command(placement = exec, no_liblxc, static_runner)]
pub fn domainname(_ctx: &mut ctl_core::RunnerContext) -> Result<String, ctl_core::CommandError> {
    Ok(String::new())
}

fn main() {}
