//! Terminals stay with the frontend: a terminal among a call's stdio is relayed, never
//! handed to a runner.
//!
//! A terminal fd that reaches a container is a way out of it: a process holding the
//! operator's terminal can read what the operator types and write escape sequences to it,
//! and — once the terminal is its controlling terminal — type into the operator's shell
//! with `TIOCSTI`. Runners hold no controlling terminal (`runner::session`); this module
//! makes sure they hold no terminal fd either:
//!
//! - [`StdioRelay`] (used by every call, see [`crate::invoke`]): a terminal given as the
//!   call's stdin, stdout or stderr is replaced by a pipe, and a thread of the frontend
//!   copies between the pipe and the terminal for the duration of the call. When the call
//!   ends, output still in the pipes is copied and the relay stops: a process left behind
//!   in the container cannot write to the terminal after the call returned.
//! - [`PtyRelay`] (used by interactive commands such as `Exec` with a terminal on stdin):
//!   the runner opens a pseudo-terminal *inside the container* (the container's own
//!   devpts) and sends its master end to the frontend over a socket; the frontend puts its
//!   own terminal in raw mode and relays between the two, with the window size following.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use nix::sys::termios::{self, SetArg, Termios};
use nix::unistd::pipe2;

use crate::call::{Call, Stdio};

/// Whether `fd` is a terminal (any tty: a console, a pty slave or master, a serial line).
pub fn is_terminal(fd: BorrowedFd<'_>) -> bool {
    nix::unistd::isatty(fd).unwrap_or(false)
}

/// A terminal's window size, as `TIOCGWINSZ` reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WindowSize {
    pub rows: u16,
    pub cols: u16,
}

/// The window size of terminal `fd`, if it is one.
pub fn window_size(fd: BorrowedFd<'_>) -> Option<WindowSize> {
    // SAFETY: `winsize` is plain data; TIOCGWINSZ fills the struct we own.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one `winsize` through the pointer.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    (rc == 0).then_some(WindowSize {
        rows: ws.ws_row,
        cols: ws.ws_col,
    })
}

/// Sets the window size of terminal `fd` (on a pty master: the kernel then sends
/// `SIGWINCH` to the foreground process group of its slave).
pub fn set_window_size(fd: BorrowedFd<'_>, size: WindowSize) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one `winsize` through the pointer.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether `fd` is the master end of a pseudo-terminal (`TIOCGPTN` answers only there).
pub fn is_pty_master(fd: BorrowedFd<'_>) -> bool {
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one unsigned int through the pointer.
    unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGPTN, &mut n) == 0 }
}

/// Sends `fd` over the unix socket `sock` (`SCM_RIGHTS`, one byte of payload).
pub fn send_fd(sock: BorrowedFd<'_>, fd: BorrowedFd<'_>) -> io::Result<()> {
    let fds = [fd.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [io::IoSlice::new(b"m")];
    loop {
        match sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None) {
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Receives one fd sent with [`send_fd`]; `Ok(None)` when the peer closed the socket
/// (or, with `nonblocking`, when nothing is waiting).
pub fn recv_fd(sock: BorrowedFd<'_>, nonblocking: bool) -> io::Result<Option<OwnedFd>> {
    let mut byte = [0u8; 1];
    let mut iov = [io::IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let mut flags = MsgFlags::MSG_CMSG_CLOEXEC;
    if nonblocking {
        flags |= MsgFlags::MSG_DONTWAIT;
    }
    let msg = loop {
        match recvmsg::<()>(sock.as_raw_fd(), &mut iov, Some(&mut space), flags) {
            Ok(msg) => break msg,
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) if nonblocking => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    };
    let mut received = None;
    for cmsg in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            for fd in fds {
                // SAFETY: the kernel installed this fd in our table for this message;
                // nothing else owns it. Extra fds (a confused or hostile peer) are owned
                // and closed here too.
                let owned = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
                if received.is_none() {
                    received = Some(owned);
                }
            }
        }
    }
    if msg.bytes == 0 && received.is_none() {
        return Ok(None);
    }
    received
        .map(Some)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "a message without an fd"))
}

// ---------------------------------------------------------------------------------------
// Stop signal shared by the relay threads

/// A pipe whose read end becomes readable once the relay should stop.
struct StopSignal {
    read: OwnedFd,
    write: OwnedFd,
}

impl StopSignal {
    fn new() -> io::Result<StopSignal> {
        let (read, write) = pipe2(OFlag::O_CLOEXEC)?;
        Ok(StopSignal { read, write })
    }

    fn fire(&self) {
        let _ = nix::unistd::write(&self.write, b"s");
    }
}

fn write_all(fd: BorrowedFd<'_>, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match nix::unistd::write(fd, bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::EINTR) => {}
            // A destination in non-blocking mode (a terminal someone else set so): wait.
            Err(Errno::EAGAIN) => {
                let mut fds = [PollFd::new(fd, PollFlags::POLLOUT)];
                let _ = poll(&mut fds, PollTimeout::from(1000u16));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Reads what `src` has now (it must be non-blocking) and writes it to `dst`, until
/// `src` has nothing more, ends, or fails.
fn drain(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, buf: &mut [u8]) {
    loop {
        match nix::unistd::read(src, buf) {
            Ok(0) => return,
            Ok(n) => {
                if write_all(dst, &buf[..n]).is_err() {
                    return;
                }
            }
            Err(Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}

fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// StdioRelay

/// One direction of a stdio relay.
enum Direction {
    /// Terminal → pipe (the call's stdin): stops at once when told.
    In,
    /// Pipe → terminal (stdout, stderr): copies what is left when told, then stops.
    Out,
}

/// Pipes in place of the terminals among a call's stdio, and the threads copying between
/// them; see the module documentation.
pub struct StdioRelay {
    /// The runner's ends, in the order stdin, stdout, stderr (`None`: not relayed).
    stdin: Option<OwnedFd>,
    stdout: Option<OwnedFd>,
    /// `Some` only when stderr is another terminal than stdout; `stderr_is_stdout` marks the
    /// common case of one terminal for both, which shares the stdout pipe (the order of
    /// the program's output and error lines stays as written).
    stderr: Option<OwnedFd>,
    stderr_is_stdout: bool,
    stop: StopSignal,
    threads: Vec<JoinHandle<()>>,
}

impl StdioRelay {
    /// Starts relays for the terminals among `call`'s stdio; `None` when there are none
    /// (the common case for a daemon: nothing is allocated then).
    pub fn start(call: &Call<'_>) -> io::Result<Option<StdioRelay>> {
        // SAFETY: fds 1 and 2 exist for the process's whole life (std reopens them on
        // /dev/null if they were closed at start); only inspected and duplicated here.
        let resolve = |stdio: Stdio<'_>, n: RawFd| -> Option<RawFd> {
            match stdio {
                Stdio::Inherit => Some(n),
                Stdio::Null => None,
                Stdio::Fd(fd) => Some(fd.as_raw_fd()),
            }
        };
        let tty = |fd: Option<RawFd>| -> Option<RawFd> {
            // SAFETY: the fd belongs to the call (or is 1 or 2) and outlives this borrow.
            fd.filter(|fd| is_terminal(unsafe { BorrowedFd::borrow_raw(*fd) }))
        };
        let stdin = tty(call.stdin.map(|fd| fd.as_raw_fd()));
        let stdout = tty(resolve(call.stdout, 1));
        let stderr = tty(resolve(call.stderr, 2));
        if stdin.is_none() && stdout.is_none() && stderr.is_none() {
            return Ok(None);
        }
        let stop = StopSignal::new()?;
        let mut relay = StdioRelay {
            stdin: None,
            stdout: None,
            stderr: None,
            stderr_is_stdout: false,
            stop,
            threads: Vec::new(),
        };
        if let Some(fd) = stdin {
            let (read, write) = pipe2(OFlag::O_CLOEXEC)?;
            relay.spawn(Direction::In, fd, write)?;
            relay.stdin = Some(read);
        }
        if let Some(fd) = stdout {
            let (read, write) = pipe2(OFlag::O_CLOEXEC)?;
            relay.spawn(Direction::Out, fd, read)?;
            relay.stdout = Some(write);
        }
        if let Some(fd) = stderr {
            if stdout.is_some_and(|out| same_file(out, fd)) {
                relay.stderr_is_stdout = true;
            } else {
                let (read, write) = pipe2(OFlag::O_CLOEXEC)?;
                relay.spawn(Direction::Out, fd, read)?;
                relay.stderr = Some(write);
            }
        }
        Ok(Some(relay))
    }

    fn spawn(&mut self, direction: Direction, terminal: RawFd, pipe: OwnedFd) -> io::Result<()> {
        // The thread gets its own copies: it may outlive the caller's borrow of the
        // terminal by the time it takes to notice the stop signal.
        // SAFETY: the terminal fd belongs to the call and is open during this call.
        let terminal = unsafe { BorrowedFd::borrow_raw(terminal) }.try_clone_to_owned()?;
        let stop = self.stop.read.try_clone()?;
        let handle = std::thread::Builder::new()
            .name("ctl-tty-relay".to_owned())
            .spawn(move || match direction {
                Direction::In => copy_until_stopped(terminal.as_fd(), pipe.as_fd(), &stop),
                Direction::Out => {
                    let _ = set_nonblocking(pipe.as_fd());
                    copy_until_stopped(pipe.as_fd(), terminal.as_fd(), &stop);
                    let mut buf = vec![0u8; 64 * 1024];
                    drain(pipe.as_fd(), terminal.as_fd(), &mut buf);
                }
            })?;
        self.threads.push(handle);
        Ok(())
    }

    /// `call` with the pipes in place of the terminals.
    pub fn apply<'r>(&'r self, call: &Call<'r>) -> Call<'r> {
        let mut call = call.clone();
        if let Some(fd) = &self.stdin {
            call = call.stdin(Some(fd.as_fd()));
        }
        if let Some(fd) = &self.stdout {
            call = call.stdout(Stdio::Fd(fd.as_fd()));
            if self.stderr_is_stdout {
                call = call.stderr(Stdio::Fd(fd.as_fd()));
            }
        }
        if let Some(fd) = &self.stderr {
            call = call.stderr(Stdio::Fd(fd.as_fd()));
        }
        call
    }

    /// Copies the output still in the pipes and stops every relay thread.
    pub fn finish(mut self) {
        self.stop_threads();
    }

    fn stop_threads(&mut self) {
        self.stop.fire();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for StdioRelay {
    fn drop(&mut self) {
        self.stop_threads();
    }
}

/// Whether two fds are the same terminal (same device).
fn same_file(a: RawFd, b: RawFd) -> bool {
    // SAFETY: both fds belong to the call and are open during it; only inspected.
    let stat = |fd| nix::sys::stat::fstat(unsafe { BorrowedFd::borrow_raw(fd) }).ok();
    match (stat(a), stat(b)) {
        (Some(a), Some(b)) => {
            a.st_rdev == b.st_rdev && a.st_dev == b.st_dev && a.st_ino == b.st_ino
        }
        _ => false,
    }
}

/// Copies `src` to `dst` until `src` ends or fails, `dst` fails, or `stop` fires.
fn copy_until_stopped(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, stop: &OwnedFd) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let mut fds = [
            PollFd::new(src, PollFlags::POLLIN),
            PollFd::new(stop.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(_) => return,
        }
        if fds[1].any().unwrap_or(true) {
            return;
        }
        if !fds[0].any().unwrap_or(false) {
            continue;
        }
        match nix::unistd::read(src, &mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if write_all(dst, &buf[..n]).is_err() {
                    return;
                }
            }
            Err(Errno::EINTR | Errno::EAGAIN) => {}
            Err(_) => return,
        }
    }
}

// ---------------------------------------------------------------------------------------
// PtyRelay

/// How often the relay looks at the caller's window size (a library cannot own the
/// process's `SIGWINCH`).
const WINDOW_POLL: Duration = Duration::from_millis(250);

/// The frontend's side of an interactive session: receives a pty master over a socket and
/// relays between it and the caller's terminal (raw mode while it runs, restored after).
pub struct PtyRelay {
    stop: StopSignal,
    thread: Option<JoinHandle<()>>,
    saved: Option<(OwnedFd, Termios)>,
    received: Arc<AtomicBool>,
}

impl PtyRelay {
    /// Starts relaying: `input` is the caller's terminal (put into raw mode until
    /// [`PtyRelay::finish`]), `output` where the session's output goes, `channel` the
    /// socket over which the runner sends the pty master.
    pub fn start(
        input: BorrowedFd<'_>,
        output: BorrowedFd<'_>,
        channel: OwnedFd,
    ) -> io::Result<PtyRelay> {
        let stop = StopSignal::new()?;
        let input = input.try_clone_to_owned()?;
        let output = output.try_clone_to_owned()?;
        let saved = match termios::tcgetattr(&input) {
            Ok(original) => {
                let mut raw = original.clone();
                termios::cfmakeraw(&mut raw);
                termios::tcsetattr(&input, SetArg::TCSANOW, &raw)?;
                Some((input.try_clone()?, original))
            }
            Err(_) => None,
        };
        let stop_read = stop.read.try_clone()?;
        let received = Arc::new(AtomicBool::new(false));
        let got = received.clone();
        let thread = std::thread::Builder::new()
            .name("ctl-pty-relay".to_owned())
            .spawn(move || pty_relay(&input, &output, &channel, &stop_read, &got))?;
        Ok(PtyRelay {
            stop,
            thread: Some(thread),
            saved,
            received,
        })
    }

    /// Whether a pty master arrived (a session that never got one had no terminal).
    pub fn received_master(&self) -> bool {
        self.received.load(Ordering::SeqCst)
    }

    /// Copies the session's remaining output, stops the relay and restores the terminal.
    pub fn finish(mut self) {
        self.stop_and_restore();
    }

    fn stop_and_restore(&mut self) {
        self.stop.fire();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some((fd, original)) = self.saved.take() {
            let _ = termios::tcsetattr(&fd, SetArg::TCSADRAIN, &original);
        }
    }
}

impl Drop for PtyRelay {
    fn drop(&mut self) {
        self.stop_and_restore();
    }
}

fn pty_relay(
    input: &OwnedFd,
    output: &OwnedFd,
    channel: &OwnedFd,
    stop: &OwnedFd,
    received: &AtomicBool,
) {
    // First the master, from the runner.
    let master = loop {
        let mut fds = [
            PollFd::new(channel.as_fd(), PollFlags::POLLIN),
            PollFd::new(stop.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return,
        }
        let stopping = fds[1].any().unwrap_or(true);
        if fds[0].any().unwrap_or(false) || stopping {
            match recv_fd(channel.as_fd(), true) {
                Ok(Some(fd)) => break fd,
                Ok(None) if !stopping => {
                    // The peer closed the socket without sending anything.
                    if fds[0]
                        .revents()
                        .is_some_and(|r| r.intersects(PollFlags::POLLHUP))
                    {
                        return;
                    }
                }
                _ => return,
            }
        }
        if stopping {
            return;
        }
    };
    // Only ever a pty master: anything else (a confused or hostile runner) is not relayed.
    if !is_pty_master(master.as_fd()) {
        return;
    }
    received.store(true, Ordering::SeqCst);
    let _ = set_nonblocking(master.as_fd());
    let mut size = window_size(input.as_fd());
    if let Some(size) = size {
        let _ = set_window_size(master.as_fd(), size);
    }
    let mut buf = vec![0u8; 64 * 1024];
    let mut input_open = true;
    loop {
        let mut fds = [
            PollFd::new(master.as_fd(), PollFlags::POLLIN),
            PollFd::new(stop.as_fd(), PollFlags::POLLIN),
            PollFd::new(
                input.as_fd(),
                if input_open {
                    PollFlags::POLLIN
                } else {
                    PollFlags::empty()
                },
            ),
        ];
        match poll(&mut fds, PollTimeout::from(WINDOW_POLL.as_millis() as u16)) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return,
        }
        if fds[1].any().unwrap_or(true) {
            drain(master.as_fd(), output.as_fd(), &mut buf);
            return;
        }
        let master_events = fds[0].revents().unwrap_or(PollFlags::empty());
        if master_events.intersects(PollFlags::POLLIN) {
            match nix::unistd::read(&master, &mut buf) {
                Ok(0) | Err(Errno::EIO) => return,
                Ok(n) => {
                    if write_all(output.as_fd(), &buf[..n]).is_err() {
                        return;
                    }
                }
                Err(Errno::EINTR | Errno::EAGAIN) => {}
                Err(_) => return,
            }
        } else if master_events.intersects(PollFlags::POLLHUP | PollFlags::POLLERR) {
            // Every slave fd is closed: the session is over.
            return;
        }
        if input_open && fds[2].any().unwrap_or(false) {
            match nix::unistd::read(input, &mut buf) {
                Ok(0) => input_open = false,
                Ok(n) => {
                    if write_all(master.as_fd(), &buf[..n]).is_err() {
                        input_open = false;
                    }
                }
                Err(Errno::EINTR | Errno::EAGAIN) => {}
                Err(_) => input_open = false,
            }
        }
        let now = window_size(input.as_fd());
        if now.is_some() && now != size {
            size = now;
            let _ = set_window_size(master.as_fd(), now.unwrap_or_default());
        }
    }
}
