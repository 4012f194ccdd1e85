//! The wire protocol: one JSON request per line in, one JSON reply per line out
//! (osctld's generic client protocol, `osctld/lib/osctld/generic/client_handler.rb`).
//!
//! ```text
//! <- {"version":"ctld 0.1.0"}                                   (greeting, once)
//! -> {"cmd":"ct_state","opts":{"id":"web"}}
//! <- {"status":true,"response":{"id":"web","state":"running","init_pid":4242}}
//! -> {"id":7,"cmd":"ct_exec","opts":{"id":"web","cmd":["false"]},"timeout":5}
//! <- {"id":7,"status":true,"response":{"exitstatus":1,"stdout":"","stderr":""}}
//! -> {"cmd":"ct_state","opts":{"id":"nope"}}
//! <- {"status":false,"message":"no container \"nope\" in /var/lib/ctl","kind":"not_found"}
//! ```
//!
//! The top-level `id` (a string or an integer, chosen by the client) tags a request: its
//! reply carries the same `id` and is sent as soon as it is ready, and `cancel` can name
//! it. Requests without an `id` are answered in the order they were sent (they still run
//! concurrently). `opts.id` is the container, as in osctld.

use std::time::Duration;

use serde_json::{json, Map, Value};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The longest request line accepted (without its newline).
pub const MAX_LINE: usize = 1 << 20;

/// The longest per-request `timeout` accepted, in seconds (a day).
pub const MAX_TIMEOUT_SECS: f64 = 86_400.0;

/// Why a request failed: a message for humans and a short machine-readable kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// One line, for humans.
    pub message: String,
    /// `bad_request`, `not_found`, `unknown_command`, `cancelled`, `timeout`, `busy`,
    /// `internal`, or an [`ctl_core::ErrorKind::name`] (`command`, `runner_failed`, ...).
    pub kind: &'static str,
}

impl Failure {
    /// A failure of this kind.
    pub fn new(kind: &'static str, message: impl Into<String>) -> Failure {
        let message: String = message.into();
        // One line on the wire, whatever a command or a container printed.
        let message = message.replace(['\n', '\r'], " ");
        Failure { message, kind }
    }

    /// A request the daemon cannot act on.
    pub fn bad_request(message: impl Into<String>) -> Failure {
        Failure::new("bad_request", message)
    }
}

impl From<ctl_core::Error> for Failure {
    fn from(e: ctl_core::Error) -> Failure {
        Failure::new(e.kind().name(), e.to_string())
    }
}

/// A request's tag (the top-level `id`): a string or an integer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Tag(pub Value);

impl Tag {
    /// Accepts a string or an integer.
    pub fn parse(value: Value) -> Result<Tag, Failure> {
        match &value {
            Value::String(_) => Ok(Tag(value)),
            Value::Number(n) if n.is_i64() || n.is_u64() => Ok(Tag(value)),
            _ => Err(Failure::bad_request(
                "the request's `id` must be a string or an integer",
            )),
        }
    }
}

/// A parsed request line.
#[derive(Debug)]
pub struct Request {
    /// The client's tag, if any.
    pub tag: Option<Tag>,
    /// `cmd`.
    pub cmd: String,
    /// `opts` (an object; `{}` when left out).
    pub opts: Map<String, Value>,
    /// `timeout` in seconds, if given.
    pub timeout: Option<Duration>,
}

/// Parses one request line. On failure the tag is still returned when it could be read,
/// so that the error reply carries it.
pub fn parse_request(line: &[u8]) -> Result<Request, (Option<Tag>, Failure)> {
    let value: Value = serde_json::from_slice(line).map_err(|e| {
        (
            None,
            Failure::bad_request(format!("syntax error, expected a valid JSON ({e})")),
        )
    })?;
    let Value::Object(mut object) = value else {
        return Err((
            None,
            Failure::bad_request("a request must be a JSON object"),
        ));
    };
    let tag = match object.remove("id") {
        None | Some(Value::Null) => None,
        Some(v) => Some(Tag::parse(v).map_err(|f| (None, f))?),
    };
    let fail = |f: Failure| (tag.clone(), f);
    let cmd = match object.remove("cmd") {
        Some(Value::String(cmd)) => cmd,
        Some(_) => return Err(fail(Failure::bad_request("`cmd` must be a string"))),
        None => return Err(fail(Failure::bad_request("missing `cmd`"))),
    };
    let opts = match object.remove("opts") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(opts)) => opts,
        Some(_) => return Err(fail(Failure::bad_request("`opts` must be an object"))),
    };
    let timeout = match object.remove("timeout") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => match n.as_f64() {
            Some(s) if s > 0.0 && s <= MAX_TIMEOUT_SECS => Some(Duration::from_secs_f64(s)),
            _ => {
                return Err(fail(Failure::bad_request(format!(
                    "`timeout` must be a number of seconds in (0, {MAX_TIMEOUT_SECS}]"
                ))))
            }
        },
        Some(_) => {
            return Err(fail(Failure::bad_request(
                "`timeout` must be a number of seconds",
            )))
        }
    };
    if let Some(key) = object.keys().next() {
        return Err(fail(Failure::bad_request(format!(
            "unknown request field `{key}` (a request has `cmd`, `opts`, `id`, `timeout`)"
        ))));
    }
    Ok(Request {
        tag,
        cmd,
        opts,
        timeout,
    })
}

/// The reply line (without its newline) to a request with this tag.
pub fn reply_line(tag: Option<&Tag>, result: &Result<Value, Failure>) -> String {
    let mut reply = match result {
        Ok(response) => json!({"status": true, "response": response}),
        Err(f) => json!({"status": false, "message": f.message, "kind": f.kind}),
    };
    if let Some(tag) = tag {
        reply["id"] = tag.0.clone();
    }
    serde_json::to_string(&reply).expect("a reply always serializes")
}

/// The greeting sent on connect (osctld sends its version first too).
pub fn greeting() -> String {
    json!({"version": concat!("ctld ", env!("CARGO_PKG_VERSION"))}).to_string()
}

/// What [`LineReader::next_line`] read.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A whole line, without its newline (and without a trailing `\r`).
    Line(Vec<u8>),
    /// A line longer than the limit: reported once, the rest of it is skipped.
    TooLong,
    /// The peer closed its sending side.
    Eof,
}

/// Reads newline-terminated lines of at most `max` bytes; longer lines are reported as
/// [`Line::TooLong`] as soon as the limit is passed, and skipped up to their newline.
pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    /// Bytes of `buf` already searched for a newline.
    scanned: usize,
    max: usize,
    skipping: bool,
    eof: bool,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    /// A reader of lines of at most `max` bytes.
    pub fn new(inner: R, max: usize) -> LineReader<R> {
        LineReader {
            inner,
            buf: Vec::new(),
            scanned: 0,
            max,
            skipping: false,
            eof: false,
        }
    }

    /// The next line. Cancel-safe: what was read stays buffered.
    pub async fn next_line(&mut self) -> std::io::Result<Line> {
        loop {
            if let Some(pos) = self.buf[self.scanned..].iter().position(|&b| b == b'\n') {
                let end = self.scanned + pos;
                let mut line: Vec<u8> = self.buf.drain(..=end).collect();
                self.scanned = 0;
                line.pop();
                if std::mem::take(&mut self.skipping) {
                    continue;
                }
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                if line.len() > self.max {
                    return Ok(Line::TooLong);
                }
                return Ok(Line::Line(line));
            }
            self.scanned = self.buf.len();
            if self.buf.len() > self.max {
                self.buf.clear();
                self.scanned = 0;
                if !self.skipping {
                    self.skipping = true;
                    return Ok(Line::TooLong);
                }
            }
            if self.eof {
                self.skipping = false;
                if self.buf.is_empty() {
                    return Ok(Line::Eof);
                }
                let line = std::mem::take(&mut self.buf);
                self.scanned = 0;
                return Ok(Line::Line(line));
            }
            let mut chunk = [0u8; 64 * 1024];
            let n = self.inner.read(&mut chunk).await?;
            if n == 0 {
                self.eof = true;
            } else {
                self.buf.extend_from_slice(&chunk[..n]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_refuse() {
        let r = parse_request(br#"{"id":3,"cmd":"ct_state","opts":{"id":"web"},"timeout":2.5}"#)
            .unwrap();
        assert_eq!(r.tag, Some(Tag(json!(3))));
        assert_eq!(r.cmd, "ct_state");
        assert_eq!(r.opts["id"], json!("web"));
        assert_eq!(r.timeout, Some(Duration::from_millis(2500)));
        let r = parse_request(br#"{"cmd":"ping"}"#).unwrap();
        assert_eq!((r.tag, r.opts.len(), r.timeout), (None, 0, None));

        let err = |line: &[u8]| parse_request(line).unwrap_err();
        assert!(err(b"{nope").1.message.starts_with("syntax error"));
        assert_eq!(err(b"[1]").1.kind, "bad_request");
        let (tag, f) = err(br#"{"id":"a","opts":{}}"#);
        assert_eq!(
            (tag, f.message.as_str()),
            (Some(Tag(json!("a"))), "missing `cmd`")
        );
        assert!(err(br#"{"id":1.5,"cmd":"ping"}"#)
            .1
            .message
            .contains("`id`"));
        assert!(err(br#"{"cmd":"ping","timeout":0}"#)
            .1
            .message
            .contains("timeout"));
        assert!(err(br#"{"cmd":"ping","timeout":"1"}"#)
            .1
            .message
            .contains("timeout"));
        assert!(err(br#"{"cmd":"ping","opts":[]}"#)
            .1
            .message
            .contains("opts"));
        assert!(err(br#"{"cmd":"ping","extra":1}"#)
            .1
            .message
            .contains("extra"));
    }

    #[test]
    fn replies_are_one_line_with_the_tag() {
        let line = reply_line(
            Some(&Tag(json!("x"))),
            &Err(Failure::new("command", "two\nlines")),
        );
        assert_eq!(
            serde_json::from_str::<Value>(&line).unwrap(),
            json!({"id":"x","status":false,"message":"two lines","kind":"command"})
        );
        assert_eq!(
            reply_line(None, &Ok(json!(1))),
            r#"{"response":1,"status":true}"#
        );
    }

    #[tokio::test]
    async fn lines_too_long_are_reported_once_and_skipped() {
        let mut input = b"short\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 300));
        input.extend(b"\nnext\r\nexact5\nlast");
        let mut r = LineReader::new(&input[..], 6);
        assert_eq!(r.next_line().await.unwrap(), Line::Line(b"short".to_vec()));
        assert_eq!(r.next_line().await.unwrap(), Line::TooLong);
        assert_eq!(r.next_line().await.unwrap(), Line::Line(b"next".to_vec()));
        assert_eq!(r.next_line().await.unwrap(), Line::Line(b"exact5".to_vec()));
        assert_eq!(r.next_line().await.unwrap(), Line::Line(b"last".to_vec()));
        assert_eq!(r.next_line().await.unwrap(), Line::Eof);
    }
}
