//! WithRootfs and WithMountns: osctld passes a Ruby block to run inside the container's
//! rootfs or mount namespace. A closure cannot cross an exec, so here the block is a
//! *named task* registered with `inventory`, called with JSON arguments.
//!
//! ```
//! use ctl_core::CommandError;
//! use serde_json::Value;
//!
//! fn hostname(_args: Value) -> Result<Value, CommandError> {
//!     Ok(Value::String(std::fs::read_to_string("/etc/hostname")?.trim().to_owned()))
//! }
//! commands::rootfs_task!("etc_hostname", hostname);
//! ```
//!
//! Both commands run in the `fork_as_root` placement: the runner stays root (outside the
//! container's cgroups) until it has chrooted or entered the mount namespace, then becomes
//! the container's root host uid/gid (the `lxc.idmap` entries for id 0) before the task
//! runs. The runner is a single-threaded process, so `chroot` and `setns(CLONE_NEWNS)`
//! affect exactly the process that runs the task.
//!
//! What the root-side code needs from a container's LXC config is read without liblxc
//! ([`ctl_lxc::config`]): loading a config that the container's user may edit with liblxc
//! as root would let that user name files for root to open (such as `lxc.log.file`).

use std::fmt;
use std::fs::File;
use std::io::Read;

use ctl_core::files::require_regular;
use ctl_core::{bail, container_command, CommandError, RunnerContext};
use ctl_lxc::config::{container_user_uid, open_rootfs, read_lxc_config, LxcConfig};
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid};
use serde_json::Value;

#[doc(hidden)]
pub use inventory as __inventory;

/// A task runnable by `WithRootfs` / `WithMountns`: a name and a function from JSON
/// arguments to a JSON result. Register one with [`rootfs_task!`](crate::rootfs_task).
#[derive(Debug)]
pub struct RootfsTask {
    pub name: &'static str,
    pub run: fn(Value) -> Result<Value, CommandError>,
}

inventory::collect!(RootfsTask);

/// Registers a [`RootfsTask`]: `rootfs_task!("name", function)`, at item level, in any
/// crate linked into the runner. `function` is a `fn(serde_json::Value) ->
/// Result<serde_json::Value, ctl_core::CommandError>`.
#[macro_export]
macro_rules! rootfs_task {
    ($name:expr, $run:expr $(,)?) => {
        $crate::tasks::__inventory::submit! {
            $crate::tasks::RootfsTask { name: $name, run: $run }
        }
    };
}

/// The names of every registered task, sorted.
pub fn task_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = inventory::iter::<RootfsTask>
        .into_iter()
        .map(|t| t.name)
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// The task registered as `name`.
pub fn find_task(name: &str) -> Result<&'static RootfsTask, CommandError> {
    let mut found = inventory::iter::<RootfsTask>
        .into_iter()
        .filter(|t| t.name == name);
    match (found.next(), found.next()) {
        (Some(task), None) => Ok(task),
        (Some(_), Some(_)) => bail!("task {name:?} is registered more than once"),
        (None, _) => bail!(
            "unknown task {name:?}; known tasks: {}",
            task_names().join(", ")
        ),
    }
}

/// Run the registered task `task` chrooted into the container's rootfs, as the
/// container's root host uid/gid.
#[container_command(placement = fork_as_root, frontend = with_rootfs_frontend)]
pub fn with_rootfs(
    ctx: &mut RunnerContext,
    task: String,
    args: Value,
) -> Result<Value, CommandError> {
    let task = find_task(&task)?;
    require_root()?;
    let owner = container_user_uid(&ctx.lxc_home, &ctx.user_home)?;
    let config = read_lxc_config(&ctx.lxc_home, &ctx.id, owner)?;
    let rootfs = open_rootfs(&config, &ctx.user_home)?;
    nix::unistd::fchdir(&rootfs)
        .map_err(|e| CommandError::msg(format!("fchdir into the rootfs: {e}")))?;
    nix::unistd::chroot(".")
        .map_err(|e| CommandError::msg(format!("chroot into the rootfs: {e}")))?;
    nix::unistd::chdir("/")
        .map_err(|e| CommandError::msg(format!("chdir / in the rootfs: {e}")))?;
    drop(rootfs);
    become_container_root(&config)?;
    (task.run)(args)
}

/// Run the registered task `task` in the mount namespace of `pid` (default: the init
/// pid), optionally chrooted (a path in that namespace), as the container's root host
/// uid/gid.
#[container_command(placement = fork_as_root, frontend = with_mountns_frontend)]
pub fn with_mountns(
    ctx: &mut RunnerContext,
    task: String,
    args: Value,
    #[kwarg(default)] pid: Option<i32>,
    #[kwarg(default)] chroot: Option<String>,
) -> Result<Value, CommandError> {
    let task = find_task(&task)?;
    require_root()?;
    let owner = container_user_uid(&ctx.lxc_home, &ctx.user_home)?;
    let config = read_lxc_config(&ctx.lxc_home, &ctx.id, owner)?;
    match pid {
        Some(pid) if pid > 0 => {}
        Some(pid) => bail!("bad pid {pid}"),
        None => bail!("WithMountns needs a pid (its frontend passes the init pid)"),
    }
    // The frontend opens the namespace from a checked pid (see `with_mountns_frontend`):
    // root does not load the user-editable LXC config through liblxc, nor enter a
    // namespace by a path a reused or forged pid could name.
    let Some(ns) = ctx.stdin.take() else {
        bail!("WithMountns needs the mount namespace as its stdin (its frontend opens it)");
    };
    nix::sched::setns(&ns, CloneFlags::CLONE_NEWNS).map_err(|e| {
        CommandError::msg(format!(
            "cannot enter the mount namespace of pid {}: {e}",
            pid.unwrap_or_default()
        ))
    })?;
    drop(ns);
    if let Some(dir) = &chroot {
        nix::unistd::chroot(dir.as_str())
            .map_err(|e| CommandError::msg(format!("chroot {dir}: {e}")))?;
    }
    nix::unistd::chdir("/").map_err(|e| CommandError::msg(format!("chdir /: {e}")))?;
    become_container_root(&config)?;
    (task.run)(args)
}

fn require_root() -> Result<(), CommandError> {
    if !nix::unistd::geteuid().is_root() {
        bail!("needs a runner that is root (the fork_as_root placement)");
    }
    Ok(())
}

/// `setgroups([gid])`, `setresgid(gid)`, `setresuid(uid)` with the container's root ids.
fn become_container_root(config: &LxcConfig) -> Result<(), CommandError> {
    let (uid, gid) = (config.root_uid, config.root_gid);
    let fail = |what: &str, e: nix::Error| CommandError::msg(format!("{what}: {e}"));
    nix::unistd::setgroups(&[Gid::from_raw(gid)]).map_err(|e| fail("setgroups", e))?;
    let g = Gid::from_raw(gid);
    nix::unistd::setresgid(g, g, g).map_err(|e| fail("setresgid", e))?;
    let u = Uid::from_raw(uid);
    nix::unistd::setresuid(u, u, u).map_err(|e| fail("setresuid", e))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Built-in tasks

/// Most `read_file` returns (the reply line of a runner is bounded too).
const MAX_READ_FILE: u64 = 2 << 20;

/// `read_file`: the content of the file `args` names (`"path"` or `{"path": "..."}`), as
/// text. Only a regular file is read: the path is the container's (its root controls what
/// is there), and a FIFO would block the runner until its deadline while a terminal or
/// another device (`/dev/tty` in the container's mount namespace is the host's, the
/// runner's controlling terminal is its daemon's) is not the container's data.
pub fn read_file(args: Value) -> Result<Value, CommandError> {
    let path = match &args {
        Value::String(path) => path.as_str(),
        Value::Object(map) => match map.get("path").and_then(Value::as_str) {
            Some(path) => path,
            None => bail!("read_file: the arguments need a \"path\" string"),
        },
        _ => bail!("read_file: the arguments must be a path or {{\"path\": ...}}"),
    };
    let file = open_regular_in_root(path)?;
    let mut bytes = Vec::new();
    file.take(MAX_READ_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| CommandError::msg(format!("{path}: {e}")))?;
    if bytes.len() as u64 > MAX_READ_FILE {
        bail!("{path} is larger than {} MiB", MAX_READ_FILE >> 20);
    }
    match String::from_utf8(bytes) {
        Ok(text) => Ok(Value::String(text)),
        Err(_) => bail!("{path} is not UTF-8 text"),
    }
}

crate::rootfs_task!("read_file", read_file);

/// Opens `path` (resolved in the process's root: after `chroot` or `setns` the container's)
/// for reading, if it is a regular file.
///
/// First an `O_PATH` handle says what the path is: opening a device or a FIFO for reading
/// can act (a terminal) or block (a FIFO without a writer), a path handle does neither.
/// The second open (`O_NONBLOCK`, `O_NOCTTY`) must find the same regular file, or the
/// container swapped it meanwhile. Symlinks are followed, inside the root only
/// (`RESOLVE_IN_ROOT`: `..` and absolute targets stay below it); `/proc` magic links
/// (`/proc/<pid>/root`, `fd/<n>`) are not followed at all.
fn open_regular_in_root(path: &str) -> Result<File, CommandError> {
    let fail = |e: &dyn fmt::Display| CommandError::msg(format!("{path}: {e}"));
    let root = nix::fcntl::open(
        "/",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| fail(&format!("cannot open the root directory: {e}")))?;
    let resolve = ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS;
    let probe = nix::fcntl::openat2(
        &root,
        path,
        OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
            .resolve(resolve),
    )
    .map_err(|e| fail(&e.desc()))?;
    let seen = nix::sys::stat::fstat(&probe).map_err(|e| fail(&e.desc()))?;
    require_regular(path, seen.st_mode).map_err(CommandError::msg)?;
    let fd = nix::fcntl::openat2(
        &root,
        path,
        OpenHow::new()
            .flags(OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
            .resolve(resolve),
    )
    .map_err(|e| fail(&e.desc()))?;
    let now = nix::sys::stat::fstat(&fd).map_err(|e| fail(&e.desc()))?;
    require_regular(path, now.st_mode).map_err(CommandError::msg)?;
    if (now.st_dev, now.st_ino) != (seen.st_dev, seen.st_ino) {
        bail!("{path} was replaced while it was being opened; refusing it");
    }
    Ok(File::from(fd))
}

/// Checks the container's config against the container's user (`Container::ugid`, which
/// the runner is not told) before the runner starts.
fn check_config_in_frontend(
    call: &ctl_core::Call<'_>,
    command: &str,
) -> Result<(), ctl_core::Error> {
    let ct = call.container();
    let config = read_lxc_config(&ct.lxc_home, &ct.id, ct.ugid)
        .map_err(|e| ctl_core::Error::command(command, e.to_string()))?;
    if command == "WithRootfs" {
        open_rootfs(&config, &ct.home)
            .map_err(|e| ctl_core::Error::command(command, e.to_string()))?;
    }
    Ok(())
}

/// Checks the config (see `check_config_in_frontend`), then runs the runner.
fn with_rootfs_frontend(
    call: &ctl_core::Call<'_>,
    task: String,
    args: Value,
) -> Result<Value, ctl_core::Error> {
    check_config_in_frontend(call, "WithRootfs")?;
    WithRootfs::runner(call, task, args)
}

/// Checks the config (see `check_config_in_frontend`), fills in the init pid (from
/// `State`, see `lifecycle::checked_init_pid`) when no pid is given, checks the pid as one of the
/// container's (`initpid::ValidatedInit`: an explicit one too) and hands the runner its
/// mount namespace, opened here, as its stdin.
fn with_mountns_frontend(
    call: &ctl_core::Call<'_>,
    task: String,
    args: Value,
    pid: Option<i32>,
    chroot: Option<String>,
) -> Result<Value, ctl_core::Error> {
    check_config_in_frontend(call, "WithMountns")?;
    let fail = |e: crate::support::initpid::InitError| ctl_core::Error::command("WithMountns", e);
    let init = match pid {
        Some(pid) => {
            crate::support::initpid::ValidatedInit::new(call.container(), pid).map_err(fail)?
        }
        None => crate::lifecycle::checked_init_pid(call, "WithMountns")?,
    };
    let ns = init.open_ns("mnt").map_err(fail)?;
    WithMountns::runner(
        &call.clone().stdin(Some(std::os::fd::AsFd::as_fd(&ns))),
        task,
        args,
        Some(init.pid()),
        chroot,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_are_found_by_name() {
        assert_eq!(find_task("read_file").unwrap().name, "read_file");
        let e = find_task("nope").unwrap_err();
        assert!(
            e.message().contains("unknown task \"nope\"") && e.message().contains("read_file"),
            "{e}"
        );
    }
}
