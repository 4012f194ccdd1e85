//! osctld's run modes of Exec and Runscript, for envelopes from osctld's own frontends.
//!
//! osctld's frontend picks the mode and sends `[mode, {options}]`:
//!
//! - `running`: the container runs; the program is attached to it (as our Exec does).
//! - `run`: the container is stopped; it is started just for the program, the way
//!   `lxc-execute` does, with the envelope's `log_file` as LXC's log, the runner's host
//!   `PATH` with `/run/wrappers/bin` first (where NixOS keeps `newuidmap`), and osctld's
//!   `ct_wrapper_start` callback made first (below). Unlike our own `run`, the container's
//!   network configuration is left as it is (its interfaces exist, unconfigured).
//! - `run_network`: the container is started with the frontend's `init_script` (a script
//!   in the rootfs that prints `ready` and waits on its stdin), its static network
//!   configuration (`net_config`, osctld's `NetConfig` export) is applied inside with
//!   netlink, the program runs attached, and closing the script's stdin then ends the
//!   container.
//!
//! The callback: osctld's daemon listens on `/run/osctl/user-control/<uid>.sock`; the
//! process about to start the container sends
//! `{"cmd":"ct_wrapper_start","opts":{"id":…,"pool":…,"pid":…}}` and osctld moves it to
//! the container's cgroup, so that LXC puts the payload where osctld expects it. Made
//! when that socket exists, skipped on a host without osctld (no
//! `/run/osctl/user-control`); a missing socket where the directory exists is an error.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ctl_core::osctld::Value;
use ctl_core::{bail, CommandError, RunnerContext};
use ctl_lxc::State;
use serde::Deserialize;

use super::netconfig::NetConfig;
use super::{attached_status, start_for_program, ExecOptions, Setup};
use crate::support::{self, ProgramStdio};

/// osctld's modes, as its frontend names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Mode {
    Running,
    Run,
    RunNetwork,
}

/// What `run_network` needs besides the program.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Network {
    /// The script in the rootfs that keeps the container up (path inside).
    #[serde(default)]
    pub init_script: Option<String>,
    /// osctld's `NetConfig` export.
    #[serde(default)]
    pub net_config: Option<NetConfig>,
}

/// Where osctld's daemon listens for its runners' callbacks, per uid.
const USER_CONTROL_DIR: &str = "/run/osctl/user-control";

/// How long the callback may take: osctld answers at once; a daemon that hangs must not
/// hang the runner.
const CALLBACK_TIMEOUT: Duration = Duration::from_secs(30);

/// How long `run_network` waits for the init script's `ready`: the container has to start
/// first (osctld waits for ever).
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// How long the container may take to stop once `run_network` released its init script.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the network configuration inside may take.
const NET_CONFIG_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `argv` in mode `mode` and answers as osctld's runner: `ok(exitstatus)`.
pub(crate) fn run(
    ctx: &RunnerContext,
    mode: Mode,
    argv: &[String],
    network: Network,
) -> Result<Value, CommandError> {
    if argv.is_empty() {
        bail!("empty command");
    }
    let ct = support::open_defined(ctx)?;
    match mode {
        Mode::Running => {
            let ct = support::open_running(ctx)?;
            attached_status(ctx, &ct, argv).map(ctl_core::osctld::exit_status)
        }
        Mode::Run => {
            require_stopped(ctx, &ct)?;
            let stdio = ProgramStdio::of(ctx)?;
            let code = execute(ctx, &ct, argv, stdio.fds, &[])?;
            Ok(Value::from(code))
        }
        Mode::RunNetwork => {
            require_stopped(ctx, &ct)?;
            let Some(init_script) = network.init_script else {
                bail!("mode run_network needs an init_script");
            };
            let net_config = network.net_config.unwrap_or_default();
            with_configured_network(ctx, &ct, &init_script, &net_config, argv)
        }
    }
}

fn require_stopped(ctx: &RunnerContext, ct: &ctl_lxc::Container) -> Result<(), CommandError> {
    match ct.state()? {
        State::Stopped => Ok(()),
        state => bail!(
            "container {} is {state}; the run modes need a stopped container",
            ctx.ident()
        ),
    }
}

/// osctld's `runscript_run` / `exec_run`: starts the stopped container for `argv` with
/// `fds` as its stdio, in a dumpable worker (liblxc's execute needs one), after the
/// wrapper callback; `close` are fds the worker must not keep (the other ends of the
/// init script's pipes). Returns the exit code `lxc-execute` would exit with.
fn execute(
    ctx: &RunnerContext,
    ct: &ctl_lxc::Container,
    argv: &[String],
    fds: [std::os::fd::RawFd; 3],
    close: &[std::os::fd::RawFd],
) -> Result<i32, CommandError> {
    Ok(start_execute(ctx, ct, argv, fds, close)?.wait()?)
}

fn start_execute(
    ctx: &RunnerContext,
    ct: &ctl_lxc::Container,
    argv: &[String],
    fds: [std::os::fd::RawFd; 3],
    close: &[std::os::fd::RawFd],
) -> Result<ctl_lxc::isolated::DumpableWorker, CommandError> {
    if let Some(log) = &ctx.log_file {
        // `lxc-execute -o <log_file>`.
        let log = log
            .to_str()
            .ok_or_else(|| CommandError::msg(format!("log file {} is not UTF-8", log.display())))?;
        ct.set_config_item("lxc.log.file", log)?;
    }
    // osctld's `lxc.environment`: PATH, HOME=/root, USER=root.
    let options = ExecOptions::default();
    let setup = Setup::new(&options, ctx.container_path(), None);
    let (pool, id, home) = (ctx.pool.as_str(), ctx.id.as_str(), ctx.user_home.as_path());
    // The container's network stays as configured (its interfaces exist, unconfigured).
    start_for_program(ct, argv, false, fds, &setup, &|| {
        for fd in close {
            let _ = nix::unistd::close(*fd);
        }
        // osctld's `setup_exec_run_env` for the process that starts the container (the
        // worker is a fork of the single-threaded runner: setting variables is safe).
        std::env::set_var("PATH", ctl_core::container::DEFAULT_RUNNER_PATH);
        std::env::set_var("HOME", home);
        wrapper_callback(pool, id)
    })
}

/// osctld's `with_configured_network`: starts the container with the init script, waits
/// for its `ready`, applies `net_config` inside, runs `argv` attached, and closes the
/// script's stdin, which ends the container.
fn with_configured_network(
    ctx: &RunnerContext,
    ct: &ctl_lxc::Container,
    init_script: &str,
    net_config: &NetConfig,
    argv: &[String],
) -> Result<Value, CommandError> {
    let (in_r, in_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let (out_r, out_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    // The script's stderr: /dev/null (osctld leaves its own stderr there, a file of the
    // daemon's that the container's root, who can replace the script's interpreter, must
    // not get; the script prints nothing on it).
    let null = ProgramStdio::null()?;
    let init = [in_r.as_raw_fd(), out_w.as_raw_fd(), null.fds[2]];
    let worker = start_execute(
        ctx,
        ct,
        &[init_script.to_owned()],
        init,
        &[in_w.as_raw_fd(), out_r.as_raw_fd()],
    )?;
    drop((in_r, out_w));
    let result = match read_ready(out_r, Instant::now() + READY_TIMEOUT) {
        Ok(true) => configure_and_run(ctx, ct, net_config, argv).map(Some),
        Ok(false) => Ok(None),
        Err(e) => Err(e),
    };
    // Closing the script's stdin ends it, and with it the container. The script runs in
    // the container, whose root can make it ignore that: past RELEASE_TIMEOUT the
    // container is stopped (killed) so that the runner does not wait for ever.
    drop(in_w);
    if !support::wait_stopped(ct, Instant::now() + RELEASE_TIMEOUT).unwrap_or(false) {
        eprintln!(
            "{}: the init script did not end within {} s of its release; stopping the container",
            ctx.ident(),
            RELEASE_TIMEOUT.as_secs()
        );
        if let Err(e) = ct.stop() {
            eprintln!("{}: cannot stop the container: {e}", ctx.ident());
        }
    }
    // liblxc's stop cannot end an init that the container's root froze in a freezer
    // cgroup of its own: the worker is then killed after a last bound.
    let init_status = worker.wait_until(Some(Instant::now() + RELEASE_TIMEOUT));
    drop(null);
    match result? {
        Some(value) => Ok(value),
        // No `ready`: osctld answers with the script's exit status.
        None => Ok(init_status.map(Value::from)?),
    }
}

fn configure_and_run(
    ctx: &RunnerContext,
    ct: &ctl_lxc::Container,
    net_config: &NetConfig,
    argv: &[String],
) -> Result<Value, CommandError> {
    let deadline = Instant::now() + NET_CONFIG_TIMEOUT;
    support::attach_and_report(ct, "the network configuration", deadline, &|| {
        net_config
            .apply()
            .map(|()| String::new())
            .map_err(|e| e.to_string())
    })?
    .map_err(|e| CommandError::msg(format!("cannot configure the network inside: {e}")))?;
    attached_status(ctx, ct, argv).map(ctl_core::osctld::exit_status)
}

/// Reads the init script's first line until `deadline`: `true` for `ready`, `false` for
/// anything else or EOF (the script or the container failed).
fn read_ready(out: OwnedFd, deadline: Instant) -> Result<bool, CommandError> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!(
                "the container did not get ready within {} s",
                READY_TIMEOUT.as_secs()
            );
        }
        let mut fds = [PollFd::new(
            std::os::fd::AsFd::as_fd(&out),
            PollFlags::POLLIN,
        )];
        let timeout = PollTimeout::try_from(left.as_millis().min(60_000) as i32 + 1)
            .unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, timeout) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(e.into()),
        }
        match nix::unistd::read(&out, &mut byte) {
            Ok(0) => return Ok(false),
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) if line.len() < 256 => line.push(byte[0]),
            Ok(_) => return Ok(false),
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(String::from_utf8_lossy(&line).trim() == "ready")
}

/// osctld's `osctld_wrapper_callback`, when its daemon's socket for this uid exists.
fn wrapper_callback(pool: &str, id: &str) -> Result<(), CommandError> {
    let uid = nix::unistd::getuid();
    let socket = PathBuf::from(USER_CONTROL_DIR).join(format!("{uid}.sock"));
    // No osctld on this host (no directory for its sockets): nothing to call. With the
    // directory but without this uid's socket, osctld is there but not serving this user
    // (restarting, say): starting the container anyway would put its payload where osctld
    // does not look for it, so that fails, as it does with osctld's own runner.
    if !Path::new(USER_CONTROL_DIR).exists() {
        return Ok(());
    }
    match std::fs::symlink_metadata(&socket) {
        Ok(meta) if meta.file_type().is_socket() => {}
        Ok(_) => bail!("{} is not a socket", socket.display()),
        Err(e) => bail!(
            "Error during ct_wrapper_start callback: {}: {e}",
            socket.display()
        ),
    }
    callback(&socket, pool, id, std::process::id())
        .map_err(|e| CommandError::msg(format!("Error during ct_wrapper_start callback: {e}")))
}

fn callback(socket: &Path, pool: &str, id: &str, pid: u32) -> Result<(), String> {
    let mut stream = UnixStream::connect(socket).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(CALLBACK_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(CALLBACK_TIMEOUT)))
        .map_err(|e| e.to_string())?;
    let request = serde_json::json!({
        "cmd": "ct_wrapper_start",
        "opts": {"id": id, "pool": pool, "pid": pid},
    });
    stream
        .write_all(format!("{request}\n").as_bytes())
        .map_err(|e| e.to_string())?;
    let mut line = String::new();
    BufReader::new((&stream).take(64 << 10))
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    #[derive(Deserialize)]
    struct Answer {
        status: bool,
        #[serde(default)]
        message: Option<String>,
    }
    let answer: Answer = serde_json::from_str(line.trim())
        .map_err(|e| format!("bad answer {:?}: {e}", line.trim()))?;
    if answer.status {
        Ok(())
    } else {
        Err(answer.message.unwrap_or_default())
    }
}
