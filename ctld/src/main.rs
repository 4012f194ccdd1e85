//! `ctld`: the reference daemon (see the crate's `README.md`). Also its own runner: started
//! with a runner's process title it serves one envelope and exits (`docs/daemon.md`).
//!
//! Which runner ctld starts: `CTL_RUNNER` if set; else the dedicated `ctl-runner` installed
//! beside ctld (it starts faster); else ctld itself.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

// Linking the built-in commands registers them (for `ct_command` and as a runner).
use commands as _;

/// The reference daemon: the framework's container commands over a Unix socket, one JSON
/// request per line (osctld's client protocol).
#[derive(Parser, Debug)]
#[command(name = "ctld", version)]
struct Cli {
    /// The socket to listen on (created with mode 0600).
    #[arg(long, default_value = "/run/ctld.sock")]
    socket: PathBuf,
    /// The container registry: a ctl-provision state directory, as `ctl` uses.
    #[arg(long, env = "CTL_STATE_DIR", default_value = "/var/lib/ctl")]
    state_dir: PathBuf,
    /// A request's deadline when it names no `timeout` (seconds).
    #[arg(long, default_value_t = 60.0)]
    default_timeout: f64,
    /// On SIGTERM/SIGINT, how long requests in flight may still run (seconds).
    #[arg(long, default_value_t = 10.0)]
    grace: f64,
    /// Worker threads of the runtime.
    #[arg(long, default_value_t = 2)]
    workers: usize,
}

fn main() {
    // First, before any thread exists: a runner must be single-threaded (docs/daemon.md).
    ctl_core::runner::run_if_runner();
    if let Ok(exe) = std::env::current_exe() {
        let sibling = exe.with_file_name("ctl-runner");
        if sibling.is_file() {
            ctl_core::set_runner_path(sibling);
        }
    }
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    std::process::exit(match run(cli) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("ctld: {e}");
            1
        }
    });
}

fn seconds(what: &str, s: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(s)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("--{what} must be a positive number of seconds"))
}

fn run(cli: Cli) -> Result<(), String> {
    let default_timeout = seconds("default-timeout", cli.default_timeout)?;
    let grace = Duration::try_from_secs_f64(cli.grace)
        .map_err(|_| "--grace must be a number of seconds".to_owned())?;
    let provisioner = ctl_provision::Provisioner::new(&cli.state_dir)
        .map_err(|e| format!("state directory {}: {e}", cli.state_dir.display()))?;
    if let Err(e) = ctl_core::Registry::global() {
        return Err(e.to_string());
    }
    // Bound before the runtime's threads exist (the umask around bind is process-wide).
    let (listener, socket_file) =
        ctld::bind(&cli.socket).map_err(|e| format!("socket {}: {e}", cli.socket.display()))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("socket: {e}"))?;
    let metrics = ctld::metrics_text::install()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.workers.max(1))
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let daemon = Arc::new(ctld::Daemon::new(
        provisioner,
        default_timeout,
        Some(metrics.clone()),
    ));
    let result = runtime.block_on(async move {
        let listener =
            tokio::net::UnixListener::from_std(listener).map_err(|e| format!("socket: {e}"))?;
        let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
        let signals = tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                tracing::error!("cannot install the signal handlers");
                return;
            };
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            tracing::info!("{name}: stopping");
            let _ = shutdown_tx.send(true);
        });
        let upkeep = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(10)).await;
                metrics.run_upkeep();
            }
        });
        tracing::info!(
            socket = %cli.socket.display(),
            state_dir = %cli.state_dir.display(),
            "ctld listening"
        );
        daemon.serve(listener, shutdown_rx, grace).await;
        signals.abort();
        upkeep.abort();
        Ok::<(), String>(())
    });
    // Requests dropped at the end of the grace period killed their runners; their reaping
    // tasks get a moment to run.
    runtime.shutdown_timeout(Duration::from_secs(1));
    drop(socket_file);
    tracing::info!("ctld stopped");
    result
}
