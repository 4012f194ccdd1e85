//! Errors of a command call, as the daemon sees them, and the runner-side command error.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Why a command call failed. Keeps osctld's distinction between a command that reported
/// an error (`status: false`) and a runner that ended without a reply.
///
/// `#[non_exhaustive]`: new kinds of failure may come (as `ProgramFailed` did); match the
/// ones you handle and keep a `_` arm (or use [`Error::kind`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The command ran and failed: the runner replied `status: false`, or the frontend
    /// refused before starting one (e.g. the container is not running).
    #[error("{command}: {message}")]
    Command { command: String, message: String },

    /// The runner ended without a reply (osctld's `user runner failed`).
    #[error("{command}: runner {} failed: {status}{}", path.display(), stderr_suffix(stderr))]
    RunnerFailed {
        command: String,
        path: PathBuf,
        status: ExitInfo,
        stderr: String,
    },

    /// The runner could not be started.
    #[error("{command}: cannot start runner {}: {source}", path.display())]
    Spawn {
        command: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The runner broke the protocol.
    #[error("{command}: runner {} {problem}", path.display())]
    Protocol {
        command: String,
        path: PathBuf,
        problem: ProtocolError,
    },

    /// The runner speaks another protocol version.
    #[error(
        "{command}: runner {} speaks protocol version {runner}, this frontend speaks {frontend}",
        path.display()
    )]
    VersionMismatch {
        command: String,
        path: PathBuf,
        runner: u32,
        frontend: u32,
    },

    /// The call's deadline passed; the runner and its process group were killed.
    #[error("{command}: timed out after {:.1}s, runner killed", after.as_secs_f64())]
    Timeout { command: String, after: Duration },

    /// Preparing the call failed (cgroup creation, pipes, encoding the arguments).
    #[error("{command}: {what}: {source}")]
    Setup {
        command: String,
        what: &'static str,
        #[source]
        source: io::Error,
    },

    /// Arguments could not be encoded, or were refused before the runner started.
    #[error("{command}: {message}")]
    Arguments { command: String, message: String },

    /// A program the command ran exited with a status the caller did not accept (Syscmd's
    /// failure, osctld's `SystemCommandFailed`): its exit status and its output are kept
    /// for the caller to look at.
    #[error("{command}: {message}")]
    ProgramFailed {
        command: String,
        message: String,
        /// Exit status (`128 + n` for a program killed by signal `n`).
        exitstatus: i32,
        /// What it printed (stdout and stderr together).
        output: String,
    },
}

impl Error {
    /// A command error with a message, for frontends that refuse a call.
    pub fn command(command: impl Into<String>, message: impl fmt::Display) -> Error {
        Error::Command {
            command: command.into(),
            message: message.to_string(),
        }
    }

    /// The command's name this error is about.
    pub fn command_name(&self) -> &str {
        match self {
            Error::Command { command, .. }
            | Error::RunnerFailed { command, .. }
            | Error::Spawn { command, .. }
            | Error::Protocol { command, .. }
            | Error::VersionMismatch { command, .. }
            | Error::Timeout { command, .. }
            | Error::Setup { command, .. }
            | Error::Arguments { command, .. }
            | Error::ProgramFailed { command, .. } => command,
        }
    }

    /// A short machine-readable kind, for JSON output of tools.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Command { .. } => "command",
            Error::RunnerFailed { .. } => "runner_failed",
            Error::Spawn { .. } => "spawn",
            Error::Protocol { .. } => "protocol",
            Error::VersionMismatch { .. } => "version_mismatch",
            Error::Timeout { .. } => "timeout",
            Error::Setup { .. } => "setup",
            Error::Arguments { .. } => "arguments",
            Error::ProgramFailed { .. } => "program_failed",
        }
    }

    /// The message of a [`Error::Command`], `None` for the other variants.
    pub fn command_message(&self) -> Option<&str> {
        match self {
            Error::Command { message, .. } => Some(message),
            _ => None,
        }
    }
}

fn stderr_suffix(stderr: &str) -> String {
    let tail = stderr.trim();
    if tail.is_empty() {
        String::new()
    } else {
        // One line: the last line of the runner's stderr says the most.
        let last = tail
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        format!("; stderr: {}", last.trim())
    }
}

/// How a runner process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitInfo {
    Exited(i32),
    Signaled { signal: i32, core_dumped: bool },
}

impl ExitInfo {
    /// The signal that killed it, if any.
    pub fn signal(self) -> Option<i32> {
        match self {
            ExitInfo::Signaled { signal, .. } => Some(signal),
            ExitInfo::Exited(_) => None,
        }
    }
}

impl fmt::Display for ExitInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ExitInfo::Exited(0) => f.write_str("exited with status 0 without a reply"),
            ExitInfo::Exited(code) => write!(f, "exited with status {code}"),
            ExitInfo::Signaled {
                signal,
                core_dumped,
            } => {
                let name = ctl_process::signal_name(signal);
                write!(f, "killed by signal {signal} ({name})")?;
                if core_dumped {
                    f.write_str(", core dumped")?;
                }
                Ok(())
            }
        }
    }
}

/// How a runner broke the reply protocol.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("wrote a malformed reply ({detail}): {excerpt:?}")]
    MalformedReply { detail: String, excerpt: String },
    #[error("wrote a reply larger than {limit} bytes")]
    ReplyTooLarge { limit: usize },
    #[error("wrote a partial reply line and then {status}")]
    PartialReply { status: ExitInfo },
    #[error("replied with output that does not decode as {expected}: {detail}")]
    BadOutput {
        expected: &'static str,
        detail: String,
    },
    #[error("refused the envelope: {0}")]
    Refused(String),
}

/// The error a runner function returns: a message that becomes `{"status":false,
/// "message":...}`. Any `std::error::Error` converts into it with `?`, like `anyhow`.
pub struct CommandError {
    message: String,
}

impl CommandError {
    /// An error with this message.
    pub fn msg(message: impl fmt::Display) -> CommandError {
        CommandError {
            message: message.to_string(),
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Prefixes the message with context (`context: message`).
    pub fn context(self, context: impl fmt::Display) -> CommandError {
        CommandError {
            message: format!("{context}: {}", self.message),
        }
    }
}

impl<E: std::error::Error> From<E> for CommandError {
    fn from(e: E) -> CommandError {
        CommandError::msg(e)
    }
}

impl fmt::Debug for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CommandError").field(&self.message).finish()
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Returns early from a runner function with a [`CommandError`].
#[macro_export]
macro_rules! bail {
    ($($fmt:tt)*) => {
        return ::core::result::Result::Err($crate::CommandError::msg(::std::format!($($fmt)*)))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runner_failure_is_one_line_with_stderr_tail() {
        let e = Error::RunnerFailed {
            command: "Freeze".into(),
            path: "/usr/lib/ctl-runner".into(),
            status: ExitInfo::Signaled {
                signal: 6,
                core_dumped: false,
            },
            stderr: "first\nthread 'main' panicked at x\n\n".into(),
        };
        let s = e.to_string();
        assert_eq!(
            s,
            "Freeze: runner /usr/lib/ctl-runner failed: killed by signal 6 (SIGABRT); stderr: thread 'main' panicked at x"
        );
        assert!(!s.contains('\n'));
    }

    #[test]
    fn command_error_from_std_error() {
        fn f() -> Result<(), CommandError> {
            std::fs::read("/nonexistent/ctl")?;
            Ok(())
        }
        assert!(f().unwrap_err().message().contains("No such file"));
    }
}
