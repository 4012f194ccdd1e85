//! Which runner binary the frontend starts.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{OnceLock, RwLock};

static CONFIGURED: RwLock<Option<PathBuf>> = RwLock::new(None);
static MULTICALL: AtomicBool = AtomicBool::new(false);

/// Environment variable that overrides the runner binary.
pub const RUNNER_ENV: &str = "CTL_RUNNER";

/// Sets the runner binary for calls that do not name one. `CTL_RUNNER` still overrides it
/// (operators can point a daemon at another runner without rebuilding it).
pub fn set_runner_path(path: impl Into<PathBuf>) {
    *CONFIGURED.write().unwrap_or_else(|e| e.into_inner()) = Some(path.into());
}

/// Records that this binary is its own runner (called by
/// [`crate::runner::run_if_runner`]): the default runner becomes `/proc/self/exe`, which
/// names this very build even after the file on disk was replaced by an upgrade.
pub fn mark_multicall() {
    MULTICALL.store(true, Ordering::Relaxed);
}

/// The runner binary: `CTL_RUNNER`, else the configured path, else this binary when it is
/// a multi-call daemon, else `ctl-runner` beside this binary.
pub fn runner_path() -> io::Result<PathBuf> {
    static FROM_ENV: OnceLock<Option<PathBuf>> = OnceLock::new();
    if let Some(p) = FROM_ENV.get_or_init(|| {
        std::env::var_os(RUNNER_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    }) {
        return Ok(p.clone());
    }
    if let Some(p) = CONFIGURED.read().unwrap_or_else(|e| e.into_inner()).clone() {
        return Ok(p);
    }
    if MULTICALL.load(Ordering::Relaxed) {
        return Ok(PathBuf::from("/proc/self/exe"));
    }
    let exe = std::env::current_exe()?;
    let sibling = exe.with_file_name("ctl-runner");
    if sibling.exists() {
        return Ok(sibling);
    }
    // Test binaries live one level below (target/debug/deps).
    if let Some(parent) = exe.parent().and_then(|p| p.parent()) {
        let up = parent.join("ctl-runner");
        if up.exists() {
            return Ok(up);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        "no runner binary found: set CTL_RUNNER, call ctl_core::set_runner_path, or make this \
         binary its own runner with ctl_core::runner::run_if_runner()",
    ))
}
