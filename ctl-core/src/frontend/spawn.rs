//! Starting the runner without copying the daemon.
//!
//! `posix_spawn` (glibc implements it with `clone(CLONE_VM | CLONE_VFORK)`) creates the
//! child without copying the caller's page tables, so its cost does not grow with the
//! daemon's size, and the child runs no code of ours between the clone and the exec: only
//! glibc's file actions (dup2) and attribute setup, which do not allocate or lock. Every
//! privileged step (rlimits, cgroups, credentials) happens afterwards in the runner
//! itself, which is single-threaded and still root when it starts.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::spawn::{PosixSpawnAttr, PosixSpawnFileActions, PosixSpawnFlags};
use nix::sys::signal::{SigSet, Signal};
use nix::unistd::Pid;

/// Lowest fd number a source fd may have, so that no `dup2` to a target (0..=6) can
/// overwrite a source still to be duplicated.
const FIRST_SAFE_SOURCE: RawFd = 10;

/// What to start.
pub(crate) struct SpawnRequest<'a> {
    pub path: &'a Path,
    pub argv0: &'a str,
    pub env: &'a [String],
    /// `(source fd in the parent, fd number in the child)`.
    pub fds: &'a [(BorrowedFd<'a>, RawFd)],
    pub own_process_group: bool,
}

/// Spawns the process; returns its pid.
pub(crate) fn spawn(req: &SpawnRequest<'_>) -> io::Result<Pid> {
    let path = CString::new(req.path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))?;
    let argv = [CString::new(req.argv0).map_err(|_| nul("title"))?];
    let envp = req
        .env
        .iter()
        .map(|v| CString::new(v.as_str()).map_err(|_| nul("environment")))
        .collect::<io::Result<Vec<_>>>()?;

    // Sources below FIRST_SAFE_SOURCE are duplicated above it first (close-on-exec, closed
    // again when `lifted` drops), so the order of the dup2 actions cannot matter.
    let mut lifted: Vec<OwnedFd> = Vec::new();
    let mut actions = PosixSpawnFileActions::init()?;
    for &(source, target) in req.fds {
        let raw = if source.as_raw_fd() < FIRST_SAFE_SOURCE {
            let dup = nix::fcntl::fcntl(
                source,
                nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(FIRST_SAFE_SOURCE),
            )?;
            // SAFETY: F_DUPFD_CLOEXEC returned a new fd that nothing else owns.
            lifted.push(unsafe { OwnedFd::from_raw_fd(dup) });
            dup
        } else {
            source.as_raw_fd()
        };
        // dup2 into the target clears close-on-exec on the child's copy only.
        actions.add_dup2(raw, target)?;
    }

    let mut attr = PosixSpawnAttr::init()?;
    let mut flags =
        PosixSpawnFlags::POSIX_SPAWN_SETSIGMASK | PosixSpawnFlags::POSIX_SPAWN_SETSIGDEF;
    if req.own_process_group {
        flags |= PosixSpawnFlags::POSIX_SPAWN_SETPGROUP;
        attr.set_pgroup(Pid::from_raw(0))?;
    }
    attr.set_flags(flags)?;
    attr.set_sigmask(&SigSet::empty())?;
    let mut defaults = SigSet::empty();
    for s in [
        Signal::SIGPIPE,
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGCHLD,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
    ] {
        defaults.add(s);
    }
    attr.set_sigdefault(&defaults)?;

    let pid = nix::spawn::posix_spawn(path.as_c_str(), &actions, &attr, &argv, &envp)?;
    drop(lifted);
    Ok(pid)
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
    // SAFETY: a plain syscall with integer arguments; on success it returns a new fd that we
    // take ownership of.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a fresh fd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}
