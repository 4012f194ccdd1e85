//! A/B of the cold exec path: runner born in its cgroup v2 entry cgroup (`clone3` with
//! `CLONE_INTO_CGROUP`, the runner moves itself only in the v1 hierarchies) against
//! `posix_spawn` + the runner moving itself everywhere. Same container, same user, same
//! runner, interleaved (the order alternates per round), then again from a caller holding
//! a touched 1 GiB heap.
//!
//! `cargo build --release -p ctl-runner && cargo build --release -p ctl-bench --example
//! spawn_ab`, then, as root, `target/release/examples/spawn_ab [ROUNDS]` (default 2000
//! rounds = 2000 samples of each, for each caller size; `BENCH_RUNNER` overrides the
//! runner, default the `ctl-runner` of the same build).

use std::time::Instant;

use ctl_core::diag::Ping;
use ctl_core::frontend::spawn_into_cgroup_available;
use ctl_core::Launcher;
use ctl_core::{Call, Stdio};
use serde_json::json;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

struct Samples {
    name: &'static str,
    micros: Vec<f64>,
}

impl Samples {
    fn new(name: &'static str) -> Samples {
        Samples {
            name,
            micros: Vec::new(),
        }
    }

    fn median(&self) -> f64 {
        let mut s = self.micros.clone();
        s.sort_by(f64::total_cmp);
        percentile(&s, 0.5)
    }

    fn print(&self) {
        let mut s = self.micros.clone();
        s.sort_by(f64::total_cmp);
        println!(
            "{:<28} {:>6} {:>10.1} {:>10.1} {:>10.1} {:>10.1}",
            self.name,
            s.len(),
            percentile(&s, 0.1),
            percentile(&s, 0.5),
            percentile(&s, 0.9),
            percentile(&s, 0.99)
        );
    }
}

/// `rounds` interleaved samples of each path.
fn measure(call: &Call<'_>, rounds: usize, a: &mut Samples, b: &mut Samples) {
    let posix_spawn_only = Launcher::new().with_spawn_into_cgroup(false);
    for round in 0..rounds {
        let order = if round % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for clone3 in order {
            let launcher = if clone3 {
                Launcher::global()
            } else {
                &posix_spawn_only
            };
            let call = call.clone().launcher(launcher);
            let started = Instant::now();
            let reply = Ping::run_with(&call, json!(round)).expect("ping");
            let us = started.elapsed().as_secs_f64() * 1e6;
            assert_eq!(reply, json!(round));
            if clone3 { &mut *a } else { &mut *b }.micros.push(us);
        }
    }
}

fn header() {
    println!(
        "{:<28} {:>6} {:>10} {:>10} {:>10} {:>10}",
        "case", "count", "p10 µs", "median µs", "p90 µs", "p99 µs"
    );
}

fn main() {
    ctl_core::runner::run_if_runner();
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let runner = std::env::var_os("BENCH_RUNNER")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            let exe = std::env::current_exe().unwrap();
            exe.parent().unwrap().parent().unwrap().join("ctl-runner")
        });
    assert!(runner.exists(), "no runner at {}", runner.display());

    let dir = std::env::temp_dir().join(format!("ctl-bench-spawn-ab-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let prov = ctl_provision::Provisioner::new(&dir).unwrap();
    let name = format!("ab{}", std::process::id() % 10000);
    let ct = prov.create(&name, &Default::default()).unwrap();
    let call = Call::new(&ct)
        .runner(&runner)
        .stdout(Stdio::Null)
        .stderr(Stdio::Null);

    // Warm-up; the first call also creates the entry cgroup (born outside, then inside).
    let (mut a, mut b) = (Samples::new("warm-up"), Samples::new("warm-up"));
    measure(&call, 100, &mut a, &mut b);
    assert!(
        spawn_into_cgroup_available(),
        "clone3 with CLONE_INTO_CGROUP is not available here"
    );

    println!(
        "runner {}, container {name}, {rounds} interleaved rounds",
        runner.display()
    );
    header();
    let mut clone3 = Samples::new("exec_ping clone3");
    let mut spawn = Samples::new("exec_ping posix_spawn");
    measure(&call, rounds, &mut clone3, &mut spawn);
    clone3.print();
    spawn.print();

    // A caller holding a touched 1 GiB heap: CLONE_VM must keep the cost flat.
    let mut heap = vec![0u8; 1 << 30];
    for page in heap.chunks_mut(4096) {
        page[0] = 1;
    }
    let mut clone3_big = Samples::new("exec_ping clone3 1GiB");
    let mut spawn_big = Samples::new("exec_ping posix_spawn 1GiB");
    measure(&call, rounds, &mut clone3_big, &mut spawn_big);
    std::hint::black_box(&heap);
    drop(heap);
    clone3_big.print();
    spawn_big.print();

    println!();
    println!(
        "clone3 / posix_spawn (medians):          {:.3}  ({:+.1} µs)",
        clone3.median() / spawn.median(),
        clone3.median() - spawn.median()
    );
    println!(
        "1 GiB caller / small caller, clone3:      {:.3}",
        clone3_big.median() / clone3.median()
    );
    println!(
        "1 GiB caller / small caller, posix_spawn: {:.3}",
        spawn_big.median() / spawn.median()
    );
    assert!(spawn_into_cgroup_available());

    let _ = prov.destroy(&name);
    let _ = std::fs::remove_dir_all(&dir);
}
