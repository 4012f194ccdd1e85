//! Exec, Runscript, Syscmd.
//!
//! All three run a program inside the container as its root, with the call's stdin, stdout
//! and stderr, and return its exit status (`128 + n` when it was killed by signal `n`):
//!
//! - running container: the runner attaches (liblxc `attach`) and executes the program
//!   with a clean environment (`PATH` a system path, `HOME=/root`, `USER=root`; `TERM`
//!   would be kept, but the runner's own environment never has one), working
//!   directory `/`;
//! - stopped container with `run`: the runner starts the container just for the program,
//!   the way `lxc-execute` does (liblxc `start` with `init.lxc` as pid 1, in the runner
//!   process, which is why these commands need `setuid_helpers`: `newuidmap`). Without
//!   `network` the container gets a network namespace with only a loopback device; with
//!   `network` it gets its configured network (`lxc.net.*`: interfaces, static addresses
//!   and gateways, set up by liblxc before the program starts);
//! - running container with `run`: attaches, as osctld does (`network` is then ignored);
//! - stopped container without `run`, frozen or changing state: refused.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use ctl_core::terminal::{self, WindowSize};
use ctl_core::{
    bail, container_command, Call, CommandError, Error, ErrorKind, RunnerContext, Stdio,
};
use ctl_lxc::{AttachOptions, AttachProgram, EnvPolicy, ExecuteOptions, Report, State};
use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid, UnlinkatFlags};
use serde::{Deserialize, Serialize};

use ctl_lxc::config::{open_rootfs, read_lxc_config};

use crate::support::{self, attach_options, exit_code, ProgramStdio};

pub mod netconfig;
mod osctld_modes;

/// Where Runscript's script comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScriptSource {
    /// A file on the host. (In the runner half: the path of the copy inside the container,
    /// as the frontend placed it.)
    File(PathBuf),
    /// The call's stdin: the frontend reads the whole script from it, and the script then
    /// runs with no stdin (`/dev/null`).
    Stdin,
}

/// How Exec sets up the program inside, beyond osctld's defaults: what users of
/// `lxc-attach` and `incus exec` expect (variables of the caller's to keep:
/// [`ExecOptions::keep_from_this_process`]). The default is osctld's: root (uid and gid 0), `/`
/// as working directory, and a cleared environment with `PATH` (the container's path),
/// `HOME=/root`, `USER=root` and, for interactive use, `TERM`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExecOptions {
    /// Variables to set, over the defaults (`lxc-attach -v`, `incus exec --env`).
    pub env: BTreeMap<String, String>,
    /// Start from an empty environment: no `PATH`, `HOME`, `USER` or `TERM` but what `env`
    /// sets (`lxc-attach --clear-env` with `-v`).
    pub clear: bool,
    /// Working directory inside (absolute); default `/`.
    pub cwd: Option<String>,
    /// User id inside the container; default 0.
    pub uid: Option<u32>,
    /// Group id inside the container; default 0.
    pub gid: Option<u32>,
    /// Whether the program runs on a terminal of the container's (a pty relayed by the
    /// frontend): by default when the call's stdin is a terminal (`incus exec`'s `-t`/`-T`
    /// force or disable it). The frontend's choice: not sent to the runner.
    #[serde(skip)]
    pub terminal: TerminalChoice,
}

/// [`ExecOptions::terminal`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TerminalChoice {
    /// A terminal session when the call's stdin is a terminal.
    #[default]
    Auto,
    /// Always a terminal session (the call's stdin, terminal or not, is relayed to it).
    Always,
    /// Never: the program gets the call's stdio as it is.
    Never,
}

impl ExecOptions {
    /// Refuses what cannot be an environment or a working directory.
    pub fn validate(&self) -> Result<(), CommandError> {
        for (name, value) in &self.env {
            if name.is_empty() || name.contains(['=', '\0']) {
                bail!("bad environment variable name {name:?}");
            }
            if value.contains('\0') {
                bail!("the value of {name} contains a NUL byte");
            }
        }
        if let Some(cwd) = &self.cwd {
            if !cwd.starts_with('/') || cwd.contains('\0') {
                bail!("the working directory must be an absolute path, not {cwd:?}");
            }
        }
        // liblxc reads -1 as "not set" and would run the program as root.
        for (what, id) in [("uid", self.uid), ("gid", self.gid)] {
            if id == Some(u32::MAX) {
                bail!(
                    "{what} {} is not an id (it means \"unset\" to the kernel)",
                    u32::MAX
                );
            }
        }
        Ok(())
    }

    /// Copies the variables `names` from *this process's* environment into
    /// [`env`](Self::env) (`lxc-attach --keep-var`; an explicit `env` entry wins, a name
    /// this process does not have is left out). For a command-line tool, whose environment
    /// is its user's; a daemon's own environment is not its clients', so a daemon passes
    /// its client's values in `env` instead.
    pub fn keep_from_this_process<S: AsRef<str>>(
        mut self,
        names: &[S],
    ) -> Result<ExecOptions, String> {
        for name in names {
            let name = name.as_ref();
            if name.is_empty() || name.contains(['=', '\0']) {
                return Err(format!("bad environment variable name {name:?}"));
            }
            if let Some(value) = std::env::var_os(name) {
                let value = value
                    .into_string()
                    .map_err(|_| format!("the value of {name} is not UTF-8"))?;
                self.env.entry(name.to_owned()).or_insert(value);
            }
        }
        Ok(self)
    }
}

/// [`ExecOptions`] with what the runner adds: the container's `PATH` and the terminal
/// type of an interactive session.
pub(crate) struct Setup<'a> {
    options: &'a ExecOptions,
    path: &'a str,
    term: Option<&'a str>,
}

impl<'a> Setup<'a> {
    pub(crate) fn new(options: &'a ExecOptions, path: &'a str, term: Option<&'a str>) -> Setup<'a> {
        Setup {
            options,
            path,
            term,
        }
    }

    /// The program's environment as a list.
    fn env_list(&self) -> Vec<(String, String)> {
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        if !self.options.clear {
            env.insert("PATH".into(), self.path.into());
            env.insert("HOME".into(), "/root".into());
            env.insert("USER".into(), "root".into());
            if let Some(term) = self.term {
                env.insert("TERM".into(), term.into());
            }
        }
        for (name, value) in &self.options.env {
            env.insert(name.clone(), value.clone());
        }
        env.into_iter().collect()
    }

    /// The options of the attach: root (or the chosen ids), the environment, the cwd.
    fn attach_options(&self, stdio: &ProgramStdio) -> AttachOptions {
        AttachOptions {
            env: EnvPolicy {
                clear: true,
                keep: Vec::new(),
                set: self.env_list(),
            },
            uid: self.options.uid.unwrap_or(0),
            gid: self.options.gid.unwrap_or(0),
            cwd: Some(PathBuf::from(self.options.cwd.as_deref().unwrap_or("/"))),
            ..attach_options(stdio, self.path)
        }
    }

    /// For a container started for the program: the ids and working directory of its
    /// init (`lxc.init.uid`, `lxc.init.gid`, `lxc.init.cwd`, in memory for this start).
    fn configure_start(&self, ct: &ctl_lxc::Container) -> Result<(), CommandError> {
        if let Some(uid) = self.options.uid {
            ct.set_config_item("lxc.init.uid", &uid.to_string())?;
        }
        if let Some(gid) = self.options.gid {
            ct.set_config_item("lxc.init.gid", &gid.to_string())?;
        }
        if let Some(cwd) = &self.options.cwd {
            ct.set_config_item("lxc.init.cwd", cwd)?;
        }
        Ok(())
    }
}

/// What `Syscmd` returns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyscmdOutput {
    pub exitstatus: i32,
    pub output: String,
}

/// Run a command inside the container with the call's stdin/stdout/stderr; returns its
/// exit status. `run` starts a stopped container just for the command (lxc-execute
/// style); `network` then sets up its configured network first.
#[container_command(
    placement = exec,
    setuid_helpers,
    lock = until_running,
    frontend = exec_frontend,
    async_frontend = exec_frontend_async,
    osctld = exec_osctld
)]
pub fn exec(
    ctx: &mut RunnerContext,
    cmd: Vec<String>,
    #[kwarg(default)] run: bool,
    #[kwarg(default)] network: bool,
    #[kwarg(default)] options: ExecOptions,
) -> Result<i32, CommandError> {
    if cmd.is_empty() {
        bail!("empty command");
    }
    options.validate()?;
    run_program(ctx, &cmd, run, network, &options)
}

/// Run a command inside the container on a new terminal of the container's own (a pty
/// of its devpts), for interactive use; returns its exit status. The runner's stdin must
/// be a unix socket: the pty's master end is sent over it (`SCM_RIGHTS`) to the frontend,
/// which relays between it and the caller's terminal (`ctl_core::terminal::PtyRelay`).
/// [`Exec`]'s frontend uses this when the call's stdin is a terminal: the caller's
/// terminal itself never reaches the container. With `run` on a stopped container the pty
/// comes from the host's devpts (the container's does not exist before it starts); it is
/// a fresh pty, not the caller's.
#[container_command(placement = exec, setuid_helpers, lock = until_running)]
pub fn exec_terminal(
    ctx: &mut RunnerContext,
    cmd: Vec<String>,
    #[kwarg(default)] run: bool,
    #[kwarg(default)] network: bool,
    #[kwarg(default)] term: Option<String>,
    #[kwarg(default)] size: Option<WindowSize>,
    #[kwarg(default)] options: ExecOptions,
) -> Result<i32, CommandError> {
    if cmd.is_empty() {
        bail!("empty command");
    }
    options.validate()?;
    let Some(channel) = ctx.stdin.take() else {
        bail!("ExecTerminal needs the frontend's terminal socket as its stdin");
    };
    match nix::sys::socket::getsockopt(&channel, nix::sys::socket::sockopt::SockType) {
        Ok(nix::sys::socket::SockType::SeqPacket | nix::sys::socket::SockType::Stream) => {}
        _ => bail!("ExecTerminal's stdin is not a unix socket (the frontend's terminal channel)"),
    }
    let term = term
        .filter(|t| !t.is_empty() && t.len() < 64 && !t.contains(['\0', '=']))
        .unwrap_or_else(|| "xterm".to_owned());
    let ct = support::open(ctx)?;
    if !ct.is_defined()? {
        bail!("container {} does not exist", ctx.ident());
    }
    match ct.state()? {
        State::Running => {
            let setup = Setup::new(&options, ctx.container_path(), Some(&term));
            terminal_attached(&ct, &cmd, size, channel, &setup)
        }
        State::Stopped if run => {
            support::enter_container_cgroup_to_start(ctx)?;
            let setup = Setup::new(&options, ctx.container_path(), Some(&term));
            terminal_started(&ct, &cmd, size, network, channel, &setup)
        }
        State::Stopped => bail!(
            "container {} is not running (set `run` to start it for the command)",
            ctx.ident()
        ),
        state @ (State::Frozen | State::Freezing) => {
            bail!("container {} is {state}; unfreeze it first", ctx.ident())
        }
        other => bail!(
            "container {} is {other}; try again when it is running or stopped",
            ctx.ident()
        ),
    }
}

/// Run a script inside the container with arguments `args`; returns its exit status. The
/// frontend copies the script (a host file, or the call's stdin) into the rootfs as a temporary 0500 file of
/// the container's root and removes it afterwards, whatever happens.
// `lock = none` here: the frontend takes the container's lock itself (until the script
// runs) once it has read the script, so that a slow caller's stdin never holds it.
#[container_command(
    placement = exec,
    setuid_helpers,
    lock = none,
    frontend = runscript_frontend,
    osctld = runscript_osctld
)]
pub fn runscript(
    ctx: &mut RunnerContext,
    script: ScriptSource,
    #[kwarg(default)] args: Vec<String>,
    #[kwarg(default)] run: bool,
    #[kwarg(default)] network: bool,
) -> Result<i32, CommandError> {
    let path = match script {
        ScriptSource::File(path) => path,
        ScriptSource::Stdin => {
            bail!("the script must be placed in the container by the frontend first")
        }
    };
    let Some(path) = path.to_str().filter(|p| p.starts_with('/')) else {
        bail!("bad script path inside the container: {}", path.display());
    };
    let mut argv = vec![path.to_owned()];
    argv.extend(args);
    run_program(ctx, &argv, run, network, &ExecOptions::default())
}

/// osctld's Exec options: `[mode, {cmd, init_script, net_config}]`.
#[derive(Debug, Deserialize)]
struct OsctldExec {
    cmd: Vec<String>,
    #[serde(flatten)]
    network: osctld_modes::Network,
}

/// osctld's Exec, in its modes `running`, `run` and `run_network` (see
/// `osctld_modes`); answers the exit status, `null` when the program was killed by
/// a signal.
fn exec_osctld(
    ctx: &mut RunnerContext,
    args: ctl_core::Args,
    _native: ctl_core::RunnerFn,
) -> Result<ctl_core::osctld::Value, CommandError> {
    let (mode, opts): (osctld_modes::Mode, OsctldExec) = ctl_core::osctld::mode_and_options(args)?;
    osctld_modes::run(ctx, mode, &opts.cmd, opts.network)
}

/// osctld's Runscript options: `[mode, {script, args, init_script, net_config}]`; the
/// script is a path inside the rootfs that osctld's frontend put there.
#[derive(Debug, Deserialize)]
struct OsctldRunscript {
    script: String,
    #[serde(default)]
    args: Option<Vec<String>>,
    #[serde(flatten)]
    network: osctld_modes::Network,
}

/// osctld's Runscript: the script with its arguments, in the modes of Exec. (osctld's own
/// runner drops the arguments in mode `run`; they are passed in every mode here.)
fn runscript_osctld(
    ctx: &mut RunnerContext,
    args: ctl_core::Args,
    _native: ctl_core::RunnerFn,
) -> Result<ctl_core::osctld::Value, CommandError> {
    let (mode, opts): (osctld_modes::Mode, OsctldRunscript) =
        ctl_core::osctld::mode_and_options(args)?;
    if !opts.script.starts_with('/') {
        bail!("bad script path inside the container: {}", opts.script);
    }
    let mut argv = vec![opts.script];
    argv.extend(opts.args.unwrap_or_default());
    osctld_modes::run(ctx, mode, &argv, opts.network)
}

/// Which exit statuses Syscmd accepts besides 0 (osctld's `valid_rcs`): a list, or
/// `"all"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValidRcs {
    /// These statuses and 0 (the default: none but 0).
    List(Vec<i32>),
    /// Every status.
    All,
}

impl ValidRcs {
    /// Whether Syscmd accepts exit status `rc`.
    pub fn accepts(&self, rc: i32) -> bool {
        match self {
            ValidRcs::List(list) => rc == 0 || list.contains(&rc),
            ValidRcs::All => true,
        }
    }
}

impl Default for ValidRcs {
    fn default() -> Self {
        ValidRcs::List(Vec::new())
    }
}

impl From<Vec<i32>> for ValidRcs {
    fn from(list: Vec<i32>) -> Self {
        ValidRcs::List(list)
    }
}

impl Serialize for ValidRcs {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ValidRcs::List(list) => list.serialize(s),
            ValidRcs::All => s.serialize_str("all"),
        }
    }
}

impl<'de> Deserialize<'de> for ValidRcs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            List(Vec<i32>),
            Word(String),
        }
        match Raw::deserialize(d)? {
            Raw::List(list) => Ok(ValidRcs::List(list)),
            Raw::Word(w) if w == "all" => Ok(ValidRcs::All),
            Raw::Word(w) => Err(serde::de::Error::custom(format!(
                "valid_rcs must be a list of exit statuses or \"all\", not {w:?}"
            ))),
        }
    }
}

/// Run a command inside the container and collect its output (stdout and stderr
/// together); an error unless its exit status is 0 or accepted by `valid_rcs`.
///
/// Its input is the call's stdin, or `input` (bytes; not both). `run` and `network` are
/// Exec's. A status the caller did not accept is [`ErrorKind::ProgramFailed`], which keeps
/// the exit status and the output.
#[container_command(frontend_only, lock = until_running)]
pub fn syscmd(
    call: &Call<'_>,
    cmd: Vec<String>,
    #[kwarg(default)] valid_rcs: ValidRcs,
    #[kwarg(default)] run: bool,
    #[kwarg(default)] network: bool,
    #[kwarg(default)] input: Option<Vec<u8>>,
) -> Result<SyscmdOutput, ctl_core::Error> {
    let ident = call.container().ident();
    let setup = |what: &'static str| move |e: Errno| Error::setup("Syscmd", what, e.into());
    // A memfd rather than a pipe: nothing has to read concurrently, and a background
    // process that keeps the output open cannot make us wait.
    let memfd =
        nix::sys::memfd::memfd_create(c"ctl-syscmd", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
            .map_err(setup("creating the output memfd"))?;
    let input_fd = match input {
        None => None,
        Some(_) if call.stdin_fd().is_some() => {
            return Err(Error::arguments(
                "Syscmd",
                "give the input either as the call's stdin or as bytes, not both",
            ))
        }
        Some(bytes) => Some(
            input_memfd(&bytes)
                .map_err(|source| Error::setup("Syscmd", "writing the input", source))?,
        ),
    };
    let mut exec_call = call
        .clone()
        .stdout(Stdio::Fd(memfd.as_fd()))
        .stderr(Stdio::Fd(memfd.as_fd()));
    if let Some(fd) = &input_fd {
        exec_call = exec_call.stdin(Some(fd.as_fd()));
    }
    let status = Exec::run_with(
        &exec_call,
        cmd.clone(),
        run,
        network,
        ExecOptions::default(),
    );
    drop(exec_call);
    drop(input_fd);
    let output = read_output(memfd)
        .map_err(|source| Error::setup("Syscmd", "reading the command's output", source))?;
    match status {
        Ok(rc) if valid_rcs.accepts(rc) => Ok(SyscmdOutput {
            exitstatus: rc,
            output,
        }),
        Ok(rc) => Err(Error::new(
            "Syscmd",
            ErrorKind::ProgramFailed {
                message: format!(
                    "command {cmd:?} in {ident} failed with exit status {rc}: {}",
                    output.trim_end()
                ),
                exitstatus: rc,
                output,
            },
        )),
        Err(e) => match e.command_message() {
            Some(message) => Err(Error::command(
                "Syscmd",
                format!("command {cmd:?} in {ident} failed: {message}"),
            )),
            None => Err(e),
        },
    }
}

/// The input bytes in a memfd, at offset 0, for the program's stdin.
fn input_memfd(bytes: &[u8]) -> std::io::Result<OwnedFd> {
    let fd =
        nix::sys::memfd::memfd_create(c"ctl-syscmd-in", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)?;
    let mut file = File::from(fd);
    file.write_all(bytes)?;
    file.seek(SeekFrom::Start(0))?;
    Ok(OwnedFd::from(file))
}

/// Most of a command's output Syscmd keeps (the rest is cut, with a note).
const MAX_SYSCMD_OUTPUT: u64 = 16 << 20;

fn read_output(memfd: OwnedFd) -> std::io::Result<String> {
    let mut file = File::from(memfd);
    file.seek(SeekFrom::Start(0))?;
    let mut bytes = Vec::new();
    (&mut file)
        .take(MAX_SYSCMD_OUTPUT + 1)
        .read_to_end(&mut bytes)?;
    let cut = bytes.len() as u64 > MAX_SYSCMD_OUTPUT;
    bytes.truncate(MAX_SYSCMD_OUTPUT as usize);
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    if cut {
        text.push_str("\n[output cut at 16 MiB]\n");
    }
    Ok(text)
}

// ---------------------------------------------------------------------------------------
// Exec's frontend: a terminal on stdin means an interactive session

/// With a terminal on the call's stdin, the program runs on a pty of the container's own
/// ([`ExecTerminal`]) and this process relays between that pty and the terminal; the
/// terminal is never handed to the runner or the container. Otherwise the runner gets the
/// call's stdio as it is (a terminal on stdout or stderr only is relayed through pipes by
/// `ctl_core::invoke`).
fn exec_frontend(
    call: &Call<'_>,
    cmd: Vec<String>,
    run: bool,
    network: bool,
    options: ExecOptions,
) -> Result<i32, Error> {
    let Some(stdin) = session_terminal(call, &options)? else {
        return Exec::runner(call, cmd, run, network, options);
    };
    let setup =
        |what: &'static str| move |source: std::io::Error| Error::setup("Exec", what, source);
    let (front, back) = nix::sys::socket::socketpair(
        nix::sys::socket::AddressFamily::Unix,
        nix::sys::socket::SockType::SeqPacket,
        None,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| setup("creating the terminal socket")(e.into()))?;
    // The session's output goes where the call's stdout goes (the same terminal, usually).
    // SAFETY: fd 1 exists for the process's whole life; borrowed for this call only.
    let stdout_fd = unsafe { BorrowedFd::borrow_raw(1) };
    let output = match call.stdout_stdio() {
        Stdio::Fd(fd) => fd,
        Stdio::Inherit => stdout_fd,
        Stdio::Null => stdin,
    };
    let size = terminal::window_size(stdin);
    let term = std::env::var("TERM").ok();
    let relay =
        terminal::PtyRelay::start(stdin, output, front).map_err(setup("relaying the terminal"))?;
    let runner_call = call
        .clone()
        .stdin(Some(back.as_fd()))
        .stdout(Stdio::Null)
        .stderr(Stdio::Null);
    let result = ExecTerminal::runner(&runner_call, cmd, run, network, term, size, options);
    drop(runner_call);
    drop(back);
    relay.finish();
    result
}

/// The terminal of an interactive session: the call's stdin when it is one (or when the
/// options ask for a session), else `None` (the program gets the call's stdio as it is).
fn session_terminal<'a>(
    call: &Call<'a>,
    options: &ExecOptions,
) -> Result<Option<BorrowedFd<'a>>, Error> {
    Ok(match options.terminal {
        TerminalChoice::Never => None,
        TerminalChoice::Auto => call.stdin_fd().filter(|fd| terminal::is_terminal(*fd)),
        TerminalChoice::Always => {
            Some(call.stdin_fd().ok_or_else(|| {
                Error::command("Exec", "a terminal session needs the call's stdin")
            })?)
        }
    })
}

ctl_core::if_tokio! {
    /// Exec's frontend, async: the runner half on the reactor (no thread per call) unless
    /// the call is an interactive session, whose relay is threads anyway: that runs the
    /// blocking frontend on tokio's blocking pool.
    async fn exec_frontend_async(
        call: &Call<'_>,
        cmd: Vec<String>,
        run: bool,
        network: bool,
        options: ExecOptions,
    ) -> Result<i32, Error> {
        if session_terminal(call, &options)?.is_none() {
            return Exec::runner_async(call, cmd, run, network, options).await;
        }
        let args = (Exec::__CTL_CODEC.1)(cmd, run, network, options)?;
        let value =
            ctl_core::async_frontend::run_frontend::<Exec>(call, Exec::__CTL_CODEC.2, args).await?;
        serde_json::from_value(value)
            .map_err(|e| Error::command("Exec", format!("cannot decode the output: {e}")))
    }
}

// ---------------------------------------------------------------------------------------
// Runscript's frontend: placing the script in the rootfs

/// Largest script Runscript copies.
const MAX_SCRIPT_BYTES: u64 = 64 << 20;

fn runscript_frontend(
    call: &Call<'_>,
    script: ScriptSource,
    args: Vec<String>,
    run: bool,
    network: bool,
) -> Result<i32, Error> {
    let refuse = |message: String| Error::command("Runscript", message);
    let ct = call.container();
    let (content, call) = match &script {
        ScriptSource::File(path) => {
            let content = read_script_file(path).map_err(refuse)?;
            (content, call.clone())
        }
        ScriptSource::Stdin => {
            let Some(stdin) = call.stdin_fd() else {
                return Err(refuse(
                    "the script comes from stdin, but the call has no stdin".to_owned(),
                ));
            };
            let content = read_script_stdin(stdin).map_err(refuse)?;
            // The script consumed the input; it runs with none.
            (content, call.clone().stdin(None))
        }
    };
    let config =
        read_lxc_config(&ct.lxc_home, &ct.id, ct.ugid).map_err(|e| refuse(e.to_string()))?;
    let rootfs = open_rootfs(&config, &ct.home).map_err(|e| refuse(e.to_string()))?;
    let placed = PlacedScript::create(rootfs, config.root_uid, config.root_gid, &content)
        .map_err(|e| refuse(e.to_string()))?;
    let inside = PathBuf::from(placed.path_inside());
    // The container's lock from here on (shared, until the script runs): not while the
    // script was read from the caller, who may take their time.
    let result = call
        .locked("Runscript", ctl_core::LockMode::UntilRunning)
        .and_then(|call| Runscript::runner(&call, ScriptSource::File(inside), args, run, network));
    // Removed on every path: `placed` is dropped here (and on the early returns above it
    // did not exist yet).
    drop(placed);
    result
}

/// Reads the script the caller named. It may lie in a tree someone else controls (a
/// container user's home): the daemon's thread must not block on a FIFO or read a
/// terminal, so it is opened without blocking and only a regular file is read.
fn read_script_file(path: &Path) -> Result<Vec<u8>, String> {
    let cannot =
        |e: &dyn std::fmt::Display| format!("cannot read the script {}: {e}", path.display());
    let fd = nix::fcntl::open(
        path,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| cannot(&e.desc()))?;
    let st = nix::sys::stat::fstat(&fd).map_err(|e| cannot(&e.desc()))?;
    ctl_core::files::require_regular(format!("the script {}", path.display()), st.st_mode)?;
    read_bounded(File::from(fd)).map_err(|e| cannot(&e))
}

fn read_script_stdin(stdin: BorrowedFd<'_>) -> Result<Vec<u8>, String> {
    let file = stdin
        .try_clone_to_owned()
        .map(File::from)
        .map_err(|e| format!("cannot read the script from stdin: {e}"))?;
    read_bounded(file).map_err(|e| format!("cannot read the script from stdin: {e}"))
}

fn read_bounded(file: File) -> std::io::Result<Vec<u8>> {
    let mut content = Vec::new();
    file.take(MAX_SCRIPT_BYTES + 1).read_to_end(&mut content)?;
    if content.len() as u64 > MAX_SCRIPT_BYTES {
        return Err(std::io::Error::other(format!(
            "larger than {} MiB",
            MAX_SCRIPT_BYTES >> 20
        )));
    }
    Ok(content)
}

/// A temporary script in the top directory of a rootfs, removed on drop.
///
/// It goes into the rootfs's top directory (as osctld does), not into `/tmp`: a running
/// container may have a file system mounted on its `/tmp` that would hide a file written
/// below the host's view of the rootfs, and the top directory cannot be covered. The
/// name is a single random component created with `openat2` beneath the rootfs directory
/// fd, refusing symlinks and mount crossings, with `O_CREAT | O_EXCL | O_NOFOLLOW`: a
/// container cannot make us write anywhere else, even with a symlink at that very name.
struct PlacedScript {
    dir: OwnedFd,
    name: String,
}

impl PlacedScript {
    fn create(dir: OwnedFd, uid: u32, gid: u32, content: &[u8]) -> Result<PlacedScript, String> {
        let mut last = Errno::EEXIST;
        for _ in 0..8 {
            let name = format!(".ctl-runscript-{:016x}", random_u64());
            let how = OpenHow::new()
                .flags(
                    OFlag::O_WRONLY
                        | OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                )
                .mode(Mode::from_bits_truncate(0o500))
                .resolve(
                    ResolveFlag::RESOLVE_BENEATH
                        | ResolveFlag::RESOLVE_NO_SYMLINKS
                        | ResolveFlag::RESOLVE_NO_MAGICLINKS
                        | ResolveFlag::RESOLVE_NO_XDEV,
                );
            let fd = match nix::fcntl::openat2(&dir, name.as_str(), how) {
                Ok(fd) => fd,
                Err(Errno::EEXIST) => continue,
                Err(e) => {
                    last = e;
                    break;
                }
            };
            // From here on the file exists: the guard removes it on any failure below.
            let placed = PlacedScript { dir, name };
            let mut file = File::from(fd);
            let fail = |what: &str, e: &dyn std::fmt::Display| {
                format!("cannot write the script into the rootfs ({what}): {e}")
            };
            file.write_all(content).map_err(|e| fail("write", &e))?;
            nix::unistd::fchown(&file, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))
                .map_err(|e| fail("chown", &e))?;
            nix::sys::stat::fchmod(&file, Mode::from_bits_truncate(0o500))
                .map_err(|e| fail("chmod", &e))?;
            // Closed before the runner starts: a file open for writing cannot be executed
            // (ETXTBSY).
            drop(file);
            return Ok(placed);
        }
        Err(format!(
            "cannot create the script in the rootfs: {}",
            last.desc()
        ))
    }

    /// The script's path as the container sees it.
    fn path_inside(&self) -> String {
        format!("/{}", self.name)
    }
}

impl Drop for PlacedScript {
    fn drop(&mut self) {
        if let Err(e) =
            nix::unistd::unlinkat(&self.dir, self.name.as_str(), UnlinkatFlags::NoRemoveDir)
        {
            tracing::warn!(name = %self.name, error = %e, "cannot remove the temporary Runscript script");
        }
    }
}

/// A random number for temporary names (std's hasher keys come from the OS's randomness).
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.finish()
}

// ---------------------------------------------------------------------------------------
// The runner half shared by Exec and Runscript

/// Runs `argv` in the container: attached when it runs, started for it with `run` when it
/// is stopped. Returns the exit status.
fn run_program(
    ctx: &RunnerContext,
    argv: &[String],
    run: bool,
    network: bool,
    options: &ExecOptions,
) -> Result<i32, CommandError> {
    let setup = Setup::new(options, ctx.container_path(), None);
    let ct = support::open(ctx)?;
    if !ct.is_defined()? {
        bail!("container {} does not exist", ctx.ident());
    }
    let state = ct.state()?;
    match state {
        State::Running => attached_with(ctx, &ct, argv, &setup).map(exit_code),
        State::Stopped if run => {
            support::enter_container_cgroup_to_start(ctx)?;
            let stdio = ProgramStdio::of(ctx)?;
            started_with_stdio(&ct, argv, network, stdio.fds, &setup)
        }
        State::Stopped => bail!(
            "container {} is not running (set `run` to start it for the command)",
            ctx.ident()
        ),
        State::Frozen | State::Freezing => {
            bail!("container {} is {state}; unfreeze it first", ctx.ident())
        }
        other => bail!(
            "container {} is {other}; try again when it is running or stopped",
            ctx.ident()
        ),
    }
}

fn c_argv(argv: &[String]) -> Result<Vec<CString>, CommandError> {
    argv.iter()
        .map(|a| {
            CString::new(a.as_str())
                .map_err(|_| CommandError::msg(format!("argument {a:?} contains a NUL byte")))
        })
        .collect()
}

/// Runs `argv` attached to the running container `ct` with the call's stdio, as the
/// container's root, in osctld's clean environment; returns its wait status.
pub(crate) fn attached_status(
    ctx: &RunnerContext,
    ct: &ctl_lxc::Container,
    argv: &[String],
) -> Result<ExitStatus, CommandError> {
    let options = ExecOptions::default();
    // osctld's runner keeps its own TERM for the program (`setup_exec_env`).
    let term = std::env::var("TERM").ok();
    let setup = Setup::new(&options, ctx.container_path(), term.as_deref());
    attached_with(ctx, ct, argv, &setup)
}

/// [`attached_status`] with these options.
fn attached_with(
    ctx: &RunnerContext,
    ct: &ctl_lxc::Container,
    argv: &[String],
    setup: &Setup<'_>,
) -> Result<ExitStatus, CommandError> {
    let c_argv = c_argv(argv)?;
    let stdio = ProgramStdio::of(ctx)?;
    // Runs in the attached process, a fork of this single-threaded runner.
    let program = || exec_argv(&c_argv);
    let status = support::attach_isolated(
        ct,
        &setup.attach_options(&stdio),
        AttachProgram::Function(&program),
        None,
    )?
    .ok_or_else(|| CommandError::msg("the attached program timed out"))?;
    drop(stdio);
    Ok(status)
}

/// [`ExecTerminal`] on a running container: the attached process (root inside, a fork of
/// this runner) opens a pty of the container's devpts, sends the master end to the
/// frontend, makes the slave its controlling terminal and stdio, and executes the program.
fn terminal_attached(
    ct: &ctl_lxc::Container,
    argv: &[String],
    size: Option<WindowSize>,
    channel: OwnedFd,
    setup: &Setup<'_>,
) -> Result<i32, CommandError> {
    let c_argv = c_argv(argv)?;
    let stdio = ProgramStdio::null()?;
    let channel_fd = channel.as_raw_fd();
    // Why the session could not be set up inside comes back as a report on this pipe
    // (close-on-exec: the program's exec closes it, so it is empty when the program ran).
    let (reader, writer) = ctl_lxc::isolated::report_pipe()?;
    let program = || match pty_in_container(channel_fd, size) {
        Ok(()) => exec_argv(&c_argv),
        Err(message) => {
            let _ = writer.send(&Report::Error(message));
            126
        }
    };
    let opts = setup.attach_options(&stdio);
    let status = support::attach_isolated(ct, &opts, AttachProgram::Function(&program), None);
    drop(writer);
    drop(channel);
    let status = status?.ok_or_else(|| CommandError::msg("the attached program timed out"))?;
    if let Some(Report::Error(why)) = reader.read()? {
        bail!("cannot set up the terminal session {why}");
    }
    Ok(exit_code(status))
}

/// In the attached process (inside the container, before the exec): a new pty from the
/// container's `/dev/ptmx`, its master sent over `channel` and closed here, the slave
/// made the controlling terminal of a new session and the process's stdio.
fn pty_in_container(channel: RawFd, size: Option<WindowSize>) -> Result<(), String> {
    let (master, slave) = terminal::open_pty().map_err(|e| format!("in the container: {e}"))?;
    if let Some(size) = size {
        let _ = terminal::set_window_size(slave.as_fd(), size);
    }
    // SAFETY: the channel is the runner's stdin socket, open in this fork of the runner
    // until it is closed below; only borrowed to send the master.
    let channel_fd = unsafe { BorrowedFd::borrow_raw(channel) };
    terminal::send_fd(channel_fd, master.as_fd())
        .map_err(|e| format!("cannot send the pty to the frontend: {e}"))?;
    drop(master);
    // Nothing of the runner's conversation survives into the program.
    let _ = nix::unistd::close(channel);
    terminal::become_session_leader_on(slave.as_fd()).map_err(|e| e.to_string())?;
    for target in 0..3 {
        // SAFETY: dup2 onto the standard fds of this process, which is about to exec;
        // nothing in it owns them as Rust objects any more (liblxc set them up).
        if unsafe { libc::dup2(slave.as_raw_fd(), target) } < 0 {
            return Err(format!("dup2: {}", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// [`ExecTerminal`] with `run` on a stopped container: a fresh pty of the host's devpts
/// (the runner's, as the container's user), its master sent to the frontend, its slave the
/// program's stdio.
fn terminal_started(
    ct: &ctl_lxc::Container,
    argv: &[String],
    size: Option<WindowSize>,
    network: bool,
    channel: OwnedFd,
    setup: &Setup<'_>,
) -> Result<i32, CommandError> {
    let (master, slave) = terminal::open_pty()?;
    if let Some(size) = size {
        let _ = terminal::set_window_size(slave.as_fd(), size);
    }
    terminal::send_fd(channel.as_fd(), master.as_fd())
        .map_err(|e| CommandError::msg(format!("cannot send the pty to the frontend: {e}")))?;
    drop(master);
    drop(channel);
    let slave = slave.as_raw_fd();
    started_with_stdio(ct, argv, network, [slave, slave, slave], setup)
}

/// `execvp` with the shell's exit statuses when it fails (127: not found, 126: cannot be
/// executed), the reason on stderr. A just-written script can be briefly busy (ETXTBSY,
/// while another process forked by the daemon still holds the writer's fd until its exec
/// closes it): that is retried for up to a second.
fn exec_argv(argv: &[CString]) -> i32 {
    default_sigpipe();
    let mut tries = 0;
    let error = loop {
        match nix::unistd::execvp(&argv[0], argv) {
            Err(Errno::ETXTBSY) if tries < 50 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => break e,
            Ok(never) => match never {},
        }
    };
    let _ = writeln!(
        std::io::stderr(),
        "{}: {}",
        argv[0].to_string_lossy(),
        error.desc()
    );
    if error == Errno::ENOENT {
        127
    } else {
        126
    }
}

/// Starts the stopped container for `argv` (liblxc's execute) with `fds` as the program's
/// stdio, and waits for it; with `term`, `fds[0]` is a terminal made for this session,
/// which becomes the controlling terminal of the worker running liblxc (see below).
fn started_with_stdio(
    ct: &ctl_lxc::Container,
    argv: &[String],
    network: bool,
    fds: [RawFd; 3],
    setup: &Setup<'_>,
) -> Result<i32, CommandError> {
    Ok(start_for_program(ct, argv, !network, fds, setup, &|| Ok(()))?.wait()?)
}

/// Starts the stopped container `ct` just for `argv`, as `lxc-execute` does (liblxc's
/// execute, `init.lxc` as pid 1), in a dumpable worker that is running when this returns
/// (liblxc's execute needs a dumpable caller; the runner is not one, see
/// `support::in_dumpable_worker`). `loopback_only` replaces the container's network with a
/// loopback device (in memory, for this start); `in_worker` runs in the worker first
/// (osctld's run modes: their callback and environment). The one start path of Exec,
/// ExecTerminal, Runscript and of osctld's modes.
pub(crate) fn start_for_program(
    ct: &ctl_lxc::Container,
    argv: &[String],
    loopback_only: bool,
    fds: [RawFd; 3],
    setup: &Setup<'_>,
    in_worker: &dyn Fn() -> Result<(), CommandError>,
) -> Result<ctl_lxc::isolated::DumpableWorker, CommandError> {
    let term = setup.term;
    if loopback_only {
        ct.set_config_item("lxc.net", "")?;
        ct.set_config_item("lxc.net.0.type", "empty")?;
        ct.set_config_item("lxc.net.0.flags", "up")?;
    }
    setup.configure_start(ct)?;
    let opts = ExecuteOptions {
        stdin: Some(fds[0]),
        stdout: Some(fds[1]),
        stderr: Some(fds[2]),
        env: setup.env_list(),
    };
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let worker = support::start_dumpable_worker("container start for the command", &|| {
        in_worker()?;
        if term.is_some() {
            // A terminal session: the fresh pty becomes the worker's controlling terminal,
            // which liblxc proxies as the container's console (without one, the console
            // would go nowhere). Never the caller's terminal: that stays with the frontend.
            // SAFETY: `fds[0]` is the session's pty, open in the runner and so in this fork.
            terminal::become_session_leader_on(unsafe { BorrowedFd::borrow_raw(fds[0]) })?;
        }
        // The program inherits the worker's signal dispositions through init.lxc's exec.
        default_sigpipe();
        Ok(exit_code(ct.execute(&argv, &opts)?))
    })?;
    // The start is under way (the worker closed its copy of a handed-over container lock
    // first thing): the program runs on for as long as it likes, and a Stop or Freeze
    // must not wait for it (`ctl_core::lock`).
    ctl_core::runner::release_container_lock();
    Ok(worker)
}

/// The runner ignores SIGPIPE (a reply to a vanished frontend must fail with EPIPE, not
/// kill it silently); an ignored signal survives `exec`, so programs run inside the
/// container get the default back, as a shell would give them.
fn default_sigpipe() {
    // SAFETY: async-signal-safe; in the attached child (a fork of the single-threaded
    // runner) and in the runner before it starts the container.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}
