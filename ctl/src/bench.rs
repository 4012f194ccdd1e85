//! `ctl bench`: what a command costs, measured side by side in one run on a throwaway
//! container (provisioned and started first, removed at the end, also on Ctrl-C).

use commands::Start;
use ctl_bench::BenchOptions;
use ctl_provision::CreateOptions;

use crate::cli::BenchArgs;
use crate::ct::Ctx;
use crate::output::{CliError, Outcome, EXIT_INTERRUPTED};
use crate::signals;

/// Runs the benchmark.
pub fn run(ctx: &Ctx, args: &BenchArgs) -> Result<Outcome, CliError> {
    if !(args.seconds > 0.0 && args.seconds.is_finite()) {
        return Err(CliError::new(
            "usage",
            "--seconds must be a positive number",
        ));
    }
    if args.async_in_flight == 0 {
        return Err(CliError::new(
            "usage",
            "--async-in-flight must be at least 1",
        ));
    }
    let names = ctl_bench::case_names(&options(args));
    for pattern in &args.cases {
        let one = BenchOptions {
            cases: vec![pattern.clone()],
            ..options(args)
        };
        if !names.iter().any(|n| one.selects(n)) {
            return Err(CliError::new(
                "usage",
                format!(
                    "--case {pattern} matches no case; the cases: {}",
                    names.join(", ")
                ),
            ));
        }
    }
    signals::install()
        .map_err(|e| CliError::new("setup", format!("installing signal handlers: {e}")))?;
    let name = format!("bench-{}", std::process::id() % 100_000);
    let result = provision_and_measure(ctx, &name, args);
    let removed = ctx.provisioner.destroy(&name);
    if signals::received().is_some() {
        return Err(CliError::new(
            "interrupted",
            "interrupted; the benchmark container was removed",
        )
        .exit(EXIT_INTERRUPTED));
    }
    let outcome = result?;
    removed.map_err(|e| {
        CliError::new(
            "provision",
            format!("removing the benchmark container {name}: {e}"),
        )
    })?;
    Ok(outcome)
}

fn provision_and_measure(ctx: &Ctx, name: &str, args: &BenchArgs) -> Result<Outcome, CliError> {
    if ctx.out.progress_enabled() {
        eprintln!(
            "ctl bench: provisioning and starting {name}, then measuring for about {} s",
            args.seconds
        );
    }
    let ct = ctx
        .provisioner
        .create(name, &CreateOptions::default())
        .map_err(|e| {
            CliError::new(
                "provision",
                format!("creating the benchmark container: {e}"),
            )
        })?;
    if signals::received().is_some() {
        return Err(CliError::new("interrupted", "interrupted"));
    }
    Start::run(&ct).map_err(|e| CliError::from(e).context("starting the benchmark container"))?;
    let report = ctl_bench::run(&ct, &options(args));
    let value = serde_json::to_value(&report).map_err(|e| CliError::new("internal", e))?;
    Ok(Outcome::new(value, report.to_table().trim_end().to_owned()))
}

fn options(args: &BenchArgs) -> BenchOptions {
    BenchOptions {
        seconds: args.seconds,
        runner: None,
        cases: args.cases.clone(),
        async_in_flight: args.async_in_flight,
    }
}
