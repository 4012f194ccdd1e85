//! The three placements on real processes, real users and real cgroups: what the runner
//! process is, as its `Identity` command reports it.

use ctl_core::cgroup;
use ctl_core::diag::{Identity, IdentityInfo};
use ctl_core::{Call, Placement, RlimitValue, Stdio};
use tests::fixtures::{test_runner_path, TestUser};

fn identity(user: &TestUser, placement: Placement) -> IdentityInfo {
    let call = Call::new(user.container())
        .runner(test_runner_path())
        .placement(placement)
        .stdout(Stdio::Null)
        .stderr(Stdio::Null);
    Identity::run_with(&call).unwrap_or_else(|e| panic!("Identity in {placement}: {e}"))
}

/// The cgroup path of each `/proc/self/cgroup` line.
fn cgroup_paths(info: &IdentityInfo) -> Vec<String> {
    info.cgroups
        .iter()
        .map(|l| l.splitn(3, ':').nth(2).unwrap_or("").to_owned())
        .collect()
}

#[test]
fn exec_placement_is_the_container_user_in_its_cgroups() {
    let user = TestUser::new("exec");
    let ct = user.container();
    let info = identity(&user, Placement::Exec);

    assert_eq!(info.uid, [ct.ugid; 3]);
    assert_eq!(info.gid, [ct.ugid; 3]);
    assert_eq!(info.groups, vec![ct.ugid]);

    // Member of the entry cgroup in every hierarchy (each v1 controller and v2).
    let expected = format!("/{}", ct.cgroup_path);
    let paths = cgroup_paths(&info);
    assert_eq!(
        paths.len(),
        cgroup::hierarchies().len(),
        "{:?}",
        info.cgroups
    );
    assert!(
        paths.len() >= 2,
        "expected several hierarchies on this host: {:?}",
        info.cgroups
    );
    for (line, path) in info.cgroups.iter().zip(&paths) {
        assert_eq!(path, &expected, "hierarchy line {line}");
    }
    assert!(
        info.cgroups.iter().any(|l| l.starts_with("0::")),
        "no v2 line: {:?}",
        info.cgroups
    );

    // The container's rlimits.
    assert_eq!(info.rlimits["nofile"].soft, RlimitValue::Limited(1000));
    assert_eq!(info.rlimits["nofile"].hard, RlimitValue::Limited(2000));
    assert_eq!(info.rlimits["core"].soft, RlimitValue::Limited(0));
    assert_eq!(info.rlimits["core"].hard, RlimitValue::Unlimited);

    // Only the envelope (0), its diagnostics (1, 2) and the return pipe (3).
    assert_eq!(info.fds, vec![0, 1, 2, 3]);

    // Exactly the documented environment.
    assert_eq!(
        info.env,
        ["HOME", "LOGNAME", "PATH", "USER", "XDG_RUNTIME_DIR"]
    );

    // No capabilities, no_new_privs, parent-death signal armed. (The bounding set is left
    // as inherited: with no_new_privs nothing can gain from it; hardening_isolation.rs
    // shows a setuid-root program gaining nothing.)
    let c = &info.capabilities;
    assert_eq!(
        (c.inheritable, c.permitted, c.effective, c.ambient),
        (0, 0, 0, 0)
    );
    assert!(info.no_new_privs);
    assert_eq!(info.pdeathsig, libc::SIGKILL);

    // The process title; a session and process group of its own (no controlling
    // terminal of the caller's: docs/security.md), with or without a deadline.
    assert_eq!(info.title, format!("ctl: test:{} runner:identity", ct.id));
    assert_eq!(info.comm, "runner:identity");
    assert_eq!((info.pgid, info.sid), (info.pid, info.pid));
    assert_ne!(info.sid, nix::unistd::getsid(None).unwrap().as_raw());

    // With a deadline too; the deadline kills that group as a whole.
    let call = Call::new(ct)
        .runner(test_runner_path())
        .stdout(Stdio::Null)
        .stderr(Stdio::Null)
        .deadline(std::time::Duration::from_secs(30));
    let info = Identity::run_with(&call).unwrap();
    assert_eq!((info.pgid, info.sid), (info.pid, info.pid));
}

#[test]
fn exec_placement_passes_the_command_stdio() {
    let user = TestUser::new("stdio");
    let out = tempfile::tempfile().unwrap();
    use std::os::fd::AsFd;
    let call = Call::new(user.container())
        .runner(test_runner_path())
        .stdin(Some(out.as_fd()))
        .stdout(Stdio::Fd(out.as_fd()))
        .stderr(Stdio::Fd(out.as_fd()));
    let info = Identity::run_with(&call).unwrap();
    // 0-3 as above, then stdin, stdout, stderr.
    assert_eq!(info.fds, vec![0, 1, 2, 3, 4, 5, 6]);
}

#[test]
fn fork_placement_is_the_user_outside_the_cgroups() {
    let user = TestUser::new("fork");
    let ct = user.container();
    let info = identity(&user, Placement::Fork);
    assert_eq!(info.uid, [ct.ugid; 3]);
    assert_eq!(info.gid, [ct.ugid; 3]);
    assert_eq!(info.groups, vec![ct.ugid]);
    let ours: Vec<String> = std::fs::read_to_string("/proc/self/cgroup")
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        info.cgroups, ours,
        "the fork placement stays in the daemon's cgroups"
    );
    for path in cgroup_paths(&info) {
        assert!(!path.contains(&ct.cgroup_path), "{path}");
    }
    // No container rlimits either.
    let mut own = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into `own`.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut own) };
    assert_eq!(
        info.rlimits["nofile"].soft,
        RlimitValue::from_raw(own.rlim_cur)
    );
    assert_eq!(info.capabilities.effective, 0);
    assert_eq!(info.title, format!("ctl: test:{} runner:identity", ct.id));
}

#[test]
fn fork_as_root_stays_root() {
    let user = TestUser::new("root");
    let info = identity(&user, Placement::ForkAsRoot);
    assert_eq!(info.uid, [0; 3]);
    assert_eq!(info.gid, [0; 3]);
    assert_eq!(info.env, ["HOME", "LOGNAME", "PATH", "USER"]);
    assert_ne!(info.capabilities.effective, 0);
}

#[test]
fn exec_placement_creates_the_entry_cgroup_owned_by_the_user() {
    let user = TestUser::new("mkcg");
    let ct = user.container();
    for h in cgroup::hierarchies() {
        assert!(!h.path_of(&ct.cgroup_path).exists());
    }
    identity(&user, Placement::Exec);
    use std::os::unix::fs::MetadataExt;
    for h in cgroup::hierarchies() {
        let meta = std::fs::metadata(h.path_of(&ct.cgroup_path)).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid()),
            (ct.ugid, ct.ugid),
            "{}",
            h.mount_point.display()
        );
        let procs = std::fs::metadata(h.path_of(&ct.cgroup_path).join("cgroup.procs")).unwrap();
        assert_eq!(procs.uid(), ct.ugid);
    }
}

#[test]
fn a_half_created_entry_cgroup_is_completed() {
    // As a creator killed right after its `mkdir`s leaves it: root's, and an empty cpuset
    // (which refuses every process with ENOSPC).
    let user = TestUser::new("half");
    let ct = user.container();
    for h in cgroup::hierarchies() {
        let mut dir = h.mount_point.clone();
        for component in ct.cgroup_path.split('/') {
            dir.push(component);
            match std::fs::create_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => panic!("mkdir {}: {e}", dir.display()),
            }
        }
    }
    let cpuset = cgroup::hierarchies()
        .iter()
        .find(|h| h.has_controller("cpuset"))
        .map(|h| h.path_of(&ct.cgroup_path));
    if let Some(dir) = &cpuset {
        let cpus = std::fs::read_to_string(dir.join("cpuset.cpus")).unwrap();
        assert!(cpus.trim().is_empty(), "a new cpuset is empty: {cpus:?}");
    }

    let info = identity(&user, Placement::Exec);
    let expected = format!("/{}", ct.cgroup_path);
    assert!(
        cgroup_paths(&info).iter().all(|p| *p == expected),
        "{:?}",
        info.cgroups
    );

    // Completed: the user's in every hierarchy, the cpuset filled in from its parent.
    use std::os::unix::fs::MetadataExt;
    for h in cgroup::hierarchies() {
        let dir = h.path_of(&ct.cgroup_path);
        assert_eq!(
            std::fs::metadata(&dir).unwrap().uid(),
            ct.ugid,
            "{}",
            dir.display()
        );
        let procs = dir.join("cgroup.procs");
        assert_eq!(
            std::fs::metadata(&procs).unwrap().uid(),
            ct.ugid,
            "{}",
            procs.display()
        );
    }
    if let Some(dir) = &cpuset {
        let cpus = std::fs::read_to_string(dir.join("cpuset.cpus")).unwrap();
        let parent = std::fs::read_to_string(dir.parent().unwrap().join("cpuset.cpus")).unwrap();
        assert_eq!(cpus, parent);
    }
}

/// The runner's host `PATH` is osctld's by default (`/run/wrappers/bin` first, where NixOS
/// keeps `newuidmap`) and the container's `runner_path` when set, in every placement.
#[test]
fn runner_path_is_osctlds_by_default_and_configurable() {
    let user = TestUser::new("path");
    for placement in [Placement::Exec, Placement::Fork, Placement::ForkAsRoot] {
        let info = identity(&user, placement);
        assert_eq!(
            info.path.as_deref(),
            Some(ctl_core::container::DEFAULT_RUNNER_PATH),
            "{placement}"
        );
        assert!(info
            .path
            .as_deref()
            .unwrap_or_default()
            .starts_with("/run/wrappers/bin:"));
        let mut ct = user.container().clone();
        ct.runner_path = Some("/opt/ctl-test/bin:/usr/bin:/bin".to_owned());
        let call = Call::new(&ct)
            .runner(test_runner_path())
            .placement(placement)
            .stdout(Stdio::Null)
            .stderr(Stdio::Null);
        let info = Identity::run_with(&call).unwrap();
        assert_eq!(
            info.path.as_deref(),
            Some("/opt/ctl-test/bin:/usr/bin:/bin"),
            "{placement}"
        );
    }
}
