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
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ending {
    Exited,
    TimedOut,
    ReplyTooLarge,
}

pub(crate) struct Channels {
    /// Where the envelope goes; `None` when it was already delivered (warm runners).
    pub envelope: Option<OwnedFd>,
    pub reply: OwnedFd,
    pub stderr: OwnedFd,
}

pub(crate) fn converse(
    child: &mut dyn RunnerProcess,
    channels: Channels,
    envelope: &[u8],
    deadline: Option<Duration>,
    max_reply: usize,
) -> io::Result<Outcome> {
    let started = Instant::now();
    for fd in channels
        .envelope
        .iter()
        .chain([&channels.reply, &channels.stderr])
    {
        set_nonblocking(fd)?;
    }
    let mut env_fd = channels.envelope;
    let mut reply_fd = Some(channels.reply);
    let mut stderr_fd = Some(channels.stderr);
    let mut written = 0;
    let mut reply = Vec::new();
    let mut line = None;
    let mut tail = Vec::new();
    let mut ending = Ending::Exited;

    // The envelope is small: it normally goes out in one send, before any poll.
    write_envelope(&mut env_fd, envelope, &mut written);

    loop {
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(d) => match d.checked_sub(started.elapsed()) {
                None => {
                    ending = Ending::TimedOut;
                    break;
                }
                Some(left) => {
                    PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32 + 1)
                        .unwrap_or(PollTimeout::MAX)
                }
            },
        };
        let mut fds = Vec::with_capacity(4);
        fds.push(PollFd::new(child.exit_fd(), PollFlags::POLLIN));
        let env_idx = env_fd.as_ref().map(|fd| {
            fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLOUT));
            fds.len() - 1
        });
        let reply_idx = reply_fd.as_ref().map(|fd| {
            fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
            fds.len() - 1
        });
        let stderr_idx = stderr_fd.as_ref().map(|fd| {
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
        drop(fds);

        if env_ready {
            write_envelope(&mut env_fd, envelope, &mut written);
        }
        if reply_ready && read_reply(&mut reply_fd, &mut reply, &mut line, max_reply) {
            ending = Ending::ReplyTooLarge;
            break;
        }
        if stderr_ready {
            read_tail(&mut stderr_fd, &mut tail);
        }
        if exited {
            // Whatever the runner wrote before exiting is in the pipes: drain it without
            // waiting for EOF (a grandchild may still hold the write ends).
            if read_reply(&mut reply_fd, &mut reply, &mut line, max_reply) {
                ending = Ending::ReplyTooLarge;
            }
            read_tail(&mut stderr_fd, &mut tail);
            break;
        }
    }

    if ending != Ending::Exited {
        child.kill();
    }
    let status = child.finish()?;
    Ok(Outcome {
        line,
        partial: reply,
        status,
        stderr_tail: tail,
        ending,
    })
}

pub(crate) fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

fn write_envelope(fd: &mut Option<OwnedFd>, envelope: &[u8], written: &mut usize) {
    let Some(sock) = fd.as_ref() else { return };
    while *written < envelope.len() {
        match send(
            sock.as_raw_fd(),
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
fn read_reply(
    fd: &mut Option<OwnedFd>,
    buf: &mut Vec<u8>,
    line: &mut Option<Vec<u8>>,
    max: usize,
) -> bool {
    let mut chunk = [0u8; 16 * 1024];
    while let Some(pipe) = fd.as_ref() {
        match nix::unistd::read(pipe, &mut chunk) {
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

fn read_tail(fd: &mut Option<OwnedFd>, tail: &mut Vec<u8>) {
    let mut chunk = [0u8; 16 * 1024];
    while let Some(pipe) = fd.as_ref() {
        match nix::unistd::read(pipe, &mut chunk) {
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
