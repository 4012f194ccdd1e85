//! `ctl demo`: a guided walk through the commands on a throwaway container, timing each
//! step, removing everything at the end (also after a failure or Ctrl-C).

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsFd;
use std::time::Instant;

use commands::{
    Exec, Freeze, GetHostname, Runscript, ScriptSource, Start, State, Stop, StopMode, Unfreeze,
    Wall,
};
use ctl_core::{Container, Stdio};
use ctl_provision::CreateOptions;
use serde_json::{json, Value};

use crate::cli::DemoArgs;
use crate::ct::Ctx;
use crate::output::{human_duration, millis, print_stdout, CliError, Outcome, EXIT_INTERRUPTED};
use crate::signals;

/// The script the demo runs with `Runscript` (fed through the command's stdin).
const SCRIPT: &str = "\
echo \"hostname: $(hostname)\"
echo \"kernel:   $(uname -r)\"
echo \"uid 0 is: $(id -un 0 2>/dev/null || echo root)\"
echo \"procs:    $(ls -d /proc/[0-9]* | wc -l)\"
";

/// Number of steps, provisioning and removal included (for the `[n/N]` counter).
const STEPS: usize = 14;
/// Width of the step names in the human output.
const LABEL_WIDTH: usize = 41;
/// Where a step's detail starts: `[nn/14] `, the label, a space, the time (9), 2 spaces.
const DETAIL_COLUMN: usize = 8 + LABEL_WIDTH + 1 + 9 + 2;

/// Why a step failed.
enum Failure {
    Step(CliError),
    Interrupted,
}

impl From<CliError> for Failure {
    fn from(e: CliError) -> Failure {
        Failure::Step(e)
    }
}

impl From<ctl_core::Error> for Failure {
    fn from(e: ctl_core::Error) -> Failure {
        Failure::Step(e.into())
    }
}

struct Demo<'c> {
    ctx: &'c Ctx,
    name: String,
    steps: Vec<Value>,
    started: Instant,
}

impl Demo<'_> {
    /// Runs one step: prints its name, times it, prints what it returned.
    fn step<T>(
        &mut self,
        label: &str,
        f: impl FnOnce() -> Result<T, Failure>,
        detail: impl FnOnce(&T) -> String,
    ) -> Result<T, Failure> {
        if signals::received().is_some() {
            return Err(Failure::Interrupted);
        }
        let n = self.steps.len() + 1;
        let human = !self.ctx.out.json;
        if human {
            print_stdout(&format!("[{n:>2}/{STEPS}] {label:<LABEL_WIDTH$} "));
        }
        let started = Instant::now();
        let result = f();
        let took = started.elapsed();
        match &result {
            Ok(value) => {
                let detail = detail(value);
                if human {
                    let mut line = format!("{:>9}", human_duration(took));
                    if !detail.is_empty() {
                        line.push_str("  ");
                        // Details come from the container (uname, its hostname...).
                        let shown = crate::output::escape_controls(&detail, true);
                        line.push_str(&indent_after_first(&shown, DETAIL_COLUMN));
                    }
                    print_stdout(&format!("{line}\n"));
                }
                self.steps.push(
                    json!({ "step": label, "ok": true, "ms": millis(took), "detail": detail }),
                );
            }
            Err(failure) => {
                let message = match failure {
                    Failure::Step(e) => e.message.clone(),
                    Failure::Interrupted => "interrupted".to_owned(),
                };
                if human {
                    print_stdout(&format!("{:>9}  FAILED\n", human_duration(took)));
                }
                self.steps.push(
                    json!({ "step": label, "ok": false, "ms": millis(took), "error": message }),
                );
            }
        }
        result
    }

    fn walk(&mut self) -> Result<(), Failure> {
        let ctx = self.ctx;
        let name = self.name.clone();
        let ct = self.step(
            "provision (user, subids, cgroups, rootfs)",
            || {
                ctx.provisioner
                    .create(&name, &CreateOptions::default())
                    .map_err(|e| Failure::Step(e.into()))
            },
            |ct: &Container| format!("user {} (uid {})", ct.user, ct.ugid),
        )?;
        let call = || ctx.call(&ct);
        let state = |this: &mut Self| {
            this.step(
                "state",
                || Ok(State::run_with(&call())?),
                |s| match s.init_pid {
                    Some(pid) => format!("{} (init pid {pid})", s.state),
                    None => s.state.clone(),
                },
            )
        };

        self.step("start", || Ok(Start::run_with(&call())?), |_| String::new())?;
        state(self)?;
        self.step(
            "exec: uname -a",
            || {
                capture(
                    |c| {
                        Exec::run_with(
                            c,
                            vec!["uname".into(), "-a".into()],
                            false,
                            false,
                            Default::default(),
                        )
                    },
                    call(),
                )
            },
            Clone::clone,
        )?;
        self.step(
            "freeze",
            || Ok(Freeze::run_with(&call())?),
            |_| String::new(),
        )?;
        state(self)?;
        self.step(
            "unfreeze",
            || Ok(Unfreeze::run_with(&call())?),
            |_| String::new(),
        )?;
        state(self)?;
        self.step(
            "wall: a message to the container's ttys",
            || {
                Ok(Wall::run_with(
                    &call(),
                    "hello from ctl demo".to_owned(),
                    commands::Banner::On,
                )?)
            },
            |_| String::new(),
        )?;
        self.step(
            "hostname",
            || Ok(GetHostname::run_with(&call())?),
            Clone::clone,
        )?;
        self.step(
            "runscript: a shell script on stdin",
            || {
                let (script_r, script_w) =
                    nix::unistd::pipe().map_err(|e| io_failure("pipe", e.into()))?;
                std::fs::File::from(script_w)
                    .write_all(SCRIPT.as_bytes())
                    .map_err(|e| io_failure("writing the script", e))?;
                capture(
                    |c| Runscript::run_with(c, ScriptSource::Stdin, Vec::new(), false, false),
                    call().stdin(Some(script_r.as_fd())),
                )
            },
            Clone::clone,
        )?;
        self.step(
            "stop (clean shutdown, 10 s timeout)",
            || Ok(Stop::run_with(&call(), StopMode::Stop, 10, None)?),
            |_| String::new(),
        )?;
        state(self)?;
        Ok(())
    }
}

fn io_failure(what: &str, e: std::io::Error) -> Failure {
    Failure::Step(CliError::new("io", format!("{what}: {e}")))
}

/// Runs an exec-like call with stdout and stderr into a memfd and returns what it wrote
/// (a memfd, not a pipe: nothing has to read while the command runs, and a process left
/// in the background holding it open cannot make us wait).
fn capture(
    f: impl FnOnce(&ctl_core::Call<'_>) -> Result<i32, ctl_core::Error>,
    call: ctl_core::Call<'_>,
) -> Result<String, Failure> {
    let memfd = nix::sys::memfd::memfd_create(c"ctl-demo", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
        .map_err(|e| io_failure("memfd", e.into()))?;
    let status = f(&call
        .stdout(Stdio::Fd(memfd.as_fd()))
        .stderr(Stdio::Fd(memfd.as_fd())))?;
    let mut file = std::fs::File::from(memfd);
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.read_to_end(&mut bytes))
        .map_err(|e| io_failure("reading the output", e))?;
    let output = String::from_utf8_lossy(&bytes).trim_end().to_owned();
    if status != 0 {
        return Err(Failure::Step(CliError::exit_status(status).context(output)));
    }
    Ok(output)
}

/// Lines after the first, indented to line up under it.
fn indent_after_first(text: &str, column: usize) -> String {
    let pad = " ".repeat(column);
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                l.to_owned()
            } else {
                format!("\n{pad}{l}")
            }
        })
        .collect()
}

/// Runs the demo.
pub fn run(ctx: &Ctx, args: &DemoArgs) -> Result<Outcome, CliError> {
    signals::install()
        .map_err(|e| CliError::new("setup", format!("installing signal handlers: {e}")))?;
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("demo-{}", std::process::id()));
    ctl_provision::validate_name(&name)?;
    match ctx.provisioner.load(&name) {
        Ok(_) => {
            return Err(CliError::new(
                "exists",
                format!("container {name:?} exists already; pick another --name"),
            ))
        }
        Err(ctl_provision::ProvisionError::NotFound(_)) => {}
        Err(e) => return Err(e.into()),
    }
    if !ctx.out.json {
        print_stdout(&format!(
            "ctl demo: a throwaway container {name} in {}\n\n",
            ctx.provisioner.state_dir().display()
        ));
    }
    let mut demo = Demo {
        ctx,
        name: name.clone(),
        steps: Vec::new(),
        started: Instant::now(),
    };
    let walked = demo.walk();

    // Clean up whatever happened; a second Ctrl-C during it only repeats the notice.
    let removed = if args.keep && walked.is_ok() {
        false
    } else {
        let step = demo.step_cleanup();
        if let Err(e) = &step {
            crate::output::print_error(&format!(
                "could not remove {name}: {e}; run `ctl ct del {name}` to retry"
            ));
        }
        step.is_ok()
    };
    let total = demo.started.elapsed();
    let summary = |extra: &str| {
        if !ctx.out.json {
            print_stdout(&format!("\n{extra} in {}\n", human_duration(total)));
        }
    };
    let value = json!({
        "container": name,
        "state_dir": ctx.provisioner.state_dir(),
        "steps": demo.steps,
        "removed": removed,
        "total_ms": millis(total),
    });
    match walked {
        Ok(()) => {
            summary(if removed {
                "done: everything removed again"
            } else {
                "done: container kept"
            });
            Ok(Outcome::quiet(value))
        }
        Err(Failure::Interrupted) => {
            summary("interrupted");
            Err(CliError::new(
                "interrupted",
                format!("interrupted; demo container {}", removed_word(removed)),
            )
            .exit(EXIT_INTERRUPTED)
            .with("result", value))
        }
        Err(Failure::Step(e)) => {
            summary("failed");
            let step = demo_failed_step(&value);
            let err = CliError {
                message: format!("demo step `{step}` failed: {}", e.message),
                ..e
            }
            .with("result", value);
            // A step that failed because Ctrl-C killed one of its helpers is an interruption.
            Err(if signals::received().is_some() {
                err.exit(EXIT_INTERRUPTED)
            } else {
                err
            })
        }
    }
}

fn removed_word(removed: bool) -> &'static str {
    if removed {
        "removed"
    } else {
        "NOT removed"
    }
}

fn demo_failed_step(value: &Value) -> String {
    value["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["ok"] == false))
        .and_then(|s| s["step"].as_str())
        .unwrap_or("?")
        .to_owned()
}

impl Demo<'_> {
    /// The last step: removes the container, even when interrupted.
    fn step_cleanup(&mut self) -> Result<(), CliError> {
        let ctx = self.ctx;
        let name = self.name.clone();
        let n = self.steps.len() + 1;
        let human = !ctx.out.json;
        if human {
            print_stdout(&format!(
                "[{n:>2}/{STEPS}] {:<LABEL_WIDTH$} ",
                "remove (container, user, cgroups)"
            ));
        }
        let started = Instant::now();
        let result = ctx.provisioner.destroy(&name).map_err(CliError::from);
        let took = started.elapsed();
        if human {
            let word = if result.is_ok() { "" } else { "  FAILED" };
            print_stdout(&format!("{:>9}{word}\n", human_duration(took)));
        }
        let mut entry = json!({ "step": "remove", "ok": result.is_ok(), "ms": millis(took) });
        if let Err(e) = &result {
            entry["error"] = json!(e.message);
        }
        self.steps.push(entry);
        result
    }
}
