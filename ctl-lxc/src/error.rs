//! The one error type of this crate.

use std::fmt;
use std::io;
use std::path::PathBuf;

use thiserror::Error;

/// Any failure of a liblxc call, always displayed on one line.
#[derive(Debug, Error)]
pub enum LxcError {
    /// `liblxc.so.1` could not be loaded or lacks a symbol we need.
    #[error("cannot use liblxc: {0}")]
    Load(String),
    /// An argument cannot be passed to liblxc (a NUL byte in a string, an empty argv, ...).
    #[error("lxc {op}: invalid argument: {reason}")]
    InvalidArgument { op: &'static str, reason: String },
    /// A liblxc operation on a container failed.
    #[error("{0}")]
    Op(Box<OpError>),
    /// An isolated attach or a dumpable worker ([`crate::isolated`]) failed, or what it
    /// ran reported a failure: the message says which.
    #[error("{0}")]
    Isolated(String),
    /// A system call made by this crate around liblxc failed (waitpid, dup, ...).
    #[error("{op}: {source}")]
    Os {
        op: &'static str,
        #[source]
        source: io::Error,
    },
}

impl LxcError {
    /// The liblxc operation details, when the error came from one.
    pub fn op_error(&self) -> Option<&OpError> {
        match self {
            LxcError::Op(op) => Some(op),
            _ => None,
        }
    }

    pub(crate) fn invalid(op: &'static str, reason: impl Into<String>) -> Self {
        LxcError::InvalidArgument {
            op,
            reason: reason.into(),
        }
    }

    pub(crate) fn os(op: &'static str, source: io::Error) -> Self {
        LxcError::Os { op, source }
    }
}

/// What liblxc told us about a failed operation.
///
/// liblxc fills `error_string`/`error_num` of the container object only for a few
/// operations; most report their reason only to the container's log file, so the log file
/// is named in the message when known, and `errno` is what it was right after the call
/// (liblxc sets it on many but not all failure paths, hence "last").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpError {
    /// The operation, e.g. `freeze` or `attach`.
    pub op: &'static str,
    /// The container's name.
    pub container: String,
    /// `lxc_container.error_string`, if liblxc set it.
    pub error_string: Option<String>,
    /// `lxc_container.error_num`.
    pub error_num: i32,
    /// `errno` right after the failed call, if non-zero.
    pub errno: Option<i32>,
    /// `lxc.log.file` of the container, where liblxc writes its reasons.
    pub log_file: Option<PathBuf>,
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "lxc {} of container {:?} failed",
            self.op, self.container
        )?;
        match &self.error_string {
            Some(text) => write!(f, ": {}", one_line(text))?,
            None => f.write_str(": liblxc gave no error text")?,
        }
        if self.error_num != 0 {
            write!(f, " (error_num {})", self.error_num)?;
        }
        if let Some(errno) = self.errno {
            write!(f, " (last errno: {})", io::Error::from_raw_os_error(errno))?;
        }
        if let Some(log) = &self.log_file {
            write!(f, "; see {}", log.display())?;
        }
        Ok(())
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_error_is_one_line() {
        let e = LxcError::Op(Box::new(OpError {
            op: "freeze",
            container: "ct1".into(),
            error_string: Some("bad\nthing".into()),
            error_num: 3,
            errno: Some(libc::EACCES),
            log_file: Some("/x/ct1.log".into()),
        }));
        let text = e.to_string();
        assert!(!text.contains('\n'), "{text}");
        assert!(text.starts_with("lxc freeze of container \"ct1\" failed: bad thing (error_num 3)"));
        assert!(text.contains("Permission denied"), "{text}");
        assert!(text.ends_with("; see /x/ct1.log"), "{text}");
    }
}
