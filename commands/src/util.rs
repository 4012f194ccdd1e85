//! Small helpers shared by the commands.

use ctl_core::{CommandError, RunnerContext};

/// Opens the command's container through liblxc.
pub(crate) fn open(ctx: &RunnerContext) -> Result<ctl_lxc::Container, CommandError> {
    Ok(ctl_lxc::Container::open(&ctx.id, &ctx.lxc_home)?)
}

// ---------------------------------------------------------------------------------------
// Life-cycle helpers (Start, Freeze, Stop, ...). Runner side unless noted "frontend".
// ---------------------------------------------------------------------------------------

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use ctl_lxc::{AttachOptions, AttachProgram, Pid, State as LxcState};

/// How often state and child polls look again.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// Runner side, before liblxc starts the container (Start; Exec, ExecTerminal and
/// Runscript with `run`): moves this runner from its entry cgroup into the container's
/// cgroup in every hierarchy, where the two differ (osctld's layout, where the entry is
/// `<cgroup_path>/lxc.monitor.<id>`).
///
/// LXC 5 creates the payload (`lxc.payload.<id>`) and its monitor's cgroup
/// (`lxc.monitor.<id>`, or `-1`, `-2`... when that name is taken, as it is by osctld's
/// entry) below the cgroup of the process that starts the container, and refuses
/// `lxc.cgroup.dir` settings that walk upwards. Started from the entry, the container
/// would nest below it, where neither osctld nor our frontends look for it. osctld moves
/// its starting process the same way (its `ct_wrapper_start`). Nothing happens in the
/// default layout (entry = container cgroup) or when the envelope did not say (osctld's
/// own). The runner stays there until it exits; the forked worker that runs liblxc
/// inherits the cgroups.
pub(crate) fn enter_container_cgroup_to_start(ctx: &RunnerContext) -> Result<(), CommandError> {
    let (Some(container), Some(entry)) = (&ctx.container_cgroup, &ctx.entry_cgroup) else {
        return Ok(());
    };
    if container.trim_matches('/') == entry.trim_matches('/') {
        return Ok(());
    }
    ctl_core::cgroup::enter(container).map_err(|e| {
        CommandError::msg(format!(
            "cannot move into the container's cgroup {container} to start it: {e}"
        ))
    })
}

/// Opens the container and checks that it exists (has a config), so that a typo in the
/// id is not reported as "not running".
pub(crate) fn open_defined(ctx: &RunnerContext) -> Result<ctl_lxc::Container, CommandError> {
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

/// The container's state; an error naming it when it is stopped.
pub(crate) fn require_running(ct: &ctl_lxc::Container) -> Result<LxcState, CommandError> {
    let state = ct.state()?;
    if state == LxcState::Stopped {
        return Err(CommandError::msg(format!(
            "container {} is not running",
            ct.name()
        )));
    }
    Ok(state)
}

/// [`require_running`], and also not frozen: commands that attach into the container
/// would hang in a frozen one.
pub(crate) fn require_running_thawed(ct: &ctl_lxc::Container) -> Result<LxcState, CommandError> {
    let state = require_running(ct)?;
    if matches!(state, LxcState::Frozen | LxcState::Freezing) {
        return Err(CommandError::msg(format!(
            "container {} is {state}; unfreeze it first",
            ct.name()
        )));
    }
    Ok(state)
}

/// Polls until the container is stopped or `deadline` passes; returns whether it stopped.
pub(crate) fn wait_stopped(
    ct: &ctl_lxc::Container,
    deadline: Instant,
) -> Result<bool, CommandError> {
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

/// Opens the container's log file for reading: it lies in the container user's LXC home,
/// and that user may have put a symlink, a FIFO (which would block the read until the
/// deadline) or a device there. Not followed, not blocking, a regular file only; the error
/// names the path and what it found.
fn open_log(log_file: &Path) -> Result<File, String> {
    let fd = nix::fcntl::open(
        log_file,
        nix::fcntl::OFlag::O_RDONLY
            | nix::fcntl::OFlag::O_NOFOLLOW
            | nix::fcntl::OFlag::O_NONBLOCK
            | nix::fcntl::OFlag::O_NOCTTY
            | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| match e {
        nix::errno::Errno::ELOOP => {
            format!("{} is a symlink; refusing to follow it", log_file.display())
        }
        e => format!("cannot read {}: {}", log_file.display(), e.desc()),
    })?;
    let st = nix::sys::stat::fstat(&fd)
        .map_err(|e| format!("cannot read {}: {}", log_file.display(), e.desc()))?;
    ctl_core::files::require_regular(log_file.display(), st.st_mode)?;
    Ok(File::from(fd))
}

/// The size of the container's log file now, to show later only what came after (0 when
/// it cannot be read as a regular file: see `open_log`).
pub(crate) fn log_offset(log_file: Option<&Path>) -> u64 {
    log_file
        .and_then(|p| open_log(p).ok())
        .and_then(|f| f.metadata().ok())
        .map_or(0, |m| m.len())
}

/// The log lines written since `offset` (at most `max`): the `ERROR` lines if there are
/// any (liblxc logs its reasons there, between many warnings), else the last lines. An
/// error when the log cannot be read as a regular file (see `open_log`).
pub(crate) fn log_tail_since(
    log_file: &Path,
    offset: u64,
    max: usize,
) -> Result<Vec<String>, String> {
    let mut file = open_log(log_file)?;
    let len = file.metadata().map_or(0, |m| m.len());
    // A log rotated or truncated meanwhile: show its end instead.
    let start = if offset <= len { offset } else { 0 };
    let start = start.max(len.saturating_sub(256 * 1024));
    let mut text = Vec::new();
    use std::io::{Seek, SeekFrom};
    file.seek(SeekFrom::Start(start))
        .and_then(|_| file.read_to_end(&mut text))
        .map_err(|e| format!("cannot read {}: {e}", log_file.display()))?;
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let errors: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.contains(" ERROR "))
        .collect();
    let chosen = if errors.is_empty() { lines } else { errors };
    Ok(chosen[chosen.len().saturating_sub(max)..]
        .iter()
        .map(|l| (*l).to_owned())
        .collect())
}

/// `message`, followed by the log lines written since `offset`, for a failed operation.
pub(crate) fn with_log_tail(
    message: impl std::fmt::Display,
    log_file: Option<&Path>,
    offset: u64,
) -> CommandError {
    let Some(log) = log_file else {
        return CommandError::msg(message);
    };
    let tail = match log_tail_since(log, offset, 8) {
        Ok(tail) => tail,
        Err(why) => return CommandError::msg(format!("{message} ({why})")),
    };
    if tail.is_empty() {
        return CommandError::msg(format!("{message} (nothing new in {})", log.display()));
    }
    CommandError::msg(format!(
        "{message}\nlast lines of {}:\n  {}",
        log.display(),
        tail.join("\n  ")
    ))
}

/// The container's log file: the one the envelope names, else `lxc.log.file` of its config.
pub(crate) fn log_file_of(ctx: &RunnerContext, ct: &ctl_lxc::Container) -> Option<PathBuf> {
    ctx.log_file.clone().or_else(|| {
        ct.get_config_item("lxc.log.file")
            .ok()
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
    })
}

/// "exited with status N" / "was killed by signal N".
pub(crate) fn describe_status(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => {
            let name =
                nix::sys::signal::Signal::try_from(sig).map_or("unknown signal", |s| s.as_str());
            format!("was killed by signal {sig} ({name})")
        }
        _ => format!("ended with wait status {status:?}"),
    }
}

/// Attach options for short helper programs: stdio from `stdio` (or `/dev/null`), `/` as
/// the working directory, osctld's clean environment, root inside.
pub(crate) fn quiet_attach_options(
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
pub(crate) fn dev_null() -> Result<File, CommandError> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| CommandError::msg(format!("cannot open /dev/null: {e}")))
}

/// Waits for child `pid` until `deadline`; past it the child is killed (SIGKILL) and
/// reaped, and `None` is returned. `None` as deadline waits forever.
pub(crate) fn wait_child_until(
    pid: Pid,
    deadline: Option<Instant>,
) -> Result<Option<ExitStatus>, CommandError> {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    let Some(deadline) = deadline else {
        return Ok(Some(ctl_lxc::wait_pid(pid)?));
    };
    let target = nix::unistd::Pid::from_raw(pid);
    loop {
        match waitpid(target, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {}
            Ok(WaitStatus::Exited(_, code)) => {
                use std::os::unix::process::ExitStatusExt;
                return Ok(Some(ExitStatus::from_raw((code & 0xff) << 8)));
            }
            Ok(WaitStatus::Signaled(_, sig, core)) => {
                use std::os::unix::process::ExitStatusExt;
                return Ok(Some(ExitStatus::from_raw(
                    sig as i32 | if core { 0x80 } else { 0 },
                )));
            }
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(CommandError::msg(format!("waitpid {pid}: {e}"))),
        }
        let now = Instant::now();
        if now >= deadline {
            let _ = nix::sys::signal::kill(target, nix::sys::signal::Signal::SIGKILL);
            // Dies at once unless frozen; then it is left to whoever reaps orphans rather
            // than blocking the command.
            let give_up = Instant::now() + Duration::from_secs(2);
            while Instant::now() < give_up {
                match waitpid(target, Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::EINTR) => {
                        std::thread::sleep(POLL_INTERVAL)
                    }
                    _ => break,
                }
            }
            return Ok(None);
        }
        std::thread::sleep(POLL_INTERVAL.min(deadline - now));
    }
}

/// The error for a helper attached into the container that was killed at its bound:
/// `<what> inside the container did not finish within <bound>; killed`.
pub(crate) fn helper_timed_out(what: &str, bound: Duration) -> CommandError {
    CommandError::msg(format!(
        "{what} inside the container did not finish within {}; killed",
        seconds(bound)
    ))
}

/// `5 s`, `0.3 s`: a bound for messages, to a tenth of a second (a deadline taken a few
/// microseconds before the start still reads `5 s`).
pub(crate) fn seconds(d: Duration) -> String {
    let tenths = (d.as_secs_f64() * 10.0).round() as u64;
    if tenths % 10 == 0 {
        format!("{} s", tenths / 10)
    } else {
        format!("{}.{} s", tenths / 10, tenths % 10)
    }
}

/// The earlier of `now + bound` and `limit`: the deadline of one helper inside a command
/// that has a deadline of its own (Stop's `--timeout`).
pub(crate) fn bounded_by(bound: Duration, limit: Option<Instant>) -> Instant {
    let own = Instant::now() + bound;
    limit.map_or(own, |limit| limit.min(own))
}

/// Runs `argv` inside the running container (root, clean environment, `/` as cwd, stdio on
/// `/dev/null`), and waits for it until `deadline` (killing it then: `Ok(None)`). Needs the
/// exec placement (attach enters the container's cgroups).
///
/// The helper never gets the call's stdio: it is the container's program (its root can
/// replace `halt`), and the call's fds are the caller's files (a daemon's log, its journal
/// stream) that it could truncate or write into. Only Exec and Runscript hand the call's
/// stdio to what they run: that program is what the caller asked for.
pub(crate) fn attach_wait(
    ct: &ctl_lxc::Container,
    argv: &[&str],
    deadline: Option<Instant>,
) -> Result<Option<ExitStatus>, CommandError> {
    let null = dev_null()?;
    let opts = quiet_attach_options(&null, None, None);
    attach_isolated(ct, &opts, AttachProgram::Command(argv), deadline)
}

/// Attaches `program` to the running container and waits for it until `deadline` (killing
/// it then: `Ok(None)`), with the attach done by a forked child of this (single-threaded)
/// runner rather than by the runner itself. Every attach of the commands goes through here.
///
/// liblxc's attach can end the process that calls it: with liblxc 5.0.2 a container
/// stopping during the attach sometimes made it `_exit(1)` the caller, without a message
/// (`docs/reliability.md`), which left the frontend with a dead runner and no reply. Here
/// that child is what ends; the runner survives and says what happened. The attached
/// process is the child's (liblxc clones it with `CLONE_PARENT` from its own helper), so
/// the child waits for it and reports its status through a pipe. Costs one fork of the
/// runner per attach. A caller that gives `program` a pipe of its own reads it after this
/// returns, so the program must write less than a pipe holds (64 KiB): short reports.
pub(crate) fn attach_isolated(
    ct: &ctl_lxc::Container,
    opts: &AttachOptions,
    program: AttachProgram<'_>,
    deadline: Option<Instant>,
) -> Result<Option<ExitStatus>, CommandError> {
    use std::os::unix::process::ExitStatusExt;
    // The child enforces `deadline` on the program once liblxc's attach returned; a
    // process of the container's stopped *during* the attach (liblxc's handshake waits for
    // it) keeps the child inside liblxc, so its report is waited for only until shortly
    // after the deadline.
    let reported = forked_report(deadline.map(|d| d + ATTACH_GRACE), || {
        // Nothing entering the container may be caught on the way in. liblxc's processes
        // that join the container's namespaces (the transient one, then the attached one)
        // are forks of this child, and until the attached one switches to the container's
        // root they run as the container's user inside the container's user namespace,
        // where the container's root holds CAP_SYS_PTRACE: a dumpable one can be ptraced
        // and its fds copied out (pidfd_getfd). Non-dumpable, the kernel also asks for
        // CAP_SYS_PTRACE in the namespace of its memory (the host's), which the
        // container's root lacks. The program's exec makes it dumpable again, as a
        // process of the container.
        if let Err(e) = seal_for_attach() {
            return format!("err cannot prepare the attach: {e}");
        }
        match ct
            .attach(opts, program)
            .map_err(CommandError::from)
            .and_then(|pid| wait_child_until(pid, deadline))
        {
            Ok(Some(status)) => format!("ok {}", status.into_raw()),
            Ok(None) => "timeout ".to_owned(),
            Err(e) => format!("err {}", e.message()),
        }
    })?;
    let Some((report, status)) = reported else {
        return Ok(None);
    };
    match report.split_once(' ') {
        Some(("ok", raw)) => raw
            .parse()
            .map(|raw| Some(ExitStatus::from_raw(raw)))
            .map_err(|_| CommandError::msg(format!("bad attach report {report:?}"))),
        Some(("timeout", _)) => Ok(None),
        Some(("err", message)) => Err(CommandError::msg(message)),
        _ => Err(CommandError::msg(format!(
            "liblxc ended the attaching process ({status:?}) before it could report the \
             program's exit status; the container may be stopping"
        ))),
    }
}

/// Runs `body` in a forked child of this (single-threaded) runner and returns the one line
/// it reports, with the child's wait status. The child ends with the runner
/// (`PR_SET_PDEATHSIG`), and with `_exit` after its report: nothing of the runner's code
/// runs in it afterwards. `None` when `until` passes before the report is complete; the
/// child and the processes it made (liblxc's, for an attach) are then killed and reaped.
fn forked_report(
    until: Option<Instant>,
    body: impl FnOnce() -> String,
) -> Result<Option<(String, nix::sys::wait::WaitStatus)>, CommandError> {
    fork_reporter(body)?.collect(until)
}

/// A forked child that reports one line when it is done: see [`forked_report`].
pub(crate) struct Reporter {
    child: nix::unistd::Pid,
    reader: std::os::fd::OwnedFd,
}

/// Forks the child of [`forked_report`] and returns at once.
fn fork_reporter(body: impl FnOnce() -> String) -> Result<Reporter, CommandError> {
    let (reader, writer) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let runner = nix::unistd::getpid();
    // SAFETY: the runner is single-threaded (commands run after the placement, before any
    // thread could exist), so the child may allocate; it never returns into the runner's
    // code but ends with `_exit` after writing its one report.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Child => {
            drop(reader);
            // Ends with the runner: a deadline that kills the runner must not leave it
            // (and a runner already gone leaves nobody to report to).
            // SAFETY: integer-only prctl; `_exit` ends this child only.
            unsafe {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
                if nix::unistd::getppid() != runner {
                    libc::_exit(1);
                }
            }
            let report = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body))
                .unwrap_or_else(|_| "err the forked process panicked".to_owned());
            let _ = nix::unistd::write(&writer, report.as_bytes());
            // SAFETY: ends this child only; nothing of the runner's runs here afterwards.
            unsafe { libc::_exit(0) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(writer);
            Ok(Reporter { child, reader })
        }
    }
}

impl Reporter {
    /// Waits for the report (until `until`) and reaps the child.
    fn collect(
        self,
        until: Option<Instant>,
    ) -> Result<Option<(String, nix::sys::wait::WaitStatus)>, CommandError> {
        let Reporter { child, reader } = self;
        let Some(report) = read_report(reader, child, until) else {
            kill_attach(child);
            let _ = nix::sys::wait::waitpid(child, None);
            return Ok(None);
        };
        let status = loop {
            match nix::sys::wait::waitpid(child, None) {
                Err(nix::errno::Errno::EINTR) => continue,
                other => break other?,
            }
        };
        Ok(Some((report, status)))
    }
}

/// Runs `f` in a forked worker of this (single-threaded) runner that is *dumpable* and holds
/// nothing of the runner's conversation with its frontend, and returns what `f` returned
/// (an exit status, or 0 for "done").
///
/// Runners are not dumpable (a runner runs as the container's user, who must not be able
/// to ptrace it: it holds the reply pipe to the root frontend and the call's stdio). But
/// liblxc's start and execute need a dumpable caller: the LXC monitor they fork opens
/// `/proc/<init>/ns/*` of the container's first process, a fork of the caller, which a
/// non-dumpable caller would leave owned by root ("Failed to preserve user namespace").
/// So those run here: the worker closes the reply pipe and the envelope socket and marks
/// every other fd close-on-exec before it becomes dumpable; what the container's user can
/// take from it then is what the container gets anyway (the program's stdio).
pub(crate) fn in_dumpable_worker(
    what: &str,
    f: &dyn Fn() -> Result<i32, CommandError>,
) -> Result<i32, CommandError> {
    start_dumpable_worker(what, f)?.wait()
}

/// A dumpable worker started by [`start_dumpable_worker`], running while the runner does
/// something else (osctld's `run_network`: the container runs its init script while the
/// runner configures its network and runs the command).
pub(crate) struct DumpableWorker {
    what: String,
    reporter: Reporter,
}

/// [`in_dumpable_worker`] without waiting: `f` runs in the worker while this returns.
pub(crate) fn start_dumpable_worker(
    what: &str,
    f: &dyn Fn() -> Result<i32, CommandError>,
) -> Result<DumpableWorker, CommandError> {
    let reporter = fork_reporter(|| {
        let done = ctl_core::runner::seal_fds_for_attach()
            .map_err(|e| CommandError::msg(format!("cannot prepare the {what}: {e}")))
            .and_then(|()| {
                // SAFETY: integer-only prctl.
                if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1 as libc::c_ulong) } != 0 {
                    return Err(CommandError::msg(format!(
                        "PR_SET_DUMPABLE: {}",
                        std::io::Error::last_os_error()
                    )));
                }
                f()
            });
        match done {
            Ok(value) => format!("ok {value}"),
            Err(e) => format!("err {}", e.message()),
        }
    })?;
    Ok(DumpableWorker {
        what: what.to_owned(),
        reporter,
    })
}

impl DumpableWorker {
    /// Waits until the worker reports what `f` returned.
    pub(crate) fn wait(self) -> Result<i32, CommandError> {
        self.wait_until(None)
    }

    /// [`wait`](Self::wait) until `deadline`: past it the worker and what it started are
    /// killed and reaped, and the error says so.
    pub(crate) fn wait_until(self, deadline: Option<Instant>) -> Result<i32, CommandError> {
        let what = self.what;
        // Without a deadline the report always comes (complete, or cut by the worker's end).
        let (report, status) = self.reporter.collect(deadline)?.ok_or_else(|| {
            CommandError::msg(format!(
                "the {what} did not end in time; it was killed (is the container's init \
                 frozen inside?)"
            ))
        })?;
        match report.split_once(' ') {
            Some(("ok", value)) => value
                .parse()
                .map_err(|_| CommandError::msg(format!("bad {what} report {report:?}"))),
            Some(("err", message)) => Err(CommandError::msg(message)),
            _ => Err(CommandError::msg(format!(
                "the process running the {what} ended ({status:?}) before it could report"
            ))),
        }
    }
}

/// How long after its deadline an attach may still take to report before it is killed
/// from outside (the attaching child itself kills the program at the deadline and needs a
/// moment to reap it and report).
const ATTACH_GRACE: Duration = Duration::from_secs(2);

/// Reads a forked child's one report: until EOF, or until the child has exited and what it
/// wrote is read (another process may hold the pipe's write end open: the container's user
/// can copy it out of a dumpable worker, and must not make the runner wait forever).
/// `None` when `until` passes first.
fn read_report(
    reader: std::os::fd::OwnedFd,
    child: nix::unistd::Pid,
    until: Option<Instant>,
) -> Option<String> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use nix::sys::wait::{waitid, Id, WaitPidFlag};
    /// How often the child's exit is looked at while its pipe stays silent.
    const TICK: Duration = Duration::from_millis(100);
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    let mut exited = false;
    loop {
        let mut wait = TICK;
        if let Some(until) = until {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            wait = wait.min(left);
        }
        if !exited {
            let mut fds = [PollFd::new(
                std::os::fd::AsFd::as_fd(&reader),
                PollFlags::POLLIN,
            )];
            let timeout =
                PollTimeout::try_from(wait.as_millis() as i32 + 1).unwrap_or(PollTimeout::MAX);
            match poll(&mut fds, timeout) {
                Ok(0) | Err(nix::errno::Errno::EINTR) => {
                    // Exited (a zombie, not reaped here: the caller does that)?
                    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
                    exited = matches!(waitid(Id::Pid(child), flags), Ok(status) if status.pid().is_some());
                    if exited {
                        let _ = crate::util::set_nonblocking(&reader);
                    }
                    continue;
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        match nix::unistd::read(&reader, &mut buf) {
            Ok(0) => break,
            Ok(n) if bytes.len() < 64 * 1024 => bytes.extend_from_slice(&buf[..n]),
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => {}
            // Nothing more from an exited child: the rest of the pipe's writers are not its.
            Err(nix::errno::Errno::EAGAIN) if exited => break,
            Err(nix::errno::Errno::EAGAIN) => {}
            Err(_) => break,
        }
    }
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

fn set_nonblocking(fd: &std::os::fd::OwnedFd) -> nix::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

/// Kills a forked child that did not report in time (an attaching one stuck in liblxc),
/// and the processes it made (for an attach, liblxc's transient process and the attached
/// one, which liblxc clones with `CLONE_PARENT`: the child's children). The runner is the
/// owner of the container's user namespace, so it may signal them also after they became
/// the container's root.
fn kill_attach(child: nix::unistd::Pid) {
    use nix::sys::signal::{kill, Signal};
    let _ = kill(child, Signal::SIGSTOP);
    for pid in children_of(child.as_raw()) {
        let _ = kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
    }
    let _ = kill(child, Signal::SIGKILL);
}

/// The pids whose parent is `parent` (from `/proc/<pid>/stat`).
fn children_of(parent: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    let (_, rest) = stat.rsplit_once(')')?;
                    rest.split_whitespace().nth(1)?.parse::<i32>().ok()
                })
                == Some(parent)
        })
        .collect()
}

/// What [`attach_isolated`]'s child does before it calls liblxc: non-dumpable (checked),
/// the runner's conversation closed, every other fd close-on-exec.
fn seal_for_attach() -> std::io::Result<()> {
    // SAFETY: integer-only prctl calls.
    unsafe {
        if libc::prctl(libc::PR_SET_DUMPABLE, 0 as libc::c_ulong) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::prctl(libc::PR_GET_DUMPABLE) != 0 {
            return Err(std::io::Error::other(
                "still dumpable after PR_SET_DUMPABLE 0",
            ));
        }
    }
    ctl_core::runner::seal_fds_for_attach()
}

/// Frontend: whether the cgroup of the container's payload (its init and every process in
/// it) exists in the memory hierarchy, i.e. whether the container may be running.
///
/// LXC 5 creates `lxc.payload.<name>` (and the monitor's `lxc.monitor.<name>`) below the
/// cgroup its caller is in, which for a start by our runners is the container's cgroup
/// (`Container::cgroup_path`: the entry cgroup in the default layout; in osctld's the
/// runner moves there first, see [`enter_container_cgroup_to_start`]), and removes both
/// when the container stops. On a reboot the monitor first moves itself into `lxc.pivot`
/// below its cgroup and starts the container again from there, so after `n` reboots the
/// payload is `<cgroup_path>(/lxc.pivot){n}/lxc.payload.<name>`.
pub(crate) fn payload_cgroup_exists(ct: &ctl_core::Container) -> bool {
    let Some(hierarchy) = ctl_core::cgroup::memory_hierarchy() else {
        return false;
    };
    // Reboots deeper than find_payload looks are answered by the monitor instead.
    !matches!(
        find_payload(&hierarchy.path_of(&ct.cgroup_path), &ct.id),
        PayloadSearch::Absent
    )
}

/// Where [`find_payload`] found the payload cgroup.
pub(crate) enum PayloadSearch {
    Found(PathBuf),
    Absent,
    /// Below more `lxc.pivot` levels than [`find_payload`] follows.
    TooDeep,
}

impl PayloadSearch {
    pub(crate) fn found(self) -> Option<PathBuf> {
        match self {
            PayloadSearch::Found(path) => Some(path),
            _ => None,
        }
    }
}

/// The payload cgroup `<base>(/lxc.pivot){n}/lxc.payload.<id>` of container `id`, where
/// `base` is the directory of the container's cgroup in one hierarchy (see
/// [`payload_cgroup_exists`] for why the pivots).
pub(crate) fn find_payload(base: &Path, id: &str) -> PayloadSearch {
    const MAX_PIVOTS: usize = 32;
    let mut dir = base.to_path_buf();
    for _ in 0..=MAX_PIVOTS {
        let payload = dir.join(format!("lxc.payload.{id}"));
        if payload.is_dir() {
            return PayloadSearch::Found(payload);
        }
        dir.push("lxc.pivot");
        if !dir.is_dir() {
            return PayloadSearch::Absent;
        }
    }
    PayloadSearch::TooDeep
}

/// The cgroup path (as `/a/b`) of process `pid` (a number or `self`) in the first
/// hierarchy of `/proc/<pid>/cgroup` whose controller list `pick` accepts (`""` is v2's).
/// `None` when the process is gone or has no such line.
pub(crate) fn cgroup_of_process(pid: &str, pick: impl Fn(&str) -> bool) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    // Lines are `id:controllers:path`.
    text.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let _id = parts.next()?;
        let controllers = parts.next()?;
        let path = parts.next()?;
        pick(controllers).then(|| path.to_owned())
    })
}

/// Frontend: whether process `pid` is in the container's cgroup (`Container::cgroup_path`,
/// below which LXC puts the payload in either layout) or below it, in the memory hierarchy
/// (the unified one on a v2-only host), as `/proc/<pid>/cgroup` says. `false` when the
/// process is gone or the file cannot be read.
pub(crate) fn process_in_container_cgroup(ct: &ctl_core::Container, pid: i32) -> bool {
    let Some(hierarchy) = ctl_core::cgroup::memory_hierarchy() else {
        return false;
    };
    let path = cgroup_of_process(&pid.to_string(), |controllers| {
        if hierarchy.unified {
            controllers.is_empty()
        } else {
            controllers.split(',').any(|c| c == "memory")
        }
    });
    let container = format!("/{}", ct.cgroup_path.trim_matches('/'));
    path.is_some_and(|path| {
        path == container
            || path
                .strip_prefix(container.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

/// Frontend (root): thaws the container's cgroup tree (`Container::cgroup_path`: payload,
/// monitor and, in osctld's layout, the runners' entry) in the v1 freezer hierarchy and
/// the unified one, top down, as osctld does before a kill. Best effort: goes on
/// after a failure and returns the first one.
///
/// LXC's monitor keeps reporting `FROZEN` after such a thaw until liblxc's own unfreeze
/// runs (it tracks the state itself), so follow it with that.
pub(crate) fn thaw_tree(ct: &ctl_core::Container) -> std::io::Result<()> {
    fn walk(dir: &Path, file: &str, value: &str, first_error: &mut Option<std::io::Error>) {
        let path = dir.join(file);
        if path.exists() {
            if let Err(e) = std::fs::write(&path, value) {
                first_error.get_or_insert(std::io::Error::new(
                    e.kind(),
                    format!("{}: {e}", path.display()),
                ));
            }
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&entry.path(), file, value, first_error);
            }
        }
    }
    ctl_core::cgroup::validate_relative(&ct.cgroup_path)?;
    let mut first_error = None;
    for h in ctl_core::cgroup::hierarchies() {
        let root = h.path_of(&ct.cgroup_path);
        if h.unified {
            walk(&root, "cgroup.freeze", "0", &mut first_error);
        } else if h.has_controller("freezer") {
            walk(&root, "freezer.state", "THAWED", &mut first_error);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Frontend (root): thaws the container's cgroup tree and SIGKILLs every process in its
/// payload cgroups, again and again, until none is left or `limit` passes. `Ok(true)`:
/// the payload is empty (the container is gone; LXC's monitor notices its init's death
/// and reports STOPPED). For a container that keeps its own kill from working (a frozen
/// init: SIGKILL stays pending until thawed; a process that freezes it again loses the
/// race, being killed itself).
pub(crate) fn kill_payload_tree(
    ct: &ctl_core::Container,
    limit: Duration,
) -> std::io::Result<bool> {
    let Some(hierarchy) = ctl_core::cgroup::memory_hierarchy() else {
        return Ok(false);
    };
    let end = Instant::now() + limit;
    loop {
        let Some(payload) = find_payload(&hierarchy.path_of(&ct.cgroup_path), &ct.id).found()
        else {
            return Ok(true);
        };
        // A cgroup that goes away while it is walked (its processes died): look again.
        let pids = ctl_core::cgroup::pids_below(&payload).ok();
        if pids.as_ref().is_some_and(Vec::is_empty) {
            return Ok(true);
        }
        thaw_tree(ct)?;
        for pid in pids.into_iter().flatten() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        if Instant::now() >= end {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The container's init pid, from `State` (its frontend asks the container's monitor over
/// LXC's command socket, its fallback runner asks liblxc as the container's user), checked
/// as the container's on either path ([`crate::initpid::ValidatedInit`]): root-side code
/// opens the namespaces it enters through it. Root-side code uses this instead of loading
/// the user-editable LXC config with liblxc as root.
pub(crate) fn init_pid(
    call: &ctl_core::Call<'_>,
    command: &str,
) -> Result<crate::initpid::ValidatedInit, ctl_core::Error> {
    let call = call
        .clone()
        .stdin(None)
        .placement(ctl_core::Placement::Fork);
    let (state, init) = crate::lifecycle::state_and_init(&call).map_err(|e| match e {
        ctl_core::Error::Command { message, .. } => ctl_core::Error::command(command, message),
        e => e,
    })?;
    init.ok_or_else(|| {
        ctl_core::Error::command(
            command,
            format!("container {} is not running (it has no init pid)", state.id),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The log lies in a tree of the container's user: a FIFO there must not block the
    /// reader (in a thread, so that a regression fails instead of hanging), a symlink is
    /// not followed, a device is not read; each error names the path and what it is.
    #[test]
    fn log_tail_reads_regular_files_only() {
        let dir = std::env::temp_dir().join(format!("ctl-logtail-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let fifo = dir.join("fifo.log");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let link = dir.join("link.log");
        std::os::unix::fs::symlink("/dev/null", &link).unwrap();
        let log = dir.join("ok.log");
        std::fs::write(&log, "a\nx ERROR y\nb\n").unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let paths = [
            fifo.clone(),
            link.clone(),
            PathBuf::from("/dev/null"),
            log.clone(),
        ];
        std::thread::spawn(move || {
            for p in paths {
                let _ = tx.send((log_tail_since(&p, 0, 8), log_offset(Some(&p))));
            }
        });
        let next = || {
            rx.recv_timeout(Duration::from_secs(5))
                .expect("a log read hung")
        };
        let (tail, offset) = next();
        let e = tail.unwrap_err();
        assert!(e.contains("fifo.log") && e.contains("a FIFO"), "{e}");
        assert_eq!(offset, 0);
        let e = next().0.unwrap_err();
        assert!(e.contains("link.log") && e.contains("symlink"), "{e}");
        let e = next().0.unwrap_err();
        assert!(
            e.contains("/dev/null") && e.contains("character device"),
            "{e}"
        );
        let (tail, offset) = next();
        assert_eq!(tail.unwrap(), vec!["x ERROR y".to_owned()]);
        assert_eq!(offset, 14);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
