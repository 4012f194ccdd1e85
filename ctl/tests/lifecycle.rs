//! `ctl ct new/start/freeze/unfreeze/stop/del/ls/state/hostname` on real containers.

use std::time::{Duration, Instant};

use ctl_test_support::cli::{Ct, StateDir};
use ctl_test_support::leaks::{assert_gone, user_exists};

#[test]
fn state_words_after_each_life_cycle_step() {
    let state = StateDir::new();
    let ct = Ct::new(&state, "life");
    assert!(user_exists(&ct.user()), "ct new made no user {}", ct.user());
    assert_eq!(ct.state_word(), "stopped");

    ct.ctl(&["start"]).ok();
    assert_eq!(ct.state_word(), "running");

    ct.ctl(&["freeze"]).ok();
    assert_eq!(ct.state_word(), "frozen");

    ct.ctl(&["unfreeze"]).ok();
    assert_eq!(ct.state_word(), "running");

    assert_eq!(ct.ctl(&["hostname"]).ok().trim(), ct.name);
    ct.ctl(&["wall", "hello from the tests"]).ok();

    ct.ctl(&["stop", "--timeout", "20"]).ok();
    assert_eq!(ct.state_word(), "stopped");

    ct.ctl(&["start"]).ok();
    assert_eq!(ct.state_word(), "running");
    ct.ctl(&["stop", "--mode", "kill"]).ok();
    assert_eq!(ct.state_word(), "stopped");
}

#[test]
fn reboot_comes_back_running() {
    let state = StateDir::new();
    let ct = Ct::running(&state, "boot");
    ct.ctl(&["reboot"]).ok();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let word = ct.state_word();
        if word == "running" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {word} 30 s after the reboot"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn ls_lists_name_user_state_and_init_pid() {
    let state = StateDir::new();
    let a = Ct::running(&state, "lsa");
    let b = Ct::new(&state, "lsb");
    let out = state.ctl(&["ct", "ls"]).ok().to_owned();
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "USER", "STATE", "INIT", "PID"], "{out}");
    let row = |name: &str| -> Vec<String> {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} not listed:\n{out}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    let ra = row(&a.name);
    assert_eq!(ra[1], a.user());
    assert_eq!(ra[2], "running");
    assert!(ra[3].parse::<u32>().is_ok_and(|p| p > 1), "{out}");
    let rb = row(&b.name);
    assert_eq!(rb[1..], [b.user(), "stopped".to_owned(), "-".to_owned()]);
}

#[test]
fn del_removes_everything_even_when_running() {
    let state = StateDir::new();
    let ct = Ct::running(&state, "del");
    // Detached from ctl's pipes, or the test would wait for their EOF.
    ct.exec(&["sh", "-c", "sleep 1000 </dev/null >/dev/null 2>&1 &"])
        .ok();
    ct.ctl(&["del"]).ok();
    assert_gone(&state, &ct.name);
    assert!(!state.ctl(&["ct", "ls"]).ok().contains(&ct.name));
    // A second del is a user mistake now: no such container.
    let msg = ct.ctl(&["del"]).fails(1);
    assert!(msg.contains("no container"), "{msg}");
}

/// Removes what a `ct new` writes last (the record, then the rootfs marker), as a crash
/// before those writes leaves it.
fn simulate_crash(state: &StateDir, ct: &Ct) {
    std::fs::remove_file(
        state
            .path()
            .join("containers")
            .join(format!("{}.json", ct.name)),
    )
    .unwrap();
    let _ = std::fs::remove_file(
        state
            .path()
            .join("lxc")
            .join(ct.user())
            .join(&ct.name)
            .join(".rootfs-done"),
    );
}

#[test]
fn crashed_new_is_completed_by_new_or_removed_by_del() {
    let state = StateDir::new();
    for finish_with in ["new", "del"] {
        let ct = Ct::new(&state, "crash");
        simulate_crash(&state, &ct);
        let ls = state.ctl(&["ct", "ls"]).ok().to_owned();
        let row = ls
            .lines()
            .find(|l| l.starts_with(&ct.name))
            .unwrap_or_else(|| panic!("{ls}"));
        assert!(row.contains("incomplete"), "{ls}");
        let msg = ct.ctl(&["start"]).fails(1);
        assert!(
            msg.contains("incomplete") && msg.contains("ctl ct new"),
            "{msg}"
        );
        match finish_with {
            "new" => {
                let out = state.ctl(&["ct", "new", &ct.name]).ok().to_owned();
                assert!(out.starts_with("completed container"), "{out}");
                ct.ctl(&["start"]).ok();
                assert_eq!(ct.state_word(), "running");
                ct.ctl(&["del"]).ok();
            }
            _ => {
                ct.ctl(&["del"]).ok();
            }
        }
        assert_gone(&state, &ct.name);
    }
}

#[test]
fn new_twice_is_an_error_and_veth_is_accepted() {
    let state = StateDir::new();
    let ct = Ct::new(&state, "twice");
    let msg = state.ctl(&["ct", "new", &ct.name]).fails(1);
    assert!(msg.contains("exists already"), "{msg}");

    let veth = Ct::named(&state, ctl_test_support::names::unique_name("veth"));
    state.ctl(&["ct", "new", &veth.name, "--net", "veth"]).ok();
    let config = state
        .path()
        .join("lxc")
        .join(veth.user())
        .join(&veth.name)
        .join("config");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("lxc.net.0.type = veth"), "{text}");
}

#[test]
fn veth_name_of_a_veth_container() {
    let state = StateDir::new();
    let ct = Ct::named(&state, ctl_test_support::names::unique_name("vname"));
    let run = state.ctl(&["ct", "new", &ct.name, "--net", "veth"]);
    run.ok();
    // Not a terminal: no progress output.
    assert_eq!(run.stderr, "", "{run}");
    ct.ctl(&["start"]).ok();
    let veth = ct.ctl(&["veth-name", "0"]).ok().trim().to_owned();
    assert!(!veth.is_empty());
    assert!(
        std::path::Path::new("/sys/class/net").join(&veth).exists(),
        "no host interface {veth}"
    );
    // There is no second interface.
    ct.ctl(&["veth-name", "1"]).fails(1);
}

#[test]
fn unmount_of_something_not_mounted_is_fine_and_a_bad_mount_is_one_line() {
    let state = StateDir::new();
    let ct = Ct::running(&state, "mnt");
    ct.ctl(&["unmount", "/mnt/not-mounted"]).ok();
    let run = ct.ctl(&["mount", "/nonexistent/shared", "src", "/mnt/dst"]);
    run.fails(1);
    assert_eq!(run.stderr.lines().count(), 1, "{run}");
}

#[test]
fn mount_through_the_shared_directory_and_unmount() {
    let state = StateDir::new();
    let ct = Ct::running(&state, "shmnt");
    // What a daemon does: mount below the host side of the shared directory...
    let host = state.path().join("shared").join(&ct.name).join("data");
    std::fs::create_dir_all(&host).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "tmpfs"])
        .arg(&host)
        .status()
        .unwrap();
    assert!(mounted.success());
    std::fs::write(host.join("hello"), "from the host\n").unwrap();
    // ...move it into place inside...
    ct.ctl(&["mount", "/run/ctl-shared", "data", "/mnt/data"])
        .ok();
    // ...and drop the host side's copy.
    let _ = std::process::Command::new("umount").arg(&host).status();
    assert_eq!(ct.exec(&["cat", "/mnt/data/hello"]).ok(), "from the host\n");
    ct.ctl(&["unmount", "/mnt/data"]).ok();
    let run = ct.exec(&["test", "-e", "/mnt/data/hello"]);
    assert_eq!(run.status, Some(1), "{run}");
}
