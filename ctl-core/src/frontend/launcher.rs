//! How this process starts runners: one explicit object instead of process-wide switches.

use std::io;
use std::os::fd::{OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};
use std::time::Instant;

use super::procs_files::{self, ProcsFiles, MAX_AGE, MAX_FILES};
use super::runner_path;

/// How this process starts runners: which runner binary (and which statically linked one
/// for `static_runner` commands), whether cold exec runners are born in their cgroup v2
/// entry cgroup, and the `cgroup.procs` files kept open across calls.
///
/// Every [`Call`](crate::Call) uses [`Launcher::global`] unless it is given another one with
/// [`Call::launcher`](crate::Call::launcher). A daemon that wants its settings in one place
/// (or two differently configured frontends in one process) builds its own; tests build one
/// per case instead of flipping process-wide switches. The free functions
/// [`set_runner_path`](crate::set_runner_path), [`set_spawn_into_cgroup`](super::set_spawn_into_cgroup),
/// [`set_keep_cgroup_files`](super::set_keep_cgroup_files), ... act on the global instance.
///
/// ```no_run
/// # use ctl_core::{Call, Container, Launcher};
/// # fn f(ct: &Container) {
/// let launcher = Launcher::new()
///     .with_runner_path("/usr/libexec/my-daemon/runner")
///     .with_static_runner_path(None)
///     .with_keep_cgroup_files(false);
/// let call = Call::new(ct).launcher(&launcher);
/// # }
/// ```
///
/// What stays process-wide, on purpose: the environment overrides `CTL_RUNNER` and
/// `CTL_STATIC_RUNNER` (an operator's, read once), whether this binary is its own runner
/// ([`crate::runner::run_if_runner`] says so: a fact about the binary), and whether the
/// kernel can start a process in a cgroup (learned once: a fact about the kernel).
///
/// A `Launcher` is a handle: clones share one configuration (the async twin of a custom
/// frontend takes a clone onto the blocking thread that runs it).
#[derive(Clone, Debug)]
pub struct Launcher(Arc<LauncherState>);

/// What a [`Launcher`] handle shares.
#[derive(Debug)]
pub struct LauncherState {
    runner: RwLock<Option<PathBuf>>,
    static_runner: RwLock<StaticRunner>,
    spawn_into_cgroup: AtomicBool,
    keep_cgroup_files: AtomicBool,
    procs_files: Mutex<ProcsFiles>,
    /// The static runner found beside the last runner looked at (a `stat` saved per call).
    static_beside: RwLock<Option<(PathBuf, Option<PathBuf>)>>,
    /// Where the containers' lock files are ([`crate::lock`]); `None`: calls take no lock.
    lock_dir: RwLock<Option<PathBuf>>,
}

/// Which statically linked runner a [`Launcher`] starts for `static_runner` commands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
enum StaticRunner {
    /// [`STATIC_RUNNER_NAME`](super::STATIC_RUNNER_NAME) beside the runner, if it exists.
    #[default]
    Beside,
    /// This one, or none.
    Configured(Option<PathBuf>),
}

impl std::ops::Deref for Launcher {
    type Target = LauncherState;

    fn deref(&self) -> &LauncherState {
        &self.0
    }
}

impl Default for Launcher {
    fn default() -> Launcher {
        Launcher::new()
    }
}

impl Launcher {
    /// The defaults: the runner found as [`Launcher::runner_path`] says, the static runner
    /// beside it, cold exec runners born in their cgroup where the kernel allows it,
    /// `cgroup.procs` files kept (at most [`MAX_FILES`], none longer than [`MAX_AGE`]).
    pub fn new() -> Launcher {
        Launcher(Arc::new(LauncherState {
            runner: RwLock::new(None),
            static_runner: RwLock::new(StaticRunner::Beside),
            spawn_into_cgroup: AtomicBool::new(true),
            keep_cgroup_files: AtomicBool::new(true),
            procs_files: Mutex::new(ProcsFiles::new(MAX_FILES, MAX_AGE)),
            static_beside: RwLock::new(None),
            lock_dir: RwLock::new(Some(PathBuf::from(crate::lock::DEFAULT_LOCK_DIR))),
        }))
    }

    /// The instance calls use unless given another ([`Call::launcher`](crate::Call::launcher)).
    pub fn global() -> &'static Launcher {
        static GLOBAL: OnceLock<Launcher> = OnceLock::new();
        GLOBAL.get_or_init(Launcher::new)
    }

    /// Builder form of [`Launcher::set_runner_path`].
    pub fn with_runner_path(self, path: impl Into<PathBuf>) -> Launcher {
        self.set_runner_path(path);
        self
    }

    /// Builder form of [`Launcher::set_static_runner_path`].
    pub fn with_static_runner_path(self, path: Option<PathBuf>) -> Launcher {
        self.set_static_runner_path(path);
        self
    }

    /// Builder form of [`Launcher::set_spawn_into_cgroup`].
    pub fn with_spawn_into_cgroup(self, enabled: bool) -> Launcher {
        self.set_spawn_into_cgroup(enabled);
        self
    }

    /// Builder form of [`Launcher::set_keep_cgroup_files`].
    pub fn with_keep_cgroup_files(self, enabled: bool) -> Launcher {
        self.set_keep_cgroup_files(enabled);
        self
    }

    /// Builder form of [`Launcher::set_lock_dir`].
    pub fn with_lock_dir(self, dir: Option<PathBuf>) -> Launcher {
        self.set_lock_dir(dir);
        self
    }

    /// Where the containers' lock files are (default [`crate::lock::DEFAULT_LOCK_DIR`]),
    /// created 0700 if missing; `None`: calls take no container lock (a daemon that orders
    /// its calls by itself). Every process that works on the same containers must use the
    /// same directory: that is what orders `ctl` and a daemon.
    pub fn set_lock_dir(&self, dir: Option<PathBuf>) {
        *write(&self.lock_dir) = dir;
    }

    /// See [`Launcher::set_lock_dir`].
    pub fn lock_dir(&self) -> Option<PathBuf> {
        read(&self.lock_dir).clone()
    }

    /// Sets the runner binary for calls that do not name one. `CTL_RUNNER` still overrides
    /// it (operators can point a daemon at another runner without rebuilding it).
    pub fn set_runner_path(&self, path: impl Into<PathBuf>) {
        *write(&self.runner) = Some(path.into());
    }

    /// The runner binary: `CTL_RUNNER`, else the configured path, else this binary when it
    /// is a multi-call daemon, else `ctl-runner` beside this binary.
    pub fn runner_path(&self) -> io::Result<PathBuf> {
        if let Some(p) = runner_path::from_env() {
            return Ok(p.to_owned());
        }
        if let Some(p) = read(&self.runner).clone() {
            return Ok(p);
        }
        runner_path::default_runner()
    }

    /// Sets the statically linked runner (`None`: none), started instead of the runner for
    /// commands declared `static_runner` when a call names no runner. `CTL_STATIC_RUNNER`
    /// still overrides it. It must come from the same build as the runner (a runner of
    /// another protocol version refuses every envelope).
    pub fn set_static_runner_path(&self, path: Option<PathBuf>) {
        *write(&self.static_runner) = StaticRunner::Configured(path);
    }

    /// The statically linked runner to start for a `static_runner` command instead of
    /// `runner`: `CTL_STATIC_RUNNER` (empty: none), else what
    /// [`Launcher::set_static_runner_path`] set, else
    /// [`STATIC_RUNNER_NAME`](super::STATIC_RUNNER_NAME) beside `runner` if that file exists
    /// (looked for once per runner path, not on every call; never beside `/proc/self/exe`: a
    /// multi-call daemon is its own, dynamic, runner).
    pub fn static_runner_path(&self, runner: &Path) -> Option<PathBuf> {
        if let Some(p) = runner_path::static_from_env() {
            return p.map(Path::to_owned);
        }
        if let StaticRunner::Configured(configured) = &*read(&self.static_runner) {
            return configured.clone();
        }
        if let Some((for_runner, found)) = &*read(&self.static_beside) {
            if for_runner == runner {
                return found.clone();
            }
        }
        let found = runner_path::static_sibling(runner);
        *write(&self.static_beside) = Some((runner.to_owned(), found.clone()));
        found
    }

    /// Whether cold exec runners are started directly in their cgroup v2 entry cgroup
    /// (`clone3` with `CLONE_INTO_CGROUP`, where the kernel and the architecture allow it;
    /// on by default). Off, every cold runner is started with `posix_spawn` and moves itself
    /// into every hierarchy. For operators who want that path, and for A/B measurements.
    /// Warm runners always use `posix_spawn`.
    pub fn set_spawn_into_cgroup(&self, enabled: bool) {
        self.spawn_into_cgroup.store(enabled, Ordering::Relaxed);
    }

    /// Whether [`Launcher::set_spawn_into_cgroup`] left spawning into the cgroup on (the
    /// kernel may still lack it: [`super::spawn_into_cgroup_available`]).
    pub fn spawns_into_cgroup(&self) -> bool {
        self.spawn_into_cgroup.load(Ordering::Relaxed)
    }

    /// Whether cold exec calls keep `cgroup.procs` files open across calls (the default)
    /// and hand them to their runners. Off, every runner opens the files itself (~20 µs
    /// more per call here) and this launcher holds none; turning it off forgets the kept
    /// files. For A/B measurements and for daemons that must not hold these fds.
    pub fn set_keep_cgroup_files(&self, enabled: bool) {
        self.keep_cgroup_files.store(enabled, Ordering::Relaxed);
        if !enabled {
            self.forget_cgroup_files();
        }
    }

    /// Forgets every kept `cgroup.procs` file (closing this launcher's copies). For daemons
    /// that remove or rename entry cgroups other than through
    /// [`Launcher::remove_entry_cgroup`], and for tests that count the process's fds.
    pub fn forget_cgroup_files(&self) {
        self.files().forget(|_| true);
    }

    /// Removes the entry cgroup `relative` and everything below it from every hierarchy
    /// ([`crate::cgroup::remove_entry`]), first forgetting the `cgroup.procs` files this
    /// launcher kept open there: runners are no longer to write to them.
    pub fn remove_entry_cgroup(&self, relative: &str) -> io::Result<()> {
        crate::cgroup::validate_relative(relative)?;
        let inside = format!("/{}/", relative.trim_matches('/'));
        self.files().forget(|path| path.contains(&inside));
        crate::cgroup::remove_entry(relative)
    }

    /// The kept files of `paths`, opening those not kept yet (or kept too long) at fd
    /// numbers from `first_fd` on, so that spawning never has to move them. A path that
    /// cannot be opened (the entry cgroup does not exist yet) is left out: the runner opens
    /// it itself.
    pub(crate) fn checkout_cgroup_files<'a>(
        &self,
        paths: impl IntoIterator<Item = &'a str>,
        first_fd: RawFd,
    ) -> Vec<(&'a str, Arc<OwnedFd>)> {
        if !self.keep_cgroup_files.load(Ordering::Relaxed) {
            return Vec::new();
        }
        self.files().checkout(paths, Instant::now(), |path| {
            procs_files::open(path, first_fd)
        })
    }

    fn files(&self) -> MutexGuard<'_, ProcsFiles> {
        self.procs_files
            .lock()
            // Nothing in here panics while holding the lock; if something did, the map is
            // still consistent (each operation leaves it whole).
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_launcher_keeps_its_own_settings() {
        let a = Launcher::new().with_runner_path("/a/runner");
        let b = Launcher::new()
            .with_static_runner_path(None)
            .with_spawn_into_cgroup(false);
        if runner_path::from_env().is_none() {
            assert_eq!(a.runner_path().unwrap(), PathBuf::from("/a/runner"));
        }
        assert!(a.spawns_into_cgroup());
        assert!(!b.spawns_into_cgroup());
        if runner_path::static_from_env().is_none() {
            assert_eq!(b.static_runner_path(Path::new("/a/runner")), None);
        }
    }
}
