//! Errors of a command call, as the daemon sees them, and the runner-side command error.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Why a command call failed: the name of the command, and what went wrong
/// ([`ErrorKind`]).
///
/// A struct around the kind rather than an enum of failures, because every failure is
/// about one command: its name is kept here once instead of in each kind (and read with
/// [`Error::command_name`] without a match over all of them). The kind keeps osctld's
/// distinction between a command that reported an error (`status: false`) and a runner
/// that ended without a reply; [`ErrorKind`] is `#[non_exhaustive]`, since new kinds of
/// failure may come (as `ProgramFailed` did): match the ones you handle on
/// [`Error::kind`] and keep a `_` arm, or use [`ErrorKind::name`].
///
/// Displays as `{command}: {kind}`. Its [`source`](std::error::Error::source) is the
/// kind's source (the `io::Error` of a [`ErrorKind::Spawn`] or an [`ErrorKind::Setup`]),
/// not the kind itself, whose message the display already contains.
#[derive(Debug)]
pub struct Error {
    command: String,
    kind: ErrorKind,
}

/// What went wrong in a command call ([`Error`] adds the command's name). Each kind
/// displays as its message without the command's name.
///
/// `#[non_exhaustive]`: new kinds of failure may come (as `ProgramFailed` did); match the
/// ones you handle and keep a `_` arm (or use [`ErrorKind::name`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The command ran and failed: the runner replied `status: false`, or the frontend
    /// refused before starting one (e.g. the container is not running).
    #[error("{message}")]
    Command { message: String },

    /// The runner ended without a reply (osctld's `user runner failed`).
    #[error("runner {} failed: {status}{}", path.display(), stderr_suffix(stderr))]
    RunnerFailed {
        path: PathBuf,
        status: ExitInfo,
        stderr: String,
    },

    /// The runner could not be started.
    #[error("cannot start runner {}: {source}", path.display())]
    Spawn {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The runner broke the protocol.
    #[error("runner {} {problem}", path.display())]
    Protocol {
        path: PathBuf,
        problem: ProtocolError,
    },

    /// The runner speaks another protocol version.
    #[error(
        "runner {} speaks protocol version {runner}, this frontend speaks {frontend}",
        path.display()
    )]
    VersionMismatch {
        path: PathBuf,
        runner: u32,
        frontend: u32,
    },

    /// The call's deadline passed; the runner and its process group were killed.
    #[error("timed out after {:.1}s, runner killed", after.as_secs_f64())]
    Timeout { after: Duration },

    /// The container's lock was not free before the call's deadline
    /// ([`crate::lock`]): another call uses or changes the container.
    #[error(
        "container {container} is busy: its {} lock was not free after {:.1}s{}",
        if *mode == crate::lock::LockMode::Exclusive { "exclusive" } else { "shared" },
        waited.as_secs_f64(),
        holder.as_ref().map(|h| format!(" (held by {h})")).unwrap_or_default()
    )]
    Busy {
        container: String,
        mode: crate::lock::LockMode,
        waited: Duration,
        /// Who holds it, when `/proc/locks` tells: `pid N (program)`.
        holder: Option<String>,
    },

    /// The call was cancelled (its future dropped); its runner was killed and reaped.
    #[error("cancelled, runner killed")]
    Cancelled,

    /// Preparing the call failed (cgroup creation, pipes, encoding the arguments).
    #[error("{what}: {source}")]
    Setup {
        what: &'static str,
        #[source]
        source: io::Error,
    },

    /// Arguments could not be encoded, or were refused before the runner started.
    #[error("{message}")]
    Arguments { message: String },

    /// A program the command ran exited with a status the caller did not accept (Syscmd's
    /// failure, osctld's `SystemCommandFailed`): its exit status and its output are kept
    /// for the caller to look at.
    #[error("{message}")]
    ProgramFailed {
        message: String,
        /// Exit status (`128 + n` for a program killed by signal `n`).
        exitstatus: i32,
        /// What it printed (stdout and stderr together).
        output: String,
    },
}

impl Error {
    /// An error of `command` of this kind.
    pub fn new(command: impl Into<String>, kind: ErrorKind) -> Error {
        Error {
            command: command.into(),
            kind,
        }
    }

    /// A command error with a message ([`ErrorKind::Command`]), for frontends that refuse a
    /// call.
    pub fn command(command: impl Into<String>, message: impl fmt::Display) -> Error {
        Error::new(
            command,
            ErrorKind::Command {
                message: message.to_string(),
            },
        )
    }

    /// Arguments refused before the runner started ([`ErrorKind::Arguments`]).
    pub fn arguments(command: impl Into<String>, message: impl fmt::Display) -> Error {
        Error::new(
            command,
            ErrorKind::Arguments {
                message: message.to_string(),
            },
        )
    }

    /// Preparing the call failed at `what` ([`ErrorKind::Setup`]).
    pub fn setup(command: impl Into<String>, what: &'static str, source: io::Error) -> Error {
        Error::new(command, ErrorKind::Setup { what, source })
    }

    /// The call's deadline passed after `after` ([`ErrorKind::Timeout`]).
    pub fn timeout(command: impl Into<String>, after: Duration) -> Error {
        Error::new(command, ErrorKind::Timeout { after })
    }

    /// The runner at `path` could not be started ([`ErrorKind::Spawn`]).
    pub(crate) fn spawn(command: &str, path: PathBuf, source: io::Error) -> Error {
        Error::new(command, ErrorKind::Spawn { path, source })
    }

    /// The runner at `path` broke the protocol ([`ErrorKind::Protocol`]).
    pub(crate) fn protocol(command: &str, path: PathBuf, problem: ProtocolError) -> Error {
        Error::new(command, ErrorKind::Protocol { path, problem })
    }

    /// The command's name this error is about.
    pub fn command_name(&self) -> &str {
        &self.command
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// What went wrong, without the command's name.
    pub fn into_kind(self) -> ErrorKind {
        self.kind
    }

    /// The message of an [`ErrorKind::Command`], `None` for the other kinds.
    pub fn command_message(&self) -> Option<&str> {
        match &self.kind {
            ErrorKind::Command { message } => Some(message),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.command, self.kind)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // The kind's source, not the kind: the kind's message is part of ours already.
        std::error::Error::source(&self.kind)
    }
}

impl ErrorKind {
    /// A short machine-readable name of the kind, for JSON output of tools.
    pub fn name(&self) -> &'static str {
        match self {
            ErrorKind::Command { .. } => "command",
            ErrorKind::RunnerFailed { .. } => "runner_failed",
            ErrorKind::Spawn { .. } => "spawn",
            ErrorKind::Protocol { .. } => "protocol",
            ErrorKind::VersionMismatch { .. } => "version_mismatch",
            ErrorKind::Timeout { .. } => "timeout",
            ErrorKind::Busy { .. } => "busy",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Setup { .. } => "setup",
            ErrorKind::Arguments { .. } => "arguments",
            ErrorKind::ProgramFailed { .. } => "program_failed",
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
        let e = Error::new(
            "Freeze",
            ErrorKind::RunnerFailed {
                path: "/usr/lib/ctl-runner".into(),
                status: ExitInfo::Signaled {
                    signal: 6,
                    core_dumped: false,
                },
                stderr: "first\nthread 'main' panicked at x\n\n".into(),
            },
        );
        let s = e.to_string();
        assert_eq!(
            s,
            "Freeze: runner /usr/lib/ctl-runner failed: killed by signal 6 (SIGABRT); stderr: thread 'main' panicked at x"
        );
        assert!(!s.contains('\n'));
    }

    /// Every kind displays as the enum of one variant per kind (each repeating `command`)
    /// displayed: `{command}: ` and the rest.
    #[test]
    fn display_is_the_command_and_the_kind() {
        use std::error::Error as _;
        let runner = std::path::Path::new("/usr/lib/ctl-runner");
        let enoent = || io::Error::from_raw_os_error(libc::ENOENT);
        let cases: Vec<(Error, &str, String)> =
            vec![
            (
                Error::command("Freeze", "container not running"),
                "command",
                "Freeze: container not running".to_owned(),
            ),
            (
                Error::new(
                    "Freeze",
                    ErrorKind::RunnerFailed {
                        path: runner.into(),
                        status: ExitInfo::Exited(0),
                        stderr: "  \n".into(),
                    },
                ),
                "runner_failed",
                "Freeze: runner /usr/lib/ctl-runner failed: exited with status 0 without a reply"
                    .to_owned(),
            ),
            (
                Error::new(
                    "Freeze",
                    ErrorKind::Spawn {
                        path: runner.into(),
                        source: enoent(),
                    },
                ),
                "spawn",
                format!("Freeze: cannot start runner /usr/lib/ctl-runner: {}", enoent()),
            ),
            (
                Error::new(
                    "Freeze",
                    ErrorKind::Protocol {
                        path: runner.into(),
                        problem: ProtocolError::ReplyTooLarge { limit: 10 },
                    },
                ),
                "protocol",
                "Freeze: runner /usr/lib/ctl-runner wrote a reply larger than 10 bytes".to_owned(),
            ),
            (
                Error::new(
                    "Freeze",
                    ErrorKind::VersionMismatch {
                        path: runner.into(),
                        runner: 3,
                        frontend: 2,
                    },
                ),
                "version_mismatch",
                "Freeze: runner /usr/lib/ctl-runner speaks protocol version 3, this frontend \
                 speaks 2"
                    .to_owned(),
            ),
            (
                Error::timeout("Freeze", Duration::from_millis(1500)),
                "timeout",
                "Freeze: timed out after 1.5s, runner killed".to_owned(),
            ),
            (
                Error::setup("Freeze", "creating the reply pipe", enoent()),
                "setup",
                format!("Freeze: creating the reply pipe: {}", enoent()),
            ),
            (
                Error::arguments("Freeze", "unknown keyword argument `x`"),
                "arguments",
                "Freeze: unknown keyword argument `x`".to_owned(),
            ),
            (
                Error::new(
                    "Syscmd",
                    ErrorKind::ProgramFailed {
                        message: "command [\"false\"] failed with exit status 1: ".into(),
                        exitstatus: 1,
                        output: String::new(),
                    },
                ),
                "program_failed",
                "Syscmd: command [\"false\"] failed with exit status 1: ".to_owned(),
            ),
        ];
        for (e, name, display) in cases {
            assert_eq!(e.to_string(), display);
            assert_eq!(e.kind().name(), name);
            assert_eq!(e.command_name(), display.split(':').next().unwrap());
            // The source is the io::Error of Spawn and Setup (as it was of those variants),
            // never the kind itself.
            match e.kind() {
                ErrorKind::Spawn { .. } | ErrorKind::Setup { .. } => {
                    let source = e.source().expect("an io::Error source");
                    assert_eq!(source.to_string(), enoent().to_string());
                    assert!(source.downcast_ref::<io::Error>().is_some());
                    assert!(source.source().is_none());
                }
                _ => assert!(e.source().is_none(), "{e:?}"),
            }
        }
    }

    #[test]
    fn command_message_and_kind() {
        let e = Error::command("Stop", "container not running");
        assert_eq!(e.command_message(), Some("container not running"));
        match e.into_kind() {
            ErrorKind::Command { message } => assert_eq!(message, "container not running"),
            other => panic!("{other:?}"),
        }
        assert_eq!(Error::arguments("Stop", "x").command_message(), None);
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
