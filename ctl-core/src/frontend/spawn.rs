//! Starting the runner without copying the daemon.
//!
//! `posix_spawn` (glibc implements it with `clone(CLONE_VM | CLONE_VFORK)`) creates the
//! child without copying the caller's page tables, so its cost does not grow with the
//! daemon's size, and the child runs no code of ours between the clone and the exec: only
//! glibc's file actions (dup2) and attribute setup, which do not allocate or lock. Every
//! privileged step (rlimits, cgroups, credentials) happens afterwards in the runner
//! itself, which is single-threaded and still root when it starts.
//!
//! [`spawn_into_cgroup`] is the same start, but with the child born inside a cgroup v2
//! directory (`clone3` with `CLONE_INTO_CGROUP`, see [`super::clone3`]) when the kernel
//! allows it, so that the runner need not move itself in that hierarchy; it falls back to
//! `posix_spawn` otherwise.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::spawn::{PosixSpawnAttr, PosixSpawnFileActions, PosixSpawnFlags};
use nix::sys::signal::{SigSet, Signal};
use nix::unistd::Pid;

use super::clone3::{self, Attempt};

/// Lowest fd number a source fd may have, so that no `dup2` to a target (0..=6 for the
/// conversation and the command's stdio, then one kept `cgroup.procs` file per cgroup
/// hierarchy) can overwrite a source still to be duplicated. The kept files are opened at
/// or above it, so only the per-call pipes need moving.
pub(crate) const FIRST_SAFE_SOURCE: RawFd = 32;

/// Signals whose disposition the child gets reset to the default, whatever the daemon does
/// with them (Rust's runtime ignores `SIGPIPE`, a daemon may ignore `SIGHUP` or catch
/// `SIGTERM`; an ignored signal would stay ignored across `exec`). Both spawn variants
/// reset exactly these; every other *ignored* signal stays ignored, as POSIX specifies.
pub(crate) const DEFAULT_SIGNALS: [libc::c_int; 8] = [
    libc::SIGPIPE,
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGCHLD,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

/// What to start.
pub(crate) struct SpawnRequest<'a> {
    pub path: &'a Path,
    pub argv0: &'a str,
    pub env: &'a [String],
    /// `(source fd in the parent, fd number in the child)`.
    pub fds: &'a [(BorrowedFd<'a>, RawFd)],
    pub own_process_group: bool,
}

/// Everything a spawn needs, prepared before any child exists (the child of the `clone3`
/// variant must not allocate): C strings and the fd plan.
pub(crate) struct Program {
    pub path: CString,
    pub argv: [CString; 1],
    pub envp: Vec<CString>,
    /// `[source, target]` pairs for `dup2`; every source is at least `FIRST_SAFE_SOURCE`
    /// and every target below it, so the order of the duplications cannot matter.
    pub dups: Vec<[RawFd; 2]>,
    pub own_process_group: bool,
    /// The close-on-exec copies of sources that were below `FIRST_SAFE_SOURCE`; closed in
    /// the parent when the program is dropped (after the spawn).
    _lifted: Vec<OwnedFd>,
}

impl Program {
    pub fn new(req: &SpawnRequest<'_>) -> io::Result<Program> {
        let path = CString::new(req.path.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))?;
        let argv = [CString::new(req.argv0).map_err(|_| nul("title"))?];
        let envp = req
            .env
            .iter()
            .map(|v| CString::new(v.as_str()).map_err(|_| nul("environment")))
            .collect::<io::Result<Vec<_>>>()?;

        // Sources below FIRST_SAFE_SOURCE are duplicated above it first (close-on-exec,
        // closed again when `lifted` drops), so the order of the dup2 actions cannot matter.
        let mut lifted: Vec<OwnedFd> = Vec::new();
        let mut dups = Vec::with_capacity(req.fds.len());
        for &(source, target) in req.fds {
            if target >= FIRST_SAFE_SOURCE {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("child fd {target} is not below {FIRST_SAFE_SOURCE}"),
                ));
            }
            let raw = if source.as_raw_fd() < FIRST_SAFE_SOURCE {
                let dup = ctl_process::raise_above(source, FIRST_SAFE_SOURCE)?;
                let raw = dup.as_raw_fd();
                lifted.push(dup);
                raw
            } else {
                source.as_raw_fd()
            };
            dups.push([raw, target]);
        }
        Ok(Program {
            path,
            argv,
            envp,
            dups,
            own_process_group: req.own_process_group,
            _lifted: lifted,
        })
    }
}

/// Spawns the process with `posix_spawn`; returns its pid.
pub(crate) fn spawn(req: &SpawnRequest<'_>) -> io::Result<Pid> {
    posix_spawn(&Program::new(req)?)
}

/// Where a spawned process started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Born {
    /// In the cgroup v2 directory that was asked for (`clone3` with `CLONE_INTO_CGROUP`).
    InCgroup,
    /// In the caller's cgroups (`posix_spawn`): the process must move itself.
    Outside,
}

/// Spawns the process directly into the cgroup v2 directory `cgroup` when the kernel can
/// (`clone3` with `CLONE_INTO_CGROUP`), otherwise with `posix_spawn` in the caller's
/// cgroups. Which one happened is in the answer; the rules are in [`super::clone3`].
pub(crate) fn spawn_into_cgroup(req: &SpawnRequest<'_>, cgroup: &Path) -> io::Result<(Pid, Born)> {
    let program = Program::new(req)?;
    match clone3::spawn(&program, cgroup) {
        Attempt::Spawned(pid) => Ok((pid, Born::InCgroup)),
        Attempt::Failed(e) => Err(e),
        Attempt::Fallback(why) => {
            tracing::trace!(cgroup = %cgroup.display(), %why, "clone3 into the cgroup not used; posix_spawn");
            posix_spawn(&program).map(|pid| (pid, Born::Outside))
        }
    }
}

fn posix_spawn(program: &Program) -> io::Result<Pid> {
    let mut actions = PosixSpawnFileActions::init()?;
    for &[source, target] in &program.dups {
        // dup2 into the target clears close-on-exec on the child's copy only.
        actions.add_dup2(source, target)?;
    }

    let mut attr = PosixSpawnAttr::init()?;
    let mut flags =
        PosixSpawnFlags::POSIX_SPAWN_SETSIGMASK | PosixSpawnFlags::POSIX_SPAWN_SETSIGDEF;
    if program.own_process_group {
        flags |= PosixSpawnFlags::POSIX_SPAWN_SETPGROUP;
        attr.set_pgroup(Pid::from_raw(0))?;
    }
    attr.set_flags(flags)?;
    attr.set_sigmask(&SigSet::empty())?;
    let mut defaults = SigSet::empty();
    for s in DEFAULT_SIGNALS {
        defaults.add(Signal::try_from(s)?);
    }
    attr.set_sigdefault(&defaults)?;

    Ok(nix::spawn::posix_spawn(
        program.path.as_c_str(),
        &actions,
        &attr,
        &program.argv,
        &program.envp,
    )?)
}

fn nul(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{what} contains a NUL byte"),
    )
}

/// `pidfd_open(2)`: an fd that becomes readable when the child exits, so the frontend can
/// wait for the reply, the child's exit and a deadline in one `poll`.
pub(crate) fn pidfd_open(pid: Pid) -> io::Result<OwnedFd> {
    ctl_process::pidfd_open(pid.as_raw())
}
