//! The process that enters: joins the payload cgroups, `setns`es into init's namespaces,
//! forks into the pid namespace, and the child takes the container's identity and
//! confinement and runs the program.
//!
//! Everything the child needs is computed before the fork (argv, environment, the
//! bounding set): after `setns` into the mount namespace the file system is the
//! container's, which its root controls, so the child reads nothing from it but the
//! program it executes (and its working directory).

use std::ffi::{CString, OsStr};
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::resource::setrlimit;
use nix::sys::wait::waitpid;
use nix::unistd::{fork, setgroups, setresgid, setresuid, ForkResult, Gid, Uid};

use super::policy::ConfigPolicy;
use super::seccomp::Filter;
use super::target::Init;
use super::EnterError;
use crate::attach::{AttachOptions, AttachProgram, EnvPolicy};
use crate::process::Pid;

/// Fds the child moves its stdio and its error pipe above before `dup2` (so that none is
/// overwritten by another's `dup2`).
const FD_FLOOR: RawFd = 10;

/// liblxc's `PATH` when a cleared environment keeps none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What the child does, computed before the fork.
struct ChildPlan<'a> {
    stdio: [RawFd; 3],
    bounding_set: u64,
    last_cap: u32,
    prlimits: &'a [(nix::sys::resource::Resource, u64, u64)],
    uid: u32,
    gid: u32,
    no_new_privs: bool,
    cwd: CString,
    env: Vec<CString>,
    /// For a command: the paths to try, in order, and its argv.
    exec: Option<(Vec<CString>, Vec<CString>)>,
    /// The container's seccomp filter, compiled before the fork (`super::seccomp`).
    seccomp: Option<Filter>,
    /// The personality of the running `lxc.arch`.
    personality: Option<libc::c_ulong>,
    /// The payload's directory in the cgroup v2 hierarchy, opened on the host: the child
    /// moves on into its `.lxc` leaf there, as liblxc's attach does.
    unified_payload: Option<OwnedFd>,
}

/// Enters the container from this (single-threaded, forked, non-dumpable) process and
/// starts `program` there; returns the pid of the attached process, a child of this one.
pub(crate) fn spawn(
    init: &Init,
    policy: &ConfigPolicy,
    payloads: Vec<(OwnedFd, PathBuf)>,
    seccomp: Option<Filter>,
    personality: Option<libc::c_ulong>,
    opts: &AttachOptions,
    program: AttachProgram<'_>,
) -> Result<Pid, EnterError> {
    // The payload's cgroups, opened now as the container's user (who owns them and their
    // common ancestor with our entry cgroup; since Linux 5.16 a write is checked against
    // the opener, in the opener's cgroup namespace). Nothing is joined yet: the child is
    // moved after the fork, the worker stays where it is.
    let mut cgroups = Vec::with_capacity(payloads.len());
    let mut unified_payload = None;
    for (dir, path) in payloads {
        let opened = PayloadCgroup::open(dir, path)?;
        if opened.unified {
            unified_payload = Some(
                opened
                    .dir
                    .try_clone()
                    .map_err(|e| EnterError::os(format!("dup of {}", opened.path.display()), e))?,
            );
        }
        cgroups.push(opened);
    }
    let env = environment(&opts.env, policy)?;
    let plan = ChildPlan {
        stdio: [opts.stdin, opts.stdout, opts.stderr],
        bounding_set: init.bounding_set,
        last_cap: last_cap()?,
        prlimits: &policy.prlimits,
        uid: opts.uid,
        gid: opts.gid,
        no_new_privs: policy.no_new_privs || init.no_new_privs,
        cwd: working_directory(opts)?,
        exec: match program {
            AttachProgram::Command(argv) => Some(command(argv, &env)?),
            AttachProgram::Function(_) => None,
            AttachProgram::Shell => unreachable!("checked by the caller"),
        },
        env,
        seccomp,
        personality,
        unified_payload,
    };
    let (err_r, err_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)
        .map_err(|e| EnterError::os("creating the attach's error pipe", e.into()))?;
    let (go_r, go_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)
        .map_err(|e| EnterError::os("creating the attach's start pipe", e.into()))?;
    // When this worker holds something for the attach only (a ctl runner's container lock,
    // `crate::isolated::release_held`), the child lets go of its inherited copy and says
    // so before it is moved into the container's cgroups: a process the container can
    // stop or freeze must hold nothing of it.
    let released = if crate::isolated::holds_for_attach() {
        Some(
            nix::unistd::pipe2(OFlag::O_CLOEXEC)
                .map_err(|e| EnterError::os("creating the attach's release pipe", e.into()))?,
        )
    } else {
        None
    };
    if !init.join.is_empty() {
        // One call: the user namespace is installed first, then the others are checked
        // against it (kernel ≥ 5.8). Fails with ESRCH if init is gone.
        nix::sched::setns(&init.pidfd, init.join).map_err(|e| match e {
            Errno::ESRCH => EnterError::NotRunning,
            e => EnterError::os("entering the container's namespaces", e.into()),
        })?;
    }
    // SAFETY: this process is single-threaded (the isolated worker checks that), so the
    // child may allocate and run Rust code until it execs or exits.
    match unsafe { fork() }.map_err(|e| EnterError::os("fork into the container", e.into()))? {
        ForkResult::Child => {
            drop(err_r);
            drop(go_w);
            drop(cgroups);
            let released = released.map(|(r, w)| {
                drop(r);
                w
            });
            child_main(&plan, err_w, go_r, released, program)
        }
        ForkResult::Parent { child } => {
            drop(err_w);
            drop(go_r);
            drop(plan);
            if let Some((r, w)) = released {
                drop(w);
                // One byte, or EOF if the child died first (its copy is gone either way).
                // The child is in the container's pid and user namespaces already, where
                // the container's root may stop it before it gets there: bounded, and then
                // killed (a stopped process dies of SIGKILL), which lets go of its copy.
                if !released_in_time(&r) {
                    let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
                    let _ = waitpid(child, None);
                    return Err(EnterError::Child(format!(
                        "the process entering the container did not start within {} ms \
                         (stopped from inside?)",
                        RELEASE_LIMIT.as_millis()
                    )));
                }
            }
            // The child still has the container user's credentials (it changes them
            // only after this), which a cgroup v1 move of another process requires.
            for cgroup in &cgroups {
                if let Err(e) = cgroup.take(child.as_raw()) {
                    let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
                    let _ = waitpid(child, None);
                    // The child may have failed first (and so be gone): its reason then.
                    drop(go_w);
                    let mut message = String::new();
                    let _ = std::fs::File::from(err_r).read_to_string(&mut message);
                    return Err(if message.is_empty() {
                        e
                    } else {
                        EnterError::Child(message)
                    });
                }
            }
            drop(cgroups);
            let _ = ctl_process::write_all(go_w.as_fd(), b"g");
            drop(go_w);
            let mut message = String::new();
            let _ = std::fs::File::from(err_r).read_to_string(&mut message);
            if message.is_empty() {
                return Ok(child.as_raw());
            }
            let _ = waitpid(child, None);
            Err(EnterError::Child(message))
        }
    }
}

/// How long the process entering the container may take to say that it let go of what
/// the worker holds for the attach (it does so first thing, in microseconds).
const RELEASE_LIMIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Waits up to [`RELEASE_LIMIT`] for the child's release byte (or its end); `false` when
/// neither came.
fn released_in_time(pipe: &OwnedFd) -> bool {
    let end = std::time::Instant::now() + RELEASE_LIMIT;
    loop {
        let left = end.saturating_duration_since(std::time::Instant::now());
        let timeout = nix::poll::PollTimeout::try_from(left.as_millis() as i32)
            .unwrap_or(nix::poll::PollTimeout::MAX);
        let mut fds = [nix::poll::PollFd::new(
            pipe.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        match nix::poll::poll(&mut fds, timeout) {
            Ok(0) => return false,
            Ok(_) => {
                let mut byte = [0u8; 1];
                return !matches!(nix::unistd::read(pipe, &mut byte), Err(Errno::EAGAIN));
            }
            Err(Errno::EINTR) if !left.is_zero() => continue,
            Err(_) => return false,
        }
    }
}

/// A payload cgroup, opened before `setns`.
struct PayloadCgroup {
    path: PathBuf,
    dir: OwnedFd,
    procs: std::fs::File,
    unified: bool,
}

impl PayloadCgroup {
    /// Opens the payload directory `dir` (the monitor's fd; `path` where it is, for
    /// messages) for a move into it.
    fn open(dir: OwnedFd, path: PathBuf) -> Result<PayloadCgroup, EnterError> {
        let fs = nix::sys::statfs::fstatfs(&dir)
            .map_err(|e| EnterError::os(format!("statfs {}", path.display()), e.into()))?;
        let unified = fs.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC;
        if unified {
            // A cgroup v2 payload with controllers enabled below it takes no processes
            // (liblxc then uses leaves of its own): decided here, before anything is
            // joined, so that liblxc's attach can take over.
            let mut control = String::new();
            open_beneath(&dir, "cgroup.subtree_control", OFlag::O_RDONLY)
                .and_then(|fd| std::fs::File::from(fd).read_to_string(&mut control))
                .map_err(|e| {
                    EnterError::os(
                        format!("reading {}/cgroup.subtree_control", path.display()),
                        e,
                    )
                })?;
            if !control.trim().is_empty() {
                return Err(EnterError::NotCovered(super::policy::NotCovered {
                    key: "lxc.cgroup".to_owned(),
                    why: format!(
                        "{} has controllers enabled below it ({})",
                        path.display(),
                        control.trim()
                    ),
                }));
            }
        }
        let procs = open_beneath(&dir, "cgroup.procs", OFlag::O_WRONLY)
            .map(std::fs::File::from)
            .map_err(|e| EnterError::os(format!("opening {}/cgroup.procs", path.display()), e))?;
        Ok(PayloadCgroup {
            path,
            dir,
            procs,
            unified,
        })
    }

    /// Moves process `pid` (of this process's pid namespace) into this cgroup.
    fn take(&self, pid: libc::pid_t) -> Result<(), EnterError> {
        let text = pid.to_string();
        ctl_process::write_all(self.procs.as_fd(), text.as_bytes()).map_err(|e| {
            EnterError::os(
                format!("moving the attached process into {}", self.path.display()),
                e,
            )
        })
    }
}

/// `name` in the directory `dir`, refusing symlinks and anything outside it.
fn open_beneath(dir: &OwnedFd, name: &str, flags: OFlag) -> io::Result<OwnedFd> {
    let how = nix::fcntl::OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
        .resolve(
            nix::fcntl::ResolveFlag::RESOLVE_BENEATH
                | nix::fcntl::ResolveFlag::RESOLVE_NO_SYMLINKS
                | nix::fcntl::ResolveFlag::RESOLVE_NO_XDEV,
        );
    Ok(nix::fcntl::openat2(dir, name, how)?)
}

fn last_cap() -> Result<u32, EnterError> {
    let text = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .map_err(|e| EnterError::os("/proc/sys/kernel/cap_last_cap", e))?;
    text.trim().parse().map_err(|e| {
        EnterError::os(
            "cap_last_cap",
            io::Error::new(io::ErrorKind::InvalidData, e),
        )
    })
}

fn working_directory(opts: &AttachOptions) -> Result<CString, EnterError> {
    // liblxc keeps the caller's working directory where it exists inside, else `/`.
    let dir = match &opts.cwd {
        Some(dir) => dir.clone(),
        None => std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
    };
    cstring(dir.as_os_str().as_bytes(), "working directory")
}

/// The attached process's environment, as liblxc builds it: the caller's (or only the
/// kept variables, and a default `PATH` unless kept), `container=lxc`, the configuration's
/// `lxc.environment`, then the caller's extra variables.
fn environment(env: &EnvPolicy, policy: &ConfigPolicy) -> Result<Vec<CString>, EnterError> {
    let mut vars: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut set = |name: &[u8], value: &[u8]| {
        vars.retain(|(n, _)| n != name);
        vars.push((name.to_vec(), value.to_vec()));
    };
    if env.clear {
        let mut path_kept = false;
        for name in &env.keep {
            if let Some(value) = std::env::var_os(name) {
                set(name.as_bytes(), value.as_bytes());
                path_kept |= name == "PATH";
            }
        }
        if !path_kept {
            set(b"PATH", DEFAULT_PATH.as_bytes());
        }
    } else {
        for (name, value) in std::env::vars_os() {
            set(name.as_bytes(), value.as_bytes());
        }
    }
    set(b"container", b"lxc");
    for (name, value) in &policy.environment {
        set(name.as_bytes(), value.as_bytes());
    }
    for (name, value) in &env.set {
        set(name.as_bytes(), value.as_bytes());
    }
    if let Some((name, _)) = vars
        .iter()
        .find(|(name, _)| name.is_empty() || name.contains(&b'='))
    {
        return Err(EnterError::os(
            format!("environment variable name {:?}", OsStr::from_bytes(name)),
            io::Error::new(io::ErrorKind::InvalidInput, "empty or containing `=`"),
        ));
    }
    vars.into_iter()
        .map(|(mut name, value)| {
            name.push(b'=');
            name.extend_from_slice(&value);
            cstring(&name, "environment variable")
        })
        .collect()
}

/// The paths `execvp` would try for `argv[0]` with the `PATH` of `env` (the attached
/// process's environment), and argv.
fn command(argv: &[&str], env: &[CString]) -> Result<(Vec<CString>, Vec<CString>), EnterError> {
    let program = *argv.first().ok_or_else(|| {
        EnterError::os(
            "attach",
            io::Error::new(io::ErrorKind::InvalidInput, "empty argv"),
        )
    })?;
    let args = argv
        .iter()
        .map(|a| cstring(a.as_bytes(), "argument"))
        .collect::<Result<Vec<_>, _>>()?;
    if program.contains('/') {
        return Ok((vec![cstring(program.as_bytes(), "program")?], args));
    }
    let path = env
        .iter()
        .rev()
        .find_map(|v| v.as_bytes().strip_prefix(b"PATH="))
        .map(|p| p.to_vec())
        .unwrap_or_else(|| b"/bin:/usr/bin".to_vec());
    let candidates = path
        .split(|&b| b == b':')
        .map(|dir| {
            let dir = if dir.is_empty() { b".".as_slice() } else { dir };
            let mut full = dir.to_vec();
            full.push(b'/');
            full.extend_from_slice(program.as_bytes());
            cstring(&full, "program path")
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((candidates, args))
}

fn cstring(bytes: &[u8], what: &str) -> Result<CString, EnterError> {
    CString::new(bytes).map_err(|_| {
        EnterError::os(
            format!("{what} {:?}", OsStr::from_bytes(bytes)),
            io::Error::new(io::ErrorKind::InvalidInput, "contains a NUL byte"),
        )
    })
}

/// The attached process: never returns.
fn child_main(
    plan: &ChildPlan<'_>,
    original_err_w: OwnedFd,
    go: OwnedFd,
    released: Option<OwnedFd>,
    program: AttachProgram<'_>,
) -> ! {
    // What the worker holds for the attach (a ctl runner's container lock) is not this
    // process's: it goes before the container's root can reach (and stop) this process,
    // and the worker moves it into the container's cgroups only once told so.
    crate::isolated::release_held();
    if let Some(released) = released {
        let _ = ctl_process::write_all(released.as_fd(), b"r");
    }
    // The worker's signal handler is not the program's (`crate::signals`).
    crate::signals::reset_in_program();
    // A panic anywhere below must end this child, never unwind into the worker's code.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        child_steps(plan, original_err_w, go, program)
    }));
    let _ = result;
    // SAFETY: _exit ends this forked child without running the caller's cleanup.
    unsafe { libc::_exit(1) }
}

fn child_steps(
    plan: &ChildPlan<'_>,
    original_err_w: OwnedFd,
    go: OwnedFd,
    program: AttachProgram<'_>,
) -> ! {
    // Only raised copies are kept (an original could be one of the stdio targets).
    let err_w = match raise(original_err_w.as_fd()) {
        Ok(fd) => fd,
        Err(e) => fail(&original_err_w, &format!("raising the error pipe: {e}")),
    };
    drop(original_err_w);
    let go = match raise(go.as_fd()) {
        Ok(fd) => fd,
        Err(e) => fail(&err_w, &format!("raising the start pipe: {e}")),
    };
    match confine(plan, go) {
        Ok(()) => {}
        Err(message) => fail(&err_w, &message),
    }
    match program {
        AttachProgram::Command(_) => {
            let (paths, argv) = plan.exec.as_ref().expect("a command has its exec plan");
            // Every fd but the program's stdio closes at exec (the error pipe too, which
            // tells the caller that the exec happened).
            if let Err(e) = ctl_process::cloexec_from(3) {
                fail(&err_w, &format!("closing fds: {e}"));
            }
            let code = exec(paths, argv, &plan.env);
            // SAFETY: as above.
            unsafe { libc::_exit(code) }
        }
        AttachProgram::Function(f) => {
            drop(err_w);
            set_process_environment(&plan.env);
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(101);
            // SAFETY: as above.
            unsafe { libc::_exit(code) }
        }
        AttachProgram::Shell => unreachable!("checked by the caller"),
    }
}

/// Takes the container's identity and confinement, in liblxc's order.
fn confine(plan: &ChildPlan<'_>, go: OwnedFd) -> Result<(), String> {
    // The stdio fds, moved out of the way of one another first.
    let raised = plan
        .stdio
        .iter()
        .map(|&fd| {
            // SAFETY: the caller's stdio fds are open in this process until the exec.
            raise(unsafe { BorrowedFd::borrow_raw(fd) }).map_err(|e| format!("stdio fd {fd}: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    for (target, fd) in raised.iter().enumerate() {
        // SAFETY: dup2 of an fd this process owns onto a standard fd number.
        if unsafe { libc::dup2(fd.as_raw_fd(), target as RawFd) } < 0 {
            return Err(format!(
                "dup2 onto {target}: {}",
                io::Error::last_os_error()
            ));
        }
    }
    drop(raised);
    if let Some(persona) = plan.personality {
        // SAFETY: personality(2) takes an integer.
        if unsafe { libc::personality(persona) } < 0 {
            return Err(format!("personality: {}", io::Error::last_os_error()));
        }
    }
    // Setting up the bounding set needs CAP_SETPCAP, which joining the user namespace gave.
    for cap in 0..=plan.last_cap {
        if plan.bounding_set & (1u64 << cap) == 0 {
            // SAFETY: integer-only prctl.
            if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) } != 0 {
                return Err(format!(
                    "dropping capability {cap}: {}",
                    io::Error::last_os_error()
                ));
            }
        }
    }
    for &(resource, soft, hard) in plan.prlimits {
        setrlimit(resource, soft, hard).map_err(|e| format!("lxc.prlimit {resource:?}: {e}"))?;
    }
    // The worker moves this process into the payload meanwhile (a cgroup v1 move of
    // another process needs its credentials to be the mover's, so no id changes before):
    // nothing below happens until it says it has.
    let mut byte = [0u8; 1];
    if !matches!(std::fs::File::from(go).read(&mut byte), Ok(1)) {
        return Err(
            "the attaching process did not move this one into the container's cgroups".to_owned(),
        );
    }
    setgroups(&[]).map_err(|e| format!("setgroups: {e}"))?;
    let root = (Gid::from_raw(0), Uid::from_raw(0));
    setresgid(root.0, root.0, root.0).map_err(|e| format!("setresgid 0: {e}"))?;
    setresuid(root.1, root.1, root.1).map_err(|e| format!("setresuid 0: {e}"))?;
    if let Some(payload) = &plan.unified_payload {
        enter_leaf(payload)?;
    }
    // liblxc's order from here: no_new_privs, the seccomp filter (still as the container's
    // root, whose CAP_SYS_ADMIN lets a filter load without no_new_privs), the final ids.
    if plan.no_new_privs {
        // SAFETY: integer-only prctl.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as libc::c_ulong, 0, 0, 0) } != 0 {
            return Err(format!("no_new_privs: {}", io::Error::last_os_error()));
        }
    }
    if let Some(filter) = &plan.seccomp {
        if plan.exec.is_some() {
            // Every fd but the program's stdio closes at exec (the error pipe too, which
            // tells the caller that the exec happened): marked now, before a filter that
            // might refuse the calls that mark them.
            ctl_process::cloexec_from(3).map_err(|e| format!("closing fds: {e}"))?;
        }
        filter
            .install()
            .map_err(|e| format!("loading the container's seccomp filter: {e}"))?;
    }
    let gid = Gid::from_raw(plan.gid);
    if plan.gid != 0 {
        setresgid(gid, gid, gid).map_err(|e| format!("setresgid {}: {e}", plan.gid))?;
    }
    let uid = Uid::from_raw(plan.uid);
    if plan.uid != 0 {
        setresuid(uid, uid, uid).map_err(|e| format!("setresuid {}: {e}", plan.uid))?;
    }
    // The mount namespace's root is the working directory after setns; liblxc goes back
    // to the caller's path when it exists inside, else stays at `/`.
    // SAFETY: chdir with a NUL-terminated path that lives in `plan`.
    if unsafe { libc::chdir(plan.cwd.as_ptr()) } != 0 {
        // SAFETY: as above, a static path.
        unsafe { libc::chdir(c"/".as_ptr()) };
    }
    Ok(())
}

/// As the container's root: into the payload's leaf `.lxc` in the cgroup v2 hierarchy
/// (made if missing, so owned by the container's root, as liblxc makes it); where that
/// fails other than with `EBUSY`, the process stays in the payload, as with liblxc.
fn enter_leaf(payload: &OwnedFd) -> Result<(), String> {
    // SAFETY: mkdirat/openat relative to an open directory fd with static paths.
    unsafe {
        if libc::mkdirat(payload.as_raw_fd(), c".lxc".as_ptr(), 0o755) != 0
            && Errno::last() != Errno::EEXIST
        {
            return Ok(());
        }
        let fd = libc::openat(
            payload.as_raw_fd(),
            c".lxc/cgroup.procs".as_ptr(),
            libc::O_WRONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
        );
        if fd < 0 {
            return Ok(());
        }
        let file = OwnedFd::from_raw_fd(fd);
        match ctl_process::write_all(file.as_fd(), b"0") {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                Err("the payload's .lxc cgroup takes no processes (EBUSY)".to_owned())
            }
            _ => Ok(()),
        }
    }
}

/// `execve` of each candidate in turn (`execvp`'s search); the exit status liblxc's
/// `lxc_attach_run_command` gives when none runs: 126 (not executable), 127 (not found),
/// 255 (another error).
fn exec(paths: &[CString], argv: &[CString], env: &[CString]) -> i32 {
    let argv_ptrs: Vec<*const libc::c_char> = argv
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let env_ptrs: Vec<*const libc::c_char> = env
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let mut denied = false;
    let mut last = libc::ENOENT;
    for path in paths {
        // SAFETY: NUL-terminated path and NULL-terminated arrays of NUL-terminated strings,
        // all alive until execve returns (it only returns on failure).
        unsafe { libc::execve(path.as_ptr(), argv_ptrs.as_ptr(), env_ptrs.as_ptr()) };
        last = Errno::last_raw();
        if last == libc::ENOEXEC {
            // glibc's execvp (liblxc's) runs a file without a known format as a shell
            // script: `/bin/sh path args...`.
            let shell: Vec<*const libc::c_char> = [c"/bin/sh".as_ptr(), path.as_ptr()]
                .into_iter()
                .chain(argv_ptrs.iter().skip(1).copied())
                .collect();
            // SAFETY: as above; `shell` ends with argv's terminating NULL.
            unsafe { libc::execve(c"/bin/sh".as_ptr(), shell.as_ptr(), env_ptrs.as_ptr()) };
            last = libc::ENOEXEC;
            break;
        }
        match last {
            libc::EACCES => denied = true,
            libc::ENOENT | libc::ENOTDIR | libc::ESTALE | libc::ENODEV | libc::ETIMEDOUT => {}
            _ => break,
        }
    }
    if denied && matches!(last, libc::ENOENT | libc::ENOTDIR | libc::EACCES) {
        return 126;
    }
    match last {
        libc::EACCES | libc::ENOEXEC => 126,
        libc::ENOENT => 127,
        _ => 255,
    }
}

fn set_process_environment(env: &[CString]) {
    // SAFETY: this child is single-threaded: nothing reads the environment concurrently.
    unsafe { libc::clearenv() };
    for var in env {
        let bytes = var.as_bytes();
        if let Some(eq) = bytes.iter().position(|&b| b == b'=') {
            std::env::set_var(
                OsStr::from_bytes(&bytes[..eq]),
                OsStr::from_bytes(&bytes[eq + 1..]),
            );
        }
    }
}

fn raise(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // SAFETY: fcntl on a borrowed (open) fd; F_DUPFD_CLOEXEC returns a new fd or -1.
    let new = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, FD_FLOOR) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: F_DUPFD_CLOEXEC returned a new fd nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// Reports why the child could not start the program, and ends it.
fn fail(err_w: &OwnedFd, message: &str) -> ! {
    let _ = ctl_process::write_all(err_w.as_fd(), message.as_bytes());
    // SAFETY: _exit ends this forked child without running the caller's cleanup.
    unsafe { libc::_exit(1) }
}
