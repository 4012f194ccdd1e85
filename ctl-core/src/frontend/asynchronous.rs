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
//! # Not yet
//!
//! Calls through a [`WarmPool`](crate::frontend::WarmPool) (`Call::warm`) are refused with
//! a clear error; terminal relays of the call's stdio use threads, as in the blocking API.

use std::io;
use std::os::fd::OwnedFd;
use std::time::Duration;

use serde_json::Value;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

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
    let prepared = Prepared::new(call, spec)?;
    run_prepared(call, &prepared, args).await
}

/// [`crate::frontend::call_runner`], async: runs `C`'s runner half and decodes its output.
pub async fn call_runner<C: Command>(call: &Call<'_>, args: Args) -> Result<C::Output, Error> {
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

async fn run_prepared(call: &Call<'_>, prepared: &Prepared, args: Args) -> Result<Value, Error> {
    if call.warm.is_some() {
        return Err(Error::arguments(
            prepared.command,
            "calls through a warm pool are not driven asynchronously yet: use the blocking API",
        ));
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
    let result = invoke_cold(call, prepared, args).await;
    if let Some(relay) = relay {
        relay.finish();
    }
    result
}

async fn invoke_cold(call: &Call<'_>, prepared: &Prepared, args: Args) -> Result<Value, Error> {
    let Started {
        child,
        channels,
        envelope,
    } = start_cold(call, prepared, args)?;
    let outcome = converse(child, channels, envelope, call.deadline, call.max_reply)
        .await
        .map_err(prepared.setup("talking to the runner"))?;
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
