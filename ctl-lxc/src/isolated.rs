//! Attaching without risking the caller: liblxc's attach (and its start and execute) run
//! in a forked child of the caller, which reports back in one [`Report`].
//!
//! # Why
//!
//! liblxc's attach can end the process that calls it: with liblxc 5.0.2 a container
//! stopping during the attach sometimes made it `_exit(1)` the caller, without a message
//! (`docs/reliability.md`). Called from a runner, that left the frontend with a dead runner
//! and no reply. [`Container::attach_isolated`] has a forked child of the caller make the
//! attach and wait for the program; if liblxc ends anything, it is that child, and the
//! caller says what happened. Every attach of the built-in commands goes through here, and
//! plugins that attach should too: [`Container::attach`] is the raw call.
//!
//! # What the child holds
//!
//! The child that attaches is made non-dumpable (checked) and then runs the caller's
//! [`Isolation`] seal, which closes what the process that enters the container must not
//! hold (for a ctl runner: `ctl_core::runner::seal_fds_for_attach`, its reply pipe and
//! envelope socket) and marks every other fd close-on-exec. liblxc's processes that join
//! the container's namespaces are forks of that child: until the attached one switches to
//! the container's root they run as the container's user inside its user namespace, where
//! the container's root holds `CAP_SYS_PTRACE`; non-dumpable, the kernel also asks for
//! `CAP_SYS_PTRACE` in the namespace of their memory (the host's), which the container's
//! root lacks. The program's exec makes it dumpable again, as a process of the container.
//!
//! liblxc's start and execute need the opposite, a *dumpable* caller (the monitor they
//! fork opens `/proc/<init>/ns/*` of the container's first process, a fork of the caller,
//! which a non-dumpable caller would leave owned by root). [`DumpableWorker`] runs them in
//! a forked child that runs the same seal first and then becomes dumpable.
//!
//! # Callers
//!
//! The caller must be single-threaded: the child is a `fork` and runs Rust code (it
//! allocates). Each entry point checks that (`/proc/self/stat`) and refuses otherwise. The
//! child ends with the caller (`PR_SET_PDEATHSIG`), and with `_exit` after its report:
//! nothing of the caller's code runs in it afterwards.
//!
//! # One report format
//!
//! Every report, from a forked child or from a Rust function attached into the container
//! ([`Container::run_attached_reporting`]), is one [`Report`] framed as a tag byte, the
//! payload's length (`u32`, little endian) and the payload. A report cut short (its writer
//! died mid-way) does not decode, and is told apart from a report that says something.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid as NixPid;

use crate::attach::{AttachOptions, AttachProgram};
use crate::container::Container;
use crate::error::LxcError;
use crate::process::Pid;

/// How often waits look again.
const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// How long after its deadline an attach may still take to report before it is killed
/// from outside (the attaching child itself kills the program at the deadline and needs a
/// moment to reap it and report).
const ATTACH_GRACE: Duration = Duration::from_secs(2);

/// Most bytes of a report that are read.
const MAX_REPORT: usize = 64 * 1024;

/// What the forked child of an isolated attach or a [`DumpableWorker`] runs before liblxc
/// is called: the caller's seal, which closes the caller's own conversation (its reply
/// pipe, its envelope socket) and marks every other fd above 2 close-on-exec.
///
/// A ctl runner passes `ctl_core::runner::seal_fds_for_attach` (`commands::support`
/// builds it); the seal runs in the child only, never in the caller.
#[derive(Clone, Copy)]
pub struct Isolation {
    seal_fds: fn() -> io::Result<()>,
    holds: fn() -> bool,
    release: fn(),
}

impl Isolation {
    /// An isolation whose child runs `seal_fds` before it calls liblxc.
    pub const fn new(seal_fds: fn() -> io::Result<()>) -> Isolation {
        Isolation {
            seal_fds,
            holds: || false,
            release: || {},
        }
    }

    /// With `release`: what the caller hands to the child that attaches only for the
    /// attach (a ctl runner: the container's lock, `ctl_core::runner::release_container_lock`).
    /// It runs in the caller once that child is forked (the child holds it from then on),
    /// in that child once the program is attached (or the attach failed), and in a
    /// [`DumpableWorker`] before its work (the monitor liblxc forks from it must not hold
    /// it for the container's life).
    /// `holds` says whether there is anything to release (the handshake below and the
    /// alarm cost nothing then).
    ///
    /// The child that enters the container releases its inherited copy first, and the
    /// worker moves it into the container's cgroups only once it says so: nothing the
    /// container can stop or freeze holds it.
    pub const fn with_release(self, holds: fn() -> bool, release: fn()) -> Isolation {
        Isolation {
            seal_fds: self.seal_fds,
            holds,
            release,
        }
    }
}

impl fmt::Debug for Isolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Isolation").finish_non_exhaustive()
    }
}

/// The one report of a forked child or an attached function to the process that waits for
/// it. On the wire: a tag byte, the payload's length (`u32`, little endian), the payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Report {
    /// The raw wait status of the program the reporter waited for.
    Status(i32),
    /// A number the reporter computed (a [`DumpableWorker`]'s result).
    Value(i32),
    /// Text the reporter produced ([`Container::run_attached_reporting`]).
    Text(String),
    /// The program did not end before its deadline and was killed.
    TimedOut,
    /// The work failed; why, on one line.
    Error(String),
}

impl Report {
    /// The framed bytes.
    pub fn encode(&self) -> Vec<u8> {
        let (tag, payload): (u8, Vec<u8>) = match self {
            Report::Status(raw) => (b'S', raw.to_le_bytes().to_vec()),
            Report::Value(value) => (b'V', value.to_le_bytes().to_vec()),
            Report::Text(text) => (b'T', text.as_bytes().to_vec()),
            Report::TimedOut => (b'K', Vec::new()),
            Report::Error(message) => (b'E', message.as_bytes().to_vec()),
        };
        let mut bytes = Vec::with_capacity(5 + payload.len());
        bytes.push(tag);
        bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&payload);
        bytes
    }

    /// One whole report, else `None` (empty, cut short, followed by more bytes, or not a
    /// report).
    pub fn decode(bytes: &[u8]) -> Option<Report> {
        let (&tag, rest) = bytes.split_first()?;
        let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let payload = rest.get(4..)?;
        if payload.len() != len {
            return None;
        }
        let number = || payload.try_into().ok().map(i32::from_le_bytes);
        let text = || Some(String::from_utf8_lossy(payload).into_owned());
        match tag {
            b'S' => number().map(Report::Status),
            b'V' => number().map(Report::Value),
            b'T' => text().map(Report::Text),
            b'K' if payload.is_empty() => Some(Report::TimedOut),
            b'E' => text().map(Report::Error),
            _ => None,
        }
    }
}

/// The write end of a report pipe, for a process that reports (a forked child, or a
/// function attached into the container: it inherits the fd).
#[derive(Debug)]
pub struct ReportWriter(OwnedFd);

/// The read end of a report pipe.
#[derive(Debug)]
pub struct ReportReader(OwnedFd);

/// A pipe for one [`Report`] (both ends close-on-exec: a program that a reporter executes
/// does not inherit it, so an empty pipe means "the program ran").
pub fn report_pipe() -> Result<(ReportReader, ReportWriter), LxcError> {
    let (reader, writer) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| LxcError::os("pipe2", e.into()))?;
    Ok((ReportReader(reader), ReportWriter(writer)))
}

impl ReportWriter {
    /// Writes `report` whole (retrying short writes and `EINTR`).
    pub fn send(&self, report: &Report) -> io::Result<()> {
        write_all(&self.0, &report.encode())
    }
}

impl ReportReader {
    /// Reads until every writer closed its end (at most 64 KiB): `None` when nothing whole
    /// came (no report, or one cut short). Read it once the reporter is done: a writer
    /// that stays open (the reporter's own copy) makes this wait.
    pub fn read(self) -> Result<Option<Report>, LxcError> {
        use std::io::Read;
        let mut bytes = Vec::new();
        std::fs::File::from(self.0)
            .take(MAX_REPORT as u64)
            .read_to_end(&mut bytes)
            .map_err(|e| {
                LxcError::Isolated(format!(
                    "reading the report of the process in the container: {e}"
                ))
            })?;
        Ok(Report::decode(&bytes))
    }
}

fn write_all(fd: &OwnedFd, bytes: &[u8]) -> io::Result<()> {
    ctl_process::write_all(fd.as_fd(), bytes)
}

impl Container {
    /// Attaches `program` to the running container and waits for it until `deadline`
    /// (killing it then: `Ok(None)`), with the attach made by a forked child of this
    /// single-threaded process rather than by this process (see the [module](self)): use
    /// this instead of [`attach`](Container::attach).
    ///
    /// The attached process is the child's (liblxc clones it with `CLONE_PARENT` from its
    /// own helper), so the child waits for it and reports its status. A process of the
    /// container stopped *during* the attach (liblxc's handshake waits for it) keeps the
    /// child inside liblxc, so its report is waited for only until 2 s after `deadline`;
    /// then the child and the processes it made are killed and reaped. Costs one fork per
    /// attach. A caller that gives `program` a pipe of its own reads it after this
    /// returns, so the program must write less than a pipe holds (64 KiB): short reports.
    ///
    /// While it waits, SIGINT, SIGTERM, SIGHUP and SIGQUIT sent to this process's group are
    /// passed on to the program once, and end neither this process nor the worker, so the
    /// program's exit status still comes back ([`crate::signals`]); this process's own
    /// dispositions are put back before this returns.
    pub fn attach_isolated(
        &self,
        isolation: &Isolation,
        opts: &AttachOptions,
        program: AttachProgram<'_>,
        deadline: Option<Instant>,
    ) -> Result<Option<ExitStatus>, LxcError> {
        // SIGINT, SIGTERM, SIGHUP and SIGQUIT go to the program while it runs, and end
        // neither this process nor the worker (`crate::signals`).
        let forwarding = crate::signals::Forwarding::install()
            .map_err(|e| LxcError::os("catching signals for the attach", e.into()))?;
        let reporter = fork_reporter(|| {
            // Nothing entering the container may be caught on the way in (module docs).
            if let Err(e) = seal_for_attach(isolation) {
                return Report::Error(format!("cannot prepare the attach: {e}"));
            }
            let with_default_signals;
            let program = match program {
                AttachProgram::Function(f) => {
                    with_default_signals = move || {
                        // What the worker holds for the attach is not the program's
                        // (liblxc's attach forks this from the worker).
                        release_held();
                        crate::signals::reset_in_program();
                        f()
                    };
                    AttachProgram::Function(&with_default_signals)
                }
                other => other,
            };
            // Held for the attach only, and never longer than ATTACH_HOLD_LIMIT: a process
            // the container's root stops on its way in must not keep it.
            let bound = HeldForAttach::arm(isolation);
            let attached = crate::enter::attach(self, opts, program);
            // Attached (or failed to): what was held for the attach is let go.
            drop(bound);
            (isolation.release)();
            match attached.and_then(|pid| {
                // Kept open until this worker ends (`_exit`): the handler may use it to
                // the last moment, and it never names a recycled pid.
                let pidfd = ctl_process::pidfd_open(pid)
                    .map_err(|e| LxcError::os("pidfd_open of the attached process", e))?;
                crate::signals::Forwarding::program_started(pid, &pidfd);
                std::mem::forget(pidfd);
                wait_pid_until(pid, deadline)
            }) {
                Ok(Some(status)) => Report::Status(ctl_process::encode_status(status)),
                Ok(None) => Report::TimedOut,
                Err(e) => Report::Error(e.to_string()),
            }
        });
        // The child holds what the attach needs from here on.
        (isolation.release)();
        let reported = reporter.and_then(|r| r.collect(deadline.map(|d| d + ATTACH_GRACE)));
        let reported = reported?;
        drop(forwarding);
        let Some((report, status)) = reported else {
            return Ok(None);
        };
        match report {
            Some(Report::Status(raw)) => Ok(Some(ctl_process::decode_status(raw))),
            Some(Report::TimedOut) => Ok(None),
            Some(Report::Error(message)) => Err(LxcError::Isolated(message)),
            Some(other) => Err(LxcError::Isolated(format!("bad attach report {other:?}"))),
            None => Err(LxcError::Isolated(format!(
                "liblxc ended the attaching process ({status:?}) before it could report the \
                 program's exit status; the container may be stopping"
            ))),
        }
    }

    /// Runs `work` in a process attached to the running container (with `opts`: a caller
    /// usually gives it `/dev/null` as stdin and stdout and its own stderr for
    /// diagnostics), through [`attach_isolated`](Container::attach_isolated), and returns
    /// what it reported: `Some(Ok(text))`, `Some(Err(message))`, or `None` when it did not
    /// end before `deadline` and was killed. An error when it ended without a report.
    ///
    /// `work` runs in the attached process, a fork of this single-threaded process inside
    /// the container's namespaces (as the uid `opts` names); its exit status is 0 after
    /// `Ok`, 1 after `Err`.
    pub fn run_attached_reporting(
        &self,
        isolation: &Isolation,
        opts: &AttachOptions,
        deadline: Instant,
        work: &dyn Fn() -> Result<String, String>,
    ) -> Result<Option<Result<String, String>>, LxcError> {
        let (reader, writer) = report_pipe()?;
        let child = || {
            let (report, code) = match work() {
                Ok(text) => (Report::Text(text), 0),
                Err(message) => (Report::Error(message), 1),
            };
            let _ = writer.send(&report);
            code
        };
        let status = self.attach_isolated(
            isolation,
            opts,
            AttachProgram::Function(&child),
            Some(deadline),
        );
        drop(writer);
        let Some(status) = status? else {
            return Ok(None);
        };
        match reader.read()? {
            Some(Report::Text(text)) => Ok(Some(Ok(text))),
            Some(Report::Error(message)) => Ok(Some(Err(message))),
            _ => Err(LxcError::Isolated(format!(
                "the process in the container exited with status {} without a report",
                exit_code(status)
            ))),
        }
    }
}

/// `128 + signal` for a signal, as shells report it; the exit code otherwise.
pub use ctl_process::exit_code;

/// Runs `f` in a forked worker of this (single-threaded) process that is *dumpable* and
/// holds nothing the [`Isolation`] seal closes, and returns what `f` returned (an exit
/// status, or 0 for "done"). For liblxc's start and execute (see the [module](self)):
/// what the container's user can take from the worker is what the container gets anyway
/// (the program's stdio). `what` names it in errors ("container start").
pub fn in_dumpable_worker<E: fmt::Display>(
    isolation: &Isolation,
    what: &str,
    f: &dyn Fn() -> Result<i32, E>,
) -> Result<i32, LxcError> {
    DumpableWorker::start(isolation, what, f)?.wait()
}

/// A dumpable worker running while its starter does something else (osctld's
/// `run_network`: the container runs its init script while the runner configures its
/// network and runs the command). See [`in_dumpable_worker`].
#[derive(Debug)]
pub struct DumpableWorker {
    what: String,
    reporter: Reporter,
}

impl DumpableWorker {
    /// [`in_dumpable_worker`] without waiting: `f` runs in the worker while this returns.
    pub fn start<E: fmt::Display>(
        isolation: &Isolation,
        what: &str,
        f: &dyn Fn() -> Result<i32, E>,
    ) -> Result<DumpableWorker, LxcError> {
        let reporter = fork_reporter(|| {
            if let Err(e) = (isolation.seal_fds)() {
                return Report::Error(format!("cannot prepare the {what}: {e}"));
            }
            (isolation.release)();
            // SAFETY: integer-only prctl.
            if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1 as libc::c_ulong) } != 0 {
                return Report::Error(format!("PR_SET_DUMPABLE: {}", io::Error::last_os_error()));
            }
            match f() {
                Ok(value) => Report::Value(value),
                Err(e) => Report::Error(e.to_string()),
            }
        })?;
        Ok(DumpableWorker {
            what: what.to_owned(),
            reporter,
        })
    }

    /// Waits until the worker reports what `f` returned.
    pub fn wait(self) -> Result<i32, LxcError> {
        self.wait_until(None)
    }

    /// [`wait`](Self::wait) until `deadline`: past it the worker and what it started are
    /// killed and reaped, and the error says so.
    pub fn wait_until(self, deadline: Option<Instant>) -> Result<i32, LxcError> {
        let what = self.what;
        // Without a deadline the report always comes (complete, or cut by the worker's end).
        let (report, status) = self.reporter.collect(deadline)?.ok_or_else(|| {
            LxcError::Isolated(format!(
                "the {what} did not end in time; it was killed (is the container's init \
                 frozen inside?)"
            ))
        })?;
        match report {
            Some(Report::Value(value)) => Ok(value),
            Some(Report::Error(message)) => Err(LxcError::Isolated(message)),
            Some(other) => Err(LxcError::Isolated(format!("bad {what} report {other:?}"))),
            None => Err(LxcError::Isolated(format!(
                "the process running the {what} ended ({status:?}) before it could report"
            ))),
        }
    }
}

/// Waits for child `pid` until `deadline`; past it the child is killed (SIGKILL) and
/// reaped, and `None` is returned. `None` as deadline waits forever.
fn wait_pid_until(pid: Pid, deadline: Option<Instant>) -> Result<Option<ExitStatus>, LxcError> {
    let Some(deadline) = deadline else {
        return Ok(Some(crate::process::wait_pid(pid)?));
    };
    let target = NixPid::from_raw(pid);
    loop {
        match waitpid(target, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => {
                return Ok(Some(ExitStatus::from_raw((code & 0xff) << 8)));
            }
            Ok(WaitStatus::Signaled(_, sig, core)) => {
                return Ok(Some(ExitStatus::from_raw(
                    sig as i32 | if core { 0x80 } else { 0 },
                )));
            }
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(LxcError::Isolated(format!("waitpid {pid}: {e}"))),
        }
        let now = Instant::now();
        if now >= deadline {
            let _ = nix::sys::signal::kill(target, nix::sys::signal::Signal::SIGKILL);
            // Dies at once unless frozen; then it is left to whoever reaps orphans rather
            // than blocking the caller.
            let give_up = Instant::now() + Duration::from_secs(2);
            while Instant::now() < give_up {
                match waitpid(target, Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::StillAlive) | Err(Errno::EINTR) => {
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

/// What the child of an isolated attach does before it calls liblxc: non-dumpable
/// (checked), then the caller's seal.
/// Longest time the worker of an isolated attach keeps what the caller handed over for the
/// attach ([`Isolation::with_release`]): an attach takes milliseconds, and a container
/// whose root stops the process on its way in must not hold it (a ctl runner: the
/// container's lock, which a Stop waits for) for ever.
pub const ATTACH_HOLD_LIMIT: Duration = Duration::from_secs(10);

/// The release of the attach in progress in this worker, for [`release_held`] and the
/// alarm of [`HeldForAttach`] (a fn pointer as `usize`; 0: none).
static HELD_RELEASE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Whether this worker holds something for the attach in progress (see
/// [`Isolation::with_release`]).
pub(crate) fn holds_for_attach() -> bool {
    HELD_RELEASE.load(std::sync::atomic::Ordering::SeqCst) != 0
}

/// Runs the release of the attach in progress, if any: in the child that enters the
/// container (first thing after its fork: it must not hold it on its way in) and from the
/// worker's alarm. Async-signal-safe when the release is (a ctl runner's closes an fd).
pub(crate) fn release_held() {
    let f = HELD_RELEASE.load(std::sync::atomic::Ordering::SeqCst);
    if f != 0 {
        // SAFETY: only `HeldForAttach::arm` stores here, and it stores a `fn()`.
        let release: fn() = unsafe { std::mem::transmute::<usize, fn()>(f) };
        release();
    }
}

/// The worker's hold of what was handed over for the attach: released by an alarm after
/// [`ATTACH_HOLD_LIMIT`], or when dropped (the alarm cancelled).
struct HeldForAttach;

impl HeldForAttach {
    fn arm(isolation: &Isolation) -> Option<HeldForAttach> {
        extern "C" fn on_alarm(_: libc::c_int) {
            release_held();
        }
        if !(isolation.holds)() {
            return None;
        }
        HELD_RELEASE.store(
            isolation.release as usize,
            std::sync::atomic::Ordering::SeqCst,
        );
        let action = nix::sys::signal::SigAction::new(
            nix::sys::signal::SigHandler::Handler(on_alarm),
            // Blocking reads and waits of the attach go on after the handler.
            nix::sys::signal::SaFlags::SA_RESTART,
            nix::sys::signal::SigSet::empty(),
        );
        // SAFETY: the handler only loads an atomic and calls the release, which closes an
        // fd (async-signal-safe); this worker is single-threaded.
        let _ = unsafe { nix::sys::signal::sigaction(nix::sys::signal::Signal::SIGALRM, &action) };
        // SAFETY: alarm(2) takes an integer.
        unsafe { libc::alarm(ATTACH_HOLD_LIMIT.as_secs() as libc::c_uint) };
        Some(HeldForAttach)
    }
}

impl Drop for HeldForAttach {
    fn drop(&mut self) {
        // SAFETY: alarm(2) takes an integer; 0 cancels the pending alarm.
        unsafe { libc::alarm(0) };
        HELD_RELEASE.store(0, std::sync::atomic::Ordering::SeqCst);
    }
}

fn seal_for_attach(isolation: &Isolation) -> io::Result<()> {
    // SAFETY: integer-only prctl calls.
    unsafe {
        if libc::prctl(libc::PR_SET_DUMPABLE, 0 as libc::c_ulong) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::prctl(libc::PR_GET_DUMPABLE) != 0 {
            return Err(io::Error::other("still dumpable after PR_SET_DUMPABLE 0"));
        }
    }
    (isolation.seal_fds)()
}

/// A forked child that reports once when it is done.
#[derive(Debug)]
struct Reporter {
    child: NixPid,
    reader: OwnedFd,
}

/// What [`Reporter::collect`] got: the report (`None`: nothing whole) and the child's
/// wait status; `None` when `until` passed first.
type Collected = Option<(Option<Report>, WaitStatus)>;

/// The number of threads of this process (`/proc/self/stat`, field 20).
fn thread_count() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    // After the name: state is field 3, num_threads field 20.
    rest.split_whitespace().nth(17)?.parse().ok()
}

/// Forks a child that runs `body` and reports once, and returns at once. The child ends with this
/// process (`PR_SET_PDEATHSIG`), and with `_exit` after its report.
fn fork_reporter(body: impl FnOnce() -> Report) -> Result<Reporter, LxcError> {
    match thread_count() {
        Some(1) => {}
        Some(n) => {
            return Err(LxcError::Isolated(format!(
                "an isolated attach or worker needs a single-threaded caller; this process \
                 has {n} threads"
            )))
        }
        None => {
            return Err(LxcError::Isolated(
                "cannot tell whether this process is single-threaded (/proc/self/stat)".to_owned(),
            ))
        }
    }
    let (reader, writer) = report_pipe()?;
    let parent = nix::unistd::getpid();
    // SAFETY: this process has one thread (checked above; creating a thread meanwhile would
    // need this very thread), so the child may allocate; it never returns into the
    // caller's code but ends with `_exit` after writing its one report.
    match unsafe { nix::unistd::fork() }.map_err(|e| LxcError::os("fork", e.into()))? {
        nix::unistd::ForkResult::Child => {
            drop(reader);
            // Ends with the caller: a deadline that kills the caller must not leave it
            // (and a caller already gone leaves nobody to report to).
            if !ctl_process::die_with_parent(parent.as_raw()).unwrap_or(false) {
                // SAFETY: `_exit` ends this child only.
                unsafe { libc::_exit(1) };
            }
            let report = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body))
                .unwrap_or_else(|_| Report::Error("the forked process panicked".to_owned()));
            let _ = writer.send(&report);
            // SAFETY: ends this child only; nothing of the caller's runs here afterwards.
            unsafe { libc::_exit(0) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(writer);
            Ok(Reporter {
                child,
                reader: reader.0,
            })
        }
    }
}

impl Reporter {
    /// Waits for the report (until `until`) and reaps the child; past `until` the child and
    /// the processes it made (liblxc's, for an attach) are killed and reaped: `None`.
    fn collect(self, until: Option<Instant>) -> Result<Collected, LxcError> {
        let Reporter { child, reader } = self;
        let Some(bytes) = read_report(reader, child, until) else {
            kill_attach(child);
            let _ = waitpid(child, None);
            return Ok(None);
        };
        let status = loop {
            match waitpid(child, None) {
                Err(Errno::EINTR) => continue,
                other => break other.map_err(|e| LxcError::os("waitpid", e.into()))?,
            }
        };
        Ok(Some((Report::decode(&bytes), status)))
    }
}

/// Reads a forked child's one report: until EOF, or until the child has exited and what it
/// wrote is read (another process may hold the pipe's write end open: the container's user
/// can copy it out of a dumpable worker, and must not make the caller wait forever).
/// `None` when `until` passes first.
fn read_report(reader: OwnedFd, child: NixPid, until: Option<Instant>) -> Option<Vec<u8>> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use nix::sys::wait::{waitid, Id};
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
            let mut fds = [PollFd::new(reader.as_fd(), PollFlags::POLLIN)];
            let timeout =
                PollTimeout::try_from(wait.as_millis() as i32 + 1).unwrap_or(PollTimeout::MAX);
            match poll(&mut fds, timeout) {
                Ok(0) | Err(Errno::EINTR) => {
                    // Exited (a zombie, not reaped here: the caller does that)?
                    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
                    exited = matches!(waitid(Id::Pid(child), flags), Ok(status) if status.pid().is_some());
                    if exited {
                        let _ = set_nonblocking(&reader);
                    }
                    continue;
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        match nix::unistd::read(&reader, &mut buf) {
            Ok(0) => break,
            Ok(n) if bytes.len() < MAX_REPORT => bytes.extend_from_slice(&buf[..n]),
            Ok(_) => {}
            Err(Errno::EINTR) => {}
            // Nothing more from an exited child: the rest of the pipe's writers are not its.
            Err(Errno::EAGAIN) if exited => break,
            Err(Errno::EAGAIN) => {}
            Err(_) => break,
        }
    }
    Some(bytes)
}

fn set_nonblocking(fd: &OwnedFd) -> nix::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

/// Kills a forked child that did not report in time (an attaching one stuck in liblxc),
/// and the processes it made (for an attach, liblxc's transient process and the attached
/// one, which liblxc clones with `CLONE_PARENT`: the child's children). A runner is the
/// owner of the container's user namespace, so it may signal them also after they became
/// the container's root.
fn kill_attach(child: NixPid) {
    use nix::sys::signal::{kill, Signal};
    let _ = kill(child, Signal::SIGSTOP);
    for pid in children_of(child.as_raw()) {
        let _ = kill(NixPid::from_raw(pid), Signal::SIGKILL);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip_and_cut_ones_do_not_decode() {
        for report in [
            Report::Status(0x0100),
            Report::Value(-3),
            Report::Text("a b\nc".to_owned()),
            Report::Text(String::new()),
            Report::TimedOut,
            Report::Error("no: such thing".to_owned()),
        ] {
            let bytes = report.encode();
            assert_eq!(Report::decode(&bytes), Some(report.clone()));
            for cut in 0..bytes.len() {
                assert_eq!(
                    Report::decode(&bytes[..cut]),
                    None,
                    "{report:?} cut at {cut}"
                );
            }
            let mut longer = bytes.clone();
            longer.push(b'x');
            assert_eq!(Report::decode(&longer), None);
        }
        assert_eq!(Report::decode(b"ok 0"), None);
    }

    fn seal() -> io::Result<()> {
        Ok(())
    }

    /// A worker reports its value or its error; the single-thread check holds in this
    /// test's own thread only when the harness runs one test, so both answers are
    /// accepted, but a refusal must say why.
    #[test]
    fn a_worker_reports_or_a_threaded_caller_is_refused() {
        let iso = Isolation::new(seal);
        match in_dumpable_worker(&iso, "test", &|| Ok::<_, String>(7)) {
            Ok(value) => assert_eq!(value, 7),
            Err(e) => assert!(e.to_string().contains("single-threaded"), "{e}"),
        }
    }
}
