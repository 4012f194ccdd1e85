//! StopByHalt and Stop use `halt` inside the container, else `poweroff`, else `shutdown`
//! (osctld's order): a container without `halt` still shuts down cleanly.

use commands::{Exec, StopByHalt};
use tests::fixtures::{command_call, TestContainer};

#[test]
fn stop_by_halt_falls_back_to_poweroff() {
    let ct = TestContainer::running("sfb");
    // The busybox rootfs has halt and poweroff as links to busybox in /bin; remove halt.
    let rc = Exec::run_with(
        &command_call(ct.container()),
        vec!["rm".into(), "/bin/halt".into()],
        false,
        false,
        Default::default(),
    )
    .unwrap();
    assert_eq!(rc, 0);
    let rc = Exec::run_with(
        &command_call(ct.container()),
        vec![
            "sh".into(),
            "-c".into(),
            "for d in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do \
             test -e $d/halt && exit 0; done; exit 1"
                .into(),
        ],
        false,
        false,
        Default::default(),
    )
    .unwrap();
    assert_ne!(rc, 0, "halt must be gone for this test");
    assert!(StopByHalt::run_with(&command_call(ct.container()), None).unwrap());
    // poweroff started the shutdown; the container ends by itself.
    let start = std::time::Instant::now();
    while !ct.lxc_state().eq_ignore_ascii_case("stopped") {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "still {} after poweroff",
            ct.lxc_state()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
