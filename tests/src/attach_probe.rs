//! A command that attaches a program with a chosen attach engine and returns what it
//! printed: the side-by-side comparison of liblxc's attach and ctl-lxc's own
//! (`tests/tests/attach_direct.rs`).

use std::io::{Read, Seek};

use commands::support;
use ctl_core::{container_command, CommandError, RunnerContext};
use ctl_lxc::{AttachEngine, AttachProgram};

/// What the attached program did.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Probed {
    /// Its exit code (128 + n when killed by signal n).
    pub code: i32,
    /// Its stdout and stderr, together.
    pub output: String,
}

/// Runs `argv` in the container through the attach `engine` names (`direct`, `liblxc`,
/// `auto`), with osctld's clean environment and `/` as the working directory. Declared
/// `setuid_helpers`: liblxc's attach runs `newuidmap` (ours does not).
#[container_command(placement = exec, setuid_helpers)]
pub fn attach_probe(
    ctx: &mut RunnerContext,
    engine: String,
    argv: Vec<String>,
) -> Result<Probed, CommandError> {
    let engine = match engine.as_str() {
        "direct" => AttachEngine::Direct,
        "liblxc" => AttachEngine::Liblxc,
        "auto" => AttachEngine::Auto,
        other => return Err(CommandError::msg(format!("unknown engine {other:?}"))),
    };
    let ct = support::open_running(ctx)?;
    let out =
        nix::sys::memfd::memfd_create(c"attach-probe", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
            .map_err(|e| CommandError::msg(format!("memfd: {e}")))?;
    let null = support::dev_null()?;
    let mut opts = support::quiet_attach_options(
        &null,
        Some(std::os::fd::AsFd::as_fd(&out)),
        Some(std::os::fd::AsFd::as_fd(&out)),
    );
    opts.engine = engine;
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let log = support::log_file_of(ctx, &ct);
    let offset = support::log_offset(log.as_deref());
    let status = support::attach_isolated(&ct, &opts, AttachProgram::Command(&argv), None)
        .map_err(|e| support::with_log_tail(e, log.as_deref(), offset))?
        .ok_or_else(|| CommandError::msg("no status"))?;
    let mut file = std::fs::File::from(out);
    file.rewind()?;
    let mut output = String::new();
    file.read_to_string(&mut output)?;
    Ok(Probed {
        code: ctl_core::process::exit_code(status),
        output,
    })
}
