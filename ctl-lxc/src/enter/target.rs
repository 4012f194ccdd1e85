//! The container's init, as the kernel shows it: a pidfd from LXC's monitor, the
//! namespaces that differ from ours, and the confinement to copy (bounding set,
//! `no_new_privs`) or to refuse (an LSM label, a seccomp filter no profile explains).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sched::CloneFlags;

use super::policy::NotCovered;
use super::EnterError;
use crate::command_socket;

/// How long the monitor may take to answer.
const MONITOR_DEADLINE: Duration = Duration::from_secs(10);

/// The namespaces an attach joins when they differ from the caller's, in the order
/// liblxc lists them (the user namespace first: the others are owned by it).
const NAMESPACES: &[(&str, libc::c_int)] = &[
    ("user", libc::CLONE_NEWUSER),
    ("mnt", libc::CLONE_NEWNS),
    ("pid", libc::CLONE_NEWPID),
    ("uts", libc::CLONE_NEWUTS),
    ("ipc", libc::CLONE_NEWIPC),
    ("net", libc::CLONE_NEWNET),
    ("cgroup", libc::CLONE_NEWCGROUP),
    ("time", libc::CLONE_NEWTIME),
];

/// The container's init.
#[derive(Debug)]
pub(crate) struct Init {
    /// Held from the monitor's answer to the `setns`: it names init even if init dies and
    /// its pid is reused meanwhile (then `setns` fails with `ESRCH`).
    pub pidfd: OwnedFd,
    /// The namespaces of init that differ from this process's.
    pub join: CloneFlags,
    /// Init's capability bounding set: the attached process gets no more.
    pub bounding_set: u64,
    /// Whether init runs with `no_new_privs` (then so does the attached process).
    pub no_new_privs: bool,
    /// Init's payload cgroup, as `/proc/<init>/cgroup` shows it from the host (the path up
    /// to its `lxc.payload.*` component, the same in every hierarchy): where the attached
    /// process must go, whatever directories of that name exist beside it.
    pub payload: String,
}

/// Asks the monitor of `name` in `lxcpath` for init and reads what the kernel says of it.
///
/// A seccomp filter on init is expected when the configuration names a profile
/// (`with_profile`: this attach applies the running one, as liblxc's does); without one,
/// a filter on init is not covered.
pub(crate) fn open(lxcpath: &Path, name: &str, with_profile: bool) -> Result<Init, EnterError> {
    let trusted = [nix::unistd::geteuid().as_raw(), 0];
    let pidfd = command_socket::get_init_pidfd(
        lxcpath,
        name,
        &trusted,
        Some(Instant::now() + MONITOR_DEADLINE),
    )
    .map_err(EnterError::Monitor)?
    .ok_or(EnterError::NotRunning)?;
    let pid = pid_of(&pidfd)?;
    let status = read(&format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
            .ok_or_else(|| {
                EnterError::os(
                    format!("/proc/{pid}/status: no {name}"),
                    io::ErrorKind::InvalidData.into(),
                )
            })
    };
    let bounding_set = u64::from_str_radix(field("CapBnd")?, 16).map_err(|e| {
        EnterError::os(
            "init's CapBnd",
            io::Error::new(io::ErrorKind::InvalidData, e),
        )
    })?;
    let no_new_privs = field("NoNewPrivs")? == "1";
    if field("Seccomp")? != "0" && !with_profile {
        return Err(EnterError::NotCovered(NotCovered {
            key: "lxc.seccomp.profile".to_owned(),
            why: "the container's init runs under a seccomp filter".to_owned(),
        }));
    }
    // An LSM label other than none or unconfined (AppArmor, SELinux) is not applied here.
    if let Ok(label) = std::fs::read_to_string(format!("/proc/{pid}/attr/current")) {
        let label = label.trim_matches(|c: char| c.is_whitespace() || c == '\0');
        if !label.is_empty() && label != "unconfined" {
            return Err(EnterError::NotCovered(NotCovered {
                key: "lxc.apparmor.profile".to_owned(),
                why: format!("the container's init runs under the LSM label {label:?}"),
            }));
        }
    }
    let payload = payload_of(&read(&format!("/proc/{pid}/cgroup"))?)?;
    let mut join = CloneFlags::empty();
    for &(ns, flag) in NAMESPACES {
        let ours = std::fs::metadata(format!("/proc/self/ns/{ns}"));
        let theirs = std::fs::metadata(format!("/proc/{pid}/ns/{ns}"));
        match (ours, theirs) {
            (Ok(a), Ok(b)) if (a.dev(), a.ino()) == (b.dev(), b.ino()) => {}
            (Ok(_), Ok(_)) => join |= CloneFlags::from_bits_retain(flag),
            // A kernel without this kind of namespace.
            (Err(e), _) if e.kind() == io::ErrorKind::NotFound => {}
            (_, Err(e)) => return Err(EnterError::os(format!("/proc/{pid}/ns/{ns}"), e)),
            (Err(e), _) => return Err(EnterError::os(format!("/proc/self/ns/{ns}"), e)),
        }
    }
    // What was read above is init's only if init is still the process of the pidfd.
    alive(&pidfd)?;
    Ok(Init {
        pidfd,
        join,
        bounding_set,
        no_new_privs,
        payload,
    })
}

/// The container's payload cgroups, from its monitor (one directory fd per hierarchy LXC
/// manages, with where it is): where the attached process goes. Each must be the payload
/// init is in (or below), as `/proc/<init>/cgroup` says.
pub(crate) fn payloads(
    lxcpath: &Path,
    name: &str,
    init: &Init,
) -> Result<Vec<(OwnedFd, PathBuf)>, EnterError> {
    let trusted = [nix::unistd::geteuid().as_raw(), 0];
    let dirs = command_socket::get_cgroup_ctx(
        lxcpath,
        name,
        &trusted,
        Some(Instant::now() + MONITOR_DEADLINE),
    )
    .map_err(EnterError::Monitor)?
    .ok_or(EnterError::NotRunning)?;
    if dirs.is_empty() {
        return Err(EnterError::NotCovered(NotCovered {
            key: "lxc.cgroup".to_owned(),
            why: "the monitor names no cgroup of the container".to_owned(),
        }));
    }
    let mut payloads = Vec::with_capacity(dirs.len());
    for dir in dirs {
        let link = format!("/proc/self/fd/{}", dir.as_raw_fd());
        let path = std::fs::read_link(&link).map_err(|e| EnterError::os(link, e))?;
        if !ends_with_components(&path, &init.payload) {
            return Err(EnterError::NotCovered(NotCovered {
                key: "lxc.cgroup".to_owned(),
                why: format!(
                    "init is in {}, the monitor names {}",
                    init.payload,
                    path.display()
                ),
            }));
        }
        payloads.push((dir, path));
    }
    Ok(payloads)
}

/// Whether `path` ends with the components of `suffix` (an absolute cgroup path).
fn ends_with_components(path: &Path, suffix: &str) -> bool {
    let suffix = suffix.trim_start_matches('/');
    !suffix.is_empty() && path.ends_with(suffix)
}

/// The payload cgroup in `/proc/<init>/cgroup`: each line's path up to its first
/// `lxc.payload.*` component (init may have moved below it, e.g. into `init.scope`); every
/// hierarchy must agree.
fn payload_of(cgroups: &str) -> Result<String, EnterError> {
    let not_covered = |why: String| {
        EnterError::NotCovered(NotCovered {
            key: "lxc.cgroup".to_owned(),
            why,
        })
    };
    let mut found: Option<String> = None;
    for line in cgroups.lines().filter(|l| !l.is_empty()) {
        let path = line.splitn(3, ':').nth(2).unwrap_or("");
        let mut prefix = String::new();
        let mut payload = None;
        for component in path.split('/').filter(|c| !c.is_empty()) {
            prefix.push('/');
            prefix.push_str(component);
            if component.starts_with("lxc.payload.") {
                payload = Some(prefix.clone());
                break;
            }
        }
        let payload = payload
            .ok_or_else(|| not_covered(format!("init's cgroup {path:?} is no LXC payload")))?;
        match &found {
            Some(seen) if *seen != payload => {
                return Err(not_covered(format!(
                    "init's payload cgroups differ between hierarchies ({seen}, {payload})"
                )))
            }
            _ => found = Some(payload),
        }
    }
    found.ok_or_else(|| not_covered("init is in no cgroup".to_owned()))
}

/// The pid a pidfd names, from `/proc/self/fdinfo`.
fn pid_of(pidfd: &OwnedFd) -> Result<i32, EnterError> {
    let info = read(&format!("/proc/self/fdinfo/{}", pidfd.as_raw_fd()))?;
    let pid = info
        .lines()
        .find_map(|l| l.strip_prefix("Pid:"))
        .and_then(|v| v.trim().parse::<i32>().ok())
        .ok_or_else(|| EnterError::os("the monitor's pidfd", io::ErrorKind::InvalidData.into()))?;
    if pid <= 0 {
        return Err(EnterError::NotRunning);
    }
    Ok(pid)
}

/// Whether the process of `pidfd` still exists (`pidfd_send_signal` with signal 0).
pub(crate) fn alive(pidfd: &OwnedFd) -> Result<(), EnterError> {
    // SAFETY: pidfd_send_signal with a live fd, signal 0, no siginfo and no flags.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            0,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if ret == 0 {
        Ok(())
    } else {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ESRCH) {
            Err(EnterError::NotRunning)
        } else {
            Err(EnterError::os("checking the container's init", e))
        }
    }
}

fn read(path: &str) -> Result<String, EnterError> {
    std::fs::read_to_string(path).map_err(|e| EnterError::os(path.to_owned(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_is_init_s_up_to_its_payload_component() {
        let hybrid = "9:name=systemd:/ctl/web/lxc.payload.web\n1:cpu:/ctl/web/lxc.payload.web\n0::/ctl/web/lxc.payload.web/.lxc\n";
        assert_eq!(payload_of(hybrid).unwrap(), "/ctl/web/lxc.payload.web");
        let rebooted = "0::/ctl/web/lxc.pivot/lxc.payload.web-1/init.scope\n";
        assert_eq!(
            payload_of(rebooted).unwrap(),
            "/ctl/web/lxc.pivot/lxc.payload.web-1"
        );
        assert!(payload_of("0::/ctl/web\n").is_err());
        assert!(payload_of("1:cpu:/a/lxc.payload.x\n0::/b/lxc.payload.x\n").is_err());
    }

    /// Pid reuse of init between the monitor's answer and `setns`: the pidfd the monitor
    /// gave names the dead process, never the one that took its pid. Reproduced with the
    /// kernel's `ns_last_pid` (as CRIU restores pids): needs root.
    #[test]
    fn a_pidfd_of_a_dead_init_never_names_the_process_that_took_its_pid() {
        use std::process::Command;
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test sets /proc/sys/kernel/ns_last_pid: run it as root"
        );
        let mut init = Command::new("sleep").arg("100").spawn().unwrap();
        let pid = init.id() as i32;
        let pidfd = ctl_process::pidfd_open(pid).unwrap();
        alive(&pidfd).expect("alive while it runs");
        init.kill().unwrap();
        init.wait().unwrap();
        // Another process takes the pid (other tests fork meanwhile: try again).
        let mut successor = None;
        for _ in 0..500 {
            std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string()).unwrap();
            let mut child = Command::new("sleep").arg("100").spawn().unwrap();
            if child.id() as i32 == pid {
                successor = Some(child);
                break;
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let mut successor = successor.expect("the pid was never reused");
        assert!(Path::new(&format!("/proc/{pid}")).exists());
        assert!(matches!(alive(&pidfd), Err(EnterError::NotRunning)));
        let joined = nix::sched::setns(&pidfd, CloneFlags::CLONE_NEWUTS);
        assert_eq!(joined, Err(nix::errno::Errno::ESRCH));
        let _ = successor.kill();
        let _ = successor.wait();
    }

    #[test]
    fn the_monitor_s_payload_must_be_init_s() {
        let dir = Path::new("/sys/fs/cgroup/unified/ctl/web/lxc.payload.web");
        assert!(ends_with_components(dir, "/ctl/web/lxc.payload.web"));
        assert!(!ends_with_components(dir, "/ctl/web/lxc.payload.web-1"));
        assert!(!ends_with_components(dir, "/eb/lxc.payload.web"));
        assert!(!ends_with_components(dir, "/"));
    }
}
