//! Hardening under load: a long soak of sequential calls from one process, 64 threads of
//! mixed commands on 8 real running containers, and commands racing a freeze, a stop and
//! a deletion of their container. Every call has a deadline, so a deadlock fails a test
//! instead of hanging it.
//!
//! Needs root and `cargo build --workspace --bins` first (the runner binaries). The
//! figures printed here are quoted in `docs/reliability.md`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use commands::{Exec, Freeze, State, Stop, StopMode, Unfreeze};
use ctl_core::diag::Ping;
use ctl_core::{Call, Container, Error, ErrorKind, ProtocolError, Stdio};
use serde_json::json;
use tests::fixtures::{
    ctl_runner_path, lingering_zombies, open_fd_count, serial, test_runner_path, TestContainer,
    TestUser,
};

/// Sequential calls of the soak. At 1.6–1.8 ms a call in a debug build here, 10,000
/// take 16–18 s (see `docs/reliability.md`).
const SOAK_CALLS: usize = 10_000;
const DEADLINE: Duration = Duration::from_secs(60);

/// A field of `/proc/self/status` (`Threads`, `VmRSS` in kB).
fn status_field(name: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /proc/self/status"))
}

#[derive(Debug, Clone, Copy)]
struct Figures {
    fds: usize,
    threads: u64,
    rss_kib: u64,
}

fn figures() -> Figures {
    Figures {
        fds: open_fd_count(),
        threads: status_field("Threads"),
        rss_kib: status_field("VmRSS"),
    }
}

#[test]
fn soak_ten_thousand_sequential_calls() {
    let _serial = serial();
    let user = TestUser::new("hsoak");
    let call = Call::new(user.container())
        .runner(test_runner_path())
        .stdout(Stdio::Null)
        .stderr(Stdio::Null)
        .deadline(DEADLINE);
    // Warm-up: lazily initialised state, allocator arenas.
    for i in 0..200 {
        assert_eq!(Ping::run_with(&call, json!(i)).unwrap(), json!(i));
    }
    let before = figures();
    let t0 = Instant::now();
    let mut slowest = Duration::ZERO;
    for i in 0..SOAK_CALLS {
        let value = json!({"call": i, "pad": "x".repeat(i % 512)});
        let t = Instant::now();
        let reply =
            Ping::run_with(&call, value.clone()).unwrap_or_else(|e| panic!("call {i}: {e}"));
        slowest = slowest.max(t.elapsed());
        assert_eq!(reply, value, "call {i} got another reply");
    }
    let elapsed = t0.elapsed();
    let after = figures();
    let zombies = lingering_zombies();
    eprintln!(
        "soak: {SOAK_CALLS} calls in {elapsed:.2?} ({:.0} µs/call, slowest {slowest:.2?}); fds {} -> {}, threads {} -> {}, \
         VmRSS {} -> {} KiB ({:+} KiB); zombies {}",
        elapsed.as_micros() as f64 / SOAK_CALLS as f64,
        before.fds,
        after.fds,
        before.threads,
        after.threads,
        before.rss_kib,
        after.rss_kib,
        after.rss_kib as i64 - before.rss_kib as i64,
        zombies.len(),
    );
    assert_eq!(after.fds, before.fds, "fds leaked");
    assert_eq!(after.threads, before.threads, "threads leaked");
    assert!(
        after.rss_kib < before.rss_kib + 8 * 1024,
        "RSS grew by {} KiB",
        after.rss_kib - before.rss_kib
    );
    assert_eq!(zombies, Vec::<i32>::new(), "zombies");
}

// ---------------------------------------------------------------------------------------
// 64 threads, 8 containers

fn call(ct: &Container) -> Call<'_> {
    Call::new(ct)
        .runner(ctl_runner_path())
        .stdout(Stdio::Null)
        .stderr(Stdio::Null)
        .deadline(DEADLINE)
}

/// One container of the concurrency test: Freeze/Unfreeze pairs take the write lock,
/// commands that need it running and thawed (Exec, State with an expectation) the read
/// lock; Ping needs none.
struct Shared {
    t: TestContainer,
    lock: RwLock<()>,
}

#[test]
fn sixty_four_threads_of_mixed_commands_on_eight_containers() {
    let _serial = serial();
    let t0 = Instant::now();
    let containers: Vec<Arc<Shared>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|i| s.spawn(move || TestContainer::running(&format!("hl{i}"))))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                Arc::new(Shared {
                    t: h.join().unwrap(),
                    lock: RwLock::new(()),
                })
            })
            .collect()
    });
    eprintln!("8 containers started in {:.2?}", t0.elapsed());
    let fds_before = open_fd_count();
    const ROUNDS: usize = 10;
    let counts: Arc<Mutex<HashMap<&'static str, (usize, Duration)>>> = Arc::default();
    let t0 = Instant::now();
    let threads: Vec<_> = (0..64)
        .map(|t| {
            let shared = Arc::clone(&containers[t % 8]);
            let counts = Arc::clone(&counts);
            std::thread::spawn(move || {
                let ct = shared.t.container();
                let mut mine: HashMap<&'static str, (usize, Duration)> = HashMap::new();
                let mut note = |what: &'static str, took: Duration| {
                    let e = mine.entry(what).or_default();
                    e.0 += 1;
                    e.1 = e.1.max(took);
                };
                for round in 0..ROUNDS {
                    let tag = format!("t{t}r{round}");
                    // Each thread starts its rounds at another operation.
                    match (t / 8 + round) % 4 {
                        0 => {
                            let s = Instant::now();
                            let v = Ping::run_with(&call(ct), json!(tag))
                                .unwrap_or_else(|e| panic!("{tag} Ping: {e}"));
                            assert_eq!(v, json!(tag), "{tag}: Ping got another call's reply");
                            note("Ping", s.elapsed());
                        }
                        1 => {
                            let _r = shared.lock.read().unwrap();
                            let s = Instant::now();
                            let st = State::run_with(&call(ct))
                                .unwrap_or_else(|e| panic!("{tag} State: {e}"));
                            assert_eq!(
                                (st.id.as_str(), st.state.as_str()),
                                (ct.id.as_str(), "running"),
                                "{tag}"
                            );
                            note("State", s.elapsed());
                        }
                        2 => {
                            let _r = shared.lock.read().unwrap();
                            let code = ((t * ROUNDS + round) % 120) as i32;
                            let s = Instant::now();
                            let rc = Exec::run_with(
                                &call(ct),
                                vec!["sh".into(), "-c".into(), format!("exit {code}")],
                                false,
                                false,
                                Default::default(),
                            )
                            .unwrap_or_else(|e| panic!("{tag} Exec: {e}"));
                            assert_eq!(rc, code, "{tag}: Exec got another call's status");
                            note("Exec", s.elapsed());
                        }
                        _ => {
                            let _w = shared.lock.write().unwrap();
                            let s = Instant::now();
                            assert!(Freeze::run_with(&call(ct))
                                .unwrap_or_else(|e| panic!("{tag} Freeze: {e}")));
                            let st = State::run_with(&call(ct))
                                .unwrap_or_else(|e| panic!("{tag} State: {e}"));
                            assert_eq!(st.state, "frozen", "{tag}");
                            assert!(Unfreeze::run_with(&call(ct))
                                .unwrap_or_else(|e| panic!("{tag} Unfreeze: {e}")));
                            note("Freeze+State+Unfreeze", s.elapsed());
                        }
                    }
                }
                let mut all = counts.lock().unwrap();
                for (what, (n, worst)) in mine {
                    let e = all.entry(what).or_default();
                    e.0 += n;
                    e.1 = e.1.max(worst);
                }
            })
        })
        .collect();
    let mut failed = Vec::new();
    for (i, t) in threads.into_iter().enumerate() {
        if let Err(e) = t.join() {
            failed.push(format!("thread {i}: {:?}", e.downcast_ref::<String>()));
        }
    }
    let elapsed = t0.elapsed();
    let counts = counts.lock().unwrap().clone();
    let total: usize = counts.values().map(|(n, _)| n).sum();
    eprintln!("64 threads x {ROUNDS} rounds on 8 containers: {total} operations in {elapsed:.2?}; (count, slowest) {counts:?}");
    assert!(failed.is_empty(), "{failed:#?}");
    for shared in &containers {
        assert_eq!(
            shared.t.lxc_state().to_lowercase(),
            "running",
            "{}",
            shared.t.container().id
        );
    }
    assert_eq!(open_fd_count(), fds_before, "fds leaked");
    assert_eq!(lingering_zombies(), Vec::<i32>::new());
}

// ---------------------------------------------------------------------------------------
// A frozen container, a container being stopped, a container being deleted

/// Whether `result` is an acceptable end of a call on a container that is changing
/// under it: a result, or an error that says what happened. A timeout (the deadline
/// had to end it), a crashed runner or a broken reply is not.
fn clear_end<T: std::fmt::Debug>(what: &str, result: &Result<T, Error>) -> Result<(), String> {
    let Err(e) = result else {
        return Ok(());
    };
    match e.kind() {
        ErrorKind::Command { .. } | ErrorKind::Setup { .. } => Ok(()),
        // The runner refused to apply a placement whose cgroup or user went away.
        ErrorKind::Protocol {
            problem: ProtocolError::Refused(m),
            ..
        } if m.contains("cgroup") || m.contains("set") => Ok(()),
        _ => Err(format!("{what}: {e} ({e:?})")),
    }
}

/// Runs Ping, State, Exec and Freeze (+ Unfreeze) in `threads` threads in a loop until
/// `stop` is set; returns every result that was not a clear end, how many calls ended,
/// and the slowest call.
///
/// With `pairs`, Freeze is followed by Unfreeze, the pair under the write half of a
/// per-container lock and Exec and State under its read half, as a daemon serialises
/// them: an Exec whose attach lands right after a Freeze would have its program frozen
/// until the next Unfreeze (see `docs/reliability.md`). Without `pairs` Freeze runs alone
/// (on a frozen container: a no-op) and nothing is locked.
fn hammer(
    ct: &Container,
    threads: usize,
    pairs: bool,
    stop: &std::sync::atomic::AtomicBool,
) -> (Vec<String>, usize, Duration) {
    use std::sync::atomic::Ordering;
    let lock = RwLock::new(());
    let lock = &lock;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let mut bad = Vec::new();
                    let mut n = 0;
                    let mut slowest = Duration::ZERO;
                    let mut i = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let tag = format!("t{t}i{i}");
                        let t0 = Instant::now();
                        let r = match (t + i) % 4 {
                            0 => clear_end(
                                "Ping",
                                &Ping::run_with(&call(ct), json!(tag))
                                    .map(|v| assert_eq!(v, json!(tag))),
                            ),
                            1 => {
                                let _r = pairs.then(|| lock.read().unwrap());
                                clear_end("State", &State::run_with(&call(ct)))
                            }
                            2 => {
                                let _r = pairs.then(|| lock.read().unwrap());
                                clear_end(
                                    "Exec",
                                    &Exec::run_with(
                                        &call(ct),
                                        vec!["true".into()],
                                        false,
                                        false,
                                        Default::default(),
                                    ),
                                )
                            }
                            _ if pairs => {
                                let _w = lock.write().unwrap();
                                clear_end("Freeze", &Freeze::run_with(&call(ct))).and_then(|()| {
                                    clear_end("Unfreeze", &Unfreeze::run_with(&call(ct)))
                                })
                            }
                            _ => clear_end("Freeze", &Freeze::run_with(&call(ct))),
                        };
                        slowest = slowest.max(t0.elapsed());
                        n += 1;
                        i += 1;
                        if let Err(e) = r {
                            bad.push(e);
                        }
                    }
                    (bad, n, slowest)
                })
            })
            .collect();
        let mut bad = Vec::new();
        let mut n = 0;
        let mut slowest = Duration::ZERO;
        for h in handles {
            let (b, k, s) = h.join().unwrap();
            bad.extend(b);
            n += k;
            slowest = slowest.max(s);
        }
        (bad, n, slowest)
    })
}

#[test]
fn commands_on_a_frozen_container_end_within_their_deadline() {
    let _serial = serial();
    let t = TestContainer::running("hfrz");
    let ct = t.container();
    assert!(Freeze::run_with(&call(ct)).unwrap());
    let started = Instant::now();
    // Each alone, with its answer.
    assert_eq!(Ping::run_with(&call(ct), json!(1)).unwrap(), json!(1));
    assert_eq!(State::run_with(&call(ct)).unwrap().state, "frozen");
    let message = Exec::run_with(
        &call(ct),
        vec!["true".into()],
        false,
        false,
        Default::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(message.contains("frozen"), "{message}");
    let message = commands::Wall::run_with(&call(ct), "x".into(), commands::Banner::On)
        .unwrap_err()
        .to_string();
    assert!(message.contains("frozen"), "{message}");
    let frozen_again = Freeze::run_with(&call(ct));
    assert!(
        clear_end("Freeze", &frozen_again).is_ok(),
        "{frozen_again:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    // And 8 threads at once for a while.
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (bad, n, slowest) = std::thread::scope(|s| {
        let h = s.spawn(|| hammer(ct, 8, false, &stop));
        std::thread::sleep(Duration::from_secs(3));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        h.join().unwrap()
    });
    eprintln!(
        "frozen container: {n} calls by 8 threads, slowest {slowest:.2?}, not clear: {bad:?}"
    );
    assert!(bad.is_empty(), "{bad:#?}");
    assert_eq!(t.lxc_state().to_lowercase(), "frozen");
    assert!(Unfreeze::run_with(&call(ct)).unwrap());
    assert_eq!(t.lxc_state().to_lowercase(), "running");
    assert_eq!(lingering_zombies(), Vec::<i32>::new());
}

#[test]
fn commands_on_a_container_being_stopped_end_within_their_deadline() {
    let _serial = serial();
    let t = TestContainer::running("hstp");
    let ct = t.container();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (bad, n, slowest, stopped) = std::thread::scope(|s| {
        let h = s.spawn(|| hammer(ct, 8, true, &stop));
        std::thread::sleep(Duration::from_millis(500));
        let stopped = Stop::run_with(&call(ct), StopMode::Stop, 10, None);
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (bad, n, slowest) = h.join().unwrap();
        (bad, n, slowest, stopped)
    });
    eprintln!("container being stopped: {n} calls by 8 threads, slowest {slowest:.2?}; Stop: {stopped:?}; not clear: {bad:?}");
    assert!(stopped.is_ok(), "{stopped:?}");
    assert!(bad.is_empty(), "{bad:#?}");
    assert_eq!(t.lxc_state().to_lowercase(), "stopped");
    assert_eq!(lingering_zombies(), Vec::<i32>::new());
}

#[test]
fn commands_on_a_container_being_deleted_end_within_their_deadline() {
    let _serial = serial();
    let t = TestContainer::running("hdel");
    let ct = t.container().clone();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (bad, n, slowest, first) = std::thread::scope(|s| {
        let h = s.spawn(|| hammer(&ct, 8, true, &stop));
        std::thread::sleep(Duration::from_millis(500));
        // Deleting kills every process of the container's user: runners too.
        let first = t.provisioner.destroy(&ct.id);
        std::thread::sleep(Duration::from_millis(1000));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (bad, n, slowest) = h.join().unwrap();
        (bad, n, slowest, first)
    });
    // The runners that the deletion killed end as runner failures by SIGKILL: clear too.
    let (killed, bad): (Vec<String>, Vec<String>) = bad
        .into_iter()
        .partition(|e| e.contains("killed by signal 9 (SIGKILL)"));
    eprintln!(
        "container being deleted: {n} calls by 8 threads, slowest {slowest:.2?}; runners killed by the deletion: {}; \
         first destroy while calls kept coming: {first:?}; not clear: {bad:?}",
        killed.len()
    );
    assert!(bad.is_empty(), "{bad:#?}");
    // Once no call comes any more, the deletion completes (a daemon deletes under its
    // per-container lock, so this is its normal case).
    // (Killed runners and the container's processes may take a moment to be gone.)
    let mut destroyed = t.provisioner.destroy(&ct.id);
    for _ in 0..50 {
        if destroyed.is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        destroyed = t.provisioner.destroy(&ct.id);
    }
    destroyed.unwrap();
    // A call after the deletion fails clearly; runners in the exec placement create the
    // entry cgroup again on their way (it is made on demand).
    let state = State::run_with(&call(&ct));
    assert!(clear_end("State", &state).is_ok(), "{state:?}");
    let freeze = Freeze::run_with(&call(&ct));
    // liblxc's own words (its LXC path is gone too).
    assert!(
        matches!(&freeze, Err(e) if matches!(e.kind(), ErrorKind::Command { .. })),
        "{freeze:?}"
    );
    let after = Ping::run_with(&call(&ct), json!(1));
    assert!(clear_end("Ping", &after).is_ok(), "{after:?}");
    let leftover: Vec<_> = ctl_core::cgroup::hierarchies()
        .iter()
        .map(|h| h.path_of(&ct.cgroup_path))
        .filter(|p| p.exists())
        .collect();
    eprintln!(
        "after the deletion: State {state:?}; Freeze {:?}; Ping {after:?}; entry cgroups there again: {}",
        freeze.map_err(|e| e.to_string()),
        leftover.len()
    );
    let _ = ctl_core::cgroup::remove_entry(&ct.cgroup_path);
    assert_eq!(lingering_zombies(), Vec::<i32>::new());
    drop(t);
}
