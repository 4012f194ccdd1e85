//! liblxc through the wrapper on a container that does not exist: loads the library,
//! exercises the object's life cycle and the error path without needing root or a running
//! container (those are tested in ctl-provision's tests, on real containers).

use std::time::Duration;

use ctl_lxc::{AttachOptions, AttachProgram, Container, LxcError, State};

#[test]
fn version_is_lxc_5() {
    let v = ctl_lxc::version().expect("liblxc.so.1 must be installed (apt-get install lxc)");
    assert!(v.starts_with("5."), "liblxc {v}");
}

#[test]
fn undefined_container_reports_stopped_and_fails_with_context() {
    let dir = tempfile::tempdir().unwrap();
    let ct = Container::open("nothing-here", dir.path()).unwrap();
    assert_eq!(ct.name(), "nothing-here");
    assert!(!ct.is_defined().unwrap());
    assert!(!ct.is_running().unwrap());
    assert_eq!(ct.state().unwrap(), State::Stopped);
    assert_eq!(ct.init_pid().unwrap(), None);
    assert!(!ct.wait(State::Running, Some(Duration::ZERO)).unwrap());
    // No config is loaded for a container that does not exist.
    assert!(ct.get_config_item("lxc.uts.name").is_err());

    let err = ct.freeze().unwrap_err();
    let op = err.op_error().expect("an OpError");
    assert_eq!((op.op, op.container.as_str()), ("freeze", "nothing-here"));
    let text = err.to_string();
    assert!(
        text.starts_with("lxc freeze of container \"nothing-here\" failed"),
        "{text}"
    );
    assert!(!text.contains('\n'), "{text}");

    let err = ct.get_running_config_item("lxc.uts.name").unwrap_err();
    assert!(err.to_string().contains("get_running_config_item"), "{err}");
    let err = ct
        .attach(&AttachOptions::default(), AttachProgram::Command(&["true"]))
        .unwrap_err();
    assert!(err.to_string().contains("lxc attach of container"), "{err}");
    assert!(ct.get_config_item("lxc.no.such.key").is_err());
}

#[test]
fn bad_arguments_are_rejected_before_liblxc() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        Container::open("", dir.path()),
        Err(LxcError::InvalidArgument { .. })
    ));
    assert!(matches!(
        Container::open("a\0b", dir.path()),
        Err(LxcError::InvalidArgument { .. })
    ));
    let ct = Container::open("x", dir.path()).unwrap();
    assert!(matches!(
        ct.get_config_item("a\0b"),
        Err(LxcError::InvalidArgument { .. })
    ));
    let empty: &[&str] = &[];
    assert!(matches!(
        ct.attach(&AttachOptions::default(), AttachProgram::Command(empty)),
        Err(LxcError::InvalidArgument { .. })
    ));
    assert!(matches!(
        ct.execute(empty, &Default::default()),
        Err(LxcError::InvalidArgument { .. })
    ));
}

#[test]
fn container_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<Container>();
    let dir = tempfile::tempdir().unwrap();
    let ct = Container::open("moved", dir.path()).unwrap();
    let name = std::thread::spawn(move || ct.name().to_owned())
        .join()
        .unwrap();
    assert_eq!(name, "moved");
}
