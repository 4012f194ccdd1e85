//! A `ct new` killed part-way (a crash, a reboot) is completed by `ct new` or removed by
//! `ct del`. Alone in its test binary, so that no other test of ours provisions while a
//! `ct new` is being killed.

use std::process::Stdio;
use std::time::{Duration, Instant};

use ctl_test_support::cli::{Ct, StateDir};
use ctl_test_support::leaks::assert_gone;
use ctl_test_support::names::unique_name;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Children of `pid` (from /proc), not zombies.
fn children(pid: i32) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let mut fields = rest.split(' ');
        let state = fields.next().unwrap_or("");
        if fields.next().and_then(|p| p.parse::<i32>().ok()) == Some(pid) && state != "Z" {
            found.push(child);
        }
    }
    found
}

/// Kills `ct new NAME` after `delay` (SIGKILL: no chance to clean up), at a moment when
/// it runs no helper. A helper orphaned part-way (groupadd, useradd) would go on editing
/// /etc outside the provisioner's host lock and make concurrent provisioning fail on
/// shadow's lock files, in this and in other test runs on the machine.
fn kill_new_after(state: &StateDir, name: &str, delay: Duration) {
    let mut child = state
        .command(&["ct", "new", name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    let pid = Pid::from_raw(child.id() as i32);
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let _ = kill(pid, Signal::SIGSTOP);
        while !stopped_or_gone(pid.as_raw()) {
            std::thread::sleep(Duration::from_micros(200));
        }
        if children(pid.as_raw()).is_empty() {
            break;
        }
        let _ = kill(pid, Signal::SIGCONT);
        std::thread::sleep(Duration::from_millis(1));
    }
    let _ = kill(pid, Signal::SIGKILL);
    let _ = child.wait();
}

fn stopped_or_gone(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
        s.rsplit_once(") ")
            .is_some_and(|(_, r)| r.starts_with(['T', 't', 'Z', 'X']))
    })
}

#[test]
fn killed_new_is_completed_by_new_or_removed_by_del() {
    let state = StateDir::new();
    for (i, delay_ms) in [5, 15, 30, 60, 100, 5, 15, 30, 60, 100]
        .into_iter()
        .enumerate()
    {
        let ct = Ct::named(&state, unique_name("kill"));
        kill_new_after(&state, &ct.name, Duration::from_millis(delay_ms));
        // Whatever state it is in, the registry never holds a half-written record.
        let record = state
            .path()
            .join("containers")
            .join(format!("{}.json", ct.name));
        if record.exists() {
            let text = std::fs::read(&record).unwrap();
            serde_json::from_slice::<serde_json::Value>(&text).expect("a complete record");
        }
        let ls = state.ctl(&["ct", "ls"]).ok().to_owned();
        if i < 5 {
            let run = state.ctl(&["ct", "new", &ct.name]);
            if run.status != Some(0) {
                // It had completed before the kill.
                assert!(
                    run.fails(1).contains("exists already"),
                    "{run}\nls before:\n{ls}"
                );
            }
            assert_eq!(ct.state_word(), "stopped");
            ct.ctl(&["start"]).ok();
            assert_eq!(ct.state_word(), "running");
            ct.ctl(&["del"]).ok();
        } else {
            let run = state.ctl(&["ct", "del", &ct.name]);
            if run.status != Some(0) {
                // Killed before it created anything.
                assert!(
                    run.fails(1).contains("no container"),
                    "{run}\nls before:\n{ls}"
                );
            }
        }
        assert_gone(&state, &ct.name);
    }
}
