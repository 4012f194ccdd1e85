//! Stop (modes stop / shutdown / kill), StopByHalt, StopRunit.

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::{Duration, Instant};

use ctl_core::{
    bail, container_command, Call, CommandError, Error, ErrorKind, Placement, RunnerContext,
};
use ctl_lxc::State as LxcState;
use serde::{Deserialize, Serialize};

use crate::lifecycle::{State, StateInfo};
use crate::support::{self, wall};

/// How `Stop` stops a container (osctld's modes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopMode {
    /// Clean shutdown, else kill when the timeout passes.
    Stop,
    /// Clean shutdown or fail.
    Shutdown,
    /// Kill at once.
    Kill,
}

impl StopMode {
    /// osctld's word for the mode.
    pub fn as_str(self) -> &'static str {
        match self {
            StopMode::Stop => "stop",
            StopMode::Shutdown => "shutdown",
            StopMode::Kill => "kill",
        }
    }
}

impl std::fmt::Display for StopMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for StopMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "stop" => Ok(StopMode::Stop),
            "shutdown" => Ok(StopMode::Shutdown),
            "kill" => Ok(StopMode::Kill),
            other => Err(format!(
                "unknown stop mode {other:?} (expected stop, shutdown or kill)"
            )),
        }
    }
}

/// How long a kill may take before `Stop` reports the container as stuck.
const KILL_GRACE: Duration = Duration::from_secs(10);

/// How long StopByHalt waits for `halt` inside before it kills it and fails. A halt only
/// tells init to shut down and returns (busybox: a signal; systemd: a queued job), but it
/// runs in the container's pid namespace, where the container's root can stop it or
/// replace it with something that never returns; StopByHalt has no timeout argument of
/// its own (osctld's neither), so this bound is what ends it. 30 s leaves a slow
/// `systemctl halt` on a loaded machine time to queue its job.
pub const HALT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long StopRunit's process inside may take before it is killed and the command fails:
/// it creates and chmods two files (milliseconds), but the container's root can stop it.
/// 10 s, as for the mount helpers.
pub const RUNIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Stop the container: clean shutdown (halt from inside, bounded by the timeout), falling
/// back to kill in `stop` mode; optional wall message first.
///
/// `timeout` is in seconds and bounds everything that depends on processes inside the
/// container, the message included (each helper attached inside is killed at the latest
/// when it passes, so a container cannot delay its own kill): in mode `stop` the container
/// is killed when it passes, in mode `shutdown` the command fails (the container keeps
/// running), in mode `kill` the message gets at most that long (and at most Wall's own
/// bound) before the kill. A frozen container is thawed first. A stopped container is left
/// as it is and the command succeeds. The frontend runs the runner in the exec placement when it has to attach (clean shutdown, a
/// message to show) or thaw, else in the fork placement. `setuid_helpers`: LXC 5 moves an
/// attached process into an unprivileged container's cgroups through `newuidmap`.
#[container_command(
    placement = exec,
    setuid_helpers,
    lock = exclusive,
    frontend = stop_frontend,
    async_frontend = stop_frontend_async,
    osctld = stop_osctld
)]
pub fn stop(
    ctx: &mut RunnerContext,
    mode: StopMode,
    #[kwarg] timeout: u64,
    #[kwarg(default)] message: Option<String>,
) -> Result<bool, CommandError> {
    check_timeout(timeout)?;
    let deadline = Instant::now() + Duration::from_secs(timeout);
    let ct = support::open_defined(ctx)?;
    let state = ct.state()?;
    if state == LxcState::Stopped {
        // Stopped already (osctld's `ct stop` and `restart` rely on that succeeding).
        return Ok(true);
    }
    if matches!(state, LxcState::Frozen | LxcState::Freezing) {
        // Our frontend thawed the cgroups as root already (and chose the exec placement,
        // where liblxc's unfreeze works); this also tells the monitor, which keeps
        // reporting FROZEN otherwise, and covers other frontends (osctld's).
        if let Err(e) = ct.unfreeze() {
            eprintln!("stop {}: lxc unfreeze: {e}", ctx.ident());
        }
    }
    if let Some(message) = message {
        wall_best_effort(ctx, &ct, StopMessage::WithBanner(&message), Some(deadline));
    }
    match mode {
        StopMode::Kill => kill_and_wait(&ct)?,
        StopMode::Stop | StopMode::Shutdown => {
            if clean_shutdown(ctx, &ct, deadline)? {
                return Ok(true);
            }
            if mode == StopMode::Shutdown {
                bail!(
                    "container {} did not shut down within {timeout} s (state: {}); stop it in mode \
                     stop or kill to force it",
                    ctx.id,
                    ct.state().map_or_else(|e| e.to_string(), |s| s.to_string())
                );
            }
            kill_and_wait(&ct)?;
        }
    }
    Ok(true)
}

fn stop_frontend(
    call: &Call<'_>,
    mode: StopMode,
    timeout: u64,
    message: Option<String>,
) -> Result<bool, Error> {
    check_timeout(timeout).map_err(|e| Error::arguments("Stop", e.message()))?;
    let info = State::run_with(&call.clone().placement(Placement::Fork))?;
    if info.is_stopped() {
        // Nothing to do: a stop of a stopped container succeeds, as osctld's does (its
        // `ct stop` and `restart` rely on it).
        return Ok(true);
    }
    thaw_before_stop(call.container());
    let (placement, deadline) = runner_options(call, mode, timeout, &message, &info);
    let result = Stop::runner(
        &call.clone().placement(placement).deadline(deadline),
        mode,
        timeout,
        message,
    );
    after_the_runner(call.container(), mode, result)
}

ctl_core::if_tokio! {
    /// Stop's frontend, async: the same steps as `stop_frontend`, the runner (which waits
    /// for the container to go, for up to `timeout`) on the reactor, the short cgroup walks
    /// on the blocking pool.
    async fn stop_frontend_async(
        call: &Call<'_>,
        mode: StopMode,
        timeout: u64,
        message: Option<String>,
    ) -> Result<bool, Error> {
        use ctl_core::async_frontend::blocking;
        check_timeout(timeout).map_err(|e| Error::arguments("Stop", e.message()))?;
        let info = State::run_with_async(&call.clone().placement(Placement::Fork)).await?;
        if info.is_stopped() {
            return Ok(true);
        }
        let ct = call.container().clone();
        blocking("Stop", move || thaw_before_stop(&ct)).await?;
        let (placement, deadline) = runner_options(call, mode, timeout, &message, &info);
        let result = Stop::runner_async(
            &call.clone().placement(placement).deadline(deadline),
            mode,
            timeout,
            message,
        )
        .await;
        let ct = call.container().clone();
        blocking("Stop", move || after_the_runner(&ct, mode, result)).await?
    }
}

/// Thawed as root whatever the monitor says: osctld thaws the whole cgroup tree before a
/// kill (a frozen task does not die until thawed), a clean shutdown needs it too, and the
/// container's root can freeze its own processes in a freezer cgroup of its own below the
/// payload, where neither the monitor's state nor liblxc's unfreeze looks.
fn thaw_before_stop(ct: &ctl_core::Container) {
    if let Err(e) = support::thaw_tree(ct) {
        tracing::warn!(container = %ct.ident(), "thawing before stop: {e}");
    }
}

/// The runner's placement and deadline. Attaching (halt inside, the wall message) and
/// liblxc's unfreeze need the container's cgroups; a plain kill does not. liblxc's stop
/// waits until the container is gone, which a container that keeps re-freezing its init
/// can put off for ever: the runner gets a bound (the caller's deadline if shorter), and
/// where the container must die, root kills what is left in its cgroups once the runner
/// is done or was killed ([`after_the_runner`]).
fn runner_options(
    call: &Call<'_>,
    mode: StopMode,
    timeout: u64,
    message: &Option<String>,
    info: &StateInfo,
) -> (Placement, Duration) {
    let exec = mode != StopMode::Kill || message.is_some() || info.is_frozen();
    let placement = if exec {
        Placement::Exec
    } else {
        Placement::Fork
    };
    let bound = Duration::from_secs(timeout) + KILL_GRACE + RUNNER_SLACK;
    let deadline = call.deadline_value().map_or(bound, |d| d.min(bound));
    (placement, deadline)
}

/// What the runner's result means: where the container must die (modes stop and kill) and
/// the runner did not make it, root kills what is left in its cgroups.
fn after_the_runner(
    ct: &ctl_core::Container,
    mode: StopMode,
    result: Result<bool, Error>,
) -> Result<bool, Error> {
    let must_die = matches!(mode, StopMode::Stop | StopMode::Kill);
    match result {
        Err(e)
            if must_die
                && matches!(
                    e.kind(),
                    ErrorKind::Timeout { .. }
                        | ErrorKind::RunnerFailed { .. }
                        | ErrorKind::Command { .. }
                ) =>
        {
            match support::kill_payload_tree(ct, HARD_KILL_LIMIT) {
                Ok(true) => {
                    tracing::warn!(container = %ct.ident(), error = %e, "stop: the container did not stop through LXC; killed through its cgroups");
                    Ok(true)
                }
                Ok(false) => Err(e),
                Err(kill) => Err(Error::command(
                    "Stop",
                    format!("{e}; killing its cgroups failed too: {kill}"),
                )),
            }
        }
        other => other,
    }
}

/// The options osctld's Stop frontend passes with the mode.
#[derive(Debug, Deserialize)]
struct OsctldStopOptions {
    timeout: u64,
    /// Composed by osctld's frontend (banner included): written as it is.
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    halt_from_inside: bool,
}

/// osctld's Stop: `[mode, {timeout, message, halt_from_inside}]`, with osctld's semantics:
/// the message is written as it is (a failure is ignored); with `halt_from_inside`,
/// `halt` (`poweroff`, `shutdown`) runs inside, killed at the timeout; then LXC's shutdown
/// waits for what is left of the timeout, but at least 60 s (osctld's rule). Answers
/// `null`; a shutdown that does not finish is osctld's `kill required` in mode `stop` (its
/// frontend then kills the container) and `unable to shutdown container` in mode
/// `shutdown`; mode `kill` is LXC's stop (`unable to kill container`).
fn stop_osctld(
    ctx: &mut RunnerContext,
    args: ctl_core::Args,
    _native: ctl_core::RunnerFn,
) -> Result<ctl_core::osctld::Value, CommandError> {
    let (mode, opts): (StopMode, OsctldStopOptions) = ctl_core::osctld::mode_and_options(args)?;
    let ct = support::open_defined(ctx)?;
    if ct.state()? == LxcState::Stopped {
        return Ok(ctl_core::osctld::Value::Null);
    }
    check_timeout(opts.timeout)?;
    let timeout = Duration::from_secs(opts.timeout);
    if let Some(message) = &opts.message {
        let limit = Instant::now() + timeout;
        wall_best_effort(ctx, &ct, StopMessage::AsComposed(message), Some(limit));
    }
    let failed = match mode {
        StopMode::Kill => match ct.stop() {
            Ok(()) => None,
            Err(e) => {
                eprintln!("stop {}: {e}", ctx.ident());
                Some("unable to kill container")
            }
        },
        StopMode::Stop | StopMode::Shutdown => {
            let mut remaining = timeout;
            if opts.halt_from_inside {
                let started = Instant::now();
                match halt_inside(&ct, started + timeout) {
                    Ok(_) => {}
                    Err(e) => eprintln!("stop {}: cannot run halt inside: {e}", ctx.ident()),
                }
                remaining = timeout
                    .saturating_sub(started.elapsed())
                    .max(OSCTLD_MIN_SHUTDOWN);
            }
            match ct.shutdown(remaining) {
                Ok(true) => None,
                Ok(false) | Err(_) if mode == StopMode::Stop => Some("kill required"),
                Ok(false) | Err(_) => Some("unable to shutdown container"),
            }
        }
    };
    match failed {
        None => Ok(ctl_core::osctld::Value::Null),
        Some(message) => Err(CommandError::msg(message)),
    }
}

/// osctld gives LXC's shutdown at least this long after a halt from inside.
const OSCTLD_MIN_SHUTDOWN: Duration = Duration::from_secs(60);

/// The longest stop timeout accepted: a week. More is a mistake (or an attempt to make a
/// deadline overflow), refused with a one-line error.
pub const MAX_STOP_TIMEOUT: u64 = 7 * 24 * 3600;

fn check_timeout(timeout: u64) -> Result<(), CommandError> {
    if timeout > MAX_STOP_TIMEOUT {
        bail!("timeout {timeout} s is larger than the maximum of {MAX_STOP_TIMEOUT} s (a week)");
    }
    Ok(())
}

/// How much longer than `timeout` + [`KILL_GRACE`] the runner of `Stop` may take (attach,
/// liblxc's own steps) before the frontend kills it and the container's cgroups.
const RUNNER_SLACK: Duration = Duration::from_secs(10);

/// How long the frontend keeps killing what is left in a container's cgroups.
const HARD_KILL_LIMIT: Duration = Duration::from_secs(10);

/// The programs that shut a container down from inside, in osctld's order: the first one
/// the container has is used.
const HALT_PROGRAMS: [&str; 3] = ["halt", "poweroff", "shutdown"];

/// Runs the first of [`HALT_PROGRAMS`] that exists inside the container (exit status 127:
/// not found, 126: not executable; the next is tried), all within `deadline`. Returns the
/// program and its status (the last one's when none exists), `None` when the deadline
/// passed.
fn halt_inside(
    ct: &ctl_lxc::Container,
    deadline: Instant,
) -> Result<Option<(&'static str, std::process::ExitStatus)>, CommandError> {
    let mut last = None;
    for program in HALT_PROGRAMS {
        let Some(status) = support::attach_wait(ct, &[program], Some(deadline))? else {
            return Ok(None);
        };
        last = Some((program, status));
        if !matches!(status.code(), Some(126 | 127)) {
            break;
        }
    }
    Ok(last)
}

/// Runs `halt` inside (or `poweroff`, `shutdown`: [`halt_inside`]; bounded by `deadline`),
/// sends LXC's halt signal for inits that
/// ignore the former, then waits for the container to stop until `deadline`.
fn clean_shutdown(
    ctx: &RunnerContext,
    ct: &ctl_lxc::Container,
    deadline: Instant,
) -> Result<bool, CommandError> {
    if Instant::now() >= deadline {
        // A zero timeout leaves no time for a clean shutdown.
        return support::wait_stopped(ct, deadline);
    }
    let started = Instant::now();
    match halt_inside(ct, deadline) {
        Ok(Some((program, status))) if !status.success() => {
            eprintln!(
                "stop {}: {program} inside {}",
                ctx.ident(),
                support::describe_status(status)
            );
        }
        Ok(Some(_)) => {}
        Ok(None) => eprintln!(
            "stop {}: {}",
            ctx.ident(),
            support::helper_timed_out("halt", deadline.saturating_duration_since(started))
        ),
        Err(e) => eprintln!("stop {}: cannot run halt inside: {e}", ctx.ident()),
    }
    if Instant::now() < deadline {
        // Sends lxc.signal.halt (or SIGRTMIN+3 to systemd) without waiting.
        if let Err(e) = ct.shutdown(Duration::ZERO) {
            eprintln!("stop {}: cannot send the halt signal: {e}", ctx.ident());
        }
    }
    support::wait_stopped(ct, deadline)
}

/// Kills the container and waits until LXC reports it stopped.
fn kill_and_wait(ct: &ctl_lxc::Container) -> Result<(), CommandError> {
    if let Err(e) = ct.stop() {
        // It may have stopped by itself in the meantime.
        if ct.state()? != LxcState::Stopped {
            return Err(e.into());
        }
    }
    if !support::wait_stopped(ct, Instant::now() + KILL_GRACE)? {
        bail!(
            "container {} is still {} {} s after it was killed",
            ct.name(),
            ct.state()?,
            KILL_GRACE.as_secs()
        );
    }
    Ok(())
}

/// Shows `message` to the users inside as the `Wall` command does (in this process: it
/// attaches, which the exec placement and `setuid_helpers` allow), with Wall's banner
/// naming the host, bounded by Wall's own bound and by `limit` (the stop's deadline: the
/// helper inside can be stopped by the container's root, and must not delay the stop).
/// A failure does not stop the stop; it is reported on the runner's stderr.
fn wall_best_effort(
    ctx: &RunnerContext,
    ct: &ctl_lxc::Container,
    message: StopMessage<'_>,
    limit: Option<Instant>,
) {
    if limit.is_some_and(|limit| Instant::now() >= limit) {
        eprintln!(
            "stop {}: no time left to show the message inside (timeout 0)",
            ctx.ident()
        );
        return;
    }
    let shown = match message {
        StopMessage::WithBanner(text) => {
            wall::wall_inside(ct, text, Some(&wall::default_banner()), limit)
        }
        StopMessage::AsComposed(text) => wall::wall_text_inside(ct, text, limit),
    };
    if let Err(e) = shown {
        eprintln!("stop {}: cannot show the message inside: {e}", ctx.ident());
    }
}

/// A stop's message to the users inside: ours gets Wall's banner; osctld's frontends send
/// it composed already (banner, blank lines), to be written as it is.
#[derive(Clone, Copy)]
enum StopMessage<'a> {
    WithBanner(&'a str),
    AsComposed(&'a str),
}

/// StopByHalt's and StopRunit's first steps: the container, which must run and not be
/// frozen (they attach), and the message shown (best effort).
fn open_thawed_showing(
    ctx: &RunnerContext,
    message: Option<StopMessage<'_>>,
) -> Result<ctl_lxc::Container, CommandError> {
    let ct = support::open_defined(ctx)?;
    support::require(&ct, ct.name(), support::Need::Thawed)?;
    if let Some(message) = message {
        wall_best_effort(ctx, &ct, message, None);
    }
    Ok(ct)
}

/// Stop the container by running `halt` inside it (`poweroff`, then `shutdown`, where the
/// container has no `halt`, as osctld does).
///
/// Returns once `halt` ran (the container then shuts down by itself); fails with halt's
/// exit status (a halt killed by SIGTERM or SIGKILL counts as done: the shutdown it started
/// kills every process inside). Refuses a stopped or frozen container. The message is
/// bounded as Wall is, and `halt` by [`HALT_TIMEOUT`]: a halt still running then is killed
/// and the command fails saying so.
#[container_command(
    placement = exec,
    setuid_helpers,
    lock = exclusive,
    osctld = stop_by_halt_osctld
)]
pub fn stop_by_halt(
    ctx: &mut RunnerContext,
    #[kwarg(default)] message: Option<String>,
) -> Result<bool, CommandError> {
    let ct = open_thawed_showing(ctx, message.as_deref().map(StopMessage::WithBanner))?;
    match halt_for_stop_by_halt(&ct)? {
        Ok(()) => Ok(true),
        Err(status) => bail!(
            "halt inside container {} {}",
            ctx.id,
            support::describe_status(status)
        ),
    }
}

/// The `{message}` hash osctld's StopByHalt and StopRunit frontends pass.
#[derive(Debug, Deserialize)]
struct OsctldMessage {
    /// Composed by osctld's frontend: written as it is.
    #[serde(default)]
    message: Option<String>,
}

/// Decodes osctld's `[{message}]` and writes the message as it is (a failure only noted
/// on stderr, as osctld ignores it); returns the open, running, thawed container.
fn osctld_message_first(
    ctx: &RunnerContext,
    mut args: ctl_core::Args,
) -> Result<ctl_lxc::Container, CommandError> {
    let opts: OsctldMessage = args.positional("options")?;
    args.finish()?;
    open_thawed_showing(ctx, opts.message.as_deref().map(StopMessage::AsComposed))
}

/// osctld's StopByHalt: `[{message}]`; `null`, or osctld's `halt failed with exit status N`.
fn stop_by_halt_osctld(
    ctx: &mut RunnerContext,
    args: ctl_core::Args,
    _native: ctl_core::RunnerFn,
) -> Result<ctl_core::osctld::Value, CommandError> {
    let ct = osctld_message_first(ctx, args)?;
    match halt_for_stop_by_halt(&ct)? {
        Ok(()) => Ok(ctl_core::osctld::Value::Null),
        Err(status) => Err(CommandError::msg(format!(
            "halt failed with exit status {}",
            status.code().map_or_else(String::new, |c| c.to_string())
        ))),
    }
}

/// StopByHalt's halt (see [`StopByHalt`]): `Ok(Err(status))` when it failed.
fn halt_for_stop_by_halt(
    ct: &ctl_lxc::Container,
) -> Result<Result<(), std::process::ExitStatus>, CommandError> {
    let deadline = Instant::now() + HALT_TIMEOUT;
    let Some((_, status)) = halt_inside(ct, deadline)? else {
        return Err(support::helper_timed_out("halt", HALT_TIMEOUT));
    };
    // The shutdown halt starts ends with init sending SIGTERM, then SIGKILL, to every
    // process inside, and a halt that has not exited yet is among them.
    if matches!(status.signal(), Some(libc::SIGTERM | libc::SIGKILL)) || status.success() {
        return Ok(Ok(()));
    }
    Ok(Err(status))
}

/// Prepare runit inside the container for a stop (`/etc/runit/stopit` executable,
/// `/etc/runit/reboot` mode 0), after an optional wall message (with Wall's banner).
///
/// Does nothing (and succeeds) when `/etc/runit` does not exist inside; creates `stopit`
/// when missing and takes every permission from an existing `reboot` (only its existence
/// can make runit reboot), as osctld does. Refuses a stopped or frozen container. The
/// process doing it inside is killed after [`RUNIT_TIMEOUT`] and the command then fails.
#[container_command(
    placement = exec,
    setuid_helpers,
    lock = exclusive,
    osctld = stop_runit_osctld
)]
pub fn stop_runit(
    ctx: &mut RunnerContext,
    #[kwarg(default)] message: Option<String>,
) -> Result<bool, CommandError> {
    let ct = open_thawed_showing(ctx, message.as_deref().map(StopMessage::WithBanner))?;
    runit_prepare_inside(&ct)
}

/// osctld's StopRunit: `[{message}]`; `null`, or osctld's `runit-stop failed ...`.
fn stop_runit_osctld(
    ctx: &mut RunnerContext,
    args: ctl_core::Args,
    _native: ctl_core::RunnerFn,
) -> Result<ctl_core::osctld::Value, CommandError> {
    let ct = osctld_message_first(ctx, args)?;
    runit_prepare_inside(&ct)
        .map(|_| ctl_core::osctld::Value::Null)
        .map_err(|e| CommandError::msg(format!("runit-stop failed with exit status 1: {e}")))
}

fn runit_prepare_inside(ct: &ctl_lxc::Container) -> Result<bool, CommandError> {
    let deadline = Instant::now() + RUNIT_TIMEOUT;
    support::attach_and_report(ct, "the runit preparation", deadline, &|| {
        prepare_runit().map(|()| String::new())
    })??;
    Ok(true)
}

/// Runs inside the container (attached, root in its user namespace).
fn prepare_runit() -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt;
    let dir = Path::new("/etc/runit");
    if !dir.is_dir() {
        return Ok(());
    }
    for (name, mode) in [("stopit", 0o100), ("reboot", 0o000)] {
        let path = dir.join(name);
        // As osctld: both are truncated (`File.new(path, 'w', mode)`); a missing `stopit`
        // is created, a missing `reboot` stays missing (only its existence makes runit
        // reboot). Never following a link, never blocking on a FIFO.
        let file = match std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(&path)
        {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && name == "reboot" => continue,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(&path)
                .map_err(|e| format!("cannot create {}: {e}", path.display()))?,
            Err(e) => return Err(format!("cannot open {}: {e}", path.display())),
        };
        let kind = file
            .metadata()
            .map_err(|e| format!("cannot stat {}: {e}", path.display()))?
            .file_type();
        if !kind.is_file() || kind.is_fifo() {
            return Err(format!("{} is not a regular file", path.display()));
        }
        // The umask may have narrowed the mode of a new file; an existing one gets it too.
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(|e| format!("cannot chmod {mode:o} {}: {e}", path.display()))?;
    }
    Ok(())
}
