//! The built-in container commands: osctld's `ContainerControl` set plus `Start`, each
//! defined once with `#[container_command]` and driving liblxc through `ctl-lxc`.
//! Linking this crate registers them all.

pub mod exec;
mod freezer;
pub mod info;
pub(crate) mod initpid;
pub mod lifecycle;
pub mod mount;
pub mod netconfig;
mod osctld_modes;
pub mod stop;
pub mod tasks;
mod util;
pub mod wall;

pub use exec::{
    Exec, ExecOptions, ExecTerminal, Runscript, ScriptSource, Syscmd, SyscmdOutput, ValidRcs,
};
pub use info::{GetHostname, VethName};
pub use lifecycle::{Freeze, Reboot, Start, State, StateInfo, Unfreeze};
pub use mount::{Mount, Unmount};
pub use stop::{Stop, StopByHalt, StopMode, StopRunit};
pub use tasks::{RootfsTask, WithMountns, WithRootfs};
pub use wall::{Banner, Wall};

// A warm runner loads liblxc once; the children it forks for each command inherit it.
inventory::submit! {
    ctl_core::runner::WarmUp { name: "liblxc", run: || { let _ = ctl_lxc::version(); } }
}
