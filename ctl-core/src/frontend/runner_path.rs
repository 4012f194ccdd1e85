//! Which runner binary the frontend starts.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{OnceLock, RwLock};

static CONFIGURED: RwLock<Option<PathBuf>> = RwLock::new(None);
/// `None`: not configured (look beside the runner); `Some(None)`: configured off.
static STATIC_CONFIGURED: RwLock<Option<Option<PathBuf>>> = RwLock::new(None);
static MULTICALL: AtomicBool = AtomicBool::new(false);

/// Environment variable that overrides the runner binary.
pub const RUNNER_ENV: &str = "CTL_RUNNER";

/// Environment variable that overrides the statically linked runner; empty: none.
pub const STATIC_RUNNER_ENV: &str = "CTL_STATIC_RUNNER";

/// File name of the statically linked runner, looked for beside the runner binary.
pub const STATIC_RUNNER_NAME: &str = "ctl-runner-static";

/// Sets the statically linked runner (`None`: none), started instead of the runner for
/// commands declared `static_runner` when a call names no runner. `CTL_STATIC_RUNNER` still
/// overrides it. It must come from the same build as the runner (a runner of another
/// protocol version refuses every envelope).
pub fn set_static_runner_path(path: Option<PathBuf>) {
    *STATIC_CONFIGURED.write().unwrap_or_else(|e| e.into_inner()) = Some(path);
}

/// The statically linked runner to start for a `static_runner` command instead of `runner`:
/// `CTL_STATIC_RUNNER` (empty: none), else what [`set_static_runner_path`] set, else
/// [`STATIC_RUNNER_NAME`] beside `runner` if that file exists (looked for once per runner
/// path, not on every call; never beside `/proc/self/exe`: a multi-call daemon is its own,
/// dynamic, runner).
pub fn static_runner_path(runner: &Path) -> Option<PathBuf> {
    static FROM_ENV: OnceLock<Option<PathBuf>> = OnceLock::new();
    let from_env = FROM_ENV.get_or_init(|| std::env::var_os(STATIC_RUNNER_ENV).map(PathBuf::from));
    if let Some(p) = from_env {
        return (!p.as_os_str().is_empty()).then(|| p.clone());
    }
    if let Some(configured) = STATIC_CONFIGURED
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
    {
        return configured;
    }
    static LAST: RwLock<Option<(PathBuf, Option<PathBuf>)>> = RwLock::new(None);
    if let Some((for_runner, found)) = &*LAST.read().unwrap_or_else(|e| e.into_inner()) {
        if for_runner == runner {
            return found.clone();
        }
    }
    let found = static_sibling(runner);
    *LAST.write().unwrap_or_else(|e| e.into_inner()) = Some((runner.to_owned(), found.clone()));
    found
}

fn static_sibling(runner: &Path) -> Option<PathBuf> {
    if runner.starts_with("/proc") {
        return None;
    }
    let sibling = runner.with_file_name(STATIC_RUNNER_NAME);
    sibling.is_file().then_some(sibling)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_static_runner_is_found_beside_the_runner_only() {
        let dir = std::env::temp_dir().join(format!("ctl-static-sibling-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let runner = dir.join("ctl-runner");
        std::fs::write(&runner, b"").unwrap();
        assert_eq!(static_sibling(&runner), None, "no static runner installed");
        std::fs::write(dir.join(STATIC_RUNNER_NAME), b"").unwrap();
        assert_eq!(static_sibling(&runner), Some(dir.join(STATIC_RUNNER_NAME)));
        // A multi-call daemon is its own runner: nothing beside /proc/self/exe.
        assert_eq!(static_sibling(Path::new("/proc/self/exe")), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
