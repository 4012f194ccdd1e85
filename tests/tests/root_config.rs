//! Root-side runners never load the container's LXC config through liblxc: the container's
//! user can edit that file, and liblxc opens `lxc.log.file` for writing while loading it.

use commands::{GetHostname, WithMountns};
use ctl_core::{Call, Stdio};
use serde_json::json;
use tests::fixtures::TestContainer;

#[test]
fn a_hostile_log_file_in_the_config_is_never_written_by_root() {
    let ct = TestContainer::running("rootcfg");
    let c = ct.container();
    // A directory only root can write to: if root loaded the config with liblxc, the log
    // file would appear in it.
    let trap_dir = std::env::temp_dir().join(format!("ctl-root-trap-{}", std::process::id()));
    std::fs::create_dir_all(&trap_dir).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&trap_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let trap = trap_dir.join("pwned.log");
    let config = c.lxc_home.join(&c.id).join("config");
    let original = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!("{original}\nlxc.log.file = {}\n", trap.display()),
    )
    .unwrap();

    let call = Call::new(c).stdout(Stdio::Null).stderr(Stdio::Null);
    let hostname = GetHostname::run_with(&call);
    let task = WithMountns::run_with(
        &call,
        "read_file".into(),
        json!({"path": "/etc/hostname"}),
        None,
        None,
    );
    // Whatever the calls answered, root wrote nothing there.
    assert!(
        !trap.exists(),
        "root wrote the container's log file: {:?} {:?}",
        hostname,
        task
    );
    std::fs::write(&config, original).unwrap();
    let _ = std::fs::remove_dir_all(&trap_dir);
    // With the config restored, both work.
    assert_eq!(GetHostname::run_with(&call).unwrap(), c.id);
}
