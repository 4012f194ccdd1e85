//! What the commands share, public for plugin authors who write commands of their own on
//! LXC: opening the container and the one "is it running" check ([`state`],
//! [`require`]), the container's log for errors ([`logs`]), exit-status texts and bounds
//! ([`status`]), attaching through the isolated attach with the runner's seal
//! ([`attach`]), the container's cgroups seen from the host ([`host`]), the init pid
//! checked as the container's before root acts on it ([`initpid`]), and the tty message
//! of Wall and Stop ([`wall`]).
//!
//! Command modules import this module, `ctl-lxc` and `ctl-core`; the LXC knowledge itself
//! (config reader, cgroup layout, freezer, command socket, isolated attach) lives in
//! `ctl-lxc`.

pub mod attach;
pub mod host;
pub mod initpid;
pub mod logs;
pub mod state;
pub mod status;
pub mod wall;

pub use attach::{
    attach_and_report, attach_isolated, attach_options, attach_wait, dev_null, in_dumpable_worker,
    isolation, quiet_attach_options, start_dumpable_worker, ProgramStdio,
};
pub use host::{
    enter_container_cgroup_to_start, freezer_of_container, freezer_of_runner, kill_payload_tree,
    payload_cgroup_exists, process_in_container_cgroup, thaw_tree,
};
pub use logs::{log_file_of, log_offset, log_tail_since, with_log_tail};
pub use state::{open, open_defined, open_running, require, wait_stopped, Need, POLL_INTERVAL};
pub use status::{bounded_by, describe_status, exit_code, helper_timed_out, seconds};
