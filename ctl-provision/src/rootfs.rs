//! A tiny busybox root file system, owned by the container's mapped ids.

use std::process::Command;

use crate::error::{IoContext, ProvisionError};
use crate::host;
use crate::safefs::Dir;

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

/// Builds the rootfs `name` in the container directory `parent` (idempotent: existing
/// entries are kept, the template's files rewritten) and gives everything it makes to
/// `base` (root inside = `base` outside).
///
/// The container's user owns `parent` and the container's root the rootfs: nothing here
/// follows a symlink (see `safefs`), a symlink where a directory is expected is refused,
/// and files are replaced, not written through. Only what the template makes is chowned:
/// whatever else is in the tree is the container's already.
pub fn build(parent: &Dir, name: &str, base: u32) -> Result<(), ProvisionError> {
    let root = parent.ensure_dir(name, 0o755, Some(base))?;
    for (dir, mode) in DIRS {
        let (up, leaf) = split(dir);
        in_dir(&root, up)?.ensure_dir(leaf, *mode, Some(base))?;
    }
    for (file, mode, content) in FILES {
        let (up, leaf) = split(file);
        in_dir(&root, up)?.write_file(leaf, content.as_bytes(), *mode, Some(base))?;
    }
    let bin = root.dir_at("bin")?;
    let busybox = std::fs::read(BUSYBOX).context(|| format!("read {BUSYBOX}"))?;
    bin.write_file("busybox", &busybox, 0o755, Some(base))?;
    let list = host::run(Command::new(BUSYBOX).arg("--list"))?;
    for applet in list
        .lines()
        .map(str::trim)
        .filter(|a| !a.is_empty() && *a != "busybox" && !a.contains('/'))
    {
        bin.ensure_symlink("busybox", applet, base)?;
    }
    bin.ensure_hard_link("busybox", &root.dir_at("sbin")?, "init")?;
    root.sync()
}

/// `("a/b", "c")` for `"a/b/c"`, `("", "c")` for `"c"`.
fn split(path: &str) -> (&str, &str) {
    path.rsplit_once('/').unwrap_or(("", path))
}

/// `dir` itself for `""`, else its subdirectory `rel`.
fn in_dir(dir: &Dir, rel: &str) -> Result<Dir, ProvisionError> {
    dir.dir_at(if rel.is_empty() { "." } else { rel })
}
