use ctl_core::{container_command, Call, Command, Error};

/// Run a command through `Exec` and collect its output.
#[container_command(frontend_only)]
pub fn syscmd(
    call: &Call<'_>,
    cmd: Vec<String>,
    #[kwarg(default)] valid_rcs: Vec<i32>,
) -> Result<String, Error> {
    let _ = (call, valid_rcs);
    Ok(cmd.join(" "))
}

fn main() {
    assert!(<Syscmd as Command>::SPEC.placement.is_none());
    let _: fn(&Call<'_>, Vec<String>, Vec<i32>) -> Result<String, Error> = Syscmd::run_with;
}
