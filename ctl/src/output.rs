//! Rendering: results for humans or as one JSON document, errors as one line, progress
//! on a terminal.

use std::fmt;
use std::io::{IsTerminal, Write};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

/// Exit status of a failed ctl invocation (a command's own status for exec/runscript).
pub const EXIT_FAILURE: i32 = 1;
/// Exit status after SIGINT/SIGTERM (128 + SIGINT, as shells report it).
pub const EXIT_INTERRUPTED: i32 = 130;

/// What a successful invocation produced.
pub struct Outcome {
    /// The `result` of the JSON document.
    pub value: Value,
    /// What a human sees on stdout (may be empty); a trailing newline is added.
    pub human: String,
}

impl Outcome {
    /// A result whose human rendering is `human`.
    pub fn new(value: Value, human: impl Into<String>) -> Outcome {
        Outcome {
            value,
            human: human.into(),
        }
    }

    /// A result humans see nothing of (osctl prints nothing on success either).
    pub fn quiet(value: Value) -> Outcome {
        Outcome {
            value,
            human: String::new(),
        }
    }
}

/// Why an invocation failed: a kind for machines, one line for humans, an exit status.
#[derive(Debug)]
pub struct CliError {
    pub kind: &'static str,
    pub message: String,
    pub exit: i32,
    /// Extra fields of the JSON error object (e.g. `exit_status`, the demo's steps).
    pub extra: Map<String, Value>,
}

impl CliError {
    pub fn new(kind: &'static str, message: impl fmt::Display) -> CliError {
        CliError {
            kind,
            message: message.to_string(),
            exit: EXIT_FAILURE,
            extra: Map::new(),
        }
    }

    /// The same error with another exit status.
    pub fn exit(mut self, status: i32) -> CliError {
        self.exit = status;
        self
    }

    /// The same error with one more field in its JSON object.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> CliError {
        self.extra.insert(key.to_owned(), value.into());
        self
    }

    /// A command that ran inside the container and exited non-zero: osctl's message,
    /// the command's status as ctl's.
    pub fn exit_status(status: i32) -> CliError {
        // A status outside 1..=255 cannot be an exit status of ours; 1 still says "failed".
        let exit = if (1..=255).contains(&status) {
            status
        } else {
            EXIT_FAILURE
        };
        CliError::new("exit_status", "executed command failed")
            .exit(exit)
            .with("exit_status", status)
    }

    /// Prefixes the message with context (`context: message`).
    pub fn context(mut self, context: impl fmt::Display) -> CliError {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<ctl_core::Error> for CliError {
    fn from(e: ctl_core::Error) -> CliError {
        let mut err = CliError::new(e.kind().name(), &e).with("command", e.command_name());
        if let ctl_core::ErrorKind::RunnerFailed { status, .. } = e.kind() {
            if let Some(signal) = status.signal() {
                err = err.with("signal", signal);
            }
        }
        err
    }
}

impl From<ctl_provision::ProvisionError> for CliError {
    fn from(e: ctl_provision::ProvisionError) -> CliError {
        use ctl_provision::ProvisionError as P;
        let kind = match &e {
            P::InvalidName { .. } => "invalid_name",
            P::NotRoot(_) => "not_root",
            P::Io { .. } => "io",
            P::Command { .. } => "helper_failed",
            P::Conflict(_) => "conflict",
            P::Refused(_) => "refused",
            P::Exhausted(_) => "exhausted",
            P::NotFound(_) => "not_found",
            P::Record { .. } => "bad_record",
        };
        CliError::new(kind, e)
    }
}

/// How this invocation prints.
#[derive(Clone, Copy, Debug)]
pub struct Output {
    pub json: bool,
}

impl Output {
    /// Prints the outcome (or the error) and returns the exit status.
    pub fn finish(self, result: Result<Outcome, CliError>) -> i32 {
        match result {
            Ok(outcome) => {
                if self.json {
                    print_stdout(&json_document(&Ok(&outcome)));
                } else if !outcome.human.is_empty() {
                    let mut text = escape_controls(&outcome.human, true).into_owned();
                    if !text.ends_with('\n') {
                        text.push('\n');
                    }
                    print_stdout(&text);
                }
                0
            }
            Err(err) => {
                if self.json {
                    print_stdout(&json_document(&Err(&err)));
                } else {
                    print_error(&err.message);
                }
                err.exit
            }
        }
    }

    /// Whether to show progress on stderr: only on a terminal and not for --json.
    pub fn progress_enabled(self) -> bool {
        !self.json && std::io::stderr().is_terminal()
    }
}

/// The JSON document of an invocation, with a trailing newline. `ok` comes first (serde_json
/// sorts the keys of the objects inside).
pub fn json_document(result: &Result<&Outcome, &CliError>) -> String {
    let (ok, key, body) = match result {
        Ok(outcome) => (true, "result", outcome.value.clone()),
        Err(err) => {
            let mut error = Map::new();
            error.insert("kind".into(), err.kind.into());
            error.insert("message".into(), err.message.clone().into());
            for (k, v) in &err.extra {
                error.insert(k.clone(), v.clone());
            }
            (false, "error", Value::Object(error))
        }
    };
    let body = serde_json::to_string(&body).expect("a JSON value always serializes");
    format!("{{\"ok\":{ok},\"{key}\":{body}}}\n")
}

/// `error: <message>` on stderr, on one line, control characters escaped (messages carry
/// runner messages, stderr and log tails, i.e. text a container can control).
pub fn print_error(message: &str) {
    let line = one_line(message);
    let line = escape_controls(&line, false);
    let _ = writeln!(std::io::stderr().lock(), "error: {line}");
}

/// `text` with every control character in a visible escaped form, for a terminal: C0
/// controls (`\x1b` for ESC, `\x07`, `\x09` for a tab...; newlines too unless
/// `keep_newlines`), DEL (`\x7f`) and the C1 controls U+0080–U+009F (`\u{9b}`, the
/// one-character CSI that some terminals obey).
///
/// Why: much of what ctl prints comes from a container or a runner (a hostname set by the
/// container's root, command error messages, stderr and log tails), and raw escape
/// sequences in it could clear the operator's screen, retitle the terminal, hide text or,
/// on some terminals, answer back with input. Every human rendering goes through this
/// one function ([`Output::finish`], [`print_error`], the demo's lines); `--json` escapes
/// in its own way, and `ct exec` output is the user's program's and stays untouched.
pub fn escape_controls(text: &str, keep_newlines: bool) -> std::borrow::Cow<'_, str> {
    use std::fmt::Write as _;
    let needs = |c: char| c.is_control() && !(keep_newlines && c == '\n');
    if !text.chars().any(needs) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if !needs(c) {
            out.push(c);
        } else if (c as u32) < 0x80 {
            let _ = write!(out, "\\x{:02x}", c as u32);
        } else {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A message folded onto one line.
pub fn one_line(message: &str) -> String {
    let trimmed = message.trim();
    if trimmed.contains('\n') {
        trimmed
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ")
    } else {
        trimmed.to_owned()
    }
}

/// Writes to stdout, ignoring a closed pipe (`ctl ... | head`).
pub fn print_stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// A duration for humans: `850 µs`, `12.3 ms`, `1.92 s`.
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 0.001 {
        format!("{} µs", d.as_micros())
    } else if secs < 1.0 {
        format!("{:.1} ms", secs * 1000.0)
    } else {
        format!("{secs:.2} s")
    }
}

/// Milliseconds with a precision that JSON readers like.
pub fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// A spinner on stderr for a long step: `⠋ provisioning web` while it runs, then
/// `provisioning web ... done (1.92 s)`. Quick steps (under [`Progress::DELAY`]) show
/// nothing; a disabled progress (not a terminal, --json) never shows anything.
pub struct Progress {
    label: String,
    started: Instant,
    spinner: Option<Spinner>,
}

struct Spinner {
    stop: mpsc::Sender<()>,
    /// Returns whether the spinner was drawn at all.
    thread: JoinHandle<bool>,
}

impl Progress {
    /// How long a step runs before its spinner appears.
    pub const DELAY: Duration = Duration::from_millis(200);

    pub fn start(label: impl Into<String>, enabled: bool) -> Progress {
        let label = label.into();
        let spinner = enabled.then(|| {
            let (stop, stopped) = mpsc::channel::<()>();
            let text = label.clone();
            let thread = std::thread::spawn(move || {
                const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
                if stopped.recv_timeout(Progress::DELAY) != Err(RecvTimeoutError::Timeout) {
                    return false;
                }
                for frame in FRAMES.iter().cycle() {
                    let _ = write!(std::io::stderr().lock(), "\r{frame} {text} ");
                    if stopped.recv_timeout(Duration::from_millis(100))
                        != Err(RecvTimeoutError::Timeout)
                    {
                        break;
                    }
                }
                true
            });
            Spinner { stop, thread }
        });
        Progress {
            label,
            started: Instant::now(),
            spinner,
        }
    }

    /// Ends the spinner with `done` or `failed` (if it was shown).
    pub fn finish(mut self, ok: bool) {
        let took = self.started.elapsed();
        if self.stop_spinner() {
            let word = if ok { "done" } else { "failed" };
            let _ = writeln!(
                std::io::stderr().lock(),
                "\r\x1b[K{} ... {word} ({})",
                self.label,
                human_duration(took)
            );
        }
    }

    /// Stops the spinner thread; returns whether it had drawn anything.
    fn stop_spinner(&mut self) -> bool {
        match self.spinner.take() {
            Some(Spinner { stop, thread }) => {
                let _ = stop.send(());
                thread.join().unwrap_or(false)
            }
            None => false,
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if self.stop_spinner() {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[K");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_documents() {
        let ok = Outcome::new(json!("running"), "running");
        assert_eq!(
            json_document(&Ok(&ok)),
            "{\"ok\":true,\"result\":\"running\"}\n"
        );
        let err = CliError::exit_status(33);
        let doc: Value = serde_json::from_str(&json_document(&Err(&err))).unwrap();
        assert_eq!(doc["ok"], false);
        assert_eq!(doc["error"]["kind"], "exit_status");
        assert_eq!(doc["error"]["message"], "executed command failed");
        assert_eq!(doc["error"]["exit_status"], 33);
        assert_eq!(err.exit, 33);
    }

    #[test]
    fn odd_exit_statuses_still_fail() {
        assert_eq!(CliError::exit_status(256).exit, 1);
        assert_eq!(CliError::exit_status(-1).exit, 1);
    }

    #[test]
    fn messages_fold_to_one_line() {
        assert_eq!(one_line(" a\n\n b \n"), "a; b");
        assert_eq!(one_line("a b"), "a b");
    }

    #[test]
    fn core_errors_keep_their_kind() {
        let e: CliError = ctl_core::Error::command("Exec", "container is not running").into();
        assert_eq!(e.kind, "command");
        assert_eq!(e.message, "Exec: container is not running");
        assert_eq!(e.extra["command"], "Exec");

        let e: CliError = ctl_core::Error::new(
            "Freeze",
            ctl_core::ErrorKind::RunnerFailed {
                path: "/usr/lib/ctl-runner".into(),
                status: ctl_core::ExitInfo::Signaled {
                    signal: 9,
                    core_dumped: false,
                },
                stderr: String::new(),
            },
        )
        .into();
        assert_eq!(e.kind, "runner_failed");
        assert_eq!(
            e.message,
            "Freeze: runner /usr/lib/ctl-runner failed: killed by signal 9 (SIGKILL)"
        );
        assert_eq!(e.extra["command"], "Freeze");
        assert_eq!(e.extra["signal"], 9);
    }

    #[test]
    fn control_characters_are_escaped() {
        // A hostname that clears the screen and retitles the terminal.
        assert_eq!(
            escape_controls("a\x1b[2J\x1b]0;pwned\x07b", false),
            "a\\x1b[2J\\x1b]0;pwned\\x07b"
        );
        // Lone ESC, DEL, C1 (CSI U+009B, NEL U+0085, U+0080, U+009F), NUL, CR, tab.
        assert_eq!(
            escape_controls("\x1b\x7f\u{9b}\u{85}\u{80}\u{9f}\0\r\t", false),
            "\\x1b\\x7f\\u{9b}\\u{85}\\u{80}\\u{9f}\\x00\\x0d\\x09"
        );
        // Newlines stay where multi-line text is meant, else they are escaped too.
        assert_eq!(escape_controls("a\nb\x1b", true), "a\nb\\x1b");
        assert_eq!(escape_controls("a\nb", false), "a\\x0ab");
        // Plain text, non-ASCII and characters just outside C1 are left alone (borrowed).
        let plain = "web-1 läuft \u{a0}ü €";
        assert!(matches!(
            escape_controls(plain, false),
            std::borrow::Cow::Borrowed(p) if p == plain
        ));
    }

    #[test]
    fn durations_for_humans() {
        assert_eq!(human_duration(Duration::from_micros(850)), "850 µs");
        assert_eq!(human_duration(Duration::from_micros(12_300)), "12.3 ms");
        assert_eq!(human_duration(Duration::from_millis(1920)), "1.92 s");
    }
}
