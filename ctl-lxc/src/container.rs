//! [`Container`]: one `struct lxc_container`, owned.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::fmt;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::ptr::{self, NonNull};
use std::time::Duration;

use lxc_sys::lxc_container;

use crate::attach::{run_function, AttachOptions, AttachProgram, RawAttachOptions, RawCommand};
use crate::error::{LxcError, OpError};
use crate::library::{api, Api};
use crate::process::{clear_errno, last_errno, Pid};
use crate::state::State;
use crate::strings::{borrowed, cstring, cstring_path, take_malloced, NulTerminated};

/// Reads a method (function pointer field) of the container's vtable-like struct, or fails
/// with "liblxc lacks ..." when this liblxc does not provide it.
macro_rules! method {
    ($self:ident, $field:ident) => {{
        let loaded = $self.loaded()?;
        // SAFETY: `raw` points to a live lxc_container as long as `self` exists (we own a
        // reference, released in Drop). The field is copied out by value through the raw
        // pointer, creating no Rust reference that liblxc's own writes could alias.
        let f = unsafe { (*loaded.raw.as_ptr()).$field };
        f.ok_or_else(|| {
            LxcError::Load(format!("liblxc lacks lxc_container.{}", stringify!($field)))
        })?
    }};
}

/// A liblxc container object (`struct lxc_container`), released on drop.
///
/// It is `Send` but not `Sync`: liblxc container objects are not safe to use from two
/// threads at once (liblxc keeps per-object state such as `error_string` and the loaded
/// config without internal locking for most calls), but moving one to another thread
/// between calls is fine.
///
/// Most operations talk to the container's monitor over its command socket and need the
/// caller to be the user that started it (for an unprivileged container: its system user,
/// with the monitor's cgroups writable), which is why the ctl runner calls them as that user.
pub struct Container {
    /// liblxc and its object, made at the first call that needs them: a caller that only
    /// asks the monitor (`state`) and attaches with ctl's own attach never loads liblxc.
    lazy: std::cell::OnceCell<Loaded>,
    name: String,
    lxc_path: PathBuf,
}

/// liblxc's object of a [`Container`], and liblxc.
struct Loaded {
    raw: NonNull<lxc_container>,
    api: &'static Api,
}

// SAFETY: a liblxc container object has no thread affinity (no thread-local state, no
// locks that must be released by the thread that took them between our calls); it is only
// unsafe to use concurrently, which `!Sync` (from the raw pointer) still forbids.
unsafe impl Send for Container {}

impl fmt::Debug for Container {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Container")
            .field("name", &self.name)
            .field("lxc_path", &self.lxc_path)
            .finish_non_exhaustive()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if let Some(loaded) = self.lazy.get() {
            // SAFETY: we own exactly one reference (from lxc_container_new) and drop it
            // once; nothing uses `raw` afterwards.
            unsafe { (loaded.api.container_put)(loaded.raw.as_ptr()) };
        }
    }
}

/// Seconds as liblxc's `int timeout` wants them: `None` waits forever (-1), partial
/// seconds round up so that a short non-zero timeout does not become "do not wait".
fn timeout_secs(timeout: Option<Duration>) -> c_int {
    match timeout {
        None => -1,
        Some(d) => {
            let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
            c_int::try_from(secs).unwrap_or(c_int::MAX)
        }
    }
}

impl Container {
    /// Opens container `name` of LXC path `lxc_path` (`lxc_container_new`), loading its
    /// config if it exists. A container that does not exist opens fine: see
    /// [`Container::is_defined`].
    pub fn open(name: &str, lxc_path: &Path) -> Result<Container, LxcError> {
        const OP: &str = "open";
        if name.is_empty() {
            return Err(LxcError::invalid(OP, "empty container name"));
        }
        // Checked now, so that a bad name fails here and not at the first use.
        cstring(OP, name)?;
        cstring_path(OP, lxc_path)?;
        Ok(Container {
            lazy: std::cell::OnceCell::new(),
            name: name.to_owned(),
            lxc_path: lxc_path.to_owned(),
        })
    }

    /// liblxc's object, loading liblxc and calling `lxc_container_new` the first time.
    fn loaded(&self) -> Result<&Loaded, LxcError> {
        if let Some(loaded) = self.lazy.get() {
            return Ok(loaded);
        }
        const OP: &str = "open";
        let api = api()?;
        let name_c = cstring(OP, &self.name)?;
        let path_c = cstring_path(OP, &self.lxc_path)?;
        clear_errno();
        // SAFETY: both arguments are valid NUL-terminated strings that liblxc copies
        // (it strdup()s name and config path); it returns an owned reference or NULL.
        let raw = unsafe { (api.container_new)(name_c.as_ptr(), path_c.as_ptr()) };
        let Some(raw) = NonNull::new(raw) else {
            return Err(LxcError::Op(Box::new(OpError {
                op: "lxc_container_new",
                container: self.name.clone(),
                error_string: None,
                error_num: 0,
                errno: last_errno(),
                log_file: None,
            })));
        };
        Ok(self.lazy.get_or_init(|| Loaded { raw, api }))
    }

    /// The raw pointer of the loaded object (only after a `method!`, which loads it).
    fn raw_ptr(&self) -> *mut lxc_container {
        self.lazy
            .get()
            .map_or(ptr::null_mut(), |loaded| loaded.raw.as_ptr())
    }

    /// The container's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The LXC path it was opened with.
    pub fn lxc_path(&self) -> &Path {
        &self.lxc_path
    }

    /// The raw liblxc object (loading liblxc if needed), for calls this wrapper does not
    /// cover. It stays owned by `self`: do not `lxc_container_put` it.
    pub fn as_raw(&self) -> Result<*mut lxc_container, LxcError> {
        Ok(self.loaded()?.raw.as_ptr())
    }

    /// Builds the error for a failed `op`, with what liblxc left in the object.
    fn fail(&self, op: &'static str) -> LxcError {
        let errno = last_errno();
        let raw = self.raw_ptr();
        if raw.is_null() {
            return LxcError::Op(Box::new(OpError {
                op,
                container: self.name.clone(),
                error_string: None,
                error_num: 0,
                errno,
                log_file: None,
            }));
        }
        // SAFETY: see `method!`: plain field reads through the live raw pointer.
        let (error_string, error_num) = unsafe { ((*raw).error_string, (*raw).error_num) };
        // SAFETY: error_string is NULL or a NUL-terminated string owned by the object.
        let error_string = unsafe { borrowed(error_string) };
        let log_file = self
            .read_config_item(c"lxc.log.file")
            .ok()
            .flatten()
            .filter(|s| !s.is_empty())
            .map(PathBuf::from);
        LxcError::Op(Box::new(OpError {
            op,
            container: self.name.clone(),
            error_string,
            error_num,
            errno,
            log_file,
        }))
    }

    /// Calls a `bool f(struct lxc_container *)` method.
    fn call_bool(
        &self,
        op: &'static str,
        f: unsafe extern "C" fn(*mut lxc_container) -> bool,
    ) -> Result<(), LxcError> {
        clear_errno();
        // SAFETY: `f` is a method of this very object taking only the object pointer,
        // which is live (see `method!`).
        let ok = unsafe { f(self.raw_ptr()) };
        if ok {
            Ok(())
        } else {
            Err(self.fail(op))
        }
    }

    /// Whether the container has a config (exists).
    pub fn is_defined(&self) -> Result<bool, LxcError> {
        // liblxc's answer is whether `<lxcpath>/<name>/config` exists: the same without
        // loading liblxc.
        if self.lazy.get().is_none() {
            return Ok(self.lxc_path.join(&self.name).join("config").exists());
        }
        let f = method!(self, is_defined);
        // SAFETY: live object pointer, no other argument.
        Ok(unsafe { f(self.raw_ptr()) })
    }

    /// Whether the container is running (any state but stopped).
    pub fn is_running(&self) -> Result<bool, LxcError> {
        let f = method!(self, is_running);
        // SAFETY: live object pointer, no other argument.
        Ok(unsafe { f(self.raw_ptr()) })
    }

    /// Whether the caller may control the container (liblxc's own permission check).
    pub fn may_control(&self) -> Result<bool, LxcError> {
        let f = method!(self, may_control);
        // SAFETY: live object pointer, no other argument.
        Ok(unsafe { f(self.raw_ptr()) })
    }

    /// The container's state. A container whose monitor cannot be reached is `Stopped`
    /// (that is how liblxc reports it).
    pub fn state(&self) -> Result<State, LxcError> {
        // liblxc's `state()` asks the monitor (`LXC_CMD_GET_STATE`; no monitor: STOPPED);
        // so does this, without loading liblxc, from a monitor of this user's or root's.
        // Anything else (another peer, a protocol surprise) goes through liblxc as before.
        if self.lazy.get().is_none() {
            let trusted = [nix::unistd::geteuid().as_raw(), 0];
            if let Ok(state) =
                crate::command_socket::get_state(&self.lxc_path, &self.name, &trusted, None)
            {
                return Ok(state.unwrap_or(State::Stopped));
            }
        }
        let f = method!(self, state);
        clear_errno();
        // SAFETY: live object pointer; the result is NULL or a pointer to one of liblxc's
        // static state names.
        let raw = unsafe { f(self.raw_ptr()) };
        // SAFETY: NULL or a static NUL-terminated string, see above.
        let text = unsafe { borrowed(raw) }.ok_or_else(|| self.fail("state"))?;
        text.parse()
            .map_err(|e: crate::state::UnknownState| LxcError::invalid("state", e.to_string()))
    }

    /// The host pid of the container's init, `None` when it is not running.
    pub fn init_pid(&self) -> Result<Option<Pid>, LxcError> {
        let f = method!(self, init_pid);
        // SAFETY: live object pointer, no other argument.
        let pid = unsafe { f(self.raw_ptr()) };
        Ok((pid > 0).then_some(pid))
    }

    /// Freezes all processes of the container.
    pub fn freeze(&self) -> Result<(), LxcError> {
        self.call_bool("freeze", method!(self, freeze))
    }

    /// Thaws a frozen container.
    pub fn unfreeze(&self) -> Result<(), LxcError> {
        self.call_bool("unfreeze", method!(self, unfreeze))
    }

    /// Kills the container (SIGKILL to init, via the monitor).
    pub fn stop(&self) -> Result<(), LxcError> {
        self.call_bool("stop", method!(self, stop))
    }

    /// Asks the container to reboot (sends `lxc.signal.reboot` to init) without waiting.
    pub fn reboot(&self) -> Result<(), LxcError> {
        self.call_bool("reboot", method!(self, reboot))
    }

    /// Asks the container to reboot and waits up to `timeout` (`None`: forever) for it to
    /// have restarted.
    pub fn reboot2(&self, timeout: Option<Duration>) -> Result<(), LxcError> {
        let f = method!(self, reboot2);
        clear_errno();
        // SAFETY: live object pointer and a plain int.
        let ok = unsafe { f(self.raw_ptr(), timeout_secs(timeout)) };
        if ok {
            Ok(())
        } else {
            Err(self.fail("reboot2"))
        }
    }

    /// Sends `lxc.signal.halt` to init and waits up to `timeout` for the container to stop.
    ///
    /// Returns `true` when it is stopped, `false` when it is still running (it did not
    /// stop in time, or the signal could not be sent: liblxc does not say which, its log
    /// does). A zero timeout only sends the signal and so returns `false` for a running
    /// container.
    pub fn shutdown(&self, timeout: Duration) -> Result<bool, LxcError> {
        let f = method!(self, shutdown);
        clear_errno();
        // SAFETY: live object pointer and a plain int.
        let ok = unsafe { f(self.raw_ptr(), timeout_secs(Some(timeout))) };
        Ok(ok || !self.is_running()?)
    }

    /// Waits up to `timeout` (`None`: forever) until the container is in `state`. Returns
    /// whether it got there.
    pub fn wait(&self, state: State, timeout: Option<Duration>) -> Result<bool, LxcError> {
        let f = method!(self, wait);
        let state_c = cstring("wait", state.as_lxc_str())?;
        // SAFETY: live object pointer, a NUL-terminated state name and a plain int.
        Ok(unsafe { f(self.raw_ptr(), state_c.as_ptr(), timeout_secs(timeout)) })
    }

    /// Starts the container in the background (liblxc's default "daemonize" mode: it forks
    /// a monitor and returns once the container runs or failed).
    ///
    /// `argv` replaces `lxc.init.cmd` when non-empty. With `use_init`, liblxc runs
    /// `init.lxc` as pid 1 with `argv` as its child (as `lxc-execute` does).
    pub fn start(&self, use_init: bool, argv: &[&str]) -> Result<(), LxcError> {
        let f = method!(self, start);
        let argv_c = NulTerminated::new("start", argv.iter().map(|a| Ok((*a).to_owned())))?;
        clear_errno();
        // SAFETY: live object pointer; argv is NULL or a NULL-terminated array of valid C
        // strings that outlive the call (liblxc copies what it keeps).
        let ok = unsafe {
            f(
                self.raw_ptr(),
                c_int::from(use_init),
                argv_c.as_ptr_or_null(),
            )
        };
        if ok {
            Ok(())
        } else {
            Err(self.fail("start"))
        }
    }

    /// Whether [`Container::start`] daemonizes (the default) or runs the container in the
    /// calling process until it stops.
    pub fn set_daemonize(&self, daemonize: bool) -> Result<(), LxcError> {
        let f = method!(self, want_daemonize);
        // SAFETY: live object pointer and a plain bool.
        if unsafe { f(self.raw_ptr(), daemonize) } {
            Ok(())
        } else {
            Err(self.fail("want_daemonize"))
        }
    }

    /// Runs `argv` in the stopped container as an application container, like
    /// `lxc-execute`: liblxc starts the container with `init.lxc` as pid 1 and `argv` as its
    /// only child, *in the calling process* (not daemonized), and returns when it stopped.
    /// Returns the command's exit status (what `init.lxc` passes through).
    ///
    /// `opts.env` entries are added as `lxc.environment` (in memory only, not saved; they
    /// accumulate on this object, so use a fresh [`Container`] per command).
    /// `opts.stdin/stdout/stderr`, when set, are `dup2`ed onto fds 0, 1, 2 of the calling
    /// process for the duration (the container's init inherits them) and restored after:
    /// this changes process-wide state, so call it from a dedicated runner process, not
    /// from a multi-threaded daemon (osctld forks and execs `lxc-execute` for this).
    pub fn execute(&self, argv: &[&str], opts: &ExecuteOptions) -> Result<ExitStatus, LxcError> {
        if argv.is_empty() {
            return Err(LxcError::invalid("execute", "empty argv"));
        }
        let f = method!(self, start);
        let set = method!(self, set_config_item);
        let argv_c = NulTerminated::new("execute", argv.iter().map(|a| Ok((*a).to_owned())))?;
        let key = cstring("execute", "lxc.environment")?;
        for (name, value) in &opts.env {
            let value = cstring("execute", &format!("{name}={value}"))?;
            // SAFETY: live object pointer and two NUL-terminated strings liblxc copies.
            if !unsafe { set(self.raw_ptr(), key.as_ptr(), value.as_ptr()) } {
                return Err(self.fail("set_config_item lxc.environment"));
            }
        }
        let _stdio = StdioSwap::new([opts.stdin, opts.stdout, opts.stderr])?;
        self.set_daemonize(false)?;
        clear_errno();
        // SAFETY: live object pointer; argv is a NULL-terminated array of C strings that
        // outlive the call.
        let ok = unsafe { f(self.raw_ptr(), 1, argv_c.as_ptr_or_null()) };
        let restored = self.set_daemonize(true);
        if !ok {
            return Err(self.fail("execute"));
        }
        restored?;
        // SAFETY: see `method!`: plain field read through the live raw pointer.
        let status = unsafe { (*self.raw_ptr()).error_num };
        Ok(ExitStatus::from_raw(status))
    }

    /// A config item of the *running* container, asked from its monitor
    /// (`get_running_config_item`), e.g. `lxc.net.0.veth.pair`.
    pub fn get_running_config_item(&self, key: &str) -> Result<String, LxcError> {
        let f = method!(self, get_running_config_item);
        let key_c = cstring("get_running_config_item", key)?;
        clear_errno();
        // SAFETY: live object pointer and a NUL-terminated key; the result is NULL or a
        // malloc()ed string we own.
        let raw = unsafe { f(self.raw_ptr(), key_c.as_ptr()) };
        // SAFETY: NULL or malloc()ed by liblxc and ours, see above.
        unsafe { take_malloced(raw) }.ok_or_else(|| self.fail("get_running_config_item"))
    }

    /// A config item from the loaded config file (empty when unset).
    pub fn get_config_item(&self, key: &str) -> Result<String, LxcError> {
        const OP: &str = "get_config_item";
        let key_c = cstring(OP, key)?;
        self.read_config_item(&key_c)?.ok_or_else(|| self.fail(OP))
    }

    /// `get_config_item` without building an error from liblxc's state (so that
    /// [`Container::fail`] can use it): `None` when liblxc refuses the key.
    fn read_config_item(&self, key: &CStr) -> Result<Option<String>, LxcError> {
        let f = method!(self, get_config_item);
        // liblxc returns the length when asked with a NULL buffer, like snprintf.
        // SAFETY: live object pointer, NUL-terminated key, NULL buffer of length 0.
        let len = unsafe { f(self.raw_ptr(), key.as_ptr(), ptr::null_mut(), 0) };
        let Ok(len) = usize::try_from(len) else {
            return Ok(None);
        };
        let mut buf = vec![0u8; len + 1];
        let inlen = c_int::try_from(buf.len())
            .map_err(|_| LxcError::invalid("get_config_item", "value too long"))?;
        // SAFETY: `buf` is writable for `inlen` bytes; liblxc writes at most that many,
        // NUL included.
        let got = unsafe {
            f(
                self.raw_ptr(),
                key.as_ptr(),
                buf.as_mut_ptr().cast::<c_char>(),
                inlen,
            )
        };
        let Ok(got) = usize::try_from(got) else {
            return Ok(None);
        };
        buf.truncate(got.min(len));
        Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
    }

    /// Sets a config item in memory (not saved to the config file).
    pub fn set_config_item(&self, key: &str, value: &str) -> Result<(), LxcError> {
        let f = method!(self, set_config_item);
        let key_c = cstring("set_config_item", key)?;
        let value_c = cstring("set_config_item", value)?;
        clear_errno();
        // SAFETY: live object pointer and two NUL-terminated strings liblxc copies.
        if unsafe { f(self.raw_ptr(), key_c.as_ptr(), value_c.as_ptr()) } {
            Ok(())
        } else {
            Err(self.fail("set_config_item"))
        }
    }

    /// The path of the container's config file.
    pub fn config_file_name(&self) -> Result<PathBuf, LxcError> {
        let f = method!(self, config_file_name);
        clear_errno();
        // SAFETY: live object pointer; the result is NULL or a malloc()ed string we own.
        let raw = unsafe { f(self.raw_ptr()) };
        // SAFETY: NULL or malloc()ed by liblxc and ours, see above.
        unsafe { take_malloced(raw) }
            .map(PathBuf::from)
            .ok_or_else(|| self.fail("config_file_name"))
    }

    /// Runs `program` in the running container and returns the pid of the attached process,
    /// a child of the calling process that the caller must reap ([`crate::wait_pid`]).
    ///
    /// liblxc forks the calling process (see [`AttachProgram::Function`] for what that
    /// means for closures). Side effect inherited from liblxc: when `opts.stdin` is 0, it
    /// sets SIGINT and SIGQUIT of the *calling* process to ignored (so that Ctrl-C goes to
    /// the attached program only).
    ///
    /// # Prefer [`attach_isolated`](Container::attach_isolated)
    ///
    /// liblxc can end the process that calls this: with liblxc 5.0.2 a container stopping
    /// during the attach sometimes made it `_exit(1)` its caller, without a message
    /// (`docs/reliability.md`). And the processes liblxc forks from the caller to enter the
    /// container carry the caller's fds and memory into the container's namespaces.
    /// [`attach_isolated`](Container::attach_isolated) makes this call from a forked,
    /// non-dumpable, sealed child and waits with a deadline; call this directly only from a
    /// process that may die with the attach and holds nothing the container may see.
    pub fn attach(
        &self,
        opts: &AttachOptions,
        program: AttachProgram<'_>,
    ) -> Result<Pid, LxcError> {
        let f = method!(self, attach);
        let mut raw_opts = RawAttachOptions::new(opts)?;
        let mut pid: Pid = -1;
        let mut command;
        let function;
        let (exec, payload): (crate::library::AttachExec, *mut c_void) = match program {
            AttachProgram::Command(argv) => {
                command = RawCommand::new(argv)?;
                (
                    self.loaded()?.api.attach_run_command,
                    ptr::addr_of_mut!(command.raw).cast(),
                )
            }
            AttachProgram::Shell => (self.loaded()?.api.attach_run_shell, ptr::null_mut()),
            AttachProgram::Function(func) => {
                function = func;
                (run_function, ptr::addr_of!(function).cast_mut().cast())
            }
        };
        clear_errno();
        // SAFETY: live object pointer; `exec` matches `payload` (lxc_attach_run_command
        // takes an lxc_attach_command_t, lxc_attach_run_shell ignores it, run_function takes
        // a `&dyn Fn() -> i32`), and payload, options and their strings live on this stack
        // frame until liblxc returns (the child gets its own copy when forked); `pid` is a
        // writable local.
        let ret = unsafe {
            f(
                self.raw_ptr(),
                Some(exec),
                payload,
                &mut raw_opts.raw,
                &mut pid,
            )
        };
        if ret < 0 || pid <= 0 {
            return Err(self.fail("attach"));
        }
        Ok(pid)
    }

    /// Attaches, runs `argv` and waits for it: a shortcut for `attach` + `wait_pid`.
    pub fn attach_run_wait(
        &self,
        opts: &AttachOptions,
        argv: &[&str],
    ) -> Result<ExitStatus, LxcError> {
        let pid = self.attach(opts, AttachProgram::Command(argv))?;
        crate::process::wait_pid(pid)
    }
}

/// Options of [`Container::execute`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecuteOptions {
    /// Becomes fd 0 of the caller (and so of the container) for the duration, if set.
    pub stdin: Option<RawFd>,
    /// Becomes fd 1, if set.
    pub stdout: Option<RawFd>,
    /// Becomes fd 2, if set.
    pub stderr: Option<RawFd>,
    /// `lxc.environment` entries for the command (osctld passes `PATH`, `HOME=/root`,
    /// `USER=root`).
    pub env: Vec<(String, String)>,
}

/// Temporarily replaces fds 0..2 of this process; restores them on drop.
struct StdioSwap {
    saved: Vec<(RawFd, OwnedFd)>,
}

impl StdioSwap {
    fn new(new: [Option<RawFd>; 3]) -> Result<Self, LxcError> {
        let mut swap = StdioSwap { saved: Vec::new() };
        for (target, source) in (0..3).zip(new) {
            let Some(source) = source else { continue };
            if source == target {
                continue;
            }
            // SAFETY: fds 0..2 are open in any sane process; borrowed only to duplicate.
            let current = unsafe { BorrowedFd::borrow_raw(target) };
            let saved = current
                .try_clone_to_owned()
                .map_err(|e| LxcError::os("dup stdio", e))?;
            dup2(source, target)?;
            swap.saved.push((target, saved));
        }
        Ok(swap)
    }
}

impl Drop for StdioSwap {
    fn drop(&mut self) {
        for (target, saved) in self.saved.drain(..).rev() {
            let _ = dup2(saved.as_raw_fd(), target);
        }
    }
}

fn dup2(source: RawFd, target: RawFd) -> Result<(), LxcError> {
    // SAFETY: dup2 only manipulates the fd table; `target` is one of 0..2, which callers
    // of `execute` hand over for the duration by contract.
    if unsafe { libc::dup2(source, target) } < 0 {
        return Err(LxcError::os("dup2 stdio", std::io::Error::last_os_error()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_round_up() {
        assert_eq!(timeout_secs(None), -1);
        assert_eq!(timeout_secs(Some(Duration::ZERO)), 0);
        assert_eq!(timeout_secs(Some(Duration::from_millis(1))), 1);
        assert_eq!(timeout_secs(Some(Duration::from_secs(5))), 5);
        assert_eq!(
            timeout_secs(Some(Duration::from_secs(u64::MAX))),
            c_int::MAX
        );
    }
}
