use ctl_core::{container_command, CommandError, RunnerContext};

#[container_command(placement = exec)]
pub fn set<T: serde::de::DeserializeOwned>(
    _ctx: &mut RunnerContext,
    value: T,
) -> Result<bool, CommandError> {
    let _ = value;
    Ok(true)
}

fn main() {}
