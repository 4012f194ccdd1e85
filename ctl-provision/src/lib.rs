//! Provisions real unprivileged LXC test containers, the way osctld runs them: each
//! container under its own throwaway system user (uid = gid), with a subordinate id range
//! in `/etc/subuid` and `/etc/subgid`, a busybox rootfs owned by the mapped ids, an LXC
//! config like LXC's busybox template, and a delegated cgroup `ctl/<name>` in every
//! hierarchy (or osctld's layout below it, [`Layout::Osctld`]).
//!
//! - [`Provisioner::new`] takes the state directory (a temp dir in tests, `/var/lib/ctl`
//!   for the `ctl` CLI); [`Provisioner::create`], [`Provisioner::destroy`],
//!   [`Provisioner::load`] and [`Provisioner::list`] work on it and return
//!   [`ctl_core::Container`] records.
//! - [`oracle`] runs LXC's own tools as the container's user inside its cgroups, an
//!   oracle for tests that shares nothing with ctl-core's runner machinery.
//!
//! Everything here must run as root and changes the host (users, /etc files, cgroups, a
//! bridge for veth networking); it is meant for test machines.

#![forbid(unsafe_code)]

mod config;
mod error;
mod host;
mod names;
pub mod oracle;
mod provisioner;
mod rootfs;
mod safefs;

pub use config::Net;
pub use error::ProvisionError;
pub use host::{ID_RANGE, LOCK_FILE, SUBID_MIN, UGID_MAX, UGID_MIN};
pub use names::{user_name, validate as validate_name};
pub use provisioner::{
    CreateOptions, Layout, Provisioner, BRIDGE, CGROUP_PARENT, OSCTLD_USER_OWNED, SHARED_DIR_IN_CT,
    USER_MARKER,
};
