//! LXC's own command-line tools, run as the container's user inside the container's cgroup
//! (`Container::cgroup_path`): an oracle independent of ctl-core's runner machinery, for
//! tests. That is the entry cgroup in the default layout; in osctld's it is the entry's
//! parent, where osctld starts its containers from (`lxc-start` there puts the payload
//! beside the entry, as the framework's Start does).
//!
//! The placement is done by a shell, not by a `pre_exec` closure (nothing may allocate
//! between fork and exec in a multi-threaded test binary, and `Command` without
//! `pre_exec` can use `posix_spawn`): `/bin/sh` writes its own pid (`$$`) into every
//! hierarchy's `cgroup.procs` of the container's cgroup while still root, then execs
//! `setpriv` to become the user (uid = gid = ugid, no supplementary groups but ugid, no
//! inheritable capabilities), which execs `env -i` with the environment osctld gives its
//! runners.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::process::{Command, Output, Stdio};

use ctl_core::{cgroup, Container};

/// `PATH` for the tools.
pub const TOOL_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

const ENTER_AND_EXEC: &str = r#"n=$1; shift
while [ "$n" -gt 0 ]; do
  echo $$ > "$1" || { echo "ctl-provision oracle: cannot enter cgroup $1" >&2; exit 125; }
  shift; n=$((n - 1))
done
exec "$@""#;

/// A command running `program args...` as `ct`'s user inside its cgroup, with
/// `HOME`, `USER`, `XDG_RUNTIME_DIR=<home>/.cache/lxc/run` and [`TOOL_PATH`] as the whole
/// environment. Stdin is `/dev/null`; the caller may override stdio.
pub fn command_as_user<S: AsRef<OsStr>>(
    ct: &Container,
    program: impl AsRef<OsStr>,
    args: impl IntoIterator<Item = S>,
) -> Command {
    let procs = cgroup::procs_files(&ct.cgroup_path);
    let id = ct.ugid.to_string();
    let mut cmd = Command::new("/bin/sh");
    cmd.env_clear()
        .env("PATH", TOOL_PATH)
        .arg("-c")
        .arg(ENTER_AND_EXEC)
        .arg("ctl-oracle")
        .arg(procs.len().to_string())
        .args(&procs)
        .args([
            "/usr/bin/setpriv",
            "--reuid",
            &id,
            "--regid",
            &id,
            "--groups",
            &id,
            "--inh-caps=-all",
            "--",
        ])
        .args(["/usr/bin/env", "-i"])
        .arg(format!("HOME={}", ct.home.display()))
        .arg(format!("USER={}", ct.user))
        .arg(format!(
            "XDG_RUNTIME_DIR={}",
            ct.home.join(".cache/lxc/run").display()
        ))
        .arg(format!("PATH={TOOL_PATH}"))
        .arg(program)
        .args(args)
        .stdin(Stdio::null());
    cmd
}

/// Runs LXC tool `tool` (e.g. `lxc-info`) for `ct`: `-P <lxc_home> -n <id>` come first,
/// then `args`.
pub fn lxc_tool(ct: &Container, tool: &str, args: &[&str]) -> io::Result<Output> {
    let mut full: Vec<&OsStr> = vec![
        OsStr::new("-P"),
        ct.lxc_home.as_os_str(),
        OsStr::new("-n"),
        OsStr::new(&ct.id),
    ];
    full.extend(args.iter().map(OsStr::new));
    command_as_user(ct, tool, full).output()
}

/// Like [`lxc_tool`], but a non-zero exit is an error carrying the tool's stderr.
fn lxc_tool_ok(ct: &Container, tool: &str, args: &[&str]) -> io::Result<Output> {
    let out = lxc_tool(ct, tool, args)?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{tool} {} for {} failed ({}): {}",
            args.join(" "),
            ct.ident(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out)
}

/// The state as `lxc-info -s -H` reports it, in lower case (`running`, `frozen`, ...).
pub fn lxc_state(ct: &Container) -> io::Result<String> {
    let out = lxc_tool_ok(ct, "lxc-info", &["-s", "-H"])?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .trim()
        .to_ascii_lowercase())
}

/// The init pid from `lxc-info -p -H`, `None` when not running.
pub fn lxc_init_pid(ct: &Container) -> io::Result<Option<i32>> {
    let out = lxc_tool_ok(ct, "lxc-info", &["-p", "-H"])?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().parse().ok())
}

/// `lxc-start -d`, then waits until RUNNING (10 s). A failure names the tool's stderr and
/// the tail of the container's log file.
pub fn start(ct: &Container) -> io::Result<()> {
    let started = lxc_tool_ok(ct, "lxc-start", &["-d"])
        .and_then(|_| lxc_tool_ok(ct, "lxc-wait", &["-s", "RUNNING", "-t", "10"]));
    started.map(drop).map_err(|e| {
        io::Error::other(format!(
            "{e}\n--- last lines of {} ---\n{}",
            ct.log_file.display(),
            log_tail(ct, 20)
        ))
    })
}

/// `lxc-stop -k` (kill, no clean shutdown).
pub fn stop(ct: &Container) -> io::Result<()> {
    lxc_tool_ok(ct, "lxc-stop", &["-k"]).map(drop)
}

/// [`stop`], but `lxc-stop` is killed when it takes longer than `limit` (a container can
/// keep its own init from dying, e.g. frozen in a freezer cgroup of its own); the caller
/// then kills the container's cgroups.
pub fn stop_within(ct: &Container, limit: std::time::Duration) -> io::Result<()> {
    let full: Vec<&OsStr> = vec![
        OsStr::new("-P"),
        ct.lxc_home.as_os_str(),
        OsStr::new("-n"),
        OsStr::new(&ct.id),
        OsStr::new("-k"),
    ];
    let mut child = command_as_user(ct, "lxc-stop", full)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let end = std::time::Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait()? {
            return if status.success() {
                Ok(())
            } else {
                Err(io::Error::other(format!(
                    "lxc-stop -k for {} failed ({status})",
                    ct.ident()
                )))
            };
        }
        if std::time::Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("lxc-stop -k for {} took longer than {limit:?}", ct.ident()),
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// `lxc-attach --clear-env -- argv...`; the output of the command (and of lxc-attach).
pub fn attach(ct: &Container, argv: &[&str]) -> io::Result<Output> {
    let mut args = vec!["--clear-env", "--"];
    args.extend_from_slice(argv);
    lxc_tool(ct, "lxc-attach", &args)
}

/// The last `lines` lines of the container's LXC log file.
pub fn log_tail(ct: &Container, lines: usize) -> String {
    let text = fs::read_to_string(&ct.log_file).unwrap_or_else(|e| format!("(cannot read: {e})"));
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
