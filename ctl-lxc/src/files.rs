//! What kind of file a mode is, for refusals that name it (the `ctl-process` crate's, the
//! same text as `ctl_core::files`).

pub(crate) use ctl_process::files::require_regular;
