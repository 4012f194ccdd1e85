//! The runner's file descriptors: only what the envelope names survives, and each named
//! fd must be what the envelope claims (open, readable or writable).

use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};

/// Why the runner cannot take (or keep only) the fds the envelope names. `what` is the
/// fd's role in the envelope (`return`, `stdin`, ...). The messages travel in the reply.
#[derive(Debug, thiserror::Error)]
pub(super) enum FdsError {
    #[error("close_range({first}, {last}): {source}")]
    CloseRange {
        first: u32,
        last: u32,
        #[source]
        source: std::io::Error,
    },
    #[error("bad {what} fd {fd}")]
    Negative { what: &'static str, fd: RawFd },
    #[error("{what} fd 0 is the envelope, not an output")]
    EnvelopeAsOutput { what: &'static str },
    #[error("{what} fd {fd} is not open: {source}")]
    NotOpen {
        what: &'static str,
        fd: RawFd,
        #[source]
        source: Errno,
    },
    #[error("{what} fd {fd} is not a stream but an O_PATH handle")]
    PathHandle { what: &'static str, fd: RawFd },
    #[error("{what} fd {fd} is not a stream but a directory")]
    Directory { what: &'static str, fd: RawFd },
    #[error("{what} fd {fd} is not {}", if *writable { "writable" } else { "readable" })]
    WrongMode {
        what: &'static str,
        fd: RawFd,
        writable: bool,
    },
    #[error("dup {what} fd {fd}: {source}")]
    Dup {
        what: &'static str,
        fd: RawFd,
        #[source]
        source: Errno,
    },
    #[error("{what} fd {fd}: {source}")]
    CloseOnExec {
        what: &'static str,
        fd: RawFd,
        #[source]
        source: Errno,
    },
}

/// Closes every fd above 2 that is not in `keep`.
pub(super) fn close_all_except(keep: &[RawFd]) -> Result<(), FdsError> {
    let mut keep: Vec<u32> = keep
        .iter()
        .filter(|fd| **fd > 2)
        .map(|fd| *fd as u32)
        .collect();
    keep.sort_unstable();
    keep.dedup();
    let mut first = 3u32;
    for fd in keep.into_iter().chain(std::iter::once(u32::MAX)) {
        if fd > first {
            close_range(first, fd - 1)?;
        }
        first = fd.saturating_add(1);
    }
    Ok(())
}

fn close_range(first: u32, last: u32) -> Result<(), FdsError> {
    // No Rust object owns an fd in this range at this point of the runner (std's stdin
    // handle is fd 0, which is never closed here).
    ctl_process::close_range(first, last).map_err(|source| FdsError::CloseRange {
        first,
        last,
        source,
    })
}

fn access_mode(fd: RawFd, what: &'static str) -> Result<OFlag, FdsError> {
    // SAFETY: the fd is only inspected; a number that is not open makes fcntl fail.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let flags = fcntl(borrowed, FcntlArg::F_GETFL).map_err(|source| FdsError::NotOpen {
        what,
        fd,
        source,
    })?;
    let flags = OFlag::from_bits_truncate(flags);
    // A directory or an `O_PATH` handle is no stream, whatever its access mode; handed to
    // command code running as the container's user, a directory fd would open everything
    // below it (`openat`) that the user could not reach by path.
    if flags.contains(OFlag::O_PATH) {
        return Err(FdsError::PathHandle { what, fd });
    }
    if nix::sys::stat::fstat(borrowed).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR) {
        return Err(FdsError::Directory { what, fd });
    }
    Ok(flags & OFlag::O_ACCMODE)
}

/// Takes ownership of the fds the envelope names, checking each is what it claims.
/// An fd named twice (stdout = stderr) is duplicated; 0/1/2 are duplicated rather than
/// taken, so the runner's own stdio stays intact. Every fd returned is close-on-exec:
/// programs the command executes must not inherit the return pipe.
#[derive(Default)]
pub(super) struct Claimer {
    taken: Vec<RawFd>,
}

impl Claimer {
    /// An output fd, checked to be writable.
    pub fn output(&mut self, fd: RawFd, what: &'static str) -> Result<OwnedFd, FdsError> {
        self.claim(fd, what, true)
    }

    /// An input fd, checked to be readable.
    pub fn input(&mut self, fd: RawFd, what: &'static str) -> Result<OwnedFd, FdsError> {
        self.claim(fd, what, false)
    }

    fn claim(
        &mut self,
        fd: RawFd,
        what: &'static str,
        writable: bool,
    ) -> Result<OwnedFd, FdsError> {
        if fd < 0 {
            return Err(FdsError::Negative { what, fd });
        }
        if fd == 0 && writable {
            return Err(FdsError::EnvelopeAsOutput { what });
        }
        let mode = access_mode(fd, what)?;
        let ok = if writable {
            mode == OFlag::O_WRONLY || mode == OFlag::O_RDWR
        } else {
            mode == OFlag::O_RDONLY || mode == OFlag::O_RDWR
        };
        if !ok {
            return Err(FdsError::WrongMode { what, fd, writable });
        }
        // SAFETY: the fd is open (checked above); it is only borrowed for this fcntl.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        if fd <= 2 || self.taken.contains(&fd) {
            let dup = fcntl(borrowed, FcntlArg::F_DUPFD_CLOEXEC(3))
                .map_err(|source| FdsError::Dup { what, fd, source })?;
            // SAFETY: F_DUPFD_CLOEXEC returned a fresh fd owned by nobody else.
            return Ok(unsafe { OwnedFd::from_raw_fd(dup) });
        }
        fcntl(borrowed, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))
            .map_err(|source| FdsError::CloseOnExec { what, fd, source })?;
        self.taken.push(fd);
        // SAFETY: the envelope hands this fd to the runner; nothing else in the process
        // owns it, and `taken` guarantees it is not owned twice.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The messages the runner writes into its reply (`ProtocolRefusal::Envelope`), as
    /// they were when these functions returned strings.
    #[test]
    fn messages() {
        let ebadf = || Errno::EBADF;
        let cases: Vec<(FdsError, String)> = vec![
            (
                FdsError::CloseRange {
                    first: 3,
                    last: 9,
                    source: std::io::Error::from_raw_os_error(libc::EINVAL),
                },
                format!(
                    "close_range(3, 9): {}",
                    std::io::Error::from_raw_os_error(libc::EINVAL)
                ),
            ),
            (
                FdsError::Negative {
                    what: "stdin",
                    fd: -4,
                },
                "bad stdin fd -4".to_owned(),
            ),
            (
                FdsError::EnvelopeAsOutput { what: "return" },
                "return fd 0 is the envelope, not an output".to_owned(),
            ),
            (
                FdsError::NotOpen {
                    what: "stdout",
                    fd: 9,
                    source: ebadf(),
                },
                format!("stdout fd 9 is not open: {}", ebadf()),
            ),
            (
                FdsError::PathHandle {
                    what: "stdin",
                    fd: 5,
                },
                "stdin fd 5 is not a stream but an O_PATH handle".to_owned(),
            ),
            (
                FdsError::Directory {
                    what: "stdin",
                    fd: 5,
                },
                "stdin fd 5 is not a stream but a directory".to_owned(),
            ),
            (
                FdsError::WrongMode {
                    what: "stdout",
                    fd: 5,
                    writable: true,
                },
                "stdout fd 5 is not writable".to_owned(),
            ),
            (
                FdsError::WrongMode {
                    what: "stdin",
                    fd: 4,
                    writable: false,
                },
                "stdin fd 4 is not readable".to_owned(),
            ),
            (
                FdsError::Dup {
                    what: "stderr",
                    fd: 2,
                    source: ebadf(),
                },
                format!("dup stderr fd 2: {}", ebadf()),
            ),
            (
                FdsError::CloseOnExec {
                    what: "stderr",
                    fd: 6,
                    source: ebadf(),
                },
                format!("stderr fd 6: {}", ebadf()),
            ),
        ];
        for (e, message) in cases {
            assert_eq!(e.to_string(), message);
        }
    }

    #[test]
    fn claims_are_checked() {
        let mut claimer = Claimer::default();
        assert_eq!(
            claimer.output(-1, "return").unwrap_err().to_string(),
            "bad return fd -1"
        );
        assert_eq!(
            claimer.output(0, "return").unwrap_err().to_string(),
            "return fd 0 is the envelope, not an output"
        );
        let dir = std::fs::File::open("/").unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&dir);
        assert_eq!(
            claimer.input(fd, "stdin").unwrap_err().to_string(),
            format!("stdin fd {fd} is not a stream but a directory")
        );
    }
}
