//! Red team: the container's user forges the init pid that root acts on.
//!
//! The container's system user owns its LXC home and, in cgroup v1, the cgroups below the
//! container's entry cgroup: with the container stopped, it can make the payload cgroup
//! exist, serve LXC's command socket (`@<lxc_home>/<id>/command`) itself and name any pid
//! as the container's init. `GetHostname` (root opens `ns/uts` and a root runner enters it)
//! and `WithMountns` (a root runner enters `ns/mnt`) must only ever act on a process in a
//! user namespace owned by the container's user that maps 0 to the container's root ids,
//! on a namespace owned by that user namespace:
//! - (a) the monitor's answer: a process of the user, in the entry cgroup, in a user and
//!   UTS namespace it made itself (`unshare -Ur --uts`, hostname `FORGED`);
//! - (b) the runner fallback: the monitor answers root an unknown state (the frontend then
//!   asks liblxc through a runner, as the container's user) and the runner a host process
//!   of root's: root would enter the host's namespaces.
//!
//! The fake monitor here is bound by the test (root, a monitor owner the frontend trusts,
//! as it trusts the container's user) and tells its peers apart by their uid, as the
//! reviewer's did. Needs root and `cargo build --workspace --bins` first (the runner).

use std::io::{Read, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use commands::{GetHostname, State, WithMountns};
use ctl_core::Container;
use ctl_lxc::command_socket;
use ctl_provision::oracle;
use serde_json::json;
use tests::fixtures::{command_call as call, TestContainer};

const GET_STATE: i32 = 3;
const GET_INIT_PID: i32 = 4;
const RUNNING: i64 = 2;

/// What the fake monitor answers one peer: its state and its init pid.
#[derive(Clone, Copy)]
struct Answer {
    state: i64,
    pid: i64,
}

/// Serves LXC's command socket of `ct` (as `ctl_lxc::command_socket` and liblxc speak it:
/// a 16-byte request `{cmd: i32, datalen: i32, data: u64}`, a 16-byte response `{ret: i32,
/// datalen: i32, data: u64}`, one command per connection) until the test process ends:
/// `to_root` for peers of uid 0 (the frontend), `to_user` for the others (a runner as the
/// container's user, through liblxc).
fn fake_monitor(ct: &Container, to_root: Answer, to_user: Answer) {
    let addr =
        SocketAddr::from_abstract_name(command_socket::socket_name(&ct.lxc_home, &ct.id)).unwrap();
    let listener = UnixListener::bind_addr(&addr).expect("binding the monitor's socket");
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut req = [0u8; 16];
            if conn.read_exact(&mut req).is_err() {
                continue;
            }
            let cmd = i32::from_ne_bytes(req[..4].try_into().unwrap());
            let uid =
                nix::sys::socket::getsockopt(&conn, nix::sys::socket::sockopt::PeerCredentials)
                    .map(|c| c.uid())
                    .unwrap_or(0);
            let answer = if uid == 0 { to_root } else { to_user };
            let data = match cmd {
                GET_STATE => answer.state,
                GET_INIT_PID => answer.pid,
                _ => 0,
            };
            let mut rsp = [0u8; 16];
            rsp[8..16].copy_from_slice(&data.to_ne_bytes());
            let _ = conn.write_all(&rsp);
        }
    });
}

/// The payload cgroup the user could make (`<entry>/lxc.payload.<id>`), removed on drop:
/// with it, the frontend believes the container may be running and asks the monitor.
struct Payload(String);

impl Payload {
    fn make(ct: &Container) -> Payload {
        let payload = format!("{}/lxc.payload.{}", ct.cgroup_path, ct.id);
        ctl_core::cgroup::create_entry(&payload, ct.ugid).unwrap();
        Payload(payload)
    }
}

impl Drop for Payload {
    fn drop(&mut self) {
        let _ = ctl_core::cgroup::remove_entry(&self.0);
    }
}

/// A process killed and reaped on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until `pid` runs `sleep` (its script has done what came before).
fn wait_for_sleep(pid: u32) {
    let t = Instant::now();
    while std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default() != "sleep\n" {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "pid {pid} never slept"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn host_hostname() -> String {
    nix::unistd::gethostname().unwrap().into_string().unwrap()
}

#[test]
fn a_forged_monitor_naming_a_namespace_the_user_made_is_refused() {
    let tc = TestContainer::new("ipa");
    let ct = tc.container();
    // As the container's user, in the container's entry cgroups (where it may move its own
    // processes): a user and UTS namespace of its own, hostname FORGED.
    let forger = oracle::command_as_user(
        ct,
        "unshare",
        [
            "-Ur",
            "--uts",
            "sh",
            "-c",
            "hostname FORGED && exec sleep 120",
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::inherit())
    .spawn()
    .unwrap();
    let forger = Killed(forger);
    let pid = forger.0.id();
    wait_for_sleep(pid);
    let _payload = Payload::make(ct);
    let answer = Answer {
        state: RUNNING,
        pid: pid.into(),
    };
    fake_monitor(ct, answer, answer);

    let hostname = GetHostname::run_with(&call(ct));
    assert!(
        hostname.is_err(),
        "root entered a UTS namespace the container's user made: {hostname:?}"
    );
    let message = hostname.unwrap_err().to_string();
    eprintln!("GetHostname: {message}");
    assert!(
        message.contains(&format!("init pid {pid} of container {}", ct.id))
            && message.contains("uid_map maps 0 to host id"),
        "{message}"
    );
    // Its mount namespace is the host's (unshare made none): root must not enter it.
    let task = WithMountns::run_with(
        &call(ct),
        "read_file".into(),
        json!("/etc/hostname"),
        None,
        None,
    );
    assert!(
        task.is_err(),
        "WithMountns ran in {pid}'s namespace: {task:?}"
    );
    eprintln!("WithMountns: {}", task.unwrap_err());
    // State names no such pid either (ctl ct ls shows it).
    let state = State::run_with(&call(ct));
    assert!(
        state.as_ref().map_or(true, |s| s.init_pid.is_none()),
        "{state:?}"
    );
}

#[test]
fn a_runner_fallback_naming_a_host_process_is_refused() {
    let tc = TestContainer::new("ipb");
    let ct = tc.container();
    // A process of root's on the host. The container's user cannot move it into its
    // cgroups; the test does, so that only the namespace checks stand in the way.
    let host = Killed(Command::new("sleep").arg("120").spawn().unwrap());
    let pid = host.0.id();
    let _payload = Payload::make(ct);
    for procs in ctl_core::cgroup::procs_files(&ct.cgroup_path) {
        std::fs::write(&procs, pid.to_string()).unwrap();
    }
    // Root (the frontend) gets an unknown state, so it asks liblxc through a runner, as
    // the container's user: that one gets RUNNING and the host pid.
    fake_monitor(
        ct,
        Answer { state: 99, pid: 0 },
        Answer {
            state: RUNNING,
            pid: pid.into(),
        },
    );

    let hostname = GetHostname::run_with(&call(ct));
    assert!(
        hostname.is_err(),
        "root entered the UTS namespace of host pid {pid} (the host's is {:?}): {hostname:?}",
        host_hostname()
    );
    let message = hostname.unwrap_err().to_string();
    eprintln!("GetHostname: {message}");
    assert!(
        message.contains(&format!("init pid {pid} of container {}", ct.id))
            && message.contains("is in the host's user namespace"),
        "{message}"
    );
    let task = WithMountns::run_with(
        &call(ct),
        "read_file".into(),
        json!("/etc/hostname"),
        None,
        None,
    );
    assert!(
        task.is_err(),
        "WithMountns ran in the host's mount namespace: {task:?}"
    );
    // An explicit pid is checked the same way.
    let task = WithMountns::run_with(
        &call(ct),
        "read_file".into(),
        json!("/etc/hostname"),
        Some(pid as i32),
        None,
    );
    assert!(
        task.is_err(),
        "WithMountns ran in host pid {pid}'s: {task:?}"
    );
    eprintln!("WithMountns {pid}: {}", task.unwrap_err());
    let state = State::run_with(&call(ct));
    assert!(
        state.as_ref().map_or(true, |s| s.init_pid.is_none()),
        "{state:?}"
    );
}

#[test]
fn a_forged_user_namespace_in_the_hosts_other_namespaces_is_refused() {
    // (a) done with care: a user namespace of the container's user whose maps are the
    // container's (the user could write them with newuidmap/newgidmap, its ids being
    // delegated to it; root writes them here), in the host's UTS and mount namespaces.
    let tc = TestContainer::new("ipd");
    let ct = tc.container();
    let config = ctl_lxc::config::read_lxc_config(&ct.lxc_home, &ct.id, ct.ugid).unwrap();
    let forger = oracle::command_as_user(ct, "unshare", ["-U", "sleep", "120"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let forger = Killed(forger);
    let pid = forger.0.id();
    wait_for_sleep(pid);
    std::fs::write(
        format!("/proc/{pid}/uid_map"),
        format!("0 {} 65536\n", config.root_uid),
    )
    .unwrap();
    std::fs::write(
        format!("/proc/{pid}/gid_map"),
        format!("0 {} 65536\n", config.root_gid),
    )
    .unwrap();
    let _payload = Payload::make(ct);
    let answer = Answer {
        state: RUNNING,
        pid: pid.into(),
    };
    fake_monitor(ct, answer, answer);

    let hostname = GetHostname::run_with(&call(ct));
    assert!(
        hostname.is_err(),
        "root entered the host's UTS namespace through {pid}: {hostname:?}"
    );
    let message = hostname.unwrap_err().to_string();
    eprintln!("GetHostname: {message}");
    assert!(
        message.contains(&format!("init pid {pid} of container {}", ct.id))
            && message.contains("its uts namespace is not owned by its user namespace"),
        "{message}"
    );
    let task = WithMountns::run_with(
        &call(ct),
        "read_file".into(),
        json!("/etc/hostname"),
        None,
        None,
    );
    assert!(
        task.is_err(),
        "WithMountns ran in the host's mount namespace: {task:?}"
    );
    let message = task.unwrap_err().to_string();
    assert!(
        message.contains("its mnt namespace is not owned by its user namespace"),
        "{message}"
    );
}

#[test]
fn the_real_init_still_passes() {
    let tc = TestContainer::running("ipc");
    let ct = tc.container();
    let init = oracle::lxc_init_pid(ct).unwrap().expect("running");
    assert_eq!(State::run_with(&call(ct)).unwrap().init_pid, Some(init));
    assert_eq!(GetHostname::run_with(&call(ct)).unwrap(), ct.id);
    let v = WithMountns::run_with(
        &call(ct),
        "read_file".into(),
        json!("/etc/passwd"),
        Some(init),
        None,
    )
    .unwrap();
    assert!(v.as_str().is_some_and(|t| t.starts_with("root:")), "{v}");
}
