//! A small safe wrapper over liblxc 5, loaded lazily with `dlopen`.
//!
//! # Why our own wrapper
//!
//! The `lxc` crate 0.8 passes dangling `CString` pointers to liblxc (its `cstr!` macro
//! returns the pointer of a temporary), so liblxc reads freed memory. We only take the
//! struct layouts from `lxc-sys` (bindgen output of the installed `<lxc/*.h>`) and call
//! liblxc through the function pointers of `struct lxc_container`.
//!
//! # Why `dlopen`
//!
//! The entry points we need outside the container object (`lxc_container_new`,
//! `lxc_container_put`, `lxc_get_version`, `lxc_attach_run_command`, `lxc_attach_run_shell`)
//! are looked up in `liblxc.so.1` on first use and cached for the life of the process. No
//! `extern` function of `lxc-sys` is ever called, so with rustc's default `--as-needed`
//! a binary using this crate has no `DT_NEEDED` on liblxc: binaries (such as the runner)
//! that link it but do not talk to LXC on a given run do not pay for loading liblxc and its
//! ten dependencies (about 0.4 ms per exec here), and hosts without liblxc get an error at
//! first use ([`LxcError::Load`]) instead of a loader failure.
//!
//! # API
//!
//! - [`Container::open`] (`lxc_container_new`; drop calls `lxc_container_put`),
//!   [`Container::is_defined`], [`Container::is_running`], [`Container::state`] ([`State`],
//!   with [`State::as_str`] giving osctld's lower-case words), [`Container::init_pid`].
//! - Life cycle: [`Container::start`], [`Container::execute`] (`lxc-execute`),
//!   [`Container::stop`], [`Container::shutdown`], [`Container::reboot`],
//!   [`Container::reboot2`], [`Container::freeze`], [`Container::unfreeze`],
//!   [`Container::wait`].
//! - Config: [`Container::get_config_item`], [`Container::get_running_config_item`],
//!   [`Container::set_config_item`], [`Container::config_file_name`].
//! - Attach: [`Container::attach_isolated`] with an [`Isolation`], [`AttachOptions`] and an
//!   [`AttachProgram`] (a command, the shell, or a Rust function run in the attached
//!   child): the attach made by a forked child that reports back, so that liblxc cannot
//!   end the caller ([`isolated`]); [`Container::run_attached_reporting`] for a Rust
//!   function that reports text or an error. [`Container::attach`] + [`wait_pid`] is the
//!   raw call. liblxc's start and execute in a dumpable worker:
//!   [`isolated::in_dumpable_worker`], [`isolated::DumpableWorker`].
//!
//! - Without liblxc: [`command_socket::query_state`] asks a running container's monitor
//!   for its state and init pid over LXC's command socket, in-process; [`freezer`] freezes
//!   and thaws through the v1 freezer cgroup and tells the monitor; [`cgroup`] knows where
//!   LXC puts a container's payload cgroup; [`config`] reads the rootfs and the root ids
//!   of a container's config (for root, which must not load it through liblxc) and opens
//!   the rootfs beneath checks.
//!
//! Every failure is an [`LxcError`]; a failed container operation carries the operation,
//! liblxc's `error_string`/`error_num`, `errno` and the container's log file ([`OpError`]).
//!
//! # Who calls this
//!
//! liblxc decides what the caller may do by who the caller is. The ctl runner makes these
//! calls as the container's system user from inside the container's entry cgroups (the
//! osctld model), so that what liblxc creates (the monitor, cgroups below the entry, the
//! runtime files under `XDG_RUNTIME_DIR`) belongs to that user. Root can also reach an
//! unprivileged container's monitor: state, init pid, running config, freeze/unfreeze,
//! attach and stop were seen to work as root on these machines, but starting a container
//! as root would make root own what it creates.
//!
//! All `unsafe` code of the project's LXC access lives in this crate.

#![deny(clippy::undocumented_unsafe_blocks, unsafe_op_in_unsafe_fn)]

mod attach;
pub mod cgroup;
pub mod command_socket;
pub mod config;
mod container;
pub mod enter;
mod error;
mod files;
pub mod freezer;
pub mod isolated;
mod library;
mod process;
pub mod signals;
mod state;
mod strings;

pub use attach::{AttachOptions, AttachProgram, EnvPolicy, Namespaces, SYSTEM_PATH};
pub use container::{Container, ExecuteOptions};
pub use enter::AttachEngine;
pub use error::{LxcError, OpError};
pub use isolated::{Isolation, Report};
pub use library::{version, LIBRARY_NAME};
pub use process::{wait_pid, Pid};
pub use state::{State, UnknownState};
