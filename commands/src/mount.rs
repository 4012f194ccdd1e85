//! Mount, Unmount.
//!
//! osctld gets a mount into a running container through a *shared directory*: a host
//! directory with shared propagation, bind-mounted into the container (where it is a
//! slave of the host side). The daemon mounts something below the host side, the mount
//! propagates into the container, and [`Mount`] moves it from `<shared_dir>/<src>` (the
//! container's view) to its final place. The daemon then unmounts its host-side copy;
//! the moved mount lives on in the container's mount namespace only.
//!
//! Like every command that attaches to an unprivileged container, both need
//! `setuid_helpers`: liblxc 5 moves the attached process into the container's cgroups
//! from a helper process in the container's user namespace, whose id map it writes with
//! `newuidmap`, a setuid program that `no_new_privs` would disarm ("newuidmap: write to
//! uid_map failed: Operation not permitted", then "Failed to attach cgroup").

use std::path::{Component, Path};
use std::time::{Duration, Instant};

use ctl_core::{bail, container_command, CommandError, RunnerContext};
use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};

use crate::support::{attach_and_report, open_running};

/// How long the process that Mount or Unmount attaches into the container may take before
/// it is killed and the command fails. It makes a few mount system calls, which take
/// milliseconds; but it lives in the container's pid namespace, where the container's root
/// can SIGSTOP it (or a hung file system can block an unmount), and nothing else would end
/// the command then: no caller deadline is required. 10 s is generous for a loaded machine
/// and still short enough for an operator waiting on the command.
pub const MOUNT_HELPER_TIMEOUT: Duration = Duration::from_secs(10);

/// Move the mount `shared_dir/src` (propagated into the container) onto `dst` inside
/// (created with its parents if missing). `shared_dir` and `dst` are absolute paths in the
/// container, `src` a relative path below `shared_dir`.
///
/// osctld's frontend passes the three as one hash (`[{shared_dir, src, dst}]`) and gets
/// `null`.
#[container_command(
    placement = exec,
    lock = exclusive,
    setuid_helpers,
    osctld = ctl_core::osctld::options_hash_without_output
)]
pub fn mount(
    ctx: &mut RunnerContext,
    #[kwarg] shared_dir: String,
    #[kwarg] src: String,
    #[kwarg] dst: String,
) -> Result<bool, CommandError> {
    check_absolute("shared_dir", &shared_dir)?;
    check_absolute("dst", &dst)?;
    if src.is_empty()
        || !Path::new(&src)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
    {
        bail!("src must be a relative path below shared_dir without `..`, not {src:?}");
    }
    let ct = open_running(ctx)?;
    let source = Path::new(&shared_dir).join(&src);
    let deadline = Instant::now() + MOUNT_HELPER_TIMEOUT;
    let report = attach_and_report(&ct, "the mount helper", deadline, &|| {
        move_mount(Path::new(&shared_dir), &source, Path::new(&dst)).map(|()| String::new())
    })?;
    report.map(|_| true)
}

/// Unmount `mountpoint` inside the container (not mounted is fine).
#[container_command(
    placement = exec,
    setuid_helpers,
    lock = exclusive,
    osctld = unmount_osctld
)]
pub fn unmount(ctx: &mut RunnerContext, mountpoint: String) -> Result<bool, CommandError> {
    check_absolute("mountpoint", &mountpoint)?;
    let ct = open_running(ctx)?;
    let deadline = Instant::now() + MOUNT_HELPER_TIMEOUT;
    let report = attach_and_report(&ct, "the unmount helper", deadline, &|| {
        unmount_inside(Path::new(&mountpoint)).map(|()| String::new())
    })?;
    report.map(|_| true)
}

/// osctld's Unmount: the same argument; `null`, or osctld's `unmount failed` (the reason
/// goes to the runner's stderr, where osctld logs its runner's warnings).
fn unmount_osctld(
    ctx: &mut RunnerContext,
    args: ctl_core::Args,
    native: ctl_core::RunnerFn,
) -> Result<ctl_core::osctld::Value, CommandError> {
    match native(ctx, args) {
        Ok(_) => Ok(ctl_core::osctld::Value::Null),
        Err(e) => {
            eprintln!("unmount {}: {e}", ctx.ident());
            Err(CommandError::msg("unmount failed"))
        }
    }
}

fn check_absolute(what: &str, path: &str) -> Result<(), CommandError> {
    let p = Path::new(path);
    if !p.is_absolute() || p.components().any(|c| matches!(c, Component::ParentDir)) {
        bail!("{what} must be an absolute path without `..`, not {path:?}");
    }
    Ok(())
}

/// In the attached process: make the shared directory a plain slave (LXC leaves the
/// container's mounts shared, and a mount whose parent is shared cannot be moved), create
/// `dst`, move the mount.
fn move_mount(shared_dir: &Path, source: &Path, dst: &Path) -> Result<(), String> {
    if !shared_dir.is_dir() {
        return Err(format!("Shared dir not found at: {}", shared_dir.display()));
    }
    if !source.is_dir() {
        return Err(format!(
            "Source directory not found at: {}",
            source.display()
        ));
    }
    nix::mount::mount(
        None::<&str>,
        shared_dir,
        None::<&str>,
        MsFlags::MS_SLAVE,
        None::<&str>,
    )
    .map_err(|e| {
        format!(
            "cannot make {} a slave mount (is it the shared directory's mount point?): {e}",
            shared_dir.display()
        )
    })?;
    std::fs::create_dir_all(dst).map_err(|e| format!("cannot create {}: {e}", dst.display()))?;
    nix::mount::mount(
        Some(source),
        dst,
        None::<&str>,
        MsFlags::MS_MOVE,
        None::<&str>,
    )
    .map_err(|e| {
        let hint = if e == Errno::EINVAL {
            " (is the source a mount point?)"
        } else {
            ""
        };
        format!(
            "cannot move the mount {} to {}: {e}{hint}",
            source.display(),
            dst.display()
        )
    })
}

/// In the attached process: unmount `mountpoint` if it exists and is mounted.
fn unmount_inside(mountpoint: &Path) -> Result<(), String> {
    if std::fs::symlink_metadata(mountpoint).is_err() {
        return Ok(());
    }
    match nix::mount::umount2(mountpoint, MntFlags::UMOUNT_NOFOLLOW) {
        Ok(()) | Err(Errno::EINVAL) => Ok(()),
        Err(e) => Err(format!("cannot unmount {}: {e}", mountpoint.display())),
    }
}
