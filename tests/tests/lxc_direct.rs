//! The paths that talk to LXC without liblxc, on real unprivileged containers:
//! - `State`'s frontend asks the LXC monitor over its command socket, in-process: its
//!   answers match liblxc's (the runner half) and `lxc-info`'s in every state, and a socket
//!   served by someone else is refused, not believed;
//! - `Freeze`/`Unfreeze` write the payload's freezer cgroup as the container's user and
//!   tell the monitor: the kernel, `lxc-info` and `lxc-wait` listeners all agree.
//!
//! Needs root and `cargo build --workspace --bins` first (the runner binary).

use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use commands::{Freeze, State, Unfreeze};
use ctl_lxc::command_socket::{self, CommandSocketError};
use ctl_provision::oracle;
use tests::fixtures::{command_call as call, command_error, TestContainer};

/// The answer of the runner half (liblxc as the container's user).
fn runner_state(ct: &ctl_core::Container) -> commands::StateInfo {
    State::runner(&call(ct)).unwrap_or_else(|e| panic!("State through the runner: {e}"))
}

#[test]
fn state_from_the_monitor_matches_liblxc_and_lxc_info() {
    let tc = TestContainer::running("sock");
    let ct = tc.container();

    // Running: the frontend needs no runner at all (this one does not exist).
    let direct = State::run_with(&call(ct).runner("/nonexistent/ctl-runner"))
        .unwrap_or_else(|e| panic!("State: {e}"));
    assert_eq!(direct.state, "running");
    assert_eq!(direct.state, oracle::lxc_state(ct).unwrap());
    assert_eq!(direct.init_pid, oracle::lxc_init_pid(ct).unwrap());
    assert!(direct.init_pid.is_some_and(|p| p > 1));
    assert_eq!(direct, runner_state(ct));

    let raw = command_socket::query_state(&ct.lxc_home, &ct.id, &[ct.ugid], None)
        .unwrap()
        .expect("a running container has a monitor");
    assert_eq!(raw.init_pid, direct.init_pid);

    // Frozen: the monitor's state, as liblxc and lxc-info report it.
    assert!(Freeze::run_with(&call(ct)).unwrap());
    let frozen = State::run_with(&call(ct).runner("/nonexistent/ctl-runner")).unwrap();
    assert_eq!(frozen.state, "frozen");
    assert_eq!(oracle::lxc_state(ct).unwrap(), "frozen");
    assert_eq!(frozen, runner_state(ct));
    assert!(Unfreeze::run_with(&call(ct)).unwrap());
    let thawed = State::run_with(&call(ct)).unwrap();
    assert_eq!(thawed.state, "running");
    assert_eq!(thawed, runner_state(ct));

    // A monitor only trusted as another uid is refused.
    let foreign = command_socket::query_state(&ct.lxc_home, &ct.id, &[ct.ugid + 1], None);
    assert!(
        matches!(foreign, Err(CommandSocketError::ForeignPeer { uid, .. }) if uid == ct.ugid),
        "{foreign:?}"
    );

    // Stopped: no monitor listens any more.
    oracle::stop(ct).unwrap();
    let stopped = State::run_with(&call(ct).runner("/nonexistent/ctl-runner")).unwrap();
    assert_eq!(stopped.state, "stopped");
    assert_eq!(stopped.init_pid, None);
    assert_eq!(
        command_socket::query_state(&ct.lxc_home, &ct.id, &[ct.ugid], None).unwrap(),
        None
    );
    assert_eq!(stopped, runner_state(ct));
}

/// A socket under a made-up lxcpath, bound by root: stands for a monitor name squatted by
/// someone else.
fn squat(lxcpath: &Path, name: &str) -> UnixListener {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(command_socket::socket_name(
        lxcpath, name,
    ))
    .unwrap();
    UnixListener::bind_addr(&addr).unwrap()
}

#[test]
fn a_squatted_socket_is_refused() {
    let lxcpath = Path::new("/nonexistent/ctl-test-squat");
    let name = format!("sq-{}", std::process::id());
    let _listener = squat(lxcpath, &name);
    // Root (uid 0) bound it; a container user's monitor is expected.
    let answer = command_socket::query_state(lxcpath, &name, &[4242], None);
    assert!(
        matches!(answer, Err(CommandSocketError::ForeignPeer { uid: 0, .. })),
        "{answer:?}"
    );
}

#[test]
fn a_silent_monitor_ends_at_the_deadline() {
    let lxcpath = Path::new("/nonexistent/ctl-test-silent");
    let name = format!("si-{}", std::process::id());
    let _listener = squat(lxcpath, &name);
    let t = Instant::now();
    let deadline = Some(t + Duration::from_millis(300));
    let answer = command_socket::query_state(lxcpath, &name, &[0], deadline);
    assert!(
        matches!(answer, Err(CommandSocketError::Timeout { .. })),
        "{answer:?}"
    );
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
}

#[test]
fn garbage_answers_are_protocol_errors() {
    use std::io::{Read, Write};
    let lxcpath = Path::new("/nonexistent/ctl-test-garbage");
    let name = format!("ga-{}", std::process::id());
    let listener = squat(lxcpath, &name);
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut req = [0u8; 16];
        conn.read_exact(&mut req).unwrap();
        // ret 0, datalen 0, state 99: no such state.
        let mut rsp = [0u8; 16];
        rsp[8..16].copy_from_slice(&99i64.to_ne_bytes());
        conn.write_all(&rsp).unwrap();
        i32::from_ne_bytes(req[..4].try_into().unwrap())
    });
    let answer = command_socket::query_state(lxcpath, &name, &[0], None);
    assert!(
        matches!(&answer, Err(CommandSocketError::Protocol { what, .. }) if what.contains("unknown state 99")),
        "{answer:?}"
    );
    assert_eq!(server.join().unwrap(), 3, "GET_STATE is LXC command 3");
}

#[test]
fn an_init_pid_outside_the_container_is_refused() {
    // A container whose lxcpath/name the test controls, with a "monitor" bound by its user
    // that names pid 1: the frontend must not believe it.
    let tc = TestContainer::new("sockf");
    let ct = tc.container();
    // Make the payload cgroup exist, as for a running container.
    let payload = format!("{}/lxc.payload.{}", ct.cgroup_path, ct.id);
    ctl_core::cgroup::create_entry(&payload, ct.ugid).unwrap();
    let listener = squat(&ct.lxc_home, &ct.id);
    // Root bound the socket, and root is a trusted monitor owner.
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        for answer in [2i64, 1] {
            // RUNNING, then init pid 1.
            let (mut conn, _) = listener.accept().unwrap();
            let mut req = [0u8; 16];
            conn.read_exact(&mut req).unwrap();
            let mut rsp = [0u8; 16];
            rsp[8..16].copy_from_slice(&answer.to_ne_bytes());
            conn.write_all(&rsp).unwrap();
        }
    });
    let result = State::run_with(&call(ct));
    server.join().unwrap();
    ctl_core::cgroup::remove_entry(&payload).unwrap();
    let message = command_error(result);
    assert!(
        message.contains(&format!("init pid 1 of container {}", ct.id))
            && message.contains("not in the container's cgroup"),
        "{message}"
    );
}

/// The kernel's word for the payload's v1 freezer.
fn kernel_freezer_state(ct: &ctl_core::Container) -> String {
    let freezer = ctl_core::cgroup::hierarchies()
        .iter()
        .find(|h| h.has_controller("freezer"))
        .expect("these hosts have a v1 freezer");
    let file: PathBuf = freezer
        .path_of(&ct.cgroup_path)
        .join(format!("lxc.payload.{}/freezer.state", ct.id));
    std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .trim()
        .to_owned()
}

/// `lxc-wait -s <state>` as the container's user, started and given time to register
/// with the monitor as a state listener.
fn lxc_wait(ct: &ctl_core::Container, state: &str) -> std::process::Child {
    let child = oracle::command_as_user(
        ct,
        "lxc-wait",
        [
            "-P",
            ct.lxc_home.to_str().unwrap(),
            "-n",
            &ct.id,
            "-s",
            state,
            "-t",
            "60",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    child
}

fn assert_waited(child: std::process::Child, what: &str) {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "lxc-wait for {what}: {} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn freeze_and_thaw_reach_the_kernel_lxc_and_its_listeners() {
    let tc = TestContainer::running("frz");
    let ct = tc.container();
    assert_eq!(kernel_freezer_state(ct), "THAWED");

    // Round 0: the frontends, in-process (no runner: this one does not exist). Round 1:
    // the runner halves, as the container's user. Round 2: the frontends again.
    for round in 0..3 {
        let runner_half = round == 1;
        let no_runner = call(ct).runner("/nonexistent/ctl-runner");
        let freeze = || {
            if runner_half {
                Freeze::runner(&call(ct))
            } else {
                Freeze::run_with(&no_runner)
            }
        };
        let unfreeze = || {
            if runner_half {
                Unfreeze::runner(&call(ct))
            } else {
                Unfreeze::run_with(&no_runner)
            }
        };
        let waiter = lxc_wait(ct, "FROZEN");
        assert!(freeze().unwrap_or_else(|e| panic!("round {round}: {e}")));
        assert_eq!(kernel_freezer_state(ct), "FROZEN", "round {round}");
        assert_eq!(oracle::lxc_state(ct).unwrap(), "frozen");
        assert_waited(waiter, "FROZEN");
        // Freezing a frozen container is fine, as with liblxc.
        assert!(freeze().unwrap());
        assert_eq!(runner_state(ct).state, "frozen");

        let waiter = lxc_wait(ct, "RUNNING");
        assert!(unfreeze().unwrap_or_else(|e| panic!("round {round}: {e}")));
        assert_eq!(kernel_freezer_state(ct), "THAWED");
        assert_eq!(oracle::lxc_state(ct).unwrap(), "running");
        assert_waited(waiter, "RUNNING");
        // The container works again: attach runs in it.
        let out = oracle::attach(ct, &["true"]).unwrap();
        assert!(out.status.success(), "attach after thaw: {out:?}");
    }

    // LXC's own tools and ours interoperate: lxc-freeze, then our Unfreeze, and back.
    let out = oracle::lxc_tool(ct, "lxc-freeze", &[]).unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(Unfreeze::run_with(&call(ct)).unwrap());
    assert_eq!(oracle::lxc_state(ct).unwrap(), "running");
    assert!(Freeze::run_with(&call(ct)).unwrap());
    let out = oracle::lxc_tool(ct, "lxc-unfreeze", &[]).unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(oracle::lxc_state(ct).unwrap(), "running");
    assert_eq!(kernel_freezer_state(ct), "THAWED");

    // Stopped: the runner's liblxc path gives its clear error.
    oracle::stop(ct).unwrap();
    let message = command_error(Freeze::run_with(&call(ct)));
    assert!(message.contains("not running"), "{message}");
    let message = command_error(Unfreeze::run_with(&call(ct)));
    assert!(message.contains("not running"), "{message}");
}
