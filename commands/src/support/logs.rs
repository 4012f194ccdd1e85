//! The container's log: what liblxc wrote there since an operation began, for its error
//! (runner side).

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use ctl_core::{CommandError, RunnerContext};

/// Opens the container's log file for reading: it lies in the container user's LXC home,
/// and that user may have put a symlink, a FIFO (which would block the read until the
/// deadline) or a device there. Not followed, not blocking, a regular file only; the error
/// names the path and what it found.
fn open_log(log_file: &Path) -> Result<File, String> {
    let fd = nix::fcntl::open(
        log_file,
        nix::fcntl::OFlag::O_RDONLY
            | nix::fcntl::OFlag::O_NOFOLLOW
            | nix::fcntl::OFlag::O_NONBLOCK
            | nix::fcntl::OFlag::O_NOCTTY
            | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| match e {
        nix::errno::Errno::ELOOP => {
            format!("{} is a symlink; refusing to follow it", log_file.display())
        }
        e => format!("cannot read {}: {}", log_file.display(), e.desc()),
    })?;
    let st = nix::sys::stat::fstat(&fd)
        .map_err(|e| format!("cannot read {}: {}", log_file.display(), e.desc()))?;
    ctl_core::files::require_regular(log_file.display(), st.st_mode)?;
    Ok(File::from(fd))
}

/// The size of the container's log file now, to show later only what came after (0 when
/// it cannot be read as a regular file: see `open_log`).
pub fn log_offset(log_file: Option<&Path>) -> u64 {
    log_file
        .and_then(|p| open_log(p).ok())
        .and_then(|f| f.metadata().ok())
        .map_or(0, |m| m.len())
}

/// The log lines written since `offset` (at most `max`): the `ERROR` lines if there are
/// any (liblxc logs its reasons there, between many warnings), else the last lines. An
/// error when the log cannot be read as a regular file (see `open_log`).
pub fn log_tail_since(log_file: &Path, offset: u64, max: usize) -> Result<Vec<String>, String> {
    let mut file = open_log(log_file)?;
    let len = file.metadata().map_or(0, |m| m.len());
    // A log rotated or truncated meanwhile: show its end instead.
    let start = if offset <= len { offset } else { 0 };
    let start = start.max(len.saturating_sub(256 * 1024));
    let mut text = Vec::new();
    use std::io::{Seek, SeekFrom};
    file.seek(SeekFrom::Start(start))
        .and_then(|_| file.read_to_end(&mut text))
        .map_err(|e| format!("cannot read {}: {e}", log_file.display()))?;
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let errors: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.contains(" ERROR "))
        .collect();
    let chosen = if errors.is_empty() { lines } else { errors };
    Ok(chosen[chosen.len().saturating_sub(max)..]
        .iter()
        .map(|l| (*l).to_owned())
        .collect())
}

/// `message`, followed by the log lines written since `offset`, for a failed operation.
pub fn with_log_tail(
    message: impl std::fmt::Display,
    log_file: Option<&Path>,
    offset: u64,
) -> CommandError {
    let Some(log) = log_file else {
        return CommandError::msg(message);
    };
    let tail = match log_tail_since(log, offset, 8) {
        Ok(tail) => tail,
        Err(why) => return CommandError::msg(format!("{message} ({why})")),
    };
    if tail.is_empty() {
        return CommandError::msg(format!("{message} (nothing new in {})", log.display()));
    }
    CommandError::msg(format!(
        "{message}\nlast lines of {}:\n  {}",
        log.display(),
        tail.join("\n  ")
    ))
}

/// The container's log file: the one the envelope names, else `lxc.log.file` of its config.
pub fn log_file_of(ctx: &RunnerContext, ct: &ctl_lxc::Container) -> Option<PathBuf> {
    ctx.log_file.clone().or_else(|| {
        ct.get_config_item("lxc.log.file")
            .ok()
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// The log lies in a tree of the container's user: a FIFO there must not block the
    /// reader (in a thread, so that a regression fails instead of hanging), a symlink is
    /// not followed, a device is not read; each error names the path and what it is.
    #[test]
    fn log_tail_reads_regular_files_only() {
        let dir = std::env::temp_dir().join(format!("ctl-logtail-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let fifo = dir.join("fifo.log");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let link = dir.join("link.log");
        std::os::unix::fs::symlink("/dev/null", &link).unwrap();
        let log = dir.join("ok.log");
        std::fs::write(&log, "a\nx ERROR y\nb\n").unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let paths = [
            fifo.clone(),
            link.clone(),
            PathBuf::from("/dev/null"),
            log.clone(),
        ];
        std::thread::spawn(move || {
            for p in paths {
                let _ = tx.send((log_tail_since(&p, 0, 8), log_offset(Some(&p))));
            }
        });
        let next = || {
            rx.recv_timeout(Duration::from_secs(5))
                .expect("a log read hung")
        };
        let (tail, offset) = next();
        let e = tail.unwrap_err();
        assert!(e.contains("fifo.log") && e.contains("a FIFO"), "{e}");
        assert_eq!(offset, 0);
        let e = next().0.unwrap_err();
        assert!(e.contains("link.log") && e.contains("symlink"), "{e}");
        let e = next().0.unwrap_err();
        assert!(
            e.contains("/dev/null") && e.contains("character device"),
            "{e}"
        );
        let (tail, offset) = next();
        assert_eq!(tail.unwrap(), vec!["x ERROR y".to_owned()]);
        assert_eq!(offset, 14);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
