//! What each request does: the container requests go through ctl-core's async frontend.

use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use ctl_core::{Args, Call, Stdio};
use serde_json::{json, Map, Value};
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe::Receiver;
use tokio::sync::watch;

use crate::protocol::Failure;
use crate::server::Daemon;

/// Every `cmd` the daemon knows (also the label values of its request counters).
pub const COMMANDS: &[&str] = &[
    "ping",
    "metrics",
    "cancel",
    "ct_list",
    "ct_state",
    "ct_start",
    "ct_stop",
    "ct_freeze",
    "ct_unfreeze",
    "ct_exec",
    "ct_command",
];

/// The most of a program's stdout (and, separately, stderr) `ct_exec` returns; the rest is
/// read and dropped, and the reply says `"truncated": true`.
pub const MAX_CAPTURE: usize = 1 << 20;

/// How long `ct_exec` still reads the program's output after the call ended (a background
/// process of the program may keep the pipes open).
const DRAIN: Duration = Duration::from_millis(500);

/// Runs a container request (everything but `ping`, `metrics` and `cancel`).
pub async fn container_request(
    daemon: &Daemon,
    cmd: &str,
    mut opts: Map<String, Value>,
    deadline: Duration,
) -> Result<Value, Failure> {
    if !COMMANDS.contains(&cmd) {
        return Err(unknown_cmd(cmd));
    }
    if cmd == "ct_list" {
        no_more(&opts)?;
        return list(daemon);
    }
    let id: String = take(&mut opts, "id")?;
    let ct = daemon.load(&id)?;
    let call = Call::new(&ct)
        .deadline(deadline)
        .stdout(Stdio::Null)
        .stderr(Stdio::Null);
    match cmd {
        "ct_state" => {
            no_more(&opts)?;
            by_name(&call, "State", Args::default()).await
        }
        "ct_start" => {
            no_more(&opts)?;
            by_name(&call, "Start", Args::default()).await
        }
        "ct_freeze" => {
            no_more(&opts)?;
            by_name(&call, "Freeze", Args::default()).await
        }
        "ct_unfreeze" => {
            no_more(&opts)?;
            by_name(&call, "Unfreeze", Args::default()).await
        }
        "ct_stop" => {
            let mode: Option<String> = take_opt(&mut opts, "mode")?;
            let timeout: Option<u64> = take_opt(&mut opts, "timeout")?;
            let message: Option<String> = take_opt(&mut opts, "message")?;
            no_more(&opts)?;
            let mut kwargs = Map::new();
            kwargs.insert("timeout".into(), json!(timeout.unwrap_or(60)));
            if let Some(message) = message {
                kwargs.insert("message".into(), json!(message));
            }
            let args = Args::new(vec![json!(mode.as_deref().unwrap_or("stop"))], kwargs);
            by_name(&call, "Stop", args).await
        }
        "ct_exec" => exec(call, opts).await,
        "ct_command" => {
            let name: String = take(&mut opts, "name")?;
            let args: Vec<Value> = take_opt(&mut opts, "args")?.unwrap_or_default();
            let kwargs: Map<String, Value> = take_opt(&mut opts, "kwargs")?.unwrap_or_default();
            no_more(&opts)?;
            by_name(&call, &name, Args::new(args, kwargs)).await
        }
        other => Err(unknown_cmd(other)),
    }
}

fn unknown_cmd(cmd: &str) -> Failure {
    Failure::new(
        "unknown_command",
        format!("unknown cmd {cmd:?} (known: {})", COMMANDS.join(", ")),
    )
}

/// The stop timeout a `ct_stop` request asks for, so that the request's own deadline can
/// cover it.
pub fn stop_timeout(opts: &Map<String, Value>) -> Duration {
    Duration::from_secs(opts.get("timeout").and_then(Value::as_u64).unwrap_or(60))
}

/// Runs the command registered as `name` on `call` through its frontend (custom
/// frontends included: State's and Freeze's direct paths, Stop's thaw and kill fallbacks,
/// GetHostname's namespace fd, frontend-only commands), arguments and output as JSON:
/// `ctl_core::async_frontend::invoke_by_name`. Dropping the future cancels the call.
async fn by_name(call: &Call<'_>, name: &str, args: Args) -> Result<Value, Failure> {
    // Looked up first only for a clear `unknown_command` (invoke_by_name's refusal is an
    // `arguments` error).
    match ctl_core::Registry::find(name) {
        Ok(Some(_)) => {}
        Ok(None) => {
            return Err(Failure::new(
                "unknown_command",
                format!("no command {name:?} is registered (see `ctl commands`)"),
            ))
        }
        Err(e) => return Err(Failure::new("unknown_command", e.to_string())),
    }
    Ok(ctl_core::async_frontend::invoke_by_name(call, name, args).await?)
}

/// `ct_list`: the containers recorded in the state directory.
fn list(daemon: &Daemon) -> Result<Value, Failure> {
    let cts = daemon
        .provisioner()
        .list()
        .map_err(|e| Failure::new("internal", e.to_string()))?;
    Ok(Value::Array(
        cts.iter()
            .map(|ct| json!({"id": ct.id, "pool": ct.pool, "user": ct.user}))
            .collect(),
    ))
}

/// `ct_exec`: runs `cmd` inside, its stdout and stderr captured through pipes (never the
/// daemon's own stdio), and returns `{exitstatus, stdout, stderr, truncated}`.
async fn exec(call: Call<'_>, mut opts: Map<String, Value>) -> Result<Value, Failure> {
    let cmd: Vec<String> = take(&mut opts, "cmd")?;
    if cmd.is_empty() {
        return Err(Failure::bad_request("opts.cmd must not be empty"));
    }
    let run: bool = take_opt(&mut opts, "run")?.unwrap_or(false);
    let network: bool = take_opt(&mut opts, "network")?.unwrap_or(false);
    // Exec's options as the command takes them (`env`, `clear`, `cwd`, `uid`, `gid`).
    let options: Option<Value> = take_opt(&mut opts, "options")?;
    no_more(&opts)?;
    let internal = |what: &str, e: std::io::Error| Failure::new("internal", format!("{what}: {e}"));
    let (out_r, out_w) = pipe().map_err(|e| internal("stdout pipe", e))?;
    let (err_r, err_w) = pipe().map_err(|e| internal("stderr pipe", e))?;
    let out_r = Receiver::from_owned_fd(out_r).map_err(|e| internal("stdout pipe", e))?;
    let err_r = Receiver::from_owned_fd(err_r).map_err(|e| internal("stderr pipe", e))?;
    let mut kwargs = Map::new();
    kwargs.insert("run".into(), json!(run));
    kwargs.insert("network".into(), json!(network));
    if let Some(options) = options {
        kwargs.insert("options".into(), options);
    }
    let args = Args::new(vec![json!(cmd)], kwargs);
    let (done_tx, done_rx) = tokio::sync::watch::channel(false);
    let invoke = async move {
        let result = {
            let call = call
                .stdout(Stdio::Fd(out_w.as_fd()))
                .stderr(Stdio::Fd(err_w.as_fd()));
            by_name(&call, "Exec", args).await
        };
        // Our write ends closed: the readers see EOF once the program's copies are gone.
        drop(out_w);
        drop(err_w);
        let _ = done_tx.send(true);
        result
    };
    // Read while the program runs: a full pipe would block it.
    let (result, (stdout, out_truncated), (stderr, err_truncated)) = tokio::join!(
        invoke,
        capture(out_r, done_rx.clone()),
        capture(err_r, done_rx)
    );
    let status = result?;
    Ok(json!({
        "exitstatus": status,
        "stdout": stdout,
        "stderr": stderr,
        "truncated": out_truncated || err_truncated,
    }))
}

/// A pipe, both ends close-on-exec (the runner gets the write end by `dup2`).
fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    Ok(nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?)
}

/// What comes out of `pipe` until EOF, kept up to [`MAX_CAPTURE`] bytes (lossy UTF-8),
/// and whether more was dropped. Once `done` turns true (the call ended) it reads for at
/// most [`DRAIN`] more: a background process of the program may keep the pipe open.
async fn capture(mut pipe: Receiver, mut done: watch::Receiver<bool>) -> (String, bool) {
    let mut kept = Vec::new();
    let mut truncated = false;
    let mut chunk = vec![0u8; 64 * 1024];
    let mut drain_until: Option<tokio::time::Instant> = None;
    loop {
        let drained = async {
            match drain_until {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            read = pipe.read(&mut chunk) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = MAX_CAPTURE - kept.len();
                    kept.extend_from_slice(&chunk[..n.min(room)]);
                    truncated |= n > room;
                }
            },
            _ = done.wait_for(|d| *d), if drain_until.is_none() => {
                drain_until = Some(tokio::time::Instant::now() + DRAIN);
            }
            () = drained => break,
        }
    }
    (String::from_utf8_lossy(&kept).into_owned(), truncated)
}

fn take<T: serde::de::DeserializeOwned>(
    opts: &mut Map<String, Value>,
    key: &str,
) -> Result<T, Failure> {
    take_opt(opts, key)?.ok_or_else(|| Failure::bad_request(format!("missing opts.{key}")))
}

fn take_opt<T: serde::de::DeserializeOwned>(
    opts: &mut Map<String, Value>,
    key: &str,
) -> Result<Option<T>, Failure> {
    match opts.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v)
            .map(Some)
            .map_err(|e| Failure::bad_request(format!("opts.{key}: {e}"))),
    }
}

fn no_more(opts: &Map<String, Value>) -> Result<(), Failure> {
    match opts.keys().next() {
        Some(key) => Err(Failure::bad_request(format!("unknown option opts.{key}"))),
        None => Ok(()),
    }
}
