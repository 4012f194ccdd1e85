//! The runner's file descriptors: only what the envelope names survives, and each named
//! fd must be what the envelope claims (open, readable or writable).

use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};

/// Closes every fd above 2 that is not in `keep`.
pub(super) fn close_all_except(keep: &[RawFd]) -> Result<(), String> {
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

fn close_range(first: u32, last: u32) -> Result<(), String> {
    // No Rust object owns an fd in this range at this point of the runner (std's stdin
    // handle is fd 0, which is never closed here).
    ctl_process::close_range(first, last).map_err(|e| format!("close_range({first}, {last}): {e}"))
}

fn access_mode(fd: RawFd, what: &str) -> Result<OFlag, String> {
    // SAFETY: the fd is only inspected; a number that is not open makes fcntl fail.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let flags = fcntl(borrowed, FcntlArg::F_GETFL)
        .map_err(|e| format!("{what} fd {fd} is not open: {e}"))?;
    let flags = OFlag::from_bits_truncate(flags);
    // A directory or an `O_PATH` handle is no stream, whatever its access mode; handed to
    // command code running as the container's user, a directory fd would open everything
    // below it (`openat`) that the user could not reach by path.
    if flags.contains(OFlag::O_PATH) {
        return Err(format!(
            "{what} fd {fd} is not a stream but an O_PATH handle"
        ));
    }
    if nix::sys::stat::fstat(borrowed).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR) {
        return Err(format!("{what} fd {fd} is not a stream but a directory"));
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
    pub fn output(&mut self, fd: RawFd, what: &str) -> Result<OwnedFd, String> {
        self.claim(fd, what, true)
    }

    /// An input fd, checked to be readable.
    pub fn input(&mut self, fd: RawFd, what: &str) -> Result<OwnedFd, String> {
        self.claim(fd, what, false)
    }

    fn claim(&mut self, fd: RawFd, what: &str, writable: bool) -> Result<OwnedFd, String> {
        if fd < 0 {
            return Err(format!("bad {what} fd {fd}"));
        }
        if fd == 0 && writable {
            return Err(format!("{what} fd 0 is the envelope, not an output"));
        }
        let mode = access_mode(fd, what)?;
        let ok = if writable {
            mode == OFlag::O_WRONLY || mode == OFlag::O_RDWR
        } else {
            mode == OFlag::O_RDONLY || mode == OFlag::O_RDWR
        };
        if !ok {
            let needed = if writable { "writable" } else { "readable" };
            return Err(format!("{what} fd {fd} is not {needed}"));
        }
        // SAFETY: the fd is open (checked above); it is only borrowed for this fcntl.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        if fd <= 2 || self.taken.contains(&fd) {
            let dup = fcntl(borrowed, FcntlArg::F_DUPFD_CLOEXEC(3))
                .map_err(|e| format!("dup {what} fd {fd}: {e}"))?;
            // SAFETY: F_DUPFD_CLOEXEC returned a fresh fd owned by nobody else.
            return Ok(unsafe { OwnedFd::from_raw_fd(dup) });
        }
        fcntl(borrowed, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))
            .map_err(|e| format!("{what} fd {fd}: {e}"))?;
        self.taken.push(fd);
        // SAFETY: the envelope hands this fd to the runner; nothing else in the process
        // owns it, and `taken` guarantees it is not owned twice.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}
