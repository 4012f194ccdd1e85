//! One call of a command from the daemon side: the container plus per-call options.

use std::os::fd::BorrowedFd;
use std::path::PathBuf;
use std::time::Duration;

use std::sync::Arc;

use crate::command::Placement;
use crate::container::Container;
use crate::frontend::cancel::Cancellation;
use crate::frontend::{Launcher, WarmPool};
use crate::lock::ContainerLock;
use crate::reply::DEFAULT_MAX_REPLY_BYTES;

/// The frontend's view of one call: which container, and how to run the runner.
///
/// Cheap to build and to clone; the builder methods return a modified copy, so a frontend
/// can derive a call with other stdio or another placement from the one it received.
///
/// ```no_run
/// # use ctl_core::{Call, Container};
/// # use std::time::Duration;
/// # fn f(ct: &Container) {
/// let call = Call::new(ct).deadline(Duration::from_secs(30));
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Call<'a> {
    pub(crate) ct: &'a Container,
    pub(crate) stdin: Option<BorrowedFd<'a>>,
    pub(crate) stdout: Stdio<'a>,
    pub(crate) stderr: Stdio<'a>,
    pub(crate) deadline: Option<Duration>,
    pub(crate) placement: Option<Placement>,
    pub(crate) runner: Option<PathBuf>,
    pub(crate) max_reply: usize,
    pub(crate) own_process_group: bool,
    pub(crate) warm: Option<&'a WarmPool>,
    pub(crate) launcher: Option<&'a Launcher>,
    /// The container's lock this call runs under (taken by an outer frontend, or given
    /// with [`Call::under_lock`]): nested calls do not take it again.
    pub(crate) lock: Option<Arc<ContainerLock>>,
    /// [`Call::unlocked`].
    pub(crate) unlocked: bool,
    pub(crate) cancel: Option<Arc<Cancellation>>,
}

/// Where the command's output goes.
#[derive(Clone, Copy, Debug)]
pub enum Stdio<'a> {
    /// The daemon's own stdout/stderr (osctld's default).
    Inherit,
    /// Nowhere: the runner gets no such fd.
    Null,
    /// This fd.
    Fd(BorrowedFd<'a>),
}

impl<'a> Call<'a> {
    /// A call on `ct` with osctld's defaults: no stdin, the daemon's stdout and stderr, no
    /// deadline, the command's own placement.
    pub fn new(ct: &'a Container) -> Call<'a> {
        Call {
            ct,
            stdin: None,
            stdout: Stdio::Inherit,
            stderr: Stdio::Inherit,
            deadline: None,
            placement: None,
            runner: None,
            max_reply: DEFAULT_MAX_REPLY_BYTES,
            own_process_group: true,
            warm: None,
            launcher: None,
            lock: None,
            unlocked: false,
            cancel: None,
        }
    }

    /// The container.
    pub fn container(&self) -> &'a Container {
        self.ct
    }

    /// The command's input, as set with [`Call::stdin`]; for frontends that consume it
    /// themselves (Runscript reads its script from it).
    pub fn stdin_fd(&self) -> Option<BorrowedFd<'a>> {
        self.stdin
    }

    /// Where the command's output goes, as set with [`Call::stdout`]; for frontends that
    /// relay it themselves (an interactive Exec).
    pub fn stdout_stdio(&self) -> Stdio<'a> {
        self.stdout
    }

    /// The command's input.
    pub fn stdin(mut self, fd: Option<BorrowedFd<'a>>) -> Self {
        self.stdin = fd;
        self
    }

    /// The command's output.
    pub fn stdout(mut self, stdio: Stdio<'a>) -> Self {
        self.stdout = stdio;
        self
    }

    /// The command's error output.
    pub fn stderr(mut self, stdio: Stdio<'a>) -> Self {
        self.stderr = stdio;
        self
    }

    /// Kill the runner (and its process group) and fail with [`crate::ErrorKind::Timeout`] when
    /// the call takes longer. `None` waits forever, as osctld does.
    pub fn deadline(mut self, deadline: impl Into<Option<Duration>>) -> Self {
        self.deadline = deadline.into();
        self
    }

    /// The per-call deadline, if any.
    pub fn deadline_value(&self) -> Option<Duration> {
        self.deadline
    }

    /// Run the runner half in this placement instead of the command's default (osctld's
    /// Stop picks exec or fork depending on the container's state).
    pub fn placement(mut self, placement: Placement) -> Self {
        self.placement = Some(placement);
        self
    }

    /// Start runners as this launcher says (runner binary, spawning into the cgroup, kept
    /// `cgroup.procs` files) instead of [`Launcher::global`].
    pub fn launcher(mut self, launcher: &'a Launcher) -> Self {
        self.launcher = Some(launcher);
        self
    }

    /// The launcher this call starts runners with.
    pub(crate) fn launcher_or_global(&self) -> &'a Launcher {
        match self.launcher {
            Some(launcher) => launcher,
            None => Launcher::global(),
        }
    }

    /// Use this runner binary instead of the launcher's (see [`Launcher::runner_path`]).
    pub fn runner(mut self, path: impl Into<PathBuf>) -> Self {
        self.runner = Some(path.into());
        self
    }

    /// Bound on the runner's reply line (default 4 MiB).
    pub fn max_reply(mut self, bytes: usize) -> Self {
        self.max_reply = bytes;
        self
    }

    /// Kept for compatibility; has no effect. Every runner leads a session and a process
    /// group of its own, with no controlling terminal (a runner sharing the caller's
    /// terminal would let the container's root type into it), and a deadline kills that
    /// whole group. A terminal among the call's stdio is relayed by the frontend instead
    /// of being handed to the runner.
    pub fn own_process_group(mut self, own: bool) -> Self {
        self.own_process_group = own;
        self
    }

    /// Run the command through a warm runner of this pool (one per container and
    /// placement, already placed, forking a child per command) instead of starting a
    /// runner process. Results are the same; see [`WarmPool`] for the trade-offs.
    pub fn warm(mut self, pool: &'a WarmPool) -> Self {
        self.warm = Some(pool);
        self
    }

    /// Start a fresh runner for this call even if the call came with a warm pool.
    pub fn cold(mut self) -> Self {
        self.warm = None;
        self
    }

    /// Run under this lock of the container, held by the caller (a daemon that makes
    /// several calls in a row under one lock, see [`ContainerLock::acquire`]): the call
    /// takes no lock of its own.
    pub fn under_lock(mut self, lock: Arc<ContainerLock>) -> Self {
        self.lock = Some(lock);
        self
    }

    /// Take no container lock for this call (a caller that orders its calls itself, as
    /// osctld does with its own locks). See [`crate::lock`].
    pub fn unlocked(mut self) -> Self {
        self.unlocked = true;
        self
    }

    /// This call under the container's lock in `mode`, taken now for `command` (waiting up
    /// to the deadline, which is then what is left of it): for a frontend that must do
    /// something *before* it takes the lock (Runscript reads its script from the caller
    /// first) and so declares `lock = none`. Returns a plain copy when the call runs under a
    /// lock already or is [unlocked](Self::unlocked). See [`crate::lock`].
    pub fn locked(
        &self,
        command: &'static str,
        mode: crate::LockMode,
    ) -> Result<Call<'a>, crate::Error> {
        Ok(crate::frontend::lock_as(self, command, mode)?.unwrap_or_else(|| self.clone()))
    }

    /// The lock this call runs under, if any.
    pub fn held_lock(&self) -> Option<&Arc<ContainerLock>> {
        self.lock.as_ref()
    }

    /// Cancel this (blocking) call when `cancel` is raised from another thread: the runner
    /// in flight is killed and reaped and the call ends with
    /// [`ErrorKind::Cancelled`](crate::ErrorKind::Cancelled). The async API does this by
    /// itself when its future is dropped.
    pub fn cancel_with(mut self, cancel: Arc<Cancellation>) -> Self {
        self.cancel = Some(cancel);
        self
    }

    /// Whether the call was cancelled ([`Call::cancel_with`]).
    pub fn is_cancelled(&self) -> bool {
        self.cancel.as_ref().is_some_and(|c| c.is_cancelled())
    }
}
