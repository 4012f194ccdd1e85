//! File operations relative to directory handles that never follow a symlink.
//!
//! The container's user owns its home, its LXC home and the container directory, and the
//! container's root owns the rootfs: either can replace what the provisioner made there
//! with a symlink (or a hard link) to a host path. Root then must not chown, chmod or
//! write through it. Every path below such a directory is therefore reached from an fd
//! of the directory with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` (one component
//! at a time where directories are created), changed through an fd (`fchmod`, `fchown`),
//! and files are replaced by a rename within the directory, which replaces a link
//! instead of writing into its target. A symlink where a file or directory is expected is
//! refused with an error naming it.

use std::fs::File;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{FileStat, Mode};
use nix::unistd::{Gid, Uid, UnlinkatFlags};

use crate::error::ProvisionError;

/// A directory handle and the host path it was opened as (for messages).
pub(crate) struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

/// No symlink at all, nothing outside the starting directory.
const NO_SYMLINKS_BENEATH: ResolveFlag = ResolveFlag::RESOLVE_BENEATH
    .union(ResolveFlag::RESOLVE_NO_SYMLINKS)
    .union(ResolveFlag::RESOLVE_NO_MAGICLINKS);

fn io(what: &str, path: &Path, e: Errno) -> ProvisionError {
    ProvisionError::io(
        format!("{what} {}", path.display()),
        std::io::Error::from_raw_os_error(e as i32),
    )
}

fn symlink_refused(path: &Path) -> ProvisionError {
    ProvisionError::Refused(format!(
        "{} is a symlink; refusing to follow it as root",
        path.display()
    ))
}

impl Dir {
    /// Opens `path`, a directory whose parent only root can change (the state directory's
    /// `homes`, `lxc`): only its last component must not be a symlink.
    pub(crate) fn open(path: &Path) -> Result<Dir, ProvisionError> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            Errno::ELOOP | Errno::ENOTDIR
                if nix::sys::stat::lstat(path)
                    .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFLNK) =>
            {
                symlink_refused(path)
            }
            e => io("open", path, e),
        })?;
        Ok(Dir {
            fd,
            path: path.to_owned(),
        })
    }

    /// The host path of `name` in this directory.
    pub(crate) fn path_of(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// What `name` is, without following a symlink; `None` when it does not exist.
    pub(crate) fn stat(&self, name: &str) -> Result<Option<FileStat>, ProvisionError> {
        match nix::sys::stat::fstatat(&self.fd, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(st)),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(io("stat", &self.path_of(name), e)),
        }
    }

    /// Opens `rel` (one or more components) below this directory, following no symlink.
    pub(crate) fn open_at(
        &self,
        rel: &str,
        flags: OFlag,
        mode: u32,
    ) -> Result<OwnedFd, ProvisionError> {
        let how = OpenHow::new()
            .flags(flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
            .mode(Mode::from_bits_truncate(mode))
            .resolve(NO_SYMLINKS_BENEATH);
        nix::fcntl::openat2(&self.fd, rel, how).map_err(|e| self.open_error(rel, e))
    }

    /// Names the symlink on the way to `rel` when that is why opening it failed.
    fn open_error(&self, rel: &str, e: Errno) -> ProvisionError {
        if matches!(e, Errno::ELOOP | Errno::ENOTDIR | Errno::EXDEV) {
            let mut sub = PathBuf::new();
            for part in Path::new(rel).iter() {
                sub.push(part);
                let st = nix::sys::stat::fstatat(&self.fd, &sub, AtFlags::AT_SYMLINK_NOFOLLOW);
                if st.is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFLNK) {
                    return symlink_refused(&self.path.join(&sub));
                }
            }
        }
        io("open", &self.path.join(rel), e)
    }

    /// The directory `rel` below this one (no symlink on the way, none at its end).
    pub(crate) fn dir_at(&self, rel: &str) -> Result<Dir, ProvisionError> {
        let fd = self.open_at(rel, OFlag::O_RDONLY | OFlag::O_DIRECTORY, 0)?;
        Ok(Dir {
            fd,
            path: self.path.join(rel),
        })
    }

    /// `mkdir name` (idempotent), then mode and, if given, owner `ugid:ugid`, set through
    /// a handle of the directory: an existing symlink at `name` is refused, not followed.
    pub(crate) fn ensure_dir(
        &self,
        name: &str,
        mode: u32,
        owner: Option<u32>,
    ) -> Result<Dir, ProvisionError> {
        let path = self.path_of(name);
        match nix::sys::stat::mkdirat(&self.fd, name, Mode::from_bits_truncate(mode)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(io("mkdir", &path, e)),
        }
        let dir = self.dir_at(name)?;
        nix::sys::stat::fchmod(&dir.fd, Mode::from_bits_truncate(mode))
            .map_err(|e| io("chmod", &path, e))?;
        if let Some(ugid) = owner {
            chown_fd(&dir.fd, ugid, &path)?;
        }
        Ok(dir)
    }

    /// Replaces `name` with a new regular file holding `data`: written to a fresh
    /// temporary file (`O_EXCL`) in this directory, mode and owner set on its handle,
    /// then renamed over `name` (which replaces a symlink or hard link there, never
    /// writing into its target).
    pub(crate) fn write_file(
        &self,
        name: &str,
        data: &[u8],
        mode: u32,
        owner: Option<u32>,
    ) -> Result<(), ProvisionError> {
        let path = self.path_of(name);
        let tmp = format!(".{name}.tmp.{}", std::process::id());
        match nix::unistd::unlinkat(&self.fd, tmp.as_str(), UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(io("remove", &self.path_of(&tmp), e)),
        }
        let result = (|| {
            let fd = self.open_at(&tmp, OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL, mode)?;
            let mut file = File::from(fd);
            file.write_all(data)
                .map_err(|e| ProvisionError::io(format!("write {}", path.display()), e))?;
            nix::sys::stat::fchmod(&file, Mode::from_bits_truncate(mode))
                .map_err(|e| io("chmod", &path, e))?;
            if let Some(ugid) = owner {
                chown_fd(&file, ugid, &path)?;
            }
            file.sync_all()
                .map_err(|e| ProvisionError::io(format!("sync {}", path.display()), e))?;
            nix::fcntl::renameat(&self.fd, tmp.as_str(), &self.fd, name)
                .map_err(|e| io("rename into", &path, e))
        })();
        if result.is_err() {
            let _ = nix::unistd::unlinkat(&self.fd, tmp.as_str(), UnlinkatFlags::NoRemoveDir);
        }
        result
    }

    /// Creates `name` as an empty file if missing and gives it to `ugid:ugid`. What is
    /// there must be a regular file with a single link: a symlink, a FIFO or a hard link
    /// to another file (which root would give away) is refused.
    pub(crate) fn ensure_file(
        &self,
        name: &str,
        mode: u32,
        ugid: u32,
    ) -> Result<(), ProvisionError> {
        let path = self.path_of(name);
        let fd = self
            .open_at(
                name,
                OFlag::O_RDONLY | OFlag::O_CREAT | OFlag::O_NONBLOCK | OFlag::O_NOCTTY,
                mode,
            )
            .map_err(|e| match self.stat(name) {
                Ok(Some(st)) if st.st_mode & libc::S_IFMT == libc::S_IFLNK => {
                    symlink_refused(&path)
                }
                _ => e,
            })?;
        let st = nix::sys::stat::fstat(&fd).map_err(|e| io("stat", &path, e))?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(ProvisionError::Refused(format!(
                "{} is {}, not a regular file; refusing it",
                path.display(),
                ctl_core::files::file_kind(st.st_mode)
            )));
        }
        if st.st_nlink > 1 {
            return Err(ProvisionError::Refused(format!(
                "{} has {} hard links; refusing to give it to uid {ugid}",
                path.display(),
                st.st_nlink
            )));
        }
        chown_fd(&fd, ugid, &path)
    }

    /// `ln -s target name` unless `name` exists; a symlink at `name` (ours or not) is
    /// given to `ugid:ugid` (a symlink's owner grants nothing), anything else is left as
    /// it is.
    pub(crate) fn ensure_symlink(
        &self,
        target: &str,
        name: &str,
        ugid: u32,
    ) -> Result<(), ProvisionError> {
        let path = self.path_of(name);
        match nix::unistd::symlinkat(target, &self.fd, name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(io("symlink", &path, e)),
        }
        if self
            .stat(name)?
            .is_some_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFLNK)
        {
            nix::unistd::fchownat(
                &self.fd,
                name,
                Some(Uid::from_raw(ugid)),
                Some(Gid::from_raw(ugid)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(|e| io("chown", &path, e))?;
        }
        Ok(())
    }

    /// `ln existing name` (a hard link, both in directories opened from one tree) unless
    /// `name` exists.
    pub(crate) fn ensure_hard_link(
        &self,
        existing: &str,
        to: &Dir,
        name: &str,
    ) -> Result<(), ProvisionError> {
        match nix::unistd::linkat(&self.fd, existing, &to.fd, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::EEXIST) => Ok(()),
            Err(e) => Err(io("link", &to.path_of(name), e)),
        }
    }

    /// `fsync` of the directory (after renames into it).
    pub(crate) fn sync(&self) -> Result<(), ProvisionError> {
        nix::unistd::fsync(&self.fd).map_err(|e| io("sync", &self.path, e))
    }
}

fn chown_fd(fd: &impl std::os::fd::AsFd, ugid: u32, path: &Path) -> Result<(), ProvisionError> {
    nix::unistd::fchown(fd, Some(Uid::from_raw(ugid)), Some(Gid::from_raw(ugid)))
        .map_err(|e| io("chown", path, e))
}
