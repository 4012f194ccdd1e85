//! Cgroup hierarchies of the host and the container's entry cgroup in each of them.
//!
//! The exec placement puts the runner into the container's *entry cgroup* in every mounted
//! hierarchy (each cgroup v1 controller and the v2 one), as osctld's `CGroup.mkpath_all`
//! does. The path is created on first use by the runner, still root ([`create_entry`]:
//! the leaf is chowned to the container's ugid so that LXC, running as that user, can
//! create the container's own cgroups below it); the runner enters it by writing `0` to the
//! pre-computed `cgroup.procs` files ([`procs_files`]), except in the cgroup v2 hierarchy
//! when the frontend could start it there directly (`clone3` with `CLONE_INTO_CGROUP`,
//! see `docs/design.md`).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// One mounted cgroup hierarchy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hierarchy {
    /// Where it is mounted, e.g. `/sys/fs/cgroup/memory` or `/sys/fs/cgroup/unified`.
    pub mount_point: PathBuf,
    /// `true` for the cgroup v2 (unified) hierarchy.
    pub unified: bool,
    /// v1 controllers bound to it (`memory`, `cpu`, `name=systemd`, ...); empty for v2.
    pub controllers: Vec<String>,
}

impl Hierarchy {
    /// The absolute directory of `relative` (as `a/b/c`) in this hierarchy.
    pub fn path_of(&self, relative: &str) -> PathBuf {
        self.mount_point.join(relative.trim_start_matches('/'))
    }

    /// Whether this hierarchy carries a v1 controller of that name.
    pub fn has_controller(&self, name: &str) -> bool {
        self.controllers.iter().any(|c| c == name)
    }
}

/// All cgroup hierarchies mounted on the host, in mount order.
///
/// Read once from `/proc/self/mountinfo` and cached: hierarchies are mounted at boot and a
/// daemon must not re-parse mountinfo on every command.
pub fn hierarchies() -> &'static [Hierarchy] {
    static CACHE: OnceLock<Vec<Hierarchy>> = OnceLock::new();
    CACHE.get_or_init(|| {
        fs::read_to_string("/proc/self/mountinfo")
            .map(|text| parse_mountinfo(&text))
            .unwrap_or_default()
    })
}

/// Parses the cgroup mounts out of a `/proc/<pid>/mountinfo` text. A hierarchy mounted
/// twice is listed once (the first mount wins).
pub(crate) fn parse_mountinfo(text: &str) -> Vec<Hierarchy> {
    let mut found: Vec<Hierarchy> = Vec::new();
    for line in text.lines() {
        // Fields: id parent major:minor root mount-point options [optional...] - fstype source super-options
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mut right_fields = right.split(' ');
        let fstype = right_fields.next().unwrap_or("");
        let _source = right_fields.next();
        let super_opts = right_fields.next().unwrap_or("");
        let left_fields: Vec<&str> = left.split(' ').collect();
        let Some(mount_point) = left_fields.get(4) else {
            continue;
        };
        let mount_point = PathBuf::from(ctl_process::unescape_mountinfo(mount_point));
        let hierarchy = match fstype {
            "cgroup2" => Hierarchy {
                mount_point,
                unified: true,
                controllers: Vec::new(),
            },
            "cgroup" => {
                let controllers = super_opts
                    .split(',')
                    .filter(|o| !matches!(*o, "rw" | "ro") && !o.starts_with("release_agent"))
                    .filter(|o| !o.contains('=') || o.starts_with("name="))
                    .filter(|o| {
                        !matches!(
                            *o,
                            "clone_children" | "noprefix" | "xattr" | "cpuset_v2_mode"
                        )
                    })
                    .map(str::to_owned)
                    .collect();
                Hierarchy {
                    mount_point,
                    unified: false,
                    controllers,
                }
            }
            _ => continue,
        };
        let duplicate = found
            .iter()
            .any(|h| h.unified == hierarchy.unified && h.controllers == hierarchy.controllers);
        if !duplicate {
            found.push(hierarchy);
        }
    }
    found
}

/// Validates a relative cgroup path: non-empty components, no `.`/`..`, no NUL.
pub fn validate_relative(relative: &str) -> io::Result<()> {
    let trimmed = relative.trim_matches('/');
    if trimmed.is_empty()
        || trimmed
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == ".." || c.contains('\0'))
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid cgroup path {relative:?}: expected a relative path like a/b/c"),
        ));
    }
    Ok(())
}

/// Creates `relative` in every hierarchy (like `mkdir -p`), chowning the leaf (the entry
/// cgroup itself, with its files) to `ugid` when it creates it, and fills `cpuset.cpus`/`cpuset.mems` of new v1 cpuset cgroups from
/// their parent (the kernel refuses tasks in a cpuset cgroup without them).
///
/// Cheap when the path already exists: one `mkdir` per hierarchy that fails with EEXIST.
pub fn create_entry(relative: &str, ugid: u32) -> io::Result<()> {
    validate_relative(relative)?;
    for h in hierarchies() {
        mkpath(h, relative.trim_matches('/'), ugid)
            .map_err(|e| with_path(e, &h.path_of(relative)))?;
    }
    Ok(())
}

/// [`create_entry`] for an entry cgroup of a container whose own cgroup `container` (where
/// LXC puts the payload and its monitor) is another one, usually the entry's parent
/// (osctld's layout: the entry is `<container>/lxc.monitor.<id>`). Where `container` is
/// missing in a hierarchy it is created first and owned by `ugid` too: LXC, running as
/// the container's user, must be able to create the payload cgroup in it. An existing
/// container cgroup is left as it is (who owns it is the daemon's business). `container`
/// equal to the entry, or `None`, is plain [`create_entry`].
pub(crate) fn create_entry_in(container: Option<&str>, entry: &str, ugid: u32) -> io::Result<()> {
    validate_relative(entry)?;
    let entry = entry.trim_matches('/');
    let container = match container {
        Some(c) if c.trim_matches('/') != entry => {
            validate_relative(c)?;
            Some(c.trim_matches('/'))
        }
        _ => None,
    };
    for h in hierarchies() {
        if let Some(container) = container {
            if !h.path_of(container).is_dir() {
                mkpath(h, container, ugid).map_err(|e| with_path(e, &h.path_of(container)))?;
            }
        }
        mkpath(h, entry, ugid).map_err(|e| with_path(e, &h.path_of(entry)))?;
    }
    Ok(())
}

/// Moves the calling process into `relative` in every hierarchy, by writing `0` to each
/// `cgroup.procs` (the cheap self-move, ~10 µs per hierarchy here). The process needs
/// write access to those files (as the container's user: its own cgroups) and, in v2, to
/// the `cgroup.procs` of the common ancestor of where it is and where it goes. An error
/// names the file. Used by commands that start a container from an entry cgroup that is
/// not the container's cgroup: LXC creates the payload below the cgroup its caller is in.
pub fn enter(relative: &str) -> io::Result<()> {
    validate_relative(relative)?;
    for procs in procs_files(relative) {
        let written = fs::OpenOptions::new()
            .write(true)
            .open(&procs)
            .and_then(|mut file| io::Write::write_all(&mut file, b"0"));
        written.map_err(|e| with_path(e, &procs))?;
    }
    Ok(())
}

fn mkpath(h: &Hierarchy, relative: &str, ugid: u32) -> io::Result<()> {
    let leaf = h.path_of(relative);
    match fs::create_dir(&leaf) {
        Ok(()) => return init_created(h, &leaf, Some(ugid)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    // Top down, so that each new or unfinished cgroup copies a complete parent. Existing
    // ones are completed too: whoever created them may have been killed half-way (an
    // empty cpuset refuses every process with ENOSPC). Parents stay root's: they are
    // shared by many containers.
    let mut dir = h.mount_point.clone();
    let components: Vec<&str> = relative.split('/').collect();
    for (i, component) in components.iter().enumerate() {
        dir.push(component);
        let owner = (i + 1 == components.len()).then_some(ugid);
        match fs::create_dir(&dir) {
            Ok(()) => init_created(h, &dir, owner)?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => complete(h, &dir, owner)?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn init_created(h: &Hierarchy, dir: &Path, owner: Option<u32>) -> io::Result<()> {
    if h.has_controller("cpuset") {
        if let Some(parent) = dir.parent() {
            for file in ["cpuset.cpus", "cpuset.mems"] {
                let value = fs::read(parent.join(file))?;
                fs::write(dir.join(file), value)?;
            }
        }
    }
    let Some(ugid) = owner else { return Ok(()) };
    // Files inside (cgroup.procs, freezer.state, ...) must be the user's too, so that LXC
    // running as the user can move its processes and manage the subtree. The directory
    // itself last: its owner says the whole cgroup is done (see `complete`).
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        std::os::unix::fs::chown(entry.path(), Some(ugid), Some(ugid))?;
    }
    std::os::unix::fs::chown(dir, Some(ugid), Some(ugid))?;
    Ok(())
}

/// Finishes what an interrupted [`init_created`] left undone: an empty cpuset, an entry
/// cgroup not yet handed to its user.
fn complete(h: &Hierarchy, dir: &Path, owner: Option<u32>) -> io::Result<()> {
    if h.has_controller("cpuset") {
        if let Some(parent) = dir.parent() {
            for file in ["cpuset.cpus", "cpuset.mems"] {
                if fs::read(dir.join(file))?.trim_ascii().is_empty() {
                    fs::write(dir.join(file), fs::read(parent.join(file))?)?;
                }
            }
        }
    }
    let Some(ugid) = owner else { return Ok(()) };
    use std::os::unix::fs::MetadataExt;
    if fs::metadata(dir)?.uid() != ugid {
        init_created(h, dir, Some(ugid))?;
    }
    Ok(())
}

/// The `cgroup.procs` file of `relative` in every hierarchy, in [`hierarchies`] order.
pub fn procs_files(relative: &str) -> Vec<PathBuf> {
    hierarchies()
        .iter()
        .map(|h| h.path_of(relative).join("cgroup.procs"))
        .collect()
}

/// Removes `relative` and everything below it from every hierarchy, deepest first.
/// A missing path is not an error. Fails with EBUSY if a cgroup still has processes.
/// [`crate::Launcher::remove_entry_cgroup`] also forgets the `cgroup.procs` files a launcher
/// kept open there; a file kept across a removal only costs the next runner a fallback.
pub fn remove_entry(relative: &str) -> io::Result<()> {
    validate_relative(relative)?;
    for h in hierarchies() {
        let path = h.path_of(relative);
        remove_tree(&path).map_err(|e| with_path(e, &path))?;
    }
    Ok(())
}

fn remove_tree(dir: &Path) -> io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            remove_tree(&entry.path())?;
        }
    }
    match fs::remove_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// The pids in `relative` of the hierarchy mounted at or carrying `controller` (for v2 pass
/// `"unified"`), recursively. Used to find what a runner left behind.
pub fn pids_in(relative: &str, controller: &str) -> io::Result<Vec<i32>> {
    let Some(h) = hierarchies()
        .iter()
        .find(|h| (controller == "unified" && h.unified) || h.has_controller(controller))
    else {
        return Ok(Vec::new());
    };
    pids_below(&h.path_of(relative))
}

/// The pids in the cgroup directory `dir` (of any hierarchy) and in every cgroup below it.
pub fn pids_below(dir: &Path) -> io::Result<Vec<i32>> {
    let mut pids = Vec::new();
    collect_pids(dir, &mut pids)?;
    Ok(pids)
}

fn collect_pids(dir: &Path, pids: &mut Vec<i32>) -> io::Result<()> {
    let text = match fs::read_to_string(dir.join("cgroup.procs")) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    pids.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            collect_pids(&entry.path(), pids)?;
        }
    }
    Ok(())
}

fn with_path(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
30 24 0:26 / /sys/fs/cgroup rw,nosuid - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 30 0:28 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset,clone_children
33 30 0:29 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
34 30 0:30 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
35 30 0:31 / /sys/fs/cgroup/my\\040dir rw,relatime - cgroup cgroup rw,release_agent=/x,memory
";

    #[test]
    fn parses_hybrid_layout() {
        let h = parse_mountinfo(HYBRID);
        assert_eq!(h.len(), 5);
        assert_eq!(h[0].controllers, vec!["cpu"]);
        assert_eq!(h[1].controllers, vec!["cpuset"]);
        assert_eq!(h[2].controllers, vec!["name=systemd"]);
        assert!(h[3].unified && h[3].controllers.is_empty());
        assert_eq!(h[4].mount_point, PathBuf::from("/sys/fs/cgroup/my dir"));
        assert_eq!(h[4].controllers, vec!["memory"]);
    }

    #[test]
    fn rejects_bad_relative_paths() {
        for bad in ["", "/", "a//b", "a/../b", "./a", "a/."] {
            assert!(validate_relative(bad).is_err(), "{bad:?} accepted");
        }
        validate_relative("osctl/pool.default/user.x/ct.y/user-owned").unwrap();
    }
}
