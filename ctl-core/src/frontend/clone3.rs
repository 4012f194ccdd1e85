//! Starting a cold exec runner *inside* its cgroup v2 entry cgroup: `clone3` with
//! `CLONE_INTO_CGROUP`, instead of `posix_spawn` followed by the runner moving itself.
//!
//! glibc 2.36 has no `posix_spawnattr_setcgroup_np`, so this is a small `posix_spawn` of
//! our own, built the way glibc builds its own: `clone3(CLONE_VM | CLONE_VFORK)` onto a
//! separately mapped child stack (with a guard page), the parent thread suspended until the
//! child has called `execve` or exited. The child shares the daemon's memory until then, so
//! it runs only raw system calls (no libc, no `errno`, no allocation, no locks, no panics),
//! on data prepared before the clone:
//!
//! 1. reset the `DEFAULT_SIGNALS` of `spawn.rs` to `SIG_DFL` (the daemon may ignore them),
//! 2. `setpgid(0, 0)` if asked,
//! 3. the `dup2` plan of [`Program`] (sources already lifted above every target),
//! 4. an empty signal mask, then `execve`.
//!
//! A failing step stores its errno in a variable the parent reads once it runs again, and
//! the child exits with 127: the parent reaps it and reports the error, as `posix_spawn`
//! does.
//!
//! **No handler of the daemon can run in the child.** The parent blocks every signal (glibc's
//! internal ones too, with the raw syscall) around the clone, so the child starts with all
//! of them blocked; `CLONE_CLEAR_SIGHAND` makes the kernel reset every *caught* signal to
//! `SIG_DFL` in the child before it runs any code (ignored ones stay ignored, as across
//! `exec`), which replaces glibc's loop of 64 `sigaction` calls. Only then does the child
//! unblock signals, right before `execve`. (`CLONE_CLEAR_SIGHAND` is Linux 5.5,
//! `CLONE_INTO_CGROUP` 5.7: any kernel that has the second has the first.) One difference
//! from glibc's child: glibc sets its internal signals 32 and 33 (`SIGCANCEL`,
//! `SIGSETXID`) to `SIG_IGN`, which then sticks across `exec`; here they stay ignored only
//! if the caller ignores them, and are at the default otherwise, as after `fork` + `exec`
//! (nobody sends them to the child: glibc directs them at the caller's threads).
//!
//! The child stack is mapped once per calling thread and reused (see `ChildStack::take`).
//! The pidfd is still opened by the caller with `pidfd_open` (no `CLONE_PIDFD`), so both
//! spawn variants hand the same thing, a pid, to the code that watches the runner.
//!
//! **When the caller falls back to `posix_spawn`** (and the runner moves itself, as
//! without this module), see [`Fallback`]:
//! - switched off ([`super::Launcher::set_spawn_into_cgroup`]), or not built for this architecture (the
//!   child trampoline is x86-64 assembly);
//! - the kernel lacks `clone3`, `CLONE_INTO_CGROUP` or `CLONE_CLEAR_SIGHAND` (`ENOSYS`,
//!   `E2BIG`, `EINVAL`; a seccomp filter answering `ENOSYS` counts too): remembered for the
//!   life of the process, no further attempts;
//! - the cgroup directory cannot be opened (normally `ENOENT`: the entry cgroup does not
//!   exist yet, and the runner creates it, as it always did);
//! - `clone3` fails for any other reason *before a child exists*: the target cgroup refused
//!   the process (`EBUSY`: controllers enabled in its `cgroup.subtree_control`,
//!   `EOPNOTSUPP`: not a valid domain cgroup, `ENODEV`: removed meanwhile, `EACCES`/`EPERM`,
//!   `EBADF`), `EAGAIN` (the cgroup's `pids.max` is reached — a *move* is not subject to
//!   it, so a container at its process limit can still be stopped, as before), or
//!   `ENOMEM`. Only this call falls back: `posix_spawn` then either works (and the runner's
//!   own move says whether the cgroup takes it, with a clear "cannot enter cgroup" error
//!   if not) or fails with the same error it always gave.
//!
//! **Real failures** (no fallback): errors the *child* reports — `execve` (`ENOENT`,
//! `EACCES`, `ENOEXEC`...), `dup2`, `setpgid`. They are final and the same as
//! `posix_spawn`'s; retrying would only fail again.

use std::fmt;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::unistd::Pid;

use super::spawn::Program;
use crate::cgroup;
use crate::envelope::PlacementSpec;

/// Set once the kernel said it has no `clone3` / `CLONE_INTO_CGROUP` / `CLONE_CLEAR_SIGHAND`
/// (a fact about the kernel, shared by every [`super::Launcher`]).
static KERNEL_LACKS: AtomicBool = AtomicBool::new(false);

/// Whether this process can start runners inside a cgroup v2 cgroup: `false` on
/// architectures without the child trampoline, and once the kernel refused `clone3` with
/// `CLONE_INTO_CGROUP` (learned at the first cold exec call that tried). Does not say
/// whether a launcher switched it off ([`super::Launcher::set_spawn_into_cgroup`]).
pub fn spawn_into_cgroup_available() -> bool {
    imp::BUILT && !KERNEL_LACKS.load(Ordering::Relaxed)
}

/// The cgroup v2 directory a runner of this placement can be born in.
pub(crate) struct BirthCgroup {
    /// The entry cgroup's directory in the unified hierarchy.
    pub dir: PathBuf,
    /// Its `cgroup.procs`, as listed in the placement's `cgroup_procs`.
    pub procs: String,
}

/// The entry cgroup in the unified hierarchy, for a placement that enters cgroups (exec)
/// on a host with a cgroup v2 hierarchy, unless switched off (`enabled`) or known not to
/// work here.
pub(crate) fn birth_cgroup(spec: &PlacementSpec, enabled: bool) -> Option<BirthCgroup> {
    if !enabled || !spawn_into_cgroup_available() {
        return None;
    }
    let entry = spec.create_cgroup.as_ref()?;
    let unified = cgroup::hierarchies().iter().find(|h| h.unified)?;
    let dir = unified.path_of(&entry.relative);
    let procs = dir.join("cgroup.procs").to_string_lossy().into_owned();
    spec.cgroup_procs
        .contains(&procs)
        .then_some(BirthCgroup { dir, procs })
}

/// What became of an attempt.
pub(crate) enum Attempt {
    /// The child exists in the cgroup and has called `execve`.
    Spawned(Pid),
    /// The child existed and reported this error (it has been reaped): final.
    Failed(io::Error),
    /// No child was created: start it another way.
    Fallback(Fallback),
}

/// Why no child was created (see the module documentation for the rules).
#[derive(Debug)]
pub(crate) enum Fallback {
    /// Not built for this architecture.
    NotBuilt,
    /// The kernel (or a seccomp filter) lacks `clone3` or one of its flags; remembered.
    KernelLacks(Errno),
    /// The cgroup directory could not be opened (normally: does not exist yet).
    NoCgroup(io::Error),
    /// The child stack could not be mapped.
    Stack(io::Error),
    /// `clone3` failed otherwise (the cgroup refused the process, no memory, ...).
    Refused(Errno),
}

impl fmt::Display for Fallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fallback::NotBuilt => write!(f, "not built for this architecture"),
            Fallback::KernelLacks(e) => write!(f, "the kernel lacks it ({e})"),
            Fallback::NoCgroup(e) => write!(f, "cannot open the cgroup: {e}"),
            Fallback::Stack(e) => write!(f, "cannot map the child stack: {e}"),
            Fallback::Refused(e) => write!(f, "clone3 failed: {e}"),
        }
    }
}

/// `clone3` errors that mean "this kernel cannot do it at all".
fn kernel_lacks(e: Errno) -> bool {
    matches!(e, Errno::ENOSYS | Errno::E2BIG | Errno::EINVAL)
}

/// Starts `program` as a process born in the cgroup v2 directory `cgroup`.
pub(crate) fn spawn(program: &Program, cgroup: &Path) -> Attempt {
    if !imp::BUILT {
        return Attempt::Fallback(Fallback::NotBuilt);
    }
    if KERNEL_LACKS.load(Ordering::Relaxed) {
        return Attempt::Fallback(Fallback::KernelLacks(Errno::ENOSYS));
    }
    // O_PATH is enough for CLONE_INTO_CGROUP; std adds O_CLOEXEC. The kernel itself checks
    // that the fd is a directory of the cgroup v2 hierarchy (EBADF otherwise).
    use std::os::unix::fs::OpenOptionsExt;
    let dir = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(cgroup)
    {
        Ok(dir) => dir,
        Err(e) => return Attempt::Fallback(Fallback::NoCgroup(e)),
    };
    match imp::clone_into(program, dir.as_raw_fd()) {
        imp::Outcome::Spawned(pid) => Attempt::Spawned(pid),
        imp::Outcome::ChildFailed(e) => Attempt::Failed(e.into()),
        imp::Outcome::NoStack(e) => Attempt::Fallback(Fallback::Stack(e)),
        imp::Outcome::CloneFailed(e) if kernel_lacks(e) => {
            if !KERNEL_LACKS.swap(true, Ordering::Relaxed) {
                tracing::info!(error = %e, "clone3 with CLONE_INTO_CGROUP unavailable: runners are started with posix_spawn and move themselves");
            }
            Attempt::Fallback(Fallback::KernelLacks(e))
        }
        imp::Outcome::CloneFailed(e) => Attempt::Fallback(Fallback::Refused(e)),
    }
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod imp {
    //! The unsafe part: the child stack, the `clone3` trampoline and the child's code.

    use std::arch::asm;
    use std::cell::Cell;
    use std::ffi::{c_char, c_int, c_long};
    use std::io;
    use std::os::fd::RawFd;
    use std::ptr;
    use std::sync::atomic::{AtomicI32, Ordering};

    use nix::errno::Errno;
    use nix::unistd::Pid;

    use super::Program;
    use crate::frontend::spawn::DEFAULT_SIGNALS;

    pub const BUILT: bool = true;

    /// `CLONE_CLEAR_SIGHAND` and `CLONE_INTO_CGROUP` from `<linux/sched.h>`. Not libc's:
    /// there they are `c_int` and overflow to 0 (deprecated since libc 0.2.188 for that).
    const CLONE_CLEAR_SIGHAND: u64 = 0x1_0000_0000;
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

    /// The child's stack, without the guard page. It needs a few hundred bytes; what it
    /// does not touch is never faulted in.
    const STACK_SIZE: usize = 64 * 1024;

    /// The kernel's signal set is 64 bits on x86-64 (`sigsetsize` of the rt_ calls).
    const SIGSET_SIZE: usize = 8;

    /// A kernel `struct sigaction` (x86-64: handler, flags, restorer, mask) with every field
    /// zero: `SIG_DFL`, no flags, empty mask.
    static DEFAULT_ACTION: [u64; 4] = [0; 4];
    static NO_SIGNALS: u64 = 0;
    static ALL_SIGNALS: u64 = !0;

    pub enum Outcome {
        Spawned(Pid),
        ChildFailed(Errno),
        CloneFailed(Errno),
        NoStack(io::Error),
    }

    /// What the child reads (prepared before the clone) and writes (`err`). Lives on the
    /// parent's stack, which the parent does not use while it is suspended.
    #[repr(C)]
    struct ChildArgs {
        path: *const c_char,
        argv: *const *const c_char,
        envp: *const *const c_char,
        dups: *const [RawFd; 2],
        dups_len: usize,
        own_process_group: bool,
        /// The errno of the step that failed; 0 while none did.
        err: AtomicI32,
    }

    /// An anonymous mapping: a guard page (`PROT_NONE`) below `STACK_SIZE` bytes of stack.
    struct ChildStack {
        base: *mut libc::c_void,
        len: usize,
        guard: usize,
    }

    thread_local! {
        /// This thread's child stack, kept between spawns.
        static STACK: Cell<Option<ChildStack>> = const { Cell::new(None) };
    }

    impl ChildStack {
        /// This thread's stack, or a new one. Mapping and unmapping a stack per spawn
        /// costs about 15 µs here (faults on fresh pages; `munmap` shooting down the TLBs
        /// of the daemon's other threads). Reuse is sound: only a child of this thread
        /// ever runs on it, while this thread is suspended in `clone3`.
        fn take() -> io::Result<ChildStack> {
            match STACK.try_with(Cell::take) {
                Ok(Some(stack)) => Ok(stack),
                _ => ChildStack::new(),
            }
        }

        /// Keeps the stack for this thread's next spawn (unmapped when the thread ends).
        fn keep(self) {
            // Outside the thread's life (a TLS destructor spawning), `self` just drops.
            let _ = STACK.try_with(move |slot| slot.set(Some(self)));
        }

        fn new() -> io::Result<ChildStack> {
            // SAFETY: sysconf has no memory effects.
            let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) })
                .unwrap_or(4096)
                .max(4096);
            let len = STACK_SIZE + page;
            // SAFETY: a new private anonymous mapping; no existing memory is affected.
            let base = unsafe {
                libc::mmap(
                    ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                    -1,
                    0,
                )
            };
            if base == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            let stack = ChildStack {
                base,
                len,
                guard: page,
            };
            // SAFETY: the lowest page of the mapping we just made; a stack overflow in the
            // child then faults instead of writing below the mapping.
            if unsafe { libc::mprotect(base, page, libc::PROT_NONE) } != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(stack)
        }
    }

    impl Drop for ChildStack {
        fn drop(&mut self) {
            // SAFETY: our own mapping, in use by no child: a child stops using it when it
            // calls execve or exits, and only then does its parent run again (CLONE_VFORK).
            unsafe { libc::munmap(self.base, self.len) };
        }
    }

    /// A system call without libc: returns the result, or `-errno`. Writes no `errno` and
    /// no memory of its own, so the child can use it on the parent's memory.
    #[inline(always)]
    unsafe fn syscall4(nr: c_long, a: usize, b: usize, c: usize, d: usize) -> isize {
        let ret: isize;
        // SAFETY: the caller passes arguments valid for system call `nr`. `syscall`
        // clobbers only rax (the result), rcx and r11.
        unsafe {
            asm!(
                "syscall",
                inlateout("rax") nr as isize => ret,
                in("rdi") a,
                in("rsi") b,
                in("rdx") c,
                in("r10") d,
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
            );
        }
        ret
    }

    /// Starts the child with `clone3` and returns once it has called `execve` or exited.
    pub fn clone_into(program: &Program, cgroup: RawFd) -> Outcome {
        // Everything the child reads is built here, before the clone.
        let argv: [*const c_char; 2] = [program.argv[0].as_ptr(), ptr::null()];
        let envp: Vec<*const c_char> = program
            .envp
            .iter()
            .map(|v| v.as_ptr())
            .chain(std::iter::once(ptr::null()))
            .collect();
        let stack = match ChildStack::take() {
            Ok(stack) => stack,
            Err(e) => return Outcome::NoStack(e),
        };
        let child = ChildArgs {
            path: program.path.as_ptr(),
            argv: argv.as_ptr(),
            envp: envp.as_ptr(),
            dups: program.dups.as_ptr(),
            dups_len: program.dups.len(),
            own_process_group: program.own_process_group,
            err: AtomicI32::new(0),
        };
        let args = libc::clone_args {
            flags: libc::CLONE_VM as u64
                | libc::CLONE_VFORK as u64
                | CLONE_CLEAR_SIGHAND
                | CLONE_INTO_CGROUP,
            pidfd: 0,
            child_tid: 0,
            parent_tid: 0,
            exit_signal: libc::SIGCHLD as u64,
            stack: stack.base as u64 + stack.guard as u64,
            stack_size: STACK_SIZE as u64,
            tls: 0,
            set_tid: 0,
            set_tid_size: 0,
            cgroup: cgroup as u64,
        };

        let mut old_mask: u64 = 0;
        // SAFETY: rt_sigprocmask reads one 64-bit set and writes one into `old_mask`. The
        // raw call blocks glibc's internal signals too (pthread_sigmask would not), as
        // glibc's posix_spawn does: the child starts with every signal blocked.
        unsafe {
            syscall4(
                libc::SYS_rt_sigprocmask,
                libc::SIG_SETMASK as usize,
                &ALL_SIGNALS as *const u64 as usize,
                &mut old_mask as *mut u64 as usize,
                SIGSET_SIZE,
            )
        };
        // SAFETY: `args` describes a fresh stack that nothing else uses and a child that
        // runs `child_main(&child)` on it, touching only `child` (and what it points to,
        // all alive until we return) and its own stack; with CLONE_VFORK this thread is
        // suspended until the child has called execve or exited, so the child never races
        // with us, and `child`, `argv`, `envp`, `program` and `stack` outlive it.
        let ret = unsafe { clone3(&args, &child) };
        // SAFETY: as above, restoring the mask saved there.
        unsafe {
            syscall4(
                libc::SYS_rt_sigprocmask,
                libc::SIG_SETMASK as usize,
                &old_mask as *const u64 as usize,
                0,
                SIGSET_SIZE,
            )
        };
        stack.keep();

        if ret < 0 {
            return Outcome::CloneFailed(Errno::from_raw(-ret as c_int));
        }
        let pid = Pid::from_raw(ret as libc::pid_t);
        match child.err.load(Ordering::Acquire) {
            0 => Outcome::Spawned(pid),
            err => {
                // The child has exited (status 127): reap it, as posix_spawn does.
                while let Err(Errno::EINTR) = nix::sys::wait::waitpid(pid, None) {}
                Outcome::ChildFailed(Errno::from_raw(err))
            }
        }
    }

    /// `clone3(args)`; in the child, calls `child_main(child)` on the new stack and never
    /// comes back here. Returns the child's pid or `-errno` in the parent.
    ///
    /// The libc `syscall` wrapper cannot be used: the child returns from the system call on
    /// an empty stack, with no frame to return to (glibc's own `clone3` is assembly too).
    unsafe fn clone3(args: &libc::clone_args, child: *const ChildArgs) -> isize {
        let ret: isize;
        // SAFETY: the caller's contract, see `clone_into`. In the child, rdx/rdi/... are
        // the parent's values (the kernel copies the registers), rax is 0 and rsp the top of
        // the new stack: align it as the ABI wants, mark the outermost frame, call.
        unsafe {
            asm!(
                "syscall",
                "test rax, rax",
                "jnz 2f",
                "xor ebp, ebp",
                "and rsp, -16",
                "mov rdi, r8",
                "call r9",
                "ud2",
                "2:",
                inlateout("rax") libc::SYS_clone3 as isize => ret,
                in("rdi") args as *const libc::clone_args as usize,
                in("rsi") std::mem::size_of::<libc::clone_args>(),
                in("r8") child as usize,
                in("r9") child_main as extern "C" fn(*const ChildArgs) -> ! as usize,
                lateout("rcx") _,
                lateout("r11") _,
            );
        }
        ret
    }

    /// The child, from `clone3` to `execve`: raw system calls only, on data prepared by the
    /// parent. Never returns.
    extern "C" fn child_main(child: *const ChildArgs) -> ! {
        // SAFETY: `child` points to the parent's `ChildArgs`, alive and untouched by the
        // suspended parent until this process execs or exits; its pointers were valid when
        // the parent made them and nothing changes them meanwhile. Every call below is a
        // system call on those pointers or on statics; none can panic or allocate.
        unsafe {
            let child = &*child;
            for &signal in &DEFAULT_SIGNALS {
                let r = syscall4(
                    libc::SYS_rt_sigaction,
                    signal as usize,
                    DEFAULT_ACTION.as_ptr() as usize,
                    0,
                    SIGSET_SIZE,
                );
                check(child, r);
            }
            if child.own_process_group {
                check(child, syscall4(libc::SYS_setpgid, 0, 0, 0, 0));
            }
            // Sources are all above every target (Program::new), so no dup3 can overwrite
            // a source still to come, and source != target (dup3 would refuse that).
            for &[source, target] in std::slice::from_raw_parts(child.dups, child.dups_len) {
                let r = syscall4(libc::SYS_dup3, source as usize, target as usize, 0, 0);
                check(child, r);
            }
            check(
                child,
                syscall4(
                    libc::SYS_rt_sigprocmask,
                    libc::SIG_SETMASK as usize,
                    &NO_SIGNALS as *const u64 as usize,
                    0,
                    SIGSET_SIZE,
                ),
            );
            // path, argv and envp are the parent's NUL-terminated arrays, alive until the
            // parent sees the exec or the error (`clone_into`).
            let r = syscall4(
                libc::SYS_execve,
                child.path as usize,
                child.argv as usize,
                child.envp as usize,
                0,
            );
            fail(child, r)
        }
    }

    /// Continues if `r` is a success, else reports it and exits.
    #[inline(always)]
    unsafe fn check(child: &ChildArgs, r: isize) {
        if r < 0 {
            // SAFETY: in the child, as `fail` requires (the caller's contract).
            unsafe { fail(child, r) }
        }
    }

    /// Reports the error `r` (`-errno`) to the parent and exits with 127, like
    /// `posix_spawn`'s child.
    unsafe fn fail(child: &ChildArgs, r: isize) -> ! {
        child.err.store((-r) as i32, Ordering::Release);
        loop {
            // SAFETY: exit_group takes a plain int and does not return.
            unsafe { syscall4(libc::SYS_exit_group, 127, 0, 0, 0) };
        }
    }
}

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
mod imp {
    //! No child trampoline for this architecture: always `posix_spawn`.
    use nix::errno::Errno;
    use nix::unistd::Pid;
    use std::os::fd::RawFd;

    pub const BUILT: bool = false;

    pub enum Outcome {
        Spawned(Pid),
        ChildFailed(Errno),
        CloneFailed(Errno),
        NoStack(std::io::Error),
    }

    pub fn clone_into(_program: &super::Program, _cgroup: RawFd) -> Outcome {
        Outcome::CloneFailed(Errno::ENOSYS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frontend::spawn::SpawnRequest;
    use std::os::fd::{AsFd, OwnedFd};

    /// A cgroup v2 directory of this test process, removed on drop.
    struct TestCgroup(PathBuf);

    impl TestCgroup {
        fn new(tag: &str) -> TestCgroup {
            assert!(
                nix::unistd::geteuid().is_root(),
                "this test needs root (it creates a cgroup)"
            );
            let unified = cgroup::hierarchies()
                .iter()
                .find(|h| h.unified)
                .expect("this test needs a cgroup v2 hierarchy");
            let dir = unified.path_of(&format!("ctl-unit-{tag}-{}", std::process::id()));
            std::fs::create_dir(&dir).unwrap();
            TestCgroup(dir)
        }
    }

    impl Drop for TestCgroup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir(&self.0);
        }
    }

    /// Starts `/bin/cat` reading a pipe (so that it waits) in `cg`; returns what the
    /// attempt became and the pipe's write end.
    fn start_cat(cg: &Path, own_process_group: bool) -> (Attempt, OwnedFd) {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let fds = [(r.as_fd(), 0)];
        let env = ["PATH=/bin".to_owned()];
        let req = SpawnRequest {
            path: Path::new("/bin/cat"),
            argv0: "cat",
            env: &env,
            fds: &fds,
            own_process_group,
        };
        (spawn(&Program::new(&req).unwrap(), cg), w)
    }

    fn describe(a: &Attempt) -> String {
        match a {
            Attempt::Spawned(pid) => format!("spawned {pid}"),
            Attempt::Failed(e) => format!("failed: {e}"),
            Attempt::Fallback(f) => format!("fell back: {f}"),
        }
    }

    fn stat_field(pid: Pid, index: usize) -> String {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let rest = stat.rsplit_once(") ").unwrap().1;
        rest.split(' ').nth(index).unwrap().to_owned()
    }

    #[test]
    fn child_is_born_in_the_cgroup_with_the_asked_process_group() {
        let cg = TestCgroup::new("pgrp");
        let name = cg.0.file_name().unwrap().to_str().unwrap().to_owned();
        for own_group in [true, false] {
            let (attempt, w) = start_cat(&cg.0, own_group);
            let Attempt::Spawned(pid) = attempt else {
                panic!("{}", describe(&attempt))
            };
            let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
            assert!(
                cgroups.lines().any(|l| l == format!("0::/{name}")),
                "{cgroups}"
            );
            let pgrp: i32 = stat_field(pid, 2).parse().unwrap();
            let expected = if own_group {
                pid.as_raw()
            } else {
                nix::unistd::getpgrp().as_raw()
            };
            assert_eq!(pgrp, expected, "own group: {own_group}");
            drop(w); // cat sees EOF and exits
            let status = nix::sys::wait::waitpid(pid, None).unwrap();
            assert_eq!(status, nix::sys::wait::WaitStatus::Exited(pid, 0));
        }
    }

    #[test]
    fn exec_errors_are_final_missing_cgroups_fall_back() {
        let cg = TestCgroup::new("errors");
        let env: [String; 0] = [];
        let req = SpawnRequest {
            path: Path::new("/nonexistent/program"),
            argv0: "x",
            env: &env,
            fds: &[],
            own_process_group: false,
        };
        // The child reports the errno and is reaped (posix_spawn's behaviour).
        match spawn(&Program::new(&req).unwrap(), &cg.0) {
            Attempt::Failed(e) => assert_eq!(e.raw_os_error(), Some(libc::ENOENT)),
            other => panic!("{}", describe(&other)),
        }
        assert!(spawn_into_cgroup_available());
        match start_cat(&cg.0.join("missing"), false).0 {
            Attempt::Fallback(Fallback::NoCgroup(e)) => {
                assert_eq!(e.kind(), io::ErrorKind::NotFound)
            }
            other => panic!("{}", describe(&other)),
        }
        // Not a cgroup v2 directory: the kernel refuses the fd (EBADF), for this call only.
        match start_cat(Path::new("/tmp"), false).0 {
            Attempt::Fallback(Fallback::Refused(e)) => assert_eq!(e, Errno::EBADF),
            other => panic!("{}", describe(&other)),
        }
        assert!(spawn_into_cgroup_available());
    }

    #[test]
    fn kernel_capability_errors_are_remembered_others_are_not() {
        for e in [Errno::ENOSYS, Errno::E2BIG, Errno::EINVAL] {
            assert!(kernel_lacks(e), "{e}");
        }
        for e in [
            Errno::EBUSY,
            Errno::EOPNOTSUPP,
            Errno::ENODEV,
            Errno::EACCES,
            Errno::EPERM,
            Errno::EBADF,
            Errno::EAGAIN,
            Errno::ENOMEM,
        ] {
            assert!(!kernel_lacks(e), "{e}");
        }
    }
}
