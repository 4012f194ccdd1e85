//! What kind of file an fd or path is, for refusals that name it: root-side code reads
//! only regular files in trees a container's root or user controls (a FIFO blocks the
//! reader, a device does what the device does).

use std::fmt;

/// What a file of mode `mode` (`st_mode`) is, with its article: "a FIFO", "a character
/// device"...
pub fn file_kind(mode: u32) -> &'static str {
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

/// `Ok` for a regular file, else the one-line refusal naming `path` and what it is.
pub fn require_regular(path: impl fmt::Display, mode: u32) -> Result<(), String> {
    if mode & libc::S_IFMT == libc::S_IFREG {
        return Ok(());
    }
    Err(format!(
        "{path} is {}, not a regular file; refusing to read it",
        file_kind(mode)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_named() {
        assert_eq!(file_kind(libc::S_IFIFO | 0o644), "a FIFO");
        assert!(require_regular("/x", libc::S_IFREG | 0o600).is_ok());
        let e = require_regular("/dev/tty", libc::S_IFCHR | 0o666).unwrap_err();
        assert_eq!(
            e,
            "/dev/tty is a character device, not a regular file; refusing to read it"
        );
    }
}
