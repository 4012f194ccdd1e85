//! What a test must not leave behind: zombies, open fds, live processes, mounts, and
//! (after a container is removed) its user, cgroups, files and subid lines.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

/// Number of open fds of this process, not counting the kept `cgroup.procs` files.
pub fn open_fd_count() -> usize {
    // The `cgroup.procs` files the frontend keeps open across calls are deliberate and
    // bounded (kept_cgroup_files.rs tests them): forgotten first, they cannot hide a leak.
    ctl_core::frontend::forget_cgroup_files();
    // The lock directory, which ctl-core opens once per process (`ctl_core::lock`) and
    // keeps: deliberate and bounded, like the kept files.
    let lock_dir = std::path::Path::new(ctl_core::lock::DEFAULT_LOCK_DIR);
    ctl_core::diag::open_fds()
        .unwrap()
        .into_iter()
        .filter(|fd| {
            std::fs::read_link(format!("/proc/self/fd/{fd}")).map_or(true, |t| t != lock_dir)
        })
        .count()
}

/// Children of this process that are zombies (not reaped).
pub fn zombie_children() -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut zombies = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...
        let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) else {
            continue;
        };
        let mut fields = rest.split(' ');
        let state = fields.next().unwrap_or("");
        let ppid: i32 = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        if ppid == me && state == "Z" {
            zombies.push(pid);
        }
    }
    zombies
}

/// Whether a process exists (and is not a zombie).
pub fn process_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, r)| !r.starts_with('Z')),
        Err(_) => false,
    }
}

/// Serialises the tests of one test binary that count fds or children: those counts are
/// process-wide, and other tests running in parallel threads would change them.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Waits briefly for zombies to be reaped by the threads that own them; returns those
/// still there (a real leak stays).
pub fn lingering_zombies() -> Vec<i32> {
    for _ in 0..50 {
        if zombie_children().is_empty() {
            return Vec::new();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    zombie_children()
}

/// Mount points of this process's mount namespace at or below `dir`.
pub fn host_mounts_under(dir: &Path) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_owned))
        .filter(|m| Path::new(m).starts_with(dir))
        .collect()
}

/// Whether the system has a user of this name.
pub fn user_exists(user: &str) -> bool {
    Command::new("getent")
        .args(["passwd", user])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Cgroups of container `name` that still exist: `/sys/fs/cgroup/*/ctl/<name>`, and
/// `/sys/fs/cgroup/ctl/<name>` where cgroup2 is mounted there directly.
pub fn leftover_cgroups(name: &str) -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    let mut candidates = vec![root.join("ctl").join(name)];
    if let Ok(entries) = std::fs::read_dir(root) {
        candidates.extend(entries.flatten().map(|h| h.path().join("ctl").join(name)));
    }
    candidates.into_iter().filter(|d| d.exists()).collect()
}

/// Asserts that nothing of container `name`, made by a provisioner in state dir `state`
/// (a [`StateDir`](crate::cli::StateDir) of the `ctl` CLI, or its path), is left on the
/// host: user, cgroups, record, LXC dir, home, subid lines.
#[track_caller]
pub fn assert_gone(state: impl AsRef<Path>, name: &str) {
    let state = state.as_ref();
    let user = ctl_provision::user_name(name);
    assert!(!user_exists(&user), "user {user} is left behind");
    let cgroups = leftover_cgroups(name);
    assert!(cgroups.is_empty(), "cgroups left behind: {cgroups:?}");
    for path in [
        state.join("containers").join(format!("{name}.json")),
        state.join("lxc").join(&user),
        state.join("homes").join(&user),
    ] {
        assert!(!path.exists(), "{} is left behind", path.display());
    }
    for file in ["/etc/subuid", "/etc/subgid"] {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        assert!(
            !text.lines().any(|l| l.starts_with(&format!("{user}:"))),
            "{file} still names {user}"
        );
    }
}
