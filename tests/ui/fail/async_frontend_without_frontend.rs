use ctl_core::{container_command, Call, CommandError, Error, RunnerContext};

#[container_command(placement = exec, async_frontend = nap_async)]
pub fn nap(_ctx: &RunnerContext, seconds: u32) -> Result<bool, CommandError> {
    Ok(seconds < 60)
}

async fn nap_async(_call: &Call<'_>, _seconds: u32) -> Result<bool, Error> {
    Ok(true)
}

fn main() {}
