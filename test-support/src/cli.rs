//! Runs the built `ctl` binary as a user would, on real containers in a temporary state
//! directory. Every container made here is removed with `ctl ct del` by a guard.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

use crate::names::unique_name;

/// The binary under test: `ctl` of the target dir the running test binary was built in
/// (`target/<profile>/ctl` next to `target/<profile>/deps/<test>`, where Cargo's
/// `CARGO_BIN_EXE_ctl` points for `ctl`'s own integration tests, which build it first).
/// Panics when it is not there.
pub fn ctl_bin() -> &'static str {
    static BIN: OnceLock<String> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("current_exe");
        let bin: PathBuf = exe
            .parent()
            .and_then(Path::parent)
            .expect("test binary in target/<profile>/deps")
            .join("ctl");
        assert!(
            bin.is_file(),
            "{} is missing: the CLI tests run `ctl`'s own integration tests (cargo test -p ctl)",
            bin.display()
        );
        bin.into_os_string()
            .into_string()
            .expect("UTF-8 target dir")
    })
}

/// A state directory of its own, removed on drop (after the containers in it).
pub struct StateDir {
    dir: tempfile::TempDir,
}

// No `Default`: making one changes the host (a directory, checks that need root).
#[allow(clippy::new_without_default)]
impl StateDir {
    pub fn new() -> StateDir {
        crate::require::require_root("real LXC containers");
        let dir = tempfile::Builder::new()
            .prefix("ctl-cli-")
            .tempdir_in("/tmp")
            .unwrap();
        StateDir { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `ctl --state-dir DIR ARGS...` with no stdin.
    pub fn ctl(&self, args: &[&str]) -> Run {
        self.ctl_with_stdin(args, None)
    }

    /// `ctl --state-dir DIR ARGS...` with `input` on its stdin (none: /dev/null).
    pub fn ctl_with_stdin(&self, args: &[&str], input: Option<&[u8]>) -> Run {
        let mut cmd = self.command(args);
        cmd.stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn ctl");
        if let Some(input) = input {
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(input).unwrap();
        }
        let output = child.wait_with_output().unwrap();
        Run::new(args, output)
    }

    /// The command, for tests that need to drive it themselves.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(ctl_bin());
        cmd.env_remove("CTL_STATE_DIR")
            .env_remove("CTL_RUNNER")
            .arg("--state-dir")
            .arg(self.path())
            .args(args);
        cmd
    }
}

impl AsRef<Path> for StateDir {
    fn as_ref(&self) -> &Path {
        self.path()
    }
}

/// What one ctl invocation did.
pub struct Run {
    pub args: String,
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn new(args: &[&str], output: Output) -> Run {
        Run {
            args: args.join(" "),
            status: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Asserts exit status 0 and returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(self.status, Some(0), "ctl {} failed:\n{self}", self.args);
        &self.stdout
    }

    /// Asserts this exit status and the one-line `error: ...` on stderr; returns the message.
    #[track_caller]
    pub fn fails(&self, status: i32) -> String {
        assert_eq!(
            self.status,
            Some(status),
            "ctl {}: wrong status:\n{self}",
            self.args
        );
        let last = self.stderr.lines().last().unwrap_or("");
        assert!(
            last.starts_with("error: "),
            "ctl {}: no error line:\n{self}",
            self.args
        );
        assert!(
            !self.stderr.contains("panicked") && !self.stderr.contains("RUST_BACKTRACE"),
            "{self}"
        );
        last.trim_start_matches("error: ").to_owned()
    }

    /// stdout as one JSON document (the last line: a command's own output may precede it).
    #[track_caller]
    pub fn json(&self) -> Value {
        let line = self
            .stdout
            .lines()
            .last()
            .unwrap_or_else(|| panic!("ctl {}: no output:\n{self}", self.args));
        serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("ctl {}: not JSON ({e}):\n{self}", self.args))
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "status: {:?}\n--- stdout\n{}--- stderr\n{}---",
            self.status, self.stdout, self.stderr
        )
    }
}

/// A container made with `ctl ct new`, removed with `ctl ct del` on drop.
pub struct Ct<'s> {
    pub name: String,
    pub state: &'s StateDir,
}

impl<'s> Ct<'s> {
    /// A new stopped container.
    pub fn new(state: &'s StateDir, tag: &str) -> Ct<'s> {
        let ct = Ct::named(state, unique_name(tag));
        state.ctl(&["ct", "new", &ct.name]).ok();
        ct
    }

    /// A guard for a container that the test creates itself (or not at all).
    pub fn named(state: &'s StateDir, name: String) -> Ct<'s> {
        Ct { name, state }
    }

    /// A new running container.
    pub fn running(state: &'s StateDir, tag: &str) -> Ct<'s> {
        let ct = Ct::new(state, tag);
        ct.ctl(&["start"]).ok();
        ct
    }

    /// `ctl ct SUB NAME ARGS...`.
    pub fn ctl(&self, sub_and_args: &[&str]) -> Run {
        let mut args = vec!["ct", sub_and_args[0], self.name.as_str()];
        args.extend_from_slice(&sub_and_args[1..]);
        self.state.ctl(&args)
    }

    /// `ctl ct state NAME`, trimmed.
    pub fn state_word(&self) -> String {
        self.ctl(&["state"]).ok().trim().to_owned()
    }

    /// `ctl ct exec NAME -- CMD...`.
    pub fn exec(&self, cmd: &[&str]) -> Run {
        let mut args = vec!["ct", "exec", self.name.as_str(), "--"];
        args.extend_from_slice(cmd);
        self.state.ctl(&args)
    }

    /// The container's system user.
    pub fn user(&self) -> String {
        ctl_provision::user_name(&self.name)
    }
}

impl Drop for Ct<'_> {
    fn drop(&mut self) {
        let run = self.state.ctl(&["ct", "del", &self.name]);
        if run.status != Some(0) && !run.stderr.contains("no container") {
            eprintln!("warning: ctl ct del {} failed:\n{run}", self.name);
        }
    }
}
