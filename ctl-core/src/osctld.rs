//! osctld's encoding of commands: how a command reads an envelope that osctld's own
//! frontends wrote, and what it answers them.
//!
//! osctld (vpsAdminOS) starts `osctld-ct-runner` with an envelope of the same fields as
//! ours but without our `ctl` extension, and its frontends pass arguments in shapes of
//! their own: a mode as a string and an options hash as positional arguments
//! (`["running", {"cmd": [...]}]`), keyword arguments always `{}`. Its Ruby runner
//! answers `ok` with `"output": null` and `ok(exitstatus)` with the integer (or `null` when
//! the program was killed by a signal).
//!
//! A command declares its osctld shape once, next to its definition:
//!
//! ```ignore
//! #[container_command(placement = exec, osctld = ctl_core::osctld::ok_without_output)]
//! pub fn freeze(ctx: &mut RunnerContext) -> Result<bool, CommandError> { ... }
//! ```
//!
//! The path names an [`OsctldFn`]: it gets the runner context, osctld's arguments and the
//! command's own (native) runner function, decodes osctld's shape — usually into the
//! command's own parameters, which it then hands to `native` — and returns the output
//! osctld's Ruby runner would give. The runner uses it for every envelope without our
//! extension; a command without one gets osctld's envelope decoded as its own arguments
//! and answers with its own output. Plugin commands declare theirs the same way.

use serde::de::DeserializeOwned;
use serde_json::Map;

/// The JSON value an [`OsctldFn`] answers with.
pub use serde_json::Value;

use crate::args::Args;
use crate::command::RunnerFn;
use crate::error::CommandError;
use crate::runner::RunnerContext;

/// Runs a command for an envelope written by osctld: see the module documentation.
pub type OsctldFn = fn(&mut RunnerContext, Args, RunnerFn) -> Result<Value, CommandError>;

/// For commands whose osctld runner answers a bare `ok`: osctld's arguments are the
/// command's own, the output is `null`.
pub fn ok_without_output(
    ctx: &mut RunnerContext,
    args: Args,
    native: RunnerFn,
) -> Result<Value, CommandError> {
    native(ctx, args).map(|_| Value::Null)
}

/// For commands whose osctld frontend passes its options as one hash in `args`
/// (`exec_runner(args: [opts])`): the hash's entries become the command's keyword
/// arguments; the output is `null` (a bare `ok`).
pub fn options_hash_without_output(
    ctx: &mut RunnerContext,
    mut args: Args,
    native: RunnerFn,
) -> Result<Value, CommandError> {
    let options: Map<String, Value> = args.positional("options")?;
    args.finish()?;
    native(ctx, Args::new(Vec::new(), options)).map(|_| Value::Null)
}

/// Decodes osctld's arguments `[mode, {options}]` (Exec, Runscript, Stop): the mode as
/// osctld's symbol, a string, and the options hash into `T`.
pub fn mode_and_options<M: DeserializeOwned, T: DeserializeOwned>(
    mut args: Args,
) -> Result<(M, T), CommandError> {
    let mode: M = args.positional("mode")?;
    let options: T = args.positional("options")?;
    args.finish()?;
    Ok((mode, options))
}

/// osctld's `ok(status.exitstatus)`: the exit code, or `null` when the program was killed
/// by a signal (Ruby's `Process::Status#exitstatus` is `nil` then).
pub fn exit_status(status: std::process::ExitStatus) -> Value {
    status.code().map_or(Value::Null, Value::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::os::unix::process::ExitStatusExt;

    fn ctx() -> RunnerContext {
        RunnerContext {
            command: "Test",
            pool: "tank".into(),
            id: "ct".into(),
            lxc_home: "/l".into(),
            user_home: "/h".into(),
            log_file: None,
            stdin: None,
            stdout: None,
            stderr: None,
            user: None,
            container_path: None,
            container_cgroup: None,
            entry_cgroup: None,
        }
    }

    fn echo_kwargs(_: &mut RunnerContext, mut args: Args) -> Result<Value, CommandError> {
        let dst: String = args.named("dst")?;
        args.finish()?;
        Ok(Value::from(dst))
    }

    #[test]
    fn options_hash_becomes_kwargs_and_output_null() {
        let args = Args::new(vec![json!({"dst": "/mnt"})], Map::new());
        assert_eq!(
            options_hash_without_output(&mut ctx(), args, echo_kwargs).unwrap(),
            Value::Null
        );
        // A hash with a key the command does not know is refused, as the command's own
        // decoding refuses it.
        let args = Args::new(vec![json!({"dst": "/mnt", "x": 1})], Map::new());
        let e = options_hash_without_output(&mut ctx(), args, echo_kwargs).unwrap_err();
        assert_eq!(e.message(), "unknown keyword argument `x`");
        let args = Args::new(vec![json!("/mnt")], Map::new());
        assert!(options_hash_without_output(&mut ctx(), args, echo_kwargs)
            .unwrap_err()
            .message()
            .starts_with("argument 1 (`options`)"));
    }

    #[test]
    fn mode_and_options_decode() {
        #[derive(serde::Deserialize)]
        struct Opts {
            cmd: Vec<String>,
        }
        let args = Args::new(vec![json!("running"), json!({"cmd": ["true"]})], Map::new());
        let (mode, opts): (String, Opts) = mode_and_options(args).unwrap();
        assert_eq!(
            (mode.as_str(), opts.cmd),
            ("running", vec!["true".to_owned()])
        );
        let args = Args::new(vec![json!("running")], Map::new());
        assert!(mode_and_options::<String, Opts>(args).is_err());
    }

    #[test]
    fn exit_status_as_osctld() {
        assert_eq!(
            exit_status(std::process::ExitStatus::from_raw(3 << 8)),
            json!(3)
        );
        assert_eq!(
            exit_status(std::process::ExitStatus::from_raw(libc::SIGKILL)),
            Value::Null
        );
    }
}
