//! Applying the placement to the runner itself, while it is still root and before any
//! command code runs. Each step is a few syscalls; the order matters:
//!
//! 0. (before this module: a session and process group of its own, see `super::session`),
//! 1. rlimits (raising a hard limit needs root),
//! 2. cgroups: write `0` to each `cgroup.procs` (moves this very process), except in the
//!    hierarchies the frontend already started it in (`born_in`: cgroup v2 through
//!    `clone3(CLONE_INTO_CGROUP)`; on a v2-only host that is every hierarchy, and nothing is
//!    written here); to the file the frontend kept open and handed over (`procs_fds`) when
//!    there is one, else by path. The handed-over files are closed before step 3,
//! 3. `setgroups([ugid])`, `setresgid`, `setresuid` — the kernel clears the permitted and
//!    effective capabilities on this transition (and we clear ambient and inheritable),
//! 4. not dumpable (a uid change makes a process so; checked): the container's user must
//!    not be able to ptrace its runner (liblxc's start and execute, which need a dumpable
//!    caller, run in a forked worker, `ctl_lxc::isolated::in_dumpable_worker`),
//! 5. `no_new_privs` (unless setuid helpers are needed); the capability bounding set is
//!    left alone (see `apply` for why),
//! 6. the parent-death signal, armed *after* the switch (the kernel clears it on a
//!    credential change), then checked against the parent having died already.

use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::unistd::{getppid, setgroups, setresgid, setresuid, Gid, Uid};

use crate::envelope::PlacementSpec;
use ctl_process::rlimit_resource;

/// Why the runner refuses the placement's `cgroup.procs` fds ([`take_procs_files`]) or
/// cannot apply the placement ([`apply`]). The messages travel in the reply.
#[derive(Debug, thiserror::Error)]
pub(super) enum PlacementError {
    #[error("{fds} cgroup.procs fds for {paths} cgroup.procs paths")]
    ProcsFdCount { fds: usize, paths: usize },
    #[error("cgroup.procs fd {fd} for {path} is one of the runner's standard fds")]
    ProcsFdStandard { fd: RawFd, path: String },
    #[error("cgroup.procs fd {fd} for {path} is also another fd of the envelope")]
    ProcsFdTaken { fd: RawFd, path: String },
    #[error("cgroup.procs fd {fd} for {path} is not open: {source}")]
    ProcsFdNotOpen {
        fd: RawFd,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cgroup.procs fd {fd} for {path} is not a cgroup file")]
    ProcsFdNotCgroup { fd: RawFd, path: String },
    #[error("unknown rlimit {name:?}")]
    UnknownRlimit { name: String },
    #[error("setrlimit {name}: {source}")]
    Setrlimit {
        name: String,
        #[source]
        source: nix::errno::Errno,
    },
    #[error("cannot create the entry cgroup {entry}: {source}")]
    CreateEntry {
        entry: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot complete the entry cgroup {entry}: {source}")]
    CompleteEntry {
        entry: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot enter cgroup {procs}: {source}")]
    Enter {
        procs: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot enter cgroup {procs}: it is not a cgroup file")]
    EnterNotCgroup { procs: String },
    #[error("setgroups([{id}]): {source}")]
    Setgroups {
        id: u32,
        #[source]
        source: nix::errno::Errno,
    },
    #[error("setresgid({id}): {source}")]
    Setresgid {
        id: u32,
        #[source]
        source: nix::errno::Errno,
    },
    #[error("setresuid({id}): {source}")]
    Setresuid {
        id: u32,
        #[source]
        source: nix::errno::Errno,
    },
    /// `capget` or `capset` (clearing the inheritable set).
    #[error("{call}: {source}")]
    Capabilities {
        call: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// A `prctl` option (`PR_SET_DUMPABLE`, `PR_SET_NO_NEW_PRIVS`, `PR_SET_PDEATHSIG`).
    #[error("{option}: {source}")]
    Prctl {
        option: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// The `cgroup.procs` files the frontend handed over ([`PlacementSpec::procs_fds`]), one
/// slot per path of `cgroup_procs`, owned from here on. Each must be an open file of a
/// cgroup file system (root writes to it) and an fd of its own: not 0, 1 or 2, not another
/// fd the envelope names (`others`), not named twice. Checked without touching the path:
/// that is the point of the fds.
pub(super) fn take_procs_files(
    spec: &PlacementSpec,
    others: &[RawFd],
) -> Result<Vec<Option<OwnedFd>>, PlacementError> {
    if !spec.procs_fds.is_empty() && spec.procs_fds.len() != spec.cgroup_procs.len() {
        return Err(PlacementError::ProcsFdCount {
            fds: spec.procs_fds.len(),
            paths: spec.cgroup_procs.len(),
        });
    }
    let mut files = Vec::with_capacity(spec.procs_fds.len());
    let mut seen: Vec<RawFd> = Vec::with_capacity(spec.procs_fds.len());
    for (&fd, path) in spec.procs_fds.iter().zip(&spec.cgroup_procs) {
        let Some(fd) = fd else {
            files.push(None);
            continue;
        };
        let owned_path = || path.clone();
        if fd <= 2 {
            return Err(PlacementError::ProcsFdStandard {
                fd,
                path: owned_path(),
            });
        }
        if others.contains(&fd) || seen.contains(&fd) {
            return Err(PlacementError::ProcsFdTaken {
                fd,
                path: owned_path(),
            });
        }
        // SAFETY: only inspected; a number that is not open makes fstatfs fail.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        match ctl_process::on_cgroup_fs(borrowed) {
            Err(source) => {
                return Err(PlacementError::ProcsFdNotOpen {
                    fd,
                    path: owned_path(),
                    source,
                })
            }
            Ok(false) => {
                return Err(PlacementError::ProcsFdNotCgroup {
                    fd,
                    path: owned_path(),
                })
            }
            Ok(true) => {}
        }
        seen.push(fd);
        // SAFETY: the fd is open (fstatfs succeeded), the envelope hands it to the runner,
        // and `seen` guarantees no other owner within the runner.
        files.push(Some(unsafe { OwnedFd::from_raw_fd(fd) }));
    }
    Ok(files)
}

pub(super) fn apply(
    spec: &PlacementSpec,
    parent_pid: Option<i32>,
    mut procs_files: Vec<Option<OwnedFd>>,
) -> Result<(), PlacementError> {
    // `own_process_group` needs no step: every runner leads a session, and so a process
    // group, of its own (`session::leave_terminal`, before the envelope was read).
    for (name, limit) in &spec.rlimits {
        let resource = rlimit_resource(name)
            .ok_or_else(|| PlacementError::UnknownRlimit { name: name.clone() })?;
        nix::sys::resource::setrlimit(resource, limit.soft.as_raw(), limit.hard.as_raw()).map_err(
            |source| PlacementError::Setrlimit {
                name: name.clone(),
                source,
            },
        )?;
    }

    let mut created = false;
    // In osctld's layout a missing entry's parent, the container's cgroup, is created too.
    let create_entry = |entry: &crate::envelope::EntryCgroup| {
        crate::cgroup::create_entry_in(
            spec.container_cgroup.as_deref(),
            &entry.relative,
            entry.ugid,
        )
    };
    // Born there: the kernel put this process into that cgroup when it created it.
    let to_enter = spec
        .cgroup_procs
        .iter()
        .enumerate()
        .filter(|(_, procs)| !spec.born_in.contains(procs));
    for (i, procs) in to_enter {
        if let Some(file) = procs_files.get_mut(i).and_then(Option::take) {
            if nix::unistd::write(&file, b"0") == Ok(1) {
                continue;
            }
            // Removed since the frontend opened the file (ENODEV), or an unfinished entry
            // cgroup (ENOSPC): by path then, which re-creates or completes it.
        }
        let open = || std::fs::OpenOptions::new().write(true).open(procs);
        let opened = match (open(), &spec.create_cgroup) {
            // First use (or removed since): create the entry cgroup, still as root.
            (Err(e), Some(entry)) if e.kind() == std::io::ErrorKind::NotFound && !created => {
                create_entry(entry).map_err(|source| PlacementError::CreateEntry {
                    entry: entry.relative.clone(),
                    source,
                })?;
                created = true;
                open()
            }
            (result, _) => result,
        };
        let enter = |source| PlacementError::Enter {
            procs: procs.clone(),
            source,
        };
        let mut file = opened.map_err(enter)?;
        // Root writes here: only into a cgroup file system, never into a file that a
        // wrong or hostile envelope names.
        if !on_cgroup_fs(&file) {
            return Err(PlacementError::EnterNotCgroup {
                procs: procs.clone(),
            });
        }
        match (file.write_all(b"0"), &spec.create_cgroup) {
            (Ok(()), _) => {}
            // An empty cpuset: whoever created the entry cgroup was killed before copying
            // `cpuset.cpus` and `cpuset.mems` from the parent. Complete it and retry.
            (Err(e), Some(entry)) if e.raw_os_error() == Some(libc::ENOSPC) && !created => {
                create_entry(entry).map_err(|source| PlacementError::CompleteEntry {
                    entry: entry.relative.clone(),
                    source,
                })?;
                created = true;
                file.write_all(b"0").map_err(enter)?;
            }
            (Err(e), _) => return Err(enter(e)),
        }
    }

    // Root-opened cgroup files must not reach command code running as the user.
    drop(procs_files);

    // The capability bounding set is left as it is. Dropping it cost 42 `prctl` calls,
    // about 30 µs per runner here (each one commits new credentials), for nothing: after
    // the uid change the permitted, effective, inheritable and ambient sets are empty,
    // and with `no_new_privs` an `execve` ignores setuid bits and file capabilities, so
    // nothing the runner starts can gain a capability the bounding set would have
    // withheld (and a new user namespace starts with a full bounding set anyway).
    // Runners of `setuid_helpers` commands need setuid helpers to work and keep it too.
    if let Some(user) = &spec.user {
        clear_ambient();
        let id = user.ugid;
        setgroups(&[Gid::from_raw(id)])
            .map_err(|source| PlacementError::Setgroups { id, source })?;
        setresgid(Gid::from_raw(id), Gid::from_raw(id), Gid::from_raw(id))
            .map_err(|source| PlacementError::Setresgid { id, source })?;
        setresuid(Uid::from_raw(id), Uid::from_raw(id), Uid::from_raw(id))
            .map_err(|source| PlacementError::Setresuid { id, source })?;
        clear_inheritable()?;
        // Left non-dumpable (the uid change made it so): the runner runs as the container's
        // user, who must not be able to ptrace it and take the reply pipe or the call's
        // stdio. liblxc's start and execute, which need a dumpable caller, run in a worker
        // forked for them (`ctl_lxc::isolated::in_dumpable_worker`).
        if prctl_get(libc::PR_GET_DUMPABLE) != 0 {
            prctl(libc::PR_SET_DUMPABLE, 0, "PR_SET_DUMPABLE")?;
        }
    }
    if !spec.setuid_helpers {
        prctl(libc::PR_SET_NO_NEW_PRIVS, 1, "PR_SET_NO_NEW_PRIVS")?;
    }

    let parent = parent_pid.unwrap_or_else(|| getppid().as_raw());
    let parent_alive =
        ctl_process::die_with_parent(parent).map_err(|source| PlacementError::Prctl {
            option: "PR_SET_PDEATHSIG",
            source,
        })?;
    if !parent_alive {
        // The frontend died before the signal was armed: nobody will read the reply.
        std::process::exit(1);
    }
    Ok(())
}

/// Whether `file` lives on a cgroup (v1) or cgroup2 file system.
fn on_cgroup_fs(file: &std::fs::File) -> bool {
    ctl_process::on_cgroup_fs(file.as_fd()).unwrap_or(false)
}

fn prctl_get(option: libc::c_int) -> libc::c_int {
    // SAFETY: a PR_GET_* option without arguments.
    unsafe { libc::prctl(option, 0, 0, 0, 0) }
}

fn prctl(
    option: libc::c_int,
    arg: libc::c_ulong,
    name: &'static str,
) -> Result<(), PlacementError> {
    // SAFETY: these prctl options take integer arguments only.
    if unsafe { libc::prctl(option, arg, 0, 0, 0) } != 0 {
        return Err(PlacementError::Prctl {
            option: name,
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

fn clear_ambient() {
    // SAFETY: integer-only prctl; fails harmlessly (EINVAL) on kernels without ambient caps.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        )
    };
}

/// Clears the inheritable set, the only one a uid change leaves as it was.
fn clear_inheritable() -> Result<(), PlacementError> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget/capset with a v3 header read/write exactly two Data structs.
    unsafe {
        if libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) != 0 {
            return Err(PlacementError::Capabilities {
                call: "capget",
                source: std::io::Error::last_os_error(),
            });
        }
        if data.iter().all(|d| d.inheritable == 0) {
            return Ok(());
        }
        for d in &mut data {
            d.inheritable = 0;
        }
        if libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) != 0 {
            return Err(PlacementError::Capabilities {
                call: "capset",
                source: std::io::Error::last_os_error(),
            });
        }
    }
    Ok(())
}

/// Sets the thread name (`comm`, 15 bytes) to `runner:<name>`; the full title
/// `ctl: <pool>:<id> runner:<name>` is the argv[0] the frontend gave.
pub(super) fn set_comm(name: &str) {
    let mut comm = [0u8; 16];
    let text = format!("runner:{name}");
    let n = text.len().min(15);
    comm[..n].copy_from_slice(&text.as_bytes()[..n]);
    // SAFETY: PR_SET_NAME reads a NUL-terminated buffer of at most 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, comm.as_ptr() as libc::c_ulong, 0, 0, 0) };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The messages the runner writes into its reply (`ProtocolRefusal::Envelope` and
    /// `Placement`), as they were when these functions returned strings.
    #[test]
    fn messages() {
        let io = |errno| std::io::Error::from_raw_os_error(errno);
        let procs = "/sys/fs/cgroup/ct/cgroup.procs";
        let cases: Vec<(PlacementError, String)> = vec![
            (
                PlacementError::ProcsFdCount { fds: 1, paths: 2 },
                "1 cgroup.procs fds for 2 cgroup.procs paths".to_owned(),
            ),
            (
                PlacementError::ProcsFdStandard {
                    fd: 2,
                    path: procs.into(),
                },
                format!("cgroup.procs fd 2 for {procs} is one of the runner's standard fds"),
            ),
            (
                PlacementError::ProcsFdTaken {
                    fd: 7,
                    path: procs.into(),
                },
                format!("cgroup.procs fd 7 for {procs} is also another fd of the envelope"),
            ),
            (
                PlacementError::ProcsFdNotOpen {
                    fd: 7,
                    path: procs.into(),
                    source: io(libc::EBADF),
                },
                format!(
                    "cgroup.procs fd 7 for {procs} is not open: {}",
                    io(libc::EBADF)
                ),
            ),
            (
                PlacementError::ProcsFdNotCgroup {
                    fd: 7,
                    path: procs.into(),
                },
                format!("cgroup.procs fd 7 for {procs} is not a cgroup file"),
            ),
            (
                PlacementError::UnknownRlimit {
                    name: "nofile\n".into(),
                },
                "unknown rlimit \"nofile\\n\"".to_owned(),
            ),
            (
                PlacementError::Setrlimit {
                    name: "nofile".into(),
                    source: nix::errno::Errno::EPERM,
                },
                format!("setrlimit nofile: {}", nix::errno::Errno::EPERM),
            ),
            (
                PlacementError::CreateEntry {
                    entry: "ct/entry".into(),
                    source: io(libc::EACCES),
                },
                format!(
                    "cannot create the entry cgroup ct/entry: {}",
                    io(libc::EACCES)
                ),
            ),
            (
                PlacementError::CompleteEntry {
                    entry: "ct/entry".into(),
                    source: io(libc::EACCES),
                },
                format!(
                    "cannot complete the entry cgroup ct/entry: {}",
                    io(libc::EACCES)
                ),
            ),
            (
                PlacementError::Enter {
                    procs: procs.into(),
                    source: io(libc::ENOSPC),
                },
                format!("cannot enter cgroup {procs}: {}", io(libc::ENOSPC)),
            ),
            (
                PlacementError::EnterNotCgroup {
                    procs: "/etc/passwd".into(),
                },
                "cannot enter cgroup /etc/passwd: it is not a cgroup file".to_owned(),
            ),
            (
                PlacementError::Setgroups {
                    id: 100000,
                    source: nix::errno::Errno::EPERM,
                },
                format!("setgroups([100000]): {}", nix::errno::Errno::EPERM),
            ),
            (
                PlacementError::Setresgid {
                    id: 100000,
                    source: nix::errno::Errno::EPERM,
                },
                format!("setresgid(100000): {}", nix::errno::Errno::EPERM),
            ),
            (
                PlacementError::Setresuid {
                    id: 100000,
                    source: nix::errno::Errno::EPERM,
                },
                format!("setresuid(100000): {}", nix::errno::Errno::EPERM),
            ),
            (
                PlacementError::Capabilities {
                    call: "capset",
                    source: io(libc::EPERM),
                },
                format!("capset: {}", io(libc::EPERM)),
            ),
            (
                PlacementError::Prctl {
                    option: "PR_SET_PDEATHSIG",
                    source: io(libc::EINVAL),
                },
                format!("PR_SET_PDEATHSIG: {}", io(libc::EINVAL)),
            ),
        ];
        for (e, message) in cases {
            assert_eq!(e.to_string(), message);
        }
    }

    #[test]
    fn procs_files_are_checked() {
        let spec = |procs_fds: Vec<Option<RawFd>>| PlacementSpec {
            cgroup_procs: vec!["/sys/fs/cgroup/a/cgroup.procs".into()],
            procs_fds,
            ..Default::default()
        };
        let message = |spec: &PlacementSpec, others: &[RawFd]| {
            take_procs_files(spec, others).unwrap_err().to_string()
        };
        assert_eq!(
            message(&spec(vec![None, None]), &[]),
            "2 cgroup.procs fds for 1 cgroup.procs paths"
        );
        assert_eq!(
            message(&spec(vec![Some(1)]), &[]),
            "cgroup.procs fd 1 for /sys/fs/cgroup/a/cgroup.procs is one of the runner's \
             standard fds"
        );
        assert_eq!(
            message(&spec(vec![Some(5)]), &[3, 5]),
            "cgroup.procs fd 5 for /sys/fs/cgroup/a/cgroup.procs is also another fd of the \
             envelope"
        );
        let file = std::fs::File::open("/").unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
        assert_eq!(
            message(&spec(vec![Some(fd)]), &[]),
            format!("cgroup.procs fd {fd} for /sys/fs/cgroup/a/cgroup.procs is not a cgroup file")
        );
    }
}
