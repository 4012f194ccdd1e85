//! LXC's cgroup layout: where LXC 5 puts a container's payload cgroup, and which cgroup a
//! process is in. Paths only; which hierarchies exist and where they are mounted is the
//! caller's knowledge (`ctl_core::cgroup`).
//!
//! LXC 5 creates `lxc.payload.<name>` (and the monitor's `lxc.monitor.<name>`) below the
//! cgroup of the process that starts the container (for a start by a ctl runner, the
//! container's cgroup, `ctl_core::Container::cgroup_path`) and removes both when the
//! container stops. On a reboot the monitor first moves itself into `lxc.pivot` below its
//! cgroup and starts the container again from there, so after `n` reboots the payload is
//! `<container cgroup>(/lxc.pivot){n}/lxc.payload.<name>`.

use std::path::{Path, PathBuf};

/// Where [`find_payload`] found the payload cgroup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PayloadSearch {
    /// The payload cgroup's directory.
    Found(PathBuf),
    /// No payload cgroup: the container is not running.
    Absent,
    /// Below more `lxc.pivot` levels than [`find_payload`] follows (32).
    TooDeep,
}

impl PayloadSearch {
    /// The directory, when found.
    pub fn found(self) -> Option<PathBuf> {
        match self {
            PayloadSearch::Found(path) => Some(path),
            _ => None,
        }
    }
}

/// The payload cgroup `<base>(/lxc.pivot){n}/lxc.payload.<id>` of container `id`, where
/// `base` is the directory of the container's cgroup in one hierarchy (see the module
/// docs for why the pivots).
pub fn find_payload(base: &Path, id: &str) -> PayloadSearch {
    const MAX_PIVOTS: usize = 32;
    let mut dir = base.to_path_buf();
    for _ in 0..=MAX_PIVOTS {
        let payload = dir.join(format!("lxc.payload.{id}"));
        if payload.is_dir() {
            return PayloadSearch::Found(payload);
        }
        dir.push("lxc.pivot");
        if !dir.is_dir() {
            return PayloadSearch::Absent;
        }
    }
    PayloadSearch::TooDeep
}

/// Whether the payload cgroup of container `id` exists below `base` (the container's
/// cgroup in one hierarchy), i.e. whether the container may be running. Reboots deeper
/// than [`find_payload`] looks count as existing (the monitor answers for them).
pub fn payload_exists(base: &Path, id: &str) -> bool {
    !matches!(find_payload(base, id), PayloadSearch::Absent)
}

/// The cgroup path (as `/a/b`) of process `pid` (a number or `self`) in the first
/// hierarchy of `/proc/<pid>/cgroup` whose controller list `pick` accepts (`""` is v2's).
/// `None` when the process is gone or has no such line.
pub fn cgroup_of_process(pid: &str, pick: impl Fn(&str) -> bool) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    // Lines are `id:controllers:path`.
    text.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let _id = parts.next()?;
        let controllers = parts.next()?;
        let path = parts.next()?;
        pick(controllers).then(|| path.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_is_found_below_pivots() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        assert_eq!(find_payload(base, "c"), PayloadSearch::Absent);
        let deep = base.join("lxc.pivot/lxc.pivot/lxc.payload.c");
        std::fs::create_dir_all(&deep).unwrap();
        assert_eq!(find_payload(base, "c").found(), Some(deep));
        assert!(payload_exists(base, "c"));
        assert!(!payload_exists(base, "d"));
    }
}
