//! Opening the command's container and checking its state (runner side).

use std::time::{Duration, Instant};

use ctl_core::{CommandError, RunnerContext};
use ctl_lxc::State as LxcState;

/// How often state and child polls look again.
pub const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// Opens the command's container through liblxc.
pub fn open(ctx: &RunnerContext) -> Result<ctl_lxc::Container, CommandError> {
    Ok(ctl_lxc::Container::open(&ctx.id, &ctx.lxc_home)?)
}

/// Opens the container and checks that it exists (has a config), so that a typo in the
/// id is not reported as "not running".
pub fn open_defined(ctx: &RunnerContext) -> Result<ctl_lxc::Container, CommandError> {
    let ct = open(ctx)?;
    if !ct.is_defined()? {
        return Err(CommandError::msg(format!(
            "container {} does not exist (no config under {})",
            ctx.id,
            ctx.lxc_home.join(&ctx.id).display()
        )));
    }
    Ok(ct)
}

/// How much of "running" a command needs: [`require`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Not stopped (frozen and changing states are fine: Freeze, Unfreeze, GetHostname).
    Running,
    /// Not stopped and not frozen or freezing: commands that attach into the container
    /// would hang in a frozen one (Reboot, Stop's halt and runit).
    Thawed,
    /// Exactly running: the helpers that Mount, Unmount, Wall attach, which would also fail
    /// in a starting or stopping container.
    Attachable,
}

/// The one "is it running" check: the container's state if it is what `need` asks, else
/// the error naming the container (`label`: its name, or `pool:id`) and what to do.
pub fn require(ct: &ctl_lxc::Container, label: &str, need: Need) -> Result<LxcState, CommandError> {
    let state = ct.state()?;
    let refuse = |what: String| Err(CommandError::msg(format!("container {label} {what}")));
    match state {
        LxcState::Stopped => refuse("is not running".to_owned()),
        LxcState::Frozen | LxcState::Freezing if need != Need::Running => {
            refuse(format!("is {state}; unfreeze it first"))
        }
        LxcState::Running | LxcState::Frozen | LxcState::Freezing => Ok(state),
        _ if need == Need::Attachable => refuse(format!("is {state}, not running")),
        _ => Ok(state),
    }
}

/// Opens the container and checks that it is running and not frozen ([`Need::Attachable`],
/// the error naming `pool:id`): for commands that attach a helper into it.
pub fn open_running(ctx: &RunnerContext) -> Result<ctl_lxc::Container, CommandError> {
    let ct = open(ctx)?;
    require(&ct, &ctx.ident(), Need::Attachable)?;
    Ok(ct)
}

/// Polls until the container is stopped or `deadline` passes; returns whether it stopped.
pub fn wait_stopped(ct: &ctl_lxc::Container, deadline: Instant) -> Result<bool, CommandError> {
    loop {
        if ct.state()? == LxcState::Stopped {
            return Ok(true);
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(false);
        }
        std::thread::sleep(POLL_INTERVAL.min(deadline - now));
    }
}
