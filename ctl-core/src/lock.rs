//! Per-container ordering: the container's lock, shared by the commands that only *use* the
//! container (Exec, State, GetHostname) and exclusive for those that *change* it (Start,
//! Stop, Freeze, Unfreeze, Mount).
//!
//! # Why
//!
//! osctld serialises what it does to one container (its manipulation lock). Without that a
//! Freeze racing an Exec can land between Exec's state check and its attach and freeze the
//! program Exec just attached (`docs/reliability.md`), two Starts race each other, and a
//! Stop can interleave with a Mount.
//!
//! # How
//!
//! One `flock(2)` lock file per container, `<lock dir>/<pool>:<id>.lock`, in a directory
//! only root may write ([`Launcher::lock_dir`](crate::Launcher::lock_dir), by default
//! [`DEFAULT_LOCK_DIR`]). A `flock` belongs to an open file description, so two opens in
//! one process conflict just as two processes do: the same lock orders threads, tasks and
//! processes (`ctl` and a daemon on the same host) at once, and a process that dies
//! releases it with its fds. The lock is taken by the outermost frontend of a call
//! (`run_with`, [`crate::invoke`], [`crate::invoke_by_name`], their async twins) and
//! covers everything that frontend does: nested calls made with the call it received
//! (`call.clone().placement(..)`) run under it and do not take it again.
//!
//! Waiting is bounded by the call's deadline ([`ErrorKind::Busy`] says who holds the lock
//! when `/proc/locks` tells) and observes cancellation; what is left of the deadline then
//! bounds the call itself.
//!
//! # A program that runs on
//!
//! An attached program (Exec, Runscript) may run for hours. Commands declared
//! [`LockMode::UntilRunning`] hold the shared lock only until their program runs, as
//! osctld releases its lock once the program is started: the frontend hands its lock fd to
//! the runner, the runner hands it to the process that attaches (closing its own copy once
//! that process is forked), and that process closes it once the program is attached
//! (`ctl_lxc::Isolation::with_release`); the process that enters the container closes its
//! inherited copy first thing, before the container's root can reach it, and the program
//! never gets one (close-on-exec). Changers wait for the attach, never for the program: a
//! Freeze after that freezes the program with the container, as it would under osctld.
//! The attach holds it for at most `ctl_lxc::isolated::ATTACH_HOLD_LIMIT` (10 s): an
//! attach the container holds up (its root stopping the process on its way in) does not
//! keep a Stop out. With `run` on a stopped container, the lock goes once the container's
//! start is under way. Through a warm runner the fd is not handed over: the frontend keeps
//! the lock until the call ends.
//!
//! Runscript reads its script from the caller before anything else; it declares
//! `lock = none` and takes the lock itself afterwards ([`Call::locked`](crate::Call::locked)),
//! so that a slow caller never holds the container's lock.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind};

/// Where lock files live unless the launcher says otherwise.
pub const DEFAULT_LOCK_DIR: &str = "/run/ctl/locks";

/// How a command takes its container's lock (`#[container_command(lock = ...)]`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockMode {
    /// Takes no lock (commands that do not touch a container: `Ping`).
    None,
    /// Uses the container: shared with other users, excluded by changers. The default.
    #[default]
    Shared,
    /// Shared, held only until the program the command attaches runs (Exec, Runscript);
    /// see the [module](self).
    UntilRunning,
    /// Changes the container's state: alone, no user and no other changer meanwhile.
    Exclusive,
}

impl LockMode {
    /// The name used in `#[container_command(lock = ...)]` and listings.
    pub fn as_str(self) -> &'static str {
        match self {
            LockMode::None => "none",
            LockMode::Shared => "shared",
            LockMode::UntilRunning => "until_running",
            LockMode::Exclusive => "exclusive",
        }
    }
}

impl std::fmt::Display for LockMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A container's lock, held. Dropping it (and the runner it was handed to ending, see the
/// [module](self)) releases it. A daemon that wants several calls under one lock takes it
/// with [`ContainerLock::acquire`] and gives it to the calls with
/// [`Call::under_lock`](crate::Call::under_lock).
#[derive(Debug)]
pub struct ContainerLock {
    mode: LockMode,
    path: PathBuf,
    /// `None` once handed to a runner.
    fd: Mutex<Option<OwnedFd>>,
}

impl ContainerLock {
    /// How it is held.
    pub fn mode(&self) -> LockMode {
        self.mode
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this process still holds it (not yet handed to a runner).
    pub fn is_held_here(&self) -> bool {
        self.fd.lock().map(|fd| fd.is_some()).unwrap_or(false)
    }

    /// The fd a runner gets: the lock itself for [`LockMode::UntilRunning`] (this process no
    /// longer holds it afterwards), else nothing (this process keeps holding it).
    pub(crate) fn for_runner(&self) -> Option<OwnedFd> {
        if self.mode != LockMode::UntilRunning {
            return None;
        }
        self.fd.lock().ok()?.take()
    }

    /// Blocks until the lock of `ct` is held in `mode`, for at most `deadline` (forever
    /// without one), or until `cancelled` says so. `Ok(None)` for [`LockMode::None`].
    pub fn acquire(
        call: &crate::Call<'_>,
        command: &str,
        mode: LockMode,
    ) -> Result<Option<Arc<ContainerLock>>, Error> {
        let Some(mut attempt) = Attempt::start(call, command, mode)? else {
            return Ok(None);
        };
        loop {
            if let Some(lock) = attempt.try_once()? {
                return Ok(Some(lock));
            }
            std::thread::sleep(attempt.next_pause()?);
        }
    }

    /// [`acquire`](Self::acquire) on a tokio runtime: waits with the timer, not a thread.
    #[cfg(feature = "tokio")]
    pub async fn acquire_async(
        call: &crate::Call<'_>,
        command: &str,
        mode: LockMode,
    ) -> Result<Option<Arc<ContainerLock>>, Error> {
        let Some(mut attempt) = Attempt::start(call, command, mode)? else {
            return Ok(None);
        };
        loop {
            if let Some(lock) = attempt.try_once()? {
                return Ok(Some(lock));
            }
            tokio::time::sleep(attempt.next_pause()?).await;
        }
    }
}

/// Polling for a lock: `flock` has no timeout, and a blocking `flock` would hold a thread
/// (and could not be cancelled). The pause grows from 1 ms to 20 ms.
///
/// Changers must not starve behind a stream of users (shared `flock`s overlap for ever on
/// a busy container), so a second file, the *gate*, orders them: a user passes the gate
/// (takes it exclusively for the moment of taking the lock shared), a changer takes the
/// gate and keeps it while it waits for the lock, so that no new user gets in meanwhile,
/// and lets it go once it holds the lock.
struct Attempt {
    command: String,
    ident: String,
    mode: LockMode,
    path: PathBuf,
    file: Option<File>,
    gate: File,
    /// A changer holds the gate while it waits for the lock.
    gate_held: bool,
    /// The last try found the gate taken (by a changer waiting for the lock).
    blocked_at_gate: bool,
    started: Instant,
    deadline: Option<Duration>,
    pause: Duration,
    cancel: Option<Arc<crate::frontend::cancel::Cancellation>>,
}

const FIRST_PAUSE: Duration = Duration::from_millis(1);
const LONGEST_PAUSE: Duration = Duration::from_millis(20);
const EXCLUSIVE: libc::c_int = libc::LOCK_EX | libc::LOCK_NB;
const SHARED: libc::c_int = libc::LOCK_SH | libc::LOCK_NB;

impl Attempt {
    fn start(
        call: &crate::Call<'_>,
        command: &str,
        mode: LockMode,
    ) -> Result<Option<Attempt>, Error> {
        if mode == LockMode::None {
            return Ok(None);
        }
        let Some(dir) = call.launcher_or_global().lock_dir() else {
            return Ok(None);
        };
        let ct = call.container();
        let path = lock_path(&dir, &ct.pool, &ct.id)
            .map_err(|message| Error::arguments(command, message))?;
        let setup = |what| move |e| Error::setup(command, what, e);
        let dir_fd = checked_dir(&dir).map_err(setup("preparing the lock directory"))?;
        let name = |path: &Path| path.file_name().map(PathBuf::from).unwrap_or_default();
        let file = open_lock_file_at(&dir_fd, &name(&path))
            .map_err(setup("opening the container's lock file"))?;
        let gate = open_lock_file_at(&dir_fd, &name(&path.with_extension("gate")))
            .map_err(setup("opening the container's lock gate"))?;
        Ok(Some(Attempt {
            command: command.to_owned(),
            ident: ct.ident(),
            mode,
            path,
            file: Some(file),
            gate,
            gate_held: false,
            blocked_at_gate: false,
            started: Instant::now(),
            deadline: call.deadline,
            pause: FIRST_PAUSE,
            cancel: call.cancel.clone(),
        }))
    }

    fn try_once(&mut self) -> Result<Option<Arc<ContainerLock>>, Error> {
        let fail = |e: Errno| Error::setup(self.command.clone(), "locking the container", e.into());
        let file = self
            .file
            .as_ref()
            .expect("an attempt holds its file until it succeeds");
        self.blocked_at_gate = true;
        let locked = if self.mode == LockMode::Exclusive {
            if !self.gate_held {
                match try_flock(&self.gate, EXCLUSIVE) {
                    Ok(()) => self.gate_held = true,
                    Err(Errno::EWOULDBLOCK | Errno::EINTR) => return Ok(None),
                    Err(e) => return Err(fail(e)),
                }
            }
            self.blocked_at_gate = false;
            try_flock(file, EXCLUSIVE)
        } else {
            match try_flock(&self.gate, EXCLUSIVE) {
                Ok(()) => {}
                Err(Errno::EWOULDBLOCK | Errno::EINTR) => return Ok(None),
                Err(e) => return Err(fail(e)),
            }
            self.blocked_at_gate = false;
            let locked = try_flock(file, SHARED);
            let _ = try_flock(&self.gate, libc::LOCK_UN);
            locked
        };
        match locked {
            Ok(()) => {
                if self.gate_held {
                    let _ = try_flock(&self.gate, libc::LOCK_UN);
                    self.gate_held = false;
                }
                let file = self.file.take().expect("checked above");
                Ok(Some(Arc::new(ContainerLock {
                    mode: self.mode,
                    path: std::mem::take(&mut self.path),
                    fd: Mutex::new(Some(OwnedFd::from(file))),
                })))
            }
            Err(Errno::EWOULDBLOCK | Errno::EINTR) => Ok(None),
            Err(e) => Err(fail(e)),
        }
    }

    /// How long to wait before the next try; an error once the deadline passed or the call
    /// was cancelled.
    fn next_pause(&mut self) -> Result<Duration, Error> {
        if self.cancel.as_ref().is_some_and(|c| c.is_cancelled()) {
            return Err(Error::new(self.command.clone(), ErrorKind::Cancelled));
        }
        let waited = self.started.elapsed();
        let pause = self.pause;
        self.pause = (self.pause * 2).min(LONGEST_PAUSE);
        match self.deadline {
            Some(deadline) if waited >= deadline => Err(self.busy(waited)),
            Some(deadline) => Ok(pause.min(deadline - waited)),
            None => Ok(pause),
        }
    }

    fn busy(&self, waited: Duration) -> Error {
        // The changer waiting at the gate when that is what stopped this call, else whoever
        // holds the lock.
        let at_gate = || holder_of(&self.gate).map(|h| format!("{h}, waiting to change it"));
        let holder = if self.blocked_at_gate {
            at_gate().or_else(|| self.file.as_ref().and_then(holder_of))
        } else {
            self.file.as_ref().and_then(holder_of).or_else(at_gate)
        };
        Error::new(
            self.command.clone(),
            ErrorKind::Busy {
                container: self.ident.clone(),
                mode: self.mode,
                waited,
                holder,
            },
        )
    }
}

/// `flock(fd, operation)`.
fn try_flock(file: &File, operation: libc::c_int) -> Result<(), Errno> {
    // SAFETY: flock(2) on an fd this function borrows; no memory is passed.
    Errno::result(unsafe { libc::flock(file.as_raw_fd(), operation) }).map(drop)
}

/// `<dir>/<pool>:<id>.lock`; refuses names that would leave the directory.
fn lock_path(dir: &Path, pool: &str, id: &str) -> Result<PathBuf, String> {
    for (what, name) in [("pool", pool), ("id", id)] {
        if name.is_empty()
            || name == "."
            || name == ".."
            || name.contains(['/', '\0'])
            || name.len() > 100
        {
            return Err(format!(
                "the container's {what} {name:?} cannot name a lock file"
            ));
        }
    }
    Ok(dir.join(format!("{pool}:{id}.lock")))
}

/// Creates the lock directory (0700) if needed and checks that only its owner, this
/// process's user, may write to it: another user able to replace lock files could make
/// every call on a container wait, or let two changers in at once.
fn ensure_dir(dir: &Path) -> io::Result<()> {
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    check_dir(&std::fs::symlink_metadata(dir)?, dir)
}

fn check_dir(meta: &std::fs::Metadata, dir: &Path) -> io::Result<()> {
    let euid = nix::unistd::geteuid().as_raw();
    if !meta.is_dir() || meta.uid() != euid || meta.mode() & 0o022 != 0 {
        return Err(io::Error::other(format!(
            "{} must be a directory of uid {euid} that no one else may write to",
            dir.display()
        )));
    }
    Ok(())
}

/// The lock directory, checked once per process ([`ensure_dir`]) and then kept open: lock
/// files are opened relative to that fd, so the directory checked is the one used, and a
/// call costs no path walk of it.
fn checked_dir(dir: &Path) -> io::Result<Arc<OwnedFd>> {
    static CHECKED: Mutex<Vec<(PathBuf, Arc<OwnedFd>)>> = Mutex::new(Vec::new());
    let mut checked = CHECKED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(i) = checked.iter().position(|(d, _)| d == dir) {
        // Still linked (a directory removed meanwhile, by an operator or a service
        // manager cleaning `/run`, is made again).
        match nix::sys::stat::fstat(checked[i].1.as_fd()) {
            Ok(st) if st.st_nlink > 0 => return Ok(checked[i].1.clone()),
            _ => {
                checked.swap_remove(i);
            }
        }
    }
    // Directories removed meanwhile (a test's, a reconfigured launcher's) are let go.
    checked.retain(|(_, fd)| nix::sys::stat::fstat(fd.as_fd()).is_ok_and(|st| st.st_nlink > 0));
    ensure_dir(dir)?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(dir)?;
    // The directory opened is the one checked.
    check_dir(&file.metadata()?, dir)?;
    let fd = Arc::new(OwnedFd::from(file));
    checked.push((dir.to_owned(), fd.clone()));
    Ok(fd)
}

/// Opens (creates) the lock file `name` in the directory `dir`.
fn open_lock_file_at(dir: &OwnedFd, name: &Path) -> io::Result<File> {
    let fd = nix::fcntl::openat(
        dir,
        name,
        // Read-only: `flock` needs no more, and a runner it is handed to gets no more.
        nix::fcntl::OFlag::O_RDONLY
            | nix::fcntl::OFlag::O_CREAT
            | nix::fcntl::OFlag::O_NOFOLLOW
            | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )?;
    Ok(File::from(fd))
}

#[cfg(test)]
fn open_lock_file(path: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Who holds the lock on `file`, from `/proc/locks`: `pid N (name)`.
fn holder_of(file: &File) -> Option<String> {
    let ino = nix::sys::stat::fstat(file.as_fd()).ok()?.st_ino;
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    // `1: FLOCK  ADVISORY  WRITE 1234 00:1a:5678 0 EOF`
    let pid = locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (kind, pid, dev_ino) = (fields.get(1)?, fields.get(4)?, fields.get(5)?);
        let this = dev_ino.rsplit(':').next()?.parse::<u64>().ok()? == ino;
        (this && *kind == "FLOCK").then(|| pid.parse::<i32>().ok())?
    })?;
    let name = std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
        .ok()
        .map(|c| c.split('\0').next().unwrap_or("").to_owned())
        .filter(|c| !c.is_empty());
    Some(match name {
        Some(name) => format!("pid {pid} ({name})"),
        None => format!("pid {pid}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_paths_stay_in_their_directory() {
        let dir = Path::new("/run/x");
        assert_eq!(
            lock_path(dir, "default", "web").unwrap(),
            Path::new("/run/x/default:web.lock")
        );
        for (pool, id) in [
            ("a/b", "c"),
            ("a", ".."),
            ("", "x"),
            ("a", "x\0y"),
            ("..", "x"),
        ] {
            assert!(lock_path(dir, pool, id).is_err(), "{pool:?} {id:?}");
        }
    }

    #[test]
    fn a_directory_others_may_write_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("locks");
        ensure_dir(&dir).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .unwrap();
        let e = ensure_dir(&dir).unwrap_err();
        assert!(e.to_string().contains("no one else may write"), "{e}");
    }

    #[test]
    fn flock_conflicts_between_two_opens_of_one_process() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("p:c.lock");
        let a = open_lock_file(&path).unwrap();
        let b = open_lock_file(&path).unwrap();
        let shared = libc::LOCK_SH | libc::LOCK_NB;
        let exclusive = libc::LOCK_EX | libc::LOCK_NB;
        try_flock(&a, shared).unwrap();
        try_flock(&b, shared).unwrap();
        let c = open_lock_file(&path).unwrap();
        assert_eq!(try_flock(&c, exclusive), Err(Errno::EWOULDBLOCK));
        assert_eq!(holder_of(&c).map(|h| h.starts_with("pid ")), Some(true));
        drop((a, b));
        try_flock(&c, exclusive).unwrap();
    }
}
