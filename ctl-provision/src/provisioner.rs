//! [`Provisioner`]: creates, loads, lists and destroys test containers.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use ctl_core::{cgroup, Container, Rlimit};

use crate::config::{self, Net};
use crate::error::{IoContext, ProvisionError};
use crate::host::{self, HostLock, ID_RANGE};
use crate::names;
use crate::oracle;
use crate::rootfs;
use crate::safefs::Dir;

/// The host bridge that veth containers join.
pub const BRIDGE: &str = "ctlbr0";
/// Parent of every container's cgroup tree (`ctl/<name>`).
pub const CGROUP_PARENT: &str = "ctl";
/// In [`Layout::Osctld`], the container's cgroup below its tree `ctl/<name>` (osctld's
/// `<group>/ct.<id>/user-owned`).
pub const OSCTLD_USER_OWNED: &str = "user-owned";
/// GECOS of the users we create; `destroy` refuses to delete users without it.
pub const USER_MARKER: &str = "ctl-provision test container";
/// Where the host-shared directory of every container appears inside it (see
/// [`Provisioner::shared_dir`]).
pub const SHARED_DIR_IN_CT: &str = "/run/ctl-shared";
/// Written into the container directory once the rootfs is complete.
const ROOTFS_DONE: &str = ".rootfs-done";

/// How a container's cgroups are laid out (recorded in its [`Container`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Layout {
    /// One cgroup `ctl/<name>`, owned by the container's user: runners enter it, and LXC
    /// puts `lxc.monitor.<name>` and `lxc.payload.<name>` below it
    /// (`entry_cgroup_path: None`).
    #[default]
    Default,
    /// osctld's: the container's cgroup is `ctl/<name>/user-owned` (owned by the user,
    /// below a root-owned `ctl/<name>`, like osctld's `.../ct.<id>/user-owned`), runners
    /// enter `ctl/<name>/user-owned/lxc.monitor.<name>` (also the user's), and the payload
    /// is that entry's sibling `ctl/<name>/user-owned/lxc.payload.<name>`.
    Osctld,
}

/// Options of [`Provisioner::create`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateOptions {
    /// Pool name recorded in the container (default `"default"`).
    pub pool: String,
    /// Networking (default [`Net::Empty`]).
    pub net: Net,
    /// Resource limits recorded in the container (default none).
    pub rlimits: BTreeMap<String, Rlimit>,
    /// The cgroup layout (default [`Layout::Default`]).
    pub layout: Layout,
}

impl Default for CreateOptions {
    fn default() -> Self {
        CreateOptions {
            pool: "default".to_owned(),
            net: Net::Empty,
            rlimits: BTreeMap::new(),
            layout: Layout::Default,
        }
    }
}

/// Provisions unprivileged busybox containers, each under its own throwaway system user,
/// with everything but host-wide entries (/etc files, users, cgroups, the bridge) kept in
/// one state directory:
///
/// ```text
/// <state>/containers/<name>.json        the ctl_core::Container record (written last)
/// <state>/homes/<user>/                 the user's home, with .cache/lxc/run
/// <state>/lxc/<user>/                   the user's LXC path (Container::lxc_home)
/// <state>/lxc/<user>/<name>/config      LXC config
/// <state>/lxc/<user>/<name>/rootfs/     busybox rootfs owned by the mapped ids
/// <state>/lxc/<user>/<name>/<name>.log  LXC log file
/// <state>/shared/<name>/                host-shared directory (root's, a shared mount)
/// ```
///
/// The host-shared directory is osctld's way of getting a mount into a running container:
/// it is a bind mount onto itself with shared propagation, bind-mounted into the container
/// at [`SHARED_DIR_IN_CT`] as a slave, so that whatever the host mounts below it appears
/// inside, where the `Mount` command moves it to its final place.
#[derive(Clone, Debug)]
pub struct Provisioner {
    state_dir: PathBuf,
}

impl Provisioner {
    /// Uses (and creates) `state_dir`. It and its ancestors must be traversable by others:
    /// the container's mapped root has to reach the rootfs, and LXC fails with "Permission
    /// denied - Failed to open .../rootfs" otherwise. A directory we create gets 0755; an
    /// existing state directory without o+x (a fresh `tempfile::tempdir` is 0700) is
    /// widened to 0755, ancestors are only checked.
    pub fn new(state_dir: &Path) -> Result<Self, ProvisionError> {
        fs::create_dir_all(state_dir).context(|| format!("create {}", state_dir.display()))?;
        let state_dir = state_dir
            .canonicalize()
            .context(|| format!("resolve {}", state_dir.display()))?;
        let mode = fs::metadata(&state_dir)
            .context(|| format!("stat {}", state_dir.display()))?
            .mode();
        if mode & 0o005 != 0o005 {
            fs::set_permissions(&state_dir, fs::Permissions::from_mode(0o755))
                .context(|| format!("chmod {}", state_dir.display()))?;
        }
        for ancestor in state_dir.ancestors().skip(1) {
            let mode = fs::metadata(ancestor)
                .context(|| format!("stat {}", ancestor.display()))?
                .mode();
            if mode & 0o001 == 0 {
                return Err(ProvisionError::Conflict(format!(
                    "{} (mode {:o}) is not traversable by others; containers under {} could not start",
                    ancestor.display(),
                    mode & 0o7777,
                    state_dir.display()
                )));
            }
        }
        for dir in ["containers", "homes", "lxc", "shared"] {
            mkdir(&state_dir.join(dir), 0o755, None)?;
        }
        Ok(Provisioner { state_dir })
    }

    /// The state directory (canonical).
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The host side of container `name`'s shared directory: mounts made below it appear
    /// inside the running container below [`SHARED_DIR_IN_CT`].
    pub fn shared_dir(&self, name: &str) -> PathBuf {
        self.state_dir.join("shared").join(name)
    }

    fn record_path(&self, name: &str) -> PathBuf {
        self.state_dir
            .join("containers")
            .join(format!("{name}.json"))
    }

    /// The container as it is (or would be) provisioned; `ugid` is 0 when unknown.
    fn record(&self, name: &str, ugid: u32, opts: &CreateOptions) -> Container {
        let user = names::user_name(name);
        let lxc_home = self.state_dir.join("lxc").join(&user);
        let mut ct = Container {
            pool: opts.pool.clone(),
            id: name.to_owned(),
            home: self.state_dir.join("homes").join(&user),
            log_file: lxc_home.join(name).join(log_file_name(name)),
            lxc_home,
            user,
            ugid,
            cgroup_path: cgroup_tree(name),
            entry_cgroup_path: None,
            container_path: None,
            runner_path: None,
            runtime_dir: None,
            rlimits: opts.rlimits.clone(),
        };
        if opts.layout == Layout::Osctld {
            ct.cgroup_path = format!("{}/{OSCTLD_USER_OWNED}", cgroup_tree(name));
            ct.entry_cgroup_path = Some(ct.osctld_entry_cgroup_path());
        }
        ct
    }

    /// Creates container `name` or completes a half-done one (every step is idempotent and
    /// the record is written last). Safe to call in parallel for distinct names, from
    /// threads or processes: host-wide edits happen under [`host::LOCK_FILE`].
    pub fn create(&self, name: &str, opts: &CreateOptions) -> Result<Container, ProvisionError> {
        names::validate(name)?;
        ensure_root()?;
        let user = names::user_name(name);
        let (ugid, base) = {
            let _lock = HostLock::acquire()?;
            let home = self.record(name, 0, opts).home;
            let ugid = ensure_user(&user, &home)?;
            let base = ensure_subids(&user)?;
            if opts.net == Net::Veth {
                ensure_bridge()?;
                host::edit_lines(
                    host::USERNET,
                    |l| !is_usernet_line(l, &user),
                    Some(&usernet_line(&user)),
                )?;
            }
            // Under the lock: create_entry fills a new cpuset cgroup from its parent, and a
            // parallel create must not see `ctl` before its cpuset files are filled.
            // The shared parent stays root's (create_entry chowns what it creates, and `ctl`
            // must not belong to whichever container came first).
            cgroup::create_entry(CGROUP_PARENT, 0)
                .context(|| format!("create cgroup {CGROUP_PARENT}"))?;
            let ct = self.record(name, ugid, opts);
            let tree = cgroup_tree(name);
            if opts.layout == Layout::Osctld {
                // The tree stays root's (osctld keeps its limits there).
                cgroup::create_entry(&tree, 0).context(|| format!("create cgroup {tree}"))?;
            }
            // The user owns the container's cgroup, where LXC creates the payload and its
            // monitor.
            cgroup::create_entry(&ct.cgroup_path, ugid)
                .context(|| format!("create cgroup {}", ct.cgroup_path))?;
            if opts.layout == Layout::Osctld {
                // The runners' entry exists before the first start, as with osctld (whose
                // frontend creates it for every runner): LXC then names its monitor's
                // cgroup `lxc.monitor.<name>-1` and never shares the entry.
                let entry = ct.entry_cgroup();
                cgroup::create_entry(entry, ugid).context(|| format!("create cgroup {entry}"))?;
            }
            (ugid, base)
        };
        let ct = self.record(name, ugid, opts);
        // The user owns its home, its LXC home and the container directory (and the
        // container's root the rootfs): below the state directory's own `homes` and `lxc`
        // every step goes through directory handles and follows no symlink (`safefs`).
        let home =
            Dir::open(&self.state_dir.join("homes"))?.ensure_dir(&user, 0o755, Some(ugid))?;
        let cache = home.ensure_dir(".cache", 0o755, Some(ugid))?;
        let cache_lxc = cache.ensure_dir("lxc", 0o755, Some(ugid))?;
        cache_lxc.ensure_dir("run", 0o755, Some(ugid))?;
        let lxc_home =
            Dir::open(&self.state_dir.join("lxc"))?.ensure_dir(&user, 0o755, Some(ugid))?;
        let ct_dir = lxc_home.ensure_dir(name, 0o755, Some(ugid))?;
        let rootfs = ct_dir.path_of("rootfs");
        if ct_dir.stat(ROOTFS_DONE)?.is_none() {
            rootfs::build(&ct_dir, "rootfs", base)?;
            ct_dir.write_file(ROOTFS_DONE, b"", 0o644, None)?;
        }
        let shared = self.shared_dir(name);
        mkdir(&self.state_dir.join("shared"), 0o755, None)?;
        mkdir(&shared, 0o755, None)?;
        ensure_shared_mount(&shared)?;
        let config = config::render(
            name,
            &rootfs,
            &ct.log_file,
            &shared,
            base,
            ID_RANGE,
            opts.net,
        );
        ct_dir.write_file("config", config.as_bytes(), 0o644, Some(ugid))?;
        ct_dir.ensure_file(&log_file_name(name), 0o644, ugid)?;
        ct_dir.sync()?;
        let json = serde_json::to_vec_pretty(&ct).expect("a Container always serializes");
        host::write_atomic(&self.record_path(name), &json, 0o644)?;
        Ok(ct)
    }

    /// The record of container `name`.
    pub fn load(&self, name: &str) -> Result<Container, ProvisionError> {
        names::validate(name)?;
        let path = self.record_path(name);
        let text = match fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(ProvisionError::NotFound(name.to_owned()))
            }
            Err(e) => return Err(ProvisionError::io(format!("read {}", path.display()), e)),
        };
        serde_json::from_slice(&text).map_err(|source| ProvisionError::Record { path, source })
    }

    /// Every container recorded in the state directory, sorted by name.
    pub fn list(&self) -> Result<Vec<Container>, ProvisionError> {
        let dir = self.state_dir.join("containers");
        let mut names: Vec<String> = fs::read_dir(&dir)
            .context(|| format!("read {}", dir.display()))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                e.file_name()
                    .to_str()?
                    .strip_suffix(".json")
                    .map(str::to_owned)
            })
            .collect();
        names.sort();
        names.iter().map(|n| self.load(n)).collect()
    }

    /// Removes container `name` and everything that belongs to it: stops it, kills what is
    /// left in its cgroups, removes the cgroups, files, user, group, /etc lines and record.
    /// Idempotent, and works on half-created containers (no record needed).
    pub fn destroy(&self, name: &str) -> Result<(), ProvisionError> {
        names::validate(name)?;
        ensure_root()?;
        let user = names::user_name(name);
        let entry = host::passwd()?.into_iter().find(|u| u.name == user);
        if let Some(entry) = &entry {
            if entry.gecos != USER_MARKER {
                return Err(ProvisionError::Conflict(format!(
                    "user {user} exists but was not created by ctl-provision; not touching it"
                )));
            }
        }
        let ct = match self.load(name) {
            Ok(ct) => ct,
            Err(ProvisionError::NotFound(_)) | Err(ProvisionError::Record { .. }) => self.record(
                name,
                entry.as_ref().map_or(0, |e| e.uid),
                &CreateOptions::default(),
            ),
            Err(e) => return Err(e),
        };
        let ct_dir = ct.lxc_home.join(name);
        if entry.is_some() && ct_dir.join("config").exists() {
            stop_gently(&ct);
        }
        // The whole tree `ctl/<name>`, in either layout (and without a record).
        let tree = cgroup_tree(name);
        kill_cgroup(&tree)?;
        let base = host::parse_subid(&host::read(host::SUBUID)?)
            .into_iter()
            .find(|s| s.owner == user)
            .map(|s| (s.start, s.count));
        if let Some(entry) = &entry {
            kill_by_uid(u64::from(entry.uid), 1)?;
        }
        if let Some((start, count)) = base {
            kill_by_uid(start, count)?;
        }
        remove_cgroup(&tree)?;
        remove_shared_dir(&self.shared_dir(name))?;
        for dir in [&ct_dir, &ct.lxc_home, &ct.home] {
            remove_tree(dir)?;
        }
        {
            let _lock = HostLock::acquire()?;
            let owned = |l: &str| l.split(':').next() == Some(user.as_str());
            host::edit_lines(host::SUBUID, |l| !owned(l), None)?;
            host::edit_lines(host::SUBGID, |l| !owned(l), None)?;
            if Path::new(host::USERNET).exists() {
                host::edit_lines(host::USERNET, |l| !is_usernet_line(l, &user), None)?;
            }
            if host::passwd()?.iter().any(|u| u.name == user) {
                host::run(Command::new("userdel").arg(&user))?;
            }
            if host::groups()?.iter().any(|g| g.name == user) {
                host::run(Command::new("groupdel").arg(&user))?;
            }
        }
        match fs::remove_file(self.record_path(name)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(ProvisionError::io(
                format!("remove {}", self.record_path(name).display()),
                e,
            )),
            _ => Ok(()),
        }
    }
}

/// The cgroup tree of container `name`, `ctl/<name>`: its cgroup in [`Layout::Default`],
/// the root-owned parent of it in [`Layout::Osctld`]. Destroy removes it whole.
fn cgroup_tree(name: &str) -> String {
    format!("{CGROUP_PARENT}/{name}")
}

/// The log file's name in the container directory.
fn log_file_name(name: &str) -> String {
    format!("{name}.log")
}

fn ensure_root() -> Result<(), ProvisionError> {
    match host::effective_uid() {
        0 => Ok(()),
        uid => Err(ProvisionError::NotRoot(uid)),
    }
}

/// Creates the user (and its same-numbered group) or checks the existing one; returns the
/// ugid. Must run under the host lock.
fn ensure_user(user: &str, home: &Path) -> Result<u32, ProvisionError> {
    let users = host::passwd()?;
    let groups = host::groups()?;
    if let Some(u) = users.iter().find(|u| u.name == user) {
        if u.gecos != USER_MARKER {
            return Err(ProvisionError::Conflict(format!(
                "user {user} exists but was not created by ctl-provision"
            )));
        }
        if u.uid != u.gid {
            return Err(ProvisionError::Conflict(format!(
                "user {user} has uid {} but gid {}",
                u.uid, u.gid
            )));
        }
        if !groups.iter().any(|g| g.name == user && g.gid == u.gid) {
            return Err(ProvisionError::Conflict(format!(
                "group {user} with gid {} is missing",
                u.gid
            )));
        }
        return Ok(u.uid);
    }
    // A group left by an interrupted create is reused when its number is still free as a uid.
    let ugid = match groups.iter().find(|g| g.name == user) {
        Some(g) if !users.iter().any(|u| u.uid == g.gid) => g.gid,
        Some(g) => {
            return Err(ProvisionError::Conflict(format!(
                "group {user} exists with gid {} used by another user",
                g.gid
            )))
        }
        None => {
            let ugid = host::free_ugid()?;
            // useradd would pick a different gid for the group by default, and newuidmap
            // then refuses ("owned by a different user"): create the group ourselves.
            host::run(Command::new("groupadd").args(["-g", &ugid.to_string(), user]))?;
            ugid
        }
    };
    let id = ugid.to_string();
    host::run(
        Command::new("useradd")
            .args([
                "-u",
                &id,
                "-g",
                &id,
                "-M",
                "-l",
                "-c",
                USER_MARKER,
                "-s",
                "/usr/sbin/nologin",
                "-K",
                "SUB_UID_COUNT=0",
                "-K",
                "SUB_GID_COUNT=0",
                "-d",
            ])
            .arg(home)
            .arg(user),
    )?;
    Ok(ugid)
}

/// Ensures `user:BASE:65536` in both /etc/subuid and /etc/subgid with the same base; returns
/// it. Must run under the host lock.
fn ensure_subids(user: &str) -> Result<u32, ProvisionError> {
    let existing = host::parse_subid(&host::read(host::SUBUID)?)
        .into_iter()
        .find(|s| s.owner == user && s.count == u64::from(ID_RANGE))
        .and_then(|s| u32::try_from(s.start).ok());
    let owned = |l: &str| l.split(':').next() == Some(user);
    let base = match existing {
        Some(base) => base,
        None => {
            host::edit_lines(host::SUBUID, |l| !owned(l), None)?;
            host::edit_lines(host::SUBGID, |l| !owned(l), None)?;
            host::free_subid_base()?
        }
    };
    let line = format!("{user}:{base}:{ID_RANGE}");
    host::edit_lines(host::SUBUID, |l| !owned(l), Some(&line))?;
    host::edit_lines(host::SUBGID, |l| !owned(l), Some(&line))?;
    Ok(base)
}

fn usernet_line(user: &str) -> String {
    format!("{user} veth {BRIDGE} 10")
}

fn is_usernet_line(line: &str, user: &str) -> bool {
    let mut f = line.split_whitespace();
    f.next() == Some(user) && f.next() == Some("veth") && f.next() == Some(BRIDGE)
}

/// Creates bridge [`BRIDGE`] if missing and sets it up. Must run under the host lock.
fn ensure_bridge() -> Result<(), ProvisionError> {
    if Path::new("/sys/class/net").join(BRIDGE).exists() {
        return Ok(());
    }
    host::run(Command::new("ip").args(["link", "add", BRIDGE, "type", "bridge"]))?;
    host::run(Command::new("ip").args(["link", "set", BRIDGE, "up"]))?;
    Ok(())
}

/// Best effort: thaw and kill the container with LXC's own tools as its user. Whatever
/// survives is killed through the cgroups afterwards.
fn stop_gently(ct: &Container) {
    // The container's root can freeze its own processes in a freezer cgroup of its own
    // below the payload, where neither the monitor's state nor `lxc-unfreeze` looks; a
    // frozen init never dies of `lxc-stop -k`'s SIGKILL. Thaw the whole tree first, and
    // bound the stop: `kill_cgroup` follows in any case.
    for h in cgroup::hierarchies() {
        thaw_tree(&h.path_of(&cgroup_tree(&ct.id)));
    }
    let state = oracle::lxc_state(ct).unwrap_or_default();
    if state == "frozen" || state == "freezing" {
        let _ = oracle::lxc_tool(ct, "lxc-unfreeze", &[]);
    }
    if !state.is_empty() && state != "stopped" {
        let _ = oracle::stop_within(ct, Duration::from_secs(15));
    }
}

/// Thaws and SIGKILLs every process below `relative` in every hierarchy, until none is left
/// (at most 10 s).
fn kill_cgroup(relative: &str) -> Result<(), ProvisionError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut pids = Vec::new();
        for h in cgroup::hierarchies() {
            let dir = h.path_of(relative);
            thaw_tree(&dir);
            collect_pids(&dir, &mut pids);
        }
        pids.sort_unstable();
        pids.dedup();
        if pids.is_empty() {
            return Ok(());
        }
        kill(&pids);
        if Instant::now() > deadline {
            return Err(ProvisionError::Conflict(format!(
                "processes {pids:?} in cgroup {relative} survive SIGKILL"
            )));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Frozen tasks (v1 freezer) do not die of SIGKILL until thawed.
fn thaw_tree(dir: &Path) {
    let _ = fs::write(dir.join("freezer.state"), "THAWED");
    let _ = fs::write(dir.join("cgroup.freeze"), "0");
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                thaw_tree(&e.path());
            }
        }
    }
}

fn collect_pids(dir: &Path, pids: &mut Vec<u32>) {
    if let Ok(text) = fs::read_to_string(dir.join("cgroup.procs")) {
        pids.extend(text.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
    }
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                collect_pids(&e.path(), pids);
            }
        }
    }
}

fn kill(pids: &[u32]) {
    if pids.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .arg("-KILL")
        .args(pids.iter().map(u32::to_string))
        .output();
}

/// Kills processes whose real uid is in `[start, start + count)` (the user's own, and those
/// of its containers), e.g. left by an interrupted create outside the cgroups.
fn kill_by_uid(start: u64, count: u64) -> Result<(), ProvisionError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pids: Vec<u32> = fs::read_dir("/proc")
            .context(|| "read /proc".to_owned())?
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                let field = |name: &str| {
                    status
                        .lines()
                        .find_map(|l| l.strip_prefix(name))
                        .unwrap_or("")
                        .trim()
                };
                // A zombie is dead already; it waits for its parent (often pid 1, for the
                // daemonized lxc-start) to reap it, which no signal speeds up.
                !field("State:").starts_with('Z')
                    && field("Uid:")
                        .split_whitespace()
                        .next()
                        .and_then(|uid| uid.parse::<u64>().ok())
                        .is_some_and(|uid| uid >= start && uid < start + count)
            })
            .collect();
        if pids.is_empty() {
            return Ok(());
        }
        kill(&pids);
        if Instant::now() > deadline {
            return Err(ProvisionError::Conflict(format!(
                "processes {pids:?} survive SIGKILL"
            )));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Removes a cgroup tree, retrying while the kernel still reports it busy (a killed
/// task leaves its cgroup shortly after it is reaped).
fn remove_cgroup(relative: &str) -> Result<(), ProvisionError> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match ctl_core::Launcher::global().remove_entry_cgroup(relative) {
            Ok(()) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(ProvisionError::io(format!("remove cgroup {relative}"), e)),
        }
    }
}

/// Makes `dir` a mount point of its own (a bind mount onto itself) with shared
/// propagation. Idempotent.
fn ensure_shared_mount(dir: &Path) -> Result<(), ProvisionError> {
    if !mount_points_under(dir)?.iter().any(|m| m == dir) {
        host::run(Command::new("mount").arg("--bind").arg(dir).arg(dir))?;
    }
    host::run(Command::new("mount").arg("--make-shared").arg(dir))?;
    Ok(())
}

/// Unmounts everything at and below the shared directory `dir` (deepest first, lazily so
/// that a busy mount cannot block a destroy), then removes it. Refuses to remove it while
/// anything is still mounted there: deleting recursively through a mount would delete
/// the mounted file system's contents.
fn remove_shared_dir(dir: &Path) -> Result<(), ProvisionError> {
    if !dir.exists() {
        return Ok(());
    }
    for _ in 0..10 {
        let mut mounts = mount_points_under(dir)?;
        if mounts.is_empty() {
            return remove_tree(dir);
        }
        // Deepest first: a parent cannot go before its children.
        mounts.sort_by_key(|m| std::cmp::Reverse(m.as_os_str().len()));
        for m in &mounts {
            let _ = host::run(Command::new("umount").arg("-l").arg(m));
        }
    }
    Err(ProvisionError::Conflict(format!(
        "{} still has mounts {:?}; not removing it",
        dir.display(),
        mount_points_under(dir)?
    )))
}

/// Mount points of this process's mount namespace at or below `dir`.
fn mount_points_under(dir: &Path) -> Result<Vec<PathBuf>, ProvisionError> {
    let text = fs::read_to_string("/proc/self/mountinfo")
        .context(|| "read /proc/self/mountinfo".to_owned())?;
    Ok(text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(ctl_core::process::unescape_mountinfo(m)))
        .filter(|m| m.starts_with(dir))
        .collect())
}

fn remove_tree(dir: &Path) -> Result<(), ProvisionError> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(ProvisionError::io(format!("remove {}", dir.display()), e))
        }
        _ => Ok(()),
    }
}

/// `mkdir` (idempotent), then mode and, if given, owner `ugid:ugid`.
fn mkdir(dir: &Path, mode: u32, owner: Option<u32>) -> Result<(), ProvisionError> {
    match fs::create_dir(dir) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
            return Err(ProvisionError::io(format!("mkdir {}", dir.display()), e))
        }
        _ => {}
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(mode))
        .context(|| format!("chmod {}", dir.display()))?;
    if let Some(ugid) = owner {
        chown(dir, ugid)?;
    }
    Ok(())
}

fn chown(path: &Path, ugid: u32) -> Result<(), ProvisionError> {
    std::os::unix::fs::chown(path, Some(ugid), Some(ugid))
        .context(|| format!("chown {}", path.display()))
}
