//! A container's init pid, checked before root acts on it (frontend side, as root).
//!
//! Every pid that root-side code acts on (`State`'s answer from the LXC monitor or from its
//! runner fallback, an explicit `WithMountns` pid) comes from something the container's
//! user controls: it owns its LXC home (and so can serve the monitor's command socket
//! itself when the container is stopped) and, in cgroup v1, the cgroups below the entry
//! cgroup. [`ValidatedInit::new`] therefore requires of the process:
//! - a pidfd (`pidfd_open`), so that a pid reused meanwhile is noticed: after everything
//!   below was opened and read, the pidfd must still refer to a live process
//!   (`pidfd_send_signal(pidfd, 0)`), so those files were that process's;
//! - it is inside the container's cgroup (`Container::cgroup_path`, memory hierarchy),
//!   where LXC puts the payload whichever cgroup the runners enter;
//! - its user namespace is not the host's, and is owned by the container's user
//!   (`NS_GET_OWNER_UID` == `Container::ugid`);
//! - its `uid_map` and `gid_map` map 0 to the container's root ids from its LXC config
//!   (read without liblxc, [`ctl_lxc::config::read_lxc_config`]).
//!
//! The namespaces root enters are opened through [`ValidatedInit::open_ns`], which also
//! requires that the namespace is owned by that user namespace (`NS_GET_USERNS`): a
//! process in a user namespace of its own can still sit in the host's mount or UTS
//! namespace. Callers hand the opened fd to their runner (setns on the fd), never a path.
//!
//! What this cannot tell apart: a namespace the container's user built with the same
//! credentials as its container's (with `newuidmap` it may map 0 to its delegated ids).
//! Root then acts in a namespace that user fully controls anyway, as it controls its
//! container's: no more than what the user could do in its own container.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

use ctl_core::Container;

/// `_IO(0xb7, 0x1)`: the owning user namespace of a namespace, as a new fd.
const NS_GET_USERNS: libc::c_ulong = 0xb701;
/// `_IO(0xb7, 0x4)`: the owner uid of a user namespace (in the caller's namespace).
const NS_GET_OWNER_UID: libc::c_ulong = 0xb704;

/// Why a pid was refused.
#[derive(Debug)]
pub enum InitError {
    /// The process is gone (or its pid was reused meanwhile): ask again.
    Gone(String),
    /// It is not the container's init.
    Refused(String),
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitError::Gone(m) | InitError::Refused(m) => f.write_str(m),
        }
    }
}

/// An init pid that passed the checks, with its pidfd and user namespace held open.
#[derive(Debug)]
pub struct ValidatedInit {
    pid: i32,
    pidfd: OwnedFd,
    userns: File,
    /// For messages: `init pid <pid> of container <id>`.
    what: String,
}

impl ValidatedInit {
    /// Checks `pid` as the init of `ct` (see the module's documentation).
    pub fn new(ct: &Container, pid: i32) -> Result<ValidatedInit, InitError> {
        let what = format!("init pid {pid} of container {}", ct.id);
        let refused = |why: String| InitError::Refused(format!("{what} {why}"));
        if pid <= 0 {
            return Err(refused("is not a process id".into()));
        }
        // SAFETY: pidfd_open(2) takes a pid and flags and returns a new fd or -1.
        let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if raw < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ESRCH) {
                return Err(InitError::Gone(format!("{what} is gone")));
            }
            return Err(refused(format!("cannot be opened (pidfd_open: {e})")));
        }
        // SAFETY: a new fd that nothing else owns.
        let pidfd = unsafe { OwnedFd::from_raw_fd(raw as i32) };
        let checked = check(ct, pid, &what);
        // Any refusal of a process that died meanwhile is a "gone".
        require_alive(&pidfd, &what)?;
        Ok(ValidatedInit {
            pid,
            pidfd,
            userns: checked?,
            what,
        })
    }
}

/// The checks of [`ValidatedInit::new`] but the pidfd's; the process's user namespace.
fn check(ct: &Container, pid: i32, what: &str) -> Result<File, InitError> {
    let refused = |why: String| InitError::Refused(format!("{what} {why}"));
    if !super::host::process_in_container_cgroup(ct, pid) {
        return Err(refused(format!(
            "is not in the container's cgroup {}",
            ct.cgroup_path
        )));
    }
    let path = format!("/proc/{}/ns/user", pid);
    let userns = File::open(&path).map_err(|e| refused(format!("({path}: {e})")))?;
    let own = userns
        .metadata()
        .map_err(|e| refused(format!("({path}: {e})")))?;
    let host = std::fs::metadata("/proc/self/ns/user")
        .map_err(|e| refused(format!("(/proc/self/ns/user: {e})")))?;
    if (own.dev(), own.ino()) == (host.dev(), host.ino()) {
        return Err(refused(format!(
            "is in the host's user namespace, not in one owned by {}",
            ct.user
        )));
    }
    let mut owner: libc::uid_t = 0;
    // SAFETY: NS_GET_OWNER_UID writes one uid_t to the pointer it is given.
    let rc = unsafe {
        libc::ioctl(
            userns.as_raw_fd(),
            NS_GET_OWNER_UID,
            &mut owner as *mut libc::uid_t,
        )
    };
    if rc < 0 {
        let e = std::io::Error::last_os_error();
        return Err(refused(format!(
            "is in a user namespace whose owner cannot be read (NS_GET_OWNER_UID: {e})"
        )));
    }
    if owner != ct.ugid {
        return Err(refused(format!(
            "is not in a user namespace owned by {} (uid {}): its owner is uid {owner}",
            ct.user, ct.ugid
        )));
    }
    let config = ctl_lxc::config::read_lxc_config(&ct.lxc_home, &ct.id, ct.ugid)
        .map_err(|e| refused(format!("cannot be checked: {e}")))?;
    for (file, root) in [("uid_map", config.root_uid), ("gid_map", config.root_gid)] {
        let path = format!("/proc/{}/{file}", pid);
        let mut text = String::new();
        File::open(&path)
            .and_then(|f| f.take(64 * 1024).read_to_string(&mut text))
            .map_err(|e| refused(format!("({path}: {e})")))?;
        let zero = text.lines().find_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            (f.first() == Some(&"0")).then(|| f.get(1).and_then(|v| v.parse::<u32>().ok()))
        });
        if zero != Some(Some(root)) {
            let mapped = match zero {
                Some(Some(id)) => format!("to host id {id}"),
                _ => "to nothing".to_owned(),
            };
            return Err(refused(format!(
                "is not in the container's user namespace: its {file} maps 0 {mapped}, the container's config ({}) to {root}",
                config.file.display()
            )));
        }
    }
    Ok(userns)
}

/// `Gone` unless `pidfd` still refers to a live process.
fn require_alive(pidfd: &OwnedFd, what: &str) -> Result<(), InitError> {
    // SAFETY: pidfd_send_signal(2) with signal 0 only checks; no siginfo, no flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            0,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if rc < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ESRCH) {
            return Err(InitError::Gone(format!("{what} is gone")));
        }
        return Err(InitError::Refused(format!(
            "{what} cannot be checked (pidfd_send_signal: {e})"
        )));
    }
    Ok(())
}

impl ValidatedInit {
    /// The pid.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Opens the process's namespace `name` (`uts`, `mnt`, ...): it must be owned by the
    /// checked user namespace, and the process must still be alive once it is open.
    pub fn open_ns(&self, name: &str) -> Result<File, InitError> {
        let what = &self.what;
        let path = format!("/proc/{}/ns/{name}", self.pid);
        let ns = File::open(&path)
            .map_err(|e| InitError::Refused(format!("{what}: cannot open {path}: {e}")))?;
        if name != "user" {
            // SAFETY: NS_GET_USERNS takes no argument and returns a new fd or -1.
            let raw = unsafe { libc::ioctl(ns.as_raw_fd(), NS_GET_USERNS) };
            if raw < 0 {
                let e = std::io::Error::last_os_error();
                return Err(InitError::Refused(format!(
                    "{what}: the owner of its {name} namespace cannot be read (NS_GET_USERNS: {e})"
                )));
            }
            // SAFETY: a new fd that nothing else owns.
            let owner = File::from(unsafe { OwnedFd::from_raw_fd(raw) });
            let same = match (owner.metadata(), self.userns.metadata()) {
                (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
                _ => false,
            };
            if !same {
                require_alive(&self.pidfd, &self.what)?;
                return Err(InitError::Refused(format!(
                    "{what}: its {name} namespace is not owned by its user namespace (the container's)"
                )));
            }
        }
        require_alive(&self.pidfd, &self.what)?;
        Ok(ns)
    }
}
