//! What kind of file a mode is, for refusals that name it (root-side code reads only
//! regular files in trees a container's root or user controls).

/// What a file of mode `mode` (`st_mode`) is, with its article: "a FIFO", ...
fn file_kind(mode: u32) -> &'static str {
    match mode & libc::S_IFMT {
        libc::S_IFREG => "a regular file",
        libc::S_IFDIR => "a directory",
        libc::S_IFLNK => "a symlink",
        libc::S_IFIFO => "a FIFO",
        libc::S_IFCHR => "a character device",
        libc::S_IFBLK => "a block device",
        libc::S_IFSOCK => "a socket",
        _ => "of an unknown type",
    }
}

/// `Ok` for a regular file, else the one-line refusal naming `path` and what it is (the
/// same text as `ctl_core::files::require_regular`).
pub(crate) fn require_regular(path: impl std::fmt::Display, mode: u32) -> Result<(), String> {
    if mode & libc::S_IFMT == libc::S_IFREG {
        return Ok(());
    }
    Err(format!(
        "{path} is {}, not a regular file; refusing to read it",
        file_kind(mode)
    ))
}
