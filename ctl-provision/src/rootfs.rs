//! A tiny busybox root file system, owned by the container's mapped ids.

use std::fs;
use std::io;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::process::Command;

use crate::error::{IoContext, ProvisionError};
use crate::host;

/// The statically linked busybox of Debian's `busybox-static`: a static one needs no host
/// `/lib` bind mounts in the container.
pub const BUSYBOX: &str = "/bin/busybox";

/// Directories of the busybox template, with their modes.
const DIRS: &[(&str, u32)] = &[
    ("selinux", 0o755),
    ("dev", 0o755),
    ("dev/pts", 0o755),
    ("home", 0o755),
    ("root", 0o700),
    ("etc", 0o755),
    ("etc/init.d", 0o755),
    ("bin", 0o755),
    ("usr", 0o755),
    ("usr/bin", 0o755),
    ("sbin", 0o755),
    ("usr/sbin", 0o755),
    ("proc", 0o755),
    ("sys", 0o755),
    ("mnt", 0o755),
    ("tmp", 0o1777),
    ("var", 0o755),
    ("var/log", 0o755),
    ("var/run", 0o755),
    ("lib", 0o755),
    ("usr/lib", 0o755),
];

/// Small files of the rootfs: path, mode, content. No `udhcpc` in rcS (unlike the
/// template): without a DHCP server it would block the boot.
const FILES: &[(&str, u32, &str)] = &[
    ("etc/passwd", 0o644, "root:x:0:0:root:/root:/bin/sh\n"),
    ("etc/group", 0o644, "root:x:0:root\n"),
    ("etc/shadow", 0o600, ""),
    ("etc/fstab", 0o644, ""),
    ("etc/init.d/rcS", 0o744, "#!/bin/sh\n/bin/syslogd\n/bin/mount -a\n"),
    (
        "etc/inittab",
        0o644,
        "::sysinit:/etc/init.d/rcS\ntty1::respawn:/bin/getty -L tty1 115200 vt100\nconsole::askfirst:/bin/sh\n",
    ),
];

/// Builds the rootfs at `rootfs` (idempotent: existing entries are kept) and shifts
/// ownership of everything to `base` (root inside = `base` outside).
pub fn build(rootfs: &Path, base: u32) -> Result<(), ProvisionError> {
    let ctx = |what: &str, p: &Path| format!("{what} {}", p.display());
    mkdir_mode(rootfs, 0o755)?;
    for (dir, mode) in DIRS {
        mkdir_mode(&rootfs.join(dir), *mode)?;
    }
    for (file, mode, content) in FILES {
        let path = rootfs.join(file);
        fs::write(&path, content).context(|| ctx("write", &path))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(*mode))
            .context(|| ctx("chmod", &path))?;
    }
    let busybox = rootfs.join("bin/busybox");
    fs::copy(BUSYBOX, &busybox).context(|| format!("copy {BUSYBOX} to {}", busybox.display()))?;
    fs::set_permissions(&busybox, fs::Permissions::from_mode(0o755))
        .context(|| ctx("chmod", &busybox))?;
    let list = host::run(Command::new(BUSYBOX).arg("--list"))?;
    for applet in list
        .lines()
        .map(str::trim)
        .filter(|a| !a.is_empty() && *a != "busybox")
    {
        let link = rootfs.join("bin").join(applet);
        match symlink("busybox", &link) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                return Err(ProvisionError::io(ctx("symlink", &link), e))
            }
            _ => {}
        }
    }
    let init = rootfs.join("sbin/init");
    match fs::hard_link(&busybox, &init) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
            return Err(ProvisionError::io(ctx("link", &init), e))
        }
        _ => {}
    }
    shift_owner(rootfs, base)
}

fn mkdir_mode(dir: &Path, mode: u32) -> Result<(), ProvisionError> {
    match fs::create_dir(dir) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
            return Err(ProvisionError::io(format!("mkdir {}", dir.display()), e))
        }
        _ => {}
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(mode))
        .context(|| format!("chmod {}", dir.display()))
}

/// `chown -h -R` to `base:base`: every file was created by root (0:0), so shifting by
/// `base` means setting exactly `base`.
fn shift_owner(path: &Path, base: u32) -> Result<(), ProvisionError> {
    std::os::unix::fs::lchown(path, Some(base), Some(base))
        .context(|| format!("chown {}", path.display()))?;
    let meta = fs::symlink_metadata(path).context(|| format!("stat {}", path.display()))?;
    if meta.is_dir() {
        for entry in fs::read_dir(path).context(|| format!("read {}", path.display()))? {
            let entry = entry.context(|| format!("read {}", path.display()))?;
            shift_owner(&entry.path(), base)?;
        }
    }
    Ok(())
}
