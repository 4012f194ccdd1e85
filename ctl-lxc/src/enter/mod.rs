//! An attach of our own: entering a running container the way runc and youki enter theirs
//! (`setns` into the init's namespaces, a fork into its pid namespace), with the
//! confinement liblxc's attach applies, and without liblxc's attach.
//!
//! # Why
//!
//! liblxc's attach, called by an unprivileged container user, loads the container's
//! configuration, runs two `newuidmap`/`newgidmap` helpers through a shell (to move the
//! process into the payload's cgroup v2 leaf) and makes several round trips to the
//! container's monitor before the seven `setns` calls, fork and exec that are the real
//! work (`docs/performance.md`). This does the real work only.
//!
//! # Steps (in the isolated worker of [`Container::attach_isolated`], single-threaded and
//! non-dumpable)
//!
//! 1. The configuration (`<lxcpath>/<name>/config` and what it includes) is read against
//!    an allow-list (`policy`): every key either needs nothing at attach time, is applied
//!    here (`lxc.no_new_privs`, `lxc.prlimit.*`, `lxc.environment`, `lxc.arch`,
//!    `lxc.seccomp.profile`, compiled before the fork by `seccomp`; the last two as the
//!    running container has them, from the monitor), or is covered by what the kernel says
//!    about init. Anything else is [`EnterError::NotCovered`].
//! 2. Init, from the monitor (`LXC_CMD_GET_INIT_PIDFD`): a pidfd, so that a recycled pid
//!    is never entered; its namespaces that differ from ours, its capability bounding set,
//!    its `NoNewPrivs`; an LSM label on init, or a seccomp filter no profile explains, is
//!    `NotCovered` (`target`).
//! 3. The payload cgroup in every hierarchy LXC manages, from the monitor as liblxc's
//!    attach gets it (`LXC_CMD_GET_CGROUP_CTX`: the monitor's own directory fds, no path
//!    looked up), checked against `/proc/<init>/cgroup` (init is there or below); its
//!    `cgroup.procs` files are opened as the container's user before any `setns`; after
//!    the fork the worker moves the child there (the worker itself stays in its own
//!    cgroups). In the cgroup v2 hierarchy the attached process then moves on, as the
//!    container's root, into the payload's leaf `.lxc`, as liblxc's attach does.
//! 4. One `setns(pidfd, flags)` joins every namespace that differs (the user namespace
//!    first, by the kernel), then a fork: the child is in the pid namespace.
//! 5. The child: stdio, the personality of `lxc.arch`, bounding set = init's, `lxc.prlimit.*`, `setgroups([])`,
//!    `setresgid`, `setresuid` (root inside), `no_new_privs` when init or the
//!    configuration has it, the seccomp filter, the requested ids, the working
//!    directory, every other fd closed at exec, then
//!    `execve` with liblxc's environment (`container=lxc`, `lxc.environment`, the caller's
//!    policy) and liblxc's exit codes (126, 127). Non-dumpable until the exec: the
//!    container's root cannot trace or open the fds of anything on the way in.
//!
//! # When it is used
//!
//! [`AttachEngine::Auto`] (the default) uses it when the options are liblxc's defaults
//! and nothing in steps 1–3 is `NotCovered`; otherwise liblxc's attach runs, so that the
//! container's configuration is never applied only in part. [`AttachEngine::Direct`] fails instead
//! (tests use it to compare the two), [`AttachEngine::Liblxc`] always uses liblxc's.
//!
//! [`Container::attach_isolated`]: crate::Container::attach_isolated

mod child;
pub mod policy;
mod seccomp;
mod target;

use std::io;

pub use policy::NotCovered;

use crate::attach::{AttachOptions, AttachProgram};
use crate::command_socket::CommandSocketError;
use crate::container::Container;
use crate::error::LxcError;
use crate::process::Pid;

/// Which attach enters the container.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AttachEngine {
    /// This crate's own ([`crate::enter`]) when it covers the container's configuration
    /// and the options, else liblxc's.
    #[default]
    Auto,
    /// This crate's own; an error when it does not cover the configuration.
    Direct,
    /// liblxc's.
    Liblxc,
}

/// Why the direct attach did not run the program.
#[derive(Debug, thiserror::Error)]
pub enum EnterError {
    /// The container asks for something this attach does not apply.
    #[error("{}: not applied by ctl's own attach ({})", .0.key, .0.why)]
    NotCovered(NotCovered),
    /// No monitor, or init is gone.
    #[error("the container is not running")]
    NotRunning,
    /// The container's monitor did not answer as expected.
    #[error(transparent)]
    Monitor(CommandSocketError),
    /// A step failed.
    #[error("{what}: {source}")]
    Os {
        what: String,
        #[source]
        source: io::Error,
    },
    /// The attached process could not start the program; why, as it reported.
    #[error("attached process: {0}")]
    Child(String),
}

impl EnterError {
    pub(crate) fn os(what: impl Into<String>, source: io::Error) -> EnterError {
        EnterError::Os {
            what: what.into(),
            source,
        }
    }

    fn not_covered(key: &str, why: impl Into<String>) -> EnterError {
        EnterError::NotCovered(NotCovered {
            key: key.to_owned(),
            why: why.into(),
        })
    }
}

/// Attaches `program` with the engine `opts` names (see the module docs); returns the pid
/// of the attached process, a child of this process.
pub(crate) fn attach(
    ct: &Container,
    opts: &AttachOptions,
    program: AttachProgram<'_>,
) -> Result<Pid, LxcError> {
    match opts.engine {
        AttachEngine::Liblxc => ct.attach(opts, program),
        AttachEngine::Direct => {
            direct(ct, opts, program).map_err(|e| LxcError::Isolated(e.to_string()))
        }
        AttachEngine::Auto => match direct(ct, opts, program) {
            Ok(pid) => Ok(pid),
            Err(EnterError::NotCovered(why)) => {
                tracing::debug!(key = %why.key, why = %why.why, "liblxc's attach instead of ctl's own");
                ct.attach(opts, program)
            }
            Err(e) => Err(LxcError::Isolated(e.to_string())),
        },
    }
}

/// The direct attach. Everything that may be `NotCovered` is decided before the first
/// step that cannot be undone (joining a cgroup or a namespace).
fn direct(
    ct: &Container,
    opts: &AttachOptions,
    program: AttachProgram<'_>,
) -> Result<Pid, EnterError> {
    if matches!(program, AttachProgram::Shell) {
        return Err(EnterError::not_covered(
            "attach",
            "a login shell (the user's, from the container's passwd)",
        ));
    }
    if opts.flags != lxc_sys::LXC_ATTACH_DEFAULT as libc::c_int || opts.namespaces.is_some() {
        return Err(EnterError::not_covered(
            "attach",
            "flags or namespaces other than liblxc's defaults",
        ));
    }
    let config = ct.lxc_path().join(ct.name()).join("config");
    if let Err(e) = std::fs::metadata(&config) {
        return Err(EnterError::os(config.display().to_string(), e));
    }
    let policy = policy::read_file(&config).map_err(EnterError::NotCovered)?;
    let init = target::open(ct.lxc_path(), ct.name(), policy.seccomp_profile)?;
    let payloads = target::payloads(ct.lxc_path(), ct.name(), &init)?;
    // What liblxc's attach takes from the running container, not from the file (which may
    // have changed since the start): the seccomp profile and the architecture.
    let filter = if policy.seccomp_profile {
        running_item(ct, "lxc.seccomp.profile")?
            .map(|path| seccomp::prepare(std::path::Path::new(&path)))
            .transpose()?
    } else {
        None
    };
    let personality = if policy.arch {
        match running_item(ct, "lxc.arch")? {
            Some(arch) => Some(policy::personality(&arch).ok_or_else(|| {
                EnterError::not_covered("lxc.arch", format!("{arch:?} (running): unknown"))
            })?),
            None => None,
        }
    } else {
        None
    };
    child::spawn(&init, &policy, payloads, filter, personality, opts, program)
}

/// A configuration item as the running container has it, from the monitor; `None` when
/// it has none.
fn running_item(ct: &Container, key: &str) -> Result<Option<String>, EnterError> {
    let trusted = [nix::unistd::geteuid().as_raw(), 0];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    crate::command_socket::get_config_item(ct.lxc_path(), ct.name(), key, &trusted, Some(deadline))
        .map_err(EnterError::Monitor)?
        .ok_or(EnterError::NotRunning)
}
