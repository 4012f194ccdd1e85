//! Hardening: container-controlled data. Whatever a container's root puts into its
//! rootfs (symlinks to host paths, hostile utmp records, FIFOs where files are expected),
//! and whatever the container's system user puts into its LXC config (it owns that
//! file), no root-side or runner-side action of Runscript, Wall, Mount, WithRootfs or
//! WithMountns may reach a host path, and every call ends within its deadline.
//!
//! Host "canaries" are world-writable, world-readable directories and files outside every
//! container: if a command's action escaped, it would succeed there and change them (a
//! directory's mtime catches even a file created and removed again).
//!
//! Needs root and `cargo build --workspace --bins` first (the runner binary).

use std::mem::{offset_of, size_of};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use commands::{Banner, Mount, Runscript, ScriptSource, Wall, WithMountns, WithRootfs};
use ctl_core::{Call, Container, Error};
use ctl_provision::{oracle, SHARED_DIR_IN_CT};
use serde_json::json;
use tests::fixtures::{ctl_runner_path, host_mounts_under, lingering_zombies, TestContainer};

const DEADLINE: Duration = Duration::from_secs(60);

fn call(ct: &Container) -> Call<'_> {
    Call::new(ct).runner(ctl_runner_path()).deadline(DEADLINE)
}

fn rootfs(ct: &Container) -> PathBuf {
    ct.lxc_home.join(&ct.id).join("rootfs")
}

fn config_path(ct: &Container) -> PathBuf {
    ct.lxc_home.join(&ct.id).join("config")
}

/// The host uid of the container's root (the owner of its rootfs).
fn root_host_id(ct: &Container) -> u32 {
    std::fs::metadata(rootfs(ct)).unwrap().uid()
}

/// Creates `path` as the container's root would (owned by its root host id).
fn ct_symlink(ct: &Container, target: &str, path: &Path) {
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_dir_all(path);
    std::os::unix::fs::symlink(target, path).unwrap();
    let id = root_host_id(ct);
    std::os::unix::fs::lchown(path, Some(id), Some(id)).unwrap();
}

/// Creates `dir` and its missing parents as the container's root would.
fn ct_mkdir_all(ct: &Container, dir: &Path) {
    let id = root_host_id(ct);
    let mut missing = Vec::new();
    let mut p = dir;
    while !p.exists() {
        missing.push(p.to_owned());
        p = p.parent().unwrap();
    }
    for d in missing.iter().rev() {
        std::fs::create_dir(d).unwrap();
        std::os::unix::fs::chown(d, Some(id), Some(id)).unwrap();
    }
}

fn ct_write(ct: &Container, path: &Path, content: &[u8]) {
    std::fs::write(path, content).unwrap();
    let id = root_host_id(ct);
    std::os::unix::fs::lchown(path, Some(id), Some(id)).unwrap();
}

/// A world-writable host directory with a world-readable file `canary`, removed on drop.
struct Canary {
    dir: PathBuf,
    before: Snapshot,
}

#[derive(Debug, PartialEq)]
struct Snapshot {
    entries: Vec<(String, u64, Vec<u8>)>,
    mtime: (i64, i64),
}

impl Canary {
    fn new(tag: &str) -> Canary {
        // Not below /tmp: containers here make their /tmp a symlink to the canary.
        let dir = PathBuf::from(format!("/var/tmp/ctl-canary-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        std::fs::write(dir.join("canary"), b"host canary\n").unwrap();
        std::fs::set_permissions(dir.join("canary"), std::fs::Permissions::from_mode(0o666))
            .unwrap();
        let before = snapshot(&dir);
        Canary { dir, before }
    }

    fn path(&self) -> &str {
        self.dir.to_str().unwrap()
    }

    /// Takes the reference state again (after the test's own changes).
    fn settle(&mut self) {
        self.before = snapshot(&self.dir);
    }

    #[track_caller]
    fn assert_untouched(&self, what: &str) {
        assert_eq!(
            snapshot(&self.dir),
            self.before,
            "{what}: the host directory {} changed",
            self.dir.display()
        );
    }
}

impl Drop for Canary {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn snapshot(dir: &Path) -> Snapshot {
    let meta = std::fs::metadata(dir).unwrap();
    let mut entries: Vec<(String, u64, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            let content = if m.is_file() {
                std::fs::read(e.path()).unwrap()
            } else {
                Vec::new()
            };
            (
                e.file_name().to_string_lossy().into_owned(),
                m.mtime_nsec() as u64 ^ (m.mtime() as u64) << 32,
                content,
            )
        })
        .collect();
    entries.sort();
    Snapshot {
        entries,
        mtime: (meta.mtime(), meta.mtime_nsec()),
    }
}

/// Runs `f` on another thread and waits at most `limit` for it: a frontend that blocks
/// (the deadline only bounds the runner) must fail the test, not hang it.
fn bounded<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("{what} did not end within {limit:?}"))
}

fn command_error<T: std::fmt::Debug>(result: Result<T, Error>) -> String {
    let Some(message) = result.as_ref().err().and_then(Error::command_message) else {
        panic!("expected a command error, got {result:?}");
    };
    message.to_owned()
}

fn files_named_like(dir: &Path, prefix: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

fn stdin_script(text: &str) -> std::os::fd::OwnedFd {
    let (r, w) = nix::unistd::pipe().unwrap();
    std::fs::File::from(w).write_all_then_drop(text.as_bytes());
    r
}

trait WriteAllThenDrop {
    fn write_all_then_drop(self, bytes: &[u8]);
}

impl WriteAllThenDrop for std::fs::File {
    fn write_all_then_drop(mut self, bytes: &[u8]) {
        use std::io::Write;
        self.write_all(bytes).unwrap();
    }
}

// ---------------------------------------------------------------------------------------
// Runscript, WithRootfs, WithMountns: symlinks in the rootfs

/// The rootfs's `/tmp` and other paths are symlinks to a host directory and a host file:
/// the script is placed in the rootfs's top directory (not below a symlink), tasks
/// resolve every path inside the container.
#[test]
fn symlinks_in_the_rootfs_lead_nowhere_on_the_host() {
    let t = TestContainer::running("hsym");
    let ct = t.container();
    let root = rootfs(ct);
    let canary = Canary::new("sym");
    let host_file = canary.dir.join("canary");
    // The brief's example: the container's /tmp is the host's /etc; and /tmp of the
    // rootfs pointing at our canary directory, plus links to a host file by absolute and
    // by climbing relative path.
    ct_symlink(ct, canary.path(), &root.join("tmp"));
    ct_symlink(ct, "/etc", &root.join("hostetc"));
    ct_symlink(ct, host_file.to_str().unwrap(), &root.join("leak"));
    ct_symlink(
        ct,
        &format!("../../../../../../../../..{}", host_file.display()),
        &root.join("leak-rel"),
    );
    // The same path inside the container exists with other content.
    ct_mkdir_all(ct, &root.join(canary.dir.strip_prefix("/").unwrap()));
    ct_write(
        ct,
        &root.join(host_file.strip_prefix("/").unwrap()),
        b"inside\n",
    );

    let t0 = Instant::now();
    let stdin = stdin_script("#!/bin/sh\necho placed > /tmp/from-script; exit 7\n");
    let rc = Runscript::run_with(
        &call(ct).stdin(Some(std::os::fd::AsFd::as_fd(&stdin))),
        ScriptSource::Stdin,
        Vec::new(),
        false,
        false,
    )
    .unwrap();
    assert_eq!(rc, 7);
    assert!(
        files_named_like(&root, ".ctl-runscript").is_empty(),
        "script left behind"
    );
    // The script's own write went through the container's /tmp symlink to the
    // *container's* path of that name.
    assert_eq!(
        std::fs::read(
            root.join(canary.dir.strip_prefix("/").unwrap())
                .join("from-script")
        )
        .unwrap(),
        b"placed\n"
    );
    canary.assert_untouched("Runscript");

    for path in ["/leak", "/leak-rel", "/tmp/canary"] {
        let v = WithRootfs::run_with(&call(ct), "read_file".into(), json!(path)).unwrap();
        assert_eq!(v, json!("inside\n"), "WithRootfs read_file {path}");
        let v =
            WithMountns::run_with(&call(ct), "read_file".into(), json!(path), None, None).unwrap();
        assert_eq!(v, json!("inside\n"), "WithMountns read_file {path}");
    }
    let v = WithRootfs::run_with(&call(ct), "read_file".into(), json!("/hostetc/passwd")).unwrap();
    assert_eq!(
        v,
        json!("root:x:0:0:root:/root:/bin/sh\n"),
        "the container's /etc/passwd"
    );
    // Climbing above the root stays at the container's root: its (empty) shadow.
    let v = WithRootfs::run_with(
        &call(ct),
        "read_file".into(),
        json!("/../../../../etc/shadow"),
    )
    .unwrap();
    assert_eq!(v, json!(""));
    canary.assert_untouched("WithRootfs/WithMountns");
    eprintln!("symlink cases: {:?}", t0.elapsed());
    assert!(lingering_zombies().is_empty());
}

// ---------------------------------------------------------------------------------------
// The LXC config: the container's user owns it

/// Rewrites the container's config with `edit` (as its user could), restoring it on drop.
struct EditedConfig {
    path: PathBuf,
    original: String,
}

impl EditedConfig {
    fn new(ct: &Container, edit: impl FnOnce(&str) -> String) -> EditedConfig {
        let path = config_path(ct);
        let original = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, edit(&original)).unwrap();
        EditedConfig { path, original }
    }
}

impl Drop for EditedConfig {
    fn drop(&mut self) {
        // In place: the file stays the user's.
        std::fs::write(&self.path, &self.original).unwrap();
    }
}

/// A config that maps the container's root to host root (or another host user) and names
/// a host directory owned by that uid as its rootfs: root must not chroot there as that
/// uid, nor write Runscript's script there.
#[test]
fn a_user_edited_config_cannot_point_root_at_a_host_directory() {
    let t = TestContainer::running("hcfg");
    let ct = t.container();
    // A host directory owned by root with a root-only secret.
    let mut target = Canary::new("cfg");
    std::fs::set_permissions(&target.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(target.dir.join("secret"), b"host root only\n").unwrap();
    std::fs::set_permissions(
        target.dir.join("secret"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    target.settle();

    for (uid, what) in [(0u32, "host root"), (65534, "nobody")] {
        if uid != 0 {
            std::os::unix::fs::chown(&target.dir, Some(uid), Some(uid)).unwrap();
        }
        let target_snapshot = snapshot(&target.dir);
        assert_eq!(
            std::fs::metadata(config_path(ct)).unwrap().uid(),
            ct.ugid,
            "the user owns the config"
        );
        let _edit = EditedConfig::new(ct, |text| {
            let mut out: String = text
                .lines()
                .filter(|l| {
                    !l.trim_start().starts_with("lxc.idmap")
                        && !l.trim_start().starts_with("lxc.rootfs.path")
                })
                .map(|l| format!("{l}\n"))
                .collect();
            out.push_str(&format!(
                "lxc.rootfs.path = dir:{}\nlxc.idmap = u 0 {uid} 65536\nlxc.idmap = g 0 {uid} 65536\n",
                target.path()
            ));
            out
        });
        let result = WithRootfs::run_with(&call(ct), "read_file".into(), json!("/secret"));
        assert!(
            !matches!(&result, Ok(v) if v == &json!("host root only\n")),
            "{what}: WithRootfs read a host file through an edited config"
        );
        let message = command_error(result);
        eprintln!("WithRootfs, rootfs mapped to {what}: {message}");

        let stdin = stdin_script("#!/bin/sh\nexit 0\n");
        let result = Runscript::run_with(
            &call(ct).stdin(Some(std::os::fd::AsFd::as_fd(&stdin))),
            ScriptSource::Stdin,
            Vec::new(),
            false,
            false,
        );
        let message = command_error(result);
        eprintln!("Runscript, rootfs mapped to {what}: {message}");
        assert_eq!(
            snapshot(&target.dir),
            target_snapshot,
            "{what}: root wrote into the host directory"
        );
    }
    std::os::unix::fs::chown(&target.dir, Some(0), Some(0)).unwrap();

    // The rootfs a symlink to a host directory (the user owns the container directory).
    let real = rootfs(ct);
    let moved = real.with_file_name("rootfs.real");
    std::fs::rename(&real, &moved).unwrap();
    std::os::unix::fs::symlink(&target.dir, &real).unwrap();
    let result = WithRootfs::run_with(&call(ct), "read_file".into(), json!("/secret"));
    let stdin = stdin_script("#!/bin/sh\nexit 0\n");
    let rs = Runscript::run_with(
        &call(ct).stdin(Some(std::os::fd::AsFd::as_fd(&stdin))),
        ScriptSource::Stdin,
        Vec::new(),
        false,
        false,
    );
    std::fs::remove_file(&real).unwrap();
    std::fs::rename(&moved, &real).unwrap();
    assert!(command_error(result).contains("rootfs"));
    assert!(command_error(rs).contains("rootfs"));
    target.assert_untouched("rootfs symlink");

    // The config a FIFO: root opening it must not block the daemon's thread forever
    // (Runscript reads the config in the frontend, where no deadline applies).
    let config = config_path(ct);
    let saved = std::fs::read(&config).unwrap();
    std::fs::remove_file(&config).unwrap();
    nix::unistd::mkfifo(&config, nix::sys::stat::Mode::from_bits_truncate(0o666)).unwrap();
    let ct2 = ct.clone();
    let rs = bounded(
        Duration::from_secs(20),
        "Runscript with a FIFO as config",
        move || {
            let stdin = stdin_script("#!/bin/sh\nexit 0\n");
            let c = Call::new(&ct2).runner(ctl_runner_path()).deadline(DEADLINE);
            let r = Runscript::run_with(
                &c.stdin(Some(std::os::fd::AsFd::as_fd(&stdin))),
                ScriptSource::Stdin,
                Vec::new(),
                false,
                false,
            );
            r.map_err(|e| e.to_string())
        },
    );
    let ct3 = ct.clone();
    let wr = bounded(
        Duration::from_secs(90),
        "WithRootfs with a FIFO as config",
        move || {
            let c = Call::new(&ct3)
                .runner(ctl_runner_path())
                .deadline(Duration::from_secs(10));
            WithRootfs::run_with(&c, "read_file".into(), json!("/etc/hostname"))
                .map_err(|e| e.to_string())
        },
    );
    std::fs::remove_file(&config).unwrap();
    std::fs::write(&config, saved).unwrap();
    std::os::unix::fs::chown(&config, Some(ct.ugid), Some(ct.ugid)).unwrap();
    assert!(rs.as_ref().is_err_and(|e| e.contains("config")), "{rs:?}");
    assert!(wr.as_ref().is_err_and(|e| e.contains("config")), "{wr:?}");

    // With the config restored, both work again.
    let v = WithRootfs::run_with(&call(ct), "read_file".into(), json!("/etc/passwd")).unwrap();
    assert_eq!(v, json!("root:x:0:0:root:/root:/bin/sh\n"));
    target.assert_untouched("all config cases");
}

// ---------------------------------------------------------------------------------------
// Wall: hostile utmp records and ttys

/// One utmp record (glibc's layout, which the container's busybox also uses).
fn utmp_record(kind: i16, line: &str) -> Vec<u8> {
    let mut rec = vec![0u8; size_of::<libc::utmpx>()];
    let mut put = |at: usize, bytes: &[u8]| rec[at..at + bytes.len()].copy_from_slice(bytes);
    put(offset_of!(libc::utmpx, ut_type), &kind.to_ne_bytes());
    put(offset_of!(libc::utmpx, ut_pid), &4242i32.to_ne_bytes());
    put(
        offset_of!(libc::utmpx, ut_line),
        &line.as_bytes()[..line.len().min(32)],
    );
    put(offset_of!(libc::utmpx, ut_user), b"evil");
    rec
}

#[test]
fn wall_with_hostile_utmp_and_ttys_writes_nothing_else() {
    let t = TestContainer::running("hwall");
    let ct = t.container();
    let root = rootfs(ct);
    let canary = Canary::new("wall");
    let passwd_before = std::fs::read(root.join("etc/passwd")).unwrap();
    // Inside the container: /dev/tty50 a symlink to /etc/passwd, /dev/tty51 a regular file,
    // /dev/tty52 a FIFO nobody reads, /dev/tty53 a symlink to the host canary's path.
    // (Made inside: the container's /dev belongs to its user namespace.)
    let script = format!(
        "ln -sf /etc/passwd /dev/tty50 && echo 'plain file' > /dev/tty51 && rm -f /dev/tty52 && mkfifo /dev/tty52 && ln -sf {} /dev/tty53",
        canary.dir.join("canary").display()
    );
    let out = oracle::attach(ct, &["sh", "-c", &script]).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let init = oracle::lxc_init_pid(ct).unwrap().expect("running");
    let dev = PathBuf::from(format!("/proc/{init}/root/dev"));
    let mut utmp = Vec::new();
    for line in [
        "../../etc/passwd",
        "pts/../../etc/passwd",
        "../../../../../../../../tmp",
        "tty50",
        "tty51",
        "tty52",
        "tty53",
        "pts/999999",
        "tty\u{1b}[2J",
        "ttyé",
    ] {
        utmp.extend(utmp_record(libc::USER_PROCESS, line));
    }
    // Far more records than Wall reads, of every type.
    for i in 0..3000 {
        utmp.extend(utmp_record((i % 9) as i16, &format!("tty{}", i % 5)));
    }
    ct_write(ct, &root.join("var/run/utmp"), &utmp);
    // /run/utmp a symlink to a host path.
    ct_mkdir_all(ct, &root.join("run"));
    ct_symlink(
        ct,
        &canary.dir.join("canary").to_string_lossy(),
        &root.join("run/utmp"),
    );

    let t0 = Instant::now();
    assert!(Wall::run_with(&call(ct), "hostile utmp".into(), Banner::On).unwrap());
    eprintln!("Wall with hostile utmp: {:?}", t0.elapsed());
    assert_eq!(
        std::fs::read(root.join("etc/passwd")).unwrap(),
        passwd_before
    );
    assert_eq!(std::fs::read(dev.join("tty51")).unwrap(), b"plain file\n");
    canary.assert_untouched("Wall");

    // utmp a FIFO that nobody writes: Wall must not wait for it.
    for file in ["var/run/utmp", "run/utmp"] {
        let _ = std::fs::remove_file(root.join(file));
    }
    nix::unistd::mkfifo(
        &root.join("var/run/utmp"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    let t0 = Instant::now();
    let result = Wall::run_with(
        &call(ct).deadline(Duration::from_secs(20)),
        "fifo utmp".into(),
        Banner::On,
    );
    eprintln!(
        "Wall with a FIFO as utmp: {:?} in {:?}",
        result,
        t0.elapsed()
    );
    assert!(result.is_ok(), "{result:?}");
    canary.assert_untouched("Wall");
    assert!(lingering_zombies().is_empty());
}

// ---------------------------------------------------------------------------------------
// Mount: hostile destinations

#[test]
fn mount_destinations_resolve_inside_the_container() {
    let t = TestContainer::running("hmnt");
    let ct = t.container();
    let root = rootfs(ct);
    let canary = Canary::new("mnt");
    let shared = t.provisioner.shared_dir(&ct.id);
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("hello"), "from the host\n").unwrap();

    // /mnt/evil -> the canary's host path; /mnt/up -> climbing relative path.
    std::fs::create_dir_all(root.join("mnt")).unwrap();
    ct_symlink(ct, canary.path(), &root.join("mnt/evil"));
    ct_symlink(
        ct,
        &format!("../../../../../../..{}", canary.path()),
        &root.join("mnt/up"),
    );
    // The links resolve inside the container, to a directory of the same path.
    ct_mkdir_all(ct, &root.join(canary.dir.strip_prefix("/").unwrap()));
    for (i, dst) in ["/mnt/evil", "/mnt/up/sub", "/mnt/evil/../../x"]
        .iter()
        .enumerate()
    {
        let src = shared.join(format!("v{i}"));
        std::fs::create_dir(&src).unwrap();
        let ok = Command::new("mount")
            .arg("--bind")
            .arg(data.path())
            .arg(&src)
            .status()
            .unwrap();
        assert!(ok.success());
        let result = Mount::run_with(
            &call(ct),
            SHARED_DIR_IN_CT.into(),
            format!("v{i}"),
            (*dst).into(),
        );
        let _ = Command::new("umount").arg(&src).status();
        eprintln!("Mount to {dst}: {result:?}");
        if i < 2 {
            // Mounted, on the container's path of that name.
            assert!(result.unwrap(), "{dst}");
            let out = oracle::attach(ct, &["sh", "-c", "cat /proc/self/mountinfo"]).unwrap();
            let mounts = String::from_utf8_lossy(&out.stdout).into_owned();
            let target = if i == 0 {
                canary.path().to_owned()
            } else {
                format!("{}/sub", canary.path())
            };
            assert!(
                mounts.contains(&format!(" {target} ")),
                "{dst}: not at {target} inside: {mounts}"
            );
            assert!(commands::Unmount::run_with(&call(ct), target).unwrap());
        } else {
            assert!(command_error(result).contains("dst must be"));
        }
        canary.assert_untouched(dst);
        assert_eq!(
            host_mounts_under(&canary.dir),
            Vec::<String>::new(),
            "{dst}: a mount appeared on the host"
        );
    }
    drop(t);
    assert_eq!(
        std::fs::read_to_string(data.path().join("hello")).unwrap(),
        "from the host\n"
    );
}
