//! GetHostname, VethName.

use std::os::fd::AsFd;

use ctl_core::{bail, container_command, Call, Command, CommandError, Error, RunnerContext};
use nix::sched::CloneFlags;

use crate::lifecycle::checked_init_pid;
use crate::support;

/// The container's hostname, read in its UTS namespace.
///
/// The frontend asks `State` for the init pid (see `lifecycle::checked_init_pid`: checked as the
/// container's) and opens its UTS namespace itself (only one owned by the container's
/// user namespace); the runner, root outside the container's cgroups,
/// gets that namespace as its stdin, enters it and calls `gethostname`. Root never loads
/// the container's LXC config through liblxc: the container's user can edit that file,
/// and liblxc acts on some of its keys while loading it (`lxc.log.file` is opened for
/// writing). Fails when the container is not running.
#[container_command(placement = fork_as_root, frontend = get_hostname_frontend)]
pub fn get_hostname(ctx: &mut RunnerContext) -> Result<String, CommandError> {
    let Some(ns) = ctx.stdin.take() else {
        bail!(
            "GetHostname needs the container's UTS namespace as its stdin (its frontend opens it)"
        );
    };
    nix::sched::setns(&ns, CloneFlags::CLONE_NEWUTS).map_err(|e| {
        CommandError::msg(format!("cannot enter the container's UTS namespace: {e}"))
    })?;
    let name =
        nix::unistd::gethostname().map_err(|e| CommandError::msg(format!("gethostname: {e}")))?;
    name.into_string()
        .map_err(|raw| CommandError::msg(format!("the hostname is not UTF-8: {raw:?}")))
}

fn get_hostname_frontend(call: &Call<'_>) -> Result<String, Error> {
    let init = checked_init_pid(call, GetHostname::SPEC.name)?;
    let ns = init
        .open_ns("uts")
        .map_err(|e| Error::command(GetHostname::SPEC.name, e))?;
    GetHostname::runner(&call.clone().stdin(Some(ns.as_fd())))
}

/// The host-side name of the container's veth interface number `index`.
///
/// Asks the running container's monitor for `lxc.net.<index>.veth.pair`. Fails clearly
/// when the container is not running, has no interface `index`, or that interface is not
/// a veth.
#[container_command(placement = fork)]
pub fn veth_name(ctx: &mut RunnerContext, index: u32) -> Result<String, CommandError> {
    let ct = support::open_defined(ctx)?;
    support::require(&ct, ct.name(), support::Need::Running)?;
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
