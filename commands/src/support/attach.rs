//! Attaching helpers and programs into the container, always through
//! [`ctl_lxc::Container::attach_isolated`] with this runner's [`isolation`]; liblxc's start
//! and execute in a dumpable worker.

use std::fs::File;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Instant;

use ctl_core::{CommandError, RunnerContext};
use ctl_lxc::isolated::DumpableWorker;
use ctl_lxc::{AttachOptions, AttachProgram, EnvPolicy, Isolation};

use super::status::helper_timed_out;

/// What the forked child of every attach and dumpable worker of a ctl runner closes before
/// it calls liblxc: the runner's reply pipe and envelope socket
/// (`ctl_core::runner::seal_fds_for_attach`); every other fd above 2 close-on-exec. The
/// container's lock, when the frontend handed it over (`lock = until_running`), is held
/// by the attaching child for the attach and closed once the program is attached
/// (`ctl_core::runner::release_container_lock`, see `ctl_core::lock`).
pub fn isolation() -> Isolation {
    Isolation::new(ctl_core::runner::seal_fds_for_attach).with_release(
        ctl_core::runner::holds_container_lock,
        ctl_core::runner::release_container_lock,
    )
}

/// [`ctl_lxc::Container::attach_isolated`] with the runner's [`isolation`]: attaches
/// `program` and waits for it until `deadline` (killing it then: `Ok(None)`). Every attach
/// of the commands goes through here (see `ctl_lxc::isolated` for why).
pub fn attach_isolated(
    ct: &ctl_lxc::Container,
    opts: &AttachOptions,
    program: AttachProgram<'_>,
    deadline: Option<Instant>,
) -> Result<Option<ExitStatus>, CommandError> {
    Ok(ct.attach_isolated(&isolation(), opts, program, deadline)?)
}

/// Attach options for short helper programs: stdio from `stdio` (or `/dev/null`), `/` as
/// the working directory, osctld's clean environment, root inside.
pub fn quiet_attach_options(
    null: &File,
    stdout: Option<std::os::fd::BorrowedFd<'_>>,
    stderr: Option<std::os::fd::BorrowedFd<'_>>,
) -> AttachOptions {
    use std::os::fd::AsFd;
    let out = stdout.unwrap_or(null.as_fd());
    let err = stderr.unwrap_or(null.as_fd());
    AttachOptions {
        cwd: Some(PathBuf::from("/")),
        ..AttachOptions::default()
    }
    .stdio(null, out, err)
}

/// Opens `/dev/null` for reading and writing.
pub fn dev_null() -> Result<File, CommandError> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| CommandError::msg(format!("cannot open /dev/null: {e}")))
}

/// Runs `argv` inside the running container (root, clean environment, `/` as cwd, stdio on
/// `/dev/null`), and waits for it until `deadline` (killing it then: `Ok(None)`). Needs the
/// exec placement (attach enters the container's cgroups).
///
/// The helper never gets the call's stdio: it is the container's program (its root can
/// replace `halt`), and the call's fds are the caller's files (a daemon's log, its journal
/// stream) that it could truncate or write into. Only Exec and Runscript hand the call's
/// stdio to what they run: that program is what the caller asked for.
pub fn attach_wait(
    ct: &ctl_lxc::Container,
    argv: &[&str],
    deadline: Option<Instant>,
) -> Result<Option<ExitStatus>, CommandError> {
    let null = dev_null()?;
    let opts = quiet_attach_options(&null, None, None);
    attach_isolated(ct, &opts, AttachProgram::Command(argv), deadline)
}

/// Runs `work` in a process attached to the container (root inside, osctld's clean
/// environment, no stdio but the runner's stderr) and returns what it reported: its result
/// or its error ([`ctl_lxc::Container::run_attached_reporting`]); an error when it ended
/// without a report.
///
/// The process lives in the container's pid namespace, so the container's root can stop
/// it: at `deadline` it is killed and reaped, and the error says that `what` (e.g. "wall")
/// did not finish.
pub fn attach_and_report(
    ct: &ctl_lxc::Container,
    what: &str,
    deadline: Instant,
    work: &dyn Fn() -> Result<String, String>,
) -> Result<Result<String, CommandError>, CommandError> {
    let started = Instant::now();
    let stdio = ProgramStdio::null()?;
    let mut opts = attach_options(&stdio, ctl_lxc::SYSTEM_PATH);
    // Whatever the work prints goes where the runner's diagnostics go.
    opts.stderr = 2;
    let report = ct
        .run_attached_reporting(&isolation(), &opts, deadline, work)?
        .ok_or_else(|| helper_timed_out(what, deadline.saturating_duration_since(started)))?;
    Ok(report.map_err(CommandError::msg))
}

/// Runs `f` in a dumpable worker and returns what it returned
/// ([`ctl_lxc::isolated::in_dumpable_worker`] with the runner's [`isolation`]): for
/// liblxc's start and execute, which need a dumpable caller (a runner is not one).
pub fn in_dumpable_worker(
    what: &str,
    f: &dyn Fn() -> Result<i32, CommandError>,
) -> Result<i32, CommandError> {
    Ok(ctl_lxc::isolated::in_dumpable_worker(
        &isolation(),
        what,
        f,
    )?)
}

/// [`in_dumpable_worker`] without waiting: `f` runs in the worker while this returns.
pub fn start_dumpable_worker(
    what: &str,
    f: &dyn Fn() -> Result<i32, CommandError>,
) -> Result<DumpableWorker, CommandError> {
    Ok(DumpableWorker::start(&isolation(), what, f)?)
}

/// The three fds the program gets: the call's, or `/dev/null` for those it did not give
/// (never the runner's own 0, 1, 2: the envelope and the runner's diagnostics).
pub struct ProgramStdio {
    _null: File,
    pub fds: [RawFd; 3],
}

impl ProgramStdio {
    pub fn of(ctx: &RunnerContext) -> Result<ProgramStdio, CommandError> {
        let null = File::options()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map_err(|e| CommandError::msg(format!("cannot open /dev/null: {e}")))?;
        let pick = |fd: Option<BorrowedFd<'_>>| fd.map_or(null.as_raw_fd(), |fd| fd.as_raw_fd());
        let fds = [
            pick(ctx.stdin_fd()),
            pick(ctx.stdout_fd()),
            pick(ctx.stderr_fd()),
        ];
        Ok(ProgramStdio { _null: null, fds })
    }

    /// Only `/dev/null` (for helpers whose output nobody reads).
    pub fn null() -> Result<ProgramStdio, CommandError> {
        let null = File::options()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map_err(|e| CommandError::msg(format!("cannot open /dev/null: {e}")))?;
        let fd = null.as_raw_fd();
        Ok(ProgramStdio {
            _null: null,
            fds: [fd, fd, fd],
        })
    }
}

/// The options of every attach of these commands: root inside, osctld's clean environment
/// with `path` as `PATH`, `/` as working directory.
pub fn attach_options(stdio: &ProgramStdio, path: &str) -> AttachOptions {
    AttachOptions {
        stdin: stdio.fds[0],
        stdout: stdio.fds[1],
        stderr: stdio.fds[2],
        env: EnvPolicy::clean().var("PATH", path),
        cwd: Some(PathBuf::from("/")),
        ..AttachOptions::default()
    }
}
