//! `cgroup_migrate`, the placement floor's other half: a fresh, freshly *exec'd* process
//! moves itself into the container's entry cgroup by writing `0` to `cgroup.procs` files
//! its parent opened for it, timing only those writes.
//!
//! Freshly exec'd matters: a move costs more the more memory mappings the process has
//! (the cpuset controller rebinds the memory policy of every mapping), and a runner is a
//! small process just out of `exec`. A child merely forked from the benchmark carries the
//! benchmark's hundreds of mappings: measured here, 9 moves took ~23 µs from a small
//! process and ~39 µs from one with ~1200 more mappings. So the helper is this very binary
//! started again (`/proc/self/exe`) under [`HELPER_TITLE`]; every binary that runs the
//! benchmark calls [`run_if_helper`] first thing in `main`.

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::spawn::{posix_spawn, PosixSpawnAttr, PosixSpawnFileActions};

/// The helper's process title (`argv[0]`); `argv[1]` is the number of `cgroup.procs` fds.
pub const HELPER_TITLE: &str = "ctl-bench: cgroup_migrate";

/// Where the helper writes its result: the nanoseconds of its writes as an `i64`, or -1.
const RESULT_FD: RawFd = 3;
/// The helper's `cgroup.procs` files: fds 4, 5, ...
const FIRST_PROCS_FD: RawFd = 4;
/// Sources are kept at or above this, targets below it, so that no `dup2` of the spawn
/// overwrites a source still to be duplicated.
const FIRST_SOURCE_FD: RawFd = 64;

/// Serves as the helper and exits if this process was started as one; returns otherwise.
pub fn run_if_helper() {
    let mut args = std::env::args_os();
    if args.next().map_or(true, |a| a != HELPER_TITLE) {
        return;
    }
    let count: RawFd = args
        .next()
        .and_then(|n| n.to_str()?.parse().ok())
        .unwrap_or(0);
    let mut t0 = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let mut t1 = t0;
    let mut ok = count > 0;
    // SAFETY: raw writes of one byte to fds the parent set up, and clock reads into owned
    // structs; nothing else runs in this process.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t0);
        for fd in FIRST_PROCS_FD..FIRST_PROCS_FD + count {
            ok &= libc::write(fd, b"0".as_ptr().cast(), 1) == 1;
        }
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t1);
    }
    let ns: i64 = if ok {
        (t1.tv_sec - t0.tv_sec) * 1_000_000_000 + (t1.tv_nsec - t0.tv_nsec)
    } else {
        -1
    };
    // SAFETY: writes 8 bytes from a local to the result fd.
    let written = unsafe { libc::write(RESULT_FD, (&ns as *const i64).cast(), 8) };
    std::process::exit(if written == 8 { 0 } else { 1 })
}

/// The `cgroup.procs` files of one container, held open for the helper.
pub(crate) struct ProcsFiles {
    files: Vec<OwnedFd>,
}

impl ProcsFiles {
    /// Keeps `files` open, each moved to an fd number the spawn cannot clobber.
    pub fn new(files: Vec<std::fs::File>) -> std::io::Result<ProcsFiles> {
        let files = files
            .into_iter()
            .map(|f| {
                let fd =
                    nix::fcntl::fcntl(&f, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(FIRST_SOURCE_FD))?;
                // SAFETY: F_DUPFD_CLOEXEC returned a new fd that nothing else owns.
                Ok(unsafe { OwnedFd::from_raw_fd(fd) })
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(ProcsFiles { files })
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Starts a helper, waits for it, and returns the µs its moves took.
    pub fn measure(&self) -> Result<f64, String> {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| e.to_string())?;
        let w = lift(w.as_fd()).map_err(|e| e.to_string())?;
        let mut actions = PosixSpawnFileActions::init().map_err(|e| e.to_string())?;
        actions
            .add_dup2(w.as_raw_fd(), RESULT_FD)
            .map_err(|e| e.to_string())?;
        for (i, file) in self.files.iter().enumerate() {
            actions
                .add_dup2(file.as_raw_fd(), FIRST_PROCS_FD + i as RawFd)
                .map_err(|e| e.to_string())?;
        }
        let attr = PosixSpawnAttr::init().map_err(|e| e.to_string())?;
        let title = std::ffi::CString::new(HELPER_TITLE).expect("no NUL in the title");
        let count = std::ffi::CString::new(self.files.len().to_string()).expect("digits");
        let exe = std::ffi::CString::new("/proc/self/exe").expect("no NUL in the path");
        let env: [std::ffi::CString; 0] = [];
        let pid = posix_spawn(exe.as_c_str(), &actions, &attr, &[title, count], &env)
            .map_err(|e| format!("starting the migrate helper: {e}"))?;
        drop(w);
        let mut buf = [0u8; 8];
        let read = std::fs::File::from(r).read_exact(&mut buf);
        let status = nix::sys::wait::waitpid(pid, None);
        read.map_err(|e| format!("the migrate helper sent no result: {e}"))?;
        if !matches!(status, Ok(nix::sys::wait::WaitStatus::Exited(_, 0))) {
            return Err(format!("the migrate helper ended with {status:?}"));
        }
        let ns = i64::from_ne_bytes(buf);
        if ns < 0 {
            return Err("writing to cgroup.procs failed".to_owned());
        }
        Ok(ns as f64 / 1000.0)
    }
}

fn lift(fd: BorrowedFd<'_>) -> nix::Result<OwnedFd> {
    let raw = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(FIRST_SOURCE_FD))?;
    // SAFETY: F_DUPFD_CLOEXEC returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}
