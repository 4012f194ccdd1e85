//! Lazy loading of liblxc with `dlopen`.
//!
//! We never call an `extern` function of `lxc-sys` directly: the linker (with rustc's
//! default `--as-needed`) then records no `DT_NEEDED` entry for liblxc, so programs that
//! link this crate but never touch a container do not pay the ~0.4 ms that loading liblxc
//! and its ten dependencies costs at every exec (see the notes on these machines). The
//! library is opened on first use and kept for the life of the process.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::OnceLock;

use libloading::Library;
use lxc_sys::lxc_container;

use crate::error::LxcError;

/// The file name the dynamic loader looks for (the SONAME of liblxc 1.x .. 6.x).
pub const LIBRARY_NAME: &str = "liblxc.so.1";

type ContainerNew = unsafe extern "C" fn(*const c_char, *const c_char) -> *mut lxc_container;
type ContainerPut = unsafe extern "C" fn(*mut lxc_container) -> c_int;
type GetVersion = unsafe extern "C" fn() -> *const c_char;
pub(crate) type AttachExec = unsafe extern "C" fn(*mut c_void) -> c_int;

/// The entry points of liblxc we need, resolved once.
pub(crate) struct Api {
    pub container_new: ContainerNew,
    pub container_put: ContainerPut,
    pub get_version: GetVersion,
    pub attach_run_command: AttachExec,
    pub attach_run_shell: AttachExec,
    /// Keeps the library mapped: the function pointers above point into it.
    _library: Library,
}

/// The loaded library, or why it could not be loaded. Failure is cached too: a missing
/// liblxc does not appear while the process runs, and retrying `dlopen` on every call
/// would only slow down the error path.
pub(crate) fn api() -> Result<&'static Api, LxcError> {
    static API: OnceLock<Result<Api, String>> = OnceLock::new();
    API.get_or_init(load)
        .as_ref()
        .map_err(|reason| LxcError::Load(reason.clone()))
}

fn load() -> Result<Api, String> {
    // A statically linked runner (`+crt-static`, `ctl-runner-static`) has no dynamic loader
    // of its own to share with liblxc: `dlopen` would map a second libc into the process.
    // Such a runner serves only commands declared `static_runner`; one that is not, invoked
    // there by name, gets this instead of an attempt.
    if cfg!(target_feature = "crt-static") {
        return Err(
            "this runner is statically linked and cannot load liblxc: commands that use LXC \
             run in the dynamic runner (`ctl-runner`); only commands declared `static_runner` \
             run here"
                .to_owned(),
        );
    }
    // SAFETY: loading liblxc runs its ELF constructors; liblxc's only set up its own
    // globals (locks, log defaults) and do not depend on anything we could break here.
    let library =
        unsafe { Library::new(LIBRARY_NAME) }.map_err(|e| format!("dlopen {LIBRARY_NAME}: {e}"))?;
    // Each type below is the prototype from liblxc 5's <lxc/lxccontainer.h> or
    // <lxc/attach_options.h> (from which lxc-sys generates its bindings). The pointers stay
    // valid because `library` is stored next to them in an `Api` that lives in a static and
    // is never dropped, so liblxc is never unloaded.
    // SAFETY: `lxc_container_new(const char *, const char *)` returns `struct lxc_container *`.
    let container_new = unsafe { symbol::<ContainerNew>(&library, "lxc_container_new") }?;
    // SAFETY: `int lxc_container_put(struct lxc_container *)`.
    let container_put = unsafe { symbol::<ContainerPut>(&library, "lxc_container_put") }?;
    // SAFETY: `const char *lxc_get_version(void)`.
    let get_version = unsafe { symbol::<GetVersion>(&library, "lxc_get_version") }?;
    // SAFETY: `int lxc_attach_run_command(void *payload)`.
    let attach_run_command = unsafe { symbol::<AttachExec>(&library, "lxc_attach_run_command") }?;
    // SAFETY: `int lxc_attach_run_shell(void *payload)`.
    let attach_run_shell = unsafe { symbol::<AttachExec>(&library, "lxc_attach_run_shell") }?;
    Ok(Api {
        container_new,
        container_put,
        get_version,
        attach_run_command,
        attach_run_shell,
        _library: library,
    })
}

/// Resolves `name` as a value of type `T` (a function pointer type).
///
/// # Safety
/// `T` must be the exact type of the symbol, and the result must not outlive `library`.
unsafe fn symbol<T: Copy>(library: &Library, name: &str) -> Result<T, String> {
    // SAFETY: forwarded to the caller.
    let sym = unsafe { library.get::<T>(name) };
    sym.map(|s| *s)
        .map_err(|e| format!("{LIBRARY_NAME} lacks {name}: {e}"))
}

/// liblxc's version string, e.g. `5.0.2`. Loads the library if needed.
pub fn version() -> Result<&'static str, LxcError> {
    let api = api()?;
    // SAFETY: lxc_get_version takes no arguments and returns a pointer to a static,
    // NUL-terminated string (LXC_VERSION) that lives as long as the library, i.e. forever.
    let raw = unsafe { (api.get_version)() };
    if raw.is_null() {
        return Err(LxcError::Load("lxc_get_version returned NULL".into()));
    }
    // SAFETY: non-null, static and NUL-terminated, see above.
    let version = unsafe { CStr::from_ptr(raw) };
    Ok(version.to_str().unwrap_or("unknown"))
}
