//! Warm runners: an opt-in way below the cost of a process start.
//!
//! A cold call spawns and execs a runner every time. A [`WarmPool`] keeps, per container and
//! placement, one runner that has already applied its placement (cgroups, rlimits,
//! credentials) and now serves commands: for each one it forks a child (it is
//! single-threaded and small, so a fork is sound and cheap) that runs exactly the code a
//! cold runner runs, with the same fds, and reports to the frontend over the same pipes.
//!
//! Trade-offs (see `docs/performance.md`): each warm runner is a process holding memory
//! (about the runner's RSS) and sitting in the container's cgroups; it runs the code of the
//! binary it was started from until it exits, so after an upgrade it is stale until its
//! idle timeout ends it (or [`WarmPool::clear`]); it dies with the thread that started it
//! (parent-death signal) and is then replaced on the next call. The cold path is the
//! default.
//!
//! Wire protocol on the runner's stdin (a `SOCK_SEQPACKET` socket), after the usual
//! envelope (with `ctl.warm` set) and its one-line "ready" reply:
//! - `R` + envelope, with fds `[stderr, reply, status, command stdio...]` as `SCM_RIGHTS`:
//!   run a command; the runner answers with the child's pid (4 bytes, native endian) and,
//!   when the child ends, writes its raw wait status (4 bytes) to `status`.
//! - `K` + pid: kill that child and its process group (a deadline passed).

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    recv, sendmsg, socketpair, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType,
};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::{pipe2, Pid};
use serde_json::Value;

use super::exchange::{converse, set_nonblocking, Channels, ChildGuard, RunnerProcess};
use super::{envelope_for, finish, spawn, Prepared, StdioPlan, CHILD_RETURN_FD};
use crate::args::Args;
use crate::call::Call;
use crate::envelope::{Envelope, Extension, WarmSpec, PROTOCOL_VERSION};
use crate::error::{Error, ExitInfo};
use crate::reply::Reply;

/// Largest request sent to a warm runner; a larger envelope takes the cold path.
const MAX_WARM_REQUEST: usize = 128 * 1024;
/// How long a warm runner may take to report that it is ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Warm runners of one daemon, keyed by container, placement and runner binary.
///
/// A handle: clones share the runners (the async frontend takes a clone onto the blocking
/// thread that makes a warm call). The runners are stopped when the last handle goes.
#[derive(Clone)]
pub struct WarmPool(Arc<PoolState>);

/// What the handles of a [`WarmPool`] share.
pub struct PoolState {
    idle_timeout: Duration,
    warm_up: bool,
    runners: Mutex<HashMap<String, Arc<WarmRunner>>>,
    spawner: std::sync::OnceLock<Mutex<mpsc::Sender<SpawnJob>>>,
}

/// A spawn done on the pool's own thread. The parent-death signal of a runner fires when
/// the *thread* that created it ends; warm runners must outlive the (possibly
/// short-lived) caller threads, so they are all started by one thread the pool owns.
struct SpawnJob {
    path: std::path::PathBuf,
    argv0: String,
    env: Vec<String>,
    /// Raw fds that the requesting thread keeps open until it has the answer.
    fds: Vec<(RawFd, RawFd)>,
    answer: mpsc::Sender<io::Result<Pid>>,
}

fn spawner_thread(jobs: mpsc::Receiver<SpawnJob>) {
    for job in jobs {
        // SAFETY: the requesting thread owns these fds and blocks on `answer` until the
        // spawn is done, so they stay open for the whole borrow.
        let fds: Vec<(BorrowedFd<'_>, RawFd)> = job
            .fds
            .iter()
            .map(|(fd, n)| (unsafe { BorrowedFd::borrow_raw(*fd) }, *n))
            .collect();
        let result = spawn::spawn(&spawn::SpawnRequest {
            path: &job.path,
            argv0: &job.argv0,
            env: &job.env,
            fds: &fds,
            // The runner starts a session of its own (setsid), which a process group
            // leader could not.
            own_process_group: false,
        });
        let _ = job.answer.send(result);
    }
}

struct WarmRunner {
    /// `None` once the pool let go of it.
    sock: Mutex<Option<OwnedFd>>,
    guard: Mutex<ChildGuard>,
    pid: Pid,
}

impl WarmPool {
    /// A pool whose runners exit after `idle_timeout` without a command in flight.
    pub fn new(idle_timeout: Duration) -> WarmPool {
        WarmPool(Arc::new(PoolState {
            idle_timeout,
            warm_up: true,
            runners: Mutex::new(HashMap::new()),
            spawner: std::sync::OnceLock::new(),
        }))
    }

    /// Whether the pool's runners run the registered `WarmUp` hooks (default: yes). The
    /// built-in commands register one that loads liblxc, which spares every LXC command
    /// its `dlopen` (~0.35 ms) but makes every fork ~90 µs dearer here (a larger address
    /// space to copy): turn it off for a pool that serves commands without LXC.
    ///
    /// Set it on a new pool: a pool already shared by clones keeps its setting.
    pub fn warm_up(mut self, on: bool) -> WarmPool {
        if let Some(state) = Arc::get_mut(&mut self.0) {
            state.warm_up = on;
        }
        self
    }

    /// Number of live warm runners.
    pub fn len(&self) -> usize {
        let mut runners = self.lock();
        runners.retain(|_, r| r.alive());
        runners.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Pids of the live warm runners (for operators and tests).
    pub fn pids(&self) -> Vec<i32> {
        let mut runners = self.lock();
        runners.retain(|_, r| r.alive());
        runners.values().map(|r| r.pid.as_raw()).collect()
    }

    /// Stops every warm runner: they finish the commands in flight and exit.
    pub fn clear(&self) {
        let drained: Vec<_> = self.lock().drain().map(|(_, r)| r).collect();
        drop(drained);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<WarmRunner>>> {
        self.runners.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, call: &Call<'_>, prepared: &Prepared) -> Result<Arc<WarmRunner>, Error> {
        let key = serde_json::json!([
            prepared.path,
            prepared.spec,
            prepared.env,
            call.ct.pool,
            call.ct.id
        ])
        .to_string();
        let mut runners = self.lock();
        if let Some(r) = runners.get(&key) {
            if r.alive() {
                return Ok(Arc::clone(r));
            }
            runners.remove(&key);
        }
        let runner = Arc::new(WarmRunner::spawn(self, call, prepared)?);
        runners.insert(key, Arc::clone(&runner));
        Ok(runner)
    }

    /// Spawns on the pool's thread (see [`SpawnJob`]).
    fn spawn_on_pool_thread(&self, job: SpawnJob) -> io::Result<Pid> {
        let (tx, rx) = mpsc::channel();
        let sender = self.spawner.get_or_init(|| {
            let (jobs_tx, jobs_rx) = mpsc::channel();
            std::thread::Builder::new()
                .name("ctl-warm-spawner".to_owned())
                .spawn(move || spawner_thread(jobs_rx))
                .expect("starting the warm runner spawner thread");
            Mutex::new(jobs_tx)
        });
        sender
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(SpawnJob { answer: tx, ..job })
            .map_err(|_| io::Error::other("the warm runner spawner thread is gone"))?;
        rx.recv()
            .map_err(|_| io::Error::other("the warm runner spawner thread is gone"))?
    }

    fn forget(&self, runner: &Arc<WarmRunner>) {
        self.lock().retain(|_, r| !Arc::ptr_eq(r, runner));
    }
}

impl std::fmt::Debug for WarmPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WarmPool")
            .field("idle_timeout", &self.idle_timeout)
            .field("runners", &self.lock().len())
            .finish()
    }
}

impl std::ops::Deref for WarmPool {
    type Target = PoolState;

    fn deref(&self) -> &PoolState {
        &self.0
    }
}

impl Drop for PoolState {
    fn drop(&mut self) {
        let drained: Vec<_> = self
            .runners
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .collect();
        drop(drained);
    }
}

impl WarmRunner {
    fn spawn(pool: &WarmPool, call: &Call<'_>, prepared: &Prepared) -> Result<WarmRunner, Error> {
        let idle = pool.idle_timeout;
        let (sock, sock_child) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| prepared.setup("creating the warm runner's socket")(e.into()))?;
        let (reply_r, reply_w) =
            pipe2(OFlag::O_CLOEXEC).map_err(|e| prepared.setup("creating a pipe")(e.into()))?;
        let (stderr_r, stderr_w) =
            pipe2(OFlag::O_CLOEXEC).map_err(|e| prepared.setup("creating a pipe")(e.into()))?;
        let fds = [
            (sock_child.as_fd(), 0),
            (stderr_w.as_fd(), 1),
            (stderr_w.as_fd(), 2),
            (reply_w.as_fd(), CHILD_RETURN_FD),
        ];
        let mut envelope = envelope_for(
            call,
            prepared,
            Args::default(),
            &StdioPlan {
                fds: Vec::new(),
                stdin: None,
                stdout: None,
                stderr: None,
            },
        );
        envelope.ctl = Some(Extension {
            version: PROTOCOL_VERSION,
            placement: Some(prepared.spec.clone()),
            parent_pid: Some(std::process::id() as i32),
            warm: Some(WarmSpec {
                idle_timeout_ms: idle.as_millis() as u64,
                warm_up: pool.warm_up,
            }),
            container_path: None,
            lock_fd: None,
        });
        let title = prepared
            .title
            .replace(&format!("runner:{}", prepared.snake_name), "runner:warm");
        let (answer, _) = mpsc::channel();
        let pid = pool
            .spawn_on_pool_thread(SpawnJob {
                path: prepared.path.clone(),
                argv0: title,
                env: prepared.env.clone(),
                fds: fds.iter().map(|(fd, n)| (fd.as_raw_fd(), *n)).collect(),
                answer,
            })
            .map_err(|source| Error::spawn(prepared.command, prepared.path.clone(), source))?;
        drop((sock_child, reply_w, stderr_w));
        let mut guard = ChildGuard::watch(pid, true)
            .map_err(prepared.setup("opening a pidfd for the warm runner"))?;
        let envelope = envelope.to_vec();
        if let Err(e) = nix::sys::socket::send(sock.as_raw_fd(), &envelope, MsgFlags::MSG_NOSIGNAL)
        {
            return Err(prepared.setup("sending the warm runner its envelope")(
                e.into(),
            ));
        }
        // The ready line, or whatever a failed start reports: the same conversation as a
        // cold call, ended by the first reply line instead of the runner's exit.
        let mut line = Vec::new();
        let started = Instant::now();
        // A runner that never reports ready must not hold the call past its own deadline.
        let ready_timeout = call
            .deadline
            .map_or(READY_TIMEOUT, |d| d.min(READY_TIMEOUT));
        loop {
            let left = ready_timeout.saturating_sub(started.elapsed());
            let mut fds = [
                PollFd::new(reply_r.as_fd(), PollFlags::POLLIN),
                PollFd::new(guard.exit_fd(), PollFlags::POLLIN),
            ];
            match nix::poll::poll(
                &mut fds,
                PollTimeout::try_from(left.as_millis() as i32).unwrap_or(PollTimeout::MAX),
            ) {
                Ok(0) => {
                    return Err(Error::timeout(prepared.command, ready_timeout));
                }
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(prepared.setup("waiting for the warm runner")(e.into())),
                Ok(_) => {}
            }
            let mut chunk = [0u8; 4096];
            match nix::unistd::read(&reply_r, &mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    line.extend_from_slice(&chunk[..n]);
                    if line.contains(&b'\n') {
                        break;
                    }
                }
            }
        }
        match Reply::from_line(line.split(|b| *b == b'\n').next().unwrap_or(&[])) {
            Ok(Reply::Ok(_)) => {}
            _ => {
                // Not ready: report it exactly as a cold call would.
                let mut tail = Vec::new();
                let _ = set_nonblocking(&stderr_r);
                let mut chunk = [0u8; 4096];
                while let Ok(n) = nix::unistd::read(&stderr_r, &mut chunk) {
                    if n == 0 {
                        break;
                    }
                    tail.extend_from_slice(&chunk[..n]);
                }
                guard.kill();
                let status = guard
                    .reap()
                    .map_err(prepared.setup("reaping the warm runner"))?;
                let has_line = line.contains(&b'\n');
                let outcome = super::exchange::Outcome {
                    line: has_line
                        .then(|| line.split(|b| *b == b'\n').next().unwrap_or(&[]).to_vec()),
                    partial: if has_line { Vec::new() } else { line },
                    status,
                    stderr_tail: tail,
                    ending: super::exchange::Ending::Exited,
                    timings: Default::default(),
                };
                finish(prepared, outcome, call)?;
                return Err(Error::protocol(
                    prepared.command,
                    prepared.path.clone(),
                    crate::error::ProtocolError::Refused(
                        "the warm runner did not report ready".to_owned(),
                    ),
                ));
            }
        }
        Ok(WarmRunner {
            sock: Mutex::new(Some(sock)),
            guard: Mutex::new(guard),
            pid,
        })
    }

    fn alive(&self) -> bool {
        let guard = self.guard.lock().unwrap_or_else(|e| e.into_inner());
        let mut fds = [PollFd::new(guard.exit_fd(), PollFlags::POLLIN)];
        !matches!(nix::poll::poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
    }

    /// Sends one request; returns the child's pid, or `None` when the runner is gone.
    fn dispatch(&self, payload: &[u8], fds: &[RawFd]) -> io::Result<Option<Pid>> {
        let sock = self.sock.lock().unwrap_or_else(|e| e.into_inner());
        let Some(sock) = sock.as_ref() else {
            return Ok(None);
        };
        let iov = [io::IoSlice::new(payload)];
        let cmsg = [ControlMessage::ScmRights(fds)];
        match sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None) {
            Ok(_) => {}
            Err(Errno::EPIPE | Errno::ECONNRESET | Errno::ENOTCONN | Errno::ECONNREFUSED) => {
                return Ok(None)
            }
            Err(e) => return Err(e.into()),
        }
        let mut ack = [0u8; 4];
        loop {
            match recv(sock.as_raw_fd(), &mut ack, MsgFlags::empty()) {
                Ok(4) => return Ok(Some(Pid::from_raw(i32::from_ne_bytes(ack)))),
                Ok(_) => return Ok(None),
                Err(Errno::EINTR) => continue,
                Err(Errno::ECONNRESET) => return Ok(None),
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn kill_child(&self, pid: Pid) {
        let sock = self.sock.lock().unwrap_or_else(|e| e.into_inner());
        let Some(sock) = sock.as_ref() else { return };
        let mut msg = vec![b'K'];
        msg.extend_from_slice(&pid.as_raw().to_ne_bytes());
        let _ = nix::sys::socket::send(sock.as_raw_fd(), &msg, MsgFlags::MSG_NOSIGNAL);
    }
}

impl Drop for WarmRunner {
    fn drop(&mut self) {
        // Closing the socket tells the runner to exit once its children are done; give it
        // a moment, then the guard kills and reaps it.
        drop(
            self.sock
                .get_mut()
                .unwrap_or_else(|e| e.into_inner())
                .take(),
        );
        let guard = self.guard.get_mut().unwrap_or_else(|e| e.into_inner());
        let mut fds = [PollFd::new(guard.exit_fd(), PollFlags::POLLIN)];
        let _ = nix::poll::poll(&mut fds, PollTimeout::from(1000u16));
        let _ = waitpid(self.pid, Some(WaitPidFlag::WNOHANG));
    }
}

/// One command running in a child of a warm runner.
struct WarmChild<'r> {
    runner: &'r WarmRunner,
    pid: Pid,
    status: OwnedFd,
}

impl RunnerProcess for WarmChild<'_> {
    fn exit_fd(&self) -> BorrowedFd<'_> {
        self.status.as_fd()
    }

    fn kill(&self) {
        self.runner.kill_child(self.pid);
    }

    fn finish(&mut self) -> io::Result<ExitInfo> {
        let mut raw = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            match nix::unistd::read(&self.status, &mut raw[got..]) {
                Ok(0) => {
                    return Err(io::Error::other(
                        "the warm runner ended before reporting the command's exit status",
                    ))
                }
                Ok(n) => got += n,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        let status = i32::from_ne_bytes(raw);
        Ok(if libc::WIFSIGNALED(status) {
            ExitInfo::Signaled {
                signal: libc::WTERMSIG(status),
                core_dumped: libc::WCOREDUMP(status),
            }
        } else {
            ExitInfo::Exited(libc::WEXITSTATUS(status))
        })
    }
}

/// Runs one call through the pool.
pub(crate) fn invoke(
    pool: &WarmPool,
    call: &Call<'_>,
    prepared: &Prepared,
    args: Args,
    record: &crate::observe::CallRecord,
) -> Result<Value, Error> {
    let stdio = StdioPlan::new(call);
    let mut envelope: Envelope = envelope_for(call, prepared, args, &stdio);
    // Our extension without a placement (the warm runner applied it once): it marks the
    // envelope as ours, so that the command reads its own argument shapes, never osctld's
    // (`crate::osctld`), and that the runner's checks of our envelopes apply.
    envelope.ctl = Some(Extension {
        version: PROTOCOL_VERSION,
        placement: None,
        parent_pid: None,
        warm: None,
        container_path: call.container().container_path.clone(),
        lock_fd: None,
    });
    let mut payload = vec![b'R'];
    payload.extend_from_slice(&envelope.to_vec());
    if payload.len() > MAX_WARM_REQUEST {
        return super::invoke_cold(
            call,
            prepared,
            Args::new(envelope.args, envelope.kwargs),
            record,
        );
    }
    // A runner that died (idle timeout, crash, its starting thread gone) is replaced once.
    for _ in 0..2 {
        let runner = pool.get(call, prepared)?;
        let (reply_r, reply_w) =
            pipe2(OFlag::O_CLOEXEC).map_err(|e| prepared.setup("creating a pipe")(e.into()))?;
        let (stderr_r, stderr_w) =
            pipe2(OFlag::O_CLOEXEC).map_err(|e| prepared.setup("creating a pipe")(e.into()))?;
        let (status_r, status_w) =
            pipe2(OFlag::O_CLOEXEC).map_err(|e| prepared.setup("creating a pipe")(e.into()))?;
        let mut fds = vec![
            stderr_w.as_raw_fd(),
            reply_w.as_raw_fd(),
            status_w.as_raw_fd(),
        ];
        fds.extend(stdio.fds.iter().map(|(fd, _)| fd.as_raw_fd()));
        let pid = runner
            .dispatch(&payload, &fds)
            .map_err(prepared.setup("talking to the warm runner"))?;
        drop((reply_w, stderr_w, status_w));
        let Some(pid) = pid else {
            pool.forget(&runner);
            continue;
        };
        record.spawned(pid.as_raw());
        let mut child = WarmChild {
            runner: &runner,
            pid,
            status: status_r,
        };
        let channels = Channels {
            envelope: None,
            reply: reply_r,
            stderr: stderr_r,
        };
        let outcome = converse(
            &mut child,
            channels,
            &[],
            call.deadline,
            call.max_reply,
            call.cancel.as_deref(),
        )
        .map_err(prepared.setup("talking to the warm runner's child"))?;
        record.conversed(&outcome.timings);
        return finish(prepared, outcome, call);
    }
    Err(prepared.setup("starting a warm runner")(io::Error::other(
        "the warm runner exited right after it was started",
    )))
}
