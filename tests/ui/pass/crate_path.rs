//! A facade crate re-exporting ctl_core hosts plugins: `crate = path` makes the generated
//! code name ctl_core through that path (`crate = "path"`, as serde writes it, too).

mod facade {
    pub use ctl_core as core2;
}

use facade::core2::{container_command, Call, Command, CommandError, Registry, RunnerContext};

/// Echo the argument back.
#[container_command(placement = exec, crate = facade::core2)]
pub fn echo(_ctx: &mut RunnerContext, value: String, #[kwarg(default)] times: u8) -> Result<String, CommandError> {
    Ok(value.repeat(usize::from(times)))
}

mod nested {
    use crate::facade::core2::{container_command, Call, Error};

    /// Count the words.
    #[container_command(frontend_only, crate = "crate::facade::core2")]
    pub fn count(_call: &Call<'_>, words: Vec<String>) -> Result<usize, Error> {
        Ok(words.len())
    }
}

fn main() {
    assert_eq!(<Echo as Command>::SPEC.name, "Echo");
    assert_eq!(<nested::Count as Command>::SPEC.placement, None);
    let _: fn(&Call<'_>, String, u8) -> Result<String, facade::core2::Error> = Echo::runner;
    let echo = Registry::find("Echo").unwrap().unwrap();
    assert!(echo.runner.is_some());
    assert!(Registry::find("Count").unwrap().unwrap().runner.is_none());
}
