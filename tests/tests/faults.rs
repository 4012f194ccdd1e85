//! How the frontend reports every way a runner can fail, on real runner processes.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use ctl_core::{Call, ErrorKind, ExitInfo, Placement, ProtocolError, Stdio};
use tests::faults::{Abort, ExitSilently, Fail, Panics, RawReply, Sleep, SpawnSleeper};
use tests::fixtures::{
    lingering_zombies, open_fd_count, process_alive, serial, test_runner_path, write_script,
    TestUser,
};

fn call(user: &TestUser) -> Call<'_> {
    Call::new(user.container())
        .runner(test_runner_path())
        .stdout(Stdio::Null)
        .stderr(Stdio::Null)
}

#[test]
fn status_false_is_a_command_error() {
    let _serial = serial();
    let user = TestUser::new("fail");
    let err = Fail::run_with(&call(&user), "no such thing".into()).unwrap_err();
    assert_eq!(err.command_name(), "Fail");
    match err.kind() {
        ErrorKind::Command { message } => assert_eq!(message, "no such thing"),
        _ => panic!("expected a command error, got {err:?}"),
    }
    assert_eq!(err.to_string(), "Fail: no such thing");
}

#[test]
fn aborting_runner_is_a_runner_failure_with_the_signal() {
    let _serial = serial();
    let user = TestUser::new("abort");
    let fds = open_fd_count();
    match Abort::run_with(&call(&user)).unwrap_err().into_kind() {
        ErrorKind::RunnerFailed { status, path, .. } => {
            assert_eq!(status.signal(), Some(libc::SIGABRT), "{status}");
            assert_eq!(path, test_runner_path());
        }
        other => panic!("expected a runner failure, got {other:?}"),
    }
    assert_eq!(open_fd_count(), fds);
    assert_eq!(lingering_zombies(), Vec::<i32>::new());
}

#[test]
fn runner_exiting_without_reply_carries_status_and_stderr() {
    let _serial = serial();
    let user = TestUser::new("silent");
    let err = ExitSilently::run_with(&call(&user), 7).unwrap_err();
    match err.kind() {
        ErrorKind::RunnerFailed { status, stderr, .. } => {
            assert_eq!(*status, ExitInfo::Exited(7));
            assert!(
                stderr.contains("exit_silently: leaving with 7"),
                "{stderr:?}"
            );
        }
        _ => panic!("expected a runner failure, got {err:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("exited with status 7") && text.contains("leaving with 7"),
        "{text}"
    );
    assert!(!text.contains('\n'));
}

#[test]
fn panic_in_command_code_is_a_runner_failure_with_the_message() {
    let _serial = serial();
    let user = TestUser::new("panic");
    match Panics::run_with(&call(&user)).unwrap_err().into_kind() {
        ErrorKind::RunnerFailed { stderr, status, .. } => {
            assert!(stderr.contains("deliberate panic"), "{stderr}");
            assert_eq!(status, ExitInfo::Exited(101));
        }
        other => panic!("expected a runner failure, got {other:?}"),
    }
}

#[test]
fn garbage_partial_and_oversized_replies() {
    let _serial = serial();
    let user = TestUser::new("garbage");
    let fds = open_fd_count();
    match RawReply::run_with(&call(&user), "this is not json\n".into(), 0)
        .unwrap_err()
        .into_kind()
    {
        ErrorKind::Protocol {
            problem: ProtocolError::MalformedReply { excerpt, .. },
            ..
        } => {
            assert_eq!(excerpt, "this is not json")
        }
        other => panic!("expected a malformed reply, got {other:?}"),
    }
    match RawReply::run_with(&call(&user), "{\"status\":tr".into(), 0)
        .unwrap_err()
        .into_kind()
    {
        ErrorKind::Protocol {
            problem: ProtocolError::PartialReply { status },
            ..
        } => {
            assert_eq!(status, ExitInfo::Exited(0))
        }
        other => panic!("expected a partial reply, got {other:?}"),
    }
    // A whole reply without its newline is accepted, as osctld's readline does.
    assert!(
        RawReply::run_with(&call(&user), "{\"status\":true,\"output\":true}".into(), 0).unwrap()
    );
    // Output of the wrong type: the error names the binary that answered.
    let runner = tests::fixtures::test_runner_path();
    match RawReply::run_with(
        &call(&user).runner(&runner),
        "{\"status\":true,\"output\":\"not a bool\"}".into(),
        0,
    )
    .unwrap_err()
    .into_kind()
    {
        ErrorKind::Protocol {
            path,
            problem: ProtocolError::BadOutput { expected, .. },
            ..
        } => {
            assert_eq!(path, runner);
            assert_eq!(expected, "bool");
        }
        other => panic!("expected output of the wrong type, got {other:?}"),
    }
    let small = call(&user).max_reply(1000);
    match RawReply::run_with(&small, String::new(), 5000)
        .unwrap_err()
        .into_kind()
    {
        ErrorKind::Protocol {
            problem: ProtocolError::ReplyTooLarge { limit },
            ..
        } => assert_eq!(limit, 1000),
        other => panic!("expected an oversized reply, got {other:?}"),
    }
    assert_eq!(open_fd_count(), fds);
    assert_eq!(lingering_zombies(), Vec::<i32>::new());
}

#[test]
fn deadline_kills_the_runner_and_its_process_group() {
    let _serial = serial();
    let user = TestUser::new("deadline");
    let (r, w) = nix::unistd::pipe().unwrap();
    let started = Instant::now();
    let c = call(&user)
        .stdout(Stdio::Fd(w.as_fd()))
        .deadline(Duration::from_millis(500));
    let err = SpawnSleeper::run_with(&c).unwrap_err();
    drop(w);
    assert!(matches!(err.kind(), ErrorKind::Timeout { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    let mut pid = String::new();
    use std::io::Read;
    std::fs::File::from(r).read_to_string(&mut pid).unwrap();
    let grandchild: i32 = pid
        .trim()
        .parse()
        .expect("the sleeper wrote its child's pid");
    let gone = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(20));
        !process_alive(grandchild)
    });
    assert!(gone, "grandchild {grandchild} survived the deadline");
    assert_eq!(lingering_zombies(), Vec::<i32>::new());
}

#[test]
fn no_deadline_waits_for_a_slow_runner() {
    let _serial = serial();
    let user = TestUser::new("slow");
    assert!(Sleep::run_with(&call(&user), 0.3).unwrap());
    let err = Sleep::run_with(&call(&user).deadline(Duration::from_millis(100)), 5.0).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Timeout { .. }), "{err:?}");
}

#[test]
fn unknown_command_is_a_command_error() {
    let _serial = serial();
    static SPEC: ctl_core::CommandSpec = ctl_core::CommandSpec {
        name: "NoSuchCommand",
        snake_name: "no_such_command",
        placement: Some(Placement::Fork),
        setuid_helpers: false,
        static_runner: false,
        lock: ctl_core::LockMode::Shared,
        custom_frontend: false,
        doc: "",
    };
    let user = TestUser::new("unknown");
    let err = ctl_core::invoke(&call(&user), &SPEC, ctl_core::Args::default()).unwrap_err();
    assert_eq!(
        err.command_message(),
        Some("unknown command: NoSuchCommand"),
        "{err}"
    );
}

#[test]
fn missing_runner_binary_is_a_spawn_error_naming_the_path() {
    let _serial = serial();
    let user = TestUser::new("missing");
    let c = call(&user).runner("/nonexistent/ctl-runner");
    let err = Fail::run_with(&c, "x".into()).unwrap_err();
    match err.kind() {
        ErrorKind::Spawn { path, source } => {
            assert_eq!(path.to_str(), Some("/nonexistent/ctl-runner"));
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        _ => panic!("expected a spawn error, got {err:?}"),
    }
    assert!(err.to_string().contains("/nonexistent/ctl-runner"));

    let dir = tempfile::tempdir().unwrap();
    let not_exec = dir.path().join("runner");
    std::fs::write(&not_exec, "").unwrap();
    let err = Fail::run_with(&call(&user).runner(&not_exec), "x".into()).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Spawn { source, .. }
            if source.kind() == std::io::ErrorKind::PermissionDenied),
        "{err:?}"
    );
}

#[test]
fn runner_of_another_protocol_version_is_named() {
    let _serial = serial();
    let user = TestUser::new("version");
    let dir = tempfile::tempdir().unwrap();
    let script = write_script(
        dir.path(),
        "old-runner",
        r#"cat >/dev/null; printf '{"status":false,"message":"v","ctl_error":{"kind":"version","runner":7,"frontend":1}}\n' >&3"#,
    );
    let err = Fail::run_with(
        &call(&user).runner(&script).placement(Placement::ForkAsRoot),
        "x".into(),
    )
    .unwrap_err();
    match err.kind() {
        ErrorKind::VersionMismatch {
            runner,
            frontend,
            path,
            ..
        } => {
            assert_eq!((*runner, *frontend), (7, ctl_core::PROTOCOL_VERSION));
            assert_eq!(path, &script);
        }
        _ => panic!("expected a version mismatch, got {err:?}"),
    }
}

#[test]
fn runner_refuses_an_envelope_of_another_version() {
    let _serial = serial();
    // The real runner, fed an envelope from a newer frontend by hand.
    let envelope = r#"{"name":"Ping","pool":"p","id":"c","lxc_home":"/","user_home":"/","args":[1],"kwargs":{},"return":1,"stdin":null,"stdout":null,"stderr":null,"ctl":{"version":99}}"#;
    let out = run_runner_with_stdin(envelope);
    assert!(out.status.success());
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply["status"], false);
    assert_eq!(reply["ctl_error"]["kind"], "version");
    assert_eq!(reply["ctl_error"]["runner"], ctl_core::PROTOCOL_VERSION);
    assert_eq!(reply["ctl_error"]["frontend"], 99);
}

fn run_runner_with_stdin(input: &str) -> std::process::Output {
    tests::fixtures::output_with_stdin(
        &mut std::process::Command::new(test_runner_path()),
        input.as_bytes(),
    )
}

#[test]
fn osctld_style_envelope_runs_on_an_already_placed_runner() {
    let _serial = serial();
    // As osctld's frontend would call it: full Ruby class name, no `ctl` field; here the
    // reply goes to fd 1.
    let envelope = r#"{"name":"OsCtld::ContainerControl::Commands::Ping","pool":"tank","id":"ct1","lxc_home":"/tmp","user_home":"/tmp","log_file":null,"args":[{"a":[1,"two",null]}],"kwargs":{},"return":1,"stdin":null,"stdout":2,"stderr":2}"#;
    let out = run_runner_with_stdin(envelope);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "{\"status\":true,\"output\":{\"a\":[1,\"two\",null]}}\n"
    );
}

#[test]
fn malformed_envelopes_exit_non_zero_with_one_line() {
    let _serial = serial();
    let huge = format!("{{\"name\":\"{}\"}}", "x".repeat(2 << 20));
    let deep = "[".repeat(10_000);
    for input in [
        "",
        "{",
        "not json at all",
        "[]",
        deep.as_str(),
        huge.as_str(),
        r#"{"name":"Ping","pool":"p","id":"c","lxc_home":"/","user_home":"/","return":0}"#,
    ] {
        let out = run_runner_with_stdin(input);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "input {:.40}: {stderr}", input);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("ctl-runner: "), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn envelope_naming_a_closed_fd_is_refused_with_a_reply() {
    let _serial = serial();
    let envelope = r#"{"name":"Ping","pool":"p","id":"c","lxc_home":"/","user_home":"/","args":[1],"kwargs":{},"return":1,"stdin":null,"stdout":57,"stderr":null}"#;
    let out = run_runner_with_stdin(envelope);
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply["status"], false);
    assert!(
        reply["message"]
            .as_str()
            .unwrap()
            .contains("stdout fd 57 is not open"),
        "{reply}"
    );
}
