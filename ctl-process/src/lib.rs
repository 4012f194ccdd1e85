//! Process mechanics that the runner, the frontend and `ctl-lxc` all need, written once:
//! ending with the parent, closing and marking fd ranges, moving fds out of the way, the
//! wait-status codec and its description, signal names, writing a whole buffer,
//! recognising cgroup files, undoing `/proc/*/mountinfo`'s escapes, and naming a file's
//! kind in refusals ([`files`]). No dependency on the rest of the workspace, so that
//! `ctl-lxc` (free of `ctl-core`) and `ctl-core` (free of LXC) share it; `ctl-core`
//! re-exports it as `ctl_core::process`.
//!
//! Everything here is safe to call between `fork` and `exec` of a *single-threaded*
//! process (no locks are taken); none of it allocates except [`describe`],
//! [`unescape_mountinfo`] and the refusal of [`files::require_regular`].

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

/// Makes this process receive SIGKILL when its parent ends, and checks that the parent is
/// still `expected_parent` (the pid it had before the fork): `Ok(false)` when the parent is
/// already gone, so the signal was armed too late and the caller should end itself.
pub fn die_with_parent(expected_parent: i32) -> io::Result<bool> {
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
    Ok(nix::unistd::getppid().as_raw() == expected_parent)
}

/// `pidfd_open(2)`: an fd naming process `pid` for as long as the fd is open (it becomes
/// readable when the process exits, and a signal sent through it never reaches a process
/// that reused the pid).
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: a plain syscall with integer arguments; on success it returns a new fd that we
    // take ownership of.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a fresh fd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Closes every fd from `first` to `last` (inclusive).
pub fn close_range(first: u32, last: u32) -> io::Result<()> {
    // SAFETY: close_range(2) only closes fds; the caller owns no Rust object with an fd in
    // the range any more (it passes the range it means to close).
    let rc = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Marks every fd from `first` up close-on-exec (none is closed).
pub fn cloexec_from(first: u32) -> io::Result<()> {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags; no fd is closed.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC as libc::c_uint,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A close-on-exec duplicate of `fd` numbered `floor` or above: moving every source above
/// the targets first lets a series of `dup2` onto low numbers never overwrite a source
/// still to come.
pub fn raise_above(fd: BorrowedFd<'_>, floor: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC creates a new fd, which we own from here.
    let raised = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, floor) };
    if raised < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raised` is a fresh fd nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raised) })
}

/// Writes all of `bytes`, retrying after EINTR and short writes.
pub fn write_all(fd: BorrowedFd<'_>, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match nix::unistd::write(fd, bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// A wait status as the number `waitpid` gives (what travels in a report).
pub fn encode_status(status: ExitStatus) -> i32 {
    status.into_raw()
}

/// The inverse of [`encode_status`].
pub fn decode_status(raw: i32) -> ExitStatus {
    ExitStatus::from_raw(raw)
}

/// A shell's exit code for `status`: the code, or `128 + n` for a program killed by
/// signal `n`.
pub fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// The name of signal `n` (`SIGKILL`), or `unknown signal`.
pub fn signal_name(n: i32) -> &'static str {
    nix::sys::signal::Signal::try_from(n).map_or("unknown signal", |s| s.as_str())
}

/// "exited with status N" / "was killed by signal N (SIGNAME)".
pub fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => format!("was killed by signal {sig} ({})", signal_name(sig)),
        _ => format!("ended with wait status {}", status.into_raw()),
    }
}

/// Whether `fd` is a file of a cgroup (v1) or cgroup2 file system.
pub fn on_cgroup_fs(fd: BorrowedFd<'_>) -> io::Result<bool> {
    use nix::sys::statfs::{fstatfs, CGROUP2_SUPER_MAGIC, CGROUP_SUPER_MAGIC};
    let kind = fstatfs(fd)?.filesystem_type();
    Ok(kind == CGROUP_SUPER_MAGIC || kind == CGROUP2_SUPER_MAGIC)
}

/// Undoes `/proc/*/mountinfo`'s escapes of a path field: the kernel writes space, tab,
/// newline and backslash as `\ooo` (three octal digits). Exactly three octal digits of a
/// byte's value (at most `\377`) are one byte; anything else is kept as it is.
pub fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'\\')
            .then(|| bytes.get(i + 1..i + 4))
            .flatten()
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)))
            .map(|d| d.iter().fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0')))
            .and_then(|v| u8::try_from(v).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What kind of file an fd or path is, for refusals that name it: root-side code reads
/// only regular files in trees a container's root or user controls (a FIFO blocks the
/// reader, a device does what the device does).
/// Maps an rlimit name (`nofile`, `RLIMIT_NOFILE`, `NOFILE`: osctld's prlimits, LXC's
/// `lxc.prlimit.*`) to its resource (nix's portable type, not glibc's
/// `__rlimit_resource_t`).
pub fn rlimit_resource(name: &str) -> Option<nix::sys::resource::Resource> {
    use nix::sys::resource::Resource;
    let lower = name.to_ascii_lowercase();
    let short = lower.strip_prefix("rlimit_").unwrap_or(&lower);
    Some(match short {
        "as" => Resource::RLIMIT_AS,
        "core" => Resource::RLIMIT_CORE,
        "cpu" => Resource::RLIMIT_CPU,
        "data" => Resource::RLIMIT_DATA,
        "fsize" => Resource::RLIMIT_FSIZE,
        "locks" => Resource::RLIMIT_LOCKS,
        "memlock" => Resource::RLIMIT_MEMLOCK,
        "msgqueue" => Resource::RLIMIT_MSGQUEUE,
        "nice" => Resource::RLIMIT_NICE,
        "nofile" => Resource::RLIMIT_NOFILE,
        "nproc" => Resource::RLIMIT_NPROC,
        "rss" => Resource::RLIMIT_RSS,
        "rtprio" => Resource::RLIMIT_RTPRIO,
        "rttime" => Resource::RLIMIT_RTTIME,
        "sigpending" => Resource::RLIMIT_SIGPENDING,
        "stack" => Resource::RLIMIT_STACK,
        _ => return None,
    })
}

pub mod files {
    /// What a file of mode `mode` (`st_mode`) is, with its article: "a FIFO", "a
    /// character device"...
    pub fn file_kind(mode: u32) -> &'static str {
        match mode & libc::S_IFMT {
            libc::S_IFREG => "a regular file",
            libc::S_IFDIR => "a directory",
            libc::S_IFLNK => "a symlink",
            libc::S_IFIFO => "a FIFO",
            libc::S_IFCHR => "a character device",
            libc::S_IFBLK => "a block device",
            libc::S_IFSOCK => "a socket",
            _ => "of an unknown type",
        }
    }

    /// `Ok` for a regular file, else the one-line refusal naming `path` and what it is.
    pub fn require_regular(path: impl std::fmt::Display, mode: u32) -> Result<(), String> {
        if mode & libc::S_IFMT == libc::S_IFREG {
            return Ok(());
        }
        Err(format!(
            "{path} is {}, not a regular file; refusing to read it",
            file_kind(mode)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_fields_are_unescaped_once_and_strictly() {
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
        assert_eq!(unescape_mountinfo("/tab\\011x\\134y"), "/tab\tx\\y");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
        // Cut short, not octal, or beyond a byte: kept as written.
        assert_eq!(unescape_mountinfo("/x\\"), "/x\\");
        assert_eq!(unescape_mountinfo("/x\\04"), "/x\\04");
        assert_eq!(unescape_mountinfo("/x\\+12"), "/x\\+12");
        assert_eq!(unescape_mountinfo("/x\\777"), "/x\\777");
    }

    #[test]
    fn file_kinds_are_named() {
        use super::files::*;
        assert_eq!(file_kind(libc::S_IFIFO | 0o644), "a FIFO");
        assert!(require_regular("/x", libc::S_IFREG | 0o600).is_ok());
        let e = require_regular("/dev/tty", libc::S_IFCHR | 0o666).unwrap_err();
        assert_eq!(
            e,
            "/dev/tty is a character device, not a regular file; refusing to read it"
        );
    }

    use std::os::fd::AsFd;

    #[test]
    fn statuses_round_trip_and_read_as_a_shell_would() {
        let exited = decode_status(3 << 8);
        assert_eq!(
            (exit_code(exited), describe(exited)),
            (3, "exited with status 3".into())
        );
        let killed = decode_status(libc::SIGKILL);
        assert_eq!(exit_code(killed), 137);
        assert_eq!(describe(killed), "was killed by signal 9 (SIGKILL)");
        assert_eq!(encode_status(killed), libc::SIGKILL);
        assert_eq!(signal_name(1000), "unknown signal");
    }

    #[test]
    fn fds_are_raised_written_and_recognised() {
        let (r, w) = nix::unistd::pipe().unwrap();
        let high = raise_above(w.as_fd(), 100).unwrap();
        assert!(high.as_raw_fd() >= 100);
        write_all(high.as_fd(), b"hello").unwrap();
        drop((w, high));
        let mut buf = [0u8; 16];
        let n = nix::unistd::read(&r, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello");
        // A pipe is no cgroup file.
        assert!(!on_cgroup_fs(r.as_fd()).unwrap());
    }
}
