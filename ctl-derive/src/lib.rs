//! `#[container_command]`, the attribute of `ctl-core` that turns one function into a
//! command: a unit struct implementing `ctl_core::Command` with typed `run`/`run_with`/
//! `runner` methods, the registered runner function that decodes the envelope's
//! arguments, and its `inventory` registration.
//!
//! Use it through `ctl_core::container_command`; the generated code names
//! `::ctl_core` paths only. `docs/expansion.md` shows a full expansion.
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
/// in PascalCase), `setuid_helpers`, `no_liblxc` (the runner half never uses liblxc: the
/// statically linked runner may run it). Parameters after the first are positional
/// arguments, or named ones with `#[kwarg]` / `#[kwarg(default)]`. See `docs/expansion.md`.
#[proc_macro_attribute]
pub fn container_command(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::container_command(args.into(), input.into()).into()
}
