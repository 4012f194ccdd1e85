//! The runner binaries of the target dir, calls through them, and fake runners.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ctl_core::Container;

/// The `ctl-test-runner` binary built next to the test binary.
pub fn test_runner_path() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    dir.join("ctl-test-runner")
}

/// The standalone `ctl-runner` built in the same target dir.
pub fn ctl_runner_path() -> PathBuf {
    test_runner_path().with_file_name("ctl-runner")
}

/// A call through the standalone `ctl-runner`, with a generous deadline so that a hang
/// fails the test instead of blocking the suite.
pub fn command_call(ct: &Container) -> ctl_core::Call<'_> {
    ctl_core::Call::new(ct)
        .runner(ctl_runner_path())
        .deadline(Duration::from_secs(90))
}

/// The message of a command error; panics on any other kind of result.
#[track_caller]
pub fn command_error<T: std::fmt::Debug>(result: Result<T, ctl_core::Error>) -> String {
    let Some(message) = result
        .as_ref()
        .err()
        .and_then(ctl_core::Error::command_message)
    else {
        panic!("expected a command error, got {result:?}");
    };
    message.to_owned()
}

/// Spawns `cmd` with piped stdio, writes `input` to its stdin, closes it and collects the
/// output. A process that stops reading early (a refused envelope) is fine: the broken
/// pipe is ignored.
pub fn output_with_stdin(cmd: &mut std::process::Command, input: &[u8]) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(input);
    child.wait_with_output().unwrap()
}

/// Writes an executable shell script (a fake runner for protocol-fault tests).
pub fn write_script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// Asserts that `lines` (of `/proc/<pid>/cgroup`) name the entry cgroup `relative` in
/// every hierarchy of the host.
pub fn assert_in_entry_everywhere(lines: &[String], relative: &str) {
    let expected = format!("/{}", relative.trim_matches('/'));
    assert_eq!(
        lines.len(),
        ctl_core::cgroup::hierarchies().len(),
        "{lines:?}"
    );
    for line in lines {
        assert_eq!(
            line.splitn(3, ':').nth(2),
            Some(expected.as_str()),
            "{lines:?}"
        );
    }
}
