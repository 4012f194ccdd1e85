//! What kind of file an fd or path is, for refusals that name it (the `ctl-process`
//! crate's, shared with `ctl-lxc`): root-side code reads only regular files in trees a
//! container's root or user controls (a FIFO blocks the reader, a device does what the
//! device does).

pub use ctl_process::files::{file_kind, require_regular};
