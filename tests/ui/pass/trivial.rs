use ctl_core::{container_command, Command, CommandError, RunnerContext};

/// Freeze the container.
#[container_command(placement = exec)]
pub fn freeze(_ctx: &mut RunnerContext) -> Result<bool, CommandError> {
    Ok(true)
}

fn main() {
    assert_eq!(<Freeze as Command>::SPEC.name, "Freeze");
    let _: fn(&ctl_core::Container) -> Result<bool, ctl_core::Error> = Freeze::run;
    let _: fn(&ctl_core::Call<'_>) -> Result<bool, ctl_core::Error> = Freeze::run_with;
    let _: fn(&ctl_core::Call<'_>) -> Result<bool, ctl_core::Error> = Freeze::runner;
    // The function stays callable.
    let _: fn(&mut RunnerContext) -> Result<bool, CommandError> = freeze;
}
