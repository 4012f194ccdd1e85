//! The runner half: the process that runs a command's runner function.
//!
//! The runner reads one envelope from stdin, applies the placement that travels in it
//! (while still root: fds, rlimits, cgroups, credentials), runs the command and writes one
//! reply line to the `return` fd. [`main`] is the standalone runner's `main`, which
//! [`runner_main!`](crate::runner_main) (the whole `ctl-runner` binary) calls;
//! [`run_if_runner`] turns a daemon into its own runner (a multi-call binary).

mod fds;
mod placement;
mod session;
mod warm;

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::PathBuf;

use crate::args::Args;
use crate::envelope::{Envelope, UserSpec, MAX_ENVELOPE_BYTES, PROTOCOL_VERSION};
use crate::registry::Registry;
use crate::reply::{ProtocolRefusal, Reply};

/// What a runner function gets: the container as the envelope describes it, and the
/// command's stdio.
#[derive(Debug)]
pub struct RunnerContext {
    /// The command's registered name.
    pub command: &'static str,
    pub pool: String,
    pub id: String,
    /// LXC path of the container.
    pub lxc_home: PathBuf,
    /// Home of the container's system user.
    pub user_home: PathBuf,
    pub log_file: Option<PathBuf>,
    /// The command's input, output and error output, as the frontend passed them.
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    /// The identity the runner switched to (`None`: root, or placed by another frontend).
    pub user: Option<UserSpec>,
    /// `PATH` of programs run inside the container, when the frontend set one
    /// (`Container::container_path`); see [`RunnerContext::container_path`].
    pub container_path: Option<String>,
    /// The container's cgroup (`Container::cgroup_path`, relative as `a/b/c`), below which
    /// LXC puts its payload and monitor, as our frontend's exec placement says (also in
    /// the children of a warm runner placed so). `None` in the fork placements and in
    /// osctld's envelopes, which do not say.
    pub container_cgroup: Option<String>,
    /// The entry cgroup this runner entered in the exec placement (relative), `None`
    /// otherwise. Where it differs from [`container_cgroup`](Self::container_cgroup)
    /// (osctld's layout), a command that starts the container moves there first: LXC
    /// creates the container's cgroups below its caller's.
    pub entry_cgroup: Option<String>,
}

impl RunnerContext {
    /// `PATH` for programs run inside the container: the frontend's, else osctld's system
    /// path ([`crate::container::DEFAULT_CONTAINER_PATH`]).
    pub fn container_path(&self) -> &str {
        self.container_path
            .as_deref()
            .unwrap_or(crate::container::DEFAULT_CONTAINER_PATH)
    }

    /// `pool:id`.
    pub fn ident(&self) -> String {
        format!("{}:{}", self.pool, self.id)
    }

    /// The command's input, borrowed.
    pub fn stdin_fd(&self) -> Option<BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        self.stdin.as_ref().map(|f| f.as_fd())
    }

    /// The command's output, borrowed.
    pub fn stdout_fd(&self) -> Option<BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        self.stdout.as_ref().map(|f| f.as_fd())
    }

    /// The command's error output, borrowed.
    pub fn stderr_fd(&self) -> Option<BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        self.stderr.as_ref().map(|f| f.as_fd())
    }
}

/// Work a warm runner does once, before it serves commands, so that every child it forks
/// inherits the result instead of repeating it (e.g. `dlopen` of liblxc). Register with
/// `inventory::submit!`; cold runners never run these.
pub struct WarmUp {
    pub name: &'static str,
    pub run: fn(),
}

inventory::collect!(WarmUp);

/// The (container, entry) cgroups of the placement this process applied: the children of a
/// warm runner, whose per-command envelopes carry no placement, inherit them.
static PLACED_CGROUPS: std::sync::OnceLock<(Option<String>, Option<String>)> =
    std::sync::OnceLock::new();

/// The fd of the reply pipe of the command this runner process serves (-1: none yet).
static REPLY_FD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

/// The container's lock handed over by the frontend (`Extension::lock_fd`; -1: none).
static LOCK_FD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

/// Whether this process holds a copy of a handed-over container lock
/// ([`release_container_lock`]).
pub fn holds_container_lock() -> bool {
    LOCK_FD.load(std::sync::atomic::Ordering::SeqCst) > 2
}

/// Closes this process's copy of the container's lock that the frontend handed over with
/// a command that holds it only until its program runs ([`crate::lock`]); nothing if
/// there is none. The lock is free once every process holding a copy closed it: the
/// runner calls this once it has forked the process that attaches, and that process once
/// the program is attached (`ctl_lxc::Isolation::with_release`); a worker that starts the
/// container (liblxc's monitor is a fork of it) calls it before anything else.
pub fn release_container_lock() {
    let fd = LOCK_FD.swap(-1, std::sync::atomic::Ordering::SeqCst);
    if fd > 2 {
        let _ = nix::unistd::close(fd);
    }
}

/// For a child forked from a runner that is about to enter a container (an attach): closes
/// this process's copies of the runner's conversation with its frontend — the reply pipe
/// and the envelope socket (fd 0) — and marks every other fd above 2 close-on-exec, so
/// that whatever the container runs inherits nothing of the runner but the standard fds
/// the attach sets up. Call it in the child only (the runner itself still needs them).
/// Fds the child needs until it executes the program (its own report pipe, the fds it
/// hands to liblxc, liblxc's log) stay usable until then.
pub fn seal_fds_for_attach() -> std::io::Result<()> {
    let reply = REPLY_FD.load(std::sync::atomic::Ordering::SeqCst);
    if reply > 2 {
        let _ = nix::unistd::close(reply);
    }
    // The envelope socket: replaced by /dev/null, so that fd 0 stays taken (liblxc and the
    // program's stdio setup expect 0, 1 and 2 to exist).
    let null = nix::fcntl::open(
        "/dev/null",
        nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    // SAFETY: dup2 onto fd 0, which no Rust object in the runner owns (std's stdin handle
    // only refers to the number).
    if unsafe { libc::dup2(null.as_raw_fd(), 0) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    drop(null);
    ctl_process::cloexec_from(3)
}

/// Defines the `main` of a runner binary: the whole of `ctl-runner`, and of a plugin
/// author's runner, is
///
/// ```ignore
/// #![no_main]
/// use commands as _;   // linking a crate registers its commands
/// use my_plugin as _;
/// ctl_core::runner_main!();
/// ```
///
/// with `ctl-core`'s `runner-binary` feature enabled (it links the unwinder statically).
/// Why `#![no_main]` and a C `main`: a runner is started for every command, and std's
/// runtime setup costs about 50 µs of each start here (it reads `/proc/self/maps` to find
/// the main thread's stack for its overflow guard). The runner needs none of it; the one
/// thing it keeps is ignoring SIGPIPE, so that a reply to a vanished frontend fails with
/// EPIPE instead of killing the runner silently.
#[macro_export]
macro_rules! runner_main {
    () => {
        #[no_mangle]
        pub extern "C" fn main(
            _argc: ::core::ffi::c_int,
            _argv: *const *const ::core::ffi::c_char,
        ) -> ::core::ffi::c_int {
            $crate::runner::c_main()
        }
    };
}

/// What [`runner_main!`] calls: ignores SIGPIPE, then [`main`].
#[doc(hidden)]
pub fn c_main() -> ! {
    // SAFETY: sets a disposition first thing in `main`, before any other thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    main()
}

/// Exit status for a runner that could not even reply (bad envelope, bad return fd).
pub const EXIT_BAD_INPUT: i32 = 2;

/// The standalone runner's `main`: `ctl-runner` reads an envelope from stdin; `--list`
/// prints the registered commands (`--json` for name, placement and summary).
pub fn main() -> ! {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let args: Vec<&str> = args
        .iter()
        .map(|a| a.to_str().unwrap_or("\u{fffd}"))
        .collect();
    match args.as_slice() {
        [] => serve_stdin(),
        ["--list"] => list(false),
        ["--list", "--json"] | ["--json", "--list"] => list(true),
        ["-h" | "--help"] => {
            print!("{USAGE}");
            std::process::exit(0)
        }
        ["-V" | "--version"] => {
            println!(
                "ctl-runner {} (protocol {PROTOCOL_VERSION})",
                env!("CARGO_PKG_VERSION")
            );
            std::process::exit(0)
        }
        other => {
            eprintln!(
                "ctl-runner: unexpected argument {:?}; see ctl-runner --help",
                other[0]
            );
            std::process::exit(EXIT_BAD_INPUT)
        }
    }
}

const USAGE: &str = "\
usage: ctl-runner               read one envelope (JSON) from stdin, run it, reply on its `return` fd
       ctl-runner --list [--json]  list the registered commands
       ctl-runner --version
";

/// Turns this process into a runner if it was started as one, and never returns then.
/// Call it first thing in a daemon's `main`: the frontend then starts this very binary
/// (`/proc/self/exe`) as its runner, so frontend and runner always come from one build.
pub fn run_if_runner() {
    crate::frontend::mark_multicall();
    let is_runner = std::env::args_os()
        .next()
        .and_then(|a| a.into_string().ok())
        .is_some_and(|a| is_runner_title(&a));
    if is_runner {
        serve_stdin()
    }
}

/// Whether `argv0` is a runner's process title (`ctl: <pool>:<id> runner:<name>`), which
/// is how the frontend starts its runner.
pub(crate) fn is_runner_title(argv0: &str) -> bool {
    argv0.starts_with("ctl: ") && argv0.contains(" runner:")
}

fn list(json: bool) -> ! {
    let registry = match Registry::global() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ctl-runner: {e}");
            std::process::exit(1)
        }
    };
    let mut out = std::io::stdout().lock();
    if json {
        let items: Vec<_> = registry
            .iter()
            .map(|r| {
                serde_json::json!({
                    "name": r.spec.name,
                    "placement": r.spec.placement_name(),
                    "summary": r.spec.summary(),
                    "osctld_shape": r.osctld.is_some(),
                })
            })
            .collect();
        let _ = writeln!(out, "{}", serde_json::Value::Array(items));
    } else {
        for r in registry.iter() {
            let _ = writeln!(out, "{}", r.spec.name);
        }
    }
    let _ = out.flush();
    std::process::exit(0)
}

/// Reads the envelope from stdin, runs it and exits.
pub(crate) fn serve_stdin() -> ! {
    // First of all: nothing this process starts may reach the caller's terminal, and
    // nobody may ptrace it. A runner placed by osctld's `SwitchUser` (setresuid to the
    // container's user, then exec) is dumpable after that exec, so the container's user
    // could take its reply pipe and the call's stdio; ours drop privileges themselves and
    // were made non-dumpable there too, but this covers every envelope.
    if let Err(e) = session::leave_terminal().and_then(|()| session::not_dumpable()) {
        eprintln!("ctl-runner: {e}");
        std::process::exit(EXIT_BAD_INPUT);
    }
    let mut input = Vec::with_capacity(4096);
    let read = read_envelope_bytes(&mut input);
    if let Err(e) = read {
        eprintln!("ctl-runner: cannot read the envelope from stdin: {e}");
        std::process::exit(EXIT_BAD_INPUT);
    }
    let envelope = match Envelope::from_slice(&input) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("ctl-runner: {e}");
            std::process::exit(EXIT_BAD_INPUT);
        }
    };
    drop(input);
    std::process::exit(run_envelope(envelope))
}

/// Reads the envelope from stdin: to EOF from a pipe or stream socket, or exactly one
/// message from a `SOCK_SEQPACKET` socket (a warm runner's, which stays open).
fn read_envelope_bytes(input: &mut Vec<u8>) -> std::io::Result<()> {
    use nix::sys::socket::{getsockopt, sockopt, SockType};
    let stdin = std::io::stdin();
    if let Ok(SockType::SeqPacket) = getsockopt(&stdin.as_fd(), sockopt::SockType) {
        input.resize(MAX_ENVELOPE_BYTES + 1, 0);
        let n = nix::sys::socket::recv(0, input, nix::sys::socket::MsgFlags::empty())?;
        input.truncate(n);
        return Ok(());
    }
    stdin
        .lock()
        .take(MAX_ENVELOPE_BYTES as u64 + 1)
        .read_to_end(input)
        .map(drop)
}

/// Runs one decoded envelope; returns the process exit status.
pub(crate) fn run_envelope(envelope: Envelope) -> i32 {
    // Only the fds the envelope names survive (plus 0, 1, 2): whatever else the process
    // inherited must not reach command code running as the container's user.
    let keep: Vec<RawFd> = envelope.named_fds().collect();
    if let Err(e) = fds::close_all_except(&keep) {
        eprintln!("ctl-runner: {e}");
        return EXIT_BAD_INPUT;
    }
    // The return fd must be usable before anything else: every later failure is reported
    // on it.
    let mut claimer = fds::Claimer::default();
    let return_fd = match claimer.output(envelope.return_fd, "return") {
        Ok(fd) => fd,
        Err(e) => {
            eprintln!("ctl-runner: {e}");
            return EXIT_BAD_INPUT;
        }
    };
    REPLY_FD.store(return_fd.as_raw_fd(), std::sync::atomic::Ordering::SeqCst);
    let reply = |reply: Reply| -> i32 {
        match write_all(&return_fd, &reply.to_line()) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("ctl-runner: cannot write the reply: {e}");
                1
            }
        }
    };
    let refuse = |protocol: ProtocolRefusal, message: String| Reply::Failed {
        message,
        protocol: Some(protocol),
    };
    // The envelope's fds or fields are not usable: the message is also the detail.
    let bad_envelope = |message: String| {
        refuse(
            ProtocolRefusal::Envelope {
                detail: message.clone(),
            },
            message,
        )
    };

    if let Some(ext) = &envelope.ctl {
        if ext.version != PROTOCOL_VERSION {
            return reply(refuse(
                ProtocolRefusal::Version {
                    runner: PROTOCOL_VERSION,
                    frontend: ext.version,
                },
                format!(
                    "runner speaks protocol version {PROTOCOL_VERSION}, frontend {}",
                    ext.version
                ),
            ));
        }
    }

    let mut stdio = || -> Result<_, fds::FdsError> {
        Ok((
            envelope
                .stdin
                .map(|fd| claimer.input(fd, "stdin"))
                .transpose()?,
            envelope
                .stdout
                .map(|fd| claimer.output(fd, "stdout"))
                .transpose()?,
            envelope
                .stderr
                .map(|fd| claimer.output(fd, "stderr"))
                .transpose()?,
        ))
    };
    let (stdin, stdout, stderr) = match stdio() {
        Ok(s) => s,
        Err(e) => return reply(bad_envelope(e.to_string())),
    };
    // Our frontends relay terminals and never hand one over (`crate::terminal`): a
    // terminal here is a frontend's bug or a forged envelope, and must not reach the
    // container. (osctld's envelopes, without our extension, are taken as they come.)
    if envelope.ctl.is_some() {
        let named = [("stdin", &stdin), ("stdout", &stdout), ("stderr", &stderr)];
        if let Some((what, _)) = named.iter().find(|(_, fd)| {
            fd.as_ref()
                .is_some_and(|fd| crate::terminal::is_terminal(fd.as_fd()))
        }) {
            return reply(bad_envelope(format!(
                "the {what} fd is a terminal; a terminal is relayed by the frontend, never \
                 handed to a runner"
            )));
        }
    }

    if let Some(lock_fd) = envelope.ctl.as_ref().and_then(|ext| ext.lock_fd) {
        match claim_lock_fd(&envelope, lock_fd) {
            Ok(()) => LOCK_FD.store(lock_fd, std::sync::atomic::Ordering::SeqCst),
            Err(e) => return reply(bad_envelope(e)),
        }
    }

    let mut user = None;
    let mut cgroups = None;
    if let Some(ext) = &envelope.ctl {
        if let Some(spec) = &ext.placement {
            let others: Vec<RawFd> = std::iter::once(envelope.return_fd)
                .chain(envelope.stdin)
                .chain(envelope.stdout)
                .chain(envelope.stderr)
                .collect();
            let procs_files = match placement::take_procs_files(spec, &others) {
                Ok(files) => files,
                Err(e) => return reply(bad_envelope(e.to_string())),
            };
            if let Err(e) = placement::apply(spec, ext.parent_pid, procs_files) {
                let e = e.to_string();
                return reply(refuse(ProtocolRefusal::Placement { detail: e.clone() }, e));
            }
            user = spec.user.clone();
            let entry = spec.create_cgroup.as_ref().map(|e| e.relative.clone());
            let container = spec.container_cgroup.clone().or_else(|| entry.clone());
            let _ = PLACED_CGROUPS.set((container.clone(), entry.clone()));
            cgroups = Some((container, entry));
        }
        if let Some(warm) = &ext.warm {
            drop((stdin, stdout, stderr));
            warm::serve(
                std::time::Duration::from_millis(warm.idle_timeout_ms),
                warm.warm_up,
                return_fd,
            );
        }
    }

    let registration = match Registry::find(&envelope.name) {
        Ok(Some(r)) => r,
        Ok(None) => return reply(Reply::error(format!("unknown command: {}", envelope.name))),
        Err(e) => return reply(Reply::error(e.to_string())),
    };
    let Some(run) = registration.runner else {
        return reply(Reply::error(format!(
            "{} is a frontend-only command and has no runner half",
            registration.spec.name
        )));
    };
    placement::set_comm(registration.spec.snake_name);

    let (container_cgroup, entry_cgroup) = cgroups
        .or_else(|| PLACED_CGROUPS.get().cloned())
        .unwrap_or_default();
    let mut ctx = RunnerContext {
        command: registration.spec.name,
        pool: envelope.pool,
        id: envelope.id,
        lxc_home: envelope.lxc_home.into(),
        user_home: envelope.user_home.into(),
        log_file: envelope.log_file.map(PathBuf::from),
        stdin,
        stdout,
        stderr,
        user,
        container_path: envelope.ctl.as_ref().and_then(|e| e.container_path.clone()),
        container_cgroup,
        entry_cgroup,
    };
    let args = Args::new(envelope.args, envelope.kwargs);
    // An envelope without our extension comes from osctld's own frontends: the command
    // reads it in osctld's shape and answers as osctld's runner does, where it declares
    // how (`crate::osctld`).
    let result = match registration.osctld {
        Some(osctld) if envelope.ctl.is_none() => osctld(&mut ctx, args, run),
        _ => run(&mut ctx, args),
    };
    drop(ctx);
    reply(match result {
        Ok(v) => Reply::ok(v),
        Err(e) => Reply::error(e.message()),
    })
}

/// Checks the lock fd the envelope names: an fd of its own (not 0-2, not another named
/// fd), open on a regular file; made close-on-exec so that no program inherits it.
fn claim_lock_fd(envelope: &Envelope, fd: RawFd) -> Result<(), String> {
    let others = std::iter::once(envelope.return_fd)
        .chain(envelope.stdin)
        .chain(envelope.stdout)
        .chain(envelope.stderr);
    if fd <= 2 || others.into_iter().any(|o| o == fd) {
        return Err(format!("lock fd {fd} is not an fd of its own"));
    }
    // SAFETY: only inspected; a number that is not open makes fstat fail.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    match nix::sys::stat::fstat(borrowed) {
        Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFREG => {}
        Ok(_) => return Err(format!("lock fd {fd} is not a regular file")),
        Err(e) => return Err(format!("lock fd {fd} is not open: {e}")),
    }
    nix::fcntl::fcntl(
        borrowed,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .map(drop)
    .map_err(|e| format!("lock fd {fd}: {e}"))
}

fn write_all(fd: &OwnedFd, bytes: &[u8]) -> std::io::Result<()> {
    ctl_process::write_all(fd.as_fd(), bytes)
}
