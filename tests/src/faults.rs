//! Commands that fail in every way a runner can, to prove the frontend's handling.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::time::Duration;

use ctl_core::{bail, container_command, CommandError, RunnerContext};

/// Fail with a command error carrying this message.
#[container_command(placement = exec)]
pub fn fail(_ctx: &mut RunnerContext, message: String) -> Result<bool, CommandError> {
    bail!("{message}")
}

/// Abort the runner (SIGABRT) without replying.
#[container_command(placement = exec)]
pub fn abort(_ctx: &mut RunnerContext) -> Result<bool, CommandError> {
    std::process::abort()
}

/// Exit with this status without replying, after writing a line to stderr.
#[container_command(placement = fork)]
pub fn exit_silently(_ctx: &mut RunnerContext, code: i32) -> Result<bool, CommandError> {
    eprintln!("exit_silently: leaving with {code}");
    std::process::exit(code)
}

/// Write these raw bytes to the return fd, then exit with status 0.
#[container_command(placement = fork)]
pub fn raw_reply(
    _ctx: &mut RunnerContext,
    bytes: String,
    size: usize,
) -> Result<bool, CommandError> {
    let mut out = return_fd();
    let mut text = bytes.into_bytes();
    if size > text.len() {
        text.resize(size, b'x');
    }
    let _ = out.write_all(&text);
    std::process::exit(0)
}

/// Sleep this many seconds, then reply `true`.
#[container_command(placement = exec)]
pub fn sleep(_ctx: &mut RunnerContext, seconds: f64) -> Result<bool, CommandError> {
    std::thread::sleep(Duration::from_secs_f64(seconds));
    Ok(true)
}

/// Start a grandchild that sleeps, write its pid to stdout, then sleep forever: the
/// deadline must kill both.
#[container_command(placement = exec)]
pub fn spawn_sleeper(ctx: &mut RunnerContext) -> Result<bool, CommandError> {
    let child = std::process::Command::new("/bin/sleep")
        .arg("1000")
        .spawn()?;
    if let Some(out) = ctx.stdout.take() {
        let mut f = std::fs::File::from(out);
        writeln!(f, "{}", child.id())?;
    }
    std::thread::sleep(Duration::from_secs(1000));
    Ok(true)
}

/// Write `text` to the command's stdout and `err` to its stderr; reply with the stdin
/// content read to its end (or null without stdin).
#[container_command(placement = exec)]
pub fn stdio_echo(
    ctx: &mut RunnerContext,
    text: String,
    #[kwarg(default)] err: String,
) -> Result<Option<String>, CommandError> {
    use std::io::Read;
    if let Some(out) = ctx.stdout.take() {
        std::fs::File::from(out).write_all(text.as_bytes())?;
    }
    if let Some(e) = ctx.stderr.take() {
        std::fs::File::from(e).write_all(err.as_bytes())?;
    }
    let mut input = None;
    if let Some(inp) = ctx.stdin.take() {
        let mut s = String::new();
        std::fs::File::from(inp).read_to_string(&mut s)?;
        input = Some(s);
    }
    Ok(input)
}

/// Panic in command code.
#[container_command(placement = fork)]
pub fn panics(_ctx: &mut RunnerContext) -> Result<bool, CommandError> {
    panic!("deliberate panic in command code")
}

fn return_fd() -> std::fs::File {
    // The frontend of this framework always puts the return pipe at fd 3.
    use std::os::fd::FromRawFd;
    let fd = 3;
    // SAFETY: fault injection only: we take fd 3 (the return pipe) and exit right after.
    let f = unsafe { std::fs::File::from_raw_fd(fd) };
    debug_assert_eq!(f.as_raw_fd(), 3);
    f
}
