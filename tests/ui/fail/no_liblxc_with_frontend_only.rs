use ctl_core::{container_command, Call, Error};

#[container_command(frontend_only, no_liblxc)]
pub fn hostname(_call: &Call<'_>) -> Result<String, Error> {
    Ok(String::new())
}

fn main() {}
