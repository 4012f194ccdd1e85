//! Hardening: what a runner in the exec and fork placements cannot do to its daemon and
//! the host.
//! The `TryEscape` command tries each thing for real and reports how each attempt ended;
//! a control run as root shows that the attempts do work where permitted.
//!
//! (`no_new_privs`, capabilities, environment, fds, cgroups and rlimits are asserted in
//! `placement.rs`.)

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ctl_core::{Call, Placement, Stdio};
use tests::faults::{EscapeReport, ReadThrough, TryEscape};
use tests::fixtures::{serial, test_runner_path, TestUser};

/// A root-owned directory with `mode`, removed on drop.
struct RootDir(PathBuf);

impl RootDir {
    fn new(tag: &str, mode: u32) -> RootDir {
        let dir = std::env::temp_dir().join(format!("ctl-hard-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
        RootDir(dir)
    }
}

impl Drop for RootDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A state dir as a daemon keeps one: root's, 0755, with root-owned 0644 files `state`
/// and `lock`.
fn state_dir(tag: &str) -> RootDir {
    let dir = RootDir::new(tag, 0o755);
    for name in ["state", "lock"] {
        std::fs::write(dir.0.join(name), b"daemon state\n").unwrap();
        std::fs::set_permissions(dir.0.join(name), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    dir
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A setuid-root copy of `cat` next to the secret.
fn setuid_cat(dir: &Path) -> PathBuf {
    let cat = dir.join("cat");
    std::fs::copy("/bin/cat", &cat).unwrap();
    std::fs::set_permissions(&cat, std::fs::Permissions::from_mode(0o4755)).unwrap();
    cat
}

fn try_escape(user: &TestUser, placement: Placement, secret: &Path, state: &Path) -> EscapeReport {
    let call = Call::new(user.container())
        .runner(test_runner_path())
        .placement(placement)
        .stdout(Stdio::Null)
        .stderr(Stdio::Null)
        .deadline(std::time::Duration::from_secs(60));
    TryEscape::run_with(
        &call,
        std::process::id() as i32,
        secret.to_str().unwrap().to_owned(),
        state.to_str().unwrap().to_owned(),
        secret.with_file_name("cat").to_str().unwrap().to_owned(),
    )
    .unwrap()
}

#[test]
fn a_runner_cannot_reach_its_daemon_or_root_files() {
    let _serial = serial();
    let user = TestUser::new("hescape");
    let secrets = RootDir::new("secret", 0o755);
    let secret = secrets.0.join("secret");
    std::fs::write(&secret, b"root only\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let cat = setuid_cat(&secrets.0);
    let state = state_dir("state");

    // The setuid program works for this user where no_new_privs is off (a runner of a
    // setuid_helpers command): the attempt below fails because of no_new_privs.
    let helpers = Call::new(user.container())
        .runner(test_runner_path())
        .stdout(Stdio::Null)
        .stderr(Stdio::Null)
        .deadline(std::time::Duration::from_secs(60));
    assert!(ReadThrough::run_with(
        &helpers,
        cat.to_str().unwrap().to_owned(),
        secret.to_str().unwrap().to_owned()
    )
    .unwrap());

    for placement in [Placement::Exec, Placement::Fork] {
        let report = try_escape(&user, placement, &secret, &state.0);
        eprintln!("{placement}: {report:#?}");
        assert!(report.len() >= 15, "{report:?}");
        let succeeded: Vec<&String> = report
            .iter()
            .filter(|(_, how)| *how == "ok")
            .map(|(w, _)| w)
            .collect();
        assert!(
            succeeded.is_empty(),
            "{placement}: the runner could: {succeeded:?}"
        );
        for (what, how) in &report {
            assert!(
                how.contains("EPERM")
                    || how.contains("EACCES")
                    || how.contains("ermission denied")
                    || how.contains("Operation not permitted"),
                "{placement}: {what}: {how}"
            );
        }
        assert_eq!(listing(&state.0), ["lock", "state"], "{placement}");
        assert_eq!(
            std::fs::read(state.0.join("state")).unwrap(),
            b"daemon state\n"
        );
        assert_eq!(
            std::fs::metadata(&state.0).unwrap().permissions().mode() & 0o7777,
            0o755
        );
        assert_eq!(std::fs::read(&secret).unwrap(), b"root only\n");
    }

    // Control: as root (ForkAsRoot) the same attempts go through, so the report above
    // is about permissions, not about attempts that cannot work at all.
    let scratch = state_dir("control");
    let report = try_escape(&user, Placement::ForkAsRoot, &secret, &scratch.0);
    let failed: Vec<(&String, &String)> = report.iter().filter(|(_, how)| *how != "ok").collect();
    assert!(failed.is_empty(), "as root these failed: {failed:?}");
    assert_eq!(
        listing(&scratch.0),
        ["planted", "planted.d", "planted.lnk", "state.old"]
    );
}
