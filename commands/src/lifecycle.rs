//! Start, Freeze, Unfreeze, State, Reboot.

use ctl_core::{
    bail, container_command, Call, Command, CommandError, Error, ErrorKind, RunnerContext,
};
use std::time::Instant;

use ctl_lxc::command_socket::{self, CommandSocketError};
use ctl_lxc::State as LxcState;
use serde::{Deserialize, Serialize};

use ctl_lxc::freezer::{self, Outcome};

use crate::support::initpid::{InitError, ValidatedInit};
use crate::support::{self, Need};

/// What `State` returns (osctld's `{id, state, init_pid}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateInfo {
    pub id: String,
    /// Lower-case LXC state word: `running`, `frozen`, `stopped`, ...
    pub state: String,
    pub init_pid: Option<i32>,
}

impl StateInfo {
    /// Whether the container is stopped.
    pub fn is_stopped(&self) -> bool {
        self.state == LxcState::Stopped.as_str()
    }

    /// Whether the container is frozen or being frozen.
    pub fn is_frozen(&self) -> bool {
        self.state == LxcState::Frozen.as_str() || self.state == LxcState::Freezing.as_str()
    }
}

/// Start a stopped container as its user, inside its cgroups.
///
/// Runs in the exec placement, so that the LXC monitor and the container land below the
/// container's cgroup (`<cgroup_path>/lxc.monitor.<id>`, `<cgroup_path>/lxc.payload.<id>`),
/// with the setuid helpers (`newuidmap`, `newgidmap`, `lxc-user-nic`) usable. In osctld's
/// layout the runner's entry cgroup is `<cgroup_path>/lxc.monitor.<id>` and it moves to
/// `<cgroup_path>` before the start, so that the payload becomes the entry's sibling (see
/// `support::enter_container_cgroup_to_start`; LXC then names its monitor's cgroup
/// `lxc.monitor.<id>-1`, the entry holding the plain name). liblxc daemonizes
/// the monitor (which closes every inherited fd and puts `/dev/null` on 0-2) and returns
/// once the container runs or failed. Refuses a container that is not stopped; a failure
/// carries liblxc's text and the new lines of the container's log.
#[container_command(placement = exec, setuid_helpers, lock = exclusive)]
pub fn start(ctx: &mut RunnerContext) -> Result<bool, CommandError> {
    let ct = support::open_defined(ctx)?;
    let state = ct.state()?;
    if state != LxcState::Stopped {
        bail!("container {} is already running (state: {state})", ctx.id);
    }
    let log = support::log_file_of(ctx, &ct);
    let offset = support::log_offset(log.as_deref());
    support::enter_container_cgroup_to_start(ctx)?;
    // liblxc's start needs a dumpable caller; the runner is not one (see
    // `support::in_dumpable_worker`).
    let started = support::in_dumpable_worker("container start", &|| {
        ct.start(false, &[])
            .map(|_| 0)
            .map_err(|e| CommandError::msg(e.to_string()))
    });
    if let Err(e) = started {
        return Err(support::with_log_tail(e.message(), log.as_deref(), offset));
    }
    // liblxc reports success once the monitor saw RUNNING; an init that dies at once is
    // stopped again by now.
    let state = ct.state()?;
    if state == LxcState::Stopped {
        return Err(support::with_log_tail(
            format!("container {} stopped right after it was started", ctx.id),
            log.as_deref(),
            offset,
        ));
    }
    Ok(true)
}

/// Freeze the container.
///
/// The frontend freezes in-process, without a runner: it writes the payload cgroup's v1
/// `freezer.state` and tells the LXC monitor the new state over LXC's command socket,
/// the steps of liblxc's own freeze without liblxc, with a short poll for `FROZEN` where
/// liblxc sleeps a second (see `freezer.rs`). The runner half (exec placement, as the
/// container's user inside its entry cgroup, looking for the payload below the container's
/// cgroup the placement names) takes the same path, and calls liblxc's freeze where that
/// path does not apply: a cgroup v2 host, a stopped or undefined container (liblxc's
/// error), a container starting or stopping. liblxc must then run in the entry cgroup:
/// liblxc 5.0.2 on the hybrid cgroup layout fails (ENOENT) to freeze or thaw from outside
/// it.
#[container_command(
    placement = exec,
    lock = exclusive,
    frontend = freeze_frontend,
    osctld = ctl_core::osctld::ok_without_output
)]
pub fn freeze(ctx: &mut RunnerContext) -> Result<bool, CommandError> {
    set_frozen_in_runner(ctx, true)
}

fn freeze_frontend(call: &Call<'_>) -> Result<bool, Error> {
    match freeze_directly_in_frontend(call, true, Freeze::SPEC.name)? {
        Some(done) => Ok(done),
        None => Freeze::runner(call),
    }
}

/// Unfreeze (thaw) the container.
///
/// The same two paths as `Freeze`. A thaw must tell LXC's monitor: it keeps the frozen
/// state it was told about and reports it until told otherwise.
#[container_command(
    placement = exec,
    lock = exclusive,
    frontend = unfreeze_frontend,
    osctld = ctl_core::osctld::ok_without_output
)]
pub fn unfreeze(ctx: &mut RunnerContext) -> Result<bool, CommandError> {
    set_frozen_in_runner(ctx, false)
}

fn unfreeze_frontend(call: &Call<'_>) -> Result<bool, Error> {
    match freeze_directly_in_frontend(call, false, Unfreeze::SPEC.name)? {
        Some(done) => Ok(done),
        None => Unfreeze::runner(call),
    }
}

/// The runner halves of Freeze and Unfreeze: the freezer path, else liblxc.
fn set_frozen_in_runner(ctx: &RunnerContext, frozen: bool) -> Result<bool, CommandError> {
    if let Some(target) = support::freezer_of_runner(ctx) {
        match freezer::set_frozen(&target, frozen).map_err(CommandError::msg)? {
            Outcome::Done => return Ok(true),
            // The runner has no deadline of its own: the frontend kills it at the call's.
            Outcome::TimedOut => {}
            Outcome::Unavailable(why) => {
                tracing::debug!("{}: through liblxc: {why}", ctx.command);
            }
        }
    }
    let ct = support::open_defined(ctx)?;
    support::require(&ct, ct.name(), Need::Running)?;
    if frozen {
        ct.freeze()?;
    } else {
        ct.unfreeze()?;
    }
    Ok(true)
}

/// The freezer path in the frontend: `Some(true)` when done, `None` to start the runner.
fn freeze_directly_in_frontend(
    call: &Call<'_>,
    frozen: bool,
    command: &str,
) -> Result<Option<bool>, Error> {
    let started = Instant::now();
    let deadline = call.deadline_value().map(|d| started + d);
    let Some(target) = support::freezer_of_container(call.container(), deadline) else {
        return Ok(None);
    };
    match freezer::set_frozen(&target, frozen).map_err(|e| Error::command(command, e))? {
        Outcome::Done => Ok(Some(true)),
        Outcome::TimedOut => Err(Error::timeout(command, started.elapsed())),
        Outcome::Unavailable(why) => {
            tracing::debug!("{command}: through the runner: {why}");
            Ok(None)
        }
    }
}

/// The container's state and init pid.
///
/// The frontend answers without a runner whenever it can:
/// - `stopped` when the container's payload cgroup (`<cgroup_path>/lxc.payload.<id>`, or
///   `<cgroup_path>/lxc.pivot/.../lxc.payload.<id>` after reboots; in either layout: the
///   entry cgroup does not matter here) does not exist in the memory hierarchy: LXC
///   removes it when the container stops (osctld's short-cut);
/// - otherwise from the container's LXC monitor, asked in-process over LXC's command socket
///   ([`ctl_lxc::command_socket`]), the very answer liblxc's `state()` and `init_pid()` read
///   from it. The monitor must run as the container's user (or root).
///
/// Only when the socket gives no usable answer (an unexpected reply, the monitor hanging up
/// mid-way) does it fall back to the runner, which asks through liblxc as the container's
/// user. Either way the frontend checks the init pid before answering (the container's
/// user may serve the monitor's socket itself, and its runner answers what liblxc read
/// from it): inside the container's cgroup, in a user namespace owned by the container's
/// user that maps 0 to the container's root ids, else the call fails (see `initpid.rs`).
/// The runner half is the whole command for callers that invoke it by name, unchecked.
#[container_command(placement = fork, frontend = state_frontend)]
pub fn state(ctx: &mut RunnerContext) -> Result<StateInfo, CommandError> {
    let ct = support::open(ctx)?;
    let state = ct.state()?;
    let init_pid = if state == LxcState::Stopped {
        None
    } else {
        ct.init_pid()?
    };
    Ok(StateInfo {
        id: ctx.id.clone(),
        state: state.as_str().to_owned(),
        init_pid,
    })
}

fn state_frontend(call: &Call<'_>) -> Result<StateInfo, Error> {
    Ok(state_and_init(call)?.0)
}

/// `State`'s answer and its init pid checked as the container's (see
/// [`ValidatedInit`]), on every path: the monitor's answer and the runner fallback's. An
/// init that is gone by the time it is checked is asked for once more.
pub(crate) fn state_and_init(call: &Call<'_>) -> Result<(StateInfo, Option<ValidatedInit>), Error> {
    let ct = call.container();
    let mut asked = 0;
    loop {
        let info = unchecked_state(call)?;
        asked += 1;
        let Some(pid) = info.init_pid else {
            return Ok((info, None));
        };
        match ValidatedInit::new(ct, pid) {
            Ok(init) => return Ok((info, Some(init))),
            Err(InitError::Gone(why)) if asked < 2 => {
                tracing::debug!("State of {}: {why}; asking again", ct.ident());
            }
            Err(e) => return Err(Error::command(State::SPEC.name, e)),
        }
    }
}

/// The monitor's answer, else the runner's; the init pid not checked yet.
fn unchecked_state(call: &Call<'_>) -> Result<StateInfo, Error> {
    let ct = call.container();
    let stopped = || StateInfo {
        id: ct.id.clone(),
        state: LxcState::Stopped.as_str().to_owned(),
        init_pid: None,
    };
    if !support::payload_cgroup_exists(ct) {
        return Ok(stopped());
    }
    let started = Instant::now();
    let deadline = call.deadline_value().map(|d| started + d);
    let answer = command_socket::query_state(&ct.lxc_home, &ct.id, &[ct.ugid, 0], deadline);
    let monitor = match answer {
        Ok(None) => return Ok(stopped()),
        Ok(Some(monitor)) => monitor,
        Err(CommandSocketError::Timeout { .. }) => {
            return Err(Error::timeout(State::SPEC.name, started.elapsed()))
        }
        Err(e @ CommandSocketError::ForeignPeer { .. }) => {
            return Err(Error::command(State::SPEC.name, e))
        }
        Err(e) => {
            tracing::debug!("State of {}: {e}; asking through the runner", ct.ident());
            return State::runner(call);
        }
    };
    Ok(StateInfo {
        id: ct.id.clone(),
        state: monitor.state.as_str().to_owned(),
        init_pid: monitor.init_pid,
    })
}

/// Reboot the container: sends it the reboot signal (`lxc.signal.reboot`) and returns;
/// the LXC monitor starts it again once its init exited. Refuses a stopped or frozen
/// container.
#[container_command(placement = fork, lock = exclusive)]
pub fn reboot(ctx: &mut RunnerContext) -> Result<bool, CommandError> {
    let ct = support::open_defined(ctx)?;
    support::require(&ct, ct.name(), Need::Thawed)?;
    ct.reboot()?;
    Ok(true)
}

/// The container's init pid, from `State` (its frontend asks the container's monitor over
/// LXC's command socket, its fallback runner asks liblxc as the container's user), checked
/// as the container's on either path ([`ValidatedInit`]): root-side code opens the
/// namespaces it enters through it. Root-side code uses this instead of loading the
/// user-editable LXC config with liblxc as root.
pub(crate) fn checked_init_pid(call: &Call<'_>, command: &str) -> Result<ValidatedInit, Error> {
    let call = call
        .clone()
        .stdin(None)
        .placement(ctl_core::Placement::Fork);
    // A command error is this command's (the same message); any other stays State's.
    let (state, init) = state_and_init(&call).map_err(|e| match e.kind() {
        ErrorKind::Command { .. } => Error::new(command, e.into_kind()),
        _ => e,
    })?;
    init.ok_or_else(|| {
        Error::command(
            command,
            format!("container {} is not running (it has no init pid)", state.id),
        )
    })
}
