//! Commands run by name through their frontends (`ctl_core::invoke_by_name`), as a daemon
//! that dispatches by name (an RPC) would: every name form, frontend-only commands, and
//! frontends that do work of their own (GetHostname opens the container's UTS namespace).

use ctl_core::{invoke_by_name, Args, Error, ErrorKind};
use serde_json::{json, Map, Value};
use tests::fixtures::{command_call as call, TestContainer};

fn args(positional: Vec<Value>) -> Args {
    Args::new(positional, Map::new())
}

#[test]
fn commands_run_by_name_through_their_frontends() {
    let t = TestContainer::running("byn");
    let ct = t.container();

    let hostname = commands::GetHostname::run_with(&call(ct)).unwrap();
    for name in [
        "GetHostname",
        "get_hostname",
        "OsCtld::ContainerControl::Commands::GetHostname",
    ] {
        let value = invoke_by_name(&call(ct), name, Args::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(value, json!(hostname), "{name}");
    }

    // A frontend-only command, with its keyword arguments as they travel in an envelope.
    let mut kwargs = Map::new();
    kwargs.insert("valid_rcs".into(), json!("all"));
    let value = invoke_by_name(
        &call(ct),
        "Syscmd",
        Args::new(vec![json!(["sh", "-c", "echo hi; exit 3"])], kwargs),
    )
    .unwrap();
    assert_eq!(value, json!({"exitstatus": 3, "output": "hi\n"}));

    // A runner command whose frontend works in-process (the freezer).
    assert_eq!(
        invoke_by_name(&call(ct), "Freeze", Args::default()).unwrap(),
        json!(true)
    );
    assert_eq!(t.lxc_state(), "frozen");
    assert_eq!(
        invoke_by_name(&call(ct), "unfreeze", Args::default()).unwrap(),
        json!(true)
    );
    assert_eq!(t.lxc_state(), "running");

    // Refusals: one line each, nothing run.
    match invoke_by_name(&call(ct), "NoSuchCommand", Args::default()).map_err(Error::into_kind) {
        Err(ErrorKind::Arguments { message }) => {
            assert!(message.contains("unknown command"), "{message}")
        }
        other => panic!("unknown name: {other:?}"),
    }
    let e = invoke_by_name(&call(ct), "GetHostname", args(vec![json!(1)])).unwrap_err();
    assert_eq!(e.command_name(), "GetHostname");
    match e.kind() {
        ErrorKind::Arguments { message } => {
            assert!(message.contains("at most 0 positional"), "{message}");
        }
        _ => panic!("extra argument: {e:?}"),
    }
    match invoke_by_name(&call(ct), "Syscmd", args(vec![json!("not a list")]))
        .map_err(Error::into_kind)
    {
        Err(ErrorKind::Arguments { message }) => {
            assert!(message.contains("argument 1 (`cmd`)"), "{message}")
        }
        other => panic!("bad argument: {other:?}"),
    }
}
