//! A throwaway system user with a container context, for tests that need a real user
//! and real cgroups but no LXC container.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use ctl_core::{Container, Rlimit, RlimitValue};

/// Serialises useradd/userdel within one test process (they lock /etc/passwd).
static ACCOUNTS: Mutex<()> = Mutex::new(());
/// Numbers the users of this process (their uid/gid is derived from it and the pid).
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

/// Runs a tool; its stderr is the error.
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
        crate::require::require_root("real users and cgroups");
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
                runtime_dir: None,
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

/// Runs `f` again while it fails on a held passwd/group lock (another process runs
/// useradd or userdel), up to 20 times 100 ms.
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
