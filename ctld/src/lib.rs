//! `ctld`: a small reference daemon that embeds the framework in tokio, in the style of
//! osctld's client API. It listens on a Unix socket, reads one JSON request per line and
//! answers each with one JSON line (`README.md` of this crate has the protocol), and runs
//! every container request through ctl-core's async frontend (`ctl_core::async_frontend`):
//! one tokio task per request, no thread per call, the runner killed when the request is
//! dropped (its client went away, it was cancelled, its deadline passed, the daemon is
//! stopping).
//!
//! The container registry is a `ctl_provision::Provisioner` state directory, as `ctl`'s.

pub mod handlers;
pub mod metrics_text;
pub mod protocol;
pub mod server;

pub use server::{bind, Daemon, SocketFile};
