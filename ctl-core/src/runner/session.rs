//! The runner leaves the caller's terminal before anything else.
//!
//! A runner, and everything it starts (liblxc's attached processes, `lxc.hook.*`, the
//! program of an Exec), must never be able to reach a terminal of the host. A process
//! that shares the caller's session has the caller's controlling terminal: inside a
//! container, `open("/dev/tty")` then returns the operator's terminal (LXC bind-mounts the
//! host's `/dev/tty` node into containers), and `ioctl(TIOCSTI)` on it types commands into
//! the operator's root shell. So every runner starts a session of its own, which has no
//! controlling terminal, and checks that `/dev/tty` is gone for it; a runner that cannot
//! get rid of the terminal refuses to run at all.

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

/// Why the runner cannot leave the caller's terminal, or cannot be made non-dumpable; it
/// refuses to run then.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SessionError {
    #[error("setsid: {0}")]
    Setsid(#[source] Errno),
    #[error(
        "the runner still has a controlling terminal after setsid/TIOCNOTTY; \
         refusing to run anything that could reach it"
    )]
    StillHasTerminal,
    #[error("cannot check for a controlling terminal (/dev/tty): {0}")]
    CheckTerminal(#[source] Errno),
    #[error("cannot open the controlling terminal to leave it: {0}")]
    OpenTerminal(#[source] Errno),
    #[error("cannot leave the controlling terminal (TIOCNOTTY): {0}")]
    Tiocnotty(#[source] std::io::Error),
    #[error("cannot make the runner non-dumpable: {0}")]
    Dumpable(#[source] std::io::Error),
}

/// Starts a new session (no controlling terminal, a process group of its own), or, when
/// that is impossible because this process already leads a process group (a shell started
/// it as a job), detaches from the controlling terminal with `TIOCNOTTY`. Then checks that
/// the process has no controlling terminal.
pub(crate) fn leave_terminal() -> Result<(), SessionError> {
    match nix::unistd::setsid() {
        Ok(_) => {}
        // Already a process group leader (or session leader): detach instead.
        Err(Errno::EPERM) => detach_controlling_terminal()?,
        Err(e) => return Err(SessionError::Setsid(e)),
    }
    match open_controlling_terminal() {
        Err(Errno::ENXIO) => Ok(()),
        Ok(_) => Err(SessionError::StillHasTerminal),
        Err(e) => Err(SessionError::CheckTerminal(e)),
    }
}

/// Makes this process non-dumpable (`PR_SET_DUMPABLE` 0) and checks that it is: not
/// ptraceable, its `/proc` files root's, its fds out of reach of `pidfd_getfd` for
/// processes of its own uid.
pub(crate) fn not_dumpable() -> Result<(), SessionError> {
    // SAFETY: integer-only prctls.
    let (set, now) = unsafe {
        (
            libc::prctl(libc::PR_SET_DUMPABLE, 0 as libc::c_ulong),
            libc::prctl(libc::PR_GET_DUMPABLE),
        )
    };
    if set != 0 || now != 0 {
        return Err(SessionError::Dumpable(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// `/dev/tty` is the calling process's controlling terminal; `ENXIO` when it has none.
fn open_controlling_terminal() -> nix::Result<std::os::fd::OwnedFd> {
    nix::fcntl::open(
        "/dev/tty",
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

fn detach_controlling_terminal() -> Result<(), SessionError> {
    let tty = match open_controlling_terminal() {
        Ok(tty) => tty,
        Err(Errno::ENXIO) => return Ok(()),
        Err(e) => return Err(SessionError::OpenTerminal(e)),
    };
    // SAFETY: TIOCNOTTY takes no argument; on a process that does not lead its session it
    // only clears this process's controlling terminal.
    let rc = unsafe { libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(&tty), libc::TIOCNOTTY) };
    if rc != 0 {
        return Err(SessionError::Tiocnotty(std::io::Error::last_os_error()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The messages a runner prints (`ctl-runner: ...`) before it refuses to run, as they
    /// were when these functions returned strings.
    #[test]
    fn messages() {
        let eio = || std::io::Error::from_raw_os_error(libc::EIO);
        let cases = [
            (
                SessionError::Setsid(Errno::EINVAL),
                format!("setsid: {}", Errno::EINVAL),
            ),
            (
                SessionError::StillHasTerminal,
                "the runner still has a controlling terminal after setsid/TIOCNOTTY; refusing \
                 to run anything that could reach it"
                    .to_owned(),
            ),
            (
                SessionError::CheckTerminal(Errno::EIO),
                format!(
                    "cannot check for a controlling terminal (/dev/tty): {}",
                    Errno::EIO
                ),
            ),
            (
                SessionError::OpenTerminal(Errno::EIO),
                format!(
                    "cannot open the controlling terminal to leave it: {}",
                    Errno::EIO
                ),
            ),
            (
                SessionError::Tiocnotty(eio()),
                format!(
                    "cannot leave the controlling terminal (TIOCNOTTY): {}",
                    eio()
                ),
            ),
            (
                SessionError::Dumpable(eio()),
                format!("cannot make the runner non-dumpable: {}", eio()),
            ),
        ];
        for (e, message) in cases {
            assert_eq!(e.to_string(), message);
        }
    }
}
