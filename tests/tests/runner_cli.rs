//! The runner binaries as operators and daemons use them.

use std::process::Command;

use tests::fixtures::{ctl_runner_path, output_with_stdin, test_runner_path, TestUser};

#[test]
fn list_prints_registered_names() {
    let out = Command::new(ctl_runner_path())
        .arg("--list")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let names: Vec<&str> = text.lines().collect();
    assert!(
        names.contains(&"Identity") && names.contains(&"Ping"),
        "{names:?}"
    );
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    // The standalone runner has no test commands; the plugin runner has both.
    assert!(!names.contains(&"Abort"));
    let plugin = Command::new(test_runner_path())
        .arg("--list")
        .output()
        .unwrap();
    let plugin = String::from_utf8(plugin.stdout).unwrap();
    assert!(
        plugin.lines().any(|l| l == "Abort") && plugin.lines().any(|l| l == "Ping"),
        "{plugin}"
    );
}

#[test]
fn list_json_has_name_placement_summary() {
    let out = Command::new(ctl_runner_path())
        .args(["--list", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let items: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let ping = items
        .iter()
        .find(|i| i["name"] == "Ping")
        .expect("Ping listed");
    assert_eq!(ping["placement"], "exec");
    assert_eq!(
        ping["summary"],
        "Echo the argument back: the cheapest command there is."
    );
    let identity = items.iter().find(|i| i["name"] == "Identity").unwrap();
    assert!(identity["summary"]
        .as_str()
        .unwrap()
        .starts_with("Report the identity"));
}

#[test]
fn bad_arguments_are_one_line_errors() {
    let out = Command::new(ctl_runner_path())
        .arg("--bogus")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn a_daemon_can_be_its_own_runner() {
    let user = TestUser::new("multicall");
    let out = output_with_stdin(
        Command::new(test_runner_path())
            .arg("selftest-multicall")
            .env_remove("CTL_RUNNER"),
        &serde_json::to_vec(user.container()).unwrap(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text, "\"multicall\"\n/proc/self/exe\n");
}

#[test]
fn ctl_runner_env_overrides_the_runner() {
    let user = TestUser::new("envrunner");
    let out = output_with_stdin(
        Command::new(test_runner_path())
            .arg("selftest-multicall")
            .env("CTL_RUNNER", "/nonexistent/other-runner"),
        &serde_json::to_vec(user.container()).unwrap(),
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("cannot start runner /nonexistent/other-runner"),
        "{err}"
    );
}
