//! Real unprivileged LXC containers made by the project's provisioner for tests, destroyed
//! (container, user, subids, cgroups, files) on drop.
//!
//! [`TestContainer`] owns its provisioner and state dir (the `tests` crate's fixture);
//! [`Env`] and [`Guard`] split the two for `ctl-provision`'s own tests, which create
//! several containers in one state dir and look at the state dir itself.

use std::path::PathBuf;

use ctl_core::Container;
use ctl_provision::{CreateOptions, Provisioner};

use crate::names::unique_name;
use crate::require::require_lxc;

/// A real unprivileged busybox container under its own throwaway system user, made by
/// the project's provisioner in a temporary state dir; destroyed (container, user,
/// subids, cgroups, files) on drop.
pub struct TestContainer {
    pub container: Container,
    pub provisioner: Provisioner,
    name: String,
    _state_dir: tempfile_dir::TempDir,
}

mod tempfile_dir {
    /// A directory of a fixed name removed on drop (a short path: LXC's paths grow from
    /// it).
    pub struct TempDir(pub std::path::PathBuf);
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl TestContainer {
    /// Creates a stopped container named [`unique_name(tag)`](unique_name) (tags must be
    /// short).
    pub fn new(tag: &str) -> TestContainer {
        Self::with_options(tag, &CreateOptions::default())
    }

    /// Creates a container with these options.
    pub fn with_options(tag: &str, opts: &CreateOptions) -> TestContainer {
        crate::require::require_root("real LXC containers");
        let name = unique_name(tag);
        let dir = std::env::temp_dir().join(format!("ctl-tests-{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let provisioner = Provisioner::new(&dir).unwrap_or_else(|e| panic!("provisioner: {e}"));
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
            &CreateOptions {
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

/// A state directory and provisioner for one test; the temp dir goes away on drop.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub prov: Provisioner,
}

// No `Default`: making one changes the host (a directory, checks that need root).
#[allow(clippy::new_without_default)]
impl Env {
    /// Checks the machine first ([`require_lxc`]): `ctl-provision`'s tests fail, never
    /// skip, where LXC is missing.
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

/// A container created with a borrowed provisioner, destroyed on drop, so failing tests
/// do not leak users and cgroups. Unlike [`TestContainer`] (which warns), a failed destroy
/// fails the test unless it is failing already: `ctl-provision`'s tests test destroy too.
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
