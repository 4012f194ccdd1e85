//! Which runner binary the frontend starts.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// Set once [`crate::runner::run_if_runner`] ran: this binary is its own runner (a fact
/// about the binary, not a setting).
static MULTICALL: AtomicBool = AtomicBool::new(false);

/// Environment variable that overrides the runner binary.
pub const RUNNER_ENV: &str = "CTL_RUNNER";

/// Environment variable that overrides the statically linked runner; empty: none.
pub const STATIC_RUNNER_ENV: &str = "CTL_STATIC_RUNNER";

/// File name of the statically linked runner, looked for beside the runner binary.
pub const STATIC_RUNNER_NAME: &str = "ctl-runner-static";

/// `CTL_STATIC_RUNNER`, read once: `Some(None)` when set empty (no static runner).
pub(crate) fn static_from_env() -> Option<Option<&'static Path>> {
    static FROM_ENV: OnceLock<Option<PathBuf>> = OnceLock::new();
    FROM_ENV
        .get_or_init(|| std::env::var_os(STATIC_RUNNER_ENV).map(PathBuf::from))
        .as_deref()
        .map(|p| (!p.as_os_str().is_empty()).then_some(p))
}

/// `CTL_RUNNER`, read once (empty counts as unset).
pub(crate) fn from_env() -> Option<&'static Path> {
    static FROM_ENV: OnceLock<Option<PathBuf>> = OnceLock::new();
    FROM_ENV
        .get_or_init(|| {
            std::env::var_os(RUNNER_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .as_deref()
}

/// [`STATIC_RUNNER_NAME`] beside `runner`, if it exists.
pub(crate) fn static_sibling(runner: &Path) -> Option<PathBuf> {
    if runner.starts_with("/proc") {
        return None;
    }
    let sibling = runner.with_file_name(STATIC_RUNNER_NAME);
    sibling.is_file().then_some(sibling)
}

/// Records that this binary is its own runner (called by
/// [`crate::runner::run_if_runner`]): the default runner becomes `/proc/self/exe`, which
/// names this very build even after the file on disk was replaced by an upgrade.
pub(crate) fn mark_multicall() {
    MULTICALL.store(true, Ordering::Relaxed);
}

/// The runner when neither `CTL_RUNNER` nor a launcher names one: this binary when it is
/// a multi-call daemon, else `ctl-runner` beside this binary.
pub(crate) fn default_runner() -> io::Result<PathBuf> {
    if MULTICALL.load(Ordering::Relaxed) {
        return Ok(PathBuf::from("/proc/self/exe"));
    }
    let exe = std::env::current_exe()?;
    let sibling = exe.with_file_name("ctl-runner");
    if sibling.exists() {
        return Ok(sibling);
    }
    // Cargo puts tests and examples one level below (target/debug/deps, .../examples).
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
