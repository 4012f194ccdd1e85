//! The life-cycle commands (Start, Freeze, Unfreeze, State, Reboot, Stop, StopByHalt,
//! StopRunit, GetHostname, VethName) on real unprivileged LXC containers, run through the
//! standalone `ctl-runner`; LXC's own tools run as the container's user (the oracle) check
//! every result independently.
//!
//! Needs root and `cargo build --workspace --bins` first (the runner binary).

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use commands::{
    Freeze, GetHostname, Reboot, Start, State, StateInfo, Stop, StopByHalt, StopMode, StopRunit,
    Unfreeze, VethName,
};
use ctl_core::{cgroup, Container, Error, Stdio};
use ctl_provision::{oracle, CreateOptions, Net};
use tests::fixtures::{command_call as call, command_error, TestContainer};

fn assert_refused<T: std::fmt::Debug>(what: &str, result: Result<T, Error>, needle: &str) {
    let message = command_error(result);
    assert!(
        message.contains(needle),
        "{what}: {message:?} does not say {needle:?}"
    );
}

/// Polls the oracle until the container is in `state`.
fn wait_for_state(ct: &Container, state: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let now = oracle::lxc_state(ct).unwrap();
        if now == state {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} still {now} after {timeout:?}, expected {state}",
            ct.id
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn state_of(ct: &Container) -> StateInfo {
    State::run_with(&call(ct)).unwrap_or_else(|e| panic!("State: {e}"))
}

/// `lxc-info` says this state, and `State` agrees (with the init pid lxc-info shows).
fn assert_state(ct: &Container, expected: &str) {
    assert_eq!(oracle::lxc_state(ct).unwrap(), expected, "lxc-info");
    let info = state_of(ct);
    assert_eq!(info.id, ct.id);
    assert_eq!(info.state, expected, "State");
    assert_eq!(
        info.init_pid,
        oracle::lxc_init_pid(ct).unwrap(),
        "State's init pid"
    );
}

/// A pipe with both ends close-on-exec: no process spawned by another test thread
/// inherits it; the frontend hands the write end to the runner explicitly.
fn pipe() -> (OwnedFd, OwnedFd) {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap()
}

/// Whether the read end reports EOF within `timeout`, i.e. no process holds the write end.
fn eof_within(reader: &OwnedFd, timeout: Duration) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut fds = [PollFd::new(reader.as_fd(), PollFlags::POLLIN)];
        let n = poll(
            &mut fds,
            PollTimeout::try_from(left.as_millis() as i32).unwrap(),
        )
        .unwrap();
        if n == 0 {
            return false;
        }
        match nix::unistd::read(reader, &mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // output of the runner; keep draining
            Err(e) => panic!("read: {e}"),
        }
    }
}

/// Every process in the container's entry cgroup tree (the LXC monitor and the payload).
fn processes_of(ct: &Container) -> Vec<i32> {
    let mut pids = cgroup::pids_in(&ct.cgroup_path, "memory").unwrap();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// The targets of a process's open fds (`pipe:[123]`, `/dev/null`, ...), by fd number.
fn fd_targets(pid: i32) -> Vec<(String, String)> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let target = std::fs::read_link(e.path()).ok()?;
            Some((
                e.file_name().to_string_lossy().into_owned(),
                target.to_string_lossy().into_owned(),
            ))
        })
        .collect()
}

fn comm(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .replace('\0', " ")
        .trim()
        .to_owned()
}

#[test]
fn start_freeze_unfreeze_state_and_kill_a_frozen_container() {
    let tc = TestContainer::new("life");
    let ct = tc.container();

    // Stopped: State answers from the missing payload cgroup, without a runner at all.
    assert!(!commands::support::host::exists_in_memory_hierarchy(
        &format!("{}/lxc.payload.{}", ct.cgroup_path, ct.id)
    ));
    let info = State::run_with(&call(ct).runner("/nonexistent/ctl-runner")).unwrap();
    assert_eq!(
        info,
        StateInfo {
            id: ct.id.clone(),
            state: "stopped".into(),
            init_pid: None
        }
    );
    assert_state(ct, "stopped");

    // Every command that needs a running container refuses clearly.
    assert_refused("Freeze", Freeze::run_with(&call(ct)), "is not running");
    assert_refused("Unfreeze", Unfreeze::run_with(&call(ct)), "is not running");
    assert_refused("Reboot", Reboot::run_with(&call(ct)), "is not running");
    assert_refused(
        "StopByHalt",
        StopByHalt::run_with(&call(ct), None),
        "is not running",
    );
    assert_refused(
        "StopRunit",
        StopRunit::run_with(&call(ct), None),
        "is not running",
    );
    assert_refused(
        "GetHostname",
        GetHostname::run_with(&call(ct)),
        "not running",
    );
    assert_refused(
        "VethName",
        VethName::run_with(&call(ct), 0),
        "is not running",
    );
    // A mode the runner does not know (as an osctld-style envelope could carry) is refused
    // before anything happens.
    let mut kwargs = serde_json::Map::new();
    kwargs.insert("timeout".into(), serde_json::json!(5));
    let bad = ctl_core::invoke(
        &call(ct),
        <Stop as ctl_core::Command>::SPEC,
        ctl_core::Args::new(vec![serde_json::json!("halt")], kwargs),
    );
    assert_refused("Stop with mode halt", bad, "unknown variant `halt`");
    // A timeout that would overflow a deadline is refused with one line, before anything.
    match Stop::run_with(&call(ct), StopMode::Stop, u64::MAX, None).map_err(Error::into_kind) {
        Err(ctl_core::ErrorKind::Arguments { message }) => {
            assert!(message.contains("larger than the maximum"), "{message}")
        }
        other => panic!("Stop with timeout u64::MAX: {other:?}"),
    }
    // Stop of a stopped container succeeds and leaves it stopped (osctld's `ct stop` and
    // `restart` rely on that), in every mode, through the frontend and through the runner
    // half alone.
    for mode in [StopMode::Stop, StopMode::Shutdown, StopMode::Kill] {
        assert!(Stop::run_with(&call(ct), mode, 5, None)
            .unwrap_or_else(|e| panic!("Stop {mode} of a stopped container: {e}")));
        assert!(Stop::runner(&call(ct), mode, 5, None)
            .unwrap_or_else(|e| panic!("Stop's runner {mode} on a stopped container: {e}")));
        assert_state(ct, "stopped");
    }

    // Start, with our own pipe as the command's stdout and stderr.
    let (reader, writer) = pipe();
    let t = Instant::now();
    let started = Start::run_with(
        &call(ct)
            .stdout(Stdio::Fd(writer.as_fd()))
            .stderr(Stdio::Fd(writer.as_fd())),
    );
    let took = t.elapsed();
    assert!(started.unwrap_or_else(|e| panic!("Start: {e}")));
    eprintln!("Start took {took:?}");
    assert_state(ct, "running");

    // Nothing the runner had open lives on in the daemonized monitor or the container.
    let ino = nix::sys::stat::fstat(&reader).unwrap().st_ino;
    drop(writer);
    assert!(
        eof_within(&reader, Duration::from_secs(5)),
        "someone still holds the command's stdout pipe"
    );
    let pids = processes_of(ct);
    assert!(
        pids.len() >= 2,
        "expected the monitor and init in {}: {pids:?}",
        ct.cgroup_path
    );
    for pid in &pids {
        for (fd, target) in fd_targets(*pid) {
            assert!(
                target != format!("pipe:[{ino}]"),
                "{pid} ({}) holds the command's pipe as fd {fd}",
                comm(*pid)
            );
            assert!(
                !target.starts_with("pipe:"),
                "{pid} ({}) holds a pipe as fd {fd}: {target}",
                comm(*pid)
            );
        }
    }
    let monitor = pids
        .iter()
        .copied()
        .find(|p| comm(*p).starts_with("[lxc monitor]"))
        .expect("the LXC monitor");
    let std_fds: Vec<(String, String)> = fd_targets(monitor)
        .into_iter()
        .filter(|(fd, _)| ["0", "1", "2"].contains(&fd.as_str()))
        .collect();
    assert_eq!(std_fds.len(), 3, "{std_fds:?}");
    assert!(
        std_fds.iter().all(|(_, t)| t == "/dev/null"),
        "monitor stdio: {std_fds:?}"
    );

    // The container runs in its cgroups: the payload cgroup below the entry, everywhere.
    let init = oracle::lxc_init_pid(ct).unwrap().unwrap();
    let expected = format!("/{}/lxc.payload.{}", ct.cgroup_path, ct.id);
    let lines = std::fs::read_to_string(format!("/proc/{init}/cgroup")).unwrap();
    assert_eq!(
        lines.lines().count(),
        cgroup::hierarchies().len(),
        "{lines}"
    );
    for line in lines.lines() {
        assert!(
            line.ends_with(&format!(":{expected}")),
            "init {init} is in {line}, expected {expected}"
        );
    }
    assert!(commands::support::host::exists_in_memory_hierarchy(
        &format!("{}/lxc.payload.{}", ct.cgroup_path, ct.id)
    ));

    assert_refused(
        "second Start",
        Start::run_with(&call(ct)),
        "already running",
    );

    let t = Instant::now();
    assert!(Freeze::run_with(&call(ct)).unwrap());
    eprintln!("Freeze took {:?}", t.elapsed());
    assert_state(ct, "frozen");
    assert_refused("Reboot when frozen", Reboot::run_with(&call(ct)), "frozen");
    assert_refused(
        "StopByHalt when frozen",
        StopByHalt::run_with(&call(ct), None),
        "frozen",
    );

    assert!(Unfreeze::run_with(&call(ct)).unwrap());
    assert_state(ct, "running");

    // Kill a frozen container: thawed first, then killed.
    assert!(Freeze::run_with(&call(ct)).unwrap());
    assert_eq!(oracle::lxc_state(ct).unwrap(), "frozen");
    let t = Instant::now();
    assert!(Stop::run_with(&call(ct), StopMode::Kill, 10, None)
        .unwrap_or_else(|e| panic!("Stop kill: {e}")));
    eprintln!("Stop kill of a frozen container took {:?}", t.elapsed());
    assert_state(ct, "stopped");
    let info = State::run_with(&call(ct).runner("/nonexistent/ctl-runner")).unwrap();
    assert_eq!(info.state, "stopped");
    assert!(
        processes_of(ct).is_empty(),
        "left behind: {:?}",
        processes_of(ct)
    );
}

#[test]
fn hostname_runit_reboot_and_clean_stop() {
    let tc = TestContainer::running("boot");
    let ct = tc.container();

    let uts = oracle::lxc_tool(ct, "lxc-info", &["-c", "lxc.uts.name"]).unwrap();
    let uts = String::from_utf8_lossy(&uts.stdout);
    let uts = uts
        .trim()
        .strip_prefix("lxc.uts.name = ")
        .unwrap_or_else(|| panic!("lxc-info -c: {uts:?}"));
    assert_eq!(GetHostname::run_with(&call(ct)).unwrap(), uts);
    let inside = oracle::attach(ct, &["hostname"]).unwrap();
    assert_eq!(String::from_utf8_lossy(&inside.stdout).trim(), uts);

    // No veth here: the interface is of type empty.
    assert_refused(
        "VethName on an empty net",
        VethName::run_with(&call(ct), 0),
        "not veth",
    );

    // StopRunit: nothing to do without /etc/runit ...
    assert!(StopRunit::run_with(&call(ct), None).unwrap());
    assert!(!oracle::attach(ct, &["test", "-e", "/etc/runit"])
        .unwrap()
        .status
        .success());
    // ... else stopit is created with mode 0100, and an existing reboot gets mode 0.
    let prepared = oracle::attach(
        ct,
        &[
            "sh",
            "-c",
            "mkdir /etc/runit && touch /etc/runit/reboot && chmod 755 /etc/runit/reboot",
        ],
    )
    .unwrap();
    assert!(prepared.status.success(), "{prepared:?}");
    assert!(StopRunit::run_with(&call(ct), None).unwrap_or_else(|e| panic!("StopRunit: {e}")));
    let modes = oracle::attach(
        ct,
        &[
            "stat",
            "-c",
            "%n %a %u",
            "/etc/runit/stopit",
            "/etc/runit/reboot",
        ],
    )
    .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&modes.stdout),
        "/etc/runit/stopit 100 0\n/etc/runit/reboot 0 0\n"
    );
    // The container's root plays tricks with the two files: a FIFO as stopit (which would
    // block a plain open for writing), then a symlink as reboot pointing at a file the
    // command must not chmod. Each is refused at once, with a reason, and nothing followed.
    let fifo = oracle::attach(
        ct,
        &[
            "sh",
            "-c",
            "rm -f /etc/runit/stopit && mkfifo /etc/runit/stopit",
        ],
    )
    .unwrap();
    assert!(fifo.status.success(), "{fifo:?}");
    let t = Instant::now();
    let message = command_error(StopRunit::run_with(&call(ct), None));
    assert!(
        message.contains("/etc/runit/stopit") && t.elapsed() < Duration::from_secs(5),
        "{message} after {:?}",
        t.elapsed()
    );
    let link = oracle::attach(
        ct,
        &[
            "sh",
            "-c",
            "rm -f /etc/runit/stopit /etc/runit/reboot && touch /etc/runit/stopit \
             && chmod 644 /etc/passwd && ln -s /etc/passwd /etc/runit/reboot",
        ],
    )
    .unwrap();
    assert!(link.status.success(), "{link:?}");
    let message = command_error(StopRunit::run_with(&call(ct), None));
    assert!(message.contains("/etc/runit/reboot"), "{message}");
    let passwd = oracle::attach(ct, &["stat", "-c", "%a", "/etc/passwd"]).unwrap();
    assert_eq!(String::from_utf8_lossy(&passwd.stdout), "644\n");
    let _ = oracle::attach(ct, &["rm", "-rf", "/etc/runit"]);

    // Reboot: the init pid changes and the container comes back.
    let before = oracle::lxc_init_pid(ct).unwrap().unwrap();
    let t = Instant::now();
    assert!(Reboot::run_with(&call(ct)).unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let state = oracle::lxc_state(ct).unwrap();
        let pid = oracle::lxc_init_pid(ct).unwrap();
        if state == "running" && pid.is_some_and(|p| p != before) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after Reboot: {state}, init pid {pid:?} (was {before})"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "Reboot until running with a new init took {:?}",
        t.elapsed()
    );
    assert_state(ct, "running");
    // After a reboot LXC runs the payload below `lxc.pivot`: the short-cut must not take
    // the container for stopped, and the monitor's answer (no runner needed, this one does
    // not exist) must accept an init below the pivot.
    let init = oracle::lxc_init_pid(ct).unwrap().unwrap();
    let cgroups = std::fs::read_to_string(format!("/proc/{init}/cgroup")).unwrap();
    eprintln!("cgroups of init after the reboot:\n{cgroups}");
    assert!(cgroups.contains("/lxc.pivot/"), "{cgroups}");
    let info = State::run_with(&call(ct).runner("/nonexistent/ctl-runner")).unwrap();
    assert_eq!(info.state, "running");
    assert_eq!(info.init_pid, Some(init));

    // Clean stop: busybox shuts down long before the timeout.
    let t = Instant::now();
    assert!(
        Stop::run_with(&call(ct), StopMode::Stop, 60, None).unwrap_or_else(|e| panic!("Stop: {e}"))
    );
    let took = t.elapsed();
    eprintln!("Stop (mode stop, clean) took {took:?}");
    assert!(took < Duration::from_secs(20), "a clean stop took {took:?}");
    assert_state(ct, "stopped");
    let info = State::run_with(&call(ct).runner("/nonexistent/ctl-runner")).unwrap();
    assert_eq!(info.state, "stopped");
    assert_refused(
        "GetHostname when stopped",
        GetHostname::run_with(&call(ct)),
        "no init pid",
    );
}

#[test]
fn stop_by_halt_and_shutdown_mode() {
    let tc = TestContainer::new("halt");
    let ct = tc.container();
    assert!(Start::run_with(&call(ct)).unwrap_or_else(|e| panic!("Start: {e}")));
    assert_state(ct, "running");

    let t = Instant::now();
    assert!(StopByHalt::run_with(&call(ct), None).unwrap_or_else(|e| panic!("StopByHalt: {e}")));
    wait_for_state(ct, "stopped", Duration::from_secs(20));
    eprintln!("StopByHalt until stopped took {:?}", t.elapsed());
    assert_state(ct, "stopped");

    assert!(Start::run_with(&call(ct)).unwrap_or_else(|e| panic!("second Start: {e}")));
    assert_state(ct, "running");
    let t = Instant::now();
    // With a message: shown with Wall first (no one is logged in here), then the shutdown.
    let stopped = Stop::run_with(
        &call(ct),
        StopMode::Shutdown,
        30,
        Some("going down".to_owned()),
    );
    assert!(stopped.unwrap_or_else(|e| panic!("Stop shutdown: {e}")));
    let took = t.elapsed();
    eprintln!("Stop (mode shutdown) took {took:?}");
    assert!(took < Duration::from_secs(20), "{took:?}");
    assert_state(ct, "stopped");
}

/// An init that ignores every signal halt and LXC could send: only a kill stops it.
const STUBBORN_INIT: &str =
    "#!/bin/sh\ntrap '' USR1 USR2 TERM INT HUP PWR QUIT\nwhile :; do sleep 1; done\n";

#[test]
fn stop_falls_back_to_kill_when_init_ignores_halt() {
    let tc = TestContainer::new("deaf");
    let ct = tc.container();
    let rootfs = ct.lxc_home.join(&ct.id).join("rootfs");
    let base = std::fs::metadata(&rootfs).unwrap().uid();
    let init = rootfs.join("sbin/init");
    std::fs::remove_file(&init).unwrap();
    std::fs::write(&init, STUBBORN_INIT).unwrap();
    std::fs::set_permissions(&init, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(&init, Some(base), Some(base)).unwrap();

    assert!(Start::run_with(&call(ct)).unwrap_or_else(|e| panic!("Start: {e}")));
    assert_state(ct, "running");

    // halt runs (and succeeds) but the container does not care.
    assert!(StopByHalt::run_with(&call(ct), None).unwrap());

    // Mode shutdown: clean or fail, within the timeout; the container keeps running.
    let t = Instant::now();
    let message = command_error(Stop::run_with(&call(ct), StopMode::Shutdown, 2, None));
    let took = t.elapsed();
    eprintln!("Stop (mode shutdown, ignored) failed after {took:?}: {message}");
    assert!(
        message.contains("did not shut down within 2 s"),
        "{message}"
    );
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_millis(3500),
        "{took:?}"
    );
    assert_state(ct, "running");

    // Mode stop: the kill comes when the timeout passes, not later.
    let t = Instant::now();
    assert!(
        Stop::run_with(&call(ct), StopMode::Stop, 3, None).unwrap_or_else(|e| panic!("Stop: {e}"))
    );
    let took = t.elapsed();
    eprintln!("Stop (mode stop, fallback to kill after 3 s) took {took:?}");
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_millis(4500),
        "{took:?}"
    );
    assert_state(ct, "stopped");
}

#[test]
fn veth_name_matches_lxc_info() {
    let tc = TestContainer::with_options(
        "veth",
        &CreateOptions {
            net: Net::Veth,
            ..CreateOptions::default()
        },
    );
    let ct = tc.container();
    // Our Start: lxc-user-nic (a setuid helper) creates the veth pair.
    assert!(Start::run_with(&call(ct)).unwrap_or_else(|e| panic!("Start with veth: {e}")));
    assert_state(ct, "running");

    let name = VethName::run_with(&call(ct), 0).unwrap_or_else(|e| panic!("VethName: {e}"));
    let info = oracle::lxc_tool(ct, "lxc-info", &[]).unwrap();
    let info = String::from_utf8_lossy(&info.stdout);
    let link = info
        .lines()
        .find_map(|l| l.strip_prefix("Link:"))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no Link in lxc-info:\n{info}"));
    assert_eq!(name, link);
    let master =
        std::fs::read_link(PathBuf::from("/sys/class/net").join(&name).join("master")).unwrap();
    assert_eq!(master.file_name().unwrap(), ctl_provision::BRIDGE);

    assert_refused(
        "VethName 1",
        VethName::run_with(&call(ct), 1),
        "has no network interface 1",
    );

    // A plain kill runs in the fork placement; LXC removes the veth pair with the netns.
    let t = Instant::now();
    assert!(Stop::run_with(&call(ct), StopMode::Kill, 10, None)
        .unwrap_or_else(|e| panic!("Stop kill: {e}")));
    eprintln!("Stop (mode kill) took {:?}", t.elapsed());
    assert_state(ct, "stopped");
    let deadline = Instant::now() + Duration::from_secs(5);
    while PathBuf::from("/sys/class/net").join(&name).exists() {
        assert!(
            Instant::now() < deadline,
            "{name} still exists after the stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn start_failure_carries_liblxc_text_and_log_tail() {
    let tc = TestContainer::new("fail");
    let ct = tc.container();
    let config = ct.lxc_home.join(&ct.id).join("config");
    let text = std::fs::read_to_string(&config).unwrap();
    let broken: String = text
        .lines()
        .map(|l| {
            if l.starts_with("lxc.rootfs.path") {
                "lxc.rootfs.path = dir:/nonexistent/rootfs".to_owned()
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&config, broken + "\n").unwrap();

    let t = Instant::now();
    let message = command_error(Start::run_with(&call(ct)));
    eprintln!("failed Start took {:?}: {message}", t.elapsed());
    assert!(
        message.contains(&format!("lxc start of container \"{}\" failed", ct.id)),
        "{message}"
    );
    assert!(
        message.contains(&format!("last lines of {}", ct.log_file.display())),
        "{message}"
    );
    assert!(message.contains(" ERROR "), "{message}");
    assert_state(ct, "stopped");
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        processes_of(ct).is_empty(),
        "left behind: {:?}",
        processes_of(ct)
    );

    let missing = Container {
        id: format!("{}-missing", ct.id),
        ..ct.clone()
    };
    assert_refused(
        "Start of a missing container",
        Start::run_with(&call(&missing)),
        "does not exist",
    );
}
