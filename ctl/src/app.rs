//! Parses the command line, checks what must hold before anything runs, dispatches.

use std::io::IsTerminal;

use clap::{CommandFactory, Parser};
use serde_json::json;

use crate::bench;
use crate::cli::{Cli, Command};
use crate::ct::{self, render_table, Ctx};
use crate::demo;
use crate::output::{CliError, Outcome, Output};

/// Runs ctl; returns its exit status. Usage errors exit with clap's status 2.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    init_logging(cli.verbose);
    let out = Output { json: cli.json };
    let result = run(cli, out);
    out.finish(result)
}

/// clap's own report (status 2 for a usage error, 0 for --help/--version); with --json a
/// usage error is a JSON document like every other error.
fn usage_error(e: clap::Error) -> i32 {
    use clap::error::ErrorKind;
    let json_wanted = std::env::args_os()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json");
    let is_usage = !matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion)
        && !matches!(
            e.kind(),
            ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        );
    if json_wanted && is_usage {
        let text = e.render().to_string();
        let message = text
            .lines()
            .next()
            .unwrap_or("")
            .trim_start_matches("error: ")
            .to_owned();
        let err = CliError::new("usage", message).exit(e.exit_code());
        return Output { json: true }.finish(Err(err));
    }
    let _ = e.print();
    e.exit_code()
}

fn init_logging(verbose: u8) {
    if verbose == 0 {
        return;
    }
    let level = if verbose == 1 { "debug" } else { "trace" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("CTL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

fn run(cli: Cli, out: Output) -> Result<Outcome, CliError> {
    match cli.command {
        Command::Ct(cmd) => {
            require_root("ctl ct")?;
            // Runners do not share ctl's terminal: a Ctrl-C must be passed on to them.
            crate::signals::forward_to_runners().map_err(|e| {
                CliError::new("setup", format!("cannot install the signal handlers: {e}"))
            })?;
            let ctx = Ctx::open(&cli.state_dir, cli.deadline, out)?;
            ct::run(&ctx, cmd)
        }
        Command::Demo(args) => {
            require_root("ctl demo")?;
            let ctx = Ctx::open(&cli.state_dir, cli.deadline, out)?;
            demo::run(&ctx, &args)
        }
        Command::Bench(args) => {
            require_root("ctl bench")?;
            let ctx = Ctx::open(&cli.state_dir, cli.deadline, out)?;
            bench::run(&ctx, &args)
        }
        Command::Commands => list_commands(),
        Command::Completions { shell } => {
            let mut text = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "ctl", &mut text);
            let script = String::from_utf8_lossy(&text).into_owned();
            Ok(Outcome::new(json!(script), script))
        }
    }
}

/// Containers mean system users, /etc/subuid, cgroups and setuid helpers: root only.
fn require_root(what: &str) -> Result<(), CliError> {
    let euid = nix::unistd::geteuid();
    if euid.is_root() {
        Ok(())
    } else {
        Err(CliError::new(
            "not_root",
            format!(
                "{what} must run as root (it manages system users, cgroups and containers); \
                 effective uid is {euid}"
            ),
        ))
    }
}

fn list_commands() -> Result<Outcome, CliError> {
    let registry =
        ctl_core::Registry::global().map_err(|e| CliError::new("duplicate_command", e))?;
    let mut rows = Vec::new();
    let mut values = Vec::new();
    for reg in registry.iter() {
        let spec = reg.spec;
        let mut placement = spec.placement_name().to_owned();
        if spec.setuid_helpers {
            placement.push_str(" +setuid");
        }
        rows.push([spec.name.to_owned(), placement, spec.summary()]);
        values.push(json!({
            "name": spec.name,
            "snake_name": spec.snake_name,
            "placement": spec.placement_name(),
            "setuid_helpers": spec.setuid_helpers,
            "summary": spec.summary(),
            "module": reg.module,
            "location": reg.location,
        }));
    }
    Ok(Outcome::new(
        json!(values),
        render_table(["NAME", "PLACEMENT", "SUMMARY"], &rows),
    ))
}
