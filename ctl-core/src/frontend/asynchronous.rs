//! The async frontend (feature `tokio`): the same calls as [`crate::invoke`] and
//! [`crate::frontend::call_runner`], driven on the tokio reactor instead of a blocking
//! `poll`, so that a daemon runs thousands of them on a few threads.
//!
//! # What is shared
//!
//! Everything but the waiting: the call is prepared, the runner started and the result
//! read by the blocking frontend's code (`start_cold`, `finish`); the conversation is the
//! same state machine (`exchange::Conversation`), whose fds are registered with the
//! reactor here instead of polled. Errors and results are the blocking API's.
//!
//! # Cancellation
//!
//! Dropping the future before it completes (a client went away, a `select!` took another
//! branch, a `timeout` fired) kills the runner's process group with SIGKILL, as a deadline
//! does, and reaps it: on the runtime, by a task that waits for the runner's pidfd, so no
//! thread blocks and no zombie stays; without a runtime (the future dropped elsewhere), at
//! once. The runner's own children (the attaching worker, the attached program) die with
//! it: they are in its process group, or end by their parent-death signal.
//!
//! # What holds a thread
//!
//! Runner halves ([`invoke`], [`call_runner`], the generated `runner_async`, and
//! `run_with_async` of commands without a frontend of their own) run on the reactor: no
//! thread per call. Two kinds of call run their blocking code on tokio's blocking pool
//! instead, one thread each while in flight, cancelled through a
//! [`Cancellation`](super::cancel::Cancellation) when the future is dropped: custom
//! frontends ([`run_frontend`]: Exec, Stop, State, Freeze, ...; their runners are killed
//! at once) and calls through a [`WarmPool`](crate::frontend::WarmPool) (the warm
//! runner's socket pairs requests and answers under a lock). Terminal relays of the
//! call's stdio use threads, as in the blocking API.
//!
//! # Locking
//!
//! The container's lock ([`crate::lock`]) is waited for on the timer, before anything
//! else, and held by the future (or the blocking thread it handed the call to) until the
//! call ends.

use std::io;
use std::os::fd::OwnedFd;
use std::time::Duration;

use serde_json::Value;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tracing::Instrument;

use super::exchange::{ChildGuard, Conversation, Ending, Outcome, Step};
use super::{finish, start_cold, Prepared, Started};
use crate::args::Args;
use crate::call::Call;
use crate::command::{Command, CommandSpec};
use crate::error::{Error, ProtocolError};

/// [`crate::invoke`], async: runs the runner half of `spec` and returns its raw JSON output.
pub async fn invoke(
    call: &Call<'_>,
    spec: &'static CommandSpec,
    args: Args,
) -> Result<Value, Error> {
    let locked = lock_for(call, spec).await?;
    let call = locked.as_ref().unwrap_or(call);
    let prepared = Prepared::new(call, spec)?;
    run_prepared(call, &prepared, args).await
}

/// [`crate::frontend::call_runner`], async: runs `C`'s runner half and decodes its output.
pub async fn call_runner<C: Command>(call: &Call<'_>, args: Args) -> Result<C::Output, Error> {
    let locked = lock_for(call, C::SPEC).await?;
    let call = locked.as_ref().unwrap_or(call);
    let prepared = Prepared::new(call, C::SPEC)?;
    let value = run_prepared(call, &prepared, args).await?;
    serde_json::from_value(value).map_err(|e| {
        Error::protocol(
            C::SPEC.name,
            prepared.path.clone(),
            ProtocolError::BadOutput {
                expected: std::any::type_name::<C::Output>(),
                detail: e.to_string(),
            },
        )
    })
}

/// [`crate::invoke_by_name`], async: runs the command registered as `name` through its
/// frontend, with `args` as they travel in an envelope, and returns its output as JSON.
///
/// A command without a frontend of its own runs on the reactor like [`invoke`]. A custom
/// frontend (Exec, Stop, State, ...) is blocking code: it runs on tokio's blocking pool
/// ([`run_frontend`]), its container lock taken on the reactor first.
pub async fn invoke_by_name(call: &Call<'_>, name: &str, args: Args) -> Result<Value, Error> {
    let refuse = |message: String| Error::arguments(name, message);
    let registration = match crate::registry::Registry::find(name) {
        Ok(Some(registration)) => registration,
        Ok(None) => return Err(refuse(format!("unknown command {name:?}"))),
        Err(e) => return Err(refuse(e.to_string())),
    };
    let spec = registration.spec;
    if let Some(frontend_async) = registration.frontend_async {
        frontend_async(call, args).await
    } else if spec.custom_frontend {
        run_frontend_spec(call, spec, registration.frontend, args).await
    } else {
        invoke(call, spec, args).await
    }
}

/// Runs the blocking frontend `frontend` of `C` (its by-name form) for this call on tokio's
/// blocking pool, and returns its output as JSON: the async twin of a custom frontend.
///
/// The container's lock is taken first, on the reactor. The frontend then runs with an
/// owned copy of the call (the container, duplicates of its stdio fds, the launcher
/// handle), so that it may outlive this future: dropping the future raises the call's
/// [`Cancellation`](super::cancel::Cancellation), which kills and reaps the runner in
/// flight at once (the frontend's `poll` waits for it) and makes every later runner start
/// and lock wait of that frontend fail with [`ErrorKind::Cancelled`](crate::ErrorKind::Cancelled).
/// The thread is busy for as long as the frontend runs: unlike runner halves, custom
/// frontends hold one blocking thread per call in flight.
pub async fn run_frontend<C: Command>(
    call: &Call<'_>,
    frontend: crate::command::FrontendFn,
    args: Args,
) -> Result<Value, Error> {
    run_frontend_spec(call, C::SPEC, frontend, args).await
}

async fn run_frontend_spec(
    call: &Call<'_>,
    spec: &'static CommandSpec,
    frontend: crate::command::FrontendFn,
    args: Args,
) -> Result<Value, Error> {
    let locked = lock_for(call, spec).await?;
    let call = locked.as_ref().unwrap_or(call);
    on_blocking_thread(call, spec.name, move |call| frontend(call, args)).await
}

/// Runs `work` with an owned copy of `call` on tokio's blocking pool; dropping the future
/// raises the copy's cancellation (see [`run_frontend`]).
async fn on_blocking_thread(
    call: &Call<'_>,
    command: &'static str,
    work: impl FnOnce(&Call<'_>) -> Result<Value, Error> + Send + 'static,
) -> Result<Value, Error> {
    let cancel = std::sync::Arc::new(
        super::cancel::Cancellation::new()
            .map_err(|e| Error::setup(command, "creating the call's cancellation", e))?,
    );
    let mut owned = OwnedCall::of(call, cancel.clone())
        .map_err(|e| Error::setup(command, "duplicating the call's stdio", e))?;
    // Raised if this future is dropped before the work is done.
    let _cancel_on_drop = CancelOnDrop(cancel);
    let queued = std::time::Instant::now();
    let task = tokio::task::spawn_blocking(move || {
        // A call dropped while its task waited for a thread does nothing (and lets go of
        // its lock at once); the wait counts against the deadline.
        if owned.cancel.is_cancelled() {
            return Err(Error::new(command, crate::ErrorKind::Cancelled));
        }
        owned.deadline = owned.deadline.map(|d| d.saturating_sub(queued.elapsed()));
        work(&owned.call())
    });
    match task.await {
        Ok(result) => result,
        Err(e) => Err(Error::command(
            command,
            format!("the call's thread failed: {e}"),
        )),
    }
}

/// Runs short blocking work of an async frontend (a cgroup walk, a file read) on tokio's
/// blocking pool and waits for it without blocking the reactor.
pub async fn blocking<T: Send + 'static>(
    command: &'static str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::command(command, format!("the call's thread failed: {e}")))
}

/// Raises the cancellation when dropped (the future went away before the end).
struct CancelOnDrop(std::sync::Arc<super::cancel::Cancellation>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// A [`Call`] that owns what it refers to, for a frontend running on another thread.
struct OwnedCall {
    ct: crate::Container,
    stdin: Option<OwnedFd>,
    stdout: OwnedStdio,
    stderr: OwnedStdio,
    deadline: Option<Duration>,
    placement: Option<crate::Placement>,
    runner: Option<std::path::PathBuf>,
    max_reply: usize,
    own_process_group: bool,
    launcher: Option<crate::Launcher>,
    warm: Option<super::WarmPool>,
    lock: Option<std::sync::Arc<crate::lock::ContainerLock>>,
    unlocked: bool,
    cancel: std::sync::Arc<super::cancel::Cancellation>,
}

enum OwnedStdio {
    Inherit,
    Null,
    Fd(OwnedFd),
}

impl OwnedStdio {
    fn of(stdio: crate::Stdio<'_>) -> io::Result<OwnedStdio> {
        Ok(match stdio {
            crate::Stdio::Inherit => OwnedStdio::Inherit,
            crate::Stdio::Null => OwnedStdio::Null,
            crate::Stdio::Fd(fd) => OwnedStdio::Fd(fd.try_clone_to_owned()?),
        })
    }

    fn borrow(&self) -> crate::Stdio<'_> {
        match self {
            OwnedStdio::Inherit => crate::Stdio::Inherit,
            OwnedStdio::Null => crate::Stdio::Null,
            OwnedStdio::Fd(fd) => crate::Stdio::Fd(std::os::fd::AsFd::as_fd(fd)),
        }
    }
}

impl OwnedCall {
    fn of(
        call: &Call<'_>,
        cancel: std::sync::Arc<super::cancel::Cancellation>,
    ) -> io::Result<OwnedCall> {
        Ok(OwnedCall {
            ct: call.ct.clone(),
            stdin: call.stdin.map(|fd| fd.try_clone_to_owned()).transpose()?,
            stdout: OwnedStdio::of(call.stdout)?,
            stderr: OwnedStdio::of(call.stderr)?,
            deadline: call.deadline,
            placement: call.placement,
            runner: call.runner.clone(),
            max_reply: call.max_reply,
            own_process_group: call.own_process_group,
            launcher: call.launcher.cloned(),
            warm: call.warm.cloned(),
            lock: call.lock.clone(),
            unlocked: call.unlocked,
            cancel,
        })
    }

    fn call(&self) -> Call<'_> {
        Call {
            ct: &self.ct,
            stdin: self.stdin.as_ref().map(std::os::fd::AsFd::as_fd),
            stdout: self.stdout.borrow(),
            stderr: self.stderr.borrow(),
            deadline: self.deadline,
            placement: self.placement,
            runner: self.runner.clone(),
            max_reply: self.max_reply,
            own_process_group: self.own_process_group,
            warm: self.warm.as_ref(),
            launcher: self.launcher.as_ref(),
            lock: self.lock.clone(),
            unlocked: self.unlocked,
            cancel: Some(self.cancel.clone()),
        }
    }
}

/// The call an async frontend of `C` runs with (`#[container_command(async_frontend = ...)]`):
/// `None` to use it as it is, else a copy under the container's lock as `C` declares it.
#[doc(hidden)]
pub async fn lock_command<'a, C: Command>(call: &Call<'a>) -> Result<Option<Call<'a>>, Error> {
    lock_for(call, C::SPEC).await
}

/// [`crate::frontend::lock_for`], waiting on the timer.
async fn lock_for<'a>(
    call: &Call<'a>,
    spec: &'static CommandSpec,
) -> Result<Option<Call<'a>>, Error> {
    if !super::needs_lock(call, spec.name, spec.lock)? {
        return Ok(None);
    }
    let started = std::time::Instant::now();
    let lock = crate::lock::ContainerLock::acquire_async(call, spec.name, spec.lock).await;
    crate::observe::lock_waited(spec.name, spec.lock, started.elapsed(), &lock);
    lock?
        .map(|lock| super::locked_call(call, spec.name, lock, started))
        .transpose()
}

async fn run_prepared(call: &Call<'_>, prepared: &Prepared, args: Args) -> Result<Value, Error> {
    if call.warm.is_some() {
        // A warm call's conversation is the blocking one (its runner is shared through a
        // socket whose requests and acknowledgements are paired under a lock): it runs on
        // the blocking pool, cancelled like a custom frontend.
        let prepared = prepared.clone();
        return on_blocking_thread(call, prepared.command, move |call| {
            super::run_prepared(call, &prepared, args)
        })
        .await;
    }
    let relay = crate::terminal::StdioRelay::start(call)
        .map_err(prepared.setup("relaying the caller's terminal"))?;
    let relayed;
    let call = match &relay {
        Some(relay) => {
            relayed = relay.apply(call);
            &relayed
        }
        None => call,
    };
    let record =
        crate::observe::CallRecord::start(prepared.command, call.ct, prepared.placement, false);
    let result = invoke_cold(call, prepared, args, &record)
        .instrument(record.span().clone())
        .await;
    record.finish(&result);
    if let Some(relay) = relay {
        relay.finish();
    }
    result
}

async fn invoke_cold(
    call: &Call<'_>,
    prepared: &Prepared,
    args: Args,
    record: &crate::observe::CallRecord,
) -> Result<Value, Error> {
    let Started {
        child,
        channels,
        envelope,
    } = start_cold(call, prepared, args)?;
    record.spawned(child.pid.as_raw());
    let outcome = converse(child, channels, envelope, call.deadline, call.max_reply)
        .await
        .map_err(prepared.setup("talking to the runner"))?;
    record.conversed(&outcome.timings);
    finish(prepared, outcome, call)
}

/// A runner that is killed and reaped if the future owning it is dropped.
struct Cancellable {
    child: Option<ChildGuard>,
    exit: AsyncFd<OwnedFd>,
}

impl Drop for Cancellable {
    fn drop(&mut self) {
        let Some(child) = self.child.take() else {
            return;
        };
        child.kill();
        match tokio::runtime::Handle::try_current() {
            // Reaped once its pidfd says it has exited: no thread waits meanwhile.
            Ok(runtime) => {
                let exit = match self.exit.get_ref().try_clone() {
                    Ok(fd) => fd,
                    // No fd for the wait: the guard reaps it here (it was just killed).
                    Err(_) => return drop(child),
                };
                runtime.spawn(async move {
                    if let Ok(exit) = register(exit, Interest::READABLE) {
                        let _ = exit.readable().await;
                    }
                    drop(child);
                });
            }
            Err(_) => drop(child),
        }
    }
}

/// `fd`, registered with the reactor for `interest`.
fn register(fd: OwnedFd, interest: Interest) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: the `AsyncFd` owns `fd`, which stays open (and the same file) until the
    // `AsyncFd` is dropped, which deregisters it first.
    Ok(unsafe { AsyncFd::register_with_interest(fd, interest) }?)
}

/// Which fd of the conversation is ready.
enum Ready {
    Exited,
    Envelope,
    Reply,
    Stderr,
    Deadline,
}

/// Waits for `fd` to be ready for `interest` and clears that readiness: the step that
/// follows reads or writes until `EAGAIN` (or closes the fd), so an event after that
/// readiness is never lost. Never completes for `None`.
async fn ready(fd: Option<&AsyncFd<OwnedFd>>, interest: Interest) -> io::Result<()> {
    let Some(fd) = fd else {
        return std::future::pending().await;
    };
    let mut guard = fd.ready(interest).await?;
    guard.clear_ready();
    Ok(())
}

/// The conversation of [`super::exchange::converse`], on the reactor.
async fn converse(
    child: ChildGuard,
    channels: super::exchange::Channels,
    envelope: Vec<u8>,
    deadline: Option<Duration>,
    max_reply: usize,
) -> io::Result<Outcome> {
    let exit = register(child.exit_fd().try_clone_to_owned()?, Interest::READABLE)?;
    let mut runner = Cancellable {
        child: Some(child),
        exit,
    };
    let mut conversation = Conversation::start_with(channels, envelope, max_reply, |fd| {
        register(fd, Interest::READABLE | Interest::WRITABLE)
    })?;
    let sleep = async {
        match deadline {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(sleep);
    let ending = loop {
        let which = tokio::select! {
            r = ready(Some(&runner.exit), Interest::READABLE) => r.map(|()| Ready::Exited),
            r = ready(conversation.envelope_fd(), Interest::WRITABLE) => r.map(|()| Ready::Envelope),
            r = ready(conversation.reply_fd(), Interest::READABLE) => r.map(|()| Ready::Reply),
            r = ready(conversation.stderr_fd(), Interest::READABLE) => r.map(|()| Ready::Stderr),
            () = &mut sleep => Ok(Ready::Deadline),
        }?;
        match which {
            Ready::Envelope => conversation.envelope_writable(),
            Ready::Reply => {
                if let Step::Done(ending) = conversation.reply_readable() {
                    break ending;
                }
            }
            Ready::Stderr => conversation.stderr_readable(),
            Ready::Exited => {
                if let Step::Done(ending) = conversation.runner_exited() {
                    break ending;
                }
            }
            Ready::Deadline => break Ending::TimedOut,
        }
    };
    let mut child = runner.child.take().expect("the runner is still guarded");
    if ending != Ending::Exited {
        // Killed, then waited for on the reactor (a killed runner may take a moment).
        child.kill();
        let _ = runner.exit.readable().await;
    }
    let status = child.reap()?;
    Ok(conversation.outcome(status, ending))
}

// `ChildGuard`'s pidfd for the reactor.
impl ChildGuard {
    fn exit_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        super::exchange::RunnerProcess::exit_fd(self)
    }
}

/// The futures are `Send`: a multi-threaded runtime may move them between its threads.
#[allow(dead_code)]
fn assert_send(call: &Call<'_>, spec: &'static CommandSpec) {
    fn is_send<T: Send>(_: &T) {}
    is_send(&invoke(call, spec, Args::default()));
}
