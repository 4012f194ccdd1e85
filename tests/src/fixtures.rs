//! Real system users, homes and cgroups for tests, removed again on drop.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use ctl_core::{Container, Rlimit, RlimitValue};

/// Serialises useradd/userdel within one test process (they lock /etc/passwd).
static ACCOUNTS: Mutex<()> = Mutex::new(());
static NEXT: AtomicU32 = AtomicU32::new(0);

/// A throwaway system user with uid = gid, a home directory and a container context whose
/// entry cgroup lives under `ctl-test/`. Everything is removed on drop.
pub struct TestUser {
    pub container: Container,
    pub home: PathBuf,
}

/// The rlimits every test container gets, so that tests can see them applied.
pub fn test_rlimits() -> BTreeMap<String, Rlimit> {
    let mut r = BTreeMap::new();
    r.insert(
        "nofile".to_owned(),
        Rlimit {
            soft: RlimitValue::Limited(1000),
            hard: RlimitValue::Limited(2000),
        },
    );
    r.insert(
        "RLIMIT_CORE".to_owned(),
        Rlimit {
            soft: RlimitValue::Limited(0),
            hard: RlimitValue::Unlimited,
        },
    );
    r
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl TestUser {
    /// Creates the user. Panics (it is a test fixture) with the tool's error text.
    pub fn new(tag: &str) -> TestUser {
        assert!(
            nix::unistd::geteuid().is_root(),
            "these tests need root (real users and cgroups)"
        );
        let _guard = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
        let pid = std::process::id();
        let mut last_err = String::new();
        for _ in 0..50 {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let ugid = 170_000 + (pid % 2000) * 10 + n % 10 + (n / 10) * 20_000;
            let name = format!("ctlt{ugid}");
            if Command::new("getent")
                .args(["passwd", &ugid.to_string()])
                .output()
                .is_ok_and(|o| o.status.success())
                || Command::new("getent")
                    .args(["group", &ugid.to_string()])
                    .output()
                    .is_ok_and(|o| o.status.success())
            {
                continue;
            }
            let home = std::env::temp_dir().join(format!("ctl-test-{name}"));
            let created =
                retry(|| run(Command::new("groupadd").args(["-g", &ugid.to_string(), &name])))
                    .and_then(|()| {
                        retry(|| {
                            run(Command::new("useradd").args([
                                "-u",
                                &ugid.to_string(),
                                "-g",
                                &ugid.to_string(),
                                "-M",
                                "-d",
                                home.to_str().unwrap(),
                                "-s",
                                "/usr/sbin/nologin",
                                &name,
                            ]))
                        })
                    });
            if let Err(e) = created {
                last_err = e;
                let _ = run(Command::new("groupdel").arg(&name));
                continue;
            }
            std::fs::create_dir_all(home.join("lxc")).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o755)).unwrap();
            std::os::unix::fs::chown(&home, Some(ugid), Some(ugid)).unwrap();
            let id = format!("{tag}-{ugid}");
            let container = Container {
                pool: "test".to_owned(),
                id: id.clone(),
                user: name,
                ugid,
                home: home.clone(),
                lxc_home: home.join("lxc"),
                log_file: home.join("lxc").join(format!("{id}.log")),
                cgroup_path: format!("ctl-test/{id}"),
                entry_cgroup_path: None,
                container_path: None,
                runner_path: None,
                rlimits: test_rlimits(),
            };
            return TestUser { container, home };
        }
        panic!("could not create a test user: {last_err}");
    }

    pub fn container(&self) -> &Container {
        &self.container
    }
}

fn retry(mut f: impl FnMut() -> Result<(), String>) -> Result<(), String> {
    let mut last = String::new();
    for _ in 0..20 {
        match f() {
            Ok(()) => return Ok(()),
            // Another process holds the passwd lock: try again shortly.
            Err(e) if e.contains("lock") => {
                last = e;
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _guard = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
        let ct = &self.container;
        // Runners are reaped by then; a cgroup still busy would be a leak worth seeing.
        for _ in 0..50 {
            match ctl_core::cgroup::remove_entry(&ct.cgroup_path) {
                Ok(()) => break,
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        let _ = retry(|| run(Command::new("userdel").arg(&ct.user)));
        let _ = retry(|| run(Command::new("groupdel").arg(&ct.user)));
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

/// The `ctl-test-runner` binary built next to the test binary.
pub fn test_runner_path() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    dir.join("ctl-test-runner")
}

/// Number of open fds of this process, not counting the kept `cgroup.procs` files.
pub fn open_fd_count() -> usize {
    // The `cgroup.procs` files the frontend keeps open across calls are deliberate and
    // bounded (kept_cgroup_files.rs tests them): forgotten first, they cannot hide a leak.
    ctl_core::frontend::forget_cgroup_files();
    ctl_core::diag::open_fds().unwrap().len()
}

/// Children of this process that are zombies (not reaped).
pub fn zombie_children() -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut zombies = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...
        let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) else {
            continue;
        };
        let mut fields = rest.split(' ');
        let state = fields.next().unwrap_or("");
        let ppid: i32 = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        if ppid == me && state == "Z" {
            zombies.push(pid);
        }
    }
    zombies
}

/// Whether a process exists (and is not a zombie).
pub fn process_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, r)| !r.starts_with('Z')),
        Err(_) => false,
    }
}

/// Writes an executable shell script (a fake runner for protocol-fault tests).
pub fn write_script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// Serialises the tests of one test binary that count fds or children: those counts are
/// process-wide, and other tests running in parallel threads would change them.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Waits briefly for zombies to be reaped by the threads that own them; returns those
/// still there (a real leak stays).
pub fn lingering_zombies() -> Vec<i32> {
    for _ in 0..50 {
        if zombie_children().is_empty() {
            return Vec::new();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    zombie_children()
}

/// A real unprivileged busybox container under its own throwaway system user, made by
/// the project's provisioner in a temporary state dir; destroyed (container, user,
/// subids, cgroups, files) on drop.
pub struct TestContainer {
    pub container: Container,
    pub provisioner: ctl_provision::Provisioner,
    name: String,
    _state_dir: tempfile_dir::TempDir,
}

mod tempfile_dir {
    /// A directory removed on drop (kept small to avoid a dependency in the library).
    pub struct TempDir(pub std::path::PathBuf);
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl TestContainer {
    /// Creates a stopped container named `<tag>-<pid>-<n>` (tags must be short).
    pub fn new(tag: &str) -> TestContainer {
        Self::with_options(tag, &ctl_provision::CreateOptions::default())
    }

    /// Creates a container with these options.
    pub fn with_options(tag: &str, opts: &ctl_provision::CreateOptions) -> TestContainer {
        assert!(
            nix::unistd::geteuid().is_root(),
            "these tests need root (real LXC containers)"
        );
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("{tag}-{}-{n}", std::process::id() % 100_000);
        let dir = std::env::temp_dir().join(format!("ctl-tests-{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let provisioner =
            ctl_provision::Provisioner::new(&dir).unwrap_or_else(|e| panic!("provisioner: {e}"));
        let container = provisioner
            .create(&name, opts)
            .unwrap_or_else(|e| panic!("creating {name}: {e}"));
        TestContainer {
            container,
            provisioner,
            name,
            _state_dir: tempfile_dir::TempDir(dir),
        }
    }

    /// Creates and starts a container (with LXC's own tools, not the framework).
    pub fn running(tag: &str) -> TestContainer {
        Self::running_with(tag, ctl_provision::Layout::Default)
    }

    /// Creates a stopped container with this cgroup layout.
    pub fn with_layout(tag: &str, layout: ctl_provision::Layout) -> TestContainer {
        Self::with_options(
            tag,
            &ctl_provision::CreateOptions {
                layout,
                ..Default::default()
            },
        )
    }

    /// Creates a stopped container in osctld's cgroup layout: runners enter
    /// `<cgroup_path>/lxc.monitor.<id>`, the payload is its sibling.
    pub fn osctld_layout(tag: &str) -> TestContainer {
        Self::with_layout(tag, ctl_provision::Layout::Osctld)
    }

    /// Creates a container with this layout and starts it with LXC's own tools, from the
    /// container's cgroup (as osctld starts its containers).
    pub fn running_with(tag: &str, layout: ctl_provision::Layout) -> TestContainer {
        let ct = Self::with_layout(tag, layout);
        ctl_provision::oracle::start(&ct.container)
            .unwrap_or_else(|e| panic!("starting {}: {e}", ct.name));
        ct
    }

    /// [`running_with`](Self::running_with) osctld's layout.
    pub fn running_osctld(tag: &str) -> TestContainer {
        Self::running_with(tag, ctl_provision::Layout::Osctld)
    }

    pub fn container(&self) -> &Container {
        &self.container
    }

    /// `lxc-info` (run as the container's user in its cgroups) says this state.
    pub fn lxc_state(&self) -> String {
        ctl_provision::oracle::lxc_state(&self.container).unwrap()
    }
}

impl Drop for TestContainer {
    fn drop(&mut self) {
        if let Err(e) = self.provisioner.destroy(&self.name) {
            eprintln!("warning: destroying test container {}: {e}", self.name);
        }
    }
}

/// The standalone `ctl-runner` built in the same target dir.
pub fn ctl_runner_path() -> PathBuf {
    test_runner_path().with_file_name("ctl-runner")
}

/// A call through the standalone `ctl-runner`, with a generous deadline so that a hang
/// fails the test instead of blocking the suite.
pub fn command_call(ct: &Container) -> ctl_core::Call<'_> {
    ctl_core::Call::new(ct)
        .runner(ctl_runner_path())
        .deadline(Duration::from_secs(90))
}

/// The message of a command error; panics on any other kind of result.
#[track_caller]
pub fn command_error<T: std::fmt::Debug>(result: Result<T, ctl_core::Error>) -> String {
    match result {
        Err(ctl_core::Error::Command { message, .. }) => message,
        other => panic!("expected a command error, got {other:?}"),
    }
}

/// Spawns `cmd` with piped stdio, writes `input` to its stdin, closes it and collects the
/// output. A process that stops reading early (a refused envelope) is fine: the broken
/// pipe is ignored.
pub fn output_with_stdin(cmd: &mut std::process::Command, input: &[u8]) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(input);
    child.wait_with_output().unwrap()
}

/// Mount points of this process's mount namespace at or below `dir`.
pub fn host_mounts_under(dir: &Path) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_owned))
        .filter(|m| Path::new(m).starts_with(dir))
        .collect()
}

/// Asserts that `lines` (of `/proc/<pid>/cgroup`) name the entry cgroup `relative` in
/// every hierarchy of the host.
pub fn assert_in_entry_everywhere(lines: &[String], relative: &str) {
    let expected = format!("/{}", relative.trim_matches('/'));
    assert_eq!(
        lines.len(),
        ctl_core::cgroup::hierarchies().len(),
        "{lines:?}"
    );
    for line in lines {
        assert_eq!(
            line.splitn(3, ':').nth(2),
            Some(expected.as_str()),
            "{lines:?}"
        );
    }
}
