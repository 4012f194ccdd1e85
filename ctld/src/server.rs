//! The daemon: the listening socket, one task per connection, one task per request.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ctl_core::Container;
use ctl_provision::{ProvisionError, Provisioner};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;

use crate::handlers;
use crate::protocol::{self, Failure, Line, LineReader, Request, Tag};

/// Requests one connection may have in flight; more are refused (`busy`).
pub const MAX_IN_FLIGHT: usize = 1024;

/// What `ct_stop`'s request deadline adds to the stop's own timeout (the kill that follows
/// a clean shutdown that did not finish, the runner's start and end).
const STOP_SLACK: Duration = Duration::from_secs(30);

/// How long after its deadline a request is dropped (its runner killed) if the frontend
/// has not ended it itself.
const DEADLINE_SLACK: Duration = Duration::from_secs(5);

/// The daemon's configuration and shared state.
pub struct Daemon {
    provisioner: Provisioner,
    default_timeout: Duration,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
}

impl Daemon {
    /// A daemon for the containers of `provisioner`'s state directory. `metrics`: the
    /// handle whose `render()` answers the `metrics` request (`None`: refused).
    pub fn new(
        provisioner: Provisioner,
        default_timeout: Duration,
        metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    ) -> Daemon {
        Daemon {
            provisioner,
            default_timeout,
            metrics,
        }
    }

    /// The container registry.
    pub fn provisioner(&self) -> &Provisioner {
        &self.provisioner
    }

    /// The record of container `id`.
    pub fn load(&self, id: &str) -> Result<Container, Failure> {
        self.provisioner.load(id).map_err(|e| match e {
            ProvisionError::NotFound(_) => Failure::new(
                "not_found",
                format!(
                    "no container {id:?} in {}",
                    self.provisioner.state_dir().display()
                ),
            ),
            ProvisionError::InvalidName { .. } => Failure::new("not_found", e.to_string()),
            other => Failure::new("internal", other.to_string()),
        })
    }

    /// Serves `listener` until `shutdown` turns true; then stops accepting, lets the
    /// requests in flight finish for at most `grace`, and drops those still running
    /// (which kills their runners).
    pub async fn serve(
        self: Arc<Self>,
        listener: UnixListener,
        mut shutdown: watch::Receiver<bool>,
        grace: Duration,
    ) {
        let mut connections = JoinSet::new();
        let for_connections = shutdown.clone();
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        let daemon = self.clone();
                        let shutdown = for_connections.clone();
                        connections.spawn(async move { daemon.connection(stream, shutdown).await });
                    }
                    Err(e) => {
                        tracing::warn!("accept: {e}");
                        // EMFILE and friends: do not spin.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                _ = shutdown.wait_for(|s| *s) => break,
            }
        }
        drop(listener);
        tracing::info!(
            connections = connections.len(),
            "shutting down: waiting up to {grace:?} for requests in flight"
        );
        let drained = tokio::time::timeout(grace, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                connections = connections.len(),
                "grace period over: cancelling the requests still in flight"
            );
            connections.abort_all();
            while connections.join_next().await.is_some() {}
        }
    }

    /// One client connection.
    async fn connection(self: Arc<Self>, stream: UnixStream, mut shutdown: watch::Receiver<bool>) {
        let started = Instant::now();
        metrics::gauge!("ctld_connections").increment(1.0);
        let fd = stream.as_raw_fd();
        let (read, write) = stream.into_split();
        let (tx, rx) = mpsc::unbounded_channel::<String>();
        let mut writer = tokio::spawn(write_replies(write, rx));
        let _ = tx.send(protocol::greeting());
        let mut reader = LineReader::new(read, protocol::MAX_LINE);
        let in_flight: InFlight = Arc::new(Mutex::new(HashMap::new()));
        let mut requests = JoinSet::new();
        // The untagged request before this one has sent its reply once this fires.
        let mut order: Option<oneshot::Receiver<()>> = None;
        let mut gone = false;
        let mut writer_done = false;
        loop {
            let line = tokio::select! {
                line = reader.next_line() => line,
                _ = &mut writer, if !writer_done => { writer_done = true; gone = true; break }
                Some(_) = requests.join_next(), if !requests.is_empty() => continue,
                _ = shutdown.wait_for(|s| *s) => break,
            };
            let line = match line {
                Ok(Line::Line(line)) => Ok(line),
                Ok(Line::TooLong) => Err((
                    None,
                    Failure::bad_request(format!(
                        "request line longer than {} bytes",
                        protocol::MAX_LINE
                    )),
                )),
                Ok(Line::Eof) => break,
                Err(e) => {
                    tracing::debug!("reading a request: {e}");
                    gone = true;
                    break;
                }
            };
            if line
                .as_ref()
                .is_ok_and(|l| l.iter().all(u8::is_ascii_whitespace))
            {
                continue;
            }
            let parsed = line.and_then(|l| protocol::parse_request(&l));
            let tag = match &parsed {
                Ok(r) => r.tag.clone(),
                Err((tag, _)) => tag.clone(),
            };
            let (sent_tx, sent_rx) = oneshot::channel();
            let turn = match tag {
                Some(_) => Turn::Tagged,
                None => Turn::Untagged {
                    after: order.replace(sent_rx),
                    sent: sent_tx,
                },
            };
            let ctx = RequestCtx {
                daemon: self.clone(),
                replies: tx.clone(),
                in_flight: in_flight.clone(),
                turn,
            };
            if requests.len() >= MAX_IN_FLIGHT {
                let f = Failure::new(
                    "busy",
                    format!("{MAX_IN_FLIGHT} requests of this connection are in flight already"),
                );
                requests.spawn(ctx.reply(tag, Err(f)));
                continue;
            }
            match parsed {
                Err((tag, f)) => {
                    metrics::counter!("ctld_requests_total", "cmd" => "invalid").increment(1);
                    metrics::counter!("ctld_request_errors_total", "cmd" => "invalid", "kind" => f.kind).increment(1);
                    requests.spawn(ctx.reply(tag, Err(f)));
                }
                Ok(request) => match request.tag.as_ref().map(|t| ctx.register(t)).transpose() {
                    Ok(cancelled) => {
                        requests.spawn(ctx.run(request, cancelled));
                    }
                    Err(f) => {
                        metrics::counter!("ctld_requests_total", "cmd" => "invalid").increment(1);
                        metrics::counter!("ctld_request_errors_total", "cmd" => "invalid", "kind" => f.kind).increment(1);
                        requests.spawn(ctx.reply(request.tag, Err(f)));
                    }
                },
            }
        }
        if !gone {
            // The client stopped sending (EOF: it may have shut down only its sending side,
            // and still wait for the replies) or the daemon is stopping: the requests in
            // flight finish, unless the client goes away entirely.
            tokio::select! {
                () = async { while requests.join_next().await.is_some() {} } => {}
                () = peer_gone(fd) => gone = true,
                _ = &mut writer, if !writer_done => { writer_done = true; gone = true }
            }
        }
        if gone {
            tracing::debug!(
                cancelled = requests.len(),
                "client gone: cancelling its requests"
            );
        }
        // Dropped: any request still running is cancelled (its runner killed and reaped).
        requests.abort_all();
        while requests.join_next().await.is_some() {}
        drop(tx);
        if !writer_done {
            let _ = writer.await;
        }
        metrics::gauge!("ctld_connections").decrement(1.0);
        tracing::debug!(after = ?started.elapsed(), "connection closed");
    }
}

/// Whether the peer of socket `fd` has closed it entirely (not only its sending side):
/// completes when `poll` reports `POLLHUP` or `POLLERR`.
async fn peer_gone(fd: RawFd) {
    loop {
        let mut pfd = libc::pollfd {
            fd,
            events: 0,
            revents: 0,
        };
        // SAFETY: one valid pollfd, no timeout; `fd` stays open while the connection
        // task (which owns the socket's halves) runs this.
        let n = unsafe { libc::poll(&mut pfd, 1, 0) };
        if n > 0 && pfd.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Writes reply lines until the channel closes; ends early (the client is gone) when a
/// write fails.
async fn write_replies(
    mut write: tokio::net::unix::OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<String>,
) {
    while let Some(mut line) = rx.recv().await {
        line.push('\n');
        if let Err(e) = write.write_all(line.as_bytes()).await {
            tracing::debug!("writing a reply: {e}");
            return;
        }
    }
    let _ = write.shutdown().await;
}

/// The tagged requests of a connection in flight: cancelling one sends on its channel.
type InFlight = Arc<Mutex<HashMap<Tag, oneshot::Sender<()>>>>;

/// When a request may send its reply.
enum Turn {
    /// As soon as it is ready.
    Tagged,
    /// After the untagged request before it (`after`); then it fires `sent`.
    Untagged {
        after: Option<oneshot::Receiver<()>>,
        sent: oneshot::Sender<()>,
    },
}

/// What a request task needs.
struct RequestCtx {
    daemon: Arc<Daemon>,
    replies: mpsc::UnboundedSender<String>,
    in_flight: InFlight,
    turn: Turn,
}

impl RequestCtx {
    /// Sends the reply to the request tagged `tag`, in its turn.
    async fn reply(self, tag: Option<Tag>, result: Result<Value, Failure>) {
        let line = protocol::reply_line(tag.as_ref(), &result);
        match self.turn {
            Turn::Tagged => {
                let _ = self.replies.send(line);
            }
            Turn::Untagged { after, sent } => {
                if let Some(after) = after {
                    // An error: that request was dropped (the connection is closing).
                    let _ = after.await;
                }
                let _ = self.replies.send(line);
                let _ = sent.send(());
            }
        }
    }

    /// Registers a tagged request as in flight, so that `cancel` finds it from now on (in
    /// the connection's task: a `cancel` right behind it must not miss it). `Err`: its tag
    /// is in flight already.
    fn register(&self, tag: &Tag) -> Result<oneshot::Receiver<()>, Failure> {
        let mut map = self.in_flight.lock().unwrap();
        if map.contains_key(tag) {
            return Err(Failure::bad_request(format!(
                "a request with id {} is in flight already",
                tag.0
            )));
        }
        let (cancel_tx, cancel_rx) = oneshot::channel();
        map.insert(tag.clone(), cancel_tx);
        Ok(cancel_rx)
    }

    /// Runs one request and replies. `cancelled`: fires when `cancel` names its tag.
    async fn run(self, request: Request, cancelled: Option<oneshot::Receiver<()>>) {
        let Request {
            tag,
            cmd,
            opts,
            timeout,
        } = request;
        let label = handlers::COMMANDS
            .iter()
            .find(|c| **c == cmd)
            .copied()
            .unwrap_or("unknown");
        metrics::counter!("ctld_requests_total", "cmd" => label).increment(1);
        let started = Instant::now();
        // A tagged request can be cancelled by its tag; an id already in flight cannot be
        // reused until it is answered.
        let result = {
            let work = self.execute(&cmd, opts, timeout);
            match cancelled {
                Some(cancelled) => tokio::select! {
                    result = work => result,
                    _ = cancelled => Err(Failure::new("cancelled", "cancelled by request")),
                },
                None => work.await,
            }
        };
        if let Some(tag) = &tag {
            self.in_flight.lock().unwrap().remove(tag);
        }
        self.finish(label, tag, result, started).await
    }

    async fn finish(
        self,
        label: &'static str,
        tag: Option<Tag>,
        result: Result<Value, Failure>,
        started: Instant,
    ) {
        let elapsed = started.elapsed();
        metrics::histogram!("ctld_request_duration_seconds", "cmd" => label)
            .record(elapsed.as_secs_f64());
        match &result {
            Ok(_) => tracing::debug!(cmd = label, ?elapsed, "request done"),
            Err(f) => {
                metrics::counter!("ctld_request_errors_total", "cmd" => label, "kind" => f.kind)
                    .increment(1);
                tracing::info!(
                    cmd = label,
                    ?elapsed,
                    kind = f.kind,
                    "request failed: {}",
                    f.message
                );
            }
        }
        self.reply(tag, result).await
    }

    /// What the request does.
    async fn execute(
        &self,
        cmd: &str,
        opts: serde_json::Map<String, Value>,
        timeout: Option<Duration>,
    ) -> Result<Value, Failure> {
        let daemon = &self.daemon;
        match cmd {
            "ping" => Ok(json!("pong")),
            "metrics" => match &daemon.metrics {
                Some(handle) => Ok(Value::String(handle.render())),
                None => Err(Failure::new("internal", "no metrics recorder installed")),
            },
            "cancel" => {
                let id = opts
                    .get("id")
                    .cloned()
                    .ok_or_else(|| Failure::bad_request("missing opts.id"))?;
                let tag = Tag::parse(id)?;
                match self.in_flight.lock().unwrap().remove(&tag) {
                    Some(cancel) => {
                        let _ = cancel.send(());
                        Ok(json!(true))
                    }
                    None => Err(Failure::new(
                        "not_found",
                        format!("no request with id {} is in flight", tag.0),
                    )),
                }
            }
            _ => {
                let deadline = match (timeout, cmd) {
                    (Some(t), _) => t,
                    // A stop may take its own timeout, and then some.
                    (None, "ct_stop") => daemon
                        .default_timeout
                        .max(handlers::stop_timeout(&opts) + STOP_SLACK),
                    _ => daemon.default_timeout,
                };
                let work = handlers::container_request(daemon, cmd, opts, deadline);
                // The frontend ends the call at its deadline; this bounds whatever runs
                // beside the runner.
                tokio::time::timeout(deadline + DEADLINE_SLACK, work)
                    .await
                    .unwrap_or_else(|_| {
                        Err(Failure::new(
                            "timeout",
                            format!("timed out after {:.1}s", deadline.as_secs_f64()),
                        ))
                    })
            }
        }
    }
}

/// Binds the daemon's socket at `path` with mode 0600. A socket file another daemon
/// answers on is an error; a stale one (nobody listens) is removed first; anything else
/// at `path` is left alone and is an error.
pub fn bind(path: &Path) -> std::io::Result<(std::os::unix::net::UnixListener, SocketFile)> {
    use std::io::{Error, ErrorKind};
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            match std::os::unix::net::UnixStream::connect(path) {
                Ok(_) => {
                    return Err(Error::new(
                        ErrorKind::AddrInUse,
                        format!("another daemon answers on {}", path.display()),
                    ))
                }
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                    tracing::info!("removing the stale socket {}", path.display());
                    std::fs::remove_file(path)?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(_) => {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    // No moment with a wider mode: the umask applies to bind's file (ctld binds before it
    // starts any thread, so changing the process's umask is safe here).
    // SAFETY: umask only swaps the process's file mode mask.
    let old = unsafe { libc::umask(0o177) };
    let bound = std::os::unix::net::UnixListener::bind(path);
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    let listener = bound?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    let meta = std::fs::symlink_metadata(path)?;
    Ok((
        listener,
        SocketFile {
            path: path.to_owned(),
            dev: meta.dev(),
            ino: meta.ino(),
        },
    ))
}

/// The socket file ctld bound; removed on drop if it is still the same file.
#[derive(Debug)]
pub struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        use std::os::unix::fs::MetadataExt;
        if let Ok(meta) = std::fs::symlink_metadata(&self.path) {
            if meta.dev() == self.dev && meta.ino() == self.ino {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}
