//! The built-in container commands: osctld's `ContainerControl` set plus `Start`, each
//! defined once with `#[container_command]` and driving liblxc through `ctl-lxc`.
//! Linking this crate registers them all.
//!
//! Each command module holds command definitions and their frontends; what they share is
//! [`support`] (public: plugin authors use it too). LXC itself (the isolated attach, the
//! config reader, the cgroup layout, the freezer) is `ctl-lxc`'s.

#![deny(clippy::undocumented_unsafe_blocks, unsafe_op_in_unsafe_fn)]

pub mod exec;
pub mod info;
pub mod lifecycle;
pub mod mount;
pub mod stop;
pub mod support;
pub mod tasks;
pub mod wall;

pub use exec::netconfig;
pub use exec::{
    Exec, ExecOptions, ExecTerminal, Runscript, ScriptSource, Syscmd, SyscmdOutput, TerminalChoice,
    ValidRcs,
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
