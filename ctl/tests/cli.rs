//! User mistakes, `--json` documents, `ctl commands`, completions and the root check.

use std::process::Command;

use ctl_test_support::cli::{ctl_bin, Ct, StateDir};

#[test]
fn unknown_container_is_one_error_line() {
    let state = StateDir::new();
    for sub in ["start", "state", "freeze", "stop", "hostname", "del"] {
        let run = state.ctl(&["ct", sub, "nosuchct"]);
        let msg = run.fails(1);
        assert_eq!(run.stderr.lines().count(), 1, "{run}");
        assert!(msg.contains("no container \"nosuchct\""), "{sub}: {msg}");
        assert_eq!(run.stdout, "");
    }
    let run = state.ctl(&["ct", "exec", "nosuchct", "--", "true"]);
    assert!(run.fails(1).contains("no container"), "{run}");
}

#[test]
fn invalid_name_is_refused() {
    let state = StateDir::new();
    let msg = state.ctl(&["ct", "new", "Bad_Name"]).fails(1);
    assert!(msg.contains("invalid container name"), "{msg}");
}

#[test]
fn bad_mode_is_a_usage_error() {
    let state = StateDir::new();
    // clap reports usage errors itself, with status 2.
    let run = state.ctl(&["ct", "stop", "whatever", "--mode", "gently"]);
    assert_eq!(run.status, Some(2), "{run}");
    assert!(
        run.stderr
            .starts_with("error: invalid value 'gently' for '--mode <MODE>'"),
        "{run}"
    );
    let run = state.ctl(&["ct", "exec", "whatever"]);
    assert_eq!(run.status, Some(2), "{run}");
}

#[test]
fn missing_script_is_reported_before_anything_runs() {
    let state = StateDir::new();
    let ct = Ct::new(&state, "noscr");
    let run = ct.ctl(&["runscript", "/nonexistent/script.sh"]);
    let msg = run.fails(1);
    assert_eq!(
        msg,
        "script /nonexistent/script.sh: No such file or directory (os error 2)"
    );
    let doc = state
        .ctl(&[
            "--json",
            "ct",
            "runscript",
            &ct.name,
            "/nonexistent/script.sh",
        ])
        .json();
    assert_eq!(doc["error"]["kind"], "script");
}

#[test]
fn stopped_container_errors_are_one_line() {
    let state = StateDir::new();
    let ct = Ct::new(&state, "stopd");
    for sub in ["freeze", "hostname"] {
        let run = ct.ctl(&[sub]);
        run.fails(1);
        assert_eq!(run.stderr.lines().count(), 1, "{run}");
    }
}

#[test]
fn json_documents_for_results_and_errors() {
    let state = StateDir::new();
    let ct = Ct::new(&state, "json");

    let doc = state.ctl(&["--json", "ct", "state", &ct.name]).json();
    assert_eq!(doc["ok"], true, "{doc}");
    assert_eq!(doc["result"]["id"], ct.name.as_str());
    assert_eq!(doc["result"]["state"], "stopped");
    assert!(doc["result"]["init_pid"].is_null(), "{doc}");

    // Global options also after the subcommand.
    let run = state.ctl(&["ct", "start", &ct.name, "--json"]);
    assert_eq!(run.ok(), "{\"ok\":true,\"result\":true}\n");
    let doc = state.ctl(&["ct", "ls", "--json"]).json();
    let me = doc["result"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == ct.name.as_str())
        .unwrap()
        .clone();
    assert_eq!(me["user"], ct.user());
    assert_eq!(me["state"], "running");
    assert!(me["init_pid"].as_i64().is_some_and(|p| p > 1), "{me}");

    let run = state.ctl(&["--json", "ct", "state", "nosuchct"]);
    assert_eq!(run.status, Some(1));
    assert_eq!(run.stdout.lines().count(), 1, "{run}");
    let doc = run.json();
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["error"]["kind"], "not_found");
    assert!(doc["error"]["message"]
        .as_str()
        .unwrap()
        .contains("nosuchct"));
    assert_eq!(run.stderr, "", "--json reports errors on stdout only");

    let doc = state.ctl(&["--json", "ct", "new", &ct.name]).json();
    assert_eq!(doc["error"]["kind"], "exists");

    let doc = state.ctl(&["--json", "ct", "hostname", &ct.name]).json();
    assert_eq!(doc["result"], ct.name.as_str());
    let doc = state
        .ctl(&["--json", "ct", "stop", &ct.name, "--mode", "kill"])
        .json();
    assert_eq!(doc, serde_json::json!({"ok": true, "result": true}));
}

#[test]
fn commands_lists_the_registry() {
    let out = Command::new(ctl_bin()).arg("commands").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let line = |name: &str| {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .map(str::to_owned)
    };
    for name in [
        "Start",
        "Stop",
        "Freeze",
        "Unfreeze",
        "State",
        "Exec",
        "Runscript",
        "Wall",
        "GetHostname",
    ] {
        assert!(line(name).is_some(), "{name} missing:\n{text}");
    }
    assert!(line("Freeze").unwrap().contains("exec"), "{text}");
    assert!(line("Exec").unwrap().contains("+setuid"), "{text}");
    assert!(
        line("GetHostname").unwrap().contains("fork_as_root"),
        "{text}"
    );
    assert!(line("Syscmd").unwrap().contains("frontend"), "{text}");
    assert!(
        line("Freeze").unwrap().contains("Freeze the container."),
        "{text}"
    );

    let out = Command::new(ctl_bin())
        .args(["commands", "--json"])
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = doc["result"].as_array().unwrap();
    let exec = list.iter().find(|c| c["name"] == "Exec").unwrap();
    assert_eq!(exec["placement"], "exec");
    assert_eq!(exec["setuid_helpers"], true);
    assert!(!exec["summary"].as_str().unwrap().is_empty());
}

#[test]
fn completions_for_every_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(ctl_bin())
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.len() > 1000 && text.contains("runscript"),
            "{shell}: {text}"
        );
    }
}

#[test]
fn help_for_every_subcommand() {
    for sub in [
        &["ct", "new"][..],
        &["ct", "exec"],
        &["ct", "stop"],
        &["ct", "runscript"],
        &["demo"],
        &["commands"],
        &["completions"],
    ] {
        let mut args = sub.to_vec();
        args.push("--help");
        let out = Command::new(ctl_bin()).args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage: ctl"),
            "{args:?}"
        );
    }
}

#[test]
fn container_commands_need_root() {
    // As nobody: the root check comes first, with a clear message.
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(ctl_bin())
        .args(["--state-dir", "/nonexistent/ctl-state", "ct", "ls"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: ctl ct must run as root"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn usage_errors_with_json_are_json_too() {
    let state = StateDir::new();
    let run = state.ctl(&["--json", "ct", "stop", "x", "--mode", "gently"]);
    assert_eq!(run.status, Some(2), "{run}");
    let doc = run.json();
    assert_eq!(doc["error"]["kind"], "usage");
    assert!(
        doc["error"]["message"].as_str().unwrap().contains("gently"),
        "{doc}"
    );
}

#[test]
fn an_unreadable_record_is_listed_reported_and_removable() {
    let state = StateDir::new();
    // The state directory exists once ctl ran in it.
    state.ctl(&["ct", "ls"]).ok();
    let record = state.path().join("containers").join("garbage.json");
    std::fs::write(&record, "{\"pool\": \"default\", \"id\"").unwrap();
    let ls = state.ctl(&["ct", "ls"]).ok().to_owned();
    assert!(
        ls.lines()
            .any(|l| l.starts_with("garbage") && l.contains("bad-record")),
        "{ls}"
    );
    let doc = state.ctl(&["--json", "ct", "state", "garbage"]).json();
    assert_eq!(doc["error"]["kind"], "bad_record", "{doc}");
    let msg = state.ctl(&["ct", "start", "garbage"]).fails(1);
    assert!(msg.starts_with("bad container record"), "{msg}");
    state.ctl(&["ct", "del", "garbage"]).ok();
    assert!(!record.exists());
}
