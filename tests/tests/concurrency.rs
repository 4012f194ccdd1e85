//! Many threads calling at once, and a caller with a big address space.

use std::sync::Arc;

use ctl_core::diag::{Identity, Ping};
use ctl_core::{Call, Placement, Stdio};
use serde_json::json;
use tests::fixtures::{lingering_zombies, open_fd_count, serial, test_runner_path, TestUser};

#[test]
fn sixty_four_threads_times_fifty_calls() {
    let user = Arc::new(TestUser::new("threads"));
    // Warm up lazily initialised state (cgroup hierarchies, runner path) before counting fds.
    Ping::run_with(
        &Call::new(user.container()).runner(test_runner_path()),
        json!(0),
    )
    .unwrap();
    let _serial = serial();
    let fds_before = open_fd_count();

    let threads: Vec<_> = (0..64)
        .map(|t| {
            let user = Arc::clone(&user);
            std::thread::spawn(move || {
                let placement = if t % 2 == 0 {
                    Placement::Exec
                } else {
                    Placement::Fork
                };
                let call = Call::new(user.container())
                    .runner(test_runner_path())
                    .placement(placement)
                    .stdout(Stdio::Null)
                    .stderr(Stdio::Null);
                for i in 0..50 {
                    let value = json!({"thread": t, "call": i, "pad": "x".repeat(i * 10)});
                    let reply = Ping::run_with(&call, value.clone())
                        .unwrap_or_else(|e| panic!("thread {t} call {i}: {e}"));
                    assert_eq!(reply, value, "thread {t} call {i} got another call's reply");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a calling thread failed");
    }
    assert_eq!(open_fd_count(), fds_before, "fds leaked");
    assert_eq!(lingering_zombies(), Vec::<i32>::new(), "zombies left");
}

#[test]
fn a_caller_holding_a_gibibyte_still_works() {
    let _serial = serial();
    let user = TestUser::new("bigheap");
    let mut heap = vec![0u8; 1 << 30];
    // Touch every page so that the memory is really mapped.
    for page in heap.chunks_mut(4096) {
        page[0] = 1;
    }
    let call = Call::new(user.container())
        .runner(test_runner_path())
        .stdout(Stdio::Null)
        .stderr(Stdio::Null);
    let info = Identity::run_with(&call).unwrap();
    assert_eq!(info.uid, [user.container().ugid; 3]);
    assert_eq!(Ping::run_with(&call, json!("big")).unwrap(), json!("big"));
    assert_eq!(
        heap.iter()
            .step_by(4096)
            .map(|b| *b as usize)
            .sum::<usize>(),
        heap.len() / 4096
    );
}
