//! GetHostname, VethName.

use std::fs::File;

use ctl_core::{bail, container_command, CommandError, RunnerContext};
use nix::sched::CloneFlags;

use crate::util;

/// The container's hostname, read in its UTS namespace.
///
/// Runs as root outside the container's cgroups (fork placement, staying root): asks
/// liblxc for the init pid, enters `/proc/<init pid>/ns/uts` and calls `gethostname`. The
/// runner is a single-threaded process of its own, so changing its UTS namespace affects
/// nothing else. Fails when the container has no init pid (is not running).
#[container_command(placement = fork_as_root)]
pub fn get_hostname(ctx: &mut RunnerContext) -> Result<String, CommandError> {
    let ct = util::open_defined(ctx)?;
    let Some(pid) = ct.init_pid()? else {
        bail!("container {} is not running (it has no init pid)", ctx.id);
    };
    let path = format!("/proc/{pid}/ns/uts");
    let ns =
        File::open(&path).map_err(|e| CommandError::msg(format!("cannot open {path}: {e}")))?;
    // The pid could have been reused between the two questions if the container stopped;
    // if init is still the same process, the namespace opened is the container's.
    if ct.init_pid()? != Some(pid) {
        bail!(
            "container {} restarted while its hostname was read; try again",
            ctx.id
        );
    }
    nix::sched::setns(&ns, CloneFlags::CLONE_NEWUTS)
        .map_err(|e| CommandError::msg(format!("cannot enter the UTS namespace {path}: {e}")))?;
    let name =
        nix::unistd::gethostname().map_err(|e| CommandError::msg(format!("gethostname: {e}")))?;
    name.into_string()
        .map_err(|raw| CommandError::msg(format!("the hostname is not UTF-8: {raw:?}")))
}

/// The host-side name of the container's veth interface number `index`.
///
/// Asks the running container's monitor for `lxc.net.<index>.veth.pair`. Fails clearly
/// when the container is not running, has no interface `index`, or that interface is not
/// a veth.
#[container_command(placement = fork)]
pub fn veth_name(ctx: &mut RunnerContext, index: u32) -> Result<String, CommandError> {
    let ct = util::open_defined(ctx)?;
    util::require_running(&ct)?;
    let key = format!("lxc.net.{index}.veth.pair");
    let name = ct
        .get_running_config_item(&key)
        .ok()
        .filter(|n| !n.is_empty());
    if let Some(name) = name {
        return Ok(name);
    }
    match ct.get_running_config_item(&format!("lxc.net.{index}.type")) {
        Ok(kind) if !kind.is_empty() && kind != "veth" => {
            bail!(
                "network interface {index} of container {} is of type {kind}, not veth",
                ctx.id
            )
        }
        Ok(kind) if kind == "veth" => {
            bail!("container {} reports no host-side name for its veth interface {index} ({key} is empty)", ctx.id)
        }
        _ => bail!(
            "container {} has no network interface {index} ({key} is not set)",
            ctx.id
        ),
    }
}
