//! The parts of a container's LXC config that root-side code needs (the rootfs path and
//! the root host ids of `lxc.idmap`), read without liblxc: loading a config that the
//! container's user may edit with liblxc as root would let that user name files for root
//! to open (such as `lxc.log.file`). Also [`open_rootfs`], which opens the rootfs such a
//! config names beneath the same checks.
//!
//! Used by root-side code: the frontends of WithRootfs, WithMountns and Runscript, the
//! fork-as-root runners of WithRootfs and WithMountns, and the init-pid check of
//! `commands::support`.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;
use nix::unistd::Uid;

use crate::files::require_regular;

/// What root-side code needs from a container's LXC config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LxcConfig {
    /// The config file it came from.
    pub file: PathBuf,
    /// `lxc.rootfs.path` without a `dir:` prefix.
    pub rootfs: PathBuf,
    /// The host uid and gid of the container's root (0 without an id map).
    pub root_uid: u32,
    pub root_gid: u32,
    /// The LXC home the config was read from (empty from [`parse_lxc_config`]).
    pub lxc_home: PathBuf,
    /// The config file's owner, the container's user (0 from [`parse_lxc_config`]).
    pub owner: u32,
}

/// Why a config is not usable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Largest config file read.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Reads `<lxc_home>/<id>/config`: the rootfs path and the root host ids. `lxc.include`
/// is not followed (the keys must be in the file itself).
///
/// The container's user owns the container directory and the config, and could replace
/// either with a symlink to another container's (whose config passes every check, being
/// that container's own): so nothing below `lxc_home` is reached through a symlink
/// (`openat2` from an fd of `lxc_home`, `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`), and the
/// file must belong to `owner`, the container's user (`Container::ugid`; runners, which
/// are not told it, pass [`container_user_uid`]). No FIFO either (root would wait forever
/// for a writer): only a regular file is read.
pub fn read_lxc_config(lxc_home: &Path, id: &str, owner: u32) -> Result<LxcConfig, ConfigError> {
    if id.is_empty() || id.contains('/') || id == "." || id == ".." {
        return Err(ConfigError(format!("bad container name {id:?}")));
    }
    let file = lxc_home.join(id).join("config");
    let cannot = |e: &dyn fmt::Display| {
        ConfigError(format!(
            "cannot read the LXC config {}: {e}",
            file.display()
        ))
    };
    let home = open_dir_nofollow(lxc_home).map_err(|e| cannot(&e))?;
    let how = OpenHow::new()
        .flags(
            OFlag::O_RDONLY
                | OFlag::O_NOFOLLOW
                | OFlag::O_NONBLOCK
                | OFlag::O_NOCTTY
                | OFlag::O_CLOEXEC,
        )
        .resolve(NO_SYMLINKS_BENEATH);
    let fd = nix::fcntl::openat2(&home, Path::new(id).join("config").as_path(), how)
        .map_err(|e| cannot(&describe_open_error(&home, lxc_home, &[id, "config"], e)))?;
    let st = nix::sys::stat::fstat(&fd).map_err(|e| cannot(&e))?;
    require_regular(file.display(), st.st_mode).map_err(|e| cannot(&e))?;
    if st.st_uid != owner {
        return Err(ConfigError(format!(
            "the LXC config {} is owned by {}, not by the container's user ({}); refusing it",
            file.display(),
            user_label(st.st_uid),
            user_label(owner)
        )));
    }
    let mut text = String::new();
    File::from(fd)
        .take(MAX_CONFIG_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| cannot(&e))?;
    let mut config = parse_lxc_config(&text, file)?;
    config.lxc_home = lxc_home.to_owned();
    config.owner = owner;
    check_delegated(&config, owner)?;
    Ok(config)
}

/// The container's user as a runner that stays root can tell it (the envelope names no
/// uid for the fork-as-root placement): the owner of the LXC home, or, where root owns
/// that, of the user's home. Only root can give a directory away, so the container's user
/// cannot change either. The frontends check the config against `Container::ugid`
/// itself before the runner starts; this is the runner's own check.
pub fn container_user_uid(lxc_home: &Path, user_home: &Path) -> Result<u32, ConfigError> {
    for dir in [lxc_home, user_home] {
        let fd = open_dir_nofollow(dir).map_err(|e| {
            ConfigError(format!(
                "cannot tell the container's user: {}: {e}",
                dir.display()
            ))
        })?;
        let st = nix::sys::stat::fstat(&fd).map_err(|e| {
            ConfigError(format!(
                "cannot tell the container's user: {}: {e}",
                dir.display()
            ))
        })?;
        if st.st_uid != 0 {
            return Ok(st.st_uid);
        }
    }
    Err(ConfigError(format!(
        "cannot tell the container's user: root owns both {} and {}",
        lxc_home.display(),
        user_home.display()
    )))
}

/// Resolution inside a tree the container's user controls: no symlink at all, nothing
/// outside the starting directory.
const NO_SYMLINKS_BENEATH: ResolveFlag = ResolveFlag::RESOLVE_BENEATH
    .union(ResolveFlag::RESOLVE_NO_SYMLINKS)
    .union(ResolveFlag::RESOLVE_NO_MAGICLINKS);

/// Opens the directory `dir` (given by root: the daemon's record) as a path handle,
/// refusing a symlink as its last component.
fn open_dir_nofollow(dir: &Path) -> Result<OwnedFd, String> {
    nix::fcntl::open(
        dir,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        Errno::ENOTDIR | Errno::ELOOP if is_symlink_at(None, dir) => {
            "it is a symlink; refusing to follow it".to_owned()
        }
        e => e.desc().to_owned(),
    })
}

/// Whether `path` (relative to `dir`, or as is) is a symlink.
fn is_symlink_at(dir: Option<&OwnedFd>, path: &Path) -> bool {
    let st = match dir {
        Some(dir) => nix::sys::stat::fstatat(dir, path, AtFlags::AT_SYMLINK_NOFOLLOW),
        None => nix::sys::stat::lstat(path),
    };
    st.is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFLNK)
}

/// Why opening `parts` below `base` (`base_path` on the host) failed, naming the symlink
/// when that was the reason (`RESOLVE_NO_SYMLINKS` says only `ELOOP`).
fn describe_open_error(base: &OwnedFd, base_path: &Path, parts: &[&str], e: Errno) -> String {
    if matches!(e, Errno::ELOOP | Errno::EXDEV | Errno::ENOTDIR) {
        let mut rel = PathBuf::new();
        for part in parts {
            rel.push(part);
            if is_symlink_at(Some(base), &rel) {
                return format!(
                    "{} is a symlink; refusing to follow it",
                    base_path.join(&rel).display()
                );
            }
        }
        if e == Errno::EXDEV {
            return format!("it leads out of {}; refusing it", base_path.display());
        }
    }
    e.desc().to_owned()
}

/// "uid N (name)" or "uid N".
fn user_label(uid: u32) -> String {
    match nix::unistd::User::from_uid(Uid::from_raw(uid)) {
        Ok(Some(user)) => format!("uid {uid} ({})", user.name),
        _ => format!("uid {uid}"),
    }
}

/// A config its owner could edit must map the container's root to ids delegated to that
/// owner (`/etc/subuid`, `/etc/subgid`, as `newuidmap` requires): else root would chroot
/// into, write into or become whatever the config names (host root, another user).
fn check_delegated(config: &LxcConfig, owner: u32) -> Result<(), ConfigError> {
    if owner == 0 {
        return Ok(());
    }
    let name = nix::unistd::User::from_uid(Uid::from_raw(owner))
        .ok()
        .flatten()
        .map(|u| u.name);
    for (kind, id, table) in [
        ("uid", config.root_uid, "/etc/subuid"),
        ("gid", config.root_gid, "/etc/subgid"),
    ] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        let delegated = text.lines().any(|line| {
            let f: Vec<&str> = line.trim().split(':').collect();
            let (Some(who), Some(Ok(start)), Some(Ok(count))) = (
                f.first(),
                f.get(1).map(|v| v.parse::<u64>()),
                f.get(2).map(|v| v.parse::<u64>()),
            ) else {
                return false;
            };
            let mine = *who == owner.to_string() || Some(*who) == name.as_deref();
            mine && (start..start.saturating_add(count)).contains(&u64::from(id))
        });
        if !delegated {
            return Err(ConfigError(format!(
                "the LXC config {} maps the container's root to host {kind} {id}, which {table} does not delegate to its owner (uid {owner}); refusing it",
                config.file.display()
            )));
        }
    }
    Ok(())
}

/// [`read_lxc_config`] on text.
pub fn parse_lxc_config(text: &str, file: PathBuf) -> Result<LxcConfig, ConfigError> {
    let mut rootfs = None;
    let mut maps: Vec<(char, u64, u64, u64)> = Vec::new();
    let mut includes = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        match key {
            "lxc.rootfs.path" => rootfs = Some(value.to_owned()),
            "lxc.include" => includes = true,
            "lxc.idmap" if value.is_empty() => maps.clear(),
            "lxc.idmap" => {
                let f: Vec<&str> = value.split_whitespace().collect();
                let parsed = match f.as_slice() {
                    [kind @ ("u" | "g" | "b"), ct, host, range] => {
                        match (ct.parse::<u64>(), host.parse::<u64>(), range.parse::<u64>()) {
                            (Ok(ct), Ok(host), Ok(range)) => {
                                Some((kind.chars().next().unwrap_or('u'), ct, host, range))
                            }
                            _ => None,
                        }
                    }
                    _ => None,
                };
                maps.push(parsed.ok_or_else(|| {
                    ConfigError(format!("bad lxc.idmap {value:?} in {}", file.display()))
                })?);
            }
            _ => {}
        }
    }
    let Some(rootfs) = rootfs.filter(|r| !r.is_empty()) else {
        let hint = if includes {
            " (lxc.include is not followed)"
        } else {
            ""
        };
        return Err(ConfigError(format!(
            "no lxc.rootfs.path in {}{hint}",
            file.display()
        )));
    };
    let path = match rootfs.split_once(':') {
        Some(("dir", path)) => path,
        Some((kind, _)) if !rootfs.starts_with('/') => {
            return Err(ConfigError(format!(
                "rootfs {rootfs:?} of {}: only directory rootfs (`dir:` or a plain path) are supported, not {kind:?}",
                file.display()
            )))
        }
        _ => rootfs.as_str(),
    };
    if !path.starts_with('/') {
        return Err(ConfigError(format!(
            "rootfs {rootfs:?} of {} is not an absolute path",
            file.display()
        )));
    }
    let root_of = |kind: char| -> Result<u32, ConfigError> {
        if maps.is_empty() {
            return Ok(0);
        }
        let host = maps
            .iter()
            .filter(|(k, ..)| *k == kind || *k == 'b')
            .find(|(_, ct, _, range)| *ct == 0 && *range > 0)
            .map(|(_, _, host, _)| *host);
        match host.map(u32::try_from) {
            Some(Ok(id)) => Ok(id),
            _ => Err(ConfigError(format!(
                "no usable lxc.idmap for {kind} 0 in {}",
                file.display()
            ))),
        }
    };
    Ok(LxcConfig {
        rootfs: PathBuf::from(path),
        root_uid: root_of('u')?,
        root_gid: root_of('g')?,
        file,
        lxc_home: PathBuf::new(),
        owner: 0,
    })
}

/// Opens the rootfs directory, refusing a symlink and a directory the container's root
/// does not own (a container user who can edit its config must not be able to point root
/// at a host directory).
///
/// A rootfs inside the container user's trees (its LXC home, or `user_home` where the
/// user owns it) is reached from that directory without following any symlink: the user
/// could otherwise put one on the way to another container's rootfs. Elsewhere only the
/// last component must not be a symlink. A path with `..` is refused everywhere.
pub fn open_rootfs(config: &LxcConfig, user_home: &Path) -> Result<OwnedFd, ConfigError> {
    let path = &config.rootfs;
    let cannot = |e: &dyn fmt::Display| {
        ConfigError(format!(
            "cannot open the rootfs {} (named by {}): {e}",
            path.display(),
            config.file.display()
        ))
    };
    if path
        .components()
        .any(|c| c == std::path::Component::ParentDir)
    {
        return Err(cannot(&"it contains \"..\"; refusing it"));
    }
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut anchors: Vec<&Path> = Vec::new();
    if !user_home.as_os_str().is_empty() {
        anchors.push(user_home);
    }
    if !config.lxc_home.as_os_str().is_empty() {
        anchors.push(&config.lxc_home);
    }
    let mut opened = None;
    for anchor in anchors {
        let Ok(rest) = path.strip_prefix(anchor) else {
            continue;
        };
        let base =
            open_dir_nofollow(anchor).map_err(|e| cannot(&format!("{}: {e}", anchor.display())))?;
        let st = nix::sys::stat::fstat(&base).map_err(|e| cannot(&e))?;
        // The user's home counts only where it is the user's: a home of `/` is not a tree
        // the user controls, and its paths may pass through the host's own symlinks.
        if anchor == user_home && anchor != config.lxc_home && st.st_uid != config.owner {
            continue;
        }
        let target = if rest.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rest
        };
        let how = OpenHow::new().flags(flags).resolve(NO_SYMLINKS_BENEATH);
        let fd = nix::fcntl::openat2(&base, target, how).map_err(|e| {
            let parts: Vec<&str> = rest.iter().filter_map(|p| p.to_str()).collect();
            cannot(&describe_open_error(&base, anchor, &parts, e))
        })?;
        opened = Some(fd);
        break;
    }
    let fd = match opened {
        Some(fd) => fd,
        None => nix::fcntl::open(path, flags, Mode::empty()).map_err(|e| match e {
            Errno::ENOTDIR | Errno::ELOOP if is_symlink_at(None, path) => {
                cannot(&"it is a symlink; refusing to follow it")
            }
            e => cannot(&e.desc()),
        })?,
    };
    let st = nix::sys::stat::fstat(&fd).map_err(|e| cannot(&e))?;
    if st.st_uid != config.root_uid {
        return Err(ConfigError(format!(
            "the rootfs {} is owned by uid {}, not by the container's root (uid {}); refusing it",
            path.display(),
            st.st_uid,
            config.root_uid
        )));
    }
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<LxcConfig, ConfigError> {
        parse_lxc_config(text, PathBuf::from("/c/config"))
    }

    #[test]
    fn rootfs_and_ids() {
        let c = parse(
            "# x\nlxc.rootfs.path = dir:/var/lib/ct/rootfs\nlxc.idmap = u 0 100000 65536\nlxc.idmap = g 0 200000 65536\n",
        )
        .unwrap();
        assert_eq!(c.rootfs, PathBuf::from("/var/lib/ct/rootfs"));
        assert_eq!((c.root_uid, c.root_gid), (100000, 200000));
        let c = parse("lxc.rootfs.path=/r\n").unwrap();
        assert_eq!(
            (c.rootfs.to_str().unwrap(), c.root_uid, c.root_gid),
            ("/r", 0, 0)
        );
        let c = parse("lxc.rootfs.path = /old\nlxc.rootfs.path = /new\nlxc.idmap = b 0 5 10\n")
            .unwrap();
        assert_eq!(
            (c.rootfs.to_str().unwrap(), c.root_uid, c.root_gid),
            ("/new", 5, 5)
        );
    }

    #[test]
    fn refusals() {
        assert!(parse("lxc.uts.name = x\n")
            .unwrap_err()
            .0
            .contains("no lxc.rootfs.path"));
        assert!(parse("lxc.include = /x\n")
            .unwrap_err()
            .0
            .contains("not followed"));
        assert!(parse("lxc.rootfs.path = zfs:tank/ct\n")
            .unwrap_err()
            .0
            .contains("\"zfs\""));
        assert!(parse("lxc.rootfs.path = dir:rel\n")
            .unwrap_err()
            .0
            .contains("absolute"));
        assert!(parse("lxc.rootfs.path = /r\nlxc.idmap = u 1 5 10\n")
            .unwrap_err()
            .0
            .contains("u 0"));
        assert!(parse("lxc.rootfs.path = /r\nlxc.idmap = u x 5 10\n")
            .unwrap_err()
            .0
            .contains("bad lxc.idmap"));
    }
}
