//! Options and programs for [`Container::attach`](crate::Container::attach).
//!
//! liblxc's `attach` forks twice: an intermediate process enters the container's
//! namespaces and clones the attached process with `CLONE_PARENT`, so the attached process
//! is a child of the caller (and must be reaped by it, see [`wait_pid`](crate::wait_pid)).
//! The program, whether a command or a Rust function, runs in that attached process.

use std::ffi::{c_int, c_void, CString};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::PathBuf;
use std::ptr;

use lxc_sys::lxc_attach_options_t;

use crate::error::LxcError;
use crate::strings::{cstring_path, NulTerminated};

/// The `PATH` osctld gives commands run in a container, independent of the host's.
pub const SYSTEM_PATH: &str = "/bin:/usr/bin:/sbin:/usr/sbin:/run/current-system/sw/bin:\
/nix/var/nix/profiles/system/sw/bin:/run/current-system/profile/bin:/run/current-system/profile/sbin:\
/var/guix/profiles/system/profile/bin:/var/guix/profiles/system/profile/sbin";

/// How the attached process's environment is built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvPolicy {
    /// Start from an empty environment (`LXC_ATTACH_CLEAR_ENV`) instead of the caller's.
    pub clear: bool,
    /// Names of the caller's variables kept when `clear` is set.
    pub keep: Vec<String>,
    /// Variables set in the attached process, after clearing.
    pub set: Vec<(String, String)>,
}

impl EnvPolicy {
    /// The caller's environment, unchanged (liblxc's default). Rarely what you want: the
    /// caller's `HOME`, `XDG_RUNTIME_DIR`, ... belong to the host user.
    pub fn inherit() -> Self {
        EnvPolicy {
            clear: false,
            keep: Vec::new(),
            set: Vec::new(),
        }
    }

    /// What osctld's Exec gives a command: a cleared environment that keeps only `TERM`,
    /// with `PATH` = [`SYSTEM_PATH`], `HOME=/root` and `USER=root`.
    pub fn clean() -> Self {
        EnvPolicy {
            clear: true,
            keep: vec!["TERM".to_owned()],
            set: vec![
                ("PATH".to_owned(), SYSTEM_PATH.to_owned()),
                ("HOME".to_owned(), "/root".to_owned()),
                ("USER".to_owned(), "root".to_owned()),
            ],
        }
    }

    /// Adds (or overrides) one variable.
    pub fn var(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let name = name.into();
        self.set.retain(|(n, _)| *n != name);
        self.set.push((name, value.into()));
        self
    }
}

impl Default for EnvPolicy {
    /// [`EnvPolicy::clean`].
    fn default() -> Self {
        EnvPolicy::clean()
    }
}

/// A set of namespaces, as `CLONE_NEW*` flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Namespaces(c_int);

impl Namespaces {
    pub const MOUNT: Namespaces = Namespaces(libc::CLONE_NEWNS);
    pub const PID: Namespaces = Namespaces(libc::CLONE_NEWPID);
    pub const UTS: Namespaces = Namespaces(libc::CLONE_NEWUTS);
    pub const IPC: Namespaces = Namespaces(libc::CLONE_NEWIPC);
    pub const USER: Namespaces = Namespaces(libc::CLONE_NEWUSER);
    pub const NET: Namespaces = Namespaces(libc::CLONE_NEWNET);
    pub const CGROUP: Namespaces = Namespaces(libc::CLONE_NEWCGROUP);

    /// The raw `CLONE_NEW*` bits.
    pub fn bits(self) -> c_int {
        self.0
    }
}

impl std::ops::BitOr for Namespaces {
    type Output = Namespaces;
    fn bitor(self, rhs: Namespaces) -> Namespaces {
        Namespaces(self.0 | rhs.0)
    }
}

/// Options of one attach. `Default` gives osctld's Exec behaviour: the caller's stdio,
/// a clean environment ([`EnvPolicy::clean`]), every namespace of the container, root
/// inside (uid 0, gid 0), and liblxc's default flags (move into the container's cgroups,
/// drop capabilities, set personality, LSM exec, remount /proc and /sys).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachOptions {
    /// Becomes fd 0 of the attached process. It is only `dup2`ed in the child, so an invalid
    /// fd makes the child fail, never this process.
    pub stdin: RawFd,
    /// Becomes fd 1 of the attached process.
    pub stdout: RawFd,
    /// Becomes fd 2 of the attached process.
    pub stderr: RawFd,
    /// The environment of the attached process.
    pub env: EnvPolicy,
    /// Namespaces to enter; `None` means all that the container has (liblxc asks the
    /// container's monitor).
    pub namespaces: Option<Namespaces>,
    /// User id inside the container.
    pub uid: u32,
    /// Group id inside the container.
    pub gid: u32,
    /// Working directory inside; `None` keeps the caller's path if it exists there.
    pub cwd: Option<PathBuf>,
    /// Raw `LXC_ATTACH_*` flags; defaults to `LXC_ATTACH_DEFAULT`.
    pub flags: c_int,
    /// Which attach enters the container ([`crate::enter`]); by default ours where it
    /// covers the container's configuration, else liblxc's.
    pub engine: crate::enter::AttachEngine,
}

impl Default for AttachOptions {
    fn default() -> Self {
        AttachOptions {
            stdin: 0,
            stdout: 1,
            stderr: 2,
            env: EnvPolicy::clean(),
            namespaces: None,
            uid: 0,
            gid: 0,
            cwd: None,
            flags: lxc_sys::LXC_ATTACH_DEFAULT as c_int,
            engine: crate::enter::AttachEngine::Auto,
        }
    }
}

impl AttachOptions {
    /// Sets the three standard fds of the attached process. The fds only need to stay open
    /// until `attach` returns: liblxc duplicates them into the child.
    pub fn stdio(mut self, stdin: impl AsFd, stdout: impl AsFd, stderr: impl AsFd) -> Self {
        self.stdin = stdin.as_fd().as_raw_fd();
        self.stdout = stdout.as_fd().as_raw_fd();
        self.stderr = stderr.as_fd().as_raw_fd();
        self
    }

    /// Replaces the environment policy.
    pub fn env(mut self, env: EnvPolicy) -> Self {
        self.env = env;
        self
    }
}

/// What the attached process runs.
#[derive(Clone, Copy)]
pub enum AttachProgram<'a> {
    /// `execvp(argv[0], argv)` inside the container, by liblxc's `lxc_attach_run_command`
    /// (exit status 127 if the program is not found, 126 if it cannot be executed).
    Command(&'a [&'a str]),
    /// The user's login shell inside the container, or `/bin/sh` (`lxc_attach_run_shell`).
    Shell,
    /// A Rust function run in the attached process; its return value is the exit status.
    ///
    /// The attached process is a `fork` of the calling process (liblxc forks, then clones),
    /// so it inherits a copy of the caller's memory but only the calling thread. If the
    /// caller has other threads, a lock they held (the allocator's, stdio's, a `Mutex`)
    /// stays locked forever in the child: the function must restrict itself to
    /// async-signal-safe work (raw syscalls, `libc` calls without locks) or `exec` quickly.
    /// A panic is caught and turned into exit status 101.
    Function(&'a dyn Fn() -> i32),
}

impl std::fmt::Debug for AttachProgram<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttachProgram::Command(argv) => f.debug_tuple("Command").field(argv).finish(),
            AttachProgram::Shell => f.write_str("Shell"),
            AttachProgram::Function(_) => f.write_str("Function(..)"),
        }
    }
}

/// `lxc_attach_options_t` plus the C strings its pointers point into. The pointers target
/// heap buffers owned by the vectors, so moving this struct keeps them valid.
pub(crate) struct RawAttachOptions {
    pub raw: lxc_attach_options_t,
    _env: NulTerminated,
    _keep: NulTerminated,
    _cwd: Option<CString>,
}

impl RawAttachOptions {
    pub fn new(opts: &AttachOptions) -> Result<Self, LxcError> {
        const OP: &str = "attach";
        let env = NulTerminated::new(
            OP,
            opts.env.set.iter().map(|(k, v)| {
                if k.is_empty() || k.contains('=') {
                    Err(LxcError::invalid(
                        OP,
                        format!("bad environment variable name {k:?}"),
                    ))
                } else {
                    Ok(format!("{k}={v}"))
                }
            }),
        )?;
        let keep = NulTerminated::new(OP, opts.env.keep.iter().map(|k| Ok(k.clone())))?;
        let cwd = opts
            .cwd
            .as_deref()
            .map(|p| cstring_path(OP, p))
            .transpose()?;
        let raw = lxc_attach_options_t {
            attach_flags: opts.flags,
            namespaces: opts.namespaces.map_or(-1, Namespaces::bits),
            personality: lxc_sys::LXC_ATTACH_DETECT_PERSONALITY as libc::c_long,
            initial_cwd: cwd
                .as_ref()
                .map_or(ptr::null_mut(), |c| c.as_ptr().cast_mut()),
            uid: opts.uid,
            gid: opts.gid,
            env_policy: if opts.env.clear {
                lxc_sys::lxc_attach_env_policy_t_LXC_ATTACH_CLEAR_ENV
            } else {
                lxc_sys::lxc_attach_env_policy_t_LXC_ATTACH_KEEP_ENV
            },
            extra_env_vars: env.as_ptr_or_null(),
            extra_keep_env: keep.as_ptr_or_null(),
            stdin_fd: opts.stdin,
            stdout_fd: opts.stdout,
            stderr_fd: opts.stderr,
            log_fd: -libc::EBADF,
            lsm_label: ptr::null_mut(),
            groups: lxc_sys::lxc_groups_t {
                size: 0,
                list: ptr::null_mut(),
            },
        };
        Ok(RawAttachOptions {
            raw,
            _env: env,
            _keep: keep,
            _cwd: cwd,
        })
    }
}

/// `lxc_attach_command_t` plus its strings.
pub(crate) struct RawCommand {
    pub raw: lxc_sys::lxc_attach_command_t,
    _argv: NulTerminated,
}

impl RawCommand {
    pub fn new(argv: &[&str]) -> Result<Self, LxcError> {
        if argv.is_empty() {
            return Err(LxcError::invalid("attach", "empty argv"));
        }
        let argv_c = NulTerminated::new("attach", argv.iter().map(|a| Ok((*a).to_owned())))?;
        let raw = lxc_sys::lxc_attach_command_t {
            program: argv_c.first(),
            argv: argv_c.as_ptr_or_null(),
        };
        Ok(RawCommand { raw, _argv: argv_c })
    }
}

/// The `exec_function` for [`AttachProgram::Function`]: calls the `&dyn Fn() -> i32` that
/// `payload` points to.
///
/// # Safety
/// `payload` must point to a live `&dyn Fn() -> i32`.
pub(crate) unsafe extern "C" fn run_function(payload: *mut c_void) -> c_int {
    // SAFETY: guaranteed by the caller (Container::attach passes a pointer to a local
    // `&dyn Fn() -> i32` that outlives the attach call; the child has a copy of it).
    let function: &&dyn Fn() -> i32 = unsafe { &*payload.cast::<&dyn Fn() -> i32>() };
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(function)).unwrap_or(101)
}
