//! The standing red team, part two: the container's system user against its own runners.
//!
//! Runners run as the container's user, who can run code on the host (an `lxc.hook` in the
//! config it owns, a process left behind by one). A runner that user can ptrace hands it
//! the reply pipe to the root frontend (forged results), the envelope socket and the call's
//! stdio. `test-support/redteam/grab.c` hunts every process whose title names a runner with
//! `pidfd_getfd` and writes a forged reply (`exit status 0`) into its reply pipe.

use std::process::Command;
use std::time::Duration;

use ctl_test_support::cli::{Ct, StateDir};
use ctl_test_support::redteam::{redteam_binary, wait_for_text};

#[test]
fn the_container_user_can_neither_catch_a_runner_nor_forge_its_reply() {
    use std::os::unix::fs::PermissionsExt;
    let state = StateDir::new();
    let ct = Ct::running(&state, "rtu");
    let dir = tempfile::Builder::new()
        .prefix("ctl-redteam-user-")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let grab = redteam_binary("grab");
    let log = dir.path().join("grab.log");
    let status = Command::new("setpriv")
        .args([
            "--reuid",
            &ct.user(),
            "--regid",
            &ct.user(),
            "--clear-groups",
        ])
        .arg(&grab)
        .arg("120")
        .arg(&log)
        .status()
        .unwrap();
    assert!(status.success(), "the container's user starts its hunter");
    wait_for_text(
        &log,
        "watching",
        Duration::from_secs(10),
        "the hunter did not start",
    );

    // Results the hunter would like to change: every one must come back as it really is.
    for round in 0..6 {
        let run = ct.exec(&["sh", "-c", "exit 7"]);
        assert_eq!(
            run.status,
            Some(7),
            "round {round}: a forged reply got through?\n{run}"
        );
    }
    let run = ct.ctl(&["wall", "hello"]);
    assert_eq!(run.status, Some(0), "{run}");
    ct.ctl(&["stop", "--timeout", "5"]).ok();
    let run = ct
        .state
        .ctl(&["ct", "exec", "-r", &ct.name, "--", "sh", "-c", "exit 5"]);
    assert_eq!(run.status, Some(5), "a forged reply got through?\n{run}");
    ct.ctl(&["start"]).ok();
    assert_eq!(ct.state_word(), "running");

    let text = std::fs::read_to_string(&log).unwrap();
    let forged: Vec<&str> = text.lines().filter(|l| l.starts_with("FORGED")).collect();
    assert!(forged.is_empty(), "replies were forged:\n{text}");
    // A runner proper holds the envelope socket on fd 0; only the workers forked for
    // liblxc's start and execute (which need to be dumpable) may be caught, and they hold
    // /dev/null there and nothing of the conversation.
    let runners: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("CAUGHT") && !l.ends_with("fd0=/dev/null"))
        .collect();
    assert!(
        runners.is_empty(),
        "the container's user caught runners:\n{text}"
    );
}
