//! What the red-team tests share: static helper programs built from `redteam/*.c` of this
//! crate, planted in containers by their root, and an operator's terminal (a pty that is
//! `ctl`'s controlling terminal).

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use nix::sys::termios;

use crate::cli::{Ct, StateDir};

/// The directory of this test process's red-team binaries, removed when the process exits.
static DIR: OnceLock<PathBuf> = OnceLock::new();

/// Removes [`DIR`] at exit: a static is never dropped, and every test process would leave
/// a `/tmp/ctl-redteam-*` behind otherwise.
extern "C" fn remove_redteam_dir() {
    if let Some(dir) = DIR.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Builds `redteam/<name>.c` of this crate as a static binary, once per test process, into a
/// directory every user can read (the container's user runs some of them on the host).
pub fn redteam_binary(name: &str) -> PathBuf {
    // Tests run in parallel: one build at a time, renamed into place when complete, so
    // that none plants a half-written file.
    static BUILD: Mutex<()> = Mutex::new(());
    let dir = DIR.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("ctl-redteam-")
            .tempdir_in("/tmp")
            .unwrap()
            .keep();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        // SAFETY: registers a plain `extern "C"` function that only reads a set static.
        unsafe { libc::atexit(remove_redteam_dir) };
        dir
    });
    let _build = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let out = dir.join(name);
    if !out.exists() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("redteam")
            .join(format!("{name}.c"));
        let partial = out.with_extension("partial");
        let status = Command::new("cc")
            .args(["-static", "-O2", "-o"])
            .arg(&partial)
            .arg(&src)
            .status()
            .expect("cc (a C compiler with static glibc: gcc, libc6-dev) is needed");
        assert!(status.success(), "building {}", src.display());
        std::fs::rename(&partial, &out).unwrap();
    }
    out
}

/// Makes TIOCSTI available to unprivileged callers whatever the host's default is, so the
/// tests show the framework's own protection, not the sysctl's.
/// Waits until the file a planted program writes holds `needle` and returns its text;
/// fails naming `what` and the file after `limit`.
#[track_caller]
pub fn wait_for_text(path: &Path, needle: &str, limit: std::time::Duration, what: &str) -> String {
    let start = std::time::Instant::now();
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(
            start.elapsed() < limit,
            "{what}; {}: {text:?}",
            path.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

pub fn legacy_tiocsti_on() {
    let knob = Path::new("/proc/sys/dev/tty/legacy_tiocsti");
    if knob.exists() {
        std::fs::write(knob, "1").expect("setting dev.tty.legacy_tiocsti=1");
    }
}

/// The container's directory in its LXC home.
pub fn ct_dir(ct: &Ct<'_>) -> PathBuf {
    ct.state.path().join("lxc").join(ct.user()).join(&ct.name)
}

/// The container's rootfs, as the host sees it.
pub fn rootfs(ct: &Ct<'_>) -> PathBuf {
    ct_dir(ct).join("rootfs")
}

/// Copies a red-team program into the running container as its root would: through
/// `ctl ct exec`, from the inside.
pub fn plant(ct: &Ct<'_>, name: &str, inside: &str) {
    let bytes = std::fs::read(redteam_binary(name)).unwrap();
    // `rm -f` first: the path may be a link to busybox, which `cat >` would overwrite.
    let script = format!(
        "mkdir -p $(dirname {inside}) && rm -f {inside} && cat > {inside} && chmod 755 {inside}"
    );
    ct.state
        .ctl_with_stdin(
            &["ct", "exec", &ct.name, "--", "sh", "-c", &script],
            Some(&bytes),
        )
        .ok();
}

/// An operator's terminal: `ctl` runs with the slave as its controlling terminal (in a
/// session of its own, as a login shell's job would), the test holds the master.
pub struct Terminal {
    pub master: OwnedFd,
    pub slave: OwnedFd,
}

impl Terminal {
    /// A new pty; `raw` puts it in raw mode (typed bytes reach `ctl` at once, injected
    /// input is readable without a newline and not echoed). The master is non-blocking.
    pub fn new(raw: bool) -> Terminal {
        let pty = nix::pty::openpty(None, None).unwrap();
        if raw {
            let mut t = termios::tcgetattr(&pty.slave).unwrap();
            termios::cfmakeraw(&mut t);
            termios::tcsetattr(&pty.slave, termios::SetArg::TCSANOW, &t).unwrap();
        }
        nonblocking(&pty.master);
        Terminal {
            master: pty.master,
            slave: pty.slave,
        }
    }

    /// Starts `ctl ARGS` on this terminal: stdout and stderr on it, stdin on it too when
    /// `stdin_tty`, else `/dev/null`.
    pub fn spawn(&self, state: &StateDir, args: &[&str], stdin_tty: bool) -> Child {
        let mut cmd: Command = state.command(args);
        let slave = |fd: &OwnedFd| Stdio::from(fd.try_clone().unwrap());
        cmd.stdin(if stdin_tty {
            slave(&self.slave)
        } else {
            Stdio::null()
        })
        .stdout(slave(&self.slave))
        .stderr(slave(&self.slave));
        // SAFETY: only async-signal-safe system calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(1, libc::TIOCSCTTY, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd.spawn().expect("spawn ctl")
    }

    /// Reads at most `limit` bytes of what the terminal shows; how many were read.
    pub fn read_up_to(&self, limit: usize) -> usize {
        let mut buf = vec![0u8; limit.min(64 * 1024)];
        let mut total = 0;
        while total < limit {
            let want = (limit - total).min(buf.len());
            match nix::unistd::read(&self.master, &mut buf[..want]) {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
        total
    }

    /// Types `bytes` (as many as the terminal takes now); how many were taken.
    pub fn type_some(&self, bytes: &[u8]) -> usize {
        nix::unistd::write(&self.master, bytes).unwrap_or_default()
    }

    /// Appends what the terminal shows now to `into`.
    pub fn read_master(&self, into: &mut Vec<u8>) {
        let mut buf = [0u8; 4096];
        while let Ok(n) = nix::unistd::read(&self.master, &mut buf) {
            if n == 0 {
                break;
            }
            into.extend_from_slice(&buf[..n]);
        }
    }

    /// What was typed into the terminal (its input queue), as the operator's shell would
    /// read it next.
    pub fn typed_input(&self) -> String {
        nonblocking(&self.slave);
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = nix::unistd::read(&self.slave, &mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// Sets `O_NONBLOCK` on `fd`.
pub fn nonblocking(fd: &OwnedFd) {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = OFlag::from_bits_truncate(fcntl(fd.as_fd(), FcntlArg::F_GETFL).unwrap());
    fcntl(fd.as_fd(), FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).unwrap();
}
