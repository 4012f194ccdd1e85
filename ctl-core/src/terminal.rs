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
use std::ops::Range;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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

/// Whether `fd` is the master end of a pseudo-terminal.
///
/// The fd may come from someone else (a runner, over a socket): before any `ioctl` it must
/// be the pty multiplexer's character device (`/dev/ptmx` or a devpts `ptmx`, 5:2), not,
/// say, a file of a FUSE daemon that never answers. Its type is read with
/// `AT_STATX_DONT_SYNC` (a FUSE file system is not asked); only then does `TIOCGPTN`
/// confirm a master (a master's inode is the `ptmx` node it was opened through).
pub(crate) fn is_pty_master(fd: BorrowedFd<'_>) -> bool {
    if !is_ptmx_device(fd) {
        return false;
    }
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one unsigned int through the pointer.
    unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGPTN, &mut n) == 0 }
}

/// Whether `fd` is the character device 5:2 (`ptmx`), judged from cached attributes.
fn is_ptmx_device(fd: BorrowedFd<'_>) -> bool {
    // SAFETY: `statx` is plain data, filled by the kernel.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: an empty path with AT_EMPTY_PATH names the fd itself; the kernel writes one
    // `statx` through the pointer.
    let rc = unsafe {
        libc::statx(
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_STATX_DONT_SYNC,
            libc::STATX_TYPE,
            &mut stx,
        )
    };
    rc == 0
        && u32::from(stx.stx_mode) & libc::S_IFMT == libc::S_IFCHR
        && stx.stx_rdev_major == PTMX_MAJOR
        && stx.stx_rdev_minor == PTMX_MINOR
}

/// `ptmx`'s device number (`TTYAUX_MAJOR`, minor 2).
const PTMX_MAJOR: u32 = 5;
const PTMX_MINOR: u32 = 2;

/// A new pseudo-terminal from `/dev/ptmx` as the calling process sees it (inside a
/// container: the container's devpts): `(master, slave)`, both close-on-exec, the master
/// non-blocking. `/dev/ptmx` is opened without blocking and must give a pty master (inside a
/// container, its root may have put anything there); the slave is opened through the
/// master (`TIOCGPTPEER`), not by a path under `/dev/pts`.
pub fn open_pty() -> io::Result<(OwnedFd, OwnedFd)> {
    let context = |what: &str, e: io::Error| io::Error::new(e.kind(), format!("{what}: {e}"));
    let master = nix::fcntl::open(
        "/dev/ptmx",
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| context("cannot open /dev/ptmx", e.into()))?;
    if !is_pty_master(master.as_fd()) {
        return Err(io::Error::other("/dev/ptmx is not a pty multiplexer"));
    }
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int through the pointer (0: unlock the slave).
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) } != 0 {
        return Err(context(
            "cannot unlock the pty (TIOCSPTLCK)",
            io::Error::last_os_error(),
        ));
    }
    // SAFETY: TIOCGPTPEER takes open flags and returns a new fd (or -1).
    let slave = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if slave < 0 {
        return Err(context(
            "cannot open the pty's slave (TIOCGPTPEER)",
            io::Error::last_os_error(),
        ));
    }
    // SAFETY: the ioctl returned a new fd that nothing else owns.
    let slave = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(slave) };
    Ok((master, slave))
}

/// Starts a new session with the terminal `tty` as its controlling terminal (`setsid`,
/// `TIOCSCTTY`). For a process about to run a program on a terminal made for it, never on
/// a terminal of the caller's.
pub fn become_session_leader_on(tty: BorrowedFd<'_>) -> io::Result<()> {
    nix::unistd::setsid()
        .map_err(|e| io::Error::new(io::Error::from(e).kind(), format!("setsid: {e}")))?;
    // SAFETY: TIOCSCTTY with 0: make the terminal the controlling terminal of this new
    // session (fails if it is another session's).
    if unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCSCTTY, 0) } != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("cannot make the pty the controlling terminal: {e}"),
        ));
    }
    Ok(())
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
pub(crate) fn recv_fd(sock: BorrowedFd<'_>, nonblocking: bool) -> io::Result<Option<OwnedFd>> {
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

/// How long the final copy of a relay may take once the call ended.
const FINAL_COPY_TIME: Duration = Duration::from_millis(200);
/// The most the final copy passes on (for a pipe: no more than it held when the call
/// ended either).
const FINAL_COPY_BYTES: usize = 64 * 1024;
/// How much a relay reads at a time (and holds while its destination is not ready).
const RELAY_BUFFER: usize = 16 * 1024;
/// How long `finish` waits for the relay threads once told to stop: the final copy and
/// some slack. Every read and write of a relay is non-blocking and every wait polls the
/// stop signal or has a deadline, so a thread still running after this is not waited for.
const JOIN_LIMIT: Duration = Duration::from_millis(1200);

/// What a wait ended with.
#[derive(PartialEq, Eq)]
enum Ready {
    Yes,
    Stopped,
    TimedOut,
}

/// Waits until `fd` reports `events` (or an error or hang-up), `stop` fires, or
/// `deadline` passes.
fn wait_for(
    fd: BorrowedFd<'_>,
    events: PollFlags,
    stop: Option<BorrowedFd<'_>>,
    deadline: Option<Instant>,
) -> Ready {
    loop {
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ready::TimedOut;
                }
                PollTimeout::from(left.as_millis().clamp(1, 10_000) as u16)
            }
        };
        let mut fds = vec![PollFd::new(fd, events)];
        if let Some(stop) = stop {
            fds.push(PollFd::new(stop, PollFlags::POLLIN));
        }
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return Ready::Stopped,
        }
        if fds.get(1).is_some_and(|f| f.any().unwrap_or(true)) {
            return Ready::Stopped;
        }
        if fds[0].any().unwrap_or(true) {
            return Ready::Yes;
        }
    }
}

/// Bytes waiting to be read from `fd` (`FIONREAD`).
fn buffered(fd: BorrowedFd<'_>) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut n) } != 0 {
        return 0;
    }
    usize::try_from(n).unwrap_or(0)
}

/// The relay's last copy once the call ended: `pending` (read, not yet written) and then
/// at most `budget` more bytes from `src` (non-blocking), all within `FINAL_COPY_TIME` and
/// `FINAL_COPY_BYTES`. A process left behind that keeps writing gets no more than that
/// through: the caller closes `src` next (the writer then gets `EPIPE` or `EIO`).
fn final_copy(
    src: BorrowedFd<'_>,
    dst: BorrowedFd<'_>,
    buf: &mut [u8],
    mut pending: Range<usize>,
    budget: usize,
) {
    let deadline = Instant::now() + FINAL_COPY_TIME;
    let mut budget = budget.min(FINAL_COPY_BYTES.saturating_sub(pending.len()));
    loop {
        if pending.is_empty() {
            if budget == 0 {
                return;
            }
            let want = budget.min(buf.len());
            match nix::unistd::read(src, &mut buf[..want]) {
                Ok(0) => return,
                Ok(n) => {
                    budget -= n;
                    pending = 0..n;
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => {
                    if wait_for(src, PollFlags::POLLIN, None, Some(deadline)) != Ready::Yes {
                        return;
                    }
                    continue;
                }
                Err(_) => return,
            }
        }
        match nix::unistd::write(dst, &buf[pending.clone()]) {
            Ok(0) => return,
            Ok(n) => pending.start += n,
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => {
                if wait_for(dst, PollFlags::POLLOUT, None, Some(deadline)) != Ready::Yes {
                    return;
                }
            }
            Err(_) => return,
        }
    }
}

fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

/// The caller's terminal `fd` for a relay thread: opened anew (an open file description
/// of the relay's own, non-blocking, so a terminal nobody reads cannot block the thread
/// and the caller's fd keeps its flags), or, when that is not possible or does not give
/// the same terminal, a duplicate of `fd`.
fn own_terminal(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let reopened = (|| {
        // Only a terminal is opened anew (opening some other devices has effects of its
        // own), and never a pty master: its path, /dev/ptmx, would give a new pty.
        if !is_terminal(fd) || is_pty_master(fd) {
            return None;
        }
        let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL).ok()?);
        let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
        let new = nix::fcntl::open(
            path.as_str(),
            (flags & OFlag::O_ACCMODE) | OFlag::O_NOCTTY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .ok()?;
        // The same terminal.
        let a = nix::sys::stat::fstat(fd).ok()?;
        let b = nix::sys::stat::fstat(&new).ok()?;
        (a.st_mode & libc::S_IFMT == libc::S_IFCHR && a.st_rdev == b.st_rdev).then_some(new)
    })();
    match reopened {
        Some(fd) => Ok(fd),
        None => fd.try_clone_to_owned(),
    }
}

/// Waits up to `limit` for `threads` to end and joins those that did; the others are left
/// to end on their own (see `JOIN_LIMIT`).
fn join_bounded(threads: impl IntoIterator<Item = JoinHandle<()>>, limit: Duration) {
    let deadline = Instant::now() + limit;
    for t in threads {
        while !t.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        if t.is_finished() {
            let _ = t.join();
        } else {
            tracing::warn!("a terminal relay thread did not stop in time; not waiting for it");
        }
    }
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
        // The thread gets its own fds: it may outlive the caller's borrow of the terminal
        // by the time it takes to notice the stop signal. Every fd it uses is non-blocking.
        // SAFETY: the terminal fd belongs to the call and is open during this call.
        let terminal = own_terminal(unsafe { BorrowedFd::borrow_raw(terminal) })?;
        set_nonblocking(pipe.as_fd())?;
        let stop = self.stop.read.try_clone()?;
        let handle = std::thread::Builder::new()
            .name("ctl-tty-relay".to_owned())
            .spawn(move || match direction {
                Direction::In => {
                    relay_until_stopped(terminal.as_fd(), pipe.as_fd(), &stop);
                }
                Direction::Out => {
                    let mut buf = vec![0u8; RELAY_BUFFER];
                    if let Some(pending) =
                        relay_until_stopped_with(pipe.as_fd(), terminal.as_fd(), &stop, &mut buf)
                    {
                        // Only what the pipe holds now: not what a process left behind
                        // writes from here on.
                        let held = buffered(pipe.as_fd());
                        final_copy(pipe.as_fd(), terminal.as_fd(), &mut buf, pending, held);
                    }
                    // `pipe` is closed here: a writer left behind gets EPIPE.
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

    /// Copies the output still in the pipes (bounded: what they hold now, at most 64 KiB
    /// each, within 200 ms) and stops every relay thread.
    pub fn finish(mut self) {
        self.stop_threads();
    }

    fn stop_threads(&mut self) {
        self.stop.fire();
        join_bounded(self.threads.drain(..), JOIN_LIMIT);
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

/// Copies `src` to `dst` (both non-blocking) until `src` ends or fails, `dst` fails, or
/// `stop` fires.
fn relay_until_stopped(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, stop: &OwnedFd) {
    let mut buf = vec![0u8; RELAY_BUFFER];
    let _ = relay_until_stopped_with(src, dst, stop, &mut buf);
}

/// [`relay_until_stopped`] with the caller's buffer: `Some(what is read, not yet written)`
/// when `stop` fired, `None` when the copy ended on its own.
fn relay_until_stopped_with(
    src: BorrowedFd<'_>,
    dst: BorrowedFd<'_>,
    stop: &OwnedFd,
    buf: &mut [u8],
) -> Option<Range<usize>> {
    let mut pending = 0..0;
    loop {
        if pending.is_empty() {
            match wait_for(src, PollFlags::POLLIN, Some(stop.as_fd()), None) {
                Ready::Yes => {}
                _ => return Some(pending),
            }
            match nix::unistd::read(src, buf) {
                Ok(0) => return None,
                Ok(n) => pending = 0..n,
                Err(Errno::EINTR | Errno::EAGAIN) => continue,
                Err(_) => return None,
            }
        }
        match nix::unistd::write(dst, &buf[pending.clone()]) {
            Ok(0) => return None,
            Ok(n) => pending.start += n,
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => {
                match wait_for(dst, PollFlags::POLLOUT, Some(stop.as_fd()), None) {
                    Ready::Yes => {}
                    _ => return Some(pending),
                }
            }
            Err(_) => return None,
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
    saved: SavedMode,
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
        // The relay thread's own, non-blocking fds (see `own_terminal`).
        let output = own_terminal(output)?;
        let owned_input = own_terminal(input)?;
        // Raw mode only once a pty master arrived and passed the checks, and only while
        // the relay runs (the thread restores it when it ends, `finish` too): until then a
        // Ctrl-C on the terminal still interrupts ctl, e.g. when the container stops the
        // attaching process before the session exists.
        let saved: SavedMode = Arc::new(std::sync::Mutex::new(match termios::tcgetattr(input) {
            Ok(original) => Some((input.try_clone_to_owned()?, original)),
            Err(_) => None,
        }));
        let input = owned_input;
        let stop_read = stop.read.try_clone()?;
        let mode = saved.clone();
        let thread = std::thread::Builder::new()
            .name("ctl-pty-relay".to_owned())
            .spawn(move || {
                let _restore = RestoreOnDrop(mode.clone());
                pty_relay(&input, &output, &channel, &stop_read, &mode)
            })?;
        Ok(PtyRelay {
            stop,
            thread: Some(thread),
            saved,
        })
    }

    /// Copies the session's remaining output (bounded: at most 64 KiB within 200 ms), stops
    /// the relay, closes the pty master (a process left behind on the pty gets `EIO`) and
    /// restores the terminal.
    pub fn finish(mut self) {
        self.stop_and_restore();
    }

    fn stop_and_restore(&mut self) {
        self.stop.fire();
        join_bounded(self.thread.take(), JOIN_LIMIT);
        // TCSANOW: TCSADRAIN would wait for a terminal nobody reads. What is already in
        // the terminal's buffer was processed when written.
        restore_mode(&self.saved);
    }
}

/// ssh's escape: `~.` at the start of a line ends an interactive session from the
/// operator's side, whatever the container does with its terminal (raw mode sends Ctrl-C
/// to the container as a byte). `~~` sends one `~`; a `~` followed by anything else is
/// sent as typed.
#[derive(Debug)]
struct EscapeScanner {
    at_line_start: bool,
    tilde: bool,
}

impl Default for EscapeScanner {
    fn default() -> Self {
        EscapeScanner {
            at_line_start: true,
            tilde: false,
        }
    }
}

impl EscapeScanner {
    /// Appends to `out` what of `input` goes to the session; `true` when `~.` ends it.
    fn filter(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        for &b in input {
            if self.tilde {
                self.tilde = false;
                match b {
                    b'.' => return true,
                    b'~' => {
                        out.push(b'~');
                        self.at_line_start = false;
                        continue;
                    }
                    _ => out.push(b'~'),
                }
            } else if self.at_line_start && b == b'~' {
                self.tilde = true;
                continue;
            }
            out.push(b);
            self.at_line_start = b == b'\r' || b == b'\n';
        }
        false
    }
}

/// The caller's terminal and its mode before the session, until restored.
type SavedMode = Arc<std::sync::Mutex<Option<(OwnedFd, Termios)>>>;

/// Puts the caller's terminal back into its mode from before the session (once).
fn restore_mode(saved: &SavedMode) {
    let taken = saved.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some((fd, original)) = taken {
        // TCSANOW: TCSADRAIN would wait for a terminal nobody reads.
        let _ = termios::tcsetattr(&fd, SetArg::TCSANOW, &original);
    }
}

/// Raw mode for the session (the terminal's keys go to the container's terminal as bytes).
fn enter_raw_mode(saved: &SavedMode) {
    let guard = saved.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((fd, original)) = guard.as_ref() {
        let mut raw = original.clone();
        termios::cfmakeraw(&mut raw);
        let _ = termios::tcsetattr(fd, SetArg::TCSANOW, &raw);
    }
}

struct RestoreOnDrop(SavedMode);

impl Drop for RestoreOnDrop {
    fn drop(&mut self) {
        restore_mode(&self.0);
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
    mode: &SavedMode,
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
    if set_nonblocking(master.as_fd()).is_err() {
        return;
    }
    enter_raw_mode(mode);
    let mut size = window_size(input.as_fd());
    if let Some(size) = size {
        let _ = set_window_size(master.as_fd(), size);
    }
    // Output: master → `out_buf[out]` → output. Input: input → `in_buf[inp]` → master.
    // Nothing is read on a side while what was read there is not written yet, and every
    // fd is non-blocking: a side that does not move stalls only itself.
    let mut out_buf = vec![0u8; RELAY_BUFFER];
    let mut out = 0..0;
    let mut raw_in = vec![0u8; RELAY_BUFFER];
    let mut in_buf: Vec<u8> = Vec::with_capacity(RELAY_BUFFER + 1);
    let mut inp = 0..0;
    let mut escape = EscapeScanner::default();
    let mut input_open = true;
    loop {
        // Only the fds with something to wait for (a hung-up fd would report POLLHUP
        // however it is asked).
        let mut fds = vec![PollFd::new(stop.as_fd(), PollFlags::POLLIN)];
        let mut master_events = PollFlags::empty();
        if out.is_empty() {
            master_events |= PollFlags::POLLIN;
        }
        if !inp.is_empty() {
            master_events |= PollFlags::POLLOUT;
        }
        let master_at = (!master_events.is_empty()).then(|| {
            fds.push(PollFd::new(master.as_fd(), master_events));
            fds.len() - 1
        });
        let output_at = (!out.is_empty()).then(|| {
            fds.push(PollFd::new(output.as_fd(), PollFlags::POLLOUT));
            fds.len() - 1
        });
        let input_at = (input_open && inp.is_empty()).then(|| {
            fds.push(PollFd::new(input.as_fd(), PollFlags::POLLIN));
            fds.len() - 1
        });
        match poll(&mut fds, PollTimeout::from(WINDOW_POLL.as_millis() as u16)) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return,
        }
        let revents = |at: Option<usize>| {
            at.and_then(|i| fds[i].revents())
                .unwrap_or(PollFlags::empty())
        };
        if fds[0].any().unwrap_or(true) {
            final_copy(
                master.as_fd(),
                output.as_fd(),
                &mut out_buf,
                out,
                FINAL_COPY_BYTES,
            );
            // `master` is closed on return.
            return;
        }
        let master_ready = revents(master_at);
        let output_ready = !revents(output_at).is_empty();
        let input_ready = !revents(input_at).is_empty();
        // Output.
        if out.is_empty() && !master_ready.is_empty() {
            match nix::unistd::read(&master, &mut out_buf) {
                // Every slave fd is closed: the session is over.
                Ok(0) | Err(Errno::EIO) => return,
                Ok(n) => out = 0..n,
                Err(Errno::EINTR | Errno::EAGAIN) => {}
                Err(_) => return,
            }
        }
        if !out.is_empty() && (output_ready || output_at.is_none()) {
            match nix::unistd::write(output, &out_buf[out.clone()]) {
                Ok(0) => return,
                Ok(n) => out.start += n,
                Err(Errno::EINTR | Errno::EAGAIN) => {}
                Err(_) => return,
            }
        }
        // Input.
        if input_open && inp.is_empty() && input_ready {
            match nix::unistd::read(input, &mut raw_in) {
                Ok(0) => input_open = false,
                Ok(n) => {
                    in_buf.clear();
                    if escape.filter(&raw_in[..n], &mut in_buf) {
                        // `~.`: the operator ends the session. Closing the master hangs
                        // up the pty (the program gets SIGHUP); the terminal's mode is
                        // restored as the relay ends.
                        return;
                    }
                    inp = 0..in_buf.len();
                }
                Err(Errno::EINTR | Errno::EAGAIN) => {}
                Err(_) => input_open = false,
            }
        }
        if !inp.is_empty() {
            match nix::unistd::write(&master, &in_buf[inp.clone()]) {
                Ok(n) if n > 0 => inp.start += n,
                Err(Errno::EINTR | Errno::EAGAIN) => {}
                Ok(_) | Err(_) => {
                    inp = 0..0;
                    input_open = false;
                }
            }
        }
        let now = window_size(input.as_fd());
        if now.is_some() && now != size {
            size = now;
            let _ = set_window_size(master.as_fd(), now.unwrap_or_default());
        }
    }
}

#[cfg(test)]
mod escape_tests {
    use super::EscapeScanner;

    fn run(chunks: &[&[u8]]) -> (Vec<u8>, bool) {
        let mut scanner = EscapeScanner::default();
        let mut out = Vec::new();
        for chunk in chunks {
            if scanner.filter(chunk, &mut out) {
                return (out, true);
            }
        }
        (out, false)
    }

    #[test]
    fn tilde_dot_at_a_line_start_ends_the_session() {
        assert_eq!(run(&[b"~."]), (Vec::new(), true));
        assert_eq!(run(&[b"ls\r~."]), (b"ls\r".to_vec(), true));
        // Split across reads, as a terminal in raw mode delivers keys one by one.
        assert_eq!(run(&[b"ls\r", b"~", b"."]), (b"ls\r".to_vec(), true));
    }

    #[test]
    fn other_tildes_pass_through() {
        assert_eq!(run(&[b"a~."]), (b"a~.".to_vec(), false));
        assert_eq!(run(&[b"~~."]), (b"~.".to_vec(), false));
        assert_eq!(run(&[b"~x"]), (b"~x".to_vec(), false));
        assert_eq!(run(&[b"\n~", b"/"]), (b"\n~/".to_vec(), false));
    }
}
