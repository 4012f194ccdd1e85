//! The frontend's side of one runner conversation: write the envelope, read the reply line
//! and the runner's stderr, notice its exit, enforce the deadline — all in one `poll` loop
//! so that no pipe can fill up and block either side.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, killpg, Signal};
use nix::sys::socket::{send, MsgFlags};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use crate::error::ExitInfo;

/// How much of the runner's stderr is kept for error messages.
const STDERR_TAIL_BYTES: usize = 8 * 1024;

/// A runner process as the conversation sees it: something whose end is signalled by an
/// fd becoming readable, that can be killed, and whose exit status can be collected.
pub(crate) trait RunnerProcess {
    /// Readable once the process has ended.
    fn exit_fd(&self) -> BorrowedFd<'_>;
    /// SIGKILL to the runner and everything in its process group.
    fn kill(&self);
    /// The exit status; called once the exit fd is readable, or after `kill`.
    fn finish(&mut self) -> io::Result<ExitInfo>;
}

/// A runner spawned by this process; killed and reaped on drop unless already reaped, so
/// that no path (an error, a panic in the caller) leaves a zombie or a running runner.
pub(crate) struct ChildGuard {
    pub pid: Pid,
    pub own_group: bool,
    pidfd: OwnedFd,
    reaped: bool,
}

impl RunnerProcess for ChildGuard {
    fn exit_fd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    fn kill(&self) {
        ChildGuard::kill(self)
    }

    fn finish(&mut self) -> io::Result<ExitInfo> {
        self.reap()
    }
}

impl ChildGuard {
    /// Guards a freshly spawned runner. Without a pidfd its end cannot be waited for in
    /// `poll`, so a runner whose pidfd cannot be opened is killed and reaped at once.
    pub fn watch(pid: Pid, own_group: bool) -> io::Result<ChildGuard> {
        match super::spawn::pidfd_open(pid) {
            Ok(pidfd) => Ok(ChildGuard {
                pid,
                own_group,
                pidfd,
                reaped: false,
            }),
            Err(e) => {
                let _ = kill(pid, Signal::SIGKILL);
                let _ = waitpid(pid, None);
                Err(e)
            }
        }
    }

    /// SIGKILL to the runner, and to its process group when it has one of its own.
    pub fn kill(&self) {
        if self.own_group {
            let _ = killpg(self.pid, Signal::SIGKILL);
        }
        let _ = kill(self.pid, Signal::SIGKILL);
    }

    /// Waits for the runner to end.
    pub fn reap(&mut self) -> io::Result<ExitInfo> {
        loop {
            match waitpid(self.pid, None) {
                Ok(WaitStatus::Exited(_, code)) => {
                    self.reaped = true;
                    return Ok(ExitInfo::Exited(code));
                }
                Ok(WaitStatus::Signaled(_, sig, core)) => {
                    self.reaped = true;
                    return Ok(ExitInfo::Signaled {
                        signal: sig as i32,
                        core_dumped: core,
                    });
                }
                Ok(_) => continue,
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    self.reaped = true;
                    return Err(e.into());
                }
            }
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if !self.reaped {
            self.kill();
            let _ = self.reap();
        }
    }
}

/// What the conversation produced.
pub(crate) struct Outcome {
    /// The reply bytes up to and excluding the newline, if a newline came.
    pub line: Option<Vec<u8>>,
    /// Bytes read on the return fd without a newline.
    pub partial: Vec<u8>,
    pub status: ExitInfo,
    pub stderr_tail: Vec<u8>,
    pub ending: Ending,
    pub timings: Timings,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ending {
    Exited,
    TimedOut,
    ReplyTooLarge,
    /// The call's [`Cancellation`](super::cancel::Cancellation) was raised.
    Cancelled,
}

pub(crate) struct Channels {
    /// Where the envelope goes; `None` when it was already delivered (warm runners).
    pub envelope: Option<OwnedFd>,
    pub reply: OwnedFd,
    pub stderr: OwnedFd,
}

/// One conversation's state, driven by whoever waits for the fds: [`converse`] with
/// `poll(2)` here, the async frontend on a reactor. Every step reads or writes what is
/// available now (the fds are non-blocking) and never waits.
///
/// `F` holds each fd: an `OwnedFd` for `poll`, a reactor's registration of one for the
/// async frontend. Dropping it (when the conversation is done with that fd) closes the fd.
pub(crate) struct Conversation<F: AsFd = OwnedFd> {
    envelope: Vec<u8>,
    written: usize,
    env_fd: Option<F>,
    reply_fd: Option<F>,
    stderr_fd: Option<F>,
    reply: Vec<u8>,
    line: Option<Vec<u8>>,
    tail: Vec<u8>,
    max_reply: usize,
    started: Instant,
    envelope_at: Option<Instant>,
    reply_at: Option<Instant>,
}

/// When the steps of a conversation happened, from its start (the runner just spawned):
/// the envelope fully written (the runner reads it as its first act), the reply line
/// read, the runner's exit seen. For traces and metrics (`crate::observe`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timings {
    pub envelope: Option<Duration>,
    pub reply: Option<Duration>,
    pub exit: Duration,
}

/// What a step of a [`Conversation`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// More to wait for.
    Continue,
    /// Done: the runner exited (its output drained), or the reply grew too large.
    Done(Ending),
}

impl<F: AsFd> Conversation<F> {
    /// Starts a conversation: the fds become non-blocking, each is wrapped by `hold`, and
    /// the envelope (small) goes out at once as far as the socket takes it.
    pub fn start_with(
        channels: Channels,
        envelope: Vec<u8>,
        max_reply: usize,
        hold: impl Fn(OwnedFd) -> io::Result<F>,
    ) -> io::Result<Self> {
        for fd in channels
            .envelope
            .iter()
            .chain([&channels.reply, &channels.stderr])
        {
            set_nonblocking(fd)?;
        }
        let mut conversation = Conversation {
            envelope,
            written: 0,
            env_fd: channels.envelope.map(&hold).transpose()?,
            reply_fd: Some(hold(channels.reply)?),
            stderr_fd: Some(hold(channels.stderr)?),
            reply: Vec::new(),
            line: None,
            tail: Vec::new(),
            max_reply,
            started: Instant::now(),
            envelope_at: None,
            reply_at: None,
        };
        conversation.envelope_writable();
        Ok(conversation)
    }

    /// The envelope socket, while envelope bytes remain to be written.
    pub fn envelope_fd(&self) -> Option<&F> {
        self.env_fd.as_ref()
    }

    /// The reply pipe, until the reply line (or EOF) came.
    pub fn reply_fd(&self) -> Option<&F> {
        self.reply_fd.as_ref()
    }

    /// The runner's stderr, until EOF.
    pub fn stderr_fd(&self) -> Option<&F> {
        self.stderr_fd.as_ref()
    }

    /// The envelope socket can take more.
    pub fn envelope_writable(&mut self) {
        write_envelope(&mut self.env_fd, &self.envelope, &mut self.written);
        if self.env_fd.is_none() && self.envelope_at.is_none() {
            self.envelope_at = Some(Instant::now());
        }
    }

    /// The reply pipe has something (or EOF).
    pub fn reply_readable(&mut self) -> Step {
        if read_reply(
            &mut self.reply_fd,
            &mut self.reply,
            &mut self.line,
            self.max_reply,
        ) {
            return Step::Done(Ending::ReplyTooLarge);
        }
        if self.line.is_some() && self.reply_at.is_none() {
            self.reply_at = Some(Instant::now());
        }
        Step::Continue
    }

    /// The stderr pipe has something (or EOF).
    pub fn stderr_readable(&mut self) {
        read_tail(&mut self.stderr_fd, &mut self.tail);
    }

    /// The runner exited: whatever it wrote before is in the pipes, drained now without
    /// waiting for EOF (a grandchild may still hold the write ends).
    pub fn runner_exited(&mut self) -> Step {
        let step = self.reply_readable();
        self.stderr_readable();
        match step {
            Step::Continue => Step::Done(Ending::Exited),
            done => done,
        }
    }

    /// The outcome, once done (`ending`), with the runner's exit status (`child` is killed
    /// first unless it exited by itself).
    pub fn finish(self, child: &mut dyn RunnerProcess, ending: Ending) -> io::Result<Outcome> {
        if ending != Ending::Exited {
            child.kill();
        }
        let status = child.finish()?;
        Ok(self.outcome(status, ending))
    }

    /// The outcome with the runner's exit status.
    pub fn outcome(self, status: ExitInfo, ending: Ending) -> Outcome {
        let since = |at: Option<Instant>| at.map(|at| at.duration_since(self.started));
        Outcome {
            timings: Timings {
                envelope: since(self.envelope_at),
                reply: since(self.reply_at),
                exit: self.started.elapsed(),
            },
            line: self.line,
            partial: self.reply,
            status,
            stderr_tail: self.tail,
            ending,
        }
    }
}

/// Drives a [`Conversation`] with `poll(2)` until the runner exits, the reply grows too
/// large or `deadline` passes.
pub(crate) fn converse(
    child: &mut dyn RunnerProcess,
    channels: Channels,
    envelope: &[u8],
    deadline: Option<Duration>,
    max_reply: usize,
    cancel: Option<&super::cancel::Cancellation>,
) -> io::Result<Outcome> {
    let started = Instant::now();
    let mut conversation =
        Conversation::start_with(channels, envelope.to_vec(), max_reply, |fd: OwnedFd| Ok(fd))?;
    let ending = loop {
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(d) => match d.checked_sub(started.elapsed()) {
                None => break Ending::TimedOut,
                Some(left) => {
                    PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32 + 1)
                        .unwrap_or(PollTimeout::MAX)
                }
            },
        };
        let mut fds = Vec::with_capacity(5);
        fds.push(PollFd::new(child.exit_fd(), PollFlags::POLLIN));
        let cancel_idx = cancel.map(|c| {
            fds.push(PollFd::new(c.fd(), PollFlags::POLLIN));
            fds.len() - 1
        });
        let env_idx = conversation.envelope_fd().map(|fd| {
            fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLOUT));
            fds.len() - 1
        });
        let reply_idx = conversation.reply_fd().map(|fd| {
            fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
            fds.len() - 1
        });
        let stderr_idx = conversation.stderr_fd().map(|fd| {
            fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
            fds.len() - 1
        });
        match nix::poll::poll(&mut fds, timeout) {
            Ok(0) => continue, // the deadline check at the top decides
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
        let ready = |i: Option<usize>| {
            i.and_then(|i| fds[i].revents())
                .is_some_and(|r| !r.is_empty())
        };
        let exited = ready(Some(0));
        let (env_ready, reply_ready, stderr_ready) =
            (ready(env_idx), ready(reply_idx), ready(stderr_idx));
        let cancelled = ready(cancel_idx);
        drop(fds);
        if cancelled {
            break Ending::Cancelled;
        }

        if env_ready {
            conversation.envelope_writable();
        }
        if reply_ready {
            if let Step::Done(ending) = conversation.reply_readable() {
                break ending;
            }
        }
        if stderr_ready {
            conversation.stderr_readable();
        }
        if exited {
            if let Step::Done(ending) = conversation.runner_exited() {
                break ending;
            }
        }
    };
    conversation.finish(child, ending)
}

pub(crate) fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

fn write_envelope<F: AsFd>(fd: &mut Option<F>, envelope: &[u8], written: &mut usize) {
    let Some(sock) = fd.as_ref() else { return };
    while *written < envelope.len() {
        match send(
            sock.as_fd().as_raw_fd(),
            &envelope[*written..],
            MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT,
        ) {
            Ok(n) => *written += n,
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => return,
            // The runner went away without reading: its exit status tells why.
            Err(_) => break,
        }
    }
    // Closing our end is the runner's end-of-input.
    *fd = None;
}

/// Reads what is available on the reply pipe. Returns `true` when the reply exceeds the
/// bound. Stops reading (closes the fd) once a full line arrived or at EOF.
fn read_reply<F: AsFd>(
    fd: &mut Option<F>,
    buf: &mut Vec<u8>,
    line: &mut Option<Vec<u8>>,
    max: usize,
) -> bool {
    let mut chunk = [0u8; 16 * 1024];
    while let Some(pipe) = fd.as_ref() {
        match nix::unistd::read(pipe.as_fd(), &mut chunk) {
            Ok(0) => *fd = None,
            Ok(n) => {
                let start = buf.len();
                buf.extend_from_slice(&chunk[..n]);
                if let Some(pos) = buf[start..].iter().position(|b| *b == b'\n') {
                    let rest = buf.split_off(start + pos);
                    *line = Some(std::mem::replace(buf, rest));
                    *fd = None;
                } else if buf.len() > max {
                    *fd = None;
                    return true;
                }
            }
            Err(Errno::EINTR) => continue,
            Err(_) => return false, // EAGAIN: nothing more for now
        }
    }
    false
}

fn read_tail<F: AsFd>(fd: &mut Option<F>, tail: &mut Vec<u8>) {
    let mut chunk = [0u8; 16 * 1024];
    while let Some(pipe) = fd.as_ref() {
        match nix::unistd::read(pipe.as_fd(), &mut chunk) {
            Ok(0) => *fd = None,
            Ok(n) => {
                tail.extend_from_slice(&chunk[..n]);
                if tail.len() > STDERR_TAIL_BYTES {
                    tail.drain(..tail.len() - STDERR_TAIL_BYTES);
                }
            }
            Err(Errno::EINTR) => continue,
            Err(_) => return,
        }
    }
}
