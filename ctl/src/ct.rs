//! `ctl ct ...`: the container registry (the provisioner's state directory) and one
//! subcommand per container command.

use std::fs;
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use commands::{
    Banner, Exec, ExecOptions, Freeze, GetHostname, Mount, Reboot, Runscript, ScriptSource, Start,
    State, Stop, Unfreeze, Unmount, VethName, Wall,
};
use ctl_core::{Call, Container, Stdio};
use ctl_provision::{CreateOptions, ProvisionError, Provisioner};
use serde_json::{json, Value};

use crate::cli::{CtCommand, RunOpts};
use crate::output::{CliError, Outcome, Output, Progress};

/// What every container subcommand needs: the registry and how to make calls.
pub struct Ctx {
    pub provisioner: Provisioner,
    pub deadline: Option<Duration>,
    pub out: Output,
}

impl Ctx {
    /// Opens (and creates) the state directory.
    pub fn open(
        state_dir: &Path,
        deadline: Option<Duration>,
        out: Output,
    ) -> Result<Ctx, CliError> {
        let provisioner = Provisioner::new(state_dir).map_err(|e| {
            CliError::from(e).context(format!("state directory {}", state_dir.display()))
        })?;
        Ok(Ctx {
            provisioner,
            deadline,
            out,
        })
    }

    /// The record of container `name`, with a message that says where we looked.
    pub fn load(&self, name: &str) -> Result<Container, CliError> {
        let loaded = self.provisioner.load(name);
        if let Ok(ct) = &loaded {
            tracing::debug!(container = %ct.ident(), user = %ct.user, ugid = ct.ugid, cgroup = %ct.cgroup_path, "loaded the record");
        }
        loaded.map_err(|e| match e {
            ProvisionError::NotFound(_) if self.leftovers(name) => CliError::new(
                "incomplete",
                format!(
                    "container {name:?} is incomplete (its creation was interrupted): \
                     run `ctl ct new {name}` to complete it or `ctl ct del {name}` to remove it"
                ),
            ),
            ProvisionError::NotFound(_) => CliError::new(
                "not_found",
                format!(
                    "no container {name:?} in {} (see `ctl ct ls`)",
                    self.provisioner.state_dir().display()
                ),
            ),
            other => other.into(),
        })
    }

    /// Whether anything of container `name` exists without its record: a `ct new` that
    /// was interrupted (the record is written last).
    pub fn leftovers(&self, name: &str) -> bool {
        if ctl_provision::validate_name(name).is_err() {
            return false;
        }
        let user = ctl_provision::user_name(name);
        let dir = self.provisioner.state_dir();
        dir.join("lxc").join(&user).exists()
            || dir.join("homes").join(&user).exists()
            || nix::unistd::User::from_name(&user)
                .ok()
                .flatten()
                .is_some_and(|u| u.dir == dir.join("homes").join(&user))
            // A group without its user: killed between groupadd and useradd.
            || nix::unistd::Group::from_name(&user).ok().flatten().is_some()
            || ctl_core::cgroup::hierarchies().iter().any(|h| {
                h.path_of(&format!("{}/{name}", ctl_provision::CGROUP_PARENT))
                    .exists()
            })
    }

    /// A call on `ct` with the global options. Output the command writes on its own
    /// (not exec's) goes to stderr with --json, so that stdout stays one JSON document.
    pub fn call<'a>(&self, ct: &'a Container) -> Call<'a> {
        tracing::debug!(container = %ct.ident(), deadline = ?self.deadline, runner = ?ctl_core::runner_path().ok(), "new call");
        let call = Call::new(ct).deadline(self.deadline);
        if self.out.json {
            call.stdout(Stdio::Fd(stderr_fd()))
        } else {
            call
        }
    }
}

/// fd `n` of this process (0, 1 or 2), borrowed for the whole run.
fn std_fd(n: std::os::fd::RawFd) -> BorrowedFd<'static> {
    // SAFETY: fds 0-2 stay open for the whole life of the process (std opens /dev/null
    // there at startup if they were closed), and ctl never closes them.
    unsafe { BorrowedFd::borrow_raw(n) }
}

fn stdin_fd() -> BorrowedFd<'static> {
    std_fd(0)
}

fn stdout_fd() -> BorrowedFd<'static> {
    std_fd(1)
}

fn stderr_fd() -> BorrowedFd<'static> {
    std_fd(2)
}

/// Runs one `ctl ct` subcommand.
pub fn run(ctx: &Ctx, cmd: CtCommand) -> Result<Outcome, CliError> {
    match cmd {
        CtCommand::New { name, net } => new(
            ctx,
            &name,
            &CreateOptions {
                net: net.into(),
                ..Default::default()
            },
        ),
        CtCommand::Del { name } => del(ctx, &name),
        CtCommand::Ls => ls(ctx),
        CtCommand::Start { name } => {
            let ct = ctx.load(&name)?;
            let progress = Progress::start(format!("starting {name}"), ctx.out.progress_enabled());
            let r = Start::run_with(&ctx.call(&ct));
            progress.finish(r.is_ok());
            Ok(Outcome::quiet(json!(r?)))
        }
        CtCommand::Stop {
            name,
            mode,
            timeout,
            message,
        } => {
            let ct = ctx.load(&name)?;
            let progress = Progress::start(format!("stopping {name}"), ctx.out.progress_enabled());
            let r = Stop::run_with(&ctx.call(&ct), mode.into(), timeout, message);
            progress.finish(r.is_ok());
            Ok(Outcome::quiet(json!(r?)))
        }
        CtCommand::Freeze { name } => {
            let ct = ctx.load(&name)?;
            Ok(Outcome::quiet(json!(Freeze::run_with(&ctx.call(&ct))?)))
        }
        CtCommand::Unfreeze { name } => {
            let ct = ctx.load(&name)?;
            Ok(Outcome::quiet(json!(Unfreeze::run_with(&ctx.call(&ct))?)))
        }
        CtCommand::Reboot { name } => {
            let ct = ctx.load(&name)?;
            Ok(Outcome::quiet(json!(Reboot::run_with(&ctx.call(&ct))?)))
        }
        CtCommand::State { name } => {
            let ct = ctx.load(&name)?;
            let info = State::run_with(&ctx.call(&ct))?;
            let human = info.state.clone();
            Ok(Outcome::new(to_value(&info), human))
        }
        CtCommand::Hostname { name } => {
            let ct = ctx.load(&name)?;
            let hostname = GetHostname::run_with(&ctx.call(&ct))?;
            Ok(Outcome::new(json!(hostname), hostname))
        }
        CtCommand::VethName { name, index } => {
            let ct = ctx.load(&name)?;
            let veth = VethName::run_with(&ctx.call(&ct), index)?;
            Ok(Outcome::new(json!(veth), veth))
        }
        CtCommand::Wall {
            name,
            text,
            banner,
            no_banner,
        } => {
            let banner = match (banner, no_banner) {
                (_, true) => Banner::Off,
                (Some(text), false) => Banner::Text(text),
                (None, false) => Banner::On,
            };
            let ct = ctx.load(&name)?;
            Ok(Outcome::quiet(json!(Wall::run_with(
                &ctx.call(&ct),
                text,
                banner
            )?)))
        }
        CtCommand::Mount {
            name,
            shared_dir,
            src,
            dst,
        } => {
            let ct = ctx.load(&name)?;
            Ok(Outcome::quiet(json!(Mount::run_with(
                &ctx.call(&ct),
                shared_dir,
                src,
                dst
            )?)))
        }
        CtCommand::Unmount { name, dst } => {
            let ct = ctx.load(&name)?;
            Ok(Outcome::quiet(json!(Unmount::run_with(
                &ctx.call(&ct),
                dst
            )?)))
        }
        CtCommand::Exec {
            opts,
            env,
            name,
            cmd,
        } => {
            let options = exec_options(env)?;
            let ct = ctx.load(&name)?;
            let status = Exec::run_with(
                &interactive_call(ctx, &ct),
                cmd,
                opts.run,
                opts.network,
                options,
            )?;
            exit_status(status)
        }
        CtCommand::Runscript {
            opts,
            name,
            script,
            args,
        } => runscript(ctx, opts, &name, &script, args),
    }
}

fn to_value<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("command outputs always serialize")
}

/// A call whose command uses ctl's own stdin, stdout and stderr. A terminal among them is
/// never handed to the runner: the frontend relays it (pipes, or for an interactive exec a
/// pty of the container's own), see `docs/security.md`.
fn interactive_call<'a>(ctx: &Ctx, ct: &'a Container) -> Call<'a> {
    Call::new(ct)
        .deadline(ctx.deadline)
        .stdin(Some(stdin_fd()))
        .stdout(Stdio::Fd(stdout_fd()))
        .stderr(Stdio::Fd(stderr_fd()))
}

/// `exec`'s environment options as [`ExecOptions`], checked before anything starts.
fn exec_options(opts: crate::cli::ExecEnvOpts) -> Result<ExecOptions, CliError> {
    let mut env = std::collections::BTreeMap::new();
    for item in opts.env {
        let Some((name, value)) = item.split_once('=') else {
            return Err(CliError::new(
                "usage",
                format!("--env {item:?}: expected NAME=VALUE"),
            ));
        };
        env.insert(name.to_owned(), value.to_owned());
    }
    let options = ExecOptions {
        env,
        clear: opts.clear_env,
        cwd: opts.cwd,
        uid: opts.user,
        gid: opts.group,
        terminal: match (opts.force_tty, opts.no_tty) {
            (true, _) => commands::TerminalChoice::Always,
            (_, true) => commands::TerminalChoice::Never,
            _ => commands::TerminalChoice::Auto,
        },
    }
    // ctl's environment is its user's.
    .keep_from_this_process(&opts.keep)
    .map_err(|e| CliError::new("usage", e))?;
    options
        .validate()
        .map_err(|e| CliError::new("usage", e.message().to_owned()))?;
    Ok(options)
}

/// exec/runscript: the command's status becomes ctl's.
fn exit_status(status: i32) -> Result<Outcome, CliError> {
    if status == 0 {
        Ok(Outcome::quiet(json!({ "exit_status": 0 })))
    } else {
        Err(CliError::exit_status(status))
    }
}

fn runscript(
    ctx: &Ctx,
    opts: RunOpts,
    name: &str,
    script: &Path,
    args: Vec<String>,
) -> Result<Outcome, CliError> {
    let source = if script == Path::new("-") {
        ScriptSource::Stdin
    } else {
        ScriptSource::File(script_path(script)?)
    };
    let ct = ctx.load(name)?;
    let status = Runscript::run_with(
        &interactive_call(ctx, &ct),
        source,
        args,
        opts.run,
        opts.network,
    )?;
    exit_status(status)
}

/// The script as an absolute path, checked before anything starts.
fn script_path(script: &Path) -> Result<PathBuf, CliError> {
    let missing =
        |e: std::io::Error| CliError::new("script", format!("script {}: {e}", script.display()));
    let meta = fs::metadata(script).map_err(missing)?;
    if !meta.is_file() {
        return Err(CliError::new(
            "script",
            format!("script {}: not a regular file", script.display()),
        ));
    }
    script.canonicalize().map_err(missing)
}

fn new(ctx: &Ctx, name: &str, opts: &CreateOptions) -> Result<Outcome, CliError> {
    match ctx.provisioner.load(name) {
        Ok(_) => {
            return Err(CliError::new(
                "exists",
                format!("container {name:?} exists already"),
            ))
        }
        Err(ProvisionError::NotFound(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let completing = ctx.leftovers(name);
    let verb = if completing {
        "completing"
    } else {
        "provisioning"
    };
    let progress = Progress::start(format!("{verb} {name}"), ctx.out.progress_enabled());
    let result = ctx.provisioner.create(name, opts);
    progress.finish(result.is_ok());
    let ct = result?;
    let human = format!(
        "{} container {name} (user {}, uid {}, net {})",
        if completing { "completed" } else { "created" },
        ct.user,
        ct.ugid,
        match opts.net {
            ctl_provision::Net::Empty => "none",
            ctl_provision::Net::Veth => "veth",
        }
    );
    Ok(Outcome::new(to_value(&ct), human))
}

fn del(ctx: &Ctx, name: &str) -> Result<Outcome, CliError> {
    ctl_provision::validate_name(name)?;
    let recorded = match ctx.provisioner.load(name) {
        // An unreadable record is removed too (destroy works from the name alone).
        Ok(_) | Err(ProvisionError::Record { .. }) => true,
        Err(ProvisionError::NotFound(_)) => false,
        Err(e) => return Err(e.into()),
    };
    if !recorded && !ctx.leftovers(name) {
        return Err(ctx
            .load(name)
            .err()
            .unwrap_or_else(|| CliError::new("not_found", name)));
    }
    let progress = Progress::start(format!("removing {name}"), ctx.out.progress_enabled());
    let result = ctx.provisioner.destroy(name);
    progress.finish(result.is_ok());
    result?;
    Ok(Outcome::new(
        json!({ "removed": name }),
        format!("removed container {name}"),
    ))
}

/// One line of `ct ls`.
struct Row {
    name: String,
    user: String,
    ugid: Option<u32>,
    state: String,
    init_pid: Option<i32>,
    error: Option<String>,
}

fn ls(ctx: &Ctx) -> Result<Outcome, CliError> {
    let mut rows: Vec<Row> = Vec::new();
    // Record by record rather than Provisioner::list, so that one unreadable record is a
    // row of its own instead of failing the whole listing.
    for name in record_names(ctx)? {
        let ct = match ctx.provisioner.load(&name) {
            Ok(ct) => ct,
            Err(e) => {
                let user = ctl_provision::user_name(&name);
                let error = Some(e.to_string());
                rows.push(Row {
                    name,
                    user,
                    ugid: None,
                    state: "bad-record".to_owned(),
                    init_pid: None,
                    error,
                });
                continue;
            }
        };
        let (state, init_pid, error) = match State::run_with(&ctx.call(&ct)) {
            Ok(info) => (info.state, info.init_pid, None),
            Err(e) => {
                tracing::warn!(container = %ct.id, error = %e, "cannot query the state");
                ("?".to_owned(), None, Some(e.to_string()))
            }
        };
        rows.push(Row {
            name: ct.id,
            user: ct.user,
            ugid: Some(ct.ugid),
            state,
            init_pid,
            error,
        });
    }
    for name in incomplete(ctx) {
        if !rows.iter().any(|r| r.name == name) {
            // Found both ways (directory and user): listed once.
            let user = ctl_provision::user_name(&name);
            rows.push(Row {
                name,
                user,
                ugid: None,
                state: "incomplete".to_owned(),
                init_pid: None,
                error: None,
            });
        }
    }
    rows.sort_by(|a, b| a.name.cmp(&b.name));

    let value = Value::Array(
        rows.iter()
            .map(|r| {
                let mut v = json!({
                    "name": r.name, "user": r.user, "ugid": r.ugid, "state": r.state, "init_pid": r.init_pid,
                });
                if let Some(e) = &r.error {
                    v["error"] = json!(e);
                }
                v
            })
            .collect(),
    );
    let table: Vec<[String; 4]> = rows
        .iter()
        .map(|r| {
            let pid = r.init_pid.map_or_else(|| "-".to_owned(), |p| p.to_string());
            [r.name.clone(), r.user.clone(), r.state.clone(), pid]
        })
        .collect();
    Ok(Outcome::new(
        value,
        render_table(["NAME", "USER", "STATE", "INIT PID"], &table),
    ))
}

/// Names of the records in the state directory (`containers/<name>.json`).
fn record_names(ctx: &Ctx) -> Result<Vec<String>, CliError> {
    let dir = ctx.provisioner.state_dir().join("containers");
    let entries = fs::read_dir(&dir)
        .map_err(|e| CliError::new("io", format!("read {}: {e}", dir.display())))?;
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".json")
                .map(str::to_owned)
        })
        .filter(|n| ctl_provision::validate_name(n).is_ok())
        .collect();
    names.sort();
    Ok(names)
}

/// Containers of this state directory without a record: an interrupted `ct new` left
/// their directory, or their user (whose home is in the state directory).
fn incomplete(ctx: &Ctx) -> Vec<String> {
    let mut names = Vec::new();
    let homes = ctx.provisioner.state_dir().join("homes");
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    for line in passwd.lines() {
        let fields: Vec<&str> = line.split(':').collect();
        let [user, _, _, _, gecos, home, ..] = fields[..] else {
            continue;
        };
        let Some(name) = user.strip_prefix("ctl-") else {
            continue;
        };
        if gecos == ctl_provision::USER_MARKER
            && Path::new(home) == homes.join(user)
            && ctl_provision::validate_name(name).is_ok()
            && ctl_provision::user_name(name) == user
            && matches!(ctx.provisioner.load(name), Err(ProvisionError::NotFound(_)))
        {
            names.push(name.to_owned());
        }
    }
    let Ok(users) = fs::read_dir(ctx.provisioner.state_dir().join("lxc")) else {
        return names;
    };
    for user_dir in users.flatten() {
        let Ok(cts) = fs::read_dir(user_dir.path()) else {
            continue;
        };
        for ct_dir in cts.flatten() {
            let Some(name) = ct_dir.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let is_container = ct_dir.file_type().is_ok_and(|t| t.is_dir())
                && ctl_provision::validate_name(&name).is_ok()
                && ctl_provision::user_name(&name) == user_dir.file_name().to_string_lossy();
            if is_container
                && matches!(
                    ctx.provisioner.load(&name),
                    Err(ProvisionError::NotFound(_))
                )
            {
                names.push(name);
            }
        }
    }
    names
}

/// Left-aligned columns separated by two spaces.
pub fn render_table<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == N {
                l.push_str(cell);
            } else {
                l.push_str(&format!("{cell:<w$}  "));
            }
        }
        text.push_str(l.trim_end());
        text.push('\n');
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let t = render_table(["A", "BB"], &[["xxx".to_owned(), "y".to_owned()]]);
        assert_eq!(t, "A    BB\nxxx  y\n");
    }

    #[test]
    fn missing_script_is_one_clear_line() {
        let e = script_path(Path::new("/nonexistent/ctl-script.sh")).unwrap_err();
        assert_eq!(e.kind, "script");
        assert!(
            e.message.starts_with("script /nonexistent/ctl-script.sh: "),
            "{}",
            e.message
        );
        let e = script_path(Path::new("/")).unwrap_err();
        assert!(e.message.contains("not a regular file"));
    }
}
