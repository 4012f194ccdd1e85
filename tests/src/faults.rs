//! Commands that fail in every way a runner can, to prove the frontend's handling.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::time::Duration;

use ctl_core::{bail, container_command, CommandError, RunnerContext};

/// Fail with a command error carrying this message.
#[container_command(placement = exec)]
pub fn fail(_ctx: &mut RunnerContext, message: String) -> Result<bool, CommandError> {
    bail!("{message}")
}

/// Abort the runner (SIGABRT) without replying.
#[container_command(placement = exec)]
pub fn abort(_ctx: &mut RunnerContext) -> Result<bool, CommandError> {
    std::process::abort()
}

/// Exit with this status without replying, after writing a line to stderr.
#[container_command(placement = fork)]
pub fn exit_silently(_ctx: &mut RunnerContext, code: i32) -> Result<bool, CommandError> {
    eprintln!("exit_silently: leaving with {code}");
    std::process::exit(code)
}

/// Write these raw bytes to the return fd, then exit with status 0.
#[container_command(placement = fork)]
pub fn raw_reply(
    _ctx: &mut RunnerContext,
    bytes: String,
    size: usize,
) -> Result<bool, CommandError> {
    let mut out = return_fd();
    let mut text = bytes.into_bytes();
    if size > text.len() {
        text.resize(size, b'x');
    }
    let _ = out.write_all(&text);
    std::process::exit(0)
}

/// Sleep this many seconds, then reply `true`.
#[container_command(placement = exec)]
pub fn sleep(_ctx: &mut RunnerContext, seconds: f64) -> Result<bool, CommandError> {
    std::thread::sleep(Duration::from_secs_f64(seconds));
    Ok(true)
}

/// Start a grandchild that sleeps, write its pid to stdout, then sleep forever: the
/// deadline must kill both.
#[container_command(placement = exec)]
pub fn spawn_sleeper(ctx: &mut RunnerContext) -> Result<bool, CommandError> {
    let child = std::process::Command::new("/bin/sleep")
        .arg("1000")
        .spawn()?;
    if let Some(out) = ctx.stdout.take() {
        let mut f = std::fs::File::from(out);
        writeln!(f, "{}", child.id())?;
    }
    std::thread::sleep(Duration::from_secs(1000));
    Ok(true)
}

/// Write `text` to the command's stdout and `err` to its stderr; reply with the stdin
/// content read to its end (or null without stdin).
#[container_command(placement = exec)]
pub fn stdio_echo(
    ctx: &mut RunnerContext,
    text: String,
    #[kwarg(default)] err: String,
) -> Result<Option<String>, CommandError> {
    use std::io::Read;
    if let Some(out) = ctx.stdout.take() {
        std::fs::File::from(out).write_all(text.as_bytes())?;
    }
    if let Some(e) = ctx.stderr.take() {
        std::fs::File::from(e).write_all(err.as_bytes())?;
    }
    let mut input = None;
    if let Some(inp) = ctx.stdin.take() {
        let mut s = String::new();
        std::fs::File::from(inp).read_to_string(&mut s)?;
        input = Some(s);
    }
    Ok(input)
}

/// Panic in command code.
#[container_command(placement = fork)]
pub fn panics(_ctx: &mut RunnerContext) -> Result<bool, CommandError> {
    panic!("deliberate panic in command code")
}

fn return_fd() -> std::fs::File {
    // The frontend of this framework always puts the return pipe at fd 3.
    use std::os::fd::FromRawFd;
    let fd = 3;
    // SAFETY: fault injection only: we take fd 3 (the return pipe) and exit right after.
    let f = unsafe { std::fs::File::from_raw_fd(fd) };
    debug_assert_eq!(f.as_raw_fd(), 3);
    f
}

/// Write this runner's own pid (a line) to the command's stdout, then sleep this many
/// seconds and reply `true`: a runner that a test can find and kill mid-command.
#[container_command(placement = exec)]
pub fn pid_then_sleep(ctx: &mut RunnerContext, seconds: f64) -> Result<bool, CommandError> {
    if let Some(out) = ctx.stdout.take() {
        let mut f = std::fs::File::from(out);
        writeln!(f, "{}", std::process::id())?;
    }
    std::thread::sleep(Duration::from_secs_f64(seconds));
    Ok(true)
}

/// What [`TryEscape`] attempted, each as `"ok"` when it succeeded or the error it got.
pub type EscapeReport = std::collections::BTreeMap<String, String>;

/// Try to reach beyond the runner's placement: signal, trace and read the memory of
/// `target_pid` (the daemon), read `secret_path` (a root-only file), and create, replace
/// or remove files in `state_dir` (a root-owned 0755 directory holding files `state` and
/// `lock`).
/// Nothing is retried or worked around; the report says how each attempt ended.
///
/// The only signals sent for real are ones whose default action is to be ignored
/// (`SIGWINCH`), so that an attempt that wrongly succeeds cannot hurt the target.
#[container_command(placement = exec)]
pub fn try_escape(
    _ctx: &mut RunnerContext,
    target_pid: i32,
    secret_path: String,
    state_dir: String,
    setuid_cat: String,
) -> Result<EscapeReport, CommandError> {
    use nix::sys::signal::{kill, killpg, Signal};
    use nix::unistd::Pid;
    let mut report = EscapeReport::new();
    let mut note = |what: &str, result: Result<(), String>| {
        report.insert(
            what.to_owned(),
            result.err().unwrap_or_else(|| "ok".to_owned()),
        );
    };
    let io = |e: std::io::Error| e.to_string();
    let errno = |e: nix::errno::Errno| e.to_string();
    let target = Pid::from_raw(target_pid);

    note(
        "signal 0 (permission check)",
        kill(target, None).map_err(errno),
    );
    note(
        "signal SIGWINCH",
        kill(target, Signal::SIGWINCH).map_err(errno),
    );
    // The kernel lets SIGCONT through to any process of the same session, whatever the
    // credentials: the runner leads a session of its own, so this must fail too.
    note(
        "signal SIGCONT (another session)",
        kill(target, Signal::SIGCONT).map_err(errno),
    );
    let group = nix::unistd::getpgid(Some(target)).map_err(errno);
    note(
        "signal SIGWINCH to the target's process group",
        group.and_then(|g| killpg(g, Signal::SIGWINCH).map_err(errno)),
    );
    // PTRACE_SEIZE does not stop the target; detach at once if it wrongly succeeded.
    // SAFETY: ptrace with integer arguments; the data pointer is unused (null).
    let seized = unsafe { libc::ptrace(libc::PTRACE_SEIZE, target_pid, 0, 0) };
    if seized == 0 {
        // SAFETY: as above.
        unsafe { libc::ptrace(libc::PTRACE_DETACH, target_pid, 0, 0) };
    }
    note(
        "ptrace seize",
        if seized == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error().to_string())
        },
    );
    let mut byte = [0u8; 1];
    let local = [libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    }];
    // Any readable address of the target would do; its auxv's first entry is not needed:
    // a permission failure comes before the address is looked at.
    let remote = [libc::iovec {
        iov_base: 0x1000 as *mut libc::c_void,
        iov_len: 1,
    }];
    // SAFETY: reads at most one byte into `byte` through `local`.
    let n = unsafe { libc::process_vm_readv(target_pid, local.as_ptr(), 1, remote.as_ptr(), 1, 0) };
    let vm = if n >= 0 {
        Ok(())
    } else {
        let e = std::io::Error::last_os_error();
        // EFAULT means the permission check passed and only the address was bad.
        if e.raw_os_error() == Some(libc::EFAULT) {
            Ok(())
        } else {
            Err(e.to_string())
        }
    };
    note("process_vm_readv", vm);
    note(
        "open /proc/<target>/mem",
        std::fs::File::open(format!("/proc/{target_pid}/mem"))
            .map(drop)
            .map_err(io),
    );
    note(
        "read /proc/<target>/environ",
        std::fs::read(format!("/proc/{target_pid}/environ"))
            .map(drop)
            .map_err(io),
    );
    note(
        "open /proc/<target>/root",
        std::fs::read_dir(format!("/proc/{target_pid}/root"))
            .map(drop)
            .map_err(io),
    );

    note(
        "read the secret",
        std::fs::read(&secret_path).map(drop).map_err(io),
    );
    // A setuid-root program (a copy of cat the test made) would read it as root, were
    // it not for no_new_privs.
    note(
        "read the secret through a setuid-root program",
        read_through_program(&setuid_cat, &secret_path),
    );
    note(
        "open the secret for writing",
        std::fs::OpenOptions::new()
            .write(true)
            .open(&secret_path)
            .map(drop)
            .map_err(io),
    );

    let dir = std::path::Path::new(&state_dir);
    note(
        "create a file in the state dir",
        std::fs::write(dir.join("planted"), b"x").map_err(io),
    );
    note(
        "create a directory in the state dir",
        std::fs::create_dir(dir.join("planted.d")).map_err(io),
    );
    note(
        "symlink in the state dir",
        std::os::unix::fs::symlink("/etc/shadow", dir.join("planted.lnk")).map_err(io),
    );
    note(
        "write the state file",
        std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join("state"))
            .map(drop)
            .map_err(io),
    );
    note(
        "rename the state file",
        std::fs::rename(dir.join("state"), dir.join("state.old")).map_err(io),
    );
    note(
        "remove the lock file",
        std::fs::remove_file(dir.join("lock")).map_err(io),
    );
    note("chmod the state dir", {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).map_err(io)
    });
    Ok(report)
}

/// Runs `program path` and succeeds when it exited 0; otherwise its stderr.
fn read_through_program(program: &str, path: &str) -> Result<(), String> {
    let out = std::process::Command::new(program)
        .arg(path)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

/// `program path` from a runner *without* `no_new_privs` (setuid helpers allowed): the
/// control that shows `TryEscape`'s setuid attempt fails because of `no_new_privs`.
#[container_command(placement = fork, setuid_helpers)]
pub fn read_through(
    _ctx: &mut RunnerContext,
    program: String,
    path: String,
) -> Result<bool, CommandError> {
    read_through_program(&program, &path).map_err(CommandError::msg)?;
    Ok(true)
}
