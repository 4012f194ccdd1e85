//! The reply: the one line a runner writes to its `return` fd.
//!
//! `{"status":true,"output":X}` or `{"status":false,"message":"..."}`, as osctld's runner
//! writes it. Our runner may add `ctl_error` to a failure so that the frontend can tell a
//! protocol refusal (e.g. a version mismatch) from a command's own error; osctld ignores it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Default bound on a reply line read by the frontend.
pub const DEFAULT_MAX_REPLY_BYTES: usize = 4 << 20;

/// A decoded reply.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    Ok(Value),
    Failed {
        message: String,
        protocol: Option<ProtocolRefusal>,
    },
}

/// A failure of the protocol itself, reported by the runner instead of running the command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProtocolRefusal {
    /// The envelope's extension has another protocol version than the runner's.
    Version { runner: u32, frontend: u32 },
    /// The envelope was readable but its fds or fields were not usable.
    Envelope { detail: String },
    /// The runner could not apply the placement (cgroup, credentials, rlimits).
    Placement { detail: String },
}

#[derive(Serialize, Deserialize)]
struct Wire {
    status: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    output: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ctl_error: Option<ProtocolRefusal>,
}

impl Reply {
    /// A successful reply.
    pub fn ok(output: Value) -> Reply {
        Reply::Ok(output)
    }

    /// A command error.
    pub fn error(message: impl Into<String>) -> Reply {
        Reply::Failed {
            message: message.into(),
            protocol: None,
        }
    }

    /// The reply line, with its trailing newline.
    pub fn to_line(&self) -> Vec<u8> {
        let wire = match self {
            Reply::Ok(v) => Wire {
                status: true,
                output: Some(v.clone()),
                message: None,
                ctl_error: None,
            },
            Reply::Failed { message, protocol } => Wire {
                status: false,
                output: None,
                message: Some(message.clone()),
                ctl_error: protocol.clone(),
            },
        };
        let mut line = serde_json::to_vec(&wire).expect("a reply always serialises");
        line.push(b'\n');
        line
    }

    /// Decodes one reply line (with or without its newline).
    pub fn from_line(line: &[u8]) -> Result<Reply, ReplyError> {
        let wire: Wire = serde_json::from_slice(line).map_err(ReplyError)?;
        Ok(if wire.status {
            // osctld's `ok` without a value sends `"output":null` or omits it.
            Reply::Ok(wire.output.unwrap_or(Value::Null))
        } else {
            Reply::Failed {
                message: wire.message.unwrap_or_else(|| "command failed".to_owned()),
                protocol: wire.ctl_error,
            }
        })
    }
}

/// A line that is no reply: not JSON, or JSON of another shape. Displays as serde_json's
/// message (what [`ProtocolError::MalformedReply`](crate::ProtocolError::MalformedReply)
/// says as its detail).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ReplyError(serde_json::Error);

/// The message, for callers that keep errors as strings (what [`Reply::from_line`]
/// returned before it had an error type).
impl From<ReplyError> for String {
    fn from(e: ReplyError) -> String {
        e.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn osctld_shaped_replies() {
        assert_eq!(
            Reply::from_line(b"{\"status\":true,\"output\":true}\n").unwrap(),
            Reply::Ok(Value::Bool(true))
        );
        assert_eq!(
            Reply::from_line(br#"{"status":true}"#).unwrap(),
            Reply::Ok(Value::Null)
        );
        assert_eq!(
            Reply::from_line(br#"{"status":false,"message":"container not running"}"#).unwrap(),
            Reply::error("container not running")
        );
        assert!(Reply::from_line(b"garbage").is_err());
        assert_eq!(
            Reply::from_line(br#"{"output":1}"#)
                .unwrap_err()
                .to_string(),
            "missing field `status` at line 1 column 12"
        );
    }

    #[test]
    fn round_trip() {
        for r in [
            Reply::ok(serde_json::json!({"id":"ct","state":"running","init_pid":42})),
            Reply::error("boom"),
            Reply::Failed {
                message: "version".into(),
                protocol: Some(ProtocolRefusal::Version {
                    runner: 2,
                    frontend: 1,
                }),
            },
        ] {
            let line = r.to_line();
            assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1);
            assert_eq!(*line.last().unwrap(), b'\n');
            assert_eq!(Reply::from_line(&line).unwrap(), r);
        }
    }

    #[test]
    fn ok_reply_has_exactly_status_and_output() {
        let line = Reply::ok(Value::from(1)).to_line();
        assert_eq!(line, b"{\"status\":true,\"output\":1}\n");
        let line = Reply::error("x").to_line();
        assert_eq!(line, b"{\"status\":false,\"message\":\"x\"}\n");
    }
}
