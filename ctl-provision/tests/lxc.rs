//! ctl-lxc against real containers made by the provisioner. The liblxc calls run in
//! `lxc-probe` spawned as the container's user inside its entry cgroups, the way the ctl
//! runner calls them; LXC's own tools (the oracle) check the results.

use std::process::Command;
use std::time::Instant;

use ctl_core::Container;
use ctl_provision::{oracle, CreateOptions};
use ctl_test_support::container::{Env, Guard};
use ctl_test_support::names::unique_name;
use serde_json::Value;

const PROBE: &str = env!("CARGO_BIN_EXE_lxc-probe");

/// Runs one probe op as the container's user; returns `value` or panics with the error.
fn probe(ct: &Container, op: &str, args: &[&str]) -> Value {
    let reply = probe_raw(ct, op, args);
    assert_eq!(
        reply["ok"], true,
        "lxc-probe {op} {args:?} failed: {}",
        reply["error"]
    );
    reply["value"].clone()
}

/// Runs one probe op as the container's user; returns the whole reply line.
fn probe_raw(ct: &Container, op: &str, args: &[&str]) -> Value {
    let mut full = vec![ct.lxc_home.to_str().unwrap(), ct.id.as_str(), op];
    full.extend_from_slice(args);
    let t = Instant::now();
    let out = oracle::command_as_user(ct, PROBE, &full)
        .output()
        .expect("spawn lxc-probe");
    let wall = t.elapsed();
    assert!(
        out.status.success(),
        "lxc-probe {op}: {} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout);
    let reply: Value = serde_json::from_str(line.trim())
        .unwrap_or_else(|e| panic!("bad probe output {line:?}: {e}"));
    eprintln!(
        "probe {op:<14} {:>8} us in liblxc, {:>8.1?} wall",
        reply["micros"], wall
    );
    reply
}

fn stdout_of(v: &Value) -> String {
    v["stdout"].as_str().unwrap_or_default().trim().to_owned()
}

#[test]
fn probe_binary_does_not_link_liblxc() {
    let out = Command::new("readelf")
        .args(["-d", PROBE])
        .output()
        .expect("readelf (binutils)");
    assert!(out.status.success());
    let dynamic = String::from_utf8_lossy(&out.stdout);
    assert!(
        dynamic.contains("(NEEDED)"),
        "unexpected readelf output: {dynamic}"
    );
    assert!(
        !dynamic.contains("liblxc"),
        "liblxc is a DT_NEEDED of lxc-probe:\n{dynamic}"
    );
}

#[test]
fn running_container_state_freeze_config_attach() {
    let env = Env::new();
    let guard = Guard::create(&env.prov, unique_name("lxc"), &CreateOptions::default());
    let ct = guard.ct();
    oracle::start(ct).unwrap();

    assert!(probe(ct, "version", &[])
        .as_str()
        .unwrap()
        .starts_with("5."));
    assert_eq!(probe(ct, "defined", &[]), true);
    assert_eq!(probe(ct, "state", &[]), "running");
    let pid = probe(ct, "init_pid", &[]);
    assert_eq!(
        pid.as_i64().map(|p| p as i32),
        oracle::lxc_init_pid(ct).unwrap()
    );
    assert_eq!(probe(ct, "config", &["lxc.uts.name"]), ct.id.as_str());
    assert_eq!(
        probe(ct, "running_config", &["lxc.uts.name"]),
        ct.id.as_str()
    );
    assert_eq!(
        probe(ct, "config_file", &[]),
        ct.lxc_home.join(&ct.id).join("config").to_str().unwrap()
    );

    probe(ct, "freeze", &[]);
    assert_eq!(probe(ct, "state", &[]), "frozen");
    assert_eq!(oracle::lxc_state(ct).unwrap(), "frozen");
    probe(ct, "unfreeze", &[]);
    assert_eq!(probe(ct, "state", &[]), "running");
    assert_eq!(oracle::lxc_state(ct).unwrap(), "running");

    let v = probe(ct, "attach", &["hostname"]);
    assert_eq!(
        (v["code"].as_i64(), stdout_of(&v)),
        (Some(0), ct.id.clone())
    );
    let v = probe(
        ct,
        "attach",
        &["sh", "-c", "echo $HOME $USER $PATH; exit 33"],
    );
    assert_eq!(v["code"], 33);
    assert_eq!(
        stdout_of(&v),
        format!("/root root {}", ctl_lxc::SYSTEM_PATH)
    );
    let v = probe(ct, "attach", &["no-such-command-here"]);
    assert_eq!(v["code"], 127);
    let v = probe(ct, "attach_fn", &[]);
    assert_eq!(
        (v["code"].as_i64(), stdout_of(&v)),
        (Some(42), format!("{} uid=0", ct.id))
    );
    let v = probe(ct, "attach", &["sh", "-c", "kill -9 $$"]);
    assert_eq!((v["code"].as_i64(), v["signal"].as_i64()), (None, Some(9)));

    let before = probe(ct, "init_pid", &[]);
    assert_eq!(probe(ct, "reboot2", &["10"]), Value::Null);
    assert_eq!(probe(ct, "state", &[]), "running");
    let after = probe(ct, "init_pid", &[]);
    assert!(
        after.is_i64() && after != before,
        "init pid {before} -> {after} after reboot"
    );

    assert_eq!(probe(ct, "shutdown", &["10"]), true);
    assert_eq!(oracle::lxc_state(ct).unwrap(), "stopped");
    assert_eq!(probe(ct, "state", &[]), "stopped");
    assert_eq!(probe(ct, "init_pid", &[]), Value::Null);
}

#[test]
fn errors_carry_operation_and_log_file() {
    let env = Env::new();
    let guard = Guard::create(&env.prov, unique_name("err"), &CreateOptions::default());
    let ct = guard.ct();
    let reply = probe_raw(ct, "freeze", &[]);
    assert_eq!(reply["ok"], false, "freezing a stopped container succeeded");
    let error = reply["error"].as_str().unwrap();
    eprintln!("error text: {error}");
    assert!(!error.contains('\n'));
    assert!(
        error.starts_with(&format!("lxc freeze of container \"{}\" failed", ct.id)),
        "{error}"
    );
    assert!(error.contains(ct.log_file.to_str().unwrap()), "{error}");

    let reply = probe_raw(ct, "running_config", &["lxc.uts.name"]);
    assert_eq!(reply["ok"], false);
    let reply = probe_raw(ct, "config", &["lxc.no.such.key"]);
    assert_eq!(reply["ok"], false);
}

#[test]
fn start_stop_and_execute_through_liblxc() {
    let env = Env::new();
    let guard = Guard::create(&env.prov, unique_name("exe"), &CreateOptions::default());
    let ct = guard.ct();

    let v = probe(ct, "execute", &["echo", "hi"]);
    assert_eq!(
        (v["code"].as_i64(), stdout_of(&v)),
        (Some(0), "hi".to_owned())
    );
    let v = probe(ct, "execute", &["sh", "-c", "exit 33"]);
    assert_eq!(v["code"], 33);
    assert_eq!(oracle::lxc_state(ct).unwrap(), "stopped");

    probe(ct, "start", &[]);
    assert_eq!(probe(ct, "wait", &["RUNNING", "10"]), true);
    assert_eq!(oracle::lxc_state(ct).unwrap(), "running");
    probe(ct, "stop", &[]);
    assert_eq!(probe(ct, "wait", &["STOPPED", "10"]), true);
    assert_eq!(oracle::lxc_state(ct).unwrap(), "stopped");
}
