//! What `#[container_command]` generates, checked at run time without starting a runner
//! process: the spec, the registration, and the registered runner function called
//! directly with a hand-built context and envelope arguments.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ctl_core::{
    bail, container_command, Args, Call, Command, CommandError, Container, Error, Placement,
    Registration, Registry, RunnerContext,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

const FREEZE_FN_LINE: u32 = line!() + 6;
/// Freeze the container.
///
/// Longer text,
///  indented by one more space.
#[container_command(placement = exec)]
pub fn freeze(_ctx: &mut RunnerContext) -> Result<bool, CommandError> {
    Ok(true)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopMode {
    Stop,
    Shutdown,
    Kill,
}

/// Stop the container.
#[container_command(placement = fork, setuid_helpers)]
#[allow(clippy::too_many_arguments)]
pub fn stop(
    ctx: &mut RunnerContext,
    mode: StopMode,
    count: u32,
    #[kwarg] timeout: u64,
    #[kwarg] message: Option<String>,
    #[kwarg(default)] valid_rcs: Vec<i32>,
    #[kwarg] r#type: Option<String>,
) -> Result<Value, CommandError> {
    Ok(json!({
        "mode": mode,
        "count": count,
        "timeout": timeout,
        "message": message,
        "valid_rcs": valid_rcs,
        "type": r#type,
        "ct": ctx.ident(),
        "command": ctx.command,
    }))
}

/// The hostname; fails with an `std::io::Error` in pool `fail`.
#[container_command(placement = fork_as_root, name = "Hostname")]
fn get_hostname(
    ctx: &RunnerContext,
    #[kwarg] upper: Option<bool>,
) -> Result<String, std::io::Error> {
    if ctx.pool == "fail" {
        return Err(std::io::Error::other("no hostname here"));
    }
    let name = format!("{}.example", ctx.id);
    Ok(if upper.unwrap_or(false) {
        name.to_uppercase()
    } else {
        name
    })
}

/// Refuses stopped containers before a runner would start.
#[container_command(placement = exec, frontend = guarded_frontend)]
pub fn guarded(_ctx: &mut RunnerContext, value: i64) -> Result<i64, CommandError> {
    if value < 0 {
        bail!("negative: {value}");
    }
    Ok(value * 2)
}

fn guarded_frontend(call: &Call<'_>, value: i64) -> Result<i64, Error> {
    if call.container().id == "stopped" {
        return Err(Error::command("Guarded", "container is stopped"));
    }
    Guarded::runner(call, value)
}

/// Joins the words: runs entirely in the frontend.
#[container_command(frontend_only)]
pub fn join_words(
    call: &Call<'_>,
    words: Vec<String>,
    #[kwarg(default)] separator: Option<String>,
) -> Result<String, Error> {
    let sep = separator.unwrap_or_else(|| " ".to_owned());
    Ok(format!("{}: {}", call.container().id, words.join(&sep)))
}

fn context(command: &'static str, pool: &str) -> RunnerContext {
    RunnerContext {
        command,
        pool: pool.to_owned(),
        id: "ct1".to_owned(),
        lxc_home: PathBuf::from("/var/lib/lxc"),
        user_home: PathBuf::from("/home/ct1"),
        log_file: None,
        stdin: None,
        stdout: None,
        stderr: None,
        user: None,
        container_path: None,
        container_cgroup: None,
        entry_cgroup: None,
    }
}

fn container(id: &str) -> Container {
    Container {
        pool: "tank".to_owned(),
        id: id.to_owned(),
        user: "ct1".to_owned(),
        ugid: 5000,
        home: PathBuf::from("/home/ct1"),
        lxc_home: PathBuf::from("/var/lib/lxc"),
        log_file: PathBuf::from("/var/log/ct1.log"),
        cgroup_path: "ct1".to_owned(),
        entry_cgroup_path: None,
        container_path: None,
        runner_path: None,
        runtime_dir: None,
        rlimits: BTreeMap::new(),
    }
}

fn kwargs(value: Value) -> Map<String, Value> {
    value.as_object().expect("an object").clone()
}

fn registration(name: &str) -> &'static Registration {
    Registry::global()
        .expect("no duplicate names")
        .lookup(name)
        .unwrap_or_else(|| panic!("{name} not registered"))
}

/// Calls the registered runner function of `name` directly.
fn run_runner(
    name: &str,
    pool: &str,
    args: Vec<Value>,
    named: Value,
) -> Result<Value, CommandError> {
    let reg = registration(name);
    let runner = reg.runner.expect("a runner half");
    runner(
        &mut context(reg.spec.name, pool),
        Args::new(args, kwargs(named)),
    )
}

#[test]
fn spec_fields() {
    let spec = <Freeze as Command>::SPEC;
    assert_eq!(spec.name, "Freeze");
    assert_eq!(spec.snake_name, "freeze");
    assert_eq!(spec.placement, Some(Placement::Exec));
    assert!(!spec.setuid_helpers);
    assert_eq!(
        spec.doc,
        "Freeze the container.\n\nLonger text,\n indented by one more space."
    );
    assert_eq!(spec.summary(), "Freeze the container.");

    let spec = <Stop as Command>::SPEC;
    assert_eq!((spec.name, spec.snake_name), ("Stop", "stop"));
    assert_eq!(spec.placement, Some(Placement::Fork));
    assert!(spec.setuid_helpers);

    let spec = <Hostname as Command>::SPEC;
    assert_eq!((spec.name, spec.snake_name), ("Hostname", "get_hostname"));
    assert_eq!(spec.placement, Some(Placement::ForkAsRoot));

    let spec = <JoinWords as Command>::SPEC;
    assert_eq!((spec.name, spec.snake_name), ("JoinWords", "join_words"));
    assert_eq!(spec.placement, None);
    assert_eq!(spec.placement_name(), "frontend");
    assert_eq!(spec.doc, "Joins the words: runs entirely in the frontend.");
}

#[test]
fn registered_under_every_name_form() {
    for name in [
        "freeze",
        "Freeze",
        "OsCtld::ContainerControl::Commands::Freeze",
    ] {
        let reg = registration(name);
        assert!(std::ptr::eq(reg.spec, <Freeze as Command>::SPEC), "{name}");
        assert!(reg.runner.is_some());
        assert_eq!(reg.module, "macro_expansion");
        assert_eq!(
            reg.location,
            format!("tests/tests/macro_expansion.rs:{FREEZE_FN_LINE}")
        );
    }
    assert_eq!(registration("get_hostname").spec.name, "Hostname");
    assert_eq!(registration("Hostname").spec.name, "Hostname");
    assert!(registration("JoinWords").runner.is_none());
    assert!(Registry::global().unwrap().lookup("GetHostname").is_none());
}

#[test]
fn runner_wraps_the_output_as_json() {
    assert_eq!(
        run_runner("freeze", "tank", vec![], json!({})).unwrap(),
        json!(true)
    );
    let out = run_runner("Hostname", "tank", vec![], json!({ "upper": true })).unwrap();
    assert_eq!(out, json!("CT1.EXAMPLE"));
}

#[test]
fn runner_decodes_positional_and_named_arguments() {
    let out = run_runner(
        "stop",
        "tank",
        vec![json!("kill"), json!(3)],
        json!({ "timeout": 60, "message": "bye", "valid_rcs": [0, 1], "type": "soft" }),
    )
    .unwrap();
    assert_eq!(
        out,
        json!({
            "mode": "kill", "count": 3, "timeout": 60, "message": "bye",
            "valid_rcs": [0, 1], "type": "soft", "ct": "tank:ct1", "command": "Stop",
        })
    );

    // `#[kwarg]` Option: missing or null is None; `#[kwarg(default)]`: missing or null is
    // the default.
    let out = run_runner(
        "stop",
        "tank",
        vec![json!("stop"), json!(0)],
        json!({ "timeout": 1, "valid_rcs": null }),
    )
    .unwrap();
    assert_eq!(out["message"], Value::Null);
    assert_eq!(out["type"], Value::Null);
    assert_eq!(out["valid_rcs"], json!([]));
}

#[test]
fn runner_reports_argument_errors() {
    let message = |args: Vec<Value>, named: Value| {
        run_runner("stop", "tank", args, named)
            .unwrap_err()
            .message()
            .to_owned()
    };
    assert_eq!(
        message(vec![json!("stop")], json!({ "timeout": 1 })),
        "missing argument 2 (`count`)"
    );
    assert_eq!(
        message(vec![json!("stop"), json!(1)], json!({})),
        "missing keyword argument `timeout`"
    );
    assert_eq!(
        message(
            vec![json!("stop"), json!(1)],
            json!({ "timeout": 1, "tmeout": 2 })
        ),
        "unknown keyword argument `tmeout`"
    );
    assert_eq!(
        message(
            vec![json!("stop"), json!(1), json!(2)],
            json!({ "timeout": 1 })
        ),
        "expected at most 2 positional argument(s), got 3"
    );
    let bad = message(vec![json!("halt"), json!(1)], json!({ "timeout": 1 }));
    assert!(
        bad.starts_with("argument 1 (`mode`): unknown variant `halt`"),
        "{bad}"
    );
    let bad = message(vec![json!("stop"), json!(1)], json!({ "timeout": "soon" }));
    assert!(
        bad.starts_with("keyword argument `timeout`: invalid type"),
        "{bad}"
    );

    let e = run_runner("freeze", "tank", vec![json!(1)], json!({})).unwrap_err();
    assert_eq!(
        e.message(),
        "expected at most 0 positional argument(s), got 1"
    );
}

#[test]
fn runner_converts_command_errors() {
    let e = run_runner("get_hostname", "fail", vec![], json!({})).unwrap_err();
    assert_eq!(e.message(), "no hostname here");
    let e = run_runner("guarded", "tank", vec![json!(-2)], json!({})).unwrap_err();
    assert_eq!(e.message(), "negative: -2");
    assert_eq!(
        run_runner("guarded", "tank", vec![json!(21)], json!({})).unwrap(),
        json!(42)
    );
}

#[test]
fn frontends_run_without_a_runner() {
    // A frontend-only command's function is its frontend.
    let ct = container("ct1");
    assert_eq!(
        JoinWords::run(&ct, vec!["a".into(), "b".into()], None).unwrap(),
        "ct1: a b"
    );
    let call = Call::new(&ct);
    assert_eq!(
        JoinWords::run_with(&call, vec!["a".into(), "b".into()], Some("+".into())).unwrap(),
        "ct1: a+b"
    );

    // A custom frontend runs before any runner.
    let e = Guarded::run(&container("stopped"), 1).unwrap_err();
    assert_eq!(e.to_string(), "Guarded: container is stopped");
    assert_eq!(e.kind().name(), "command");
}

#[test]
fn the_function_stays_callable() {
    let mut ctx = context("Freeze", "tank");
    assert!(freeze(&mut ctx).unwrap());
    assert_eq!(get_hostname(&ctx, None).unwrap(), "ct1.example");
}
