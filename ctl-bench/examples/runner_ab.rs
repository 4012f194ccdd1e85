//! A/B of runner builds: the exec no-op (`Ping`) through each runner binary given, plus
//! the first one without the kept `cgroup.procs` files and in the fork placement, against
//! `/bin/true`, interleaved with a rotating
//! order (every variant follows every other one equally often), on one throwaway
//! container. For trying link or build options of the runner (docs/performance.md lists
//! what was tried); differences under ~10 µs are within this machine's noise.
//!
//! `cargo build --release -p ctl-runner -p ctl-bench --example runner_ab`, then, as root,
//! `target/release/examples/runner_ab [ROUNDS] [RUNNER...]` (default 2000 rounds, the
//! `ctl-runner` of the same build).

use std::path::PathBuf;
use std::time::Instant;

use ctl_core::diag::Ping;
use ctl_core::{Call, Placement, Stdio};
use serde_json::json;

enum Variant {
    SpawnTrue,
    Ping {
        runner: PathBuf,
        placement: Placement,
    },
}

fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() {
    ctl_core::runner::run_if_runner();
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(2000);
    let mut runners: Vec<PathBuf> = args.map(PathBuf::from).collect();
    if runners.is_empty() {
        let exe = std::env::current_exe().expect("current_exe");
        runners.push(exe.parent().unwrap().parent().unwrap().join("ctl-runner"));
    }
    for r in &runners {
        assert!(r.exists(), "no runner at {}", r.display());
    }

    let dir = std::env::temp_dir().join(format!("ctl-bench-runner-ab-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let prov = ctl_provision::Provisioner::new(&dir).unwrap();
    let name = format!("ra{}", std::process::id() % 10000);
    let ct = prov.create(&name, &Default::default()).unwrap();

    let mut variants = vec![("spawn_true".to_owned(), Variant::SpawnTrue)];
    for r in &runners {
        variants.push((
            format!("exec_noop {}", r.display()),
            Variant::Ping {
                runner: r.clone(),
                placement: Placement::Exec,
            },
        ));
    }
    variants.push((
        format!("exec_noop, files not kept {}", runners[0].display()),
        Variant::Ping {
            runner: runners[0].clone(),
            placement: Placement::Exec,
        },
    ));
    variants.push((
        format!("fork_noop {}", runners[0].display()),
        Variant::Ping {
            runner: runners[0].clone(),
            placement: Placement::Fork,
        },
    ));

    let warm_up = 100;
    let files_not_kept = ctl_core::Launcher::new().with_keep_cgroup_files(false);
    let mut samples = vec![Vec::with_capacity(rounds); variants.len()];
    for round in 0..warm_up + rounds {
        for k in 0..variants.len() {
            let i = (k + round) % variants.len();
            let started = Instant::now();
            match &variants[i].1 {
                Variant::SpawnTrue => {
                    let status = std::process::Command::new("/bin/true").status().unwrap();
                    assert!(status.success());
                }
                Variant::Ping { runner, placement } => {
                    // The cgroup.procs files the frontend keeps (procs_files), or not.
                    let launcher = if variants[i].0.contains("files not kept") {
                        &files_not_kept
                    } else {
                        ctl_core::Launcher::global()
                    };
                    let call = Call::new(&ct)
                        .launcher(launcher)
                        .runner(runner)
                        .placement(*placement)
                        .stdout(Stdio::Null)
                        .stderr(Stdio::Null);
                    let reply = Ping::run_with(&call, json!(round)).expect("ping");
                    assert_eq!(reply, json!(round));
                }
            }
            if round >= warm_up {
                samples[i].push(started.elapsed().as_secs_f64() * 1e6);
            }
        }
    }

    println!("container {name}, {rounds} rounds, rotating order");
    let floor = median(&mut samples[0]);
    for (i, (label, _)) in variants.iter().enumerate() {
        let m = median(&mut samples[i]);
        println!("{label:<60} {m:>8.1} µs  {:>6.3} x spawn_true", m / floor);
    }
    let _ = prov.destroy(&name);
    let _ = std::fs::remove_dir_all(&dir);
}
