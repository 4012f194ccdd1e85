//! Wall, Mount, Unmount, WithRootfs and WithMountns on real unprivileged LXC containers,
//! run through the standalone `ctl-runner`; LXC's own tools (the oracle) and the host's
//! view of the container check the results.
//!
//! Needs root and `cargo build --workspace --bins` first (the runner binary).

use ctl_test_support::pty::{utmp_record, ContainerPty};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use commands::{Banner, Mount, Unmount, Wall, WithMountns, WithRootfs};
use ctl_core::Container;
use ctl_provision::{oracle, SHARED_DIR_IN_CT};
use serde_json::json;
use tests::fixtures::{
    command_call as call, command_error, host_mounts_under, lingering_zombies, TestContainer,
};

fn rootfs(ct: &Container) -> PathBuf {
    ct.lxc_home.join(&ct.id).join("rootfs")
}

/// The host uid of the container's root (the owner of its rootfs).
fn root_host_id(ct: &Container) -> u32 {
    std::fs::metadata(rootfs(ct)).unwrap().uid()
}

/// `sh -c script` inside the container through the oracle: (status, stdout).
fn inside(ct: &Container, script: &str) -> (i32, String) {
    let out = oracle::attach(ct, &["sh", "-c", script]).unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------------------
// Wall

#[test]
fn wall_writes_to_the_user_ttys_inside() {
    let t = TestContainer::running("wal");
    let ct = t.container();
    let pty = ContainerPty::open(ct);
    let passwd = rootfs(ct).join("etc/passwd");
    let passwd_before = std::fs::read(&passwd).unwrap();

    // utmp: the user on our terminal, a record whose line tries to leave /dev, and a
    // getty's login record (not a user: skipped).
    let mut utmp = utmp_record(libc::USER_PROCESS, 4242, &pty.name, "root");
    utmp.extend(utmp_record(
        libc::USER_PROCESS,
        4243,
        "../../etc/passwd",
        "evil",
    ));
    utmp.extend(utmp_record(
        libc::USER_PROCESS,
        4244,
        "pts/../../etc/passwd",
        "evil",
    ));
    utmp.extend(utmp_record(libc::LOGIN_PROCESS, 4245, "tty2", "LOGIN"));
    let utmp_path = rootfs(ct).join("var/run/utmp");
    std::fs::write(&utmp_path, &utmp).unwrap();
    let id = root_host_id(ct);
    std::os::unix::fs::lchown(&utmp_path, Some(id), Some(id)).unwrap();

    let t0 = Instant::now();
    assert!(Wall::run_with(&call(ct), "the host goes down at noon".into(), Banner::On).unwrap());
    eprintln!("Wall: {:?}", t0.elapsed());
    let seen = pty.read(Duration::from_secs(5));
    assert!(seen.contains("the host goes down at noon"), "{seen:?}");
    let host = nix::unistd::gethostname().unwrap().into_string().unwrap();
    assert!(
        seen.contains(&format!("Message from host machine {host} (")),
        "{seen:?}"
    );
    assert_eq!(
        std::fs::read(&passwd).unwrap(),
        passwd_before,
        "/etc/passwd was written to"
    );

    // A banner of our own, and none.
    assert!(Wall::run_with(
        &call(ct),
        "second".into(),
        Banner::Text("Custom banner:".into())
    )
    .unwrap());
    let seen = pty.read(Duration::from_secs(5));
    assert!(
        seen.contains("Custom banner:") && seen.contains("second"),
        "{seen:?}"
    );
    assert!(!seen.contains("Message from host machine"), "{seen:?}");
    assert!(Wall::run_with(&call(ct), "third".into(), Banner::Off).unwrap());
    let seen = pty.read(Duration::from_secs(5));
    assert!(
        seen.contains("third") && !seen.contains("banner"),
        "{seen:?}"
    );

    assert!(oracle::lxc_tool(ct, "lxc-freeze", &[])
        .unwrap()
        .status
        .success());
    let message = command_error(Wall::run_with(&call(ct), "frozen".into(), Banner::On));
    assert!(message.contains("frozen"), "{message}");
    assert!(oracle::lxc_tool(ct, "lxc-unfreeze", &[])
        .unwrap()
        .status
        .success());

    oracle::stop(ct).unwrap();
    let message = command_error(Wall::run_with(&call(ct), "nobody".into(), Banner::On));
    assert!(message.contains("not running"), "{message}");
    assert!(lingering_zombies().is_empty());
}

// ---------------------------------------------------------------------------------------
// Mount, Unmount

#[test]
fn mount_moves_a_host_mount_into_the_container_and_unmount_removes_it() {
    let t = TestContainer::running("mnt");
    let ct = t.container();
    let state_dir = t.provisioner.state_dir().to_owned();
    let shared = t.provisioner.shared_dir(&ct.id);

    // The daemon's part: mount something below the host side of the shared directory.
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("hello"), "from the host\n").unwrap();
    let src = shared.join("vol");
    std::fs::create_dir(&src).unwrap();
    run(Command::new("mount")
        .arg("--bind")
        .arg(data.path())
        .arg(&src));
    // It propagated into the container.
    assert_eq!(
        inside(ct, "cat /run/ctl-shared/vol/hello"),
        (0, "from the host\n".into())
    );

    let t0 = Instant::now();
    let moved = Mount::run_with(
        &call(ct),
        SHARED_DIR_IN_CT.into(),
        "vol".into(),
        "/mnt/data/vol".into(),
    );
    eprintln!("Mount: {:?}", t0.elapsed());
    assert!(moved.unwrap());
    assert_eq!(
        inside(ct, "cat /mnt/data/vol/hello"),
        (0, "from the host\n".into())
    );
    // The daemon drops its host-side copy; the container keeps its mount.
    run(Command::new("umount").arg(&src));
    assert_eq!(host_mounts_under(&state_dir), [shared.to_str().unwrap()]);
    assert_eq!(
        inside(ct, "cat /mnt/data/vol/hello"),
        (0, "from the host\n".into())
    );
    assert_eq!(
        inside(ct, "grep -c ' /mnt/data/vol ' /proc/self/mountinfo")
            .1
            .trim(),
        "1"
    );

    let t0 = Instant::now();
    assert!(Unmount::run_with(&call(ct), "/mnt/data/vol".into()).unwrap());
    eprintln!("Unmount: {:?}", t0.elapsed());
    assert_eq!(
        inside(ct, "grep -c ' /mnt/data/vol ' /proc/self/mountinfo")
            .1
            .trim(),
        "0"
    );
    assert_eq!(inside(ct, "ls -A /mnt/data/vol"), (0, String::new()));
    // The shared directory keeps receiving mounts from the host after a move.
    let src2 = shared.join("vol2");
    std::fs::create_dir(&src2).unwrap();
    run(Command::new("mount")
        .arg("--bind")
        .arg(data.path())
        .arg(&src2));
    assert!(Mount::run_with(
        &call(ct),
        SHARED_DIR_IN_CT.into(),
        "vol2".into(),
        "/mnt/two".into()
    )
    .unwrap());
    run(Command::new("umount").arg(&src2));
    assert_eq!(
        inside(ct, "cat /mnt/two/hello"),
        (0, "from the host\n".into())
    );
    assert!(Unmount::run_with(&call(ct), "/mnt/two".into()).unwrap());
    assert_eq!(inside(ct, "ls -A /mnt/two"), (0, String::new()));
    // Not mounted (any more), or not even there: fine.
    assert!(Unmount::run_with(&call(ct), "/mnt/data/vol".into()).unwrap());
    assert!(Unmount::run_with(&call(ct), "/no/such/dir".into()).unwrap());

    // Refusals, each with a clear message.
    let message = command_error(Mount::run_with(
        &call(ct),
        SHARED_DIR_IN_CT.into(),
        "missing".into(),
        "/mnt/x".into(),
    ));
    assert!(
        message.contains("Source directory not found at: "),
        "{message}"
    );
    let message = command_error(Mount::run_with(
        &call(ct),
        SHARED_DIR_IN_CT.into(),
        "../etc".into(),
        "/mnt/x".into(),
    ));
    assert!(message.contains("src must be"), "{message}");
    let message = command_error(Mount::run_with(
        &call(ct),
        SHARED_DIR_IN_CT.into(),
        "vol".into(),
        "rel".into(),
    ));
    assert!(message.contains("dst must be"), "{message}");
    // A directory below the shared one that is not a mount point cannot be moved.
    std::fs::create_dir(shared.join("plain")).unwrap();
    let message = command_error(Mount::run_with(
        &call(ct),
        SHARED_DIR_IN_CT.into(),
        "plain".into(),
        "/mnt/y".into(),
    ));
    assert!(message.contains("cannot move the mount"), "{message}");
    let message = command_error(Mount::run_with(
        &call(ct),
        "/no/shared".into(),
        "vol".into(),
        "/mnt/z".into(),
    ));
    assert!(message.contains("Shared dir not found at: "), "{message}");
    assert_eq!(
        std::fs::read_dir(data.path()).unwrap().count(),
        1,
        "the data was not touched"
    );

    oracle::stop(ct).unwrap();
    let message = command_error(Unmount::run_with(&call(ct), "/mnt/data/vol".into()));
    assert!(message.contains("not running"), "{message}");
    let message = command_error(Mount::run_with(
        &call(ct),
        SHARED_DIR_IN_CT.into(),
        "vol".into(),
        "/mnt/d".into(),
    ));
    assert!(message.contains("not running"), "{message}");

    drop(t);
    assert!(
        host_mounts_under(&state_dir).is_empty(),
        "left mounted: {:?}",
        host_mounts_under(&state_dir)
    );
    assert_eq!(
        std::fs::read_to_string(data.path().join("hello")).unwrap(),
        "from the host\n"
    );
    assert!(lingering_zombies().is_empty());
}

// ---------------------------------------------------------------------------------------
// WithRootfs, WithMountns

/// Registered like a plugin's task would be: linked into this test binary only, so the
/// standalone runner does not know it.
fn plugin_only(_args: serde_json::Value) -> Result<serde_json::Value, ctl_core::CommandError> {
    Ok(json!("never"))
}
commands::rootfs_task!("test_plugin_only", plugin_only);

#[test]
fn with_rootfs_and_with_mountns_run_a_registered_task_inside() {
    let t = TestContainer::running("wrf");
    let ct = t.container();
    let root = rootfs(ct);
    let id = root_host_id(ct);
    // A file only the container's root can read, and one only the host's root can.
    let secret = root.join("root/secret");
    std::fs::write(&secret, "only for the container's root\n").unwrap();
    std::os::unix::fs::chown(&secret, Some(id), Some(id)).unwrap();
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let host_only = root.join("host-only");
    std::fs::write(&host_only, "host\n").unwrap();
    std::fs::set_permissions(
        &host_only,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    // Something that exists only in the container's mount namespace.
    assert_eq!(
        inside(
            ct,
            "mount -t tmpfs none /mnt && echo in-the-namespace > /mnt/f"
        )
        .0,
        0
    );

    let t0 = Instant::now();
    let v = WithRootfs::run_with(
        &call(ct),
        "read_file".into(),
        json!({"path": "/root/secret"}),
    )
    .unwrap();
    eprintln!("WithRootfs: {:?}", t0.elapsed());
    assert_eq!(v, json!("only for the container's root\n"));
    // The container's /etc/passwd, not the host's.
    let v = WithRootfs::run_with(&call(ct), "read_file".into(), json!("/etc/passwd")).unwrap();
    assert_eq!(v, json!("root:x:0:0:root:/root:/bin/sh\n"));
    // As the container's root host uid: a host-root-only file stays closed.
    let message = command_error(WithRootfs::run_with(
        &call(ct),
        "read_file".into(),
        json!("/host-only"),
    ));
    assert!(message.contains("Permission denied"), "{message}");
    // The rootfs directory, not the namespace: the tmpfs is not there.
    let message = command_error(WithRootfs::run_with(
        &call(ct),
        "read_file".into(),
        json!("/mnt/f"),
    ));
    assert!(message.contains("No such file"), "{message}");

    let t0 = Instant::now();
    let v =
        WithMountns::run_with(&call(ct), "read_file".into(), json!("/mnt/f"), None, None).unwrap();
    eprintln!("WithMountns: {:?}", t0.elapsed());
    assert_eq!(v, json!("in-the-namespace\n"));
    let v = WithMountns::run_with(
        &call(ct),
        "read_file".into(),
        json!("/root/secret"),
        None,
        None,
    )
    .unwrap();
    assert_eq!(v, json!("only for the container's root\n"));
    let init = oracle::lxc_init_pid(ct).unwrap().unwrap();
    let v = WithMountns::run_with(
        &call(ct),
        "read_file".into(),
        json!("/f"),
        Some(init),
        Some("/mnt".into()),
    )
    .unwrap();
    assert_eq!(v, json!("in-the-namespace\n"));
    let message = command_error(WithMountns::run_with(
        &call(ct),
        "read_file".into(),
        json!("/host-only"),
        None,
        None,
    ));
    assert!(message.contains("Permission denied"), "{message}");

    // Unknown tasks name the known ones; a task of another binary is unknown to this runner.
    for task in ["no_such_task", "test_plugin_only"] {
        let message = command_error(WithRootfs::run_with(&call(ct), task.into(), json!(null)));
        assert!(
            message.contains(&format!("unknown task \"{task}\"")) && message.contains("read_file"),
            "{message}"
        );
        let message = command_error(WithMountns::run_with(
            &call(ct),
            task.into(),
            json!(null),
            None,
            None,
        ));
        assert!(message.contains("unknown task"), "{message}");
    }
    let message = command_error(WithRootfs::run_with(
        &call(ct),
        "read_file".into(),
        json!(42),
    ));
    assert!(message.contains("read_file"), "{message}");

    // Stopped: the rootfs is still there, the namespace is not.
    oracle::stop(ct).unwrap();
    let v = WithRootfs::run_with(&call(ct), "read_file".into(), json!("/root/secret")).unwrap();
    assert_eq!(v, json!("only for the container's root\n"));
    let message = command_error(WithMountns::run_with(
        &call(ct),
        "read_file".into(),
        json!("/f"),
        None,
        None,
    ));
    assert!(message.contains("not running"), "{message}");
    assert!(lingering_zombies().is_empty());
}
