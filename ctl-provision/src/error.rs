//! The error type of the provisioner.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

/// Why provisioning, loading or destroying a test container failed. One line each.
#[derive(Debug, Error)]
pub enum ProvisionError {
    /// The container name is not `[a-z0-9][a-z0-9-]{0,30}`.
    #[error("invalid container name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    /// The provisioner must run as root (it creates users and edits /etc).
    #[error("ctl-provision must run as root (effective uid is {0})")]
    NotRoot(u32),
    /// A file system or system call failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    /// A helper program (useradd, ip, ...) failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
    /// The host already has something in the way that we did not create.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Something in a tree the container's user or root controls is not what root may
    /// act on (a symlink where a file or directory belongs, a FIFO, a hard link).
    #[error("{0}")]
    Refused(String),
    /// Every id of a range is taken.
    #[error("no free {0} left")]
    Exhausted(&'static str),
    /// No container of that name was provisioned in this state directory.
    #[error("no container {0:?} in this state directory")]
    NotFound(String),
    /// A container record could not be parsed.
    #[error("bad container record {path}: {source}")]
    Record {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

impl ProvisionError {
    /// Wraps an io error with what we were doing.
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        ProvisionError::Io {
            context: context.into(),
            source,
        }
    }
}

/// `result.context("doing x")` for io results.
pub(crate) trait IoContext<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T, ProvisionError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T, ProvisionError> {
        self.map_err(|e| ProvisionError::io(context(), e))
    }
}
