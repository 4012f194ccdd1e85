//! The runner side of a warm runner (see `frontend/warm.rs` for the protocol): already
//! placed, single-threaded, it forks one child per request. The child takes the request's
//! fds at the numbers a cold runner has and runs the envelope exactly as a cold runner
//! does, so results are identical.

use std::collections::HashMap;
use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, killpg, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{recvmsg, send, ControlMessageOwned, MsgFlags};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};

use super::{run_envelope, write_all};
use crate::envelope::{Envelope, MAX_ENVELOPE_BYTES};
use crate::reply::Reply;

/// Serves requests on `sock` (fd 0) until the frontend closes it or the runner was idle
/// for `idle`. Never returns.
pub(super) fn serve(idle: Duration, warm_up: bool, ready: OwnedFd) -> ! {
    // SAFETY: fd 0 is the request socket for the rest of this process's life.
    let sock = unsafe { BorrowedFd::borrow_raw(0) };
    let _ = write_all(
        &ready,
        &Reply::ok(serde_json::Value::from("warm")).to_line(),
    );
    drop(ready);
    let devnull = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        Ok(f) => OwnedFd::from(f),
        Err(_) => std::process::exit(1),
    };
    // Our own stdout/stderr pointed at the frontend's pipe for the ready phase only.
    let _ = nix::unistd::dup2_stdout(&devnull);
    let _ = nix::unistd::dup2_stderr(&devnull);

    if warm_up {
        for hook in inventory::iter::<super::WarmUp> {
            (hook.run)();
        }
    }

    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    let _ = mask.thread_block();
    let Ok(sigchld) = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
    else {
        std::process::exit(1)
    };
    let me = std::process::id() as i32;
    let mut children: HashMap<i32, OwnedFd> = HashMap::new();
    let mut accepting = true;
    let mut buf = vec![0u8; MAX_ENVELOPE_BYTES + 1];

    loop {
        if !accepting && children.is_empty() {
            std::process::exit(0);
        }
        let timeout = if children.is_empty() {
            PollTimeout::try_from(idle.as_millis().min(i32::MAX as u128) as i32)
                .unwrap_or(PollTimeout::MAX)
        } else {
            PollTimeout::NONE
        };
        let mut fds = vec![PollFd::new(sigchld.as_fd(), PollFlags::POLLIN)];
        if accepting {
            fds.push(PollFd::new(sock, PollFlags::POLLIN));
        }
        match nix::poll::poll(&mut fds, timeout) {
            Ok(0) => {
                if children.is_empty() {
                    std::process::exit(0);
                }
                continue;
            }
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(_) => std::process::exit(1),
        }
        let child_ended = fds[0].revents().is_some_and(|r| !r.is_empty());
        let request = fds
            .get(1)
            .and_then(|f| f.revents())
            .is_some_and(|r| !r.is_empty());
        drop(fds);
        if child_ended {
            while sigchld.read_signal().ok().flatten().is_some() {}
            reap(&mut children);
        }
        if request {
            match receive(sock, &mut buf) {
                Received::Eof => accepting = false,
                Received::Nothing => {}
                Received::Kill(pid) => {
                    if children.contains_key(&pid) {
                        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
                        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                    }
                }
                Received::Run { len, fds } => {
                    if fds.len() < 3 {
                        continue;
                    }
                    // SAFETY: this process is single-threaded (the runner never starts
                    // threads), so the child may run any code.
                    match unsafe { fork() } {
                        Ok(ForkResult::Child) => child(me, &buf[1..len], fds, &devnull),
                        Ok(ForkResult::Parent { child }) => {
                            let mut fds = fds;
                            let status = fds.swap_remove(2);
                            drop(fds);
                            children.insert(child.as_raw(), status);
                            let _ = send(
                                sock.as_raw_fd(),
                                &child.as_raw().to_ne_bytes(),
                                MsgFlags::MSG_NOSIGNAL,
                            );
                        }
                        Err(_) => {
                            // Dropping the fds makes the frontend see a runner failure.
                            let _ = send(
                                sock.as_raw_fd(),
                                &0i32.to_ne_bytes(),
                                MsgFlags::MSG_NOSIGNAL,
                            );
                        }
                    }
                }
            }
        }
    }
}

enum Received {
    Eof,
    Nothing,
    Kill(i32),
    Run { len: usize, fds: Vec<OwnedFd> },
}

fn receive(sock: BorrowedFd<'_>, buf: &mut [u8]) -> Received {
    let mut cmsg = nix::cmsg_space!([RawFd; 16]);
    let mut iov = [IoSliceMut::new(buf)];
    let (len, raw_fds) = match recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    ) {
        Ok(msg) => {
            let mut fds = Vec::new();
            if let Ok(cmsgs) = msg.cmsgs() {
                for c in cmsgs {
                    if let ControlMessageOwned::ScmRights(r) = c {
                        fds.extend(r);
                    }
                }
            }
            (msg.bytes, fds)
        }
        Err(Errno::EINTR | Errno::EAGAIN) => return Received::Nothing,
        Err(_) => return Received::Eof,
    };
    // SAFETY: SCM_RIGHTS gave us these fds; nothing else owns them.
    let fds: Vec<OwnedFd> = raw_fds
        .into_iter()
        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
        .collect();
    if len == 0 {
        return Received::Eof;
    }
    match buf[0] {
        b'K' if len == 5 => Received::Kill(i32::from_ne_bytes([buf[1], buf[2], buf[3], buf[4]])),
        b'R' => Received::Run { len, fds },
        _ => Received::Nothing,
    }
}

fn reap(children: &mut HashMap<i32, OwnedFd>) {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return,
            Ok(status) => {
                let Some(pid) = status.pid() else { continue };
                let raw = match status {
                    WaitStatus::Exited(_, code) => (code & 0xff) << 8,
                    WaitStatus::Signaled(_, sig, core) => sig as i32 | if core { 0x80 } else { 0 },
                    _ => continue,
                };
                if let Some(fd) = children.remove(&pid.as_raw()) {
                    let _ = write_all(&fd, &raw.to_ne_bytes());
                }
            }
        }
    }
}

/// The forked child: the request's fds at a cold runner's numbers, then the cold path.
fn child(warm_pid: i32, envelope: &[u8], fds: Vec<OwnedFd>, devnull: &OwnedFd) -> ! {
    let _ = SigSet::all().thread_unblock();
    let _ = nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0));
    if !ctl_process::die_with_parent(warm_pid).unwrap_or(false) {
        std::process::exit(1);
    }
    // fds: [stderr, reply, status, stdio...]. Lift every source above the targets first,
    // so that no dup2 overwrites a source still needed.
    let mut lifted: Vec<OwnedFd> = Vec::with_capacity(fds.len());
    for fd in fds
        .iter()
        .map(AsFd::as_fd)
        .chain(std::iter::once(devnull.as_fd()))
    {
        match ctl_process::raise_above(fd, 64) {
            Ok(fd) => lifted.push(fd),
            Err(_) => std::process::exit(1),
        }
    }
    drop(fds);
    let devnull = lifted.pop().expect("devnull was lifted");
    let mut targets: Vec<(RawFd, RawFd)> = vec![
        (devnull.as_raw_fd(), 0),
        (lifted[0].as_raw_fd(), 1),
        (lifted[0].as_raw_fd(), 2),
        (lifted[1].as_raw_fd(), 3),
    ];
    for (i, fd) in lifted[3..].iter().enumerate() {
        targets.push((fd.as_raw_fd(), 4 + i as RawFd));
    }
    for (src, dst) in &targets {
        // SAFETY: dup2 onto a number we reserve for the child's layout.
        if unsafe { libc::dup2(*src, *dst) } < 0 {
            std::process::exit(1);
        }
    }
    let last = targets.last().map_or(3, |t| t.1);
    drop(lifted);
    drop(devnull);
    // Closes whatever else the warm runner had open (socket, signalfd, other children's
    // status pipes); no Rust object here owns an fd above `last` any more.
    let _ = ctl_process::close_range((last + 1) as u32, u32::MAX);
    match Envelope::from_slice(envelope) {
        Ok(envelope) => std::process::exit(run_envelope(envelope)),
        Err(e) => {
            eprintln!("ctl-runner: {e}");
            std::process::exit(super::EXIT_BAD_INPUT)
        }
    }
}
