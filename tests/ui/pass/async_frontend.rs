use ctl_core::{container_command, Call, CommandError, Error, RunnerContext};

/// Sleep in the runner.
#[container_command(
    placement = exec,
    frontend = nap_frontend,
    async_frontend = nap_frontend_async
)]
pub fn nap(_ctx: &RunnerContext, seconds: u32) -> Result<bool, CommandError> {
    Ok(seconds < 60)
}

fn nap_frontend(call: &Call<'_>, seconds: u32) -> Result<bool, Error> {
    Nap::runner(call, seconds)
}

// Compiled only when ctl-core has its `tokio` feature, as the async twins that call it.
ctl_core::if_tokio! {
    async fn nap_frontend_async(call: &Call<'_>, seconds: u32) -> Result<bool, Error> {
        Nap::runner_async(call, seconds).await
    }
}

fn main() {
    let _ = <Nap as ctl_core::Command>::SPEC;
}
