//! The container against ctl's own attach (`ctl_lxc::enter`) while it enters: a container
//! frozen during the attach, one whose init is killed while attaches run, and one at its
//! pids limit. Every call must end by its deadline with the program's status or a
//! one-line error, and leave no process behind, in the container or on the host. (The
//! attacking process's own view — ptrace, `/proc/<pid>/fd` of the attaching process — is
//! replayed for every attaching command by `ctl/tests/security_*.rs`; pid reuse of init by
//! a unit test of `ctl_lxc::enter::target`; a hostile `/dev/ptmx` by
//! `ctl/tests/security_terminal.rs`.)

use std::time::{Duration, Instant};

use commands::Exec;
use ctl_core::{Container, ErrorKind};
use ctl_provision::oracle;
use tests::fixtures::{command_call as call, lingering_zombies, TestContainer};

/// The processes of the host whose owner is one of the container's ids (its user, and the
/// range its root and users map to), other than those in `keep`.
fn processes_of(ct: &Container, keep: &[i32]) -> Vec<String> {
    let low = ct.ugid;
    let (map_low, map_len) = mapped_uids(ct);
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if keep.contains(&pid) {
            continue;
        }
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            continue;
        };
        let uid: u32 = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(u32::MAX);
        if uid == low || (uid >= map_low && uid < map_low.saturating_add(map_len)) {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            found.push(format!(
                "{pid} {}",
                String::from_utf8_lossy(&cmdline).replace('\0', " ")
            ));
        }
    }
    found
}

/// The host uids the container's uids map to (`lxc.idmap = u 0 <host> <count>`).
fn mapped_uids(ct: &Container) -> (u32, u32) {
    let config = std::fs::read_to_string(ct.lxc_home.join(&ct.id).join("config")).unwrap();
    config
        .lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| k.trim() == "lxc.idmap")
        .find_map(|(_, v)| {
            let f: Vec<&str> = v.split_whitespace().collect();
            (f.len() == 4 && f[0] == "u" && f[1] == "0")
                .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
                .flatten()
        })
        .expect("a uid map in the container's config")
}

/// The pids of the running container's processes (its monitor included) now.
fn pids_of(ct: &Container) -> Vec<i32> {
    processes_of(ct, &[])
        .iter()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect()
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_frozen_container_ends_the_attach_at_its_deadline_and_runs_nothing_after_the_thaw() {
    let t = TestContainer::running("afrz");
    let ct = t.container();
    let before = pids_of(ct);
    // Frozen behind LXC's back (the monitor still says RUNNING): as a freeze that comes
    // right after Exec checked the state, or the container's own freezing of its cgroup.
    let state = ctl_core::cgroup::hierarchies()
        .iter()
        .find(|h| h.has_controller("freezer"))
        .expect("a v1 freezer hierarchy (notes/lxc-on-these-machines.md)")
        .path_of(&format!("{}/lxc.payload.{}", ct.cgroup_path, ct.id))
        .join("freezer.state");
    std::fs::write(&state, "FROZEN").unwrap();
    wait_until("the payload to freeze", Duration::from_secs(10), || {
        std::fs::read_to_string(&state).unwrap().trim() == "FROZEN"
    });
    let marker = "/tmp/ran-after-thaw";
    let t0 = Instant::now();
    let result = Exec::run_with(
        &call(ct).deadline(Duration::from_secs(3)),
        vec!["sh".into(), "-c".into(), format!("echo x > {marker}")],
        false,
        false,
        Default::default(),
    );
    let took = t0.elapsed();
    match &result {
        Err(e) if matches!(e.kind(), ErrorKind::Timeout { .. }) => {}
        other => panic!("expected the deadline's error, got {other:?}"),
    }
    assert!(!result.unwrap_err().to_string().contains('\n'));
    assert!(took < Duration::from_secs(15), "took {took:?}");
    std::fs::write(&state, "THAWED").unwrap();
    // The attached process, stopped in the frozen payload, was killed, not let go on.
    std::thread::sleep(Duration::from_secs(1));
    let ran = oracle::attach(ct, &["cat", marker]).unwrap();
    assert!(
        !ran.status.success(),
        "the program attached while frozen ran after the thaw"
    );
    // What the attach made (a runner, its worker, the attached process before or after
    // its exec) is gone; the container's own processes (a getty its init respawns) may
    // come and go.
    let ours = || -> Vec<String> {
        processes_of(ct, &before)
            .into_iter()
            .filter(|line| {
                let pid = line.split_whitespace().next().unwrap_or("");
                let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
                let exe = exe.file_name().unwrap_or_default().to_string_lossy();
                exe.starts_with("ctl") || line.contains(marker)
            })
            .collect()
    };
    let start = Instant::now();
    while !ours().is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "left after the thaw: {:#?}",
            ours()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // And the container still takes attaches.
    assert_eq!(
        Exec::run_with(
            &call(ct),
            vec!["true".into()],
            false,
            false,
            Default::default()
        )
        .expect("exec after the thaw"),
        0
    );
    assert!(lingering_zombies().is_empty());
}

#[test]
fn attaches_racing_the_death_of_init_end_cleanly() {
    let t = TestContainer::new("ainit");
    let ct = t.container();
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    for round in 0..6 {
        commands::Start::run_with(&call(ct)).expect("start");
        let init = ctl_lxc::command_socket::query_state(&ct.lxc_home, &ct.id, &[ct.ugid, 0], None)
            .unwrap()
            .and_then(|s| s.init_pid)
            .expect("init pid");
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            let attacher = s.spawn(|| {
                let mut seen = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let t0 = Instant::now();
                    let result = Exec::run_with(
                        &call(ct).deadline(Duration::from_secs(20)),
                        vec!["true".into()],
                        false,
                        false,
                        Default::default(),
                    );
                    assert!(t0.elapsed() < Duration::from_secs(25), "{result:?}");
                    seen.push(match result {
                        Ok(code) => format!("exit {code}"),
                        Err(e) => {
                            let text = e.to_string();
                            assert!(!text.contains('\n'), "{text}");
                            assert!(
                                !matches!(e.kind(), ErrorKind::Timeout { .. }),
                                "an attach hung on the dying container: {text}"
                            );
                            text
                        }
                    });
                }
                seen
            });
            // Kill init at a different moment of the attach loop each round.
            std::thread::sleep(Duration::from_millis(150 + 70 * round));
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(init),
                nix::sys::signal::Signal::SIGKILL,
            )
            .unwrap();
            wait_until("the container to stop", Duration::from_secs(30), || {
                t.lxc_state() == "stopped"
            });
            std::thread::sleep(Duration::from_millis(300));
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
            for outcome in attacher.join().unwrap() {
                // Errors differ in detail (pids, paths); count them by their start.
                let key: String = outcome.chars().take(60).collect();
                *outcomes.entry(key).or_default() += 1;
            }
        });
        wait_until(
            "every process of the container to go",
            Duration::from_secs(10),
            || processes_of(ct, &[]).is_empty(),
        );
    }
    eprintln!("outcomes: {outcomes:#?}");
    // Some attaches ran the program before init died, some failed after: both happened.
    assert!(outcomes.contains_key("exit 0"), "{outcomes:#?}");
    assert!(outcomes.keys().any(|k| k != "exit 0"), "{outcomes:#?}");
    assert!(lingering_zombies().is_empty());
}

/// A container at its pids limit (its payload's `pids.max` reached, as after a fork bomb):
/// ctl's attach still enters (the kernel charges a migration without checking the limit:
/// one process past it, the operator's, who may be there to clean up), and the limit holds
/// for the attached program: it cannot fork. liblxc's attach cannot enter at all (its
/// helper processes fork inside the container's cgroups).
#[test]
fn a_container_at_its_pids_limit_confines_the_attached_program() {
    use tests::attach_probe::AttachProbe;
    let t = TestContainer::running("apids");
    let ct = t.container();
    let hierarchy = ctl_core::cgroup::hierarchies()
        .iter()
        .find(|h| h.has_controller("pids"))
        .expect("a pids hierarchy");
    let payload = hierarchy.path_of(&format!("{}/lxc.payload.{}", ct.cgroup_path, ct.id));
    let current = std::fs::read_to_string(payload.join("pids.current")).unwrap();
    std::fs::write(payload.join("pids.max"), current.trim()).unwrap();
    let probe = |engine: &str, argv: &[&str]| {
        let call = ctl_core::Call::new(ct)
            .runner(tests::fixtures::test_runner_path())
            .stderr(ctl_core::Stdio::Null)
            .deadline(Duration::from_secs(60));
        AttachProbe::run_with(
            &call,
            engine.to_owned(),
            argv.iter().map(|s| s.to_string()).collect(),
        )
    };
    let forks = ["sh", "-c", "/bin/true & wait $!; echo forked $?"];
    assert_eq!(probe("direct", &["true"]).unwrap().code, 0);
    let forked = probe("direct", &forks).unwrap();
    assert!(
        !forked.output.contains("forked 0"),
        "the program forked past pids.max: {forked:?}"
    );
    let refused = probe("liblxc", &["true"]).unwrap_err().to_string();
    assert!(refused.contains("lxc attach"), "{refused}");
    // The control: without the limit the same program forks, through both.
    std::fs::write(payload.join("pids.max"), "max").unwrap();
    for engine in ["direct", "liblxc"] {
        let forked = probe(engine, &forks).unwrap_or_else(|e| panic!("{engine}: {e}"));
        assert!(forked.output.contains("forked 0"), "{engine}: {forked:?}");
    }
}
