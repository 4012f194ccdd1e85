//! Warm runners give the same results as cold ones, survive faults, and go away.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ctl_core::diag::{Identity, Ping};
use ctl_core::frontend::WarmPool;
use ctl_core::{Call, ErrorKind, ExitInfo, Placement, ProtocolError, Stdio};
use serde_json::json;
use tests::faults::{Abort, ExitSilently, Fail, RawReply, SpawnSleeper};
use tests::fixtures::{
    lingering_zombies, open_fd_count, process_alive, serial, test_runner_path, TestUser,
};

fn call<'a>(user: &'a TestUser, pool: &'a WarmPool) -> Call<'a> {
    Call::new(user.container())
        .runner(test_runner_path())
        .stdout(Stdio::Null)
        .stderr(Stdio::Null)
        .warm(pool)
}

#[test]
fn warm_identity_equals_cold_identity_in_every_placement() {
    let _serial = serial();
    let user = TestUser::new("warmid");
    let pool = WarmPool::new(Duration::from_secs(30));
    for placement in [Placement::Exec, Placement::Fork, Placement::ForkAsRoot] {
        let cold = Identity::run_with(&call(&user, &pool).placement(placement).cold()).unwrap();
        let warm = Identity::run_with(&call(&user, &pool).placement(placement)).unwrap();
        assert_eq!(warm.uid, cold.uid, "{placement}");
        assert_eq!(warm.gid, cold.gid, "{placement}");
        assert_eq!(warm.groups, cold.groups, "{placement}");
        assert_eq!(warm.cgroups, cold.cgroups, "{placement}");
        assert_eq!(warm.rlimits, cold.rlimits, "{placement}");
        assert_eq!(warm.fds, cold.fds, "{placement}");
        assert_eq!(warm.env, cold.env, "{placement}");
        assert_eq!(warm.capabilities, cold.capabilities, "{placement}");
        assert_eq!(warm.no_new_privs, cold.no_new_privs, "{placement}");
        assert_eq!(warm.pdeathsig, cold.pdeathsig, "{placement}");
        assert_eq!(warm.comm, cold.comm, "{placement}");
        assert_eq!(
            warm.pgid, warm.pid,
            "a warm child has its own process group"
        );
        assert!(
            pool.pids().contains(&warm.ppid),
            "{placement}: parent is the warm runner"
        );
    }
    assert_eq!(pool.len(), 3, "one warm runner per placement");
    // Reuse: a second call goes to the same warm runner.
    let before = pool.pids();
    Ping::run_with(&call(&user, &pool), json!(1)).unwrap();
    let mut after = pool.pids();
    let mut b = before.clone();
    b.sort();
    after.sort();
    assert_eq!(b, after);
}

#[test]
fn warm_faults_are_reported_like_cold_ones() {
    let _serial = serial();
    let user = TestUser::new("warmfault");
    let pool = WarmPool::new(Duration::from_secs(30));
    Ping::run_with(&call(&user, &pool), json!(0)).unwrap();
    let fds = open_fd_count();
    assert_eq!(
        Fail::run_with(&call(&user, &pool), "nope".into())
            .unwrap_err()
            .command_message(),
        Some("nope")
    );
    match Abort::run_with(&call(&user, &pool))
        .unwrap_err()
        .into_kind()
    {
        ErrorKind::RunnerFailed { status, .. } => assert_eq!(status.signal(), Some(libc::SIGABRT)),
        other => panic!("{other:?}"),
    }
    match ExitSilently::run_with(&call(&user, &pool).placement(Placement::Exec), 7)
        .unwrap_err()
        .into_kind()
    {
        ErrorKind::RunnerFailed { status, stderr, .. } => {
            assert_eq!(status, ExitInfo::Exited(7));
            assert!(stderr.contains("leaving with 7"), "{stderr}");
        }
        other => panic!("{other:?}"),
    }
    match RawReply::run_with(
        &call(&user, &pool).placement(Placement::Exec),
        "junk\n".into(),
        0,
    )
    .unwrap_err()
    .into_kind()
    {
        ErrorKind::Protocol {
            problem: ProtocolError::MalformedReply { .. },
            ..
        } => {}
        other => panic!("{other:?}"),
    }
    // The warm runner survives its children's faults.
    assert_eq!(pool.len(), 1);
    assert_eq!(
        Ping::run_with(&call(&user, &pool), json!("still")).unwrap(),
        json!("still")
    );
    assert_eq!(open_fd_count(), fds);
}

#[test]
fn warm_deadline_kills_the_child_and_its_group() {
    let _serial = serial();
    use std::os::fd::AsFd;
    let user = TestUser::new("warmdl");
    let pool = WarmPool::new(Duration::from_secs(30));
    let (r, w) = nix::unistd::pipe().unwrap();
    let c = call(&user, &pool)
        .stdout(Stdio::Fd(w.as_fd()))
        .deadline(Duration::from_millis(500));
    let err = SpawnSleeper::run_with(&c).unwrap_err();
    drop(w);
    assert!(matches!(err.kind(), ErrorKind::Timeout { .. }), "{err:?}");
    let mut pid = String::new();
    use std::io::Read;
    std::fs::File::from(r).read_to_string(&mut pid).unwrap();
    let grandchild: i32 = pid.trim().parse().unwrap();
    assert!((0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(20));
        !process_alive(grandchild)
    }));
    assert_eq!(
        Ping::run_with(&call(&user, &pool), json!(2)).unwrap(),
        json!(2)
    );
}

#[test]
fn crashed_warm_runner_is_replaced_and_idle_ones_exit() {
    let _serial = serial();
    let user = TestUser::new("warmidle");
    let pool = WarmPool::new(Duration::from_millis(300));
    Ping::run_with(&call(&user, &pool), json!(0)).unwrap();
    let first = pool.pids();
    assert_eq!(first.len(), 1);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first[0]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        Ping::run_with(&call(&user, &pool), json!(1)).unwrap(),
        json!(1)
    );
    let second = pool.pids();
    assert_eq!(second.len(), 1);
    assert_ne!(second, first, "the crashed runner was replaced");

    // Idle: it exits by itself after the timeout.
    let started = Instant::now();
    while !pool.is_empty() && started.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(pool.len(), 0, "idle warm runner still there");
    assert!(!process_alive(second[0]));
    // And a new call starts a new one.
    assert_eq!(
        Ping::run_with(&call(&user, &pool), json!(3)).unwrap(),
        json!(3)
    );
    drop(pool);
    assert_eq!(lingering_zombies(), Vec::<i32>::new());
}

#[test]
fn warm_sixty_four_threads() {
    let _serial = serial();
    let user = Arc::new(TestUser::new("warmthr"));
    let pool = Arc::new(WarmPool::new(Duration::from_secs(30)));
    let threads: Vec<_> = (0..64)
        .map(|t| {
            let (user, pool) = (Arc::clone(&user), Arc::clone(&pool));
            std::thread::spawn(move || {
                for i in 0..50 {
                    let v = json!([t, i]);
                    assert_eq!(Ping::run_with(&call(&user, &pool), v.clone()).unwrap(), v);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(pool.len(), 1);
}
