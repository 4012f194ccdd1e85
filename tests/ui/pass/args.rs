use ctl_core::{container_command, Call, CommandError, Error, RunnerContext};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopMode {
    Stop,
    Shutdown,
    Kill,
}

/// Stop the container.
#[container_command(placement = exec)]
pub fn stop(
    _ctx: &mut RunnerContext,
    mode: StopMode,
    #[kwarg] timeout: u64,
    #[kwarg(default)] message: Option<String>,
    #[kwarg(default)] r#type: Vec<i32>,
    mut extra: Option<u8>,
) -> Result<bool, CommandError> {
    extra = extra.or(Some(1));
    Ok(matches!(mode, StopMode::Kill)
        || timeout > 0
        || message.is_some()
        || !r#type.is_empty()
        || extra.is_some())
}

// Parameters may be named like the generated methods' own parameters.
#[container_command(placement = fork)]
pub(crate) fn clash(
    _ctx: &RunnerContext,
    ct: String,
    call: u32,
    #[kwarg] args: Vec<String>,
) -> Result<(), CommandError> {
    let _ = (ct, call, args);
    Ok(())
}

fn main() {
    let _: fn(
        &Call<'_>,
        StopMode,
        u64,
        Option<String>,
        Vec<i32>,
        Option<u8>,
    ) -> Result<bool, Error> = Stop::run_with;
    let _: fn(&Call<'_>, String, u32, Vec<String>) -> Result<(), Error> = Clash::runner;
}
