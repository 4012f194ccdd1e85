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

use crate::container::rlimit_resource;
use crate::envelope::PlacementSpec;

/// The `cgroup.procs` files the frontend handed over ([`PlacementSpec::procs_fds`]), one
/// slot per path of `cgroup_procs`, owned from here on. Each must be an open file of a
/// cgroup file system (root writes to it) and an fd of its own: not 0, 1 or 2, not another
/// fd the envelope names (`others`), not named twice. Checked without touching the path:
/// that is the point of the fds.
pub(super) fn take_procs_files(
    spec: &PlacementSpec,
    others: &[RawFd],
) -> Result<Vec<Option<OwnedFd>>, String> {
    if !spec.procs_fds.is_empty() && spec.procs_fds.len() != spec.cgroup_procs.len() {
        return Err(format!(
            "{} cgroup.procs fds for {} cgroup.procs paths",
            spec.procs_fds.len(),
            spec.cgroup_procs.len()
        ));
    }
    let mut files = Vec::with_capacity(spec.procs_fds.len());
    let mut seen: Vec<RawFd> = Vec::with_capacity(spec.procs_fds.len());
    for (&fd, path) in spec.procs_fds.iter().zip(&spec.cgroup_procs) {
        let Some(fd) = fd else {
            files.push(None);
            continue;
        };
        if fd <= 2 {
            return Err(format!(
                "cgroup.procs fd {fd} for {path} is one of the runner's standard fds"
            ));
        }
        if others.contains(&fd) || seen.contains(&fd) {
            return Err(format!(
                "cgroup.procs fd {fd} for {path} is also another fd of the envelope"
            ));
        }
        // SAFETY: only inspected; a number that is not open makes fstatfs fail.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        match ctl_process::on_cgroup_fs(borrowed) {
            Err(e) => return Err(format!("cgroup.procs fd {fd} for {path} is not open: {e}")),
            Ok(false) => {
                return Err(format!(
                    "cgroup.procs fd {fd} for {path} is not a cgroup file"
                ))
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
) -> Result<(), String> {
    // `own_process_group` needs no step: every runner leads a session, and so a process
    // group, of its own (`session::leave_terminal`, before the envelope was read).
    for (name, limit) in &spec.rlimits {
        let resource = rlimit_resource(name).ok_or_else(|| format!("unknown rlimit {name:?}"))?;
        nix::sys::resource::setrlimit(resource, limit.soft.as_raw(), limit.hard.as_raw())
            .map_err(|e| format!("setrlimit {name}: {e}"))?;
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
                create_entry(entry).map_err(|e| {
                    format!("cannot create the entry cgroup {}: {e}", entry.relative)
                })?;
                created = true;
                open()
            }
            (result, _) => result,
        };
        let mut file = opened.map_err(|e| format!("cannot enter cgroup {procs}: {e}"))?;
        // Root writes here: only into a cgroup file system, never into a file that a
        // wrong or hostile envelope names.
        if !on_cgroup_fs(&file) {
            return Err(format!(
                "cannot enter cgroup {procs}: it is not a cgroup file"
            ));
        }
        match (file.write_all(b"0"), &spec.create_cgroup) {
            (Ok(()), _) => {}
            // An empty cpuset: whoever created the entry cgroup was killed before copying
            // `cpuset.cpus` and `cpuset.mems` from the parent. Complete it and retry.
            (Err(e), Some(entry)) if e.raw_os_error() == Some(libc::ENOSPC) && !created => {
                create_entry(entry).map_err(|e| {
                    format!("cannot complete the entry cgroup {}: {e}", entry.relative)
                })?;
                created = true;
                file.write_all(b"0")
                    .map_err(|e| format!("cannot enter cgroup {procs}: {e}"))?;
            }
            (Err(e), _) => return Err(format!("cannot enter cgroup {procs}: {e}")),
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
        setgroups(&[Gid::from_raw(id)]).map_err(|e| format!("setgroups([{id}]): {e}"))?;
        setresgid(Gid::from_raw(id), Gid::from_raw(id), Gid::from_raw(id))
            .map_err(|e| format!("setresgid({id}): {e}"))?;
        setresuid(Uid::from_raw(id), Uid::from_raw(id), Uid::from_raw(id))
            .map_err(|e| format!("setresuid({id}): {e}"))?;
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
        ctl_process::die_with_parent(parent).map_err(|e| format!("PR_SET_PDEATHSIG: {e}"))?;
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

fn prctl(option: libc::c_int, arg: libc::c_ulong, name: &str) -> Result<(), String> {
    // SAFETY: these prctl options take integer arguments only.
    if unsafe { libc::prctl(option, arg, 0, 0, 0) } != 0 {
        return Err(format!("{name}: {}", std::io::Error::last_os_error()));
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
fn clear_inheritable() -> Result<(), String> {
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
            return Err(format!("capget: {}", std::io::Error::last_os_error()));
        }
        if data.iter().all(|d| d.inheritable == 0) {
            return Ok(());
        }
        for d in &mut data {
            d.inheritable = 0;
        }
        if libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) != 0 {
            return Err(format!("capset: {}", std::io::Error::last_os_error()));
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
