//! # ctl-core
//!
//! The core of a pluggable command framework for container-management daemons, the
//! successor of osctld's `ContainerControl`. A daemon running as root runs *commands* on
//! LXC containers; each command has a *frontend* half (in the daemon) and a *runner* half
//! that runs in a separate process as the container's system user and replies with one
//! JSON line.
//!
//! - [`Container`]: what the daemon knows about a container (plain data).
//! - [`container_command`]: one definition generates both halves and the registration.
//! - [`Call`]: per-call options (stdio, deadline, placement, runner binary, launcher).
//! - [`Launcher`]: how runners are started (runner paths, spawning into the cgroup, the
//!   kept `cgroup.procs` files); calls use [`Launcher::global`] unless given another.
//! - [`Placement`]: exec (in the container's cgroups, with its rlimits), fork (outside) or
//!   fork as root (outside, staying root).
//! - [`Envelope`] / [`Reply`]: the osctld-compatible wire format.
//! - [`runner`]: the runner process; [`runner_main!`] is the whole `ctl-runner` binary.
//! - [`Registry`]: every command linked into the binary, by name.
//!
//! See `docs/expansion.md` in the repository for what `#[container_command]` expands to,
//! and `docs/design.md` for why the runner applies its own placement.

// Every unsafe operation in its own block, each block with the SAFETY argument that
// justifies it (as in ctl-lxc).
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

// The macro's expansion names `::ctl_core`; this makes it work inside this crate too.
extern crate self as ctl_core;

pub mod args;
pub mod call;
pub mod cgroup;
pub mod command;
pub mod container;
pub mod diag;
pub mod envelope;
pub mod error;
pub mod files;
pub mod frontend;
pub mod lock;
pub mod observe;
pub mod osctld;
/// Process mechanics shared with `ctl-lxc` (the `ctl-process` crate).
pub use ctl_process as process;
pub mod registry;
pub mod reply;
pub mod runner;
pub mod terminal;

pub use args::{Args, ArgsEncoder};
pub use call::{Call, Stdio};
pub use command::{AsyncFrontendFn, Command, CommandSpec, FrontendFn, Placement, RunnerFn};
pub use container::{Container, Rlimit, RlimitValue};
pub use ctl_derive::container_command;
pub use envelope::{Envelope, PROTOCOL_VERSION};
pub use error::{CommandError, Error, ErrorKind, ExitInfo, ProtocolError};
/// The async frontend (feature `tokio`).
#[cfg(feature = "tokio")]
pub use frontend::asynchronous as async_frontend;
pub use frontend::cancel::Cancellation;
pub use frontend::{invoke, invoke_by_name, runner_path, set_runner_path, Launcher};
pub use lock::{ContainerLock, LockMode};
pub use registry::{DuplicateCommand, Registration, Registry};
pub use reply::Reply;
pub use runner::RunnerContext;

/// The generated async methods: kept with the `tokio` feature, dropped without it (the
/// feature is `ctl-core`'s, decided where this macro is defined, not in the crate that
/// uses `#[container_command]`).
#[cfg(feature = "tokio")]
#[doc(hidden)]
#[macro_export]
macro_rules! __tokio_only {
    ($($item:tt)*) => { $($item)* };
}

/// See the other definition.
#[cfg(not(feature = "tokio"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __tokio_only {
    ($($item:tt)*) => {};
}

/// Items compiled only when ctl-core has its feature `tokio`: for a plugin crate's async
/// frontend (`#[container_command(frontend = f, async_frontend = g)]`), which uses the
/// async API and is referred to only by the async twins the macro generates. The feature
/// is ctl-core's, so the plugin needs none of its own.
///
/// ```ignore
/// ctl_core::if_tokio! {
///     async fn exec_frontend_async(call: &Call<'_>, cmd: Vec<String>) -> Result<i32, Error> {
///         Exec::runner_async(call, cmd).await
///     }
/// }
/// ```
#[cfg(feature = "tokio")]
#[macro_export]
macro_rules! if_tokio {
    ($($item:tt)*) => { $($item)* };
}

/// See the other definition.
#[cfg(not(feature = "tokio"))]
#[macro_export]
macro_rules! if_tokio {
    ($($item:tt)*) => {};
}

/// `Some(expr)` with the `tokio` feature, `None` without (for registrations of what exists
/// only with the feature).
#[cfg(feature = "tokio")]
#[doc(hidden)]
#[macro_export]
macro_rules! __tokio_or_none {
    ($($e:tt)*) => { ::core::option::Option::Some($($e)*) };
}

/// See the other definition.
#[cfg(not(feature = "tokio"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __tokio_or_none {
    ($($e:tt)*) => {
        ::core::option::Option::None
    };
}

/// Support for the code `#[container_command]` generates. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use inventory;
    pub use serde_json::Value;

    use crate::{ArgsEncoder, Command, CommandError, Error};

    /// Encodes the arguments of `C`, mapping a serialisation failure to an error.
    pub fn encode_args<C: Command>(
        f: impl FnOnce(ArgsEncoder) -> Result<ArgsEncoder, crate::args::EncodeError>,
    ) -> Result<crate::Args, Error> {
        f(ArgsEncoder::new())
            .map(ArgsEncoder::finish)
            .map_err(|e| Error::arguments(C::SPEC.name, e))
    }

    /// Encodes a runner's output.
    pub fn to_value<T: serde::Serialize>(value: T) -> Result<Value, CommandError> {
        serde_json::to_value(value)
            .map_err(|e| CommandError::msg(format!("cannot encode the output: {e}")))
    }

    pub use crate::__tokio_only as tokio_only;
    pub use crate::__tokio_or_none as tokio_or_none;
    #[cfg(feature = "tokio")]
    pub use crate::frontend::asynchronous::call_runner as call_runner_async;
    #[cfg(feature = "tokio")]
    pub use crate::frontend::asynchronous::lock_command as lock_async;
    #[cfg(feature = "tokio")]
    pub use crate::frontend::asynchronous::run_frontend as frontend_async;
    pub use crate::frontend::call_runner;

    /// Runs a generated `run_with`'s body under the container's lock as `C` declares it
    /// ([`crate::lock`]), unless the call runs under one already.
    pub fn with_lock<C: Command, T>(
        call: &crate::Call<'_>,
        body: impl FnOnce(&crate::Call<'_>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let locked = crate::frontend::lock_for(call, C::SPEC)?;
        body(locked.as_ref().unwrap_or(call))
    }

    /// The output of a frontend run by name, back in its type (the async twin of a custom
    /// frontend runs it by name on a blocking thread).
    pub fn frontend_output<C: Command>(value: Value) -> Result<C::Output, Error> {
        serde_json::from_value(value)
            .map_err(|e| Error::arguments(C::SPEC.name, format!("cannot decode the output: {e}")))
    }

    /// A by-name call's arguments that do not decode:
    /// [`ErrorKind::Arguments`](crate::ErrorKind::Arguments).
    pub fn arguments_error<C: Command, T>(decoded: Result<T, CommandError>) -> Result<T, Error> {
        decoded.map_err(|e| Error::arguments(C::SPEC.name, e.message()))
    }

    /// A by-name call's output as JSON.
    pub fn frontend_value<C: Command>(output: C::Output) -> Result<Value, Error> {
        serde_json::to_value(output)
            .map_err(|e| Error::arguments(C::SPEC.name, format!("cannot encode the output: {e}")))
    }

    /// Checks the function of `osctld = ...` (a mismatch is reported at its path).
    pub const fn osctld_fn(f: crate::osctld::OsctldFn) -> crate::osctld::OsctldFn {
        f
    }

    /// Compile-time checks with readable errors at the parameter's span.
    pub fn assert_arg<T: serde::Serialize + serde::de::DeserializeOwned>() {}
    pub fn assert_output<T: serde::Serialize + serde::de::DeserializeOwned>() {}
}
