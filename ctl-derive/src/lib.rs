//! `#[container_command]`, the attribute of `ctl-core` that turns one function into a
//! command: a unit struct implementing `ctl_core::Command` with typed `run`/`run_with`/
//! `runner` methods, the registered runner function that decodes the envelope's
//! arguments, the by-name frontend (`Registration::frontend`, what
//! `ctl_core::invoke_by_name` runs), and its `inventory` registration.
//!
//! Use it through `ctl_core::container_command`; the generated code names
//! `::ctl_core` paths only, or those of `crate = path` (a facade crate re-exporting
//! ctl_core). `docs/expansion.md` shows a full expansion.
//!
//! Inside, in the order of the work: `options` reads the attribute's options, `parse`
//! checks the function against them (qualifiers, parameters, output type, name) into a
//! `Command`, every misuse a `syn::Error` at its token; `expand` generates the code piece
//! by piece (struct, spec, methods, codec, registration); `case` converts `get_hostname`
//! to `GetHostname`.

use proc_macro::TokenStream;

mod case;
mod expand;
mod options;
mod parse;
#[cfg(test)]
mod test_util;

/// Defines a container command from a function.
///
/// ```ignore
/// /// Freeze the container.
/// #[container_command(placement = exec)]
/// pub fn freeze(ctx: &mut RunnerContext) -> Result<bool, CommandError> { ... }
///
/// // Frontend side:
/// let frozen: bool = Freeze::run(&ct)?;
/// ```
///
/// Options: `placement = exec | fork | fork_as_root` or `frontend_only` (exactly one),
/// `frontend = path` (a custom frontend), `name = "Pascal"` (default: the function's name
/// in PascalCase), `setuid_helpers`, `static_runner` (old name `no_liblxc`: the runner
/// half may run in the statically linked runner, as it never uses liblxc), `osctld = path`
/// (how the runner half reads osctld's envelopes), `crate = path` or `crate = "path"` (where the
/// generated code finds ctl_core, default `::ctl_core`; for a facade crate that re-exports
/// it, as serde's `#[serde(crate = "...")]`). Parameters after the first are positional
/// arguments, or named ones with `#[kwarg]` / `#[kwarg(default)]`. See `docs/expansion.md`.
///
/// ```ignore
/// // A plugin of a facade crate that has `pub use ctl_core;`:
/// #[container_command(placement = exec, crate = my_facade::ctl_core)]
/// pub fn ping(ctx: &mut RunnerContext, value: String) -> Result<String, CommandError> { ... }
/// ```
#[proc_macro_attribute]
pub fn container_command(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::container_command(args.into(), input.into()).into()
}
