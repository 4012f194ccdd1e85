//! Reaping attached processes, and `errno` bookkeeping around liblxc calls.

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use crate::error::LxcError;

/// A process id, as liblxc returns it (`pid_t`).
pub type Pid = libc::pid_t;

/// Waits for child `pid` (e.g. from [`Container::attach`](crate::Container::attach)) and
/// returns how it ended: [`ExitStatus::code`] or [`ExitStatusExt::signal`].
/// Retries on `EINTR`.
pub fn wait_pid(pid: Pid) -> Result<ExitStatus, LxcError> {
    if pid <= 0 {
        return Err(LxcError::invalid("waitpid", format!("bad pid {pid}")));
    }
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: waitpid only writes the status into `status`, a live local.
        let ret = unsafe { libc::waitpid(pid, &mut status, 0) };
        if ret == pid {
            return Ok(ExitStatus::from_raw(status));
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(LxcError::os("waitpid", err));
        }
    }
}

/// Sets `errno` to 0, so that a non-zero value after a liblxc call is known to be fresh.
pub(crate) fn clear_errno() {
    // SAFETY: __errno_location returns this thread's errno slot, always valid to write.
    unsafe { *libc::__errno_location() = 0 };
}

/// `errno` now, if non-zero.
pub(crate) fn last_errno() -> Option<i32> {
    io::Error::last_os_error()
        .raw_os_error()
        .filter(|&e| e != 0)
}
