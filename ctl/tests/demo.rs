//! `ctl demo` walks through the commands and leaves nothing behind, also when interrupted.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use ctl_test_support::cli::{Ct, StateDir};
use ctl_test_support::leaks::assert_gone;
use ctl_test_support::names::unique_name;

#[test]
fn demo_completes_and_leaves_nothing_behind() {
    let state = StateDir::new();
    let name = unique_name("demo");
    let _guard = Ct::named(&state, name.clone());
    let run = state.ctl(&["demo", "--name", &name]);
    let out = run.ok();
    for step in [
        "provision",
        "start",
        "state",
        "exec",
        "freeze",
        "unfreeze",
        "wall",
        "hostname",
        "runscript",
        "stop",
        "remove",
    ] {
        assert!(
            out.lines().any(|l| l.contains(step)),
            "step {step} missing:\n{run}"
        );
    }
    assert!(
        out.contains("frozen") && out.contains("running") && out.contains("stopped"),
        "{run}"
    );
    assert!(out.contains("everything removed"), "{run}");
    assert_gone(&state, &name);
}

#[test]
fn demo_json_lists_the_steps() {
    let state = StateDir::new();
    let name = unique_name("demoj");
    let _guard = Ct::named(&state, name.clone());
    let run = state.ctl(&["--json", "demo", "--name", &name]);
    run.ok();
    let doc = run.json();
    assert_eq!(run.stdout.lines().count(), 1, "{run}");
    assert_eq!(doc["ok"], true, "{doc}");
    assert_eq!(doc["result"]["removed"], true);
    let steps = doc["result"]["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 14, "{doc}");
    assert!(
        steps
            .iter()
            .all(|s| s["ok"] == true && s["ms"].as_f64().is_some()),
        "{doc}"
    );
    assert_gone(&state, &name);
}

#[test]
fn interrupted_demo_cleans_up_and_exits_130() {
    let state = StateDir::new();
    let name = unique_name("demoi");
    let _guard = Ct::named(&state, name.clone());
    let mut child = state
        .command(&["demo", "--name", &name])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    // Interrupt once the container runs, as Ctrl-C on a terminal does (the whole group).
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("state") && line.contains("running") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the demo did not get to a running container:\n{seen}"
        );
    }
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    for line in lines {
        seen.push_str(&line.unwrap());
        seen.push('\n');
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(130),
        "stdout:\n{seen}\nstderr:\n{stderr}"
    );
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(
        stderr.lines().last().unwrap_or("").starts_with("error: "),
        "{stderr}"
    );
    assert!(seen.contains("remove"), "{seen}");
    assert_gone(&state, &name);
}
