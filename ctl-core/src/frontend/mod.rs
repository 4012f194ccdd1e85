//! The frontend half: runs in the daemon, as root, and starts the runner.
//!
//! All three placements use the same mechanism (see `docs/design.md`): the runner binary
//! is spawned with `posix_spawn` and applies the placement that travels in the envelope
//! to itself. They differ only in what that placement says (cgroups and rlimits for exec,
//! none for fork; the container's user, or root for [`Placement::ForkAsRoot`]). A cold
//! exec runner is started directly in its cgroup v2 entry cgroup where the kernel allows
//! it (`clone3` with `CLONE_INTO_CGROUP`, see [`Launcher::set_spawn_into_cgroup`]), and
//! then does not move itself in that hierarchy. How runners are started (which binary,
//! those switches, the `cgroup.procs` files kept open) is a [`Launcher`]'s.

#[cfg(feature = "tokio")]
pub mod asynchronous;
pub mod cancel;
mod clone3;
pub(crate) mod exchange;
mod launcher;
mod procs_files;
mod runner_path;
mod spawn;
pub mod warm;

use std::os::fd::{AsFd, BorrowedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::unistd::pipe2;
use serde_json::Value;

pub use clone3::spawn_into_cgroup_available;
pub use launcher::Launcher;
pub use procs_files::{MAX_AGE as CGROUP_FILES_MAX_AGE, MAX_FILES as CGROUP_FILES_MAX};
pub(crate) use runner_path::mark_multicall;
pub use runner_path::{RUNNER_ENV, STATIC_RUNNER_ENV, STATIC_RUNNER_NAME};

use crate::args::Args;
use crate::call::{Call, Stdio};
use crate::cgroup;
use crate::command::{Command, CommandSpec, Placement};
use crate::envelope::{
    EntryCgroup, Envelope, Extension, PlacementSpec, UserSpec, PROTOCOL_VERSION,
};
use crate::error::{Error, ErrorKind, ProtocolError};
use crate::reply::{ProtocolRefusal, Reply};
pub use warm::WarmPool;

use exchange::{converse, Channels, ChildGuard, Ending};

/// The fd numbers the runner sees (ours; an osctld runner takes whatever the envelope says).
const CHILD_RETURN_FD: RawFd = 3;

/// [`Launcher::set_runner_path`] on the [global](Launcher::global) launcher.
pub fn set_runner_path(path: impl Into<PathBuf>) {
    Launcher::global().set_runner_path(path)
}

/// [`Launcher::runner_path`] of the [global](Launcher::global) launcher.
pub fn runner_path() -> std::io::Result<PathBuf> {
    Launcher::global().runner_path()
}

/// [`Launcher::set_static_runner_path`] on the [global](Launcher::global) launcher.
pub fn set_static_runner_path(path: Option<PathBuf>) {
    Launcher::global().set_static_runner_path(path)
}

/// [`Launcher::static_runner_path`] of the [global](Launcher::global) launcher.
pub fn static_runner_path(runner: &Path) -> Option<PathBuf> {
    Launcher::global().static_runner_path(runner)
}

/// [`Launcher::set_spawn_into_cgroup`] on the [global](Launcher::global) launcher.
pub fn set_spawn_into_cgroup(enabled: bool) {
    Launcher::global().set_spawn_into_cgroup(enabled)
}

/// [`Launcher::set_keep_cgroup_files`] on the [global](Launcher::global) launcher.
pub fn set_keep_cgroup_files(enabled: bool) {
    Launcher::global().set_keep_cgroup_files(enabled)
}

/// [`Launcher::forget_cgroup_files`] on the [global](Launcher::global) launcher.
pub fn forget_cgroup_files() {
    Launcher::global().forget_cgroup_files()
}

/// Runs `C`'s runner half for this call and decodes its output.
pub fn call_runner<C: Command>(call: &Call<'_>, args: Args) -> Result<C::Output, Error> {
    let locked = lock_for(call, C::SPEC)?;
    let call = locked.as_ref().unwrap_or(call);
    let prepared = Prepared::new(call, C::SPEC)?;
    let value = run_prepared(call, &prepared, args)?;
    serde_json::from_value(value).map_err(|e| {
        Error::protocol(
            C::SPEC.name,
            // The binary that answered (the static runner, when it was the one).
            prepared.path.clone(),
            ProtocolError::BadOutput {
                expected: std::any::type_name::<C::Output>(),
                detail: e.to_string(),
            },
        )
    })
}

/// Runs the runner half of the command `spec` with already-encoded arguments and returns
/// its raw JSON output. This is what every generated `runner()` calls; daemons that
/// dispatch by name (e.g. a generic RPC) can call it directly.
pub fn invoke(call: &Call<'_>, spec: &'static CommandSpec, args: Args) -> Result<Value, Error> {
    let locked = lock_for(call, spec)?;
    let call = locked.as_ref().unwrap_or(call);
    let prepared = Prepared::new(call, spec)?;
    run_prepared(call, &prepared, args)
}

/// [`invoke`] once the call is prepared.
fn run_prepared(call: &Call<'_>, prepared: &Prepared, args: Args) -> Result<Value, Error> {
    // A terminal among the call's stdio never reaches the runner: pipes instead, relayed
    // by threads of this process for the duration of the call.
    let relay = crate::terminal::StdioRelay::start(call)
        .map_err(prepared.setup("relaying the caller's terminal"))?;
    let relayed;
    let call = match &relay {
        Some(relay) => {
            relayed = relay.apply(call);
            &relayed
        }
        None => call,
    };
    let record = crate::observe::CallRecord::start(
        prepared.command,
        call.ct,
        prepared.placement,
        call.warm.is_some(),
    );
    let entered = record.span().enter();
    let result = match call.warm {
        Some(pool) => warm::invoke(pool, call, prepared, args, &record),
        None => invoke_cold(call, prepared, args, &record),
    };
    drop(entered);
    record.finish(&result);
    if let Some(relay) = relay {
        relay.finish();
    }
    result
}

/// The call to run `spec` with: `None` (use the call as it is) when it runs under a lock
/// already, is [unlocked](Call::unlocked), or the command takes none; else a copy that
/// holds the container's lock as the command declares, with what is left of its deadline
/// after the wait ([`crate::lock`]).
pub(crate) fn lock_for<'a>(
    call: &Call<'a>,
    spec: &'static CommandSpec,
) -> Result<Option<Call<'a>>, Error> {
    lock_as(call, spec.name, spec.lock)
}

/// [`lock_for`] with the command's name and lock mode.
pub(crate) fn lock_as<'a>(
    call: &Call<'a>,
    command: &'static str,
    mode: crate::lock::LockMode,
) -> Result<Option<Call<'a>>, Error> {
    if !needs_lock(call, command, mode)? {
        return Ok(None);
    }
    let started = std::time::Instant::now();
    let lock = crate::lock::ContainerLock::acquire(call, command, mode);
    crate::observe::lock_waited(command, mode, started.elapsed(), &lock);
    lock?
        .map(|lock| locked_call(call, command, lock, started))
        .transpose()
}

/// Whether a call of `command` must take the container's lock in `mode` first; an error
/// when it runs under a lock that does not cover `mode` (a changer under a shared lock).
pub(crate) fn needs_lock(
    call: &Call<'_>,
    command: &str,
    mode: crate::lock::LockMode,
) -> Result<bool, Error> {
    use crate::lock::LockMode;
    if call.unlocked || mode == LockMode::None {
        return Ok(false);
    }
    match &call.lock {
        None => Ok(true),
        Some(held) if held.mode() == LockMode::Exclusive || mode != LockMode::Exclusive => {
            Ok(false)
        }
        Some(held) => Err(Error::arguments(
            command,
            format!(
                "changes the container but runs under a {} lock of it; an exclusive one is \
                 needed",
                held.mode()
            ),
        )),
    }
}

/// Below this, what a lock wait left of a call's deadline is no time to run it in: the
/// call ends as [`ErrorKind::Busy`] instead of starting a runner only to kill it.
const LEAST_DEADLINE_LEFT: std::time::Duration = std::time::Duration::from_millis(10);

/// `call` under `lock`, taken since `started`: the wait counts against the deadline.
pub(crate) fn locked_call<'a>(
    call: &Call<'a>,
    command: &str,
    lock: std::sync::Arc<crate::lock::ContainerLock>,
    started: std::time::Instant,
) -> Result<Call<'a>, Error> {
    let waited = started.elapsed();
    let left = call.deadline.map(|d| d.saturating_sub(waited));
    if left.is_some_and(|left| left < LEAST_DEADLINE_LEFT) {
        return Err(Error::new(
            command,
            ErrorKind::Busy {
                container: call.ct.ident(),
                mode: lock.mode(),
                waited,
                holder: None,
            },
        ));
    }
    let mut locked = call.clone().under_lock(lock);
    locked.deadline = left;
    Ok(locked)
}

/// Runs the command registered as `name` (any form a runner accepts: `GetHostname`,
/// `get_hostname`, `OsCtld::ContainerControl::Commands::GetHostname`) through its frontend,
/// with `args` as they travel in an envelope, and returns its output as JSON: what a daemon
/// that dispatches by name (an RPC) calls. Unlike [`invoke`], which starts the runner half
/// directly, this runs what `Command::run_with` runs: a frontend-only command (Syscmd), and
/// frontends that do work of their own (GetHostname opens the container's namespace,
/// Runscript copies a script from the call's stdin) work too.
pub fn invoke_by_name(call: &Call<'_>, name: &str, args: Args) -> Result<Value, Error> {
    let refuse = |message: String| Error::arguments(name, message);
    match crate::registry::Registry::find(name) {
        Ok(Some(registration)) => (registration.frontend)(call, args),
        Ok(None) => Err(refuse(format!("unknown command {name:?}"))),
        Err(e) => Err(refuse(e.to_string())),
    }
}

/// What every runner start of one call needs, computed once.
#[derive(Clone)]
pub(crate) struct Prepared {
    pub command: &'static str,
    pub placement: Placement,
    pub snake_name: &'static str,
    pub path: PathBuf,
    pub spec: PlacementSpec,
    pub env: Vec<String>,
    pub title: String,
}

impl Prepared {
    fn new(call: &Call<'_>, spec: &'static CommandSpec) -> Result<Prepared, Error> {
        let command = spec.name;
        let Some(placement) = call.placement.or(spec.placement) else {
            return Err(Error::arguments(
                command,
                "a frontend-only command has no runner half",
            ));
        };
        let path = match &call.runner {
            Some(p) => p.clone(),
            None => {
                let launcher = call.launcher_or_global();
                let runner = launcher
                    .runner_path()
                    .map_err(|source| Error::spawn(command, PathBuf::from("<unset>"), source))?;
                // A command declared `static_runner` (it never uses liblxc) runs in the
                // statically linked runner, which starts ~95 µs faster here (no dynamic
                // loader).
                match spec
                    .static_runner
                    .then(|| launcher.static_runner_path(&runner))
                    .flatten()
                {
                    Some(static_runner) => static_runner,
                    None => runner,
                }
            }
        };
        let ct = call.ct;
        let user = UserSpec {
            name: ct.user.clone(),
            ugid: ct.ugid,
        };
        let placement_spec = match placement {
            Placement::Exec => {
                let entry = ct.entry_cgroup();
                cgroup::validate_relative(entry)
                    .map_err(setup_error(command, "checking the entry cgroup path"))?;
                // Only where the layout needs it (osctld's): the default layout's envelope
                // stays as it was.
                let container_cgroup = if same_cgroup(entry, &ct.cgroup_path) {
                    None
                } else {
                    cgroup::validate_relative(&ct.cgroup_path)
                        .map_err(setup_error(command, "checking the container's cgroup path"))?;
                    Some(ct.cgroup_path.trim_matches('/').to_owned())
                };
                PlacementSpec {
                    rlimits: ct.rlimits.clone(),
                    cgroup_procs: cgroup::procs_files(entry)
                        .into_iter()
                        .map(|p| p.to_string_lossy().into_owned())
                        .collect(),
                    create_cgroup: Some(EntryCgroup {
                        relative: entry.to_owned(),
                        ugid: ct.ugid,
                    }),
                    container_cgroup,
                    born_in: Vec::new(),
                    procs_fds: Vec::new(),
                    user: Some(user),
                    setuid_helpers: spec.setuid_helpers,
                    own_process_group: false,
                }
            }
            Placement::Fork => PlacementSpec {
                user: Some(user),
                setuid_helpers: spec.setuid_helpers,
                ..Default::default()
            },
            Placement::ForkAsRoot => PlacementSpec {
                user: None,
                setuid_helpers: spec.setuid_helpers,
                ..Default::default()
            },
        };
        Ok(Prepared {
            command,
            placement,
            snake_name: spec.snake_name,
            path,
            spec: placement_spec,
            env: runner_environment(ct, placement),
            title: format!("ctl: {}:{} runner:{}", ct.pool, ct.id, spec.snake_name),
        })
    }

    pub fn setup(&self, what: &'static str) -> impl FnOnce(std::io::Error) -> Error + '_ {
        setup_error(self.command, what)
    }
}

/// Whether two relative cgroup paths name the same cgroup (`a/b` and `/a/b/` do).
fn same_cgroup(a: &str, b: &str) -> bool {
    a.trim_matches('/') == b.trim_matches('/')
}

fn setup_error(command: &'static str, what: &'static str) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::setup(command, what, source)
}

/// The command's stdio as the runner sees it: fd numbers from 4 on, in order.
pub(crate) struct StdioPlan<'a> {
    pub fds: Vec<(BorrowedFd<'a>, RawFd)>,
    pub stdin: Option<RawFd>,
    pub stdout: Option<RawFd>,
    pub stderr: Option<RawFd>,
}

impl<'a> StdioPlan<'a> {
    pub fn new(call: &Call<'a>) -> StdioPlan<'a> {
        // SAFETY: fds 1 and 2 of the process exist for its whole life (std opens /dev/null
        // there if they were closed at startup); we only borrow them for the spawn.
        let inherited_out = unsafe { BorrowedFd::borrow_raw(1) };
        // SAFETY: as above, fd 2.
        let inherited_err = unsafe { BorrowedFd::borrow_raw(2) };
        let mut next = CHILD_RETURN_FD + 1;
        let stdin = assign_fd(call.stdin, &mut next);
        let stdout = assign_fd(resolve_stdio(call.stdout, inherited_out), &mut next);
        let stderr = assign_fd(resolve_stdio(call.stderr, inherited_err), &mut next);
        StdioPlan {
            fds: stdin
                .iter()
                .chain(&stdout)
                .chain(&stderr)
                .copied()
                .collect(),
            stdin: stdin.map(|(_, n)| n),
            stdout: stdout.map(|(_, n)| n),
            stderr: stderr.map(|(_, n)| n),
        }
    }
}

/// The envelope of one call; `ctl` is left for the caller to fill.
pub(crate) fn envelope_for(
    call: &Call<'_>,
    prepared: &Prepared,
    args: Args,
    stdio: &StdioPlan<'_>,
) -> Envelope {
    let ct = call.ct;
    Envelope {
        name: prepared.command.to_owned(),
        pool: ct.pool.clone(),
        id: ct.id.clone(),
        lxc_home: ct.lxc_home.to_string_lossy().into_owned(),
        user_home: ct.home.to_string_lossy().into_owned(),
        log_file: Some(ct.log_file.to_string_lossy().into_owned()),
        args: args.positional,
        kwargs: args.named,
        return_fd: CHILD_RETURN_FD,
        stdin: stdio.stdin,
        stdout: stdio.stdout,
        stderr: stdio.stderr,
        ctl: None,
    }
}

fn invoke_cold(
    call: &Call<'_>,
    prepared: &Prepared,
    args: Args,
    record: &crate::observe::CallRecord,
) -> Result<Value, Error> {
    let Started {
        mut child,
        channels,
        envelope,
    } = start_cold(call, prepared, args)?;
    record.spawned(child.pid.as_raw());
    let outcome = converse(
        &mut child,
        channels,
        &envelope,
        call.deadline,
        call.max_reply,
        call.cancel.as_deref(),
    )
    .map_err(prepared.setup("talking to the runner"))?;
    record.conversed(&outcome.timings);
    finish(prepared, outcome, call)
}

/// A cold runner just started: the guard that kills and reaps it, the frontend's ends of
/// its channels, the envelope to send.
pub(crate) struct Started {
    pub child: ChildGuard,
    pub channels: Channels,
    pub envelope: Vec<u8>,
}

/// Starts a cold runner for the call (nothing here waits for it: the conversation is the
/// caller's, blocking or async).
pub(crate) fn start_cold(
    call: &Call<'_>,
    prepared: &Prepared,
    args: Args,
) -> Result<Started, Error> {
    if call.is_cancelled() {
        return Err(Error::new(prepared.command, ErrorKind::Cancelled));
    }
    let (env_parent, env_child) = socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| prepared.setup("creating the envelope socket")(e.into()))?;
    let (reply_r, reply_w) =
        pipe2(OFlag::O_CLOEXEC).map_err(|e| prepared.setup("creating the reply pipe")(e.into()))?;
    let (stderr_r, stderr_w) = pipe2(OFlag::O_CLOEXEC)
        .map_err(|e| prepared.setup("creating the stderr pipe")(e.into()))?;

    // The runner's fd table: 0 envelope, 1 and 2 its own diagnostics, 3 the reply, then the
    // command's stdio in order.
    let stdio = StdioPlan::new(call);
    let mut fds: Vec<(BorrowedFd<'_>, RawFd)> = vec![
        (env_child.as_fd(), 0),
        (stderr_w.as_fd(), 1),
        (stderr_w.as_fd(), 2),
        (reply_w.as_fd(), CHILD_RETURN_FD),
    ];
    fds.extend(stdio.fds.iter().copied());
    // The container's lock goes with a command that holds it only until its program runs
    // (`crate::lock`): from here on the runner holds it, not this process.
    let lock_fd = call.lock.as_ref().and_then(|lock| lock.for_runner());
    let lock_child_fd = lock_fd.as_ref().map(|fd| {
        let n = fds.iter().map(|&(_, n)| n).max().unwrap_or(CHILD_RETURN_FD) + 1;
        fds.push((fd.as_fd(), n));
        n
    });
    let mut placement = prepared.spec.clone();
    // Every runner leads a session (and so a process group) of its own, whatever the call
    // says: it must have no controlling terminal (`runner::session`). A deadline or an
    // early return kills that whole group.
    placement.own_process_group = true;

    // Born in the cgroup v2 entry cgroup when it exists and the kernel can (clone3), else
    // posix_spawn; the envelope then tells the runner where it need not move itself.
    let launcher = call.launcher_or_global();
    let birth = clone3::birth_cgroup(&placement, launcher.spawns_into_cgroup());
    // The `cgroup.procs` files of the hierarchies the runner moves itself in, kept open
    // across calls, follow the stdio fds.
    let kept = if placement.cgroup_procs.is_empty() {
        Vec::new()
    } else {
        launcher.checkout_cgroup_files(
            placement
                .cgroup_procs
                .iter()
                .map(String::as_str)
                .filter(|p| birth.as_ref().map_or(true, |b| b.procs != *p)),
            spawn::FIRST_SAFE_SOURCE,
        )
    };
    if !kept.is_empty() {
        let mut next_fd = fds.iter().map(|&(_, n)| n).max().unwrap_or(CHILD_RETURN_FD) + 1;
        placement.procs_fds = placement
            .cgroup_procs
            .iter()
            .map(|path| {
                // Child fds stay below the spawn's sources; a host with more hierarchies
                // than that leaves the rest to the runner's paths.
                if next_fd >= spawn::FIRST_SAFE_SOURCE {
                    return None;
                }
                let (_, file) = kept.iter().find(|(p, _)| p == path)?;
                fds.push((file.as_fd(), next_fd));
                next_fd += 1;
                Some(next_fd - 1)
            })
            .collect();
    }
    let request = spawn::SpawnRequest {
        path: &prepared.path,
        argv0: &prepared.title,
        env: &prepared.env,
        fds: &fds,
        own_process_group: false,
    };
    let spawned = match &birth {
        Some(birth) => spawn::spawn_into_cgroup(&request, &birth.dir),
        None => spawn::spawn(&request).map(|pid| (pid, spawn::Born::Outside)),
    };
    let (pid, born) =
        spawned.map_err(|source| Error::spawn(prepared.command, prepared.path.clone(), source))?;
    // The child has its copies; ours stay kept (or close now if they were dropped from the
    // kept set meanwhile).
    drop(fds);
    drop(kept);
    drop(lock_fd);
    if let (Some(birth), spawn::Born::InCgroup) = (birth, born) {
        placement.born_in.push(birth.procs);
    }
    // Encoded while the runner is still starting (exec, dynamic loader).
    let mut envelope = envelope_for(call, prepared, args, &stdio);
    envelope.ctl = Some(Extension {
        version: PROTOCOL_VERSION,
        placement: Some(placement),
        parent_pid: Some(std::process::id() as i32),
        warm: None,
        container_path: call.container().container_path.clone(),
        lock_fd: lock_child_fd,
    });
    let envelope = envelope.to_vec();
    drop((env_child, reply_w, stderr_w));
    let child =
        ChildGuard::watch(pid, true).map_err(prepared.setup("opening a pidfd for the runner"))?;
    Ok(Started {
        child,
        channels: Channels {
            envelope: Some(env_parent),
            reply: reply_r,
            stderr: stderr_r,
        },
        envelope,
    })
}

/// Turns the outcome of a conversation into the call's result.
pub(crate) fn finish(
    prepared: &Prepared,
    outcome: exchange::Outcome,
    call: &Call<'_>,
) -> Result<Value, Error> {
    let stderr_text = String::from_utf8_lossy(&outcome.stderr_tail).into_owned();
    if !stderr_text.trim().is_empty() {
        tracing::debug!(command = prepared.command, runner = %prepared.path.display(), stderr = %stderr_text.trim_end(), "runner stderr");
    }
    interpret(prepared.command, &prepared.path, outcome, stderr_text, call)
}

fn interpret(
    command: &str,
    path: &Path,
    outcome: exchange::Outcome,
    stderr: String,
    call: &Call<'_>,
) -> Result<Value, Error> {
    let fail = |kind| Error::new(command, kind);
    let protocol = |problem| Error::protocol(command, path.to_owned(), problem);
    match outcome.ending {
        Ending::TimedOut => return Err(Error::timeout(command, call.deadline.unwrap_or_default())),
        Ending::Cancelled => return Err(fail(ErrorKind::Cancelled)),
        Ending::ReplyTooLarge => {
            return Err(protocol(ProtocolError::ReplyTooLarge {
                limit: call.max_reply,
            }))
        }
        Ending::Exited => {}
    }
    let line = match outcome.line {
        Some(line) => line,
        // Ruby's readline (osctld) accepts a last line without its newline; so do we, if it
        // is a whole reply.
        None if !outcome.partial.is_empty() => match Reply::from_line(&outcome.partial) {
            Ok(_) => outcome.partial,
            Err(_) => {
                return Err(protocol(ProtocolError::PartialReply {
                    status: outcome.status,
                }))
            }
        },
        None => {
            return Err(fail(ErrorKind::RunnerFailed {
                path: path.to_owned(),
                status: outcome.status,
                stderr,
            }))
        }
    };
    match Reply::from_line(&line) {
        Ok(Reply::Ok(v)) => Ok(v),
        Ok(Reply::Failed {
            message,
            protocol: None,
        }) => Err(fail(ErrorKind::Command { message })),
        Ok(Reply::Failed {
            protocol: Some(ProtocolRefusal::Version { runner, .. }),
            ..
        }) => Err(fail(ErrorKind::VersionMismatch {
            path: path.to_owned(),
            runner,
            // What this frontend speaks, not what the runner says it was told.
            frontend: crate::envelope::PROTOCOL_VERSION,
        })),
        Ok(Reply::Failed {
            message,
            protocol: Some(_),
        }) => Err(protocol(ProtocolError::Refused(message))),
        Err(detail) => {
            let excerpt: String = String::from_utf8_lossy(&line).chars().take(80).collect();
            Err(protocol(ProtocolError::MalformedReply {
                detail: detail.to_string(),
                excerpt,
            }))
        }
    }
}

/// The runner's whole environment: exactly these variables, nothing of the daemon's.
/// osctld's: `HOME`, `USER` and `XDG_RUNTIME_DIR` ([`Container::runtime_dir`]) of the
/// container's user, plus the runner's `PATH` ([`Container::runner_path`]).
///
/// [`Container::runtime_dir`]: crate::Container::runtime_dir
/// [`Container::runner_path`]: crate::Container::runner_path
pub fn runner_environment(ct: &crate::Container, placement: Placement) -> Vec<String> {
    let path = format!("PATH={}", ct.runner_path());
    match placement {
        Placement::Exec | Placement::Fork => {
            let home = ct.home.to_string_lossy();
            vec![
                path,
                format!("HOME={home}"),
                format!("USER={}", ct.user),
                format!("LOGNAME={}", ct.user),
                format!("XDG_RUNTIME_DIR={}", ct.runtime_dir().to_string_lossy()),
            ]
        }
        Placement::ForkAsRoot => vec![
            path,
            "HOME=/root".to_owned(),
            "USER=root".to_owned(),
            "LOGNAME=root".to_owned(),
        ],
    }
}

fn resolve_stdio<'a>(stdio: Stdio<'a>, inherit: BorrowedFd<'a>) -> Option<BorrowedFd<'a>> {
    match stdio {
        Stdio::Inherit => Some(inherit),
        Stdio::Null => None,
        Stdio::Fd(fd) => Some(fd),
    }
}

/// Gives the next child fd number to `fd`, if there is one.
fn assign_fd<'a>(fd: Option<BorrowedFd<'a>>, next: &mut RawFd) -> Option<(BorrowedFd<'a>, RawFd)> {
    fd.map(|fd| {
        let n = *next;
        *next += 1;
        (fd, n)
    })
}
