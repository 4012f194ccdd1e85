//! Host-wide state we read and edit: users, groups, subordinate ids, lxc-usernet, and the
//! lock that serialises all of it.
//!
//! The lock is host-wide (not per state directory) on purpose: test binaries run in
//! parallel, each with its own temporary state directory, but they all allocate from the
//! same uid space and edit the same `/etc/subuid`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{IoContext, ProvisionError};

/// The host-wide lock file.
pub const LOCK_FILE: &str = "/run/ctl-provision.lock";
pub const PASSWD: &str = "/etc/passwd";
pub const GROUP: &str = "/etc/group";
pub const SUBUID: &str = "/etc/subuid";
pub const SUBGID: &str = "/etc/subgid";
pub const USERNET: &str = "/etc/lxc/lxc-usernet";

/// Size of every container's subordinate id range (a full 16-bit id space).
pub const ID_RANGE: u32 = 65536;
/// Container users get uid = gid from this range. Above what `useradd` allocates by itself
/// (`UID_MAX`) and below the subordinate ranges we hand out.
pub const UGID_MIN: u32 = 900_000;
pub const UGID_MAX: u32 = 999_999;
/// Subordinate id ranges start here, above Debian's `SUB_UID_MAX` (600100000) so that
/// ranges `useradd` gives to normal users never collide with ours.
pub const SUBID_MIN: u32 = 1_000_000_000;
pub const SUBID_MAX: u32 = 4_000_000_000;

/// An exclusive `flock` on [`LOCK_FILE`], released on drop.
pub struct HostLock {
    _file: File,
}

impl HostLock {
    pub fn acquire() -> Result<Self, ProvisionError> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(LOCK_FILE)
            .context(|| format!("open {LOCK_FILE}"))?;
        file.lock().context(|| format!("flock {LOCK_FILE}"))?;
        Ok(HostLock { _file: file })
    }
}

/// One `/etc/passwd` entry (the fields we need).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswdEntry {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub gecos: String,
}

/// One `/etc/group` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupEntry {
    pub name: String,
    pub gid: u32,
}

/// One `/etc/subuid` or `/etc/subgid` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubidEntry {
    pub owner: String,
    pub start: u64,
    pub count: u64,
}

pub fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(PasswdEntry {
                name: (*f.first()?).to_owned(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
                gecos: f.get(4).copied().unwrap_or("").to_owned(),
            })
        })
        .collect()
}

pub fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(GroupEntry {
                name: (*f.first()?).to_owned(),
                gid: f.get(2)?.parse().ok()?,
            })
        })
        .collect()
}

pub fn parse_subid(text: &str) -> Vec<SubidEntry> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.trim().split(':');
            Some(SubidEntry {
                owner: f.next()?.to_owned(),
                start: f.next()?.parse().ok()?,
                count: f.next()?.parse().ok()?,
            })
        })
        .collect()
}

/// Reads a host file; a missing one reads as empty (fresh machines lack /etc/subuid or
/// /etc/lxc/lxc-usernet).
pub fn read(path: &str) -> Result<String, ProvisionError> {
    match fs::read_to_string(path) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(ProvisionError::io(format!("read {path}"), e)),
    }
}

pub fn passwd() -> Result<Vec<PasswdEntry>, ProvisionError> {
    Ok(parse_passwd(&read(PASSWD)?))
}

pub fn groups() -> Result<Vec<GroupEntry>, ProvisionError> {
    Ok(parse_group(&read(GROUP)?))
}

/// Subordinate id lines of both files.
pub fn all_subids() -> Result<Vec<SubidEntry>, ProvisionError> {
    let mut all = parse_subid(&read(SUBUID)?);
    all.extend(parse_subid(&read(SUBGID)?));
    Ok(all)
}

/// The smallest uid = gid in our range used by no user, no group, and no subordinate range.
pub fn free_ugid() -> Result<u32, ProvisionError> {
    let users = passwd()?;
    let groups = groups()?;
    let subids = all_subids()?;
    (UGID_MIN..=UGID_MAX)
        .find(|&id| {
            !users.iter().any(|u| u.uid == id || u.gid == id)
                && !groups.iter().any(|g| g.gid == id)
                && !subids.iter().any(|s| overlaps(s, u64::from(id), 1))
        })
        .ok_or(ProvisionError::Exhausted("uid/gid for a container user"))
}

/// The smallest [`ID_RANGE`]-aligned base whose range overlaps no line of either file.
pub fn free_subid_base() -> Result<u32, ProvisionError> {
    let subids = all_subids()?;
    (SUBID_MIN..SUBID_MAX)
        .step_by(ID_RANGE as usize)
        .find(|&base| {
            !subids
                .iter()
                .any(|s| overlaps(s, u64::from(base), u64::from(ID_RANGE)))
        })
        .ok_or(ProvisionError::Exhausted("subordinate id range"))
}

fn overlaps(entry: &SubidEntry, start: u64, count: u64) -> bool {
    entry.start < start + count && start < entry.start + entry.count
}

/// Rewrites `path` atomically (temp file, fsync, rename) keeping only the lines for which
/// `keep` holds, then appending `append`. Keeps the file's mode (0644 for a new one).
pub fn edit_lines(
    path: &str,
    keep: impl Fn(&str) -> bool,
    append: Option<&str>,
) -> Result<(), ProvisionError> {
    let old = read(path)?;
    let mut new: String = old
        .lines()
        .filter(|l| keep(l))
        .flat_map(|l| [l, "\n"])
        .collect();
    if let Some(line) = append {
        new.push_str(line);
        new.push('\n');
    }
    if new == old {
        return Ok(());
    }
    let mode = fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o644);
    write_atomic(Path::new(path), new.as_bytes(), mode)
}

/// Writes `path` atomically: a temp file beside it, fsync, rename, fsync of the directory.
/// Readers see the old or the new content, never a mix, even across a crash.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<(), ProvisionError> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp: PathBuf = dir.join(format!(".{file_name}.tmp.{}", std::process::id()));
    let result = (|| -> io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.context(|| format!("write {}", path.display()))
}

/// Runs a helper program, turning a non-zero exit into [`ProvisionError::Command`].
///
/// The helpers (`useradd`, `groupadd`, ...) run in a process group of their own, so that a
/// Ctrl-C at the terminal cannot kill one half-way through editing `/etc`; and the shadow
/// tools' "cannot lock ...; try again later" (another process, outside our own lock, is
/// editing the same file) is retried for a few seconds, as the message asks.
pub fn run(cmd: &mut Command) -> Result<String, ProvisionError> {
    use std::os::unix::process::CommandExt;
    let rendered = format!("{cmd:?}").replace('"', "");
    cmd.process_group(0);
    let started = std::time::Instant::now();
    let out = loop {
        let out = cmd.output().context(|| format!("spawn {rendered}"))?;
        let locked =
            !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("cannot lock");
        if locked && started.elapsed() < std::time::Duration::from_secs(10) {
            std::thread::sleep(std::time::Duration::from_millis(100));
            continue;
        }
        break out;
    };
    if !out.status.success() {
        return Err(ProvisionError::Command {
            command: rendered,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr)
                .trim()
                .replace('\n', "; "),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether this process runs as root (the owner of `/proc/self` is the effective uid).
pub fn effective_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_host_files() {
        let p = parse_passwd("root:x:0:0:root:/root:/bin/bash\nctl-a:x:900000:900000:ctl-provision:/h:/usr/sbin/nologin\nbad\n");
        assert_eq!(p.len(), 2);
        assert_eq!(
            p[1],
            PasswdEntry {
                name: "ctl-a".into(),
                uid: 900000,
                gid: 900000,
                gecos: "ctl-provision".into()
            }
        );
        let g = parse_group("root:x:0:\nctl-a:x:900000:\n");
        assert_eq!(
            g[1],
            GroupEntry {
                name: "ctl-a".into(),
                gid: 900000
            }
        );
        let s = parse_subid("u:100000:65536\n\nv:x:1\n");
        assert_eq!(
            s,
            vec![SubidEntry {
                owner: "u".into(),
                start: 100000,
                count: 65536
            }]
        );
    }

    #[test]
    fn overlap_is_half_open() {
        let e = SubidEntry {
            owner: "u".into(),
            start: 100,
            count: 10,
        };
        assert!(overlaps(&e, 109, 1));
        assert!(!overlaps(&e, 110, 5));
        assert!(!overlaps(&e, 90, 10));
        assert!(overlaps(&e, 90, 11));
    }
}
