//! LXC's command socket, spoken directly: a running container's state and init pid without
//! loading liblxc or the container's config.
//!
//! # Why
//!
//! Every running container has a monitor process that serves LXC's command protocol on an
//! abstract unix socket, `@<lxcpath>/<name>/command`. `lxc-info -s` and liblxc's
//! `state()`/`init_pid()` load liblxc, parse the container's config and then ask that
//! socket. A daemon that only needs the answer can ask the socket itself, in-process, in a
//! few tens of microseconds, instead of starting a runner (about a millisecond). Root may
//! do so safely: nothing of the user-editable config is read, only the monitor's answer,
//! which is exactly what liblxc would have returned to a runner.
//!
//! # Stability of the protocol
//!
//! LXC keeps the numbers and the semantics of its existing commands fixed ("If you wish to
//! make any changes ... you must introduce a new ... define with a new number", in LXC's
//! `commands.c`), because a new `lxc-*` tool must be able to talk to a monitor started by
//! an older liblxc. Six commands are sent: `GET_STATE` (3) and `GET_INIT_PID` (4),
//! unchanged since LXC 1.0, `SERVE_STATE_CLIENTS` (12, since LXC 3.0), which liblxc's own
//! freeze and unfreeze send to record a new state, and for ctl's own attach
//! `GET_INIT_PIDFD` (18, since LXC 4.0), whose answer carries a pidfd of init
//! (`SCM_RIGHTS`), and `GET_CGROUP_CTX` (23, since LXC 5.0), whose answer carries the
//! payload cgroup's directory in every hierarchy, as liblxc's attach asks, and
//! `GET_CONFIG_ITEM` (7, since LXC 1.0) for the running `lxc.seccomp.profile`. A request is a
//! `struct lxc_cmd_req { int cmd; int datalen; void *data; }` sent with `SCM_CREDENTIALS`
//! (a small argument travels in the pointer-sized `data` field, a larger one in `datalen`
//! bytes after it), the answer a `struct lxc_cmd_rsp { int ret; int datalen; void *data; }`
//! followed by `datalen` bytes, one command per connection.
//!
//! # Trust
//!
//! Anyone may bind an abstract socket name. A monitor is started by the container's user
//! (or by root), so the peer's uid (`SO_PEERCRED`, recorded by the kernel when the monitor
//! called `listen`) must be one of the uids the caller names; any other peer is refused with
//! [`CommandSocketError::ForeignPeer`] instead of believed. Every answer is range-checked.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::socket::{
    self, sockopt, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag,
    SockType, UnixAddr, UnixCredentials,
};
use nix::sys::time::TimeVal;

use crate::State;

/// `LXC_CMD_GET_STATE`.
const GET_STATE: i32 = 3;
/// `LXC_CMD_GET_INIT_PID`.
const GET_INIT_PID: i32 = 4;
/// `LXC_CMD_GET_INIT_PIDFD` (LXC 4.0.?+): a pidfd of the container's init, passed along.
const GET_INIT_PIDFD: i32 = 18;
/// `LXC_CMD_GET_CONFIG_ITEM`: a configuration item as the running container has it.
const GET_CONFIG_ITEM: i32 = 7;
/// `LXC_CMD_GET_CGROUP_CTX` (LXC 5.0+): the monitor's own directory fds of the container's
/// payload cgroup in every hierarchy it manages, passed along (what liblxc's attach uses).
const GET_CGROUP_CTX: i32 = 23;
/// `CGROUP_CTX_MAX_FD`: the most hierarchies a `struct cgroup_ctx` names.
const CGROUP_CTX_MAX_FD: usize = 20;
/// `sizeof(struct cgroup_ctx)`: `{ __s32 layout; __u32 utilities; __u32 fd_len;
/// __s32 fd[CGROUP_CTX_MAX_FD]; }`, aligned to 8.
const CGROUP_CTX_LEN: usize = 96;
/// The most fds one answer carries.
const MAX_FDS: usize = CGROUP_CTX_MAX_FD;
/// `LXC_CMD_SERVE_STATE_CLIENTS`: set the monitor's state and wake its state listeners
/// (`lxc-wait`), as liblxc's freeze and unfreeze do around their cgroup writes.
const SERVE_STATE_CLIENTS: i32 = 12;
/// `sizeof(struct lxc_cmd_req)` and `sizeof(struct lxc_cmd_rsp)` on 64-bit Linux:
/// `{ int cmd_or_ret; int datalen; void *data; }`.
const MESSAGE_LEN: usize = 16;
/// `sizeof(sun_path)`: liblxc hashes the name when `<lxcpath>/<name>/command` does not fit
/// in it with a leading and a trailing NUL.
const SUN_PATH_LEN: usize = 108;

/// What the monitor of a container reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MonitorState {
    pub state: State,
    /// The host pid of the container's init; `None` when the monitor has none (yet).
    pub init_pid: Option<i32>,
}

/// Why the command socket gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum CommandSocketError {
    #[error("LXC command socket of {name}: {source}")]
    Io {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("LXC command socket of {name} is served by uid {uid}, not by the container's user")]
    ForeignPeer { name: String, uid: u32 },
    #[error("LXC command socket of {name}: {what}")]
    Protocol { name: String, what: String },
    #[error("LXC command socket of {name}: no answer before the deadline")]
    Timeout { name: String },
}

impl CommandSocketError {
    fn io(name: &str, source: io::Error) -> Self {
        if matches!(
            source.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ) {
            return CommandSocketError::Timeout {
                name: name.to_owned(),
            };
        }
        CommandSocketError::Io {
            name: name.to_owned(),
            source,
        }
    }

    fn protocol(name: &str, what: impl Into<String>) -> Self {
        CommandSocketError::Protocol {
            name: name.to_owned(),
            what: what.into(),
        }
    }
}

/// The abstract socket name (without the leading NUL) of the monitor of container `name`
/// in `lxcpath`, as liblxc's `lxc_make_abstract_socket_name` builds it.
pub fn socket_name(lxcpath: &Path, name: &str) -> Vec<u8> {
    let mut plain = lxcpath.as_os_str().as_bytes().to_vec();
    plain.push(b'/');
    plain.extend_from_slice(name.as_bytes());
    plain.extend_from_slice(b"/command");
    // liblxc prints into a buffer of SUN_PATH_LEN - 2 bytes and hashes when it does not fit.
    if plain.len() < SUN_PATH_LEN - 2 {
        return plain;
    }
    let mut key = lxcpath.as_os_str().as_bytes().to_vec();
    key.push(b'/');
    key.extend_from_slice(name.as_bytes());
    format!("lxc/{:016x}/command", fnv1a_64(&key)).into_bytes()
}

/// 64-bit FNV-1a, liblxc's hash for socket names that are too long.
fn fnv1a_64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Asks the monitor of container `name` in `lxcpath` for its state and init pid.
///
/// `Ok(None)` when no monitor listens (liblxc's reading of that: the container is
/// stopped). `trusted_uids` are the uids a genuine monitor may run as (the container's user,
/// root). `deadline` bounds every connect, send and receive; `None` waits as long as the
/// monitor takes, like liblxc.
pub fn query_state(
    lxcpath: &Path,
    name: &str,
    trusted_uids: &[u32],
    deadline: Option<Instant>,
) -> Result<Option<MonitorState>, CommandSocketError> {
    let addr = socket_name(lxcpath, name);
    let Some(state) = get_state_at(&addr, name, trusted_uids, deadline)? else {
        return Ok(None);
    };
    if state == State::Stopped {
        return Ok(Some(MonitorState {
            state,
            init_pid: None,
        }));
    }
    // The monitor serves one command per connection. It may exit in between (the
    // container stopped): that is a stopped container, as liblxc would then report.
    let Some(pid) = request(&addr, name, GET_INIT_PID, 0, trusted_uids, deadline)? else {
        return Ok(Some(MonitorState {
            state: State::Stopped,
            init_pid: None,
        }));
    };
    let init_pid = i32::try_from(pid)
        .map_err(|_| CommandSocketError::protocol(name, format!("init pid {pid} out of range")))?;
    Ok(Some(MonitorState {
        state,
        init_pid: (init_pid > 0).then_some(init_pid),
    }))
}

/// The monitor's state alone (one round trip); `Ok(None)` when no monitor listens. See
/// [`query_state`] for the arguments.
pub fn get_state(
    lxcpath: &Path,
    name: &str,
    trusted_uids: &[u32],
    deadline: Option<Instant>,
) -> Result<Option<State>, CommandSocketError> {
    get_state_at(&socket_name(lxcpath, name), name, trusted_uids, deadline)
}

fn get_state_at(
    addr: &[u8],
    name: &str,
    trusted_uids: &[u32],
    deadline: Option<Instant>,
) -> Result<Option<State>, CommandSocketError> {
    let Some(state) = request(addr, name, GET_STATE, 0, trusted_uids, deadline)? else {
        return Ok(None);
    };
    let state = usize::try_from(state)
        .ok()
        .and_then(|i| State::ALL.get(i).copied())
        .ok_or_else(|| CommandSocketError::protocol(name, format!("unknown state {state}")))?;
    Ok(Some(state))
}

/// Tells the monitor that the container is now in `state`: it records it (what `state()`
/// and `lxc-info` report from then on) and wakes the clients waiting for it (`lxc-wait`).
/// This is what liblxc's freeze and unfreeze send around their cgroup writes. Returns
/// whether a monitor listened.
pub fn notify_state(
    lxcpath: &Path,
    name: &str,
    state: State,
    trusted_uids: &[u32],
    deadline: Option<Instant>,
) -> Result<bool, CommandSocketError> {
    let index = State::ALL
        .iter()
        .position(|s| *s == state)
        .expect("every state is in State::ALL") as i64;
    let addr = socket_name(lxcpath, name);
    Ok(request(
        &addr,
        name,
        SERVE_STATE_CLIENTS,
        index,
        trusted_uids,
        deadline,
    )?
    .is_some())
}

/// A pidfd of the init of container `name` in `lxcpath`, from its monitor (which holds it
/// since it started init, so it names that process even if its pid is reused later);
/// `Ok(None)` when no monitor listens. See [`query_state`] for the arguments.
pub fn get_init_pidfd(
    lxcpath: &Path,
    name: &str,
    trusted_uids: &[u32],
    deadline: Option<Instant>,
) -> Result<Option<OwnedFd>, CommandSocketError> {
    let addr = socket_name(lxcpath, name);
    let Some((_, fd)) = request_keeping_fd(&addr, name, GET_INIT_PIDFD, 0, trusted_uids, deadline)?
    else {
        return Ok(None);
    };
    fd.map(Some)
        .ok_or_else(|| CommandSocketError::protocol(name, "no pidfd came with the answer"))
}

/// The value of configuration item `key` in the running container (what liblxc's
/// `get_running_config_item` returns): `Ok(None)` when no monitor listens, `Ok(Some(None))`
/// when the item is unset or empty. See [`query_state`] for the other arguments.
pub fn get_config_item(
    lxcpath: &Path,
    name: &str,
    key: &str,
    trusted_uids: &[u32],
    deadline: Option<Instant>,
) -> Result<Option<Option<String>>, CommandSocketError> {
    let mut payload = key.as_bytes().to_vec();
    payload.push(0);
    let addr = socket_name(lxcpath, name);
    let Some(answer) = exchange(
        &addr,
        name,
        GET_CONFIG_ITEM,
        0,
        &payload,
        trusted_uids,
        deadline,
    )?
    else {
        return Ok(None);
    };
    if answer.ret != 0 {
        return Ok(Some(None));
    }
    let text = answer.body.split(|&b| b == 0).next().unwrap_or_default();
    let text = String::from_utf8(text.to_vec())
        .map_err(|_| CommandSocketError::protocol(name, format!("{key} is not UTF-8")))?;
    Ok(Some((!text.is_empty()).then_some(text)))
}

/// The container's payload cgroups, from its monitor: one directory fd per hierarchy it
/// manages (the monitor's own, opened when it created them, so no path is looked up
/// here); `Ok(None)` when no monitor listens. See [`query_state`] for the arguments.
pub fn get_cgroup_ctx(
    lxcpath: &Path,
    name: &str,
    trusted_uids: &[u32],
    deadline: Option<Instant>,
) -> Result<Option<Vec<OwnedFd>>, CommandSocketError> {
    let addr = socket_name(lxcpath, name);
    let Some(answer) = exchange(
        &addr,
        name,
        GET_CGROUP_CTX,
        0,
        &[0u8; CGROUP_CTX_LEN],
        trusted_uids,
        deadline,
    )?
    else {
        return Ok(None);
    };
    // `-ENOENT`: the monitor manages no writable hierarchy.
    if answer.ret == -libc::ENOENT {
        return Ok(Some(Vec::new()));
    }
    if answer.ret < 0 {
        return Err(CommandSocketError::io(
            name,
            io::Error::from_raw_os_error(-answer.ret),
        ));
    }
    if answer.body.len() < 12 {
        return Err(CommandSocketError::protocol(
            name,
            format!("a cgroup context of {} bytes", answer.body.len()),
        ));
    }
    let fd_len = u32::from_ne_bytes(answer.body[8..12].try_into().expect("4 bytes")) as usize;
    if fd_len != answer.fds.len() {
        return Err(CommandSocketError::protocol(
            name,
            format!(
                "the cgroup context names {fd_len} hierarchies but {} fds came with it",
                answer.fds.len()
            ),
        ));
    }
    Ok(Some(answer.fds))
}

/// One command on a fresh connection (`data` in the request's pointer-sized field, as
/// liblxc encodes small arguments); returns the integer in the answer's `data` field, or
/// `None` when nobody listens.
fn request(
    addr: &[u8],
    name: &str,
    command: i32,
    data: i64,
    trusted_uids: &[u32],
    deadline: Option<Instant>,
) -> Result<Option<i64>, CommandSocketError> {
    Ok(request_keeping_fd(addr, name, command, data, trusted_uids, deadline)?.map(|(d, _)| d))
}

/// [`request`], also returning the first fd the monitor passed with its answer.
fn request_keeping_fd(
    addr: &[u8],
    name: &str,
    command: i32,
    data: i64,
    trusted_uids: &[u32],
    deadline: Option<Instant>,
) -> Result<Option<(i64, Option<OwnedFd>)>, CommandSocketError> {
    let Some(answer) = exchange(addr, name, command, data, &[], trusted_uids, deadline)? else {
        return Ok(None);
    };
    if answer.ret < 0 {
        return Err(CommandSocketError::io(
            name,
            io::Error::from_raw_os_error(-answer.ret),
        ));
    }
    if !answer.body.is_empty() {
        return Err(CommandSocketError::protocol(
            name,
            format!(
                "unexpected answer of {} bytes to command {command}",
                answer.body.len()
            ),
        ));
    }
    Ok(Some((answer.data, answer.fds.into_iter().next())))
}

/// A monitor's answer: `struct lxc_cmd_rsp`, the fds passed with it and the `datalen`
/// bytes that follow it.
struct Answer {
    ret: i32,
    data: i64,
    fds: Vec<OwnedFd>,
    body: Vec<u8>,
}

/// The most bytes an answer may carry after its header (the largest answer asked for is
/// a `struct cgroup_ctx`).
const MAX_BODY: usize = 4096;

/// One command on a fresh connection: the request (`data` in its pointer-sized field,
/// `payload` after it, as liblxc's `lxc_cmd_send` sends both) and the whole answer;
/// `None` when nobody listens.
fn exchange(
    addr: &[u8],
    name: &str,
    command: i32,
    data: i64,
    payload: &[u8],
    trusted_uids: &[u32],
    deadline: Option<Instant>,
) -> Result<Option<Answer>, CommandSocketError> {
    let sock = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| CommandSocketError::io(name, e.into()))?;
    if let Some(deadline) = deadline {
        // SO_SNDTIMEO also bounds a unix-socket connect waiting for a full backlog.
        let left = remaining(deadline).ok_or_else(|| CommandSocketError::Timeout {
            name: name.to_owned(),
        })?;
        let tv = TimeVal::new(left.as_secs() as _, left.subsec_micros().max(1) as _);
        socket::setsockopt(&sock, sockopt::SendTimeout, &tv)
            .and_then(|()| socket::setsockopt(&sock, sockopt::ReceiveTimeout, &tv))
            .map_err(|e| CommandSocketError::io(name, e.into()))?;
    }
    let unix = UnixAddr::new_abstract(addr).map_err(|e| CommandSocketError::io(name, e.into()))?;
    match socket::connect(sock.as_raw_fd(), &unix) {
        Ok(()) => {}
        Err(Errno::ECONNREFUSED | Errno::ENOENT) => return Ok(None),
        Err(e) => return Err(CommandSocketError::io(name, e.into())),
    }
    let peer = socket::getsockopt(&sock, sockopt::PeerCredentials)
        .map_err(|e| CommandSocketError::io(name, e.into()))?;
    if !trusted_uids.contains(&peer.uid()) {
        return Err(CommandSocketError::ForeignPeer {
            name: name.to_owned(),
            uid: peer.uid(),
        });
    }

    let mut req = [0u8; MESSAGE_LEN];
    req[..4].copy_from_slice(&command.to_ne_bytes());
    let payload_len = i32::try_from(payload.len()).expect("payloads are small");
    req[4..8].copy_from_slice(&payload_len.to_ne_bytes());
    req[8..].copy_from_slice(&data.to_ne_bytes());
    let creds = UnixCredentials::new();
    let sent = socket::sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(&req)],
        &[ControlMessage::ScmCredentials(&creds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map_err(|e| CommandSocketError::io(name, e.into()))?;
    if sent != MESSAGE_LEN {
        return Err(CommandSocketError::protocol(name, "short request write"));
    }
    if !payload.is_empty() {
        ctl_process::write_all(std::os::fd::AsFd::as_fd(&sock), payload)
            .map_err(|e| CommandSocketError::io(name, e))?;
    }

    let mut rsp = [0u8; MESSAGE_LEN];
    let mut got = 0;
    let mut fds = Vec::new();
    while got < MESSAGE_LEN {
        let n = receive(&sock, &mut rsp[got..], &mut fds)
            .map_err(|e| CommandSocketError::io(name, e))?;
        if n == 0 {
            // The monitor hung up without an answer: it is going away.
            return Err(CommandSocketError::protocol(
                name,
                "the monitor closed the connection without an answer",
            ));
        }
        got += n;
    }
    let ret = i32::from_ne_bytes(rsp[0..4].try_into().expect("4 bytes"));
    let datalen = i32::from_ne_bytes(rsp[4..8].try_into().expect("4 bytes"));
    let data = i64::from_ne_bytes(rsp[8..16].try_into().expect("8 bytes"));
    let datalen = usize::try_from(datalen)
        .ok()
        .filter(|&n| n <= MAX_BODY)
        .ok_or_else(|| {
            CommandSocketError::protocol(name, format!("answer length {datalen} out of range"))
        })?;
    let mut body = vec![0u8; datalen];
    let mut got = 0;
    while got < datalen {
        let n = receive(&sock, &mut body[got..], &mut fds)
            .map_err(|e| CommandSocketError::io(name, e))?;
        if n == 0 {
            return Err(CommandSocketError::protocol(
                name,
                "the monitor closed the connection in the middle of its answer",
            ));
        }
        got += n;
    }
    Ok(Some(Answer {
        ret,
        data,
        fds,
        body,
    }))
}

/// One `recvmsg`: the bytes read; the fds the peer passed along are appended to `fds`
/// (at most [`MAX_FDS`] per answer; any beyond are closed at once).
fn receive(sock: &OwnedFd, buf: &mut [u8], fds: &mut Vec<OwnedFd>) -> io::Result<usize> {
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; MAX_FDS]);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = socket::recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let n = msg.bytes;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(passed) = c {
            for fd in passed {
                // SAFETY: the kernel installed this fd in our table for us; nobody else
                // owns it, and dropping it closes it.
                let fd = unsafe { OwnedFd::from_raw_fd(fd) };
                if fds.len() < MAX_FDS {
                    fds.push(fd);
                }
            }
        }
    }
    if msg.flags.contains(MsgFlags::MSG_CTRUNC) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "more fds came with the answer than any command passes",
        ));
    }
    Ok(n)
}

fn remaining(deadline: Instant) -> Option<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_plain() {
        assert_eq!(
            socket_name(Path::new("/home/u/.local/share/lxc"), "web"),
            b"/home/u/.local/share/lxc/web/command".to_vec()
        );
    }

    #[test]
    fn long_names_are_hashed_like_liblxc() {
        // FNV-1a 64 reference values.
        assert_eq!(fnv1a_64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a_64(b"a"), 0xaf63_dc4c_8601_ec8c);
        let long = "x".repeat(100);
        let name = socket_name(Path::new("/lxc"), &long);
        let expected = format!(
            "lxc/{:016x}/command",
            fnv1a_64(format!("/lxc/{long}").as_bytes())
        );
        assert_eq!(name, expected.into_bytes());
        // The boundary: 105 bytes still fit (plus the two NULs), 106 do not.
        let fits = "y".repeat(105 - "/lxc//command".len());
        assert_eq!(socket_name(Path::new("/lxc"), &fits).len(), 105);
        let spills = "y".repeat(106 - "/lxc//command".len());
        assert!(socket_name(Path::new("/lxc"), &spills).starts_with(b"lxc/"));
    }

    #[test]
    fn nobody_listening_reads_as_stopped() {
        let dir = Path::new("/nonexistent/ctl-test-lxcpath");
        let answer = query_state(dir, "no-such-container", &[0], None).unwrap();
        assert_eq!(answer, None);
    }
}
