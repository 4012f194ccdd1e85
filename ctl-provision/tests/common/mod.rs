//! Shared helpers of the integration tests: unique names, a destroy-on-drop guard, and
//! the checks that LXC is installed (the tests fail, never skip, when it is not).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use ctl_core::Container;
use ctl_provision::{CreateOptions, Provisioner};

/// Fails (not skips) when the machine cannot run the tests.
pub fn require_lxc() {
    assert_eq!(
        ctl_provision_effective_uid(),
        0,
        "these tests create users and containers and must run as root"
    );
    for tool in [
        "/usr/bin/lxc-start",
        "/usr/bin/lxc-info",
        "/usr/bin/newuidmap",
        "/bin/busybox",
        "/usr/bin/setpriv",
    ] {
        assert!(
            Path::new(tool).exists(),
            "{tool} is missing: install lxc, uidmap, busybox-static"
        );
    }
}

fn ctl_provision_effective_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX)
}

/// A name unique across parallel test binaries (pid) and tests (counter): `<prefix>-<pid>-<n>`.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A state directory and provisioner for one test; the temp dir goes away on drop.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub prov: Provisioner,
}

impl Env {
    pub fn new() -> Env {
        require_lxc();
        let dir = tempfile::tempdir().expect("tempdir");
        let prov = Provisioner::new(dir.path()).expect("provisioner");
        Env { dir, prov }
    }

    pub fn state_dir(&self) -> PathBuf {
        self.prov.state_dir().to_owned()
    }
}

/// Destroys the container on drop, so failing tests do not leak users and cgroups.
pub struct Guard<'a> {
    pub prov: &'a Provisioner,
    pub name: String,
    pub ct: Option<Container>,
}

impl<'a> Guard<'a> {
    pub fn create(prov: &'a Provisioner, name: String, opts: &CreateOptions) -> Guard<'a> {
        let mut guard = Guard {
            prov,
            name,
            ct: None,
        };
        guard.ct = Some(prov.create(&guard.name, opts).expect("create container"));
        guard
    }

    pub fn ct(&self) -> &Container {
        self.ct.as_ref().expect("created")
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.prov.destroy(&self.name) {
            eprintln!("cleanup: destroy {} failed: {e}", self.name);
            if !std::thread::panicking() {
                panic!("destroy {} failed: {e}", self.name);
            }
        }
    }
}
