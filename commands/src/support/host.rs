//! The container's cgroups, seen from the host: entering the container's cgroup to start
//! it (runner), whether its payload exists, whether a process is in it, thawing and
//! killing its tree (frontend, as root), and its freezer. Where LXC puts the payload is
//! `ctl_lxc::cgroup`'s knowledge; which hierarchies exist is `ctl_core::cgroup`'s.

use std::path::Path;
use std::time::{Duration, Instant};

use ctl_core::{CommandError, RunnerContext};
use ctl_lxc::cgroup::find_payload;
use ctl_lxc::freezer::Freezer;

/// Runner side, before liblxc starts the container (Start; Exec, ExecTerminal and
/// Runscript with `run`): moves this runner from its entry cgroup into the container's
/// cgroup in every hierarchy, where the two differ (osctld's layout, where the entry is
/// `<cgroup_path>/lxc.monitor.<id>`).
///
/// LXC 5 creates the payload (`lxc.payload.<id>`) and its monitor's cgroup
/// (`lxc.monitor.<id>`, or `-1`, `-2`... when that name is taken, as it is by osctld's
/// entry) below the cgroup of the process that starts the container, and refuses
/// `lxc.cgroup.dir` settings that walk upwards. Started from the entry, the container
/// would nest below it, where neither osctld nor our frontends look for it. osctld moves
/// its starting process the same way (its `ct_wrapper_start`). Nothing happens in the
/// default layout (entry = container cgroup) or when the envelope did not say (osctld's
/// own). The runner stays there until it exits; the forked worker that runs liblxc
/// inherits the cgroups.
pub fn enter_container_cgroup_to_start(ctx: &RunnerContext) -> Result<(), CommandError> {
    let (Some(container), Some(entry)) = (&ctx.container_cgroup, &ctx.entry_cgroup) else {
        return Ok(());
    };
    if container.trim_matches('/') == entry.trim_matches('/') {
        return Ok(());
    }
    ctl_core::cgroup::enter(container).map_err(|e| {
        CommandError::msg(format!(
            "cannot move into the container's cgroup {container} to start it: {e}"
        ))
    })
}

/// The hierarchy carrying the v1 `memory` controller, or the unified one on a v2-only
/// host: where a container's processes are looked for (LXC creates and removes its
/// cgroups in every hierarchy alike; osctld looks in this one).
pub fn memory_hierarchy() -> Option<&'static ctl_core::cgroup::Hierarchy> {
    let hierarchies = ctl_core::cgroup::hierarchies();
    hierarchies
        .iter()
        .find(|h| h.has_controller("memory"))
        .or_else(|| hierarchies.iter().find(|h| h.unified))
}

/// Whether `relative` exists in the [`memory_hierarchy`]. osctld's State uses this to
/// answer `stopped` without a runner: LXC removes a stopped container's cgroups.
pub fn exists_in_memory_hierarchy(relative: &str) -> bool {
    memory_hierarchy().is_some_and(|h| h.path_of(relative).is_dir())
}

/// Frontend: whether the cgroup of the container's payload (its init and every process in
/// it) exists in the memory hierarchy, i.e. whether the container may be running.
///
/// LXC 5 creates `lxc.payload.<name>` (and the monitor's `lxc.monitor.<name>`) below the
/// cgroup its caller is in, which for a start by our runners is the container's cgroup
/// (`Container::cgroup_path`: the entry cgroup in the default layout; in osctld's the
/// runner moves there first, see [`enter_container_cgroup_to_start`]), and removes both
/// when the container stops. On a reboot the monitor first moves itself into `lxc.pivot`
/// below its cgroup and starts the container again from there, so after `n` reboots the
/// payload is `<cgroup_path>(/lxc.pivot){n}/lxc.payload.<name>`.
pub fn payload_cgroup_exists(ct: &ctl_core::Container) -> bool {
    let Some(hierarchy) = memory_hierarchy() else {
        return false;
    };
    // Reboots deeper than find_payload looks are answered by the monitor instead.
    ctl_lxc::cgroup::payload_exists(&hierarchy.path_of(&ct.cgroup_path), &ct.id)
}

/// Frontend: whether process `pid` is in the container's cgroup (`Container::cgroup_path`,
/// below which LXC puts the payload in either layout) or below it, in the memory hierarchy
/// (the unified one on a v2-only host), as `/proc/<pid>/cgroup` says. `false` when the
/// process is gone or the file cannot be read.
pub fn process_in_container_cgroup(ct: &ctl_core::Container, pid: i32) -> bool {
    let Some(hierarchy) = memory_hierarchy() else {
        return false;
    };
    let path = ctl_lxc::cgroup::cgroup_of_process(&pid.to_string(), |controllers| {
        if hierarchy.unified {
            controllers.is_empty()
        } else {
            controllers.split(',').any(|c| c == "memory")
        }
    });
    let container = format!("/{}", ct.cgroup_path.trim_matches('/'));
    path.is_some_and(|path| {
        path == container
            || path
                .strip_prefix(container.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

/// Frontend (root): thaws the container's cgroup tree (`Container::cgroup_path`: payload,
/// monitor and, in osctld's layout, the runners' entry) in the v1 freezer hierarchy and
/// the unified one, top down, as osctld does before a kill. Best effort: goes on
/// after a failure and returns the first one.
///
/// LXC's monitor keeps reporting `FROZEN` after such a thaw until liblxc's own unfreeze
/// runs (it tracks the state itself), so follow it with that.
pub fn thaw_tree(ct: &ctl_core::Container) -> std::io::Result<()> {
    fn walk(dir: &Path, file: &str, value: &str, first_error: &mut Option<std::io::Error>) {
        let path = dir.join(file);
        if path.exists() {
            if let Err(e) = std::fs::write(&path, value) {
                first_error.get_or_insert(std::io::Error::new(
                    e.kind(),
                    format!("{}: {e}", path.display()),
                ));
            }
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&entry.path(), file, value, first_error);
            }
        }
    }
    ctl_core::cgroup::validate_relative(&ct.cgroup_path)?;
    let mut first_error = None;
    for h in ctl_core::cgroup::hierarchies() {
        let root = h.path_of(&ct.cgroup_path);
        if h.unified {
            walk(&root, "cgroup.freeze", "0", &mut first_error);
        } else if h.has_controller("freezer") {
            walk(&root, "freezer.state", "THAWED", &mut first_error);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Frontend (root): thaws the container's cgroup tree and SIGKILLs every process in its
/// payload cgroups, again and again, until none is left or `limit` passes. `Ok(true)`:
/// the payload is empty (the container is gone; LXC's monitor notices its init's death
/// and reports STOPPED). For a container that keeps its own kill from working (a frozen
/// init: SIGKILL stays pending until thawed; a process that freezes it again loses the
/// race, being killed itself).
pub fn kill_payload_tree(ct: &ctl_core::Container, limit: Duration) -> std::io::Result<bool> {
    let Some(hierarchy) = memory_hierarchy() else {
        return Ok(false);
    };
    let end = Instant::now() + limit;
    loop {
        let Some(payload) = find_payload(&hierarchy.path_of(&ct.cgroup_path), &ct.id).found()
        else {
            return Ok(true);
        };
        // A cgroup that goes away while it is walked (its processes died): look again.
        let pids = ctl_core::cgroup::pids_below(&payload).ok();
        if pids.as_ref().is_some_and(Vec::is_empty) {
            return Ok(true);
        }
        thaw_tree(ct)?;
        for pid in pids.into_iter().flatten() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        if Instant::now() >= end {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Frontend: the freezer of the container's cgroup the daemon gave (`cgroup_path`, in
/// either layout), its monitor trusted as the container's user or root. `None` without a
/// v1 freezer.
pub fn freezer_of_container(
    ct: &ctl_core::Container,
    deadline: Option<Instant>,
) -> Option<Freezer<'_>> {
    ctl_core::cgroup::validate_relative(&ct.cgroup_path).ok()?;
    Some(Freezer::new(
        freezer_hierarchy()?.path_of(&ct.cgroup_path),
        &ct.lxc_home,
        &ct.id,
        [ct.ugid, 0],
        deadline,
    ))
}

/// Runner (exec placement): the freezer of the container's cgroup its placement names,
/// else (an envelope that does not say) of its own freezer cgroup, which is the
/// container's in the default layout; its monitor trusted as this runner's uid or root.
pub fn freezer_of_runner(ctx: &RunnerContext) -> Option<Freezer<'_>> {
    let base = match &ctx.container_cgroup {
        Some(container) => {
            ctl_core::cgroup::validate_relative(container).ok()?;
            container.clone()
        }
        None => ctl_lxc::cgroup::cgroup_of_process("self", |controllers| {
            controllers.split(',').any(|c| c == "freezer")
        })?,
    };
    Some(Freezer::new(
        freezer_hierarchy()?.path_of(&base),
        &ctx.lxc_home,
        &ctx.id,
        [nix::unistd::getuid().as_raw(), 0],
        None,
    ))
}

fn freezer_hierarchy() -> Option<&'static ctl_core::cgroup::Hierarchy> {
    ctl_core::cgroup::hierarchies()
        .iter()
        .find(|h| h.has_controller("freezer"))
}
