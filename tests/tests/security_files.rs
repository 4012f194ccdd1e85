//! Security: files in container-controlled trees. A red team played the container's
//! hostile root (its rootfs is attacker input) and the container's hostile system user (it
//! owns its LXC home and its home directory). Each test replays one attack on real
//! unprivileged LXC containers and checks that root-side and runner-side code refuses it
//! with a clear one-line error, within a deadline, and that nothing of another container
//! or of the host was reached.
//!
//! - FIFOs and terminals as the file a `read_file` task reads (WithRootfs, WithMountns):
//!   a FIFO hung the call; a symlink to `/dev/tty` made the root-side runner read the
//!   daemon's terminal.
//! - The container's user replaces its container directory by a symlink to another
//!   container's: WithRootfs read the other container's root-only file, Runscript wrote its
//!   script into the other container's rootfs.
//!
//! (The provisioner's half, `ctl ct new` following the user's symlinks, is replayed in
//! `ctl-provision/tests/symlinks.rs`.)
//!
//! Needs root and `cargo build --workspace --bins` first (the runner binary).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use commands::{Runscript, ScriptSource, WithMountns, WithRootfs};
use ctl_core::{Call, Container, Error, ErrorKind};
use serde_json::json;
use tests::fixtures::{ctl_runner_path, TestContainer};

/// Every call here gets this deadline: a regression hangs one call, not the suite.
const DEADLINE: Duration = Duration::from_secs(20);

fn call(ct: &Container) -> Call<'_> {
    Call::new(ct).runner(ctl_runner_path()).deadline(DEADLINE)
}

fn rootfs(ct: &Container) -> PathBuf {
    ct.lxc_home.join(&ct.id).join("rootfs")
}

/// The host uid of the container's root (the owner of its rootfs).
fn root_host_id(ct: &Container) -> u32 {
    std::fs::metadata(rootfs(ct)).unwrap().uid()
}

/// The message of a command error; a timeout or any other outcome fails the test with
/// what it was.
#[track_caller]
fn refusal<T: std::fmt::Debug>(what: &str, result: Result<T, Error>) -> String {
    match result.map_err(Error::into_kind) {
        Err(ErrorKind::Command { message }) => {
            assert!(
                !message.contains('\n'),
                "{what}: the refusal is not one line: {message:?}"
            );
            message
        }
        other => panic!("{what}: expected a clear refusal, got {other:?}"),
    }
}

/// Runs `script` with `sh -c` as the container's system user (uid = gid = ugid), the way
/// that user could on its own.
#[track_caller]
fn as_user(ct: &Container, script: &str) {
    let id = ct.ugid.to_string();
    let out = Command::new("setpriv")
        .args([
            &format!("--reuid={id}"),
            &format!("--regid={id}"),
            "--clear-groups",
            "sh",
            "-c",
            script,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "as {} ({script}): {}",
        ct.user,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `cmd` inside the running container as its root (liblxc attach, as the container's
/// user, in its cgroups): what the container's root can do on its own.
#[track_caller]
fn as_container_root(ct: &Container, cmd: &[&str]) {
    let cmd: Vec<String> = cmd.iter().map(|s| (*s).to_owned()).collect();
    let rc = commands::Exec::run_with(
        &call(ct)
            .stdout(ctl_core::Stdio::Null)
            .stderr(ctl_core::Stdio::Null),
        cmd.clone(),
        false,
        false,
        Default::default(),
    )
    .unwrap_or_else(|e| panic!("exec {cmd:?} in the container: {e}"));
    assert_eq!(rc, 0, "exec {cmd:?} in the container");
}

// ---------------------------------------------------------------------------------------
// (4) FIFOs and terminals where read_file expects a file

/// The container's root plants a FIFO (and a symlink to it) in its rootfs: both
/// `read_file` tasks refuse at once, naming the path and "FIFO", instead of waiting for a
/// writer until the deadline.
#[test]
fn read_file_refuses_a_fifo_planted_by_the_container_root() {
    let t = TestContainer::running("sfifo");
    let ct = t.container();
    as_container_root(ct, &["mkfifo", "/trap"]);
    as_container_root(ct, &["ln", "-s", "/trap", "/trap-link"]);
    let host_side = rootfs(ct).join("trap");
    assert!(
        std::fs::symlink_metadata(&host_side).is_ok(),
        "the FIFO made inside is not at {}",
        host_side.display()
    );

    for path in ["/trap", "/trap-link"] {
        let t0 = Instant::now();
        let message = refusal(
            &format!("WithRootfs read_file {path}"),
            WithRootfs::run_with(&call(ct), "read_file".into(), json!(path)),
        );
        assert!(
            message.contains(path) && message.contains("FIFO"),
            "WithRootfs {path}: {message}"
        );
        assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
        let t0 = Instant::now();
        let message = refusal(
            &format!("WithMountns read_file {path}"),
            WithMountns::run_with(&call(ct), "read_file".into(), json!(path), None, None),
        );
        assert!(
            message.contains(path) && message.contains("FIFO"),
            "WithMountns {path}: {message}"
        );
        assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    }
}

/// Character devices inside the container's mount namespace (LXC bind-mounts the host's
/// `/dev/tty`, `/dev/null`... there): a symlink to `/dev/tty` made the root-side runner
/// open the daemon's controlling terminal. `read_file` reads regular files only, and says
/// what it found.
#[test]
fn read_file_refuses_terminals_and_other_devices() {
    let t = TestContainer::running("stty");
    let ct = t.container();
    as_container_root(ct, &["ln", "-s", "/dev/tty", "/tty-link"]);
    as_container_root(ct, &["ln", "-s", "/dev/null", "/null-link"]);
    for path in ["/tty-link", "/dev/tty", "/null-link", "/dev/null"] {
        let message = refusal(
            &format!("WithMountns read_file {path}"),
            WithMountns::run_with(&call(ct), "read_file".into(), json!(path), None, None),
        );
        assert!(
            message.contains(path) && message.contains("character device"),
            "WithMountns {path}: {message}"
        );
    }
    // Through the rootfs: a directory and a symlink to one are not files either.
    for path in ["/etc", "/tty-link"] {
        let message = refusal(
            &format!("WithRootfs read_file {path}"),
            WithRootfs::run_with(&call(ct), "read_file".into(), json!(path)),
        );
        assert!(message.contains(path), "WithRootfs {path}: {message}");
    }
    // A regular file still reads.
    let v = WithMountns::run_with(
        &call(ct),
        "read_file".into(),
        json!("/etc/passwd"),
        None,
        None,
    )
    .unwrap();
    assert_eq!(v, json!("root:x:0:0:root:/root:/bin/sh\n"));
}

// ---------------------------------------------------------------------------------------
// (5) The container's user redirects root-side work to another container

/// Container B's user (it owns B's LXC home) moves B's directory aside and puts a
/// symlink to container A's directory in its place: `mv B B.real && ln -s .../A B`.
/// Returns a guard that undoes it.
struct Redirect<'a> {
    b: &'a Container,
}

impl<'a> Redirect<'a> {
    fn new(b: &'a Container, a: &Container) -> Redirect<'a> {
        let a_dir = a.lxc_home.join(&a.id);
        as_user(
            b,
            &format!(
                "cd '{}' && mv '{id}' '{id}.real' && ln -s '{}' '{id}'",
                b.lxc_home.display(),
                a_dir.display(),
                id = b.id
            ),
        );
        Redirect { b }
    }
}

impl Drop for Redirect<'_> {
    fn drop(&mut self) {
        let dir = self.b.lxc_home.join(&self.b.id);
        let _ = std::fs::remove_file(&dir);
        let _ = std::fs::rename(self.b.lxc_home.join(format!("{}.real", self.b.id)), &dir);
    }
}

/// WithRootfs, WithMountns and Runscript on B through B's redirected directory: each
/// refuses, naming the symlink, and nothing of A is read or written (A's root-only file
/// stays unread, A's rootfs top directory unchanged: a script created and removed again
/// would change its mtime).
#[test]
fn a_container_user_cannot_redirect_root_to_another_container() {
    let ta = TestContainer::new("sreda");
    let tb = TestContainer::new("sredb");
    let (a, b) = (ta.container(), tb.container());
    // A's root-only file, as A's root would make it.
    let secret = rootfs(a).join("root/secret");
    std::fs::write(&secret, b"A's secret\n").unwrap();
    let id = root_host_id(a);
    std::os::unix::fs::chown(&secret, Some(id), Some(id)).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    // Before the attack, B reads its own (missing) file.
    let before = WithRootfs::run_with(&call(b), "read_file".into(), json!("/root/secret"));
    assert!(before.is_err(), "{before:?}");

    let a_top = std::fs::metadata(rootfs(a)).unwrap();
    let redirect = Redirect::new(b, a);
    let message = refusal(
        "WithRootfs on B",
        WithRootfs::run_with(&call(b), "read_file".into(), json!("/root/secret")),
    );
    assert!(
        message.contains("symlink") && message.contains(&b.id),
        "WithRootfs: {message}"
    );
    let message = refusal(
        "WithMountns on B",
        WithMountns::run_with(
            &call(b),
            "read_file".into(),
            json!("/root/secret"),
            Some(1),
            None,
        ),
    );
    assert!(message.contains("symlink"), "WithMountns: {message}");
    let script = tempfile_script("#!/bin/sh\necho ran > /from-b\n");
    let message = refusal(
        "Runscript on B",
        Runscript::run_with(
            &call(b),
            ScriptSource::File(script.path.clone()),
            Vec::new(),
            false,
            false,
        ),
    );
    assert!(message.contains("symlink"), "Runscript: {message}");
    let a_top_after = std::fs::metadata(rootfs(a)).unwrap();
    assert_eq!(
        (a_top.mtime(), a_top.mtime_nsec()),
        (a_top_after.mtime(), a_top_after.mtime_nsec()),
        "Runscript on B changed A's rootfs"
    );
    assert!(!rootfs(a).join("from-b").exists());
    drop(redirect);
    // Undone: B works again.
    let v = WithRootfs::run_with(&call(b), "read_file".into(), json!("/etc/passwd")).unwrap();
    assert_eq!(v, json!("root:x:0:0:root:/root:/bin/sh\n"));
}

/// B's config replaced by a copy of A's that belongs to A's user (what a link to A's file
/// would show; hard links are stopped by `protected_hardlinks`, so the test plants it as
/// root). A's id map is delegated to A's user, so the old delegation check passed and B's
/// calls ran on A's rootfs; now the config must belong to B's user.
#[test]
fn a_config_owned_by_another_user_is_refused() {
    let ta = TestContainer::new("sowna");
    let tb = TestContainer::new("sownb");
    let (a, b) = (ta.container(), tb.container());
    let config_b = b.lxc_home.join(&b.id).join("config");
    let original = std::fs::read(&config_b).unwrap();
    let config_a = std::fs::read(a.lxc_home.join(&a.id).join("config")).unwrap();
    std::fs::write(&config_b, &config_a).unwrap();
    std::os::unix::fs::chown(&config_b, Some(a.ugid), Some(a.ugid)).unwrap();
    let message = refusal(
        "WithRootfs on B with A's config",
        WithRootfs::run_with(&call(b), "read_file".into(), json!("/etc/passwd")),
    );
    assert!(
        message.contains(&config_b.display().to_string()) && message.contains(&a.ugid.to_string()),
        "{message}"
    );
    let script = tempfile_script("#!/bin/sh\ntrue\n");
    let message = refusal(
        "Runscript on B with A's config",
        Runscript::run_with(
            &call(b),
            ScriptSource::File(script.path.clone()),
            Vec::new(),
            false,
            false,
        ),
    );
    assert!(message.contains(&a.ugid.to_string()), "{message}");
    std::fs::write(&config_b, &original).unwrap();
    std::os::unix::fs::chown(&config_b, Some(b.ugid), Some(b.ugid)).unwrap();
    WithRootfs::run_with(&call(b), "read_file".into(), json!("/etc/passwd")).unwrap();
}

/// The rootfs B's config names lies in B's LXC home below a directory that B's user
/// replaced with a symlink to A's directory: refused (no symlink is followed inside the
/// user's trees), before the owner check would even see A's rootfs.
#[test]
fn a_rootfs_reached_through_a_symlink_in_the_lxc_home_is_refused() {
    let ta = TestContainer::new("srfa");
    let tb = TestContainer::new("srfb");
    let (a, b) = (ta.container(), tb.container());
    let config_b = b.lxc_home.join(&b.id).join("config");
    let original = std::fs::read_to_string(&config_b).unwrap();
    let via = b.lxc_home.join("via");
    as_user(
        b,
        &format!(
            "ln -s '{}' '{}'",
            a.lxc_home.join(&a.id).display(),
            via.display()
        ),
    );
    let edited = original.replace(
        &format!("lxc.rootfs.path = dir:{}", rootfs(b).display()),
        &format!("lxc.rootfs.path = dir:{}", via.join("rootfs").display()),
    );
    assert_ne!(
        edited, original,
        "the config names no dir: rootfs:\n{original}"
    );
    std::fs::write(&config_b, &edited).unwrap();
    let message = refusal(
        "WithRootfs on B, rootfs via a symlink",
        WithRootfs::run_with(&call(b), "read_file".into(), json!("/etc/passwd")),
    );
    assert!(
        message.contains("rootfs") && message.contains("symlink"),
        "{message}"
    );
    std::fs::write(&config_b, &original).unwrap();
    let _ = std::fs::remove_file(&via);
}

/// A script file on the host, removed on drop.
struct Script {
    path: PathBuf,
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn tempfile_script(body: &str) -> Script {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let path = std::env::temp_dir().join(format!(
        "ctl-secfiles-{}-{}.sh",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, body).unwrap();
    Script { path }
}
