//! Conversions between Rust strings and the C strings liblxc takes and returns.

use std::ffi::{c_char, CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr;

use crate::error::LxcError;

/// `s` as a C string; a NUL byte inside is an [`LxcError::InvalidArgument`].
pub(crate) fn cstring(op: &'static str, s: &str) -> Result<CString, LxcError> {
    CString::new(s).map_err(|_| LxcError::invalid(op, format!("{s:?} contains a NUL byte")))
}

/// A path as a C string.
pub(crate) fn cstring_path(op: &'static str, p: &Path) -> Result<CString, LxcError> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| LxcError::invalid(op, format!("{} contains a NUL byte", p.display())))
}

/// A NULL-terminated array of C strings (`char **`), as `argv`-like liblxc fields want it.
/// The pointers point into the owned `CString`s' heap buffers, which do not move when this
/// struct does.
pub(crate) struct NulTerminated {
    _strings: Vec<CString>,
    pointers: Vec<*mut c_char>,
}

impl NulTerminated {
    pub fn new(
        op: &'static str,
        items: impl Iterator<Item = Result<String, LxcError>>,
    ) -> Result<Self, LxcError> {
        let strings = items
            .map(|s| cstring(op, &s?))
            .collect::<Result<Vec<_>, _>>()?;
        // liblxc's char ** fields are not const-correct; it never writes through them.
        let mut pointers: Vec<*mut c_char> =
            strings.iter().map(|s| s.as_ptr().cast_mut()).collect();
        pointers.push(ptr::null_mut());
        Ok(NulTerminated {
            _strings: strings,
            pointers,
        })
    }

    /// The array, or NULL when it holds no string (liblxc treats NULL as "none").
    pub fn as_ptr_or_null(&self) -> *mut *mut c_char {
        if self.pointers.len() == 1 {
            ptr::null_mut()
        } else {
            self.pointers.as_ptr().cast_mut()
        }
    }

    /// The first string, or NULL.
    pub fn first(&self) -> *mut c_char {
        self.pointers[0]
    }
}

/// Copies a string that liblxc allocated with `malloc` and frees it. NULL gives `None`.
///
/// # Safety
/// `raw` must be NULL or a NUL-terminated string allocated by liblxc with `malloc`, not
/// used by anyone after this call.
pub(crate) unsafe fn take_malloced(raw: *mut c_char) -> Option<String> {
    if raw.is_null() {
        return None;
    }
    // SAFETY: non-null and NUL-terminated per the contract.
    let text = unsafe { CStr::from_ptr(raw) }
        .to_string_lossy()
        .into_owned();
    // SAFETY: allocated with malloc by liblxc and owned by us per the contract; freed once.
    unsafe { libc::free(raw.cast()) };
    Some(text)
}

/// Copies a string liblxc owns (not to be freed). NULL gives `None`.
///
/// # Safety
/// `raw` must be NULL or a NUL-terminated string that stays valid during this call.
pub(crate) unsafe fn borrowed(raw: *const c_char) -> Option<String> {
    if raw.is_null() {
        return None;
    }
    // SAFETY: non-null and NUL-terminated per the contract.
    Some(
        unsafe { CStr::from_ptr(raw) }
            .to_string_lossy()
            .into_owned(),
    )
}
