//! Exec, Runscript, Syscmd.

use std::path::PathBuf;

use ctl_core::{bail, container_command, Call, CommandError, RunnerContext};
use serde::{Deserialize, Serialize};

/// Where Runscript's script comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScriptSource {
    /// A file on the host.
    File(PathBuf),
    /// The call's stdin.
    Stdin,
}

/// What `Syscmd` returns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyscmdOutput {
    pub exitstatus: i32,
    pub output: String,
}

/// Run a command inside the container with the call's stdin/stdout/stderr; returns its
/// exit status. `run` starts a stopped container just for the command.
#[container_command(placement = exec, setuid_helpers)]
pub fn exec(
    _ctx: &mut RunnerContext,
    _cmd: Vec<String>,
    #[kwarg(default)] _run: bool,
    #[kwarg(default)] _network: bool,
) -> Result<i32, CommandError> {
    bail!("not implemented yet")
}

/// Run a script inside the container; returns its exit status.
#[container_command(placement = exec, setuid_helpers)]
pub fn runscript(
    _ctx: &mut RunnerContext,
    _script: ScriptSource,
    #[kwarg(default)] _run: bool,
    #[kwarg(default)] _network: bool,
) -> Result<i32, CommandError> {
    bail!("not implemented yet")
}

/// Run a command inside the container and collect its output; an error unless its exit
/// status is 0 or one of `valid_rcs`.
#[container_command(frontend_only)]
pub fn syscmd(
    call: &Call<'_>,
    _cmd: Vec<String>,
    #[kwarg(default)] _valid_rcs: Vec<i32>,
    #[kwarg(default)] _run: bool,
) -> Result<SyscmdOutput, ctl_core::Error> {
    Err(ctl_core::Error::command("Syscmd", format!("not implemented yet for {}", call.container().id)))
}
