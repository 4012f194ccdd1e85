//! Cancelling a blocking call from another thread: what the async twin of a custom
//! frontend (blocking code, run on a blocking thread) uses when its future is dropped.
//!
//! The flag is an `eventfd`, so that the blocking conversation's `poll` wakes up on it
//! like on the runner's pipes: the runner in flight is killed and reaped at once and the
//! call ends with [`ErrorKind::Cancelled`](crate::ErrorKind::Cancelled); the frontend's
//! later runner starts and lock waits refuse with the same error.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

/// A cancellation flag that `poll` can wait for.
#[derive(Debug)]
pub struct Cancellation {
    event: OwnedFd,
    cancelled: AtomicBool,
}

impl Cancellation {
    /// A flag not yet raised.
    pub fn new() -> io::Result<Cancellation> {
        // SAFETY: eventfd(2) takes integers and returns a new fd or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Cancellation {
            // SAFETY: `fd` was just returned by eventfd and is owned by nothing else.
            event: unsafe { OwnedFd::from_raw_fd(fd) },
            cancelled: AtomicBool::new(false),
        })
    }

    /// Raises the flag: the fd becomes readable, for good.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        let one = 1u64.to_ne_bytes();
        let _ = nix::unistd::write(&self.event, &one);
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    /// Readable once cancelled.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.event.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

    #[test]
    fn readable_once_cancelled() {
        let c = Cancellation::new().unwrap();
        let mut fds = [PollFd::new(c.fd(), PollFlags::POLLIN)];
        assert_eq!(poll(&mut fds, PollTimeout::ZERO).unwrap(), 0);
        assert!(!c.is_cancelled());
        c.cancel();
        c.cancel();
        let mut fds = [PollFd::new(c.fd(), PollFlags::POLLIN)];
        assert_eq!(poll(&mut fds, PollTimeout::ZERO).unwrap(), 1);
        assert!(c.is_cancelled());
    }
}
